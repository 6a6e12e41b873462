"""`netspec validate --json`: one record per error (the text form is tests/test_cli.py's contract)."""

import json

from tests.cli.helpers import BAD, GOOD, call, write


def test_json_holds_one_record_per_error_and_nothing_else_on_stdout(tmp_path, capsys):
    good, bad = write(tmp_path, "good.yaml", GOOD), write(tmp_path, "bad.yaml", BAD)
    two = write(tmp_path, "two.yaml", GOOD.replace("linear: 2", "linaer: 2") + "  - relux\n")
    code, out, err = call(capsys, "validate", "--json", good, bad, two)
    assert code == 1 and err == ""
    records = json.loads(out)["errors"]
    assert [(r["file"], r["line"], r["col"]) for r in records] == [(str(bad), 5, 5), (str(two), 4, 5),
                                                                 (str(two), 6, 5)]
    first = records[0]
    assert set(first) == {"file", "line", "col", "path", "message", "hint", "notes"}
    assert first["path"] == "layers[1].conv1d" and first["message"] and first["hint"]
    assert "did you mean `linear`?" in records[1]["hint"] and records[2]["hint"] == "did you mean `relu`?"


def test_json_of_valid_specs_is_an_empty_list(tmp_path, capsys):
    code, out, err = call(capsys, "validate", "--json", write(tmp_path, "good.yaml", GOOD))
    assert (code, json.loads(out), err) == (0, {"errors": []}, "")


def test_json_of_a_file_that_does_not_parse(tmp_path, capsys):
    code, out, _ = call(capsys, "validate", "--json", write(tmp_path, "net.yaml", "name: [\n"))
    (record,) = json.loads(out)["errors"]
    assert code == 1 and record["file"] == str(tmp_path / "net.yaml") and record["line"] == 2


def test_json_with_draw_still_draws(tmp_path, capsys):
    out = tmp_path / "bad.dot"
    code, text, _ = call(capsys, "validate", "--json", write(tmp_path, "bad.yaml", BAD), "--draw", out)
    assert code == 1 and len(json.loads(text)["errors"]) == 1 and out.read_text().startswith("digraph")


def test_draw_to_stdout_is_refused(tmp_path, capsys):
    code, _, err = call(capsys, "validate", write(tmp_path, "good.yaml", GOOD), "--draw", "-")
    assert code == 2 and "netspec draw SPEC -o -" in err


def test_draw_reports_the_same_errors_as_validate(tmp_path, capsys):
    """A broken network and a broken `train:` section: both errors, with --draw as without."""
    spec = write(tmp_path, "both.yaml", BAD + "train:\n  data: {dataset: digits}\n  loss: cross_entropy\n"
                                              "  optimizer: nosuch\n  epochs: 1\n")
    _, plain, _ = call(capsys, "validate", "--json", spec)
    code, drawn, _ = call(capsys, "validate", "--json", spec, "--draw", tmp_path / "both.dot")
    records = json.loads(drawn)["errors"]
    assert code == 1 and records == json.loads(plain)["errors"]
    assert [r["path"] for r in records] == ["layers[1].conv1d", "train.optimizer"]
