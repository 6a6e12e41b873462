"""One harness for every layer entry: the shape rule and parameter count equal torch's."""

from __future__ import annotations

import signal
from contextlib import contextmanager

import torch
from pydantic import ValidationError

from netspec.arith import numel
from netspec.layers import REGISTRY, ShapeError, SymbolicSize
from netspec.torch_backend import instantiate

BATCH = 2


def sample(shape, dtype=torch.float32, high=None):
    """A batched random input for a per-sample shape."""
    if dtype.is_floating_point:
        return torch.randn(BATCH, *shape, dtype=dtype)
    return torch.randint(0, high or 2, (BATCH, *shape), dtype=dtype)


def check(op: str, args: dict, in_shapes: list[tuple], inputs=None):
    """Validate `args`, infer the output, build the torch module, run it, compare.

    Returns the entry's (output shape, params, macs) after asserting that torch
    agrees on the output shape and on sum(p.numel()).
    """
    entry = REGISTRY[op]
    a = entry.Args.model_validate(args)
    shapes = [tuple(s) for s in in_shapes]
    out = entry.infer(a, shapes)
    params = entry.params(a, shapes)
    call = entry.module(a, shapes)
    module = instantiate(call) if call is not None else None
    if isinstance(module, torch.nn.Parameter):
        real_params = module.numel()
    else:
        real_params = sum(p.numel() for p in module.parameters()) if module is not None else 0
    assert params == real_params, f"{op} {args} {shapes}: params {params} != torch {real_params}"
    xs = inputs if inputs is not None else [sample(s) for s in shapes]
    if isinstance(module, torch.nn.Module):
        module.eval()
    with torch.no_grad():
        y = entry.forward(module, a, xs)
    assert tuple(y.shape) == (BATCH, *out), f"{op} {args} {shapes}: inferred {out}, torch {tuple(y.shape[1:])}"
    macs = entry.macs(a, shapes, out) if numel(out) is not None else None
    return out, params, macs


def check_parts(op: str, args: dict, shape: tuple, expected: list) -> list[tuple]:
    """An op giving several tensors (`chunk`, `split`): each part's inferred shape and forward on one random batch
    against `expected` (torch's tensors computed from that batch by the caller's function); returns the shapes."""
    entry = REGISTRY[op]
    a = entry.Args.model_validate(args)
    x = sample(shape)
    want = expected(x)
    assert entry.parts(a) == len(want), f"{op} {args} {shape}: {entry.parts(a)} parts, torch {len(want)}"
    shapes = []
    for i, tensor in enumerate(want):
        part = entry.part(a, i)
        out = entry.infer(part, [shape])
        assert (BATCH, *out) == tuple(tensor.shape), f"{op} {args} {shape} part {i}: {out}, torch {tensor.shape}"
        assert entry.params(part, [shape]) == 0 and entry.macs(part, [shape], out) == 0
        assert torch.equal(entry.forward(None, part, [x]), tensor)
        shapes.append(out)
    return shapes


def entry_and_args(op: str, args: dict):
    """The entry of `op` and its validated argument model."""
    entry = REGISTRY[op]
    return entry, entry.Args.model_validate(args)


def infer(op: str, args: dict, *shapes: tuple):
    """The entry's output shape for these per-sample input shapes."""
    entry, a = entry_and_args(op, args)
    return entry.infer(a, list(shapes))


def refuses_or_counts(op: str, args: dict, shapes: list[tuple], symbol: str) -> None:
    """Random arguments: the entry refuses them (ValidationError or ShapeError) or counts integer costs;
    a cost may be unknown only when a shape holds the symbolic dim `symbol`."""
    try:
        entry, a = entry_and_args(op, args)
        out = entry.infer(a, shapes)
    except (ValidationError, ShapeError):
        return
    assert isinstance(entry.params(a, shapes), int)
    try:
        assert isinstance(entry.macs(a, shapes, out), int)
    except SymbolicSize:
        assert any(symbol in s for s in shapes)


def rejects(op: str, args: dict, shape: tuple, message: str, arg: str | None, hint: str | None) -> None:
    """The entry refuses `shape` with a ShapeError saying `message`, blaming `arg`, hinting `hint`."""
    try:
        infer(op, args, shape)
    except ShapeError as err:
        assert message in err.message, err.message
        assert err.arg == arg
        assert hint is None or hint in err.hint, err.hint
    else:
        raise AssertionError(f"{op} {args} accepted {shape}")


class Traced(torch.nn.Module):
    """A module calling one catalog entry's forward, for torch.fx to trace."""

    def __init__(self, entry, a, state):
        super().__init__()
        self.entry, self.a, self.state = entry, a, state

    def forward(self, x):
        return self.entry.forward(self.state, self.a, [x])


@contextmanager
def within(seconds: float):
    """Fail, rather than hang, when the block runs longer than `seconds` (SIGALRM; main thread only)."""
    def expire(signum, frame):
        raise TimeoutError(f"took longer than {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
