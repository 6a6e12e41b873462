"""`netspec summary` of several specs, and --json of an invalid one."""

import json

from tests.cli.helpers import BAD, GOOD, call, write


def test_several_specs_are_summarized_in_turn(capsys):
    code, out, _ = call(capsys, "summary", "specs/mlp_digits.yaml", "specs/cnn_digits.yaml")
    assert code == 0 and out.index("mlp_digits: ") < out.index("cnn_digits: ")
    code, out, _ = call(capsys, "summary", "--markdown", "specs/mlp_digits.yaml", "specs/cnn_digits.yaml")
    assert code == 0 and out.startswith("### mlp_digits") and "\n\n### cnn_digits" in out


def test_json_of_several_specs_is_a_list(capsys):
    code, out, _ = call(capsys, "summary", "--json", "specs/mlp_digits.yaml", "specs/cnn_digits.yaml")
    assert code == 0 and [s["name"] for s in json.loads(out)] == ["mlp_digits", "cnn_digits"]


def test_json_of_an_invalid_spec_prints_its_errors_as_json(tmp_path, capsys):
    bad = write(tmp_path, "bad.yaml", BAD)
    code, out, err = call(capsys, "summary", "--json", bad)
    assert code == 1 and err == ""
    data = json.loads(out)
    assert data["file"] == str(bad) and [(e["line"], e["col"]) for e in data["errors"]] == [(5, 5)]
    code, out, _ = call(capsys, "summary", "--json", write(tmp_path, "good.yaml", GOOD), bad)
    good, failed = json.loads(out)
    assert code == 1 and good["name"] == "good" and failed["errors"][0]["path"] == "layers[1].conv1d"


def test_an_invalid_spec_among_several_is_reported_and_the_others_summarized(tmp_path, capsys):
    code, out, err = call(capsys, "summary", write(tmp_path, "bad.yaml", BAD), write(tmp_path, "good.yaml", GOOD))
    assert code == 1 and "bad.yaml:5:5: error:" in err and "good: 1 layers" in out
