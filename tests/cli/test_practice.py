"""The command-line side of the lecture's checks: `netspec lr-find`, `netspec gradcheck`,
`netspec train --overfit-batch` and `--lr auto` (the checks themselves: tests/train/test_practice.py)."""

import json
import re

import pytest

import netspec
from netspec.train.practice import OVERFIT_N
from tests.cli.helpers import SPECS, call
from tests.train.harness import write_spec
from tests.train.test_practice import wrong_square_layer  # noqa: F401  (a fixture)


@pytest.fixture(autouse=True)
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- lr-find ---------------------------------------------------------------------------------------------


def test_lr_find_prints_the_suggestion_and_writes_its_files(tmp_path, capsys):
    code, out, err = call(capsys, "lr-find", SPECS / "mlp_digits.yaml", "--out", tmp_path, "--steps", "100")
    assert code == 0 and err == ""
    line, wrote = out.splitlines()
    assert line.startswith("mlp_digits: lr-find passed: suggested lr ") and "diverged at lr" in line
    record = json.loads((tmp_path / "lr_find.json").read_text())
    assert record["steps"] == 100 and f"suggested lr {record['suggested_lr']:.3g}," in line
    assert f"diverged at lr {record['diverged_lr']:.3g}" in line
    assert record["lowest_lr"] > record["suggested_lr"] > 1e-7
    rows = (tmp_path / "lr_find.csv").read_text().splitlines()
    assert rows[0] == "step,lr,loss,smoothed_loss" and len(rows) - 1 == record["steps_run"]
    assert (tmp_path / "lr_find.png").read_bytes().startswith(b"\x89PNG")
    assert wrote.startswith("wrote ") and "lr_find.png" in wrote


def test_lr_find_fails_when_nothing_learns_in_its_range(tmp_path, capsys):
    code, out, err = call(capsys, "lr-find", SPECS / "mlp_digits.yaml", "--out", tmp_path, "--steps", "20",
                          "--end-lr", "1e-6")
    assert code == 1
    assert err.startswith("mlp_digits: lr-find failed: the smoothed loss never fell 10% below its start")
    assert "nothing learns" in err and (tmp_path / "lr_find.csv").is_file()


@pytest.mark.parametrize("args, message", [
    (["--start-lr", "1", "--end-lr", "0.1"], "--start-lr (1) must be below --end-lr (0.1)"),
    (["--steps", "0"], "expected a positive whole number"),
    (["--steps", "2"], "--steps 2 is too few: the suggestion is a slope, which needs 3 steps at least"),
    (["--set", "optimizer.adam"], None),  # takes KEY=VALUE: no `=`
])
def test_lr_find_usage_errors(tmp_path, capsys, args, message):
    code, _, err = call(capsys, "lr-find", SPECS / "mlp_digits.yaml", "--out", tmp_path, *args)
    assert code == 2 and "usage: netspec lr-find" in err
    assert message is None or message in err
    assert not any(tmp_path.iterdir())


def test_lr_find_refuses_an_out_folder_it_cannot_use_before_the_test_runs(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "lr_find.json").write_text("{}")  # a run's own choice (lr: auto), not to be replaced
    (tmp_path / "file").write_text("x")
    for out, message in [(tmp_path / "run", f"{tmp_path / 'run'} already holds files; choose another --out"),
                         (tmp_path / "file", f"{tmp_path / 'file'} is a file, not a folder; choose another --out"),
                         (tmp_path / "file" / "lr", f"cannot create the folder {tmp_path / 'file' / 'lr'}: ")]:
        code, out_text, err = call(capsys, "lr-find", SPECS / "mlp_digits.yaml", "--out", out, "--steps", "3")
        assert code == 1 and out_text == "" and err.startswith(f"netspec: error: {message}"), err
    assert (tmp_path / "run" / "lr_find.json").read_text() == "{}" and sorted(tmp_path.iterdir()) == [
        tmp_path / "file", tmp_path / "run"]


# --- gradcheck -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["logistic_regression", "mlp_digits", "cnn_digits"])
def test_gradcheck_passes_on_small_shipped_specs(capsys, name):
    layers = sum(1 for s in netspec.analyze(netspec.load(SPECS / f"{name}.yaml")).layers if s.params)
    code, out, err = call(capsys, "gradcheck", SPECS / f"{name}.yaml")
    assert code == 0 and err == ""
    found = re.fullmatch(rf"{name}: gradcheck passed: the gradients of all (\d+) layers agree \(float64; "
                         r"input \[2, .*\]\)\n", out)
    assert found and int(found[1]) >= layers  # every layer with parameters, and those with only inputs


@pytest.mark.usefixtures("wrong_square_layer")
def test_gradcheck_fails_naming_the_wrong_layer(tmp_path, capsys):
    spec = write_spec(tmp_path, {}, layers=[{"linear": 6, "name": "fc1"}, {"wrong_square": None, "name": "square"},
                                            {"linear": 4, "name": "fc2"}])
    code, out, err = call(capsys, "gradcheck", spec)
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "tiny: gradcheck failed: 1 of 3 layers' gradients disagree: `square` (wrong_square): numerical and "
        "analytical gradients differ with respect to its input",
        "  `square` (wrong_square): numerical and analytical gradients differ with respect to its input"]


def test_gradcheck_over_the_cap_is_skipped_with_exit_0(capsys):
    code, out, _ = call(capsys, "gradcheck", SPECS / "mlp_digits.yaml", "--max-params", "1000")
    assert code == 0
    assert out == ("mlp_digits: gradcheck skipped: 9,610 params, over the cap of 1,000 (max_params): a float64 "
                   "check of every layer would take long; raise the cap to run it\n")


def test_gradcheck_binds_symbolic_dims(capsys):
    code, out, _ = call(capsys, "gradcheck", SPECS / "lstm_classifier.yaml", "--dim", "T=3", "--batch", "1")
    assert code == 0 and "input [1, 3, 32]" in out
    code, _, err = call(capsys, "gradcheck", SPECS / "lstm_classifier.yaml", "--dim", "X=3")
    assert code == 2 and "has no symbolic input dim `X` (its symbolic dims: T)" in err


# --- train --overfit-batch and --lr auto -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["mlp_digits", "cnn_digits"])
def test_overfit_batch_passes_on_shipped_specs(capsys, name):
    code, out, err = call(capsys, "train", SPECS / f"{name}.yaml", "--overfit-batch")
    assert code == 0 and err == ""
    found = re.fullmatch(rf"{name}: overfit-batch passed: the loss fell from ([\d.]+) to ([\d.]+) \(≤ 0.05\) "
                         rf"in (\d+) steps on {OVERFIT_N} samples\n", out)
    assert found and float(found[2]) <= 0.05 < float(found[1]) and 0 < int(found[3]) <= 1000


def test_overfit_batch_fails_when_every_layer_is_frozen(capsys):
    code, out, err = call(capsys, "train", SPECS / "mlp_digits.yaml", "--overfit-batch", "8", "--set", "freeze=['*']")
    assert code == 1 and out == ""
    assert err == ("mlp_digits: overfit-batch failed: nothing to train: `freeze` freezes every trainable layer (fc1, "
                   "fc2); hint: freeze the layers to keep (`features.*`) and leave the head out of the list\n")


def test_overfit_batch_takes_n_and_the_lr(capsys):
    code, out, _ = call(capsys, "train", SPECS / "mlp_digits.yaml", "--overfit-batch", "4", "--lr", "1e-2")
    assert code == 0 and out.endswith(" on 4 samples\n")
    code, out, err = call(capsys, "train", SPECS / "mlp_digits.yaml", "--overfit-batch", "4", "--lr", "1e-9")
    assert code == 1 and out == "" and "mlp_digits: overfit-batch failed: the loss fell from" in err
    assert "only to" in err and "in 1000 steps on 4 samples, not (≤ 0.05)" in err


@pytest.mark.parametrize("option", [["--out", "run"], ["--resume", "run"], ["--epochs", "2"], ["--batch-size", "8"]])
def test_overfit_batch_refuses_run_options(tmp_path, capsys, option):
    code, _, err = call(capsys, "train", SPECS / "mlp_digits.yaml", "--overfit-batch", *option)
    assert code == 2 and "usage: netspec train" in err
    assert f"--overfit-batch takes no {option[0]}: it trains one batch of {OVERFIT_N} samples" in err


def test_lr_auto_on_the_command_line_runs_the_range_test_first(tmp_path, capsys):
    spec = write_spec(tmp_path, {"epochs": 1})
    code, out, _ = call(capsys, "train", spec, "--lr", "auto", "--out", tmp_path / "run")
    assert code == 0
    record = json.loads((tmp_path / "run" / "lr_find.json").read_text())
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["lr_find"] == record and record["suggested_lr"] > 0
    assert f"lr: auto -> {record['suggested_lr']:.3g}" in out
    assert "lr: auto" in (tmp_path / "run" / "spec.yaml").read_text()


@pytest.mark.parametrize("value", ["automatic", "0", "-1e-3", "nan"])
def test_lr_takes_a_positive_number_or_auto(tmp_path, capsys, value):
    code, _, err = call(capsys, "train", SPECS / "mlp_digits.yaml", "--lr", value, "--out", tmp_path / "run")
    assert code == 2 and "argument --lr" in err
