"""The one place a catalog `Call` becomes torch state (imported by build, codegen and tests)."""

from __future__ import annotations

import torch

from .layers.base import Call


def instantiate(call: Call, device=None, dtype=None) -> torch.nn.Module | torch.nn.Parameter:
    """`torch.nn.<cls>(*args, **kwargs)`; `cls` always comes from the catalog, never from a spec.

    `Call.parameter(shape, fill)` is a bare learnable tensor of that shape (a class token, a position
    embedding, a layer scale), every element `fill` (zero by default).
    """
    if call.is_parameter:
        return torch.nn.Parameter(torch.full(call.shape, call.fill, device=device, dtype=dtype))
    with torch.device(device or "cpu"):  # parameter-free modules take no device argument
        module = getattr(torch.nn, call.cls)(*call.args, **call.kwargs)
    return module.to(dtype) if dtype is not None else module
