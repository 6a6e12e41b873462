"""What the compiler tests share: the shipped specs, inputs that fit a spec, and the shapes a module returns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import netspec
from netspec.analysis import Analysis

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
BIG = 30_000_000  # parameters above which a shipped spec runs on the meta device
DIM = 5  # the size symbolic dims are bound to when a module runs


def load_valid(path: Path) -> tuple[netspec.Spec, Analysis]:
    """The spec and its analysis with symbolic dims bound; skipped when the spec is invalid
    (tests/test_specs.py reports that)."""
    try:
        spec = netspec.load(path)
        return spec, netspec.analyze(spec, symbolic_dims(spec))
    except (netspec.SpecError, netspec.SpecErrors) as exc:
        pytest.skip(f"{path.name} is invalid: {exc}")


def symbolic_dims(spec: netspec.Spec) -> dict[str, int]:
    return {d: DIM for value in spec.inputs.values() for d in value.shape if isinstance(d, str)}


def inputs(spec: netspec.Spec, result: Analysis, batch: int = 2, device="cpu") -> dict[str, torch.Tensor]:
    """A batch for each input: normal floats, or zeros for integer ids (a valid id of any table)."""
    out = {}
    for name, shape in result.inputs.items():
        dtype = getattr(torch, spec.inputs[name].dtype)
        size = (batch, *shape)
        out[name] = torch.randn(size, dtype=dtype, device=device) if dtype.is_floating_point \
            else torch.zeros(size, dtype=dtype, device=device)
    return out


def shapes(output) -> dict[str, tuple]:
    """Per-sample shapes of a module's output, by output name (a single tensor is `output`)."""
    outputs = output if isinstance(output, dict) else {"output": output}
    return {name: tuple(t.shape[1:]) for name, t in outputs.items()}


def counts(module: torch.nn.Module) -> tuple[int, int]:
    """(all parameters, trainable parameters) as torch counts them."""
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)
