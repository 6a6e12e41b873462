"""The one place a catalog `Call` becomes torch state (imported by build, codegen and tests)."""

from __future__ import annotations

import torch

from .layers.base import Call, TensorCall


def instantiate(call: Call, device=None, dtype=None) -> torch.nn.Module | torch.nn.Parameter:
    """`torch.nn.<cls>(*args, **kwargs)`; `cls` always comes from the catalog, never from a spec.

    `Call.parameter(shape, fill)` is a bare learnable tensor of that shape (a class token, a position
    embedding, a layer scale), every element `fill` (zero by default). `Call.container(members)` is a plain
    `nn.Module` given its members in order: modules, parameters, buffers (floating-point ones in `dtype`,
    integer ones as computed) and plain attributes.
    """
    if call.is_parameter:
        return torch.nn.Parameter(torch.full(call.shape, call.fill, device=device, dtype=dtype))
    if call.is_container:
        module = torch.nn.Module()
        for name, member in call.kwargs.items():
            if not isinstance(member, Call):
                setattr(module, name, member)
            elif member.is_buffer:
                value = tensor(member.args[0], device)
                module.register_buffer(name, value.to(dtype) if dtype is not None and value.is_floating_point()
                                       else value)
            else:
                setattr(module, name, instantiate(member, device, dtype))
        return module
    with torch.device(device or "cpu"):  # parameter-free modules take no device argument
        module = getattr(torch.nn, call.cls)(*call.args, **call.kwargs)
    return module.to(dtype) if dtype is not None else module


def tensor(value: TensorCall, device=None) -> torch.Tensor:
    """`torch.<fn>(*args, **kwargs)`, its TensorCall arguments computed first; `fn` comes from the catalog."""
    def computed(x):
        return tensor(x, device) if isinstance(x, TensorCall) else x

    with torch.device(device or "cpu"):
        return getattr(torch, value.fn)(*map(computed, value.args),
                                        **{k: computed(v) for k, v in value.kwargs.items()})
