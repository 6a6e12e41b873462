"""Checkpoints: everything an exact resume needs, written atomically, read with `weights_only=True`.

A checkpoint is one `torch.save`d dict of tensors and plain values only (so
`torch.load(..., weights_only=True)` reads it and cannot run code): the model,
optimizer, lr schedule and grad-scaler state, the early-stopping state, the epoch
and step reached, and every random number generator (Python's, NumPy's, torch's
CPU and CUDA ones; the data order is derived from the seed and the epoch, so it
needs none). It is written to a temporary file in the same folder, fsynced and
renamed over the old one, so a crash mid-save leaves the previous checkpoint whole.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import torch

from ..files import atomic_write

FORMAT = "netspec-checkpoint/1"
KEYS = ("format", "model", "optimizer", "schedule", "scaler", "stopper", "epoch", "step", "rng", "train")


class CheckpointError(Exception):
    """A checkpoint that cannot be read: missing, truncated, tampered with, or not netspec's."""


def save(path: str | Path, state: dict[str, Any]) -> Path:
    """Write `state` (the KEYS but `format` and `rng`) with the current RNG states, atomically."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state, "rng": rng_state()}, buffer)
    return atomic_write(path, buffer.getvalue())


def load(path: str | Path, map_location="cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save`; raises CheckpointError with the path and the reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, zipfile errors...
        raise CheckpointError(f"{path} is damaged or not a checkpoint ({type(exc).__name__}: {exc})".splitlines()[0]
                              ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a netspec checkpoint (format {FORMAT} expected)")
    missing = [k for k in KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}: it is incomplete or was altered")
    return state


def rng_state() -> dict[str, Any]:
    """Every generator's state, as tensors and plain values (readable with weights_only=True)."""
    import numpy as np

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    _, python, gauss_next = random.getstate()
    return {
        "python": {"state": list(python), "gauss_next": gauss_next},
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured, wherever `load`'s map_location put its tensors (torch takes generator
    states as CPU tensors only)."""
    import numpy as np

    random.setstate((3, tuple(state["python"]["state"]), state["python"]["gauss_next"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
