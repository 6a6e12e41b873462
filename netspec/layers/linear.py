"""Fully connected layers."""

from __future__ import annotations

from pydantic import PositiveInt

from .base import GLOBAL, Args, Call, Layer, ShapeError, arg, check_stated, count, known, register


class LinearArgs(Args):
    out_features: PositiveInt = arg("out_features", "out")
    in_features: PositiveInt | None = None
    bias: bool = True


@register
class Linear(Layer):
    """Affine map over the last dim: y = x·Wᵀ + b.

    Args:
        out_features (alias `out`): output features.
        in_features: optional; inferred from the input, checked when given.
        bias: learn an additive bias.

    Shapes: (*, in_features) -> (*, out_features). Leading dims (a sequence's
    length, say) pass through.

    Costs: params = in·out + out (bias); MACs = in·out per output position
    (bias adds not counted).

    Example: `- linear: 10` or `- linear: {out_features: 10, bias: false}`
    """

    op = "linear"
    family = "linear"
    Args = LinearArgs
    main_arg = "out_features"

    def infer(self, a, shapes):
        (shape,) = shapes
        if not shape:
            raise ShapeError("linear needs at least one dim, got a scalar")
        features = known(shape[-1], "feature dim", "linear")
        hint = "insert `flatten` before `linear` to treat the whole tensor as one vector" if len(shape) > 1 else None
        check_stated(a, "in_features", features, "features", hint=hint)
        return (*shape[:-1], a.out_features)

    def params(self, a, shapes):
        return shapes[0][-1] * a.out_features + (a.out_features if a.bias else 0)

    def macs(self, a, shapes, out):
        return count(shapes[0]) * a.out_features

    def rf(self, a, shapes):
        return GLOBAL if len(shapes[0]) == 1 else None

    def label(self, a):
        return f"linear {a.out_features}"

    def module(self, a, shapes):
        return Call("Linear", (shapes[0][-1], a.out_features), {"bias": a.bias})
