"""Regularization layers: dropout of elements, of whole channels and of whole residual branches
(stochastic depth), active in training only."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Args, Call, Layer, check_image, register


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
        check_image(self.op, shape, "use `dropout` to drop single elements")
        return shape

    def label(self, a):
        return f"dropout2d {a.p:g}"

    def module(self, a, shapes):
        return Call("Dropout2d", (), {"p": a.p})


class StochasticDepthArgs(Args):
    p: float = Field(ge=0.0, le=1.0)
    mode: Literal["row", "batch"] = "row"


@register
class StochasticDepth(Layer):
    """Stochastic depth (drop path): in training, zero a residual branch's whole output per sample
    (`row`) or for the whole batch (`batch`) with probability p, scaling what survives by 1/(1-p).

    The semantics of torchvision's `StochasticDepth(p, mode)` (Huang et al. 2016), built from
    torch alone: an `nn.Dropout(p)` (so it follows the module's train/eval mode) draws the mask
    from a tensor of ones, one per sample (`row`) or one for the batch (`batch`).

    Args:
        p: the probability of dropping the branch, 0 ≤ p ≤ 1.
        mode: `row` (each sample drops independently, as Swin and ConvNeXt use it) or `batch`
            (one draw for the whole batch).

    Shapes: (*) -> (*); any dims, symbolic ones included. In evaluation the layer is the identity.

    Costs: params 0; MACs 0; FLOPs 0 (counted in inference, where it does nothing).

    Example: `- stochastic_depth: 0.1` on the branch before its `add`, or
    `- stochastic_depth: {p: 0.2, mode: batch}`
    """

    op = "stochastic_depth"
    family = "regularization"
    Args = StochasticDepthArgs
    main_arg = "p"

    def label(self, a):
        return f"stochastic_depth {a.p:g}" + ("" if a.mode == "row" else " batch")

    def module(self, a, shapes):
        return Call("Dropout", (), {"p": a.p})

    def forward(self, m, a, xs):
        (x,) = xs
        if a.mode == "batch":
            return x * m(x.new_ones(1))  # one draw: 0, or 1/(1-p)
        keep = m(x.new_ones(x.shape[0]))  # (B,): per sample 0, or 1/(1-p)
        return (x.movedim(0, -1) * keep).movedim(-1, 0)
