"""The run folder and `netspec train`'s command line (netspec/train/run.py, plots.py, session.py)."""

import contextlib
import io
import json

import pytest
import torch
import yaml

import netspec
from netspec.cli import main
from tests.train.harness import DIGITS_MLP, PNG, rows, write_spec

CLASSIFIER = {"data": {"dataset": "digits"}, "optimizer": {"adam": {"lr": 1.0e-3}}, "epochs": 30, "batch_size": 64}


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """`netspec train` with every override, and what it printed."""
    tmp = tmp_path_factory.mktemp("cli")
    spec = write_spec(tmp, CLASSIFIER, layers=DIGITS_MLP, input=[64])
    out = tmp / "run"
    stdout, stderr = io.StringIO(), io.StringIO()  # capsys is for one test only
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["train", str(spec), "--epochs", "2", "--batch-size", "256", "--lr", "0.01", "--seed", "3",
                     "--device", "cpu", "--set", "clip_grad_norm=2.5", "--set", "metrics=[accuracy, top3]",
                     "--out", str(out)])
    return code, out, stdout.getvalue(), stderr.getvalue()


def test_overrides_take_effect_and_show_in_spec_yaml(cli_run):
    code, out, _, _ = cli_run
    assert code == 0
    train = yaml.safe_load((out / "spec.yaml").read_text())["train"]
    assert train == {**CLASSIFIER, "epochs": 2, "batch_size": 256, "optimizer": {"adam": {"lr": 0.01}}, "seed": 3,
                     "device": "cpu", "clip_grad_norm": 2.5, "metrics": ["accuracy", "top3"]}
    metrics = rows(out / "metrics.csv")
    assert [int(r["epoch"]) for r in metrics] == [1, 2] and [int(r["step"]) for r in metrics] == [6, 12]
    assert {float(r["lr"]) for r in metrics} == {0.01}


def test_run_folder_holds_every_file(cli_run):
    _, out, _, _ = cli_run
    assert {p.name for p in out.iterdir()} == {"spec.yaml", "metrics.csv", "steps.csv", "summary.json", "log.txt",
                                               "best.pt", "last.pt", "loss.png", "accuracy.png", "lr.png",
                                               "grad_norms.csv", "grad_norms.png"}
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "step", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "val_top3", "lr",
            "seconds"} <= set(header)
    assert (out / "steps.csv").read_text().splitlines()[0] == "epoch,step,loss,lr"
    assert len(rows(out / "steps.csv")) == 12
    summary = json.loads((out / "summary.json").read_text())
    assert {"best_epoch", "test_loss", "test_accuracy", "test_top3", "params", "wall_seconds", "device",
            "versions"} <= set(summary)
    assert summary["params"] == 64 * 16 + 16 + 16 * 10 + 10 and summary["device"] == "cpu"
    assert set(summary["versions"]) == {"netspec", "torch", "python"} and 0 < summary["test_accuracy"] <= 1
    for png in ("loss.png", "accuracy.png", "lr.png"):
        assert (out / png).read_bytes()[:8] == PNG
    for pt in ("best.pt", "last.pt"):
        assert torch.load(out / pt, weights_only=True)["epoch"] in (1, 2)


def test_progress_is_one_plain_line_per_epoch_off_a_terminal(cli_run):
    _, out, stdout, stderr = cli_run
    lines = stdout.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("epoch ")] == ["epoch 1", "epoch 2"]
    assert len(lines) == 4 and lines[-1].startswith("done: test_loss") and "\r" not in stdout + stderr
    assert (out / "log.txt").read_text().splitlines() == lines


def test_out_folder_with_files_is_refused(tmp_path, capsys):
    spec = write_spec(tmp_path, {"epochs": 1})
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    (tmp_path / "file").write_text("mine")
    assert main(["train", str(spec), "--out", str(tmp_path / "busy")]) == 1
    assert main(["train", str(spec), "--out", str(tmp_path / "file")]) == 1
    assert main(["train", str(spec), "--out", str(tmp_path / "file" / "run")]) == 1  # no internal error
    err = capsys.readouterr().err.splitlines()
    assert err == [f"netspec: error: {tmp_path / 'busy'} already holds files; choose another --out, or --resume it",
                   f"netspec: error: {tmp_path / 'file'} is a file, not a folder; choose another --out",
                   f"netspec: error: cannot create the folder {tmp_path / 'file' / 'run'}: Not a directory; "
                   "choose another --out"]
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]


def test_an_unavailable_device_is_a_located_error(tmp_path, capsys):
    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    spec = write_spec(tmp_path, {"epochs": 1, "device": "cuda:7"})
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    line = next(i for i, text in enumerate(spec.read_text().splitlines(), 1) if "device" in text)
    assert f"{spec}:{line}:" in err and "error: device `cuda:7` is not available: torch sees" in err
    assert "hint: use `device: auto` or `--device cpu`" in err and not (tmp_path / "run").exists()


AUTOENCODER = [{"linear": 8, "name": "enc"}, "relu", {"linear": 64, "name": "dec"}, "sigmoid"]
VAE = {"outputs": ["recon", "mu", "logvar"],
       "layers": [{"linear": 16, "name": "fc1"}, {"relu": None, "name": "hidden"},
                  {"linear": 2, "name": "mu", "from": "hidden"}, {"linear": 2, "name": "logvar", "from": "hidden"},
                  {"reparameterize": ["mu", "logvar"], "name": "z"}, {"linear": 16, "name": "fc3"}, "relu",
                  {"linear": 64, "name": "fc4"}, {"sigmoid": None, "name": "recon"}]}


def test_an_autoencoder_draws_reconstructions(tmp_path):
    spec = write_spec(tmp_path, {"data": {"dataset": "digits", "normalize": False}, "loss": {"mse": {}, "target": "x"},
                                 "epochs": 1, "batch_size": 256}, layers=AUTOENCODER, input=[64])
    run = netspec.train(spec, out=tmp_path / "run")
    assert (run.path / "reconstructions.png").read_bytes()[:8] == PNG
    assert not (run.path / "accuracy.png").exists() and not (run.path / "samples.png").exists()
    assert "test_accuracy" not in run.summary


@pytest.mark.parametrize("split", [[0.8, 0.1, 0.1], [0.9, 0.1, 0.0]])  # without a test split: val samples
def test_a_vae_logs_each_weighted_term_and_draws_samples(tmp_path, split):
    loss = [{"bce": "batchmean", "output": "recon", "target": "x"}, {"kl_normal": {}, "weight": 0.5, "name": "kl"}]
    spec = write_spec(tmp_path, {"data": {"dataset": "digits", "normalize": False, "split": split}, "loss": loss,
                                 "epochs": 2, "batch_size": 256}, input=[64], **VAE)
    run = netspec.train(spec, out=tmp_path / "run")
    for png in ("loss.png", "lr.png", "reconstructions.png", "samples.png"):
        assert (run.path / png).read_bytes()[:8] == PNG
    for row in rows(run.path / "metrics.csv"):
        for part in ("train", "val"):
            bce, kl = float(row[f"{part}_bce"]), float(row[f"{part}_kl"])
            assert bce > 0 and kl > 0
            assert float(row[f"{part}_loss"]) == pytest.approx(bce + 0.5 * kl, rel=1e-5)
    if split[2]:
        assert run.summary["test_loss"] == pytest.approx(run.summary["test_bce"] + 0.5 * run.summary["test_kl"])
    else:
        assert "test_loss" not in run.summary
        assert (run.path / "log.txt").read_text().splitlines()[-1] == f"done: run folder {run.path}"
