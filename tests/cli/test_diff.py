"""`netspec diff` (the comparison itself: tests/test_diff.py)."""

import json

from tests.cli.helpers import BAD, GOOD, call, write


def test_table_and_exit_0_whether_or_not_they_differ(tmp_path, capsys):
    a, b = write(tmp_path, "a.yaml", GOOD), write(tmp_path, "b.yaml", GOOD.replace("linear: 2", "linear: 3"))
    code, out, _ = call(capsys, "diff", a, b)
    assert code == 0 and out.startswith(f"a: good ({a})\nb: good ({b})") and "fc: out_features 2 → 3" in out
    assert call(capsys, "diff", a, a)[0] == 0


def test_json(capsys):
    code, out, _ = call(capsys, "diff", "specs/resnet18.yaml", "specs/resnet34.yaml", "--json")
    data = json.loads(out)
    assert code == 0 and (data["a"], data["b"], data["identical"]) == ("resnet18", "resnet34", False)
    assert data["totals"]["params"] == [11_689_512, 21_797_672]
    code, out, _ = call(capsys, "diff", "specs/resnet18.yaml", "specs/resnet18.yaml", "--json")
    assert code == 0 and json.loads(out)["identical"] is True


def test_an_invalid_spec_exits_1(tmp_path, capsys):
    bad = write(tmp_path, "bad.yaml", BAD)
    broken = write(tmp_path, "broken.yaml", "name: [\n")
    code, out, err = call(capsys, "diff", broken, bad)
    assert code == 1 and out == "" and f"{broken}:2:1: error:" in err
