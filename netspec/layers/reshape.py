"""Reshaping ops over per-sample dims (batch excluded): flatten, unflatten, reshape, squeeze, unsqueeze,
permute, select, mean, roll, pad, channel shuffle, and chunk and split (ops giving several tensors)."""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal

from pydantic import Field, PositiveInt, model_validator

from ..arith import dim_product, format_shape, is_known, nearest_divisors, numel, offset_dim
from .base import (
    ANY,
    GLOBAL,
    Args,
    Call,
    Layer,
    ShapeError,
    arg,
    batch_dim,
    check_dim,
    check_groups,
    count,
    known,
    register,
)


class Rearranging(Layer):
    """What the ops that move values without computing on them share: the `reshape` family, and ids as well
    as floats (`mean`, which computes, is of the family but takes floats only)."""

    family = "reshape"
    dtypes = ANY


class FlattenArgs(Args):
    start_dim: int = 0
    end_dim: int = -1


@register
class Flatten(Rearranging):
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
class Reshape(Rearranging):
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
class Permute(Rearranging):
    """Reorder the per-sample dims (batch excluded, it stays first).

    Args:
        dims: a permutation of the per-sample dims: output dim i is input dim dims[i]
            (negative counts from the end).

    Shapes: (C, H, W) -> (H, W, C) with `dims: [1, 2, 0]`; symbolic dims move with the others.

    Costs: none (a view).

    Example: `- permute: [1, 0]` (a sequence [C, T] to [T, C])
    """

    op = "permute"
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
class Select(Rearranging):
    """Take one index along a dim, dropping that dim (a ViT's class token: index 0 of the tokens).

    Args:
        index: the position taken; negative counts from the end. Checked when the dim is known.
        dim: the per-sample dim indexed (batch excluded).

    Shapes: (T, D) -> (D) with `dim: 0`; other dims, symbolic ones included, pass through.

    Costs: none (a view).

    Example: `- select: 0` or `- select: {dim: 0, index: -1}`
    """

    op = "select"
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


def dim_list(value: int | list[int]) -> list[int]:
    return [value] if isinstance(value, int) else value


def distinct_dims(op: str, value: int | list[int], shape) -> list[int]:
    """A dim or list of dims (`dim` of mean and squeeze) as indices into `shape`; ShapeError when one repeats."""
    dims = [check_dim(op, d, shape) for d in dim_list(value)]
    if len(set(dims)) < len(dims):
        raise ShapeError(f"{op} dims {value} name a dim twice (input {format_shape(shape)})", arg="dim")
    return dims


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

    def infer(self, a, shapes):
        (shape,) = shapes
        dims = distinct_dims(self.op, a.dim, shape)
        if a.keepdim:
            return tuple(1 if i in dims else d for i, d in enumerate(shape))
        return tuple(d for i, d in enumerate(shape) if i not in dims)

    def flops(self, a, shapes, out):
        return count(shapes[0])

    def rf(self, a, shapes):
        dims = [d % len(shapes[0]) for d in dim_list(a.dim)]
        return GLOBAL if any(dims) else None

    def label(self, a):
        return f"mean dim={','.join(map(str, dim_list(a.dim)))}"

    def forward(self, m, a, xs):
        dims = [batch_dim(d) for d in dim_list(a.dim)]
        return xs[0].mean(dim=dims, keepdim=a.keepdim)


class UnsqueezeArgs(Args):
    dim: int


@register
class Unsqueeze(Rearranging):
    """Insert a dim of size 1 at `dim` (batch excluded), as torch's `unsqueeze`.

    Args:
        dim: the position of the new dim in the output, from -(rank+1) to rank (negative counts from
            the end: -1 appends).

    Shapes: (C) -> (C, 1) with `dim: -1`; (H, W) -> (1, H, W) with `dim: 0`; symbolic dims pass through.

    Costs: none (a view).

    Example: `- unsqueeze: 0` (a [H, W] map to a one-channel image [1, H, W])
    """

    op = "unsqueeze"
    Args = UnsqueezeArgs
    main_arg = "dim"

    def infer(self, a, shapes):
        (shape,) = shapes
        dim = check_dim(self.op, a.dim, (*shape, 1))
        return (*shape[:dim], 1, *shape[dim:])

    def label(self, a):
        return f"unsqueeze {a.dim}"

    def forward(self, m, a, xs):
        return xs[0].unsqueeze(batch_dim(a.dim))


class SqueezeArgs(Args):
    dim: int | Annotated[list[int], Field(min_length=1)]


@register
class Squeeze(Rearranging):
    """Remove dims of size 1 (batch excluded), as torch's `squeeze(dim)`.

    Args:
        dim: the per-sample dim, or list of dims, removed; each must be 1 (torch would silently keep a
            dim of another size; here it is an error). Required: squeezing every dim of 1 would also
            drop a batch of one.

    Shapes: (C, 1, 1) -> (C) with `dim: [1, 2]`; other dims, symbolic ones included, pass through.

    Costs: none (a view).

    Example: `- squeeze: -1` or `- squeeze: [1, 2]`
    """

    op = "squeeze"
    Args = SqueezeArgs
    main_arg = "dim"

    def infer(self, a, shapes):
        (shape,) = shapes
        dims = distinct_dims(self.op, a.dim, shape)
        for d in dims:
            if shape[d] != 1:
                raise ShapeError(f"squeeze dim {d} has size {shape[d]}, not 1, in the input {format_shape(shape)}",
                                 hint="squeeze removes dims of size 1 only; `mean` or `select` reduce others",
                                 arg="dim")
        return tuple(n for i, n in enumerate(shape) if i not in dims)

    def label(self, a):
        return f"squeeze {','.join(map(str, dim_list(a.dim)))}"

    def forward(self, m, a, xs):
        return xs[0].squeeze(tuple(batch_dim(d) for d in dim_list(a.dim)))


class UnflattenArgs(Args):
    dim: int
    sizes: Annotated[list[int], Field(min_length=1)]


@register
class Unflatten(Rearranging):
    """Split one per-sample dim into several (batch excluded), as torch's `unflatten`: the inverse of `flatten`.

    Args:
        dim: the per-sample dim split.
        sizes: the new dims, whose product is that dim's size; one may be -1, inferred.

    Shapes: (C·H·W) -> (C, H, W) with `dim: 0, sizes: [C, H, W]`; the split dim must be known, others
    may be symbolic.

    Costs: none (a view).

    Example: `- unflatten: {dim: 0, sizes: [16, 7, 7]}`
    """

    op = "unflatten"
    Args = UnflattenArgs

    def infer(self, a, shapes):
        (shape,) = shapes
        dim = check_dim(self.op, a.dim, shape)
        size = known(shape[dim], f"size of dim {a.dim}", self.op)
        sizes = a.sizes
        if any(n < 1 and n != -1 for n in sizes) or sizes.count(-1) > 1:
            raise ShapeError(f"unflatten sizes must be positive, with at most one -1; got {sizes}", arg="sizes")
        need = math.prod(n for n in sizes if n != -1)
        if (size % need if -1 in sizes else size != need):
            needs = f"a multiple of {need}" if -1 in sizes else str(need)
            raise ShapeError(f"unflatten sizes {sizes} need {needs} elements, but dim {a.dim} of the input "
                             f"{format_shape(shape)} has {size}", arg="sizes")
        return (*shape[:dim], *(size // need if n == -1 else n for n in sizes), *shape[dim + 1:])

    def label(self, a):
        return f"unflatten {a.dim} → {format_shape(a.sizes)}"

    def forward(self, m, a, xs):
        return xs[0].unflatten(batch_dim(a.dim), a.sizes)


class RollArgs(Args):
    shifts: int | Annotated[list[int], Field(min_length=1)]
    dims: int | Annotated[list[int], Field(min_length=1)]

    @model_validator(mode="after")
    def _paired(self):
        if len(dim_list(self.shifts)) != len(dim_list(self.dims)):
            raise ValueError(f"shifts {self.shifts} and dims {self.dims} must have as many entries")
        return self


@register
class Roll(Rearranging):
    """Shift elements cyclically along per-sample dims (batch excluded), as torch's `roll` (Swin's shifted
    windows: `roll: {shifts: [-3, -3], dims: [0, 1]}` on [H, W, C]).

    Args:
        shifts: the shift along each dim of `dims` (an int, or a list as long as `dims`); elements
            past the end wrap around to the start.
        dims: the per-sample dim or dims rolled. Required: torch's roll without dims would flatten the
            batch with the sample.

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: none (a copy). Receptive field: kept (positions move; no field grows).

    Example: `- roll: {shifts: [-3, -3], dims: [0, 1]}`
    """

    op = "roll"
    Args = RollArgs

    def infer(self, a, shapes):
        (shape,) = shapes
        for d in dim_list(a.dims):
            check_dim(self.op, d, shape, "dims")
        return shape

    def label(self, a):
        return f"roll {','.join(map(str, dim_list(a.shifts)))} dims={','.join(map(str, dim_list(a.dims)))}"

    def forward(self, m, a, xs):
        return xs[0].roll(dim_list(a.shifts), [batch_dim(d) for d in dim_list(a.dims)])


class PadArgs(Args):
    pad: Annotated[list[int], Field(min_length=2)]
    mode: Literal["constant", "reflect", "replicate"] = "constant"
    value: float = 0.0

    @model_validator(mode="after")
    def _pairs(self):
        if len(self.pad) % 2:
            raise ValueError(f"pad {self.pad} must hold pairs (left, right): an even number of entries")
        if self.mode != "constant" and any(p < 0 for p in self.pad):
            raise ValueError(f"pad {self.pad}: negative padding (cropping) needs mode `constant`")
        if self.mode != "constant" and self.value:
            raise ValueError(f"value applies to mode `constant`, not `{self.mode}`")
        return self


@register
class Pad(Rearranging):
    """Pad the trailing per-sample dims, as torch.nn.functional.pad: constant, reflected or replicated edges.

    Args:
        pad: pairs (before, after) starting from the LAST dim, in torch's order: `[left, right]` pads W;
            `[left, right, top, bottom]` pads W then H. Negative entries crop (mode `constant` only).
        mode: `constant` (fill with `value`), `reflect` (mirror without repeating the edge; each pad
            less than its dim), or `replicate` (repeat the edge). `reflect` and `replicate` pad 1 to 3
            dims of a [C, *spatial] input (or of a [*spatial] one), as torch allows.
        value: the fill of mode `constant`.

    Shapes: (C, H, W) -> (C, H + top + bottom, W + left + right); symbolic dims get expressions (`H+2`).

    Costs: none (a copy). Receptive field: kept (the padded border reads no new input).

    Example: `- pad: [1, 1, 1, 1]` or `- pad: {pad: [3, 3, 3, 3], mode: reflect}`
    """

    op = "pad"
    Args = PadArgs
    main_arg = "pad"

    def infer(self, a, shapes):
        (shape,) = shapes
        n = len(a.pad) // 2
        if n > len(shape):
            raise ShapeError(f"pad {a.pad} pads {n} dims, but the input {format_shape(shape)} has {len(shape)}",
                             hint="give one (before, after) pair per padded dim, the last dim first", arg="pad")
        if a.mode != "constant" and (n > 3 or len(shape) not in (n, n + 1)):
            raise ShapeError(f"pad mode `{a.mode}` pads 1 to 3 dims of a [C, *spatial] input, as torch does; "
                             f"{n} dims of {format_shape(shape)} asked", arg="pad",
                             hint=f"pad the {len(shape) - 1} spatial dims (a list of {2 * (len(shape) - 1)}), "
                                  "or use mode `constant`")
        out = list(shape)
        for i in range(n):
            axis = len(shape) - 1 - i
            before, after = a.pad[2 * i], a.pad[2 * i + 1]
            length = shape[axis]
            if a.mode == "reflect":
                length = known(length, f"length of dim {axis} to reflect", self.op)
                if max(before, after) >= length:
                    raise ShapeError(f"pad mode `reflect` needs each pad below the padded length, but dim {axis} "
                                     f"is {length} and the pad is ({before}, {after})", arg="pad",
                                     hint="use mode `replicate` or a smaller pad")
            out[axis] = offset_dim(length, before + after)
            if is_known(out[axis]) and out[axis] < 1:
                raise ShapeError(f"pad ({before}, {after}) crops dim {axis} of {length} to {out[axis]}", arg="pad")
        return tuple(out)

    def label(self, a):
        return f"pad {','.join(map(str, a.pad))}" + ("" if a.mode == "constant" else f" {a.mode}")

    def forward(self, m, a, xs):
        import torch

        if a.mode == "constant":
            return torch.nn.functional.pad(xs[0], a.pad, value=a.value)
        return torch.nn.functional.pad(xs[0], a.pad, mode=a.mode)


class ChannelShuffleArgs(Args):
    groups: PositiveInt


@register
class ChannelShuffle(Rearranging):
    """Shuffle the channels across groups (ShuffleNet, Zhang et al. 2018): view C as [groups, C/groups],
    transpose, flatten; torch's nn.ChannelShuffle, the same as torchvision's `channel_shuffle`.

    Args:
        groups: groups g; must divide the channels C.

    Shapes: (C, *) -> (C, *) with at least one dim after C; those may be symbolic.

    Costs: none (a copy).

    Example: `- channel_shuffle: 2`
    """

    op = "channel_shuffle"
    Args = ChannelShuffleArgs
    main_arg = "groups"

    def infer(self, a, shapes):
        (shape,) = shapes
        if len(shape) < 2:
            raise ShapeError(f"channel_shuffle needs [C, *spatial] (at least two dims), got {format_shape(shape)}",
                             hint="insert `unsqueeze: -1` to give a vector a length of 1")
        check_groups(a, "groups", known(shape[0], "channel dim", self.op))
        return shape

    def label(self, a):
        return f"channel_shuffle {a.groups}"

    def module(self, a, shapes):
        return Call("ChannelShuffle", (a.groups,))


class Splitting(Rearranging):
    """What `chunk` and `split` share: several parts along one per-sample dim, each a node with the arguments
    `Part` (the op's own and `part`, its index), each computed as torch's `x.chunk(...)[i]` or `x.split(...)[i]`."""

    Part: ClassVar[type[Args]]

    def part(self, a, i):
        return self.Part(**a.model_dump(), part=i)

    def length(self, a, size: int, shape) -> int:
        """The length of part `a.part` along the split dim of `size`; ShapeError when the parts do not fit it."""
        raise NotImplementedError

    def infer(self, a, shapes):
        (shape,) = shapes
        dim = check_dim(self.op, a.dim, shape)
        size = known(shape[dim], f"size of dim {a.dim}", self.op)
        return (*shape[:dim], self.length(a, size, shape), *shape[dim + 1:])

    def label(self, a):
        main = getattr(a, self.main_arg)
        return f"{self.op} {','.join(map(str, dim_list(main)))}{f' dim={a.dim}' if a.dim else ''} [{a.part}]"

    def forward(self, m, a, xs):
        return getattr(xs[0], self.op)(getattr(a, self.main_arg), dim=batch_dim(a.dim))[a.part]


class ChunkArgs(Args):
    chunks: PositiveInt
    dim: int = 0


class ChunkPart(ChunkArgs):
    part: int  # the node's chunk, 0 ≤ part < chunks


@register
class Chunk(Splitting):
    """Split a per-sample dim into equal parts, as torch.chunk: one layer, several outputs
    (ShuffleNet v2's channel split, Ma et al. 2018). Named `x`, its parts are `x.0`, `x.1`, ...,
    which later layers name in `from:` or a merge; `x` alone is not one tensor.

    Args:
        chunks: how many parts; must divide the dim's size (torch would silently give fewer or
            unequal parts: `split` gives unequal ones on purpose).
        dim: the per-sample dim split (batch excluded); its size must be known.

    Shapes: (C, H, W) -> `chunks` parts, each (C/chunks, H, W), with `dim: 0`; the other dims,
    symbolic ones included, pass through.

    Costs: none (views). Receptive field: kept.

    Example: `- chunk: 2` with `name: x`, then `- concat: [x.0, branch]`
    """

    op = "chunk"
    Args = ChunkArgs
    Part = ChunkPart
    main_arg = "chunks"

    def parts(self, a):
        return a.chunks

    def length(self, a, size, shape):
        if size % a.chunks:
            nearest = nearest_divisors(size, a.chunks, 4)
            raise ShapeError(f"chunk: {a.chunks} chunks do not divide dim {a.dim} of size {size} "
                             f"(input {format_shape(shape)})", arg="chunks",
                             hint=f"choose a divisor of {size}, e.g. {', '.join(map(str, nearest))}, "
                                  "or `split` it into given sizes")
        return size // a.chunks


class SplitArgs(Args):
    split_sizes: Annotated[list[PositiveInt], Field(min_length=1)] = arg("split_sizes", "sizes")
    dim: int = 0


class SplitPart(SplitArgs):
    part: int  # the node's part, 0 ≤ part < len(split_sizes)


@register
class Split(Splitting):
    """Split a per-sample dim into parts of the given sizes, as torch.split with a list of sizes: one layer,
    several outputs. Named `x`, its parts are `x.0`, `x.1`, ..., which later layers name in `from:` or a
    merge; `x` alone is not one tensor.

    Args:
        split_sizes (alias `sizes`): the size of each part along `dim`; they must add up to the dim's size.
        dim: the per-sample dim split (batch excluded); its size must be known.

    Shapes: (C, H, W) -> parts (s0, H, W), (s1, H, W), ... with `dim: 0`; the other dims, symbolic ones
    included, pass through.

    Costs: none (views). Receptive field: kept.

    Example: `- split: [64, 192]` with `name: x`, then `from: x.1`
    """

    op = "split"
    Args = SplitArgs
    Part = SplitPart
    main_arg = "split_sizes"

    def parts(self, a):
        return len(a.split_sizes)

    def length(self, a, size, shape):
        if sum(a.split_sizes) != size:
            raise ShapeError(f"split sizes {a.split_sizes} add up to {sum(a.split_sizes)}, but dim {a.dim} of the "
                             f"input {format_shape(shape)} has {size}", arg="split_sizes",
                             hint=f"give sizes that add up to {size}")
        return a.split_sizes[a.part]
