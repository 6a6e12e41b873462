"""Normalization layers: batch, layer (over trailing dims or over channels) and group normalization,
and the learnable layer scale."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, PositiveFloat, PositiveInt

from ..arith import format_shape, is_known
from .base import Args, Call, Layer, ShapeError, arg, check_groups, check_image, check_stated, count, known, register

BATCHNORM_FOR_RANK = {1: "batchnorm1d", 2: "batchnorm1d", 3: "batchnorm2d", 4: "batchnorm3d"}


class BatchNormArgs(Args):
    num_features: PositiveInt | None = None
    eps: PositiveFloat = 1e-5
    momentum: float | None = Field(0.1, ge=0.0, le=1.0)
    affine: bool = True
    track_running_stats: bool = True


class BatchNorm(Layer):
    """What batchnorm1d/2d/3d share; each differs in the ranks it accepts and its torch class."""

    family = "norm"
    Args = BatchNormArgs
    main_arg = "num_features"
    ranks: ClassVar[tuple[int, ...]]  # accepted input ranks
    layout: ClassVar[tuple[str, ...]]  # dim names, for messages
    torch_cls: ClassVar[str]

    def infer(self, a, shapes):
        (shape,) = shapes
        if len(shape) not in self.ranks:
            expected = " or ".join(f"[{format_shape(self.layout[:r], ', ')}]" for r in self.ranks)
            other = BATCHNORM_FOR_RANK.get(len(shape))
            raise ShapeError(f"{self.op} needs {expected}, got {format_shape(shape)}",
                             hint=f"did you mean `{other}`?" if other else None)
        check_stated(a, "num_features", known(shape[0], "channel dim", self.op), "channels")
        return shape

    def params(self, a, shapes):
        return 2 * shapes[0][0] if a.affine else 0

    def flops(self, a, shapes, out):
        return 2 * count(shapes[0])

    def label(self, a):
        return self.op

    def module(self, a, shapes):
        return Call(self.torch_cls, (shapes[0][0],),
                    {"eps": a.eps, "momentum": a.momentum, "affine": a.affine,
                     "track_running_stats": a.track_running_stats})


@register
class BatchNorm1d(BatchNorm):
    """Batch normalization of each channel over the batch (and length): y = (x - μ) / √(σ² + ε)·γ + β.

    Args:
        num_features: optional; the channels C, inferred from the input, checked when given.
        eps: ε added to the variance.
        momentum: weight of the new batch in the running statistics; `null` for a cumulative average.
        affine: learn the per-channel scale γ and shift β.
        track_running_stats: keep running mean and variance for evaluation (else batch statistics
            are used in evaluation too).

    Shapes: (C) -> (C) or (C, L) -> (C, L); L may be symbolic.

    Costs: params = 2C with affine (the running mean and variance are buffers, not counted);
    MACs 0; FLOPs = 2 per element: in inference the statistics fold into one scale and one shift.

    Example: `- batchnorm1d` or `- batchnorm1d: {momentum: 0.01, affine: false}`
    """

    op = "batchnorm1d"
    ranks = (1, 2)
    layout = ("C", "L")
    torch_cls = "BatchNorm1d"


@register
class BatchNorm2d(BatchNorm):
    """Batch normalization of each channel of an image over the batch and the plane.

    Args:
        num_features: optional; the channels C, inferred from the input, checked when given.
        eps: ε added to the variance.
        momentum: weight of the new batch in the running statistics; `null` for a cumulative average.
        affine: learn the per-channel scale γ and shift β.
        track_running_stats: keep running mean and variance for evaluation (else batch statistics
            are used in evaluation too).

    Shapes: (C, H, W) -> (C, H, W); H and W may be symbolic.

    Costs: params = 2C with affine (the running mean and variance are buffers, not counted);
    MACs 0; FLOPs = 2 per element: in inference the statistics fold into one scale and one shift.

    Example: `- batchnorm2d` or `- batchnorm2d: {eps: 1.0e-3, momentum: 0.01}`
    """

    op = "batchnorm2d"
    ranks = (3,)
    layout = ("C", "H", "W")
    torch_cls = "BatchNorm2d"


@register
class BatchNorm3d(BatchNorm):
    """Batch normalization of each channel of a volume over the batch and the volume.

    Args:
        num_features: optional; the channels C, inferred from the input, checked when given.
        eps: ε added to the variance.
        momentum: weight of the new batch in the running statistics; `null` for a cumulative average.
        affine: learn the per-channel scale γ and shift β.
        track_running_stats: keep running mean and variance for evaluation (else batch statistics
            are used in evaluation too).

    Shapes: (C, D, H, W) -> (C, D, H, W); D, H and W may be symbolic.

    Costs: params = 2C with affine (the running mean and variance are buffers, not counted);
    MACs 0; FLOPs = 2 per element: in inference the statistics fold into one scale and one shift.

    Example: `- batchnorm3d` or `- batchnorm3d: {affine: false}`
    """

    op = "batchnorm3d"
    ranks = (4,)
    layout = ("C", "D", "H", "W")
    torch_cls = "BatchNorm3d"


class LayerNormArgs(Args):
    normalized_shape: PositiveInt | Annotated[list[PositiveInt], Field(min_length=1)] | None = None
    elementwise_affine: bool = arg("elementwise_affine", "affine", default=True)
    bias: bool = True
    eps: PositiveFloat = 1e-5


@register
class LayerNorm(Layer):
    """Layer normalization of each sample over its trailing dims: y = (x - E[x]) / √(Var[x] + ε)·γ + β.

    Args:
        normalized_shape: the trailing dims normalized together, an int (the last dim) or a list,
            checked against the input; by default the input's last dim.
        elementwise_affine (alias `affine`): learn the scale γ (and shift β) over normalized_shape.
        bias: learn the shift β (with elementwise_affine).
        eps: ε added to the variance.

    Shapes: (*, *normalized_shape) -> same; leading dims may be symbolic, normalized ones are known.

    Costs: params = N·2 with affine and bias, N without bias, where N = prod(normalized_shape);
    MACs 0; FLOPs = 5 per element with affine, 4 without (fvcore's convention: the statistics
    are computed per sample, also in inference).

    Example: `- layernorm` or `- layernorm: {normalized_shape: [8, 8], eps: 1.0e-6}`
    """

    op = "layernorm"
    family = "norm"
    Args = LayerNormArgs
    main_arg = "normalized_shape"

    @staticmethod
    def normalized(a, shape) -> tuple:
        if a.normalized_shape is None:
            return tuple(shape[-1:])
        if isinstance(a.normalized_shape, int):
            return (a.normalized_shape,)
        return tuple(a.normalized_shape)

    def infer(self, a, shapes):
        (shape,) = shapes
        if not shape:
            raise ShapeError("layernorm needs at least one dim, got a scalar")
        normalized = self.normalized(a, shape)
        trailing = shape[len(shape) - len(normalized):]
        if len(normalized) > len(shape) or trailing != normalized:
            raise ShapeError(f"normalized_shape is {list(normalized)} but the input "
                             f"{format_shape(shape)} ends in {list(trailing)}", arg="normalized_shape",
                             hint=f"use normalized_shape {list(shape[-len(normalized):])}, "
                                  "or drop it to normalize the last dim")
        if not all(is_known(d) for d in normalized):
            raise ShapeError(f"layernorm needs known normalized dims, got {list(normalized)}",
                             hint="`permute` the symbolic dim away from the end")
        return shape

    def params(self, a, shapes):
        if not a.elementwise_affine:
            return 0
        return count(self.normalized(a, shapes[0])) * (2 if a.bias else 1)

    def flops(self, a, shapes, out):
        return count(shapes[0]) * (5 if a.elementwise_affine else 4)

    def label(self, a):
        return "layernorm"

    def module(self, a, shapes):
        return Call("LayerNorm", (list(self.normalized(a, shapes[0])),),
                    {"eps": a.eps, "elementwise_affine": a.elementwise_affine, "bias": a.bias})


class LayerNorm2dArgs(Args):
    normalized_shape: PositiveInt | None = arg("normalized_shape", "num_channels", default=None)
    elementwise_affine: bool = arg("elementwise_affine", "affine", default=True)
    bias: bool = True
    eps: PositiveFloat = 1e-5


@register
class LayerNorm2d(Layer):
    """Layer normalization of an image over its channels, at each position (ConvNeXt's LayerNorm2d).

    torchvision's `LayerNorm2d` (in `torchvision.models.convnext`): an `nn.LayerNorm(C)` applied with the
    channels moved last, y[:, h, w] = (x[:, h, w] - mean) / √(var + ε)·γ + β with the statistics over the
    C channels of each position, then moved back. The parameters are `weight` and `bias` of shape [C], as
    torchvision's checkpoints hold them. (`layernorm` normalizes the trailing dims instead: over W, or
    over [C, H, W] together.)

    Args:
        normalized_shape (alias `num_channels`): optional; the channels C, inferred, checked when given.
        elementwise_affine (alias `affine`): learn the per-channel scale γ (and shift β).
        bias: learn the shift β (with elementwise_affine).
        eps: ε added to the variance (torchvision's ConvNeXt uses 1e-6).

    Shapes: (C, H, W) -> (C, H, W); H and W may be symbolic, C is known.

    Costs: params = 2C with affine and bias, C without bias; MACs 0; FLOPs = 5 per element with affine,
    4 without (fvcore's convention, as `layernorm`).

    Example: `- layernorm2d` or `- layernorm2d: {eps: 1.0e-6}`
    """

    op = "layernorm2d"
    family = "norm"
    Args = LayerNorm2dArgs
    main_arg = "normalized_shape"

    def infer(self, a, shapes):
        (shape,) = shapes
        check_image(self.op, shape, "use `layernorm` to normalize the last dim of a sequence or vector")
        check_stated(a, "normalized_shape", known(shape[0], "channel dim", self.op), "channels")
        return shape

    def params(self, a, shapes):
        return shapes[0][0] * (2 if a.bias else 1) if a.elementwise_affine else 0

    def flops(self, a, shapes, out):
        return count(shapes[0]) * (5 if a.elementwise_affine else 4)

    def label(self, a):
        return "layernorm2d"

    def module(self, a, shapes):
        return Call("LayerNorm", (shapes[0][0],),
                    {"eps": a.eps, "elementwise_affine": a.elementwise_affine, "bias": a.bias})

    def forward(self, m, a, xs):
        return m(xs[0].permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (B, H, W, C) normalized over C


class GroupNormArgs(Args):
    num_groups: PositiveInt
    num_channels: PositiveInt | None = None
    eps: PositiveFloat = 1e-5
    affine: bool = True


@register
class GroupNorm(Layer):
    """Group normalization: the channels split into groups, each normalized over its channels and positions.

    Args:
        num_groups: groups G; must divide the channels C.
        num_channels: optional; the channels C, inferred from the input, checked when given.
        eps: ε added to the variance.
        affine: learn a per-channel scale γ and shift β.

    Shapes: (C, *) -> (C, *); trailing dims may be symbolic.

    Costs: params = 2C with affine; MACs 0; FLOPs = 5 per element with affine, 4 without
    (fvcore's convention: the statistics are computed per sample, also in inference).

    Example: `- groupnorm: 32` or `- groupnorm: {num_groups: 8, eps: 1.0e-6}`
    """

    op = "groupnorm"
    family = "norm"
    Args = GroupNormArgs
    main_arg = "num_groups"

    def infer(self, a, shapes):
        (shape,) = shapes
        if not shape:
            raise ShapeError("groupnorm needs a channel dim, got a scalar")
        channels = known(shape[0], "channel dim", self.op)
        check_stated(a, "num_channels", channels, "channels")
        check_groups(a, "num_groups", channels)
        return shape

    def params(self, a, shapes):
        return 2 * shapes[0][0] if a.affine else 0

    def flops(self, a, shapes, out):
        return count(shapes[0]) * (5 if a.affine else 4)

    def label(self, a):
        return f"groupnorm {a.num_groups}"

    def module(self, a, shapes):
        return Call("GroupNorm", (a.num_groups, shapes[0][0]), {"eps": a.eps, "affine": a.affine})


class LayerScaleArgs(Args):
    init_value: float = 1e-6
    shape: Annotated[list[PositiveInt], Field(min_length=1)] | None = None


@register
class LayerScale(Layer):
    """Multiply the input by a learnable tensor held as the layer itself (ConvNeXt's and CaiT's layer scale).

    The tensor's `state_dict` key is the layer's own name (`features.1.0.layer_scale`, as torchvision's
    ConvNeXt names it), with no `.weight` suffix. Its family is `norm`, so a spec's `init:` scheme
    leaves it at `init_value`, as it leaves a norm's scale.

    Args:
        init_value: the initial value of every element (torchvision's ConvNeXt uses 1e-6).
        shape: the tensor's shape; default [C, 1, …, 1], one value per channel (dim 0) of an input of
            the same rank. Any shape that broadcasts to the input without changing it: as many dims
            or fewer (aligned on the right, as torch broadcasts), each equal to the input's or 1
            (`[E]` scales the features of a token sequence [N, E]).

    Shapes: (*) -> (*); dims under a 1 of `shape` may be symbolic.

    Costs: params = prod(shape); MACs 0 (scaling is not in the MAC column); FLOPs = 1 per element
    (the products).

    Example: `- layer_scale` or `- layer_scale: {init_value: 1.0e-5, shape: [768]}`
    """

    op = "layer_scale"
    family = "norm"
    Args = LayerScaleArgs
    main_arg = "init_value"

    def table(self, a, shape) -> tuple:
        if a.shape is not None:
            return tuple(a.shape)
        if not shape:
            raise ShapeError("layer_scale needs a channel dim, got a scalar", hint="give `shape: [1]`")
        return (known(shape[0], "channel dim", self.op, hint="give `shape` with a 1 for that dim"),
                *[1] * (len(shape) - 1))

    def infer(self, a, shapes):
        (shape,) = shapes
        table = self.table(a, shape)
        trailing = shape[len(shape) - len(table):]
        if len(table) > len(shape) or any(t != 1 and t != d for t, d in zip(table, trailing, strict=True)):
            raise ShapeError(f"layer_scale shape {list(table)} does not broadcast to the input "
                             f"{format_shape(shape)} without changing it", arg="shape",
                             hint="use as many dims as the input or fewer, each equal to the input's "
                                  "(aligned on the right) or 1")
        return shape

    def params(self, a, shapes):
        return count(self.table(a, shapes[0]))

    def flops(self, a, shapes, out):
        return count(out)

    def label(self, a):
        return f"layer_scale {a.init_value:g}"

    def module(self, a, shapes):
        return Call.parameter(self.table(a, shapes[0]), a.init_value)

    def forward(self, m, a, xs):
        return xs[0] * m
