"""Layers of generative models: the VAE's reparameterized sampling."""

from __future__ import annotations

from ..arith import format_shape
from .base import FROM, Layer, ShapeError, count, register


@register
class Reparameterize(Layer):
    """Sample z = μ + exp(½·logvar)·ε, ε ~ N(0, I): a VAE's differentiable draw from its code.

    It always samples, in training and in eval; for a deterministic code read
    the `mu` output instead.

    Args: the two inputs, `[mu, logvar]`, in that order.

    Shapes: (*), (*) -> (*); both inputs have one shape.

    Costs: no params, no MACs; flops = 3 per element (exp(½·logvar), the
    product with ε, the sum; drawing ε not counted).

    Example: `- reparameterize: [mu, logvar]`
    """

    op = "reparameterize"
    family = "generative"
    main_arg = FROM
    arity = (2, 2)

    def infer(self, a, shapes):
        mu, logvar = shapes
        if tuple(mu) != tuple(logvar):
            raise ShapeError(f"reparameterize needs mu and logvar of one shape, got {format_shape(mu)} "
                             f"and {format_shape(logvar)}",
                             hint="produce both from layers of the same width, e.g. two `linear` of one size")
        return mu

    def flops(self, a, shapes, out):
        return 3 * count(out)

    def forward(self, m, a, xs):
        import torch

        mu, logvar = xs
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
