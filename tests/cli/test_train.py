"""The command-line side of `netspec train` (the trainer: tests/train/)."""

from tests.cli.helpers import call, write
from tests.train.harness import write_spec


def test_quiet_prints_nothing_and_the_run_still_logs(tmp_path, capsys):
    spec = write_spec(tmp_path, {"epochs": 2})
    out = tmp_path / "run"
    assert call(capsys, "train", spec, "--out", out, "-q") == (0, "", "")
    log = (out / "log.txt").read_text().splitlines()
    assert log[-1].startswith("done:") and sum(line.startswith("epoch ") for line in log) == 2


def test_a_bad_override_is_a_usage_error(tmp_path, capsys):
    spec = write_spec(tmp_path, {"epochs": 1})
    code, _, err = call(capsys, "train", spec, "--set", "epochs")
    assert code == 2 and "usage: netspec train" in err and "--set takes KEY=VALUE" in err


def test_a_spec_without_a_train_section_is_a_located_error(tmp_path, capsys):
    spec = write(tmp_path, "net.yaml", "name: n\ninput: [4]\nlayers:\n  - linear: 2\n")
    code, _, err = call(capsys, "train", spec, "--out", tmp_path / "run")
    assert code == 1 and "error:" in err and "Traceback" not in err
