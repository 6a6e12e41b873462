"""Small specs and runs for the trainer's tests: a spec written into tmp_path, a Setup, a fitted Setup."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
import yaml

import netspec
from netspec.errors import SpecError, SpecErrors
from netspec.train.config import check_train
from netspec.train.loop import Trainer
from netspec.train.session import Setup, configure

MLP = [{"linear": 16, "name": "fc1"}, "relu", {"linear": 4, "name": "fc2"}]  # no dropout, no batchnorm
DIGITS_MLP = [{"linear": 16, "name": "fc1"}, "relu", {"linear": 10, "name": "fc2"}]
# 50 samples -> 40 train (4 batches of 10), 5 val, 5 test; 4 classes
SYNTH = {"dataset": {"synthetic": {"num_samples": 50, "classes": 4}}}
PNG = b"\x89PNG\r\n\x1a\n"


def write_spec(tmp_path: Path, train: dict, layers: list | None = None, input: list | None = None,
               name: str = "tiny", **top) -> Path:
    """A spec file in tmp_path (an MLP 8-16-4 on `synthetic` data unless told) and its path."""
    train = {"data": SYNTH, **train}
    tree = {"name": name, "input": input or [8], **top, "layers": layers or MLP, "train": train}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def spec_of(tmp_path: Path, train: dict, **kw):
    return netspec.load(write_spec(tmp_path, train, **kw))


def setup(spec, out: Path, overrides: dict | None = None, resume: Path | None = None) -> Setup:
    """What `netspec.train` builds before the loop (no plots, no summary)."""
    spec, config, analysis = configure(spec, {}, None, overrides)
    check_train(config, analysis, spec)
    return Setup(spec, config, analysis, out, resume, progress=False)


def fit(spec, out: Path, **kw) -> Setup:
    """A Setup trained to its last epoch; `final` holds the last evaluation."""
    s = setup(spec, out, **kw)
    s.final = Trainer(s).fit()
    return s


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def weights(path_or_module) -> dict[str, torch.Tensor]:
    """A checkpoint's model weights, or a module's."""
    if isinstance(path_or_module, torch.nn.Module):
        return {k: v.detach().clone() for k, v in path_or_module.state_dict().items()}
    return torch.load(path_or_module, weights_only=True)["model"]


def same(a: dict, b: dict) -> bool:
    """Bit-identical state dicts."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def only_error(exc: SpecError | SpecErrors) -> SpecError:
    """The one SpecError raised, alone or in a SpecErrors."""
    errors = exc.errors if isinstance(exc, SpecErrors) else [exc]
    assert len(errors) == 1, errors
    return errors[0]
