"""Activation functions: element-wise non-linearities, and softmax over one dim."""

from __future__ import annotations

from typing import ClassVar, Literal

from .base import ANY, Args, Call, Layer, batch_dim, check_dim, count, register


class Elementwise(Layer):
    """What the element-wise activations share: shape kept, 1 FLOP per element, one torch class."""

    family = "activation"
    torch_cls: ClassVar[str]

    def flops(self, a, shapes, out):
        return count(shapes[0])

    def module(self, a, shapes):
        return Call(self.torch_cls, (), self.module_kwargs(a))

    def module_kwargs(self, a) -> dict:
        return {}


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

    def module_kwargs(self, a):
        return {"negative_slope": a.negative_slope}


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

    def module_kwargs(self, a):
        return {"alpha": a.alpha}


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

    def module_kwargs(self, a):
        return {"approximate": a.approximate}


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
