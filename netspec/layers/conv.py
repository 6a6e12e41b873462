"""Convolutions: conv1d/2d/3d and their transposes, over per-sample (C, *spatial) inputs.

Also the helpers every windowed op (conv, pool) shares: splitting the input into
channels and spatial dims with a helpful rank error, per-axis arguments, labels
and the keyword arguments of the torch call.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, PositiveInt

from ..arith import Dim, Shape, as_tuple, conv_out, conv_transpose_out, format_shape, int_root, is_known
from .base import REGISTRY, Args, Call, Layer, ShapeError, arg, check_stated, count, known, register, spatial_rf

SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


def split_input(op: str, shape: Shape, nd: int) -> tuple[Any, Shape]:
    """(channels, spatial dims) of a per-sample (C, *spatial) input with nd spatial dims."""
    if len(shape) != nd + 1:
        raise ShapeError(f"{op} needs a [C, {SPATIAL[nd]}] input (batch excluded), got {format_shape(shape)}",
                         hint=_rank_hint(op, shape, nd))
    return shape[0], shape[1:]


def _channels_last_hint(shape: Shape) -> str | None:
    """For an image given channels-last (`[28, 28, 1]`, as Keras and PIL store it): the channels-first shape.
    Only for a square image read that way: a feature map deep in a network (16×4×4) is no such image."""
    square = len(shape) > 2 and len(set(shape[:-1])) == 1
    if square and all(isinstance(d, int) for d in shape) and shape[-1] <= 4 < shape[0]:
        first = [shape[-1], *shape[:-1]]
        return (f"the input looks channels-last ({format_shape(shape)}); netspec, like torch, puts channels first: "
                f"`input: [{', '.join(map(str, first))}]`")
    return None


def _rank_hint(op: str, shape: Shape, nd: int) -> str | None:
    if len(shape) == 1:
        hint = f"insert `reshape: [C, {SPATIAL[nd]}]` before `{op}`"
        side = int_root(shape[0], nd) if is_known(shape[0]) else 0
        if side ** nd == shape[0]:
            hint += f", e.g. `reshape: [1, {', '.join([str(side)] * nd)}]` for {shape[0]} values"
        return hint
    other = op.replace(f"{nd}d", f"{len(shape) - 1}d")
    return f"did you mean `{other}`?" if other in REGISTRY else None


def per_axis(a: Args, name: str, nd: int) -> tuple:
    """Argument `name` as one value per spatial axis: an int is broadcast, a list must have nd entries."""
    value = getattr(a, name)
    values = as_tuple(value, nd)
    if values is None:
        raise ShapeError(f"{name} has {len(value)} entries but the input has {nd} spatial dims",
                         hint=f"give one number for all axes, or a list of {nd}", arg=name)
    return values


def window_lengths(spatial: Shape, kernels: tuple, strides: tuple, paddings: tuple, dilations: tuple,
                   ceil_mode: bool = False, what: str = "window") -> tuple[Dim, ...]:
    """Output length of each spatial axis under a sliding window (conv or pool); ShapeError, blaming
    kernel_size, when a window does not fit its padded axis."""
    out = []
    for length, k, s, p, d in zip(spatial, kernels, strides, paddings, dilations, strict=True):
        n = conv_out(length, k, s, p, d, ceil_mode)
        if is_known(n) and n < 1:
            span = d * (k - 1) + 1
            smaller = "kernel_size or dilation" if d > 1 else "kernel_size"
            raise ShapeError(f"the {what} spans {span} but the padded input is {length + 2 * p}",
                             hint=f"use a smaller {smaller}, or more padding", arg="kernel_size")
        out.append(n)
    return tuple(out)


def axes_text(values: tuple) -> str:
    """`3×3` (one entry per axis) for a label."""
    return "×".join(map(str, values))


def stride_text(strides: tuple) -> str:
    """`/2` (or `/1×2`) for a label, nothing for stride 1 everywhere."""
    if all(s == 1 for s in strides):
        return ""
    return f"/{strides[0]}" if len(set(strides)) == 1 else f"/{axes_text(strides)}"


def torch_kwargs(a: Args, names: tuple[str, ...]) -> dict:
    """The named arguments that differ from their defaults (a required one always), lists as tuples,
    so the generated call reads like hand-written PyTorch."""
    kwargs = {}
    for name in names:
        value = getattr(a, name)
        if value != type(a).model_fields[name].default:
            kwargs[name] = tuple(value) if isinstance(value, list) else value
    return kwargs


MAX_WINDOW = 2**31 - 1  # torch's pooling and transposed-convolution kernels hold window sizes in 32-bit ints


def _fits_torch(value: int) -> int:
    """A kernel size, stride, padding or dilation torch can take (`avg_pool2d` with stride 2**31 fails in torch)."""
    if value > MAX_WINDOW:
        raise ValueError(f"{value:,} is more than 2**31 - 1, the largest window size torch's convolution and "
                         "pooling kernels hold (32-bit integers)")
    return value


_Window = Annotated[int, AfterValidator(_fits_torch)]
Sizes = Annotated[_Window, Field(gt=0)] | list[Annotated[_Window, Field(gt=0)]]
Paddings = Annotated[_Window, Field(ge=0)] | list[Annotated[_Window, Field(ge=0)]]


class ConvArgs(Args):
    out_channels: PositiveInt = arg("out_channels", "out")
    kernel_size: Sizes = arg("kernel_size", "kernel")
    stride: Sizes = 1
    padding: Paddings | Literal["same"] = 0
    dilation: Sizes = 1
    groups: PositiveInt = 1
    bias: bool = True
    in_channels: PositiveInt | None = None


class ConvTransposeArgs(ConvArgs):
    padding: Paddings = 0
    output_padding: Paddings = 0


class Conv(Layer):
    """What conv1d/2d/3d share; each differs in its number of spatial dims and its torch class."""

    family = "conv"
    Args = ConvArgs
    main_arg = "out_channels"
    nd: ClassVar[int]
    torch_cls: ClassVar[str]
    torch_args: ClassVar[tuple[str, ...]] = ("kernel_size", "stride", "padding", "dilation", "groups", "bias")

    def infer(self, a, shapes):
        channels, spatial = split_input(self.op, shapes[0], self.nd)
        try:
            self.check_channels(a, known(channels, "channel dim", self.op))
            return (a.out_channels, *self.spatial_out(a, spatial))
        except ShapeError as exc:
            exc.hint = _channels_last_hint(shapes[0]) or exc.hint
            raise

    def check_channels(self, a, channels: int) -> None:
        check_stated(a, "in_channels", channels, "channels")
        if channels % a.groups:
            raise ShapeError(f"the input's {channels} channels are not divisible by groups={a.groups}",
                             hint=f"groups must divide in_channels ({channels} is depthwise)", arg="groups")
        if a.out_channels % a.groups:
            raise ShapeError(f"out_channels={a.out_channels} is not divisible by groups={a.groups}",
                             hint=f"use a multiple of {a.groups}", arg="out_channels")

    def window(self, a) -> tuple[tuple, tuple, tuple]:
        """(kernel sizes, strides, dilations), one per spatial axis."""
        return tuple(per_axis(a, n, self.nd) for n in ("kernel_size", "stride", "dilation"))

    def spatial_out(self, a, spatial: Shape) -> tuple:
        kernels, strides, dilations = self.window(a)
        if a.padding == "same":
            if any(s != 1 for s in strides):
                raise ShapeError("padding `same` needs stride 1 (as in torch)",
                                 hint="give the padding as a number, e.g. kernel_size // 2", arg="padding")
            return spatial
        return window_lengths(spatial, kernels, strides, per_axis(a, "padding", self.nd), dilations,
                              what="kernel")

    def params(self, a, shapes):
        # weight (out, in/groups, *kernel) + bias (out)
        kernel = math.prod(per_axis(a, "kernel_size", self.nd))
        return a.out_channels * (shapes[0][0] // a.groups) * kernel + (a.out_channels if a.bias else 0)

    def macs(self, a, shapes, out):
        # each output element: one MAC per weight of its group, bias not counted
        return count(out) * (shapes[0][0] // a.groups) * math.prod(per_axis(a, "kernel_size", self.nd))

    def rf(self, a, shapes):
        return spatial_rf(*self.window(a))

    def label(self, a):
        kernels, strides = per_axis(a, "kernel_size", self.nd), per_axis(a, "stride", self.nd)
        text = f"{self.op} {axes_text(kernels)}{stride_text(strides)}"
        if a.dilation != 1:
            text += f" d{axes_text(per_axis(a, 'dilation', self.nd))}"
        if a.groups != 1:
            text += f" g{a.groups}"
        return f"{text} · {a.out_channels}"

    def module(self, a, shapes):
        return Call(self.torch_cls, (shapes[0][0], a.out_channels), torch_kwargs(a, self.torch_args))


class ConvTranspose(Conv):
    """What conv_transpose1d/2d/3d share: the adjoint of a convolution, upsampling by its stride."""

    Args = ConvTransposeArgs
    torch_args = ("kernel_size", "stride", "padding", "output_padding", "groups", "bias", "dilation")

    def spatial_out(self, a, spatial):
        names = ("kernel_size", "stride", "padding", "output_padding", "dilation")
        out = []
        for length, k, s, p, op, d in zip(spatial, *(per_axis(a, n, self.nd) for n in names), strict=True):
            if op >= s and op >= d:
                raise ShapeError(f"output_padding={op} must be smaller than stride={s} or dilation={d}",
                                 hint="output_padding only picks among the lengths a stride > 1 allows",
                                 arg="output_padding")
            n = conv_transpose_out(length, k, s, p, op, d)
            if is_known(n) and n < 1:
                raise ShapeError(f"padding={p} leaves an output length of {n}",
                                 hint="use less padding or a larger kernel_size", arg="padding")
            out.append(n)
        return tuple(out)

    def macs(self, a, shapes, out):
        # each input element is scattered through one group's weights, bias not counted
        kernel = math.prod(per_axis(a, "kernel_size", self.nd))
        return count(shapes[0]) * (a.out_channels // a.groups) * kernel

    def rf(self, a, shapes):
        # an output sees ceil(span/stride) neighbouring inputs; the jump shrinks by the stride
        return [(-(-(d * (k - 1) + 1) // s), Fraction(1, s)) for k, s, d in zip(*self.window(a), strict=True)]


def conv_doc(what: str, nd: int, transposed: bool, example: str) -> str:
    """The docstring of a conv entry: `what`, then what every conv of its kind shares."""
    dims = SPATIAL[nd]
    outs = ", ".join(f"{d}'" for d in dims.split(", "))
    if transposed:
        padding = "zeros removed from both sides of each output axis (int or list)"
        extra = ("\n        output_padding: extra length on one side of each output axis (int or list), "
                 "smaller than stride or dilation.")
        rule = "L' = (L-1)·stride - 2·padding + dilation·(kernel-1) + output_padding + 1"
        macs = "prod(input)·(out/groups)·prod(kernel)"
    else:
        padding = ("zeros added on both sides of each axis (int or list), or `same` to keep the length "
                   "(stride 1 only; torch puts an odd extra zero on the right)")
        extra = ""
        rule = "L' = floor((L + 2·padding - dilation·(kernel-1) - 1)/stride) + 1"
        macs = "prod(output)·(in/groups)·prod(kernel)"
    return f"""{what}

    Args:
        out_channels (alias `out`): output channels.
        kernel_size (alias `kernel`): window size, one int for every axis or a list of {nd}.
        stride: step between windows (int or list).
        padding: {padding}.{extra}
        dilation: spacing between kernel elements (int or list).
        groups: independent channel groups; groups = in_channels is a depthwise convolution.
        bias: learn an additive bias.
        in_channels: optional; inferred from the input, checked when given.

    Shapes: (C, {dims}) -> (out_channels, {outs}) with, per axis, {rule}.
    Symbolic lengths pass through as expressions.

    Costs: params = out·(in/groups)·prod(kernel) + out (bias); MACs = {macs}
    (one multiply-accumulate per weight use, bias not counted).

    Example: `{example}`
    """


@register
class Conv1d(Conv):
    __doc__ = conv_doc("1-d convolution (cross-correlation) over a sequence of channel vectors.", 1, False,
                       "- conv1d: {out: 64, kernel: 3, padding: same}")
    op = "conv1d"
    nd = 1
    torch_cls = "Conv1d"


@register
class Conv2d(Conv):
    __doc__ = conv_doc("2-d convolution (cross-correlation) over an image.", 2, False,
                       "- conv2d: {out: 64, kernel: 7, stride: 2, padding: 3, bias: false}")
    op = "conv2d"
    nd = 2
    torch_cls = "Conv2d"


@register
class Conv3d(Conv):
    __doc__ = conv_doc("3-d convolution (cross-correlation) over a volume or a clip.", 3, False,
                       "- conv3d: {out: 32, kernel: [1, 3, 3], padding: [0, 1, 1]}")
    op = "conv3d"
    nd = 3
    torch_cls = "Conv3d"


@register
class ConvTranspose1d(ConvTranspose):
    __doc__ = conv_doc("1-d transposed convolution: upsamples a sequence by its stride.", 1, True,
                       "- conv_transpose1d: {out: 32, kernel: 4, stride: 2, padding: 1}")
    op = "conv_transpose1d"
    nd = 1
    torch_cls = "ConvTranspose1d"


@register
class ConvTranspose2d(ConvTranspose):
    __doc__ = conv_doc("2-d transposed convolution: upsamples an image by its stride.", 2, True,
                       "- conv_transpose2d: {out: 64, kernel: 4, stride: 2, padding: 1}")
    op = "conv_transpose2d"
    nd = 2
    torch_cls = "ConvTranspose2d"


@register
class ConvTranspose3d(ConvTranspose):
    __doc__ = conv_doc("3-d transposed convolution: upsamples a volume by its stride.", 3, True,
                       "- conv_transpose3d: {out: 16, kernel: 2, stride: 2}")
    op = "conv_transpose3d"
    nd = 3
    torch_cls = "ConvTranspose3d"
