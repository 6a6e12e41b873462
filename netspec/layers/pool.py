"""Pooling and resampling: max/avg pools, adaptive pools and upsample, over per-sample (C, *spatial) inputs.

None of them has parameters or MACs (pooling is not in the MAC column); `flops`
counts their element work, with the convention stated in each docstring.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import ClassVar, Literal

from pydantic import PositiveFloat, PositiveInt

from ..arith import adaptive_max_width, adaptive_width_sum, format_shape, is_known, scale_dim
from .base import FROM, GLOBAL, Args, Call, Layer, ShapeError, arg, count, register, spatial_rf
from .conv import SPATIAL, Paddings, Sizes, axes_text, per_axis, split_input, stride_text, torch_kwargs, window_lengths


class PoolArgs(Args):
    kernel_size: Sizes = arg("kernel_size", "kernel")
    stride: Sizes | None = None
    padding: Paddings = 0
    ceil_mode: bool = False


class MaxPoolArgs(PoolArgs):
    dilation: Sizes = 1


class AvgPoolArgs(PoolArgs):
    count_include_pad: bool = True


class Pool(Layer):
    """What the max and average pools share: a window slid over each channel."""

    family = "pool"
    main_arg = "kernel_size"
    nd: ClassVar[int]
    torch_cls: ClassVar[str]
    torch_args: ClassVar[tuple[str, ...]]
    window_fits_unpadded: ClassVar[bool] = False  # torch's avg_pool3d also checks the input without padding

    def window(self, a) -> tuple[tuple, tuple, tuple]:
        """(kernel sizes, strides, dilations), one per spatial axis; the stride defaults to the kernel."""
        kernels = per_axis(a, "kernel_size", self.nd)
        strides = kernels if a.stride is None else per_axis(a, "stride", self.nd)
        return kernels, strides, (1,) * self.nd

    def infer(self, a, shapes):
        channels, spatial = split_input(self.op, shapes[0], self.nd)
        kernels, strides, dilations = self.window(a)
        paddings = per_axis(a, "padding", self.nd)
        for length, k, p in zip(spatial, kernels, paddings, strict=True):
            if p > k // 2:
                raise ShapeError(f"padding={p} is more than half of kernel_size={k}",
                                 hint=f"torch allows at most kernel_size // 2 = {k // 2}", arg="padding")
            if self.window_fits_unpadded and is_known(length) and length < k:
                raise ShapeError(f"{self.op} needs each input length to hold kernel_size={k} before padding, "
                                 f"got {length}", hint="use a smaller kernel_size", arg="kernel_size")
        return (channels, *window_lengths(spatial, kernels, strides, paddings, dilations, a.ceil_mode))

    def flops(self, a, shapes, out):
        # one compare (max) or add (avg) per window element
        return count(out) * math.prod(self.window(a)[0])

    def rf(self, a, shapes):
        return spatial_rf(*self.window(a))

    def label(self, a):
        kernels, strides, dilations = self.window(a)
        text = f"{self.op} {axes_text(kernels)}{stride_text(strides)}"
        return text + (f" d{axes_text(dilations)}" if any(d != 1 for d in dilations) else "")

    def module(self, a, shapes):
        return Call(self.torch_cls, (), torch_kwargs(a, self.torch_args))


class MaxPool(Pool):
    Args = MaxPoolArgs
    torch_args = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")

    def window(self, a):
        kernels, strides, _ = super().window(a)
        return kernels, strides, per_axis(a, "dilation", self.nd)


class AvgPool(Pool):
    Args = AvgPoolArgs
    torch_args = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")


def pool_doc(what: str, nd: int, example: str, average: bool) -> str:
    """The docstring of a max or average pool entry."""
    dims = SPATIAL[nd]
    outs = ", ".join(f"{d}'" for d in dims.split(", "))
    if average:
        extra = "count_include_pad: count the padding zeros in each window's divisor."
        span, work = "kernel", "one add"
    else:
        extra = "dilation: spacing between window elements (int or list)."
        span, work = "dilation·(kernel-1) - 1", "one compare"
    return f"""{what}

    Args:
        kernel_size (alias `kernel`): window size, one int for every axis or a list of {nd}.
        stride: step between windows (int or list); defaults to kernel_size.
        padding: implicit padding on both sides (int or list), at most kernel_size // 2.
        ceil_mode: round the output length up, keeping a last partial window that starts inside
            the input or its left padding.
        {extra}

    Shapes: (C, {dims}) -> (C, {outs}) with, per axis,
    L' = floor((L + 2·padding - {span})/stride) + 1 (ceil with ceil_mode).
    Symbolic lengths pass through as expressions.

    Costs: no params, no MACs; FLOPs = prod(output)·prod(kernel) ({work} per window element).

    Example: `{example}`
    """


@register
class MaxPool1d(MaxPool):
    __doc__ = pool_doc("1-d max pooling: the largest value of each window, per channel.", 1,
                       "- maxpool1d: {kernel: 3, stride: 2, padding: 1}", average=False)
    op = "maxpool1d"
    nd = 1
    torch_cls = "MaxPool1d"


@register
class MaxPool2d(MaxPool):
    __doc__ = pool_doc("2-d max pooling: the largest value of each window, per channel.", 2,
                       "- maxpool2d: 2` or `- maxpool2d: {kernel: 3, stride: 2, padding: 1}", average=False)
    op = "maxpool2d"
    nd = 2
    torch_cls = "MaxPool2d"


@register
class MaxPool3d(MaxPool):
    __doc__ = pool_doc("3-d max pooling: the largest value of each window, per channel.", 3,
                       "- maxpool3d: {kernel: [1, 2, 2]}", average=False)
    op = "maxpool3d"
    nd = 3
    torch_cls = "MaxPool3d"


@register
class AvgPool1d(AvgPool):
    __doc__ = pool_doc("1-d average pooling: the mean of each window, per channel.", 1,
                       "- avgpool1d: {kernel: 3, stride: 1, padding: 1}", average=True)
    op = "avgpool1d"
    nd = 1
    torch_cls = "AvgPool1d"


@register
class AvgPool2d(AvgPool):
    __doc__ = pool_doc("2-d average pooling: the mean of each window, per channel.", 2,
                       "- avgpool2d: 2` or `- avgpool2d: {kernel: 3, stride: 1, padding: 1}", average=True)
    op = "avgpool2d"
    nd = 2
    torch_cls = "AvgPool2d"


@register
class AvgPool3d(AvgPool):
    __doc__ = pool_doc("3-d average pooling: the mean of each window, per channel.", 3,
                       "- avgpool3d: {kernel: [1, 2, 2]}", average=True)
    op = "avgpool3d"
    nd = 3
    torch_cls = "AvgPool3d"
    window_fits_unpadded = True


class AdaptivePoolArgs(Args):
    output_size: PositiveInt | list[PositiveInt | None]


class AdaptivePool(Layer):
    """What the adaptive pools share: windows chosen to give a fixed output size."""

    family = "pool"
    Args = AdaptivePoolArgs
    main_arg = "output_size"
    nd: ClassVar[int]
    torch_cls: ClassVar[str]

    def output_sizes(self, a, spatial) -> tuple:
        """The output's spatial size: output_size per axis, a `null` entry keeping that axis."""
        sizes = per_axis(a, "output_size", self.nd)
        return tuple(length if o is None else o for length, o in zip(spatial, sizes, strict=True))

    def infer(self, a, shapes):
        channels, spatial = split_input(self.op, shapes[0], self.nd)
        if self.nd == 1 and per_axis(a, "output_size", self.nd) == (None,):
            raise ShapeError(f"{self.op} needs an output size: torch keeps an axis with `null` only in 2-d "
                             "and 3-d adaptive pools", hint="give the output length", arg="output_size")
        return (channels, *self.output_sizes(a, spatial))

    def flops(self, a, shapes, out):
        # one compare or add per window element; windows are separable, so per axis the sum of widths
        count(shapes[0])  # raises SymbolicSize on a symbolic length
        channels, spatial = shapes[0][0], shapes[0][1:]
        widths = [adaptive_width_sum(n, o) for n, o in zip(spatial, out[1:], strict=True)]
        return channels * math.prod(widths)

    def rf(self, a, shapes):
        # per axis (widest window, mean step L/out): exact when out divides L, an approximation otherwise
        spatial = shapes[0][1:]
        out = self.output_sizes(a, spatial)
        if all(o == 1 for o in out):
            return GLOBAL
        rule = []
        for n, o in zip(spatial, out, strict=True):
            if n == o:
                rule.append((1, Fraction(1)))
            elif not is_known(n):
                return GLOBAL  # windows of an unknown width: bounded only by the whole input
            else:
                rule.append((adaptive_max_width(n, o), Fraction(n, o)))
        return rule

    def label(self, a):
        sizes = per_axis(a, "output_size", self.nd)
        return f"{self.op} {axes_text(tuple('-' if o is None else o for o in sizes))}"

    def module(self, a, shapes):
        size = a.output_size
        return Call(self.torch_cls, (tuple(size) if isinstance(size, list) else size,))


def adaptive_doc(what: str, nd: int, example: str) -> str:
    """The docstring of an adaptive pool entry."""
    dims = SPATIAL[nd]
    keep = ";\n            a `null` entry keeps that axis" if nd > 1 else ""
    return f"""{what}

    Args:
        output_size: the output's spatial size, one int for every axis or a list of {nd}{keep}.

    Shapes: (C, {dims}) -> (C, *output_size). Windows follow torch: output i of an axis of
    length L pools [floor(i·L/out), ceil((i+1)·L/out)).

    Costs: no params, no MACs; FLOPs = the summed size of all windows (one compare or add per
    window element; about the input's size when out divides L).

    Receptive field: global when the output is 1 everywhere; otherwise, per axis, the widest
    window with a stride of L/out (exact when out divides L).

    Example: `{example}`
    """


@register
class AdaptiveAvgPool1d(AdaptivePool):
    __doc__ = adaptive_doc(
        "1-d adaptive average pooling: the mean over windows sized to give output_size.",
        1, "- adaptive_avgpool1d: 1")
    op = "adaptive_avgpool1d"
    nd = 1
    torch_cls = "AdaptiveAvgPool1d"


@register
class AdaptiveAvgPool2d(AdaptivePool):
    __doc__ = adaptive_doc(
        "2-d adaptive average pooling: the mean over windows sized to give output_size.",
        2, "- adaptive_avgpool2d: 1` (global average pooling) or `- adaptive_avgpool2d: [7, 7]")
    op = "adaptive_avgpool2d"
    nd = 2
    torch_cls = "AdaptiveAvgPool2d"


@register
class AdaptiveAvgPool3d(AdaptivePool):
    __doc__ = adaptive_doc(
        "3-d adaptive average pooling: the mean over windows sized to give output_size.",
        3, "- adaptive_avgpool3d: 1")
    op = "adaptive_avgpool3d"
    nd = 3
    torch_cls = "AdaptiveAvgPool3d"


@register
class AdaptiveMaxPool1d(AdaptivePool):
    __doc__ = adaptive_doc(
        "1-d adaptive max pooling: the largest value over windows sized to give output_size.",
        1, "- adaptive_maxpool1d: 1")
    op = "adaptive_maxpool1d"
    nd = 1
    torch_cls = "AdaptiveMaxPool1d"


@register
class AdaptiveMaxPool2d(AdaptivePool):
    __doc__ = adaptive_doc(
        "2-d adaptive max pooling: the largest value over windows sized to give output_size.",
        2, "- adaptive_maxpool2d: [null, 1]")
    op = "adaptive_maxpool2d"
    nd = 2
    torch_cls = "AdaptiveMaxPool2d"


@register
class AdaptiveMaxPool3d(AdaptivePool):
    __doc__ = adaptive_doc(
        "3-d adaptive max pooling: the largest value over windows sized to give output_size.",
        3, "- adaptive_maxpool3d: 1")
    op = "adaptive_maxpool3d"
    nd = 3
    torch_cls = "AdaptiveMaxPool3d"


Mode = Literal["nearest", "linear", "bilinear", "bicubic", "trilinear"]
MODE_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}  # nearest takes any
LINEAR_MODE = {1: "linear", 2: "bilinear", 3: "trilinear"}
TAPS = {"nearest": 1, "linear": 2, "bilinear": 2, "bicubic": 4, "trilinear": 2}  # inputs read per axis


class Interpolation(Layer):
    """What `upsample` and `resize_as` share: the checks of `mode` and `align_corners`, and the cost."""

    family = "pool"

    def check_mode(self, a, nd: int) -> None:
        """`mode` fits `nd` spatial dims; `align_corners` comes with an interpolating mode only."""
        if MODE_DIMS.get(a.mode, nd) != nd:
            raise ShapeError(f"mode `{a.mode}` needs {MODE_DIMS[a.mode]} spatial dims, the input has {nd}",
                             hint=f"use `{LINEAR_MODE[nd]}` (or `nearest`) for a [C, {SPATIAL[nd]}] input",
                             arg="mode")
        if a.align_corners is not None and a.mode == "nearest":
            raise ShapeError("align_corners applies to the interpolating modes, not `nearest`",
                             hint="drop `align_corners`", arg="align_corners")

    def flops(self, a, shapes, out):
        return 0 if a.mode == "nearest" else count(out) * TAPS[a.mode] ** (len(out) - 1)


class UpsampleArgs(Args):
    scale_factor: PositiveFloat | list[PositiveFloat] | None = arg("scale_factor", "scale", default=None)
    size: PositiveInt | list[PositiveInt] | None = None
    mode: Mode = "nearest"
    align_corners: bool | None = None


@register
class Upsample(Interpolation):
    """Resize each channel by interpolation, to a size or by a scale factor.

    Args:
        scale_factor (alias `scale`): multiplier of each spatial length (a number or a list per axis).
        size: the output's spatial size instead (an int for every axis or a list); give exactly one.
        mode: `nearest` (any rank), `linear` (L), `bilinear` or `bicubic` (H, W), `trilinear` (D, H, W).
        align_corners: for the interpolating modes only: map the corner pixels onto each other.

    Shapes: (C, *spatial) with 1 to 3 spatial dims -> (C, *size) or (C, floor(L·scale) per axis),
    as torch computes it from a scale factor.

    Costs: no params, no MACs; FLOPs = 0 for `nearest` (a copy), else taps^dims per output element
    (one multiply-add per input read: 2 per axis for the linear modes, 4 per bicubic axis, so
    4 per output element for bilinear, 16 for bicubic).

    Receptive field: per axis the taps read, with a stride of 1/scale (L/size).

    Example: `- upsample: 2` or `- upsample: {size: [32, 32], mode: bilinear, align_corners: false}`
    """

    op = "upsample"
    Args = UpsampleArgs
    main_arg = "scale_factor"

    def infer(self, a, shapes):
        (shape,) = shapes
        nd = len(shape) - 1
        if nd not in SPATIAL:
            raise ShapeError(f"upsample needs [C, L], [C, H, W] or [C, D, H, W] (batch excluded), "
                             f"got {format_shape(shape)}",
                             hint="insert `reshape` to add a channel dim" if nd == 0 else None)
        if (a.size is None) == (a.scale_factor is None):
            given = "both" if a.size is not None else "neither"
            raise ShapeError(f"upsample needs exactly one of size and scale_factor, got {given}",
                             hint="e.g. `scale_factor: 2` or `size: [32, 32]`",
                             arg="size" if a.size is not None else "scale_factor")
        self.check_mode(a, nd)
        if a.size is not None:
            return (shape[0], *per_axis(a, "size", nd))
        out = []
        for length, f in zip(shape[1:], per_axis(a, "scale_factor", nd), strict=True):
            n = scale_dim(length, f)
            if is_known(n) and n < 1:
                raise ShapeError(f"scale_factor={f:g} turns a length of {length} into {n}",
                                 hint="use a larger scale_factor, or `size`", arg="scale_factor")
            out.append(n)
        return (shape[0], *out)

    def rf(self, a, shapes):
        spatial = shapes[0][1:]
        if a.scale_factor is not None:
            strides = [1 / Fraction(repr(f)) for f in per_axis(a, "scale_factor", len(spatial))]
        elif all(is_known(n) for n in spatial):
            sizes = per_axis(a, "size", len(spatial))
            strides = [Fraction(n, o) for n, o in zip(spatial, sizes, strict=True)]
        else:
            return GLOBAL  # a fixed size from an unknown length: no known stride
        return [(TAPS[a.mode], s) for s in strides]

    def label(self, a):
        if a.size is not None:
            target = "→ " + (axes_text(tuple(a.size)) if isinstance(a.size, list) else str(a.size))
        else:
            scales = a.scale_factor if isinstance(a.scale_factor, list) else [a.scale_factor]
            target = "×" + ",".join(f"{f:g}" for f in scales)
        return f"upsample {target} {a.mode}"

    def module(self, a, shapes):
        return Call("Upsample", (), torch_kwargs(a, ("size", "scale_factor", "mode", "align_corners")))


class ResizeAsArgs(Args):
    mode: Mode = "nearest"
    align_corners: bool | None = None


@register
class ResizeAs(Interpolation):
    """Resize the first input by interpolation to the spatial size of the second (a segmentation head
    scaling its logits back to the image: torch.nn.functional.interpolate(x, size=ref.shape[2:])).

    Args:
        mode: `nearest` (any rank), `linear` (L), `bilinear` or `bicubic` (H, W), `trilinear` (D, H, W).
        align_corners: for the interpolating modes only: map the corner pixels onto each other.
        The inputs come from `from` (short form `- resize_as: [x, reference]`): the tensor resized,
        then the one whose size it takes (only its spatial dims are read).

    Shapes: (C, *spatial), (C', *spatial') -> (C, *spatial') with 1 to 3 spatial dims, both inputs of
    one rank; spatial' may be symbolic (it is read at run time).

    Costs: no params, no MACs; FLOPs = 0 for `nearest` (a copy), else taps^dims per output element, as
    `upsample`. Receptive field: per axis the taps read, with a stride of L/L' (global when a length
    is symbolic); the reference contributes only its size.

    Example: `- resize_as: [classifier, input]` or
    `- resize_as: {mode: bilinear, align_corners: false}` with `from: [classifier, input]`
    """

    op = "resize_as"
    Args = ResizeAsArgs
    main_arg = FROM
    arity = (2, 2)

    def infer(self, a, shapes):
        x, ref = shapes
        nd = len(x) - 1
        if nd not in SPATIAL or len(ref) != len(x):
            raise ShapeError(f"resize_as needs two inputs [C, {SPATIAL.get(nd, '*spatial')}] of one rank with 1 to 3 "
                             f"spatial dims, got {format_shape(x)} and {format_shape(ref)}",
                             hint="the first input is resized to the spatial size of the second")
        self.check_mode(a, nd)
        return (x[0], *ref[1:])

    def rf(self, a, shapes):
        lengths = list(zip(shapes[0][1:], shapes[1][1:], strict=True))
        if not all(is_known(n) and is_known(o) for n, o in lengths):
            return GLOBAL
        return [(TAPS[a.mode], Fraction(n, o)) for n, o in lengths]

    def label(self, a):
        return f"resize_as {a.mode}"

    def forward(self, m, a, xs):
        import torch

        x, ref = xs
        return torch.nn.functional.interpolate(x, size=ref.shape[2:], mode=a.mode, align_corners=a.align_corners)
