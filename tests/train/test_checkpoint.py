"""Checkpoints (netspec/train/checkpoint.py): atomic writes, weights_only reads, clear errors for bad files."""

import io
import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import netspec
from netspec.cli import main
from netspec.train import checkpoint
from netspec.train.checkpoint import FORMAT, CheckpointError
from tests.train.harness import write_spec

TRAIN = {"epochs": 1, "batch_size": 10}


def state(value: float) -> dict:
    return {"model": {"w": torch.full((3,), value)}, "optimizer": {}, "schedule": None, "scaler": {}, "stopper": {},
            "epoch": 1, "step": 4, "train": {"epochs": 3}}


def test_round_trip_restores_every_generator(tmp_path):
    torch.manual_seed(1)
    random.seed(1)
    np.random.seed(1)
    random.gauss(0, 1)  # leaves a cached second normal in Python's generator
    checkpoint.save(tmp_path / "c.pt", state(1.0))
    draws = (random.gauss(0, 1), random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    loaded = checkpoint.load(tmp_path / "c.pt")
    assert torch.equal(loaded["model"]["w"], torch.ones(3)) and loaded["format"] == FORMAT
    checkpoint.set_rng_state(loaded["rng"])
    again = (random.gauss(0, 1), random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    assert draws[:4] == again[:4] and torch.equal(draws[4], again[4])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_generators_restore_from_a_checkpoint_read_onto_the_gpu(tmp_path):
    """A run on the GPU resumes with `load(map_location=device)`, which puts the generator states there too."""
    checkpoint.save(tmp_path / "c.pt", state(1.0))
    draws = (np.random.rand(), torch.rand(3), torch.rand(3, device="cuda"))
    checkpoint.set_rng_state(checkpoint.load(tmp_path / "c.pt", map_location="cuda")["rng"])
    again = (np.random.rand(), torch.rand(3), torch.rand(3, device="cuda"))
    assert draws[0] == again[0] and torch.equal(draws[1], again[1]) and torch.equal(draws[2], again[2])


def test_a_failing_save_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save(path, state(1.0))

    def half_then_fail(obj, f, *args, **kw):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, state(2.0))
    monkeypatch.undo()

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)  # the write to disk fails after the bytes went to the temporary file
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, state(3.0))
    monkeypatch.undo()
    assert torch.equal(checkpoint.load(path)["model"]["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary files left


def test_load_reads_weights_only(tmp_path, monkeypatch):
    checkpoint.save(tmp_path / "c.pt", state(1.0))
    seen = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    checkpoint.load(tmp_path / "c.pt")
    assert seen and all(kw.get("weights_only") is True for kw in seen)


class Payload:
    """A pickle that runs code when loaded without weights_only: it creates a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def tampered(tmp_path) -> dict[str, bytes]:
    """Bad checkpoint files by what is wrong with them."""
    good = io.BytesIO()
    torch.save({"format": FORMAT, **state(1.0), "rng": {}}, good)
    evil = io.BytesIO()
    torch.save({"format": FORMAT, **state(1.0), "rng": {}, "model": {"w": Payload(tmp_path / "pwned")}}, evil)
    other = io.BytesIO()
    torch.save({"w": torch.ones(2)}, other)
    partial = io.BytesIO()
    torch.save({"format": FORMAT, "model": {}}, partial)
    return {
        "truncated": good.getvalue()[:len(good.getvalue()) // 2],
        "random bytes": np.random.default_rng(0).bytes(4096),
        "plain pickle": pickle.dumps(Payload(tmp_path / "pwned"), protocol=2),
        "custom class": evil.getvalue(),
        "empty": b"",
        "foreign": other.getvalue(),
        "incomplete": partial.getvalue(),
    }


MESSAGES = {"foreign": "is not a netspec checkpoint", "incomplete": "lacks optimizer, schedule"}


@pytest.mark.parametrize("kind", ["truncated", "random bytes", "plain pickle", "custom class", "empty", "foreign",
                                  "incomplete"])
def test_bad_files_are_checkpoint_errors(tmp_path, kind):
    path = tmp_path / "last.pt"
    path.write_bytes(tampered(tmp_path)[kind])
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert MESSAGES.get(kind, "is damaged or not a checkpoint") in message
    assert not (tmp_path / "pwned").exists()


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*last.pt"):
        checkpoint.load(tmp_path / "last.pt")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A spec and a one-epoch run of it."""
    tmp = tmp_path_factory.mktemp("ckpt")
    spec = write_spec(tmp, TRAIN)
    netspec.train(spec, out=tmp / "run")
    return spec, tmp / "run"


@pytest.mark.parametrize("kind", ["truncated", "custom class", "foreign"])
def test_resume_from_a_bad_checkpoint_exits_1(tmp_path, finished_run, capsys, kind):
    spec, run = finished_run
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "spec.yaml").write_bytes((run / "spec.yaml").read_bytes())
    (folder / "last.pt").write_bytes(tampered(tmp_path)[kind])
    assert main(["train", str(spec), "--resume", str(folder)]) == 1
    err = capsys.readouterr().err
    assert f"netspec: error: {folder / 'last.pt'}" in err and "Traceback" not in err
    assert MESSAGES.get(kind, "is damaged or not a checkpoint") in err
    assert not (tmp_path / "pwned").exists()


def test_resume_from_another_networks_checkpoint_exits_1(tmp_path, finished_run, capsys):
    spec, run = finished_run
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "spec.yaml").write_bytes((run / "spec.yaml").read_bytes())
    saved = torch.load(run / "last.pt", weights_only=True)
    saved["model"] = {"fc1.weight": torch.zeros(2, 2)}
    torch.save(saved, folder / "last.pt")
    assert main(["train", str(spec), "--resume", str(folder)]) == 1
    err = capsys.readouterr().err
    assert f"netspec: error: {folder / 'last.pt'} does not fit this run" in err and "Traceback" not in err
