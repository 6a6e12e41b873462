"""Reshaping ops: flatten, reshape, permute, select and mean over per-sample dims (batch excluded)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..arith import dim_product, format_shape, is_known, numel
from .base import ANY, GLOBAL, Args, Layer, ShapeError, batch_dim, check_dim, count, register


class FlattenArgs(Args):
    start_dim: int = 0
    end_dim: int = -1


@register
class Flatten(Layer):
    """Merge the per-sample dims start_dim..end_dim (inclusive) into one.

    Args:
        start_dim: the first per-sample dim merged (batch excluded: 0 is the first dim after it).
        end_dim: the last dim merged; negative counts from the end.

    Shapes: (C, H, W) -> (C·H·W) by default; (C, H, W) -> (C, H·W) with `start_dim: 1`. A
    merged symbolic dim gives an expression (`T*16`).

    Costs: none (a view). Receptive field: global when two or more dims merge (what follows
    sees the whole input), else kept.

    Example: `- flatten` or `- flatten: 1` or `- flatten: {start_dim: 1, end_dim: 2}`
    """

    op = "flatten"
    dtypes = ANY
    family = "reshape"
    Args = FlattenArgs
    main_arg = "start_dim"

    def span(self, a, shape) -> tuple[int, int]:
        if not shape:
            raise ShapeError("flatten needs at least one dim, got a scalar")
        start = check_dim("flatten", a.start_dim, shape, "start_dim")
        end = check_dim("flatten", a.end_dim, shape, "end_dim")
        if start > end:
            raise ShapeError(f"flatten start_dim {a.start_dim} comes after end_dim {a.end_dim} in the "
                             f"input {format_shape(shape)}", arg="start_dim")
        return start, end

    def infer(self, a, shapes):
        (shape,) = shapes
        start, end = self.span(a, shape)
        return (*shape[:start], dim_product(shape[start:end + 1]), *shape[end + 1:])

    def rf(self, a, shapes):
        start, end = self.span(a, shapes[0])
        return GLOBAL if end > start else None

    def label(self, a):
        if (a.start_dim, a.end_dim) == (0, -1):
            return "flatten"
        return f"flatten {a.start_dim}..{a.end_dim}"

    def forward(self, m, a, xs):
        import torch

        return torch.flatten(xs[0], batch_dim(a.start_dim), batch_dim(a.end_dim))


class ReshapeArgs(Args):
    shape: list[int]


@register
class Reshape(Layer):
    """Give the per-sample elements a new shape (batch excluded), as torch's `reshape`.

    Args:
        shape: the per-sample target shape; one dim may be -1, inferred from the element count.

    Shapes: (*) -> shape, with as many elements. An input with symbolic dims needs the -1,
    which takes them: (T, 64) with `shape: [-1, 8, 8]` -> (T, 8, 8).

    Costs: none (a view when the memory allows, else a copy). Receptive field: global when
    the output has fewer dims than the input (merged axes), else kept.

    Example: `- reshape: [16, 7, 7]` or `- reshape: [-1, 8, 8]`
    """

    op = "reshape"
    dtypes = ANY
    family = "reshape"
    Args = ReshapeArgs
    main_arg = "shape"

    def infer(self, a, shapes):
        (shape,) = shapes
        target = a.shape
        if any(d < 1 and d != -1 for d in target) or target.count(-1) > 1:
            raise ShapeError(f"reshape dims must be positive, with at most one -1; got {target}", arg="shape")
        symbolic = [d for d in shape if not is_known(d)]
        have = numel([d for d in shape if is_known(d)])
        need = numel([d for d in target if d != -1])
        if -1 not in target and symbolic:
            raise ShapeError(f"reshape cannot check the element count of {format_shape(shape)}: "
                             f"`{symbolic[0]}` is symbolic", arg="shape",
                             hint="write -1 for the target dim that takes the symbolic dims")
        fits = have % need == 0 if -1 in target else have == need
        if not fits:
            needs = f"a multiple of {need}" if -1 in target else need
            raise ShapeError(f"reshape to {format_shape(target)} needs {needs} elements, but the input "
                             f"{format_shape(shape)} has {dim_product(shape)}", arg="shape",
                             hint="the shape is per sample: leave the batch dim out")
        fill = dim_product([*symbolic, have // need])
        return tuple(fill if d == -1 else d for d in target)

    def rf(self, a, shapes):
        return GLOBAL if len(a.shape) < len(shapes[0]) else None

    def label(self, a):
        return f"reshape {format_shape(a.shape)}"

    def forward(self, m, a, xs):
        (x,) = xs
        return x.reshape(x.shape[0], *a.shape)


class PermuteArgs(Args):
    dims: list[int]


@register
class Permute(Layer):
    """Reorder the per-sample dims (batch excluded, it stays first).

    Args:
        dims: a permutation of the per-sample dims: output dim i is input dim dims[i]
            (negative counts from the end).

    Shapes: (C, H, W) -> (H, W, C) with `dims: [1, 2, 0]`; symbolic dims move with the others.

    Costs: none (a view).

    Example: `- permute: [1, 0]` (a sequence [C, T] to [T, C])
    """

    op = "permute"
    dtypes = ANY
    family = "reshape"
    Args = PermuteArgs
    main_arg = "dims"

    def infer(self, a, shapes):
        (shape,) = shapes
        rank = len(shape)
        order = [d % rank for d in a.dims if -rank <= d < rank] if rank else []
        if len(a.dims) != rank or sorted(order) != list(range(rank)):
            raise ShapeError(f"permute dims {a.dims} are not a permutation of the {rank} dims of the input "
                             f"{format_shape(shape)}", arg="dims",
                             hint=f"list each of {list(range(rank))} once; the batch dim is not counted")
        return tuple(shape[d] for d in order)

    def label(self, a):
        return f"permute {','.join(map(str, a.dims))}"

    def forward(self, m, a, xs):
        return xs[0].permute(0, *(batch_dim(d) for d in a.dims))


class SelectArgs(Args):
    dim: int = 0
    index: int


@register
class Select(Layer):
    """Take one index along a dim, dropping that dim (a ViT's class token: index 0 of the tokens).

    Args:
        index: the position taken; negative counts from the end. Checked when the dim is known.
        dim: the per-sample dim indexed (batch excluded).

    Shapes: (T, D) -> (D) with `dim: 0`; other dims, symbolic ones included, pass through.

    Costs: none (a view).

    Example: `- select: 0` or `- select: {dim: 0, index: -1}`
    """

    op = "select"
    dtypes = ANY
    family = "reshape"
    Args = SelectArgs
    main_arg = "index"

    def infer(self, a, shapes):
        (shape,) = shapes
        dim = check_dim("select", a.dim, shape)
        size = shape[dim]
        if is_known(size) and not -size <= a.index < size:
            raise ShapeError(f"select index {a.index} is out of range for dim {a.dim} of size {size} "
                             f"(input {format_shape(shape)})", arg="index",
                             hint=f"indices run from {-size} to {size - 1}")
        return (*shape[:dim], *shape[dim + 1:])

    def label(self, a):
        return f"select dim={a.dim} index={a.index}"

    def forward(self, m, a, xs):
        return xs[0].select(batch_dim(a.dim), a.index)


class MeanArgs(Args):
    dim: int | Annotated[list[int], Field(min_length=1)]
    keepdim: bool = False


@register
class Mean(Layer):
    """Average over one or more per-sample dims (token pooling, global average pooling).

    Args:
        dim: the per-sample dim, or list of dims, averaged over (batch excluded).
        keepdim: keep each averaged dim with size 1 instead of dropping it.

    Shapes: (T, D) -> (D) with `dim: 0`; (C, H, W) -> (C) with `dim: [1, 2]`, or (C, 1, 1)
    with `keepdim: true`.

    Costs: params 0; MACs 0; FLOPs = 1 per input element (the adds; the division per output is
    not counted). Receptive field: global when a spatial dim (any but dim 0 of [C, *spatial])
    is averaged, else kept.

    Example: `- mean: 0` or `- mean: {dim: [1, 2], keepdim: true}`
    """

    op = "mean"
    family = "reshape"
    Args = MeanArgs
    main_arg = "dim"

    @staticmethod
    def dims(a) -> list[int]:
        return [a.dim] if isinstance(a.dim, int) else a.dim

    def infer(self, a, shapes):
        (shape,) = shapes
        dims = [check_dim("mean", d, shape) for d in self.dims(a)]
        if len(set(dims)) < len(dims):
            raise ShapeError(f"mean dims {a.dim} name a dim twice (input {format_shape(shape)})", arg="dim")
        if a.keepdim:
            return tuple(1 if i in dims else d for i, d in enumerate(shape))
        return tuple(d for i, d in enumerate(shape) if i not in dims)

    def flops(self, a, shapes, out):
        return count(shapes[0])

    def rf(self, a, shapes):
        dims = [d % len(shapes[0]) for d in self.dims(a)]
        return GLOBAL if any(dims) else None

    def label(self, a):
        return f"mean dim={','.join(map(str, self.dims(a)))}"

    def forward(self, m, a, xs):
        dims = [batch_dim(d) for d in self.dims(a)]
        return xs[0].mean(dim=dims, keepdim=a.keepdim)
