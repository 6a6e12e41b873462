"""Regularization layers: dropout of elements and of whole channels, active in training only."""

from __future__ import annotations

from pydantic import Field

from ..arith import format_shape
from .base import Args, Call, Layer, ShapeError, register


class DropoutArgs(Args):
    p: float = Field(0.5, ge=0.0, le=1.0)


@register
class Dropout(Layer):
    """Dropout: in training, zero each element with probability p and scale the rest by 1/(1-p).

    Args:
        p: the probability of zeroing an element, 0 ≤ p ≤ 1 (p = 1 zeroes everything, as torch does).

    Shapes: (*) -> (*); any dims, symbolic ones included. In evaluation the layer is the identity
    (torch's nn.Dropout, following the module's train/eval mode).

    Costs: params 0; MACs 0; FLOPs 0 (counted in inference, where dropout does nothing).

    Example: `- dropout: 0.2`
    """

    op = "dropout"
    family = "regularization"
    Args = DropoutArgs
    main_arg = "p"

    def label(self, a):
        return f"dropout {a.p:g}"

    def module(self, a, shapes):
        return Call("Dropout", (), {"p": a.p})


@register
class Dropout2d(Layer):
    """Channel dropout: in training, zero each whole channel with probability p (the rest scaled by 1/(1-p)).

    Args:
        p: the probability of zeroing a channel, 0 ≤ p ≤ 1.

    Shapes: (C, H, W) -> (C, H, W); H and W may be symbolic. In evaluation the layer is the
    identity (torch's nn.Dropout2d, following the module's train/eval mode).

    Costs: params 0; MACs 0; FLOPs 0 (counted in inference, where dropout does nothing).

    Example: `- dropout2d: 0.1`
    """

    op = "dropout2d"
    family = "regularization"
    Args = DropoutArgs
    main_arg = "p"

    def infer(self, a, shapes):
        (shape,) = shapes
        if len(shape) != 3:
            raise ShapeError(f"dropout2d needs an image [C, H, W], got {format_shape(shape)}",
                             hint="use `dropout` to drop single elements")
        return shape

    def label(self, a):
        return f"dropout2d {a.p:g}"

    def module(self, a, shapes):
        return Call("Dropout2d", (), {"p": a.p})
