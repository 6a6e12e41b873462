"""Merge ops: element-wise sum and product of inputs, and concatenation along a dim."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from typing import ClassVar

from ..arith import Shape, dim_sum, format_shape
from .base import ANY, FROM, Args, Layer, ShapeError, batch_dim, check_dim, count, register


def listing(shapes: Sequence[Shape]) -> str:
    return ", ".join(format_shape(s) for s in shapes)


def mismatch_hint(axis: int, rank: int) -> str | None:
    """How to reconcile inputs that differ in one dim, where the layout makes it clear."""
    if rank == 3 and axis == 0:
        return "the channel counts differ: add a 1×1 conv2d projection on the shortcut"
    if rank == 3:
        return "the spatial sizes differ: give the shortcut the same stride (a strided 1×1 conv2d)"
    if rank == 1:
        return "the features differ: project one input with `linear`"
    return None


class ElementwiseMerge(Layer):
    """What add and multiply share: one broadcast shape rule, one FLOP per output element and input joined."""

    family = "merge"
    main_arg = FROM
    arity = (2, None)
    combine: ClassVar[Callable]

    def infer(self, a, shapes):
        if len({len(s) for s in shapes}) > 1:
            raise ShapeError(f"{self.op} needs inputs of one rank, got {listing(shapes)}",
                             hint="`reshape` the lower-rank input with dims of 1 (e.g. [C, 1, 1]): "
                                  "ranks are not padded, as the batch dim comes first")
        out = []
        for axis, dims in enumerate(zip(*shapes, strict=True)):
            sizes = list(dict.fromkeys(d for d in dims if d != 1))
            if len(sizes) > 1:
                raise ShapeError(f"{self.op} needs equal shapes (a dim of 1 stretches), got "
                                 f"{listing(shapes)}: dim {axis} is {' vs '.join(map(str, sizes))}",
                                 hint=mismatch_hint(axis, len(shapes[0])))
            out.append(sizes[0] if sizes else 1)
        return tuple(out)

    def flops(self, a, shapes, out):
        return count(out) * (len(shapes) - 1)

    def forward(self, m, a, xs):
        return functools.reduce(self.combine, xs)


@register
class Add(ElementwiseMerge):
    """Element-wise sum of the inputs (a residual connection: y = F(x) + x).

    Args: none; the inputs come from `from` (short form `- add: [a, b]`), two or more.

    Shapes: every input has the same per-sample rank; along each dim the sizes are equal,
    or 1, which stretches to the others (numpy broadcasting over per-sample dims, batch
    excluded). Ranks are not padded: reshape a lower-rank input with dims of 1. Symbolic
    dims match themselves only.

    Costs: params 0; MACs 0; FLOPs = output elements · (inputs - 1).

    Example: `- add: [conv2, shortcut]`
    """

    op = "add"
    dtypes = ANY
    combine = operator.add


@register
class Multiply(ElementwiseMerge):
    """Element-wise product of the inputs (a gate, e.g. squeeze-and-excitation: y = x·s).

    Args: none; the inputs come from `from` (short form `- multiply: [a, b]`), two or more.

    Shapes: every input has the same per-sample rank; along each dim the sizes are equal,
    or 1, which stretches to the others (numpy broadcasting over per-sample dims, batch
    excluded): (C, H, W) · (C, 1, 1) -> (C, H, W). Ranks are not padded: reshape a
    lower-rank input with dims of 1. Symbolic dims match themselves only.

    Costs: params 0; MACs 0; FLOPs = output elements · (inputs - 1).

    Example: `- multiply: [features, gate]`
    """

    op = "multiply"
    dtypes = ANY
    combine = operator.mul


def _concat_hint(shapes, dim: int, differ: list[int]) -> str:
    """Concat's inputs disagree outside `dim`: a size lost to unpadded windows, or the wrong dim."""
    known = [axis for axis in differ if all(isinstance(s[axis], int) for s in shapes)]
    gaps = {max(s[axis] for s in shapes) - min(s[axis] for s in shapes) for axis in known}
    smallest = min((s[axis] for s in shapes for axis in known), default=0)
    if len(differ) > 1 and len(gaps) == 1 and 0 < next(iter(gaps)) <= min(8, smallest // 4):
        gap = next(iter(gaps))
        return (f"the spatial sizes differ by {gap}: a conv or pool without padding shrinks its input by "
                f"kernel_size - 1; pad it (`padding: {gap // 2 or 1}`, or `same`), or crop the larger input")
    if len(differ) == 1 and len({s[dim] for s in shapes}) == 1:
        return f"concatenate along dim {differ[0]} (`concat: {{dim: {differ[0]}}}`), or resize the inputs"
    return "resize the inputs to one size (pool, upsample, crop)"


class ConcatArgs(Args):
    dim: int = 0


@register
class Concat(Layer):
    """Concatenate the inputs along one dim (channels by default, as DenseNet and U-Net do).

    Args:
        dim: the per-sample dim joined along (batch excluded; 0 is the channels of an image,
            the tokens of a sequence [T, D]; negative counts from the end). The inputs come
            from `from` (short form `- concat: [a, b]`), two or more.

    Shapes: inputs of one rank, equal in every dim but `dim`, which sums:
    (C1, H, W), (C2, H, W) -> (C1 + C2, H, W). A symbolic dim gives an expression (`T+1`).

    Costs: none (a copy).

    Example: `- concat: [up, skip]` or `- concat: {dim: -1}` with `from: [a, b]`
    """

    op = "concat"
    dtypes = ANY
    family = "merge"
    Args = ConcatArgs
    main_arg = FROM
    arity = (2, None)

    def infer(self, a, shapes):
        if len({len(s) for s in shapes}) > 1:
            raise ShapeError(f"concat needs inputs of one rank, got {listing(shapes)}")
        dim = check_dim("concat", a.dim, shapes[0])
        differ = [axis for axis, dims in enumerate(zip(*shapes, strict=True)) if axis != dim and len(set(dims)) > 1]
        if differ:
            raise ShapeError(f"concat along dim {a.dim} needs the other dims equal, got {listing(shapes)}: "
                             f"dim{'s' if len(differ) > 1 else ''} {', '.join(map(str, differ))} differ"
                             f"{'' if len(differ) > 1 else 's'}", hint=_concat_hint(shapes, dim, differ))
        joined = dim_sum([s[dim] for s in shapes])
        return (*shapes[0][:dim], joined, *shapes[0][dim + 1:])

    def label(self, a):
        return f"concat dim={a.dim}"

    def forward(self, m, a, xs):
        import torch

        return torch.cat(xs, dim=batch_dim(a.dim))
