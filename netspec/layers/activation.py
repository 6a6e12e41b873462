"""Activation functions: element-wise non-linearities, and softmax over one dim."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import PositiveFloat, PositiveInt, model_validator

from ..arith import format_shape
from .base import ANY, GLOBAL, Args, Call, Layer, ShapeError, batch_dim, check_dim, check_stated, count, known, register


class Elementwise(Layer):
    """What the element-wise activations share: shape kept, 1 FLOP per element, one torch class."""

    family = "activation"
    torch_cls: ClassVar[str]

    def flops(self, a, shapes, out):
        return count(shapes[0])

    def module(self, a, shapes):
        return Call(self.torch_cls, (), self.module_kwargs(a))

    def module_kwargs(self, a) -> dict:
        """The torch class's keyword arguments: every argument, under its name (the torch name)."""
        return dict(a)


@register
class ReLU(Elementwise):
    """Rectified linear unit: y = max(0, x).

    Args: none.

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 1 per element (every activation counts as one op).

    Example: `- relu`
    """

    op = "relu"
    torch_cls = "ReLU"


class LeakyReLUArgs(Args):
    negative_slope: float = 0.01


@register
class LeakyReLU(Elementwise):
    """Leaky rectified linear unit: y = x for x ≥ 0, negative_slope·x otherwise.

    Args:
        negative_slope: the slope for negative inputs.

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 1 per element (every activation counts as one op).

    Example: `- leaky_relu` or `- leaky_relu: 0.2`
    """

    op = "leaky_relu"
    Args = LeakyReLUArgs
    main_arg = "negative_slope"
    torch_cls = "LeakyReLU"

    def label(self, a):
        return f"leaky_relu {a.negative_slope:g}"


class ELUArgs(Args):
    alpha: float = 1.0


@register
class ELU(Elementwise):
    """Exponential linear unit: y = x for x > 0, alpha·(exp(x) - 1) otherwise.

    Args:
        alpha: the scale of the negative part; the output tends to -alpha for very negative inputs.

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 1 per element (every activation counts as one op).

    Example: `- elu` or `- elu: 0.5`
    """

    op = "elu"
    Args = ELUArgs
    main_arg = "alpha"
    torch_cls = "ELU"

    def label(self, a):
        return "elu" if a.alpha == 1.0 else f"elu {a.alpha:g}"


@register
class Sigmoid(Elementwise):
    """Logistic sigmoid: y = 1 / (1 + exp(-x)).

    Args: none.

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 1 per element (every activation counts as one op).

    Example: `- sigmoid`
    """

    op = "sigmoid"
    torch_cls = "Sigmoid"


@register
class Tanh(Elementwise):
    """Hyperbolic tangent: y = tanh(x).

    Args: none.

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 1 per element (every activation counts as one op).

    Example: `- tanh`
    """

    op = "tanh"
    torch_cls = "Tanh"


class GELUArgs(Args):
    approximate: Literal["none", "tanh"] = "none"


@register
class GELU(Elementwise):
    """Gaussian error linear unit: y = x·Φ(x), Φ the standard normal CDF.

    Args:
        approximate: `none` (exact, with erf) or `tanh` (the tanh approximation of GPT-2 and BERT).

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 1 per element (every activation counts as one op).

    Example: `- gelu` or `- gelu: tanh`
    """

    op = "gelu"
    Args = GELUArgs
    main_arg = "approximate"
    torch_cls = "GELU"

    def label(self, a):
        return "gelu" if a.approximate == "none" else "gelu tanh"


@register
class SiLU(Elementwise):
    """Sigmoid linear unit (swish): y = x·sigmoid(x).

    Args: none.

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 1 per element (every activation counts as one op).

    Example: `- silu`
    """

    op = "silu"
    torch_cls = "SiLU"


@register
class Identity(Elementwise):
    """The identity: y = x (a placeholder, e.g. an optional layer switched off).

    Args: none.

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs 0.

    Example: `- identity`
    """

    op = "identity"
    dtypes = ANY
    torch_cls = "Identity"

    def flops(self, a, shapes, out):
        return 0


@register
class ReLU6(Elementwise):
    """ReLU capped at 6: y = min(max(0, x), 6) (MobileNet v1/v2).

    Args: none.

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 1 per element (every activation counts as one op).

    Example: `- relu6`
    """

    op = "relu6"
    torch_cls = "ReLU6"


class HardtanhArgs(Args):
    min_val: float = -1.0
    max_val: float = 1.0

    @model_validator(mode="after")
    def _ordered(self):
        if self.min_val >= self.max_val:
            raise ValueError(f"min_val {self.min_val:g} must be below max_val {self.max_val:g}")
        return self


@register
class Hardtanh(Elementwise):
    """Hard tanh: y = x clamped to [min_val, max_val].

    Args:
        min_val: the lower bound.
        max_val: the upper bound; above min_val.

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 1 per element (every activation counts as one op).

    Example: `- hardtanh` or `- hardtanh: {min_val: 0.0, max_val: 6.0}`
    """

    op = "hardtanh"
    Args = HardtanhArgs
    torch_cls = "Hardtanh"

    def label(self, a):
        return "hardtanh" if (a.min_val, a.max_val) == (-1.0, 1.0) else f"hardtanh [{a.min_val:g}, {a.max_val:g}]"


@register
class Hardswish(Elementwise):
    """Hard swish: y = x·relu6(x + 3) / 6, a piecewise approximation of silu (MobileNetV3).

    Args: none.

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 1 per element (every activation counts as one op).

    Example: `- hardswish`
    """

    op = "hardswish"
    torch_cls = "Hardswish"


@register
class Hardsigmoid(Elementwise):
    """Hard sigmoid: y = relu6(x + 3) / 6, a piecewise approximation of sigmoid (MobileNetV3's gates).

    Args: none.

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 1 per element (every activation counts as one op).

    Example: `- hardsigmoid`
    """

    op = "hardsigmoid"
    torch_cls = "Hardsigmoid"


@register
class SELU(Elementwise):
    """Scaled exponential linear unit: y = scale·elu(x, alpha), with the fixed constants of
    Klambauer et al. 2017 (alpha ≈ 1.6733, scale ≈ 1.0507) that keep activations self-normalizing.

    Args: none.

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 1 per element (every activation counts as one op).

    Example: `- selu`
    """

    op = "selu"
    torch_cls = "SELU"


class SoftplusArgs(Args):
    beta: PositiveFloat = 1.0
    threshold: PositiveFloat = 20.0


@register
class Softplus(Elementwise):
    """Softplus: y = log(1 + exp(beta·x)) / beta, a smooth relu; linear where beta·x > threshold.

    Args:
        beta: the sharpness; larger is closer to relu.
        threshold: above this value of beta·x the output is x (for numerical stability).

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 1 per element (every activation counts as one op).

    Example: `- softplus` or `- softplus: 2.0`
    """

    op = "softplus"
    Args = SoftplusArgs
    main_arg = "beta"
    torch_cls = "Softplus"

    def label(self, a):
        return "softplus" if a.beta == 1.0 else f"softplus {a.beta:g}"


@register
class Mish(Elementwise):
    """Mish: y = x·tanh(softplus(x)) (Misra 2019).

    Args: none.

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 1 per element (every activation counts as one op).

    Example: `- mish`
    """

    op = "mish"
    torch_cls = "Mish"


class PReLUArgs(Args):
    num_parameters: PositiveInt = 1
    init: float = 0.25


@register
class PReLU(Elementwise):
    """Parametric relu: y = x for x ≥ 0, a·x otherwise, with the slope a learned (He et al. 2015).

    Args:
        num_parameters: 1 (one slope shared by every element) or C (one slope per channel, dim 0
            of the per-sample input, as torch takes dim 1 of the batch).
        init: the slopes' initial value. (Inside the op's arguments: the item-level `init:`
            names a weight scheme, which leaves these 1-d slopes at this value.)

    Shapes: (*) -> (*); any dims, symbolic ones included; with num_parameters > 1 the input is
    (C, *) with C = num_parameters.

    Costs: params = num_parameters, as torch counts; MACs 0; FLOPs = 1 per element (every
    activation counts as one op).

    Example: `- prelu` or `- prelu: 64` (one slope per channel of a [64, H, W] map)
    """

    op = "prelu"
    Args = PReLUArgs
    main_arg = "num_parameters"
    torch_cls = "PReLU"

    def infer(self, a, shapes):
        (shape,) = shapes
        if a.num_parameters > 1:
            if not shape:
                raise ShapeError(f"prelu with num_parameters {a.num_parameters} needs a channel dim, got a scalar",
                                 hint="use num_parameters 1 (one shared slope)", arg="num_parameters")
            channels = known(shape[0], "channel dim", self.op)
            check_stated(a, "num_parameters", channels, "channels (dim 0)",
                         hint=f"use num_parameters {channels} (one slope per channel) or 1 (one shared slope)")
        return shape

    def params(self, a, shapes):
        return a.num_parameters

    def label(self, a):
        return "prelu" if a.num_parameters == 1 else f"prelu {a.num_parameters}"


class GLUArgs(Args):
    dim: int = -1


@register
class GLU(Layer):
    """Gated linear unit: the input splits in two halves a, b along `dim`; y = a·sigmoid(b) (Dauphin et al. 2017).

    Args:
        dim: the per-sample dim halved (batch excluded; negative counts from the end).

    Shapes: (*, 2n, *) -> (*, n, *) along `dim`, whose size must be known and even; other
    dims may be symbolic.

    Costs: params 0; MACs 0; FLOPs = 2 per output element (the sigmoid and the product).
    Receptive field: global when a spatial dim (any but dim 0 of [C, *spatial]) is halved (position i
    reads i + n too), else kept.

    Example: `- glu` or `- glu: 0` (halve the channels of a [2C, L] sequence)
    """

    op = "glu"
    family = "activation"
    Args = GLUArgs
    main_arg = "dim"

    def infer(self, a, shapes):
        (shape,) = shapes
        dim = check_dim(self.op, a.dim, shape)
        size = known(shape[dim], f"size of dim {a.dim}", self.op)
        if size % 2:
            raise ShapeError(f"glu halves dim {a.dim}, but it is {size} (odd) in the input {format_shape(shape)}",
                             hint="give that dim an even size, e.g. a `linear` or conv with twice the width",
                             arg="dim")
        return (*shape[:dim], size // 2, *shape[dim + 1:])

    def flops(self, a, shapes, out):
        return 2 * count(out)

    def rf(self, a, shapes):
        return GLOBAL if check_dim(self.op, a.dim, shapes[0]) else None

    def label(self, a):
        return f"glu dim={a.dim}"

    def module(self, a, shapes):
        return Call("GLU", (), {"dim": batch_dim(a.dim)})


class SoftmaxArgs(Args):
    dim: int = -1


class AlongDim(Elementwise):
    """What softmax and log_softmax share: a dim checked against the input, 3 FLOPs per element."""

    Args = SoftmaxArgs
    main_arg = "dim"

    def infer(self, a, shapes):
        check_dim(self.op, a.dim, shapes[0])
        return shapes[0]

    def flops(self, a, shapes, out):
        return 3 * count(shapes[0])

    def label(self, a):
        return f"{self.op} dim={a.dim}"

    def module_kwargs(self, a):
        return {"dim": batch_dim(a.dim)}


@register
class Softmax(AlongDim):
    """Softmax along one dim: y_i = exp(x_i) / Σ_j exp(x_j).

    Args:
        dim: the per-sample dim the outputs sum to 1 along (batch excluded; negative counts from the end).

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 3 per element (an exponential, a sum term and a division).

    Example: `- softmax` or `- softmax: 0`
    """

    op = "softmax"
    torch_cls = "Softmax"


@register
class LogSoftmax(AlongDim):
    """Logarithm of the softmax along one dim: y_i = x_i - log Σ_j exp(x_j).

    Args:
        dim: the per-sample dim normalized along (batch excluded; negative counts from the end).

    Shapes: (*) -> (*); any dims, symbolic ones included.

    Costs: params 0; MACs 0; FLOPs = 3 per element (an exponential, a sum term and a
    subtraction; the one log per row is not counted).

    Example: `- log_softmax` or `- log_softmax: 0`
    """

    op = "log_softmax"
    torch_cls = "LogSoftmax"
