"""Training on several processes (netspec/train/distributed.py): 2 processes on the CPU with gloo, started by
`torchrun --standalone --nproc_per_node 2 -m netspec train`, against one process at the same batch per step.

Tolerance: one process at batch 2b and two at batch b sum the same per-sample gradients in another order, so
they differ by float32 rounding only; over the 9 steps here the losses and metrics must agree to 1e-5
relative and the weights to 1e-5 (observed: the CSV files identical to the 6 digits they keep, the weights
within 6e-8)."""

import os
import subprocess
import sys

import pytest
import torch

import netspec
from netspec.train.data import epoch_order
from netspec.train.distributed import Follower, World
from tests.train.harness import rows, same, weights, write_spec

# 51 samples: 41 train, 5 val, 5 test. 2 processes at batch 5 read 10 samples a step; the epoch's last step
# holds one sample, so the second process trains on a padded sample of weight 0 there. Two micro-batches a step;
# fc1 thaws at epoch 2, so DDP is made anew there (and, in the resumed run, after resuming).
BASE = {"data": {"dataset": {"synthetic": {"num_samples": 51, "classes": 4}}}, "epochs": 3, "batch_size": 5,
        "accumulate_grad_batches": 2, "optimizer": {"adam": 1.0e-2}}
TRAIN = {**BASE, "freeze": ["fc1"], "unfreeze": {"at_epoch": 2, "layers": ["fc1"]}}
TIMEOUT = 240  # seconds for one torchrun: a hang (a process waiting for another) fails instead of blocking
RTOL = 1e-5


def torchrun(*args: str, cwd) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 -m netspec ARGS`, one torch thread per process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "netspec", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def numbers(path, drop=("seconds",)) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in r.items() if k not in drop} for r in rows(path)]


def close(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b) and all(x.keys() == y.keys() for x, y in zip(a, b))
    for x, y in zip(a, b):
        for k in x:
            assert x[k] == pytest.approx(y[k], rel=RTOL, abs=1e-6), (k, x, y)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """A 3-epoch run on 2 processes: (the spec, its run folder, torchrun's stdout)."""
    tmp = tmp_path_factory.mktemp("distributed")
    spec = write_spec(tmp, TRAIN)
    out = ok(torchrun("train", str(spec), "--out", "whole", cwd=tmp))
    return spec, tmp / "whole", out


# --- sharding, in one process --------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [41, 40, 7, 1])
def test_shards_together_hold_the_one_process_batches(n):
    order = epoch_order(n, 0, 3)
    single = [order[i:i + 10] for i in range(0, n, 10)]
    shards = [World(rank, 2).shard(order, 5) for rank in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(single)  # every process takes part in every step
    for i, batch in enumerate(single):
        (a, na, ma), (b, nb, mb) = shards[0][i], shards[1][i]
        assert na + nb == ma == mb == len(batch)
        assert sorted(torch.cat([a[:na], b[:nb]]).tolist()) == sorted(batch.tolist())
        assert len(a) == max(na, 1) and len(b) == max(nb, 1)  # a process without samples gets one padded
    # as DistributedSampler: process r reads positions r, r + 2, ... of the order
    assert torch.equal(torch.cat([order[:0], *(a for a, k, _ in shards[1] if k)]), order[1::2])


def test_one_process_is_the_default(monkeypatch):
    for key, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "localhost"}.items():
        monkeypatch.setenv(key, value)
    assert World.from_env() == World()
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert World.from_env() == World(0, 2, 0)
    monkeypatch.delenv("MASTER_ADDR")
    assert World.from_env() == World()


def test_each_process_draws_its_own_numbers_each_epoch():
    def draws(rank, epoch):
        World(rank, 2).seed_epoch(7, epoch)
        return torch.rand(4)

    assert torch.equal(draws(1, 3), draws(1, 3))  # a resumed epoch draws what it drew the first time
    assert not torch.equal(draws(0, 3), draws(1, 3)) and not torch.equal(draws(1, 3), draws(1, 4))
    World().seed_epoch(7, 3)  # one process: its generators are left alone
    state = torch.get_rng_state()
    World().seed_epoch(7, 4)
    assert torch.equal(torch.get_rng_state(), state)


def test_a_follower_writes_nothing(tmp_path):
    follower = Follower(tmp_path, progress=False)
    follower.note("a line")
    follower.log_step({"epoch": 1, "step": 1, "loss": 1.0, "lr": 0.1})
    follower.log_epoch({"epoch": 1, "train_loss": 1.0, "lr": 0.1, "seconds": 0.1})
    follower.truncate(1, 1)
    follower.finish({}, None)
    assert list(tmp_path.iterdir()) == [] and follower.epochs and follower.steps


# --- two processes -------------------------------------------------------------------------------------------
def test_two_processes_train_like_one_at_the_same_batch_per_step(whole, tmp_path):
    spec, run, stdout = whole
    one = netspec.train(spec, out=tmp_path / "one", batch_size=10, progress=False)
    close(numbers(run / "steps.csv"), numbers(one.path / "steps.csv"))
    close(numbers(run / "metrics.csv"), numbers(one.path / "metrics.csv"))
    for key, value in weights(run / "last.pt").items():
        torch.testing.assert_close(value, weights(one.path / "last.pt")[key], rtol=RTOL, atol=1e-6)
    summary = (run / "summary.json").read_text()
    assert '"processes": 2' in summary and '"batch_per_step": 10' in summary
    assert one.summary["steps"] == 9  # 3 optimizer steps an epoch: ⌈⌈41 / 10⌉ / 2⌉


def test_rank_0_alone_prints_and_writes(whole):
    _, run, stdout = whole
    lines = stdout.splitlines()
    assert [line.split(":")[0] for line in lines if "train_loss" in line] == ["epoch 1", "epoch 2", "epoch 3"]
    assert lines.count("epoch 2: unfreezing fc1 (144 params)") == 1
    assert sum(line.startswith("done:") for line in lines) == 1
    assert "distributed: 2 processes (gloo), batch 5 each, 10 per step" in lines
    log = (run / "log.txt").read_text().splitlines()
    assert len(log) == len(set(log))  # a second writer would have appended every line twice
    assert [int(r["step"]) for r in rows(run / "steps.csv")] == list(range(1, 10))


def test_a_stopped_run_resumes_like_an_uninterrupted_one(whole):
    spec, run, _ = whole
    cwd = run.parent
    ok(torchrun("train", str(spec), "--out", "cut", "--epochs", "2", cwd=cwd))
    stdout = ok(torchrun("train", str(spec), "--resume", "cut", "--epochs", "3", cwd=cwd))
    assert "resumed after epoch 2" in stdout
    assert same(weights(cwd / "cut" / "last.pt"), weights(run / "last.pt"))
    assert numbers(cwd / "cut" / "metrics.csv") == numbers(run / "metrics.csv")
    assert (cwd / "cut" / "steps.csv").read_text() == (run / "steps.csv").read_text()


def test_a_nan_loss_stops_every_process(tmp_path):
    # SGD at lr 1e18 sends the weights to infinity within a few steps
    spec = write_spec(tmp_path, {**BASE, "optimizer": {"sgd": 1.0e+18}})
    proc = torchrun("train", str(spec), "--out", "run", cwd=tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.count("error: the loss is not finite at epoch 1, step 3") == 2  # both, at the same step
    assert (tmp_path / "run" / "log.txt").read_text().count("stopped: the loss is not finite") == 1


def test_early_stopping_stops_every_process(tmp_path):
    # no epoch improves val_loss by 10: the run stops after its second epoch, on both processes
    spec = write_spec(tmp_path, {**BASE, "epochs": 20, "early_stopping": {"patience": 1, "min_delta": 10.0}})
    stdout = ok(torchrun("train", str(spec), "--out", "run", cwd=tmp_path))
    assert "early stopping: val_loss has not improved for 1 epochs" in stdout
    assert len(rows(tmp_path / "run" / "metrics.csv")) == 2
