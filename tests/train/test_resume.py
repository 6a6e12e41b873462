"""Resuming a run (`netspec train SPEC --resume DIR`): exactly where it stopped, and only with the same spec."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import netspec
from netspec.cli import main
from netspec.train.run import RunFolderError
from tests.train.harness import rows, same, weights, write_spec

# many small batches (720 an epoch), dropout and noise: an epoch lasts long enough to be killed in, and the
# resumed run must restore every generator to match
KILLED = {"data": {"dataset": "digits", "augment": [{"gaussian_noise": 0.05}]}, "optimizer": {"adam": 1.0e-3},
          "schedule": {"cosine": {}, "warmup_epochs": 1}, "epochs": 2, "batch_size": 2, "deterministic": True}
LAYERS = [{"linear": 32, "name": "fc1"}, "relu", {"dropout": 0.2}, {"linear": 10, "name": "fc2"}]


def states(path) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint but the early-stopping copy of the best weights, by a dotted key."""
    state = torch.load(path, weights_only=True)
    out = {}

    def walk(prefix, value):
        if isinstance(value, torch.Tensor):
            out[prefix] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)

    walk("", {k: state[k] for k in ("model", "optimizer", "schedule", "stopper", "rng")})
    return out


def test_a_killed_run_resumes_bit_identically(tmp_path):
    spec = write_spec(tmp_path, KILLED, layers=LAYERS, input=[64])
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one intra-op thread, as this process (conftest.py)
    proc = subprocess.Popen([sys.executable, "-m", "netspec", "train", str(spec), "--out", str(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (killed / "last.pt").exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint after 60 s"
            time.sleep(0.01)
        time.sleep(float(rows(killed / "metrics.csv")[0]["seconds"]) / 2)  # half-way through epoch 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    epoch = torch.load(killed / "last.pt", weights_only=True)["epoch"]
    assert epoch == 1 and len(rows(killed / "metrics.csv")) in (1, 2)

    assert main(["train", str(spec), "--resume", str(killed)]) == 0
    assert main(["train", str(spec), "--out", str(tmp_path / "whole")]) == 0
    resumed, whole = states(killed / "last.pt"), states(tmp_path / "whole" / "last.pt")
    assert same(resumed, whole)
    assert same(weights(killed / "best.pt"), weights(tmp_path / "whole" / "best.pt"))
    assert (killed / "steps.csv").read_text() == (tmp_path / "whole" / "steps.csv").read_text()
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in rows(killed / "metrics.csv")]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in rows(tmp_path / "whole" / "metrics.csv")]
    assert "resumed after epoch 1" in (killed / "log.txt").read_text()


SHORT = {"epochs": 2, "batch_size": 10}


def test_changing_epochs_continues_like_one_longer_run(tmp_path):
    spec = write_spec(tmp_path, SHORT)
    netspec.train(spec, out=tmp_path / "run")
    run = netspec.train(spec, resume=tmp_path / "run", epochs=3)
    whole = netspec.train(spec, out=tmp_path / "whole", epochs=3)
    assert run.summary["epochs_run"] == 3 and len(rows(run.path / "metrics.csv")) == 3
    assert same(weights(run.path / "last.pt"), weights(whole.path / "last.pt"))
    assert "epochs: 3" in (run.path / "spec.yaml").read_text()


def test_a_changed_spec_is_refused_with_a_diff(tmp_path, capsys):
    spec = write_spec(tmp_path, SHORT)
    netspec.train(spec, out=tmp_path / "run")
    before = (tmp_path / "run" / "last.pt").read_bytes()
    assert main(["train", str(spec), "--resume", str(tmp_path / "run"), "--lr", "0.5", "--epochs", "3"]) == 1
    err = capsys.readouterr().err
    assert "error: the spec differs from the run's; only train.epochs, train.early_stopping.patience may change" \
        in err
    assert "+++ the spec now" in err and any(line.startswith("+") and "lr: 0.5" in line for line in err.splitlines())
    assert (tmp_path / "run" / "last.pt").read_bytes() == before


def test_a_schedule_spanning_the_run_refuses_new_epochs(tmp_path):
    spec = write_spec(tmp_path, {**SHORT, "schedule": {"one_cycle": {}}})
    netspec.train(spec, out=tmp_path / "run")
    with pytest.raises(RunFolderError, match="`one_cycle` schedule spans the run \\(8 steps\\), so `epochs` cannot "
                                             "change"):
        netspec.train(spec, resume=tmp_path / "run", epochs=3)
    run = netspec.train(spec, resume=tmp_path / "run")  # the same epochs: nothing left to do
    assert run.summary["epochs_run"] == 2


def test_a_run_that_stopped_early_stays_stopped_unless_patience_grows(tmp_path):
    spec = write_spec(tmp_path, {**SHORT, "epochs": 8, "early_stopping": {"patience": 1, "min_delta": 100}})
    assert netspec.train(spec, out=tmp_path / "run").summary["epochs_run"] == 2
    assert netspec.train(spec, resume=tmp_path / "run").summary["epochs_run"] == 2
    run = netspec.train(spec, resume=tmp_path / "run", overrides={"early_stopping.patience": 3})
    assert run.summary["epochs_run"] == 4 and len(rows(run.path / "metrics.csv")) == 4
