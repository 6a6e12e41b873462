"""Attention over token sequences [N, E], and the learnable tokens a vision transformer adds."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from ..arith import Dim, dim_sum, format_shape, nearest_divisors
from .base import GLOBAL, Args, Call, Layer, ShapeError, arg, check_stated, count, known, register


def tokens(op: str, shape) -> tuple[Dim, int]:
    """(N, E) of a per-sample token sequence; E must be known."""
    if len(shape) != 2:
        hint = "`flatten` and `permute` an image into [tokens, channels] first" if len(shape) > 2 else None
        raise ShapeError(f"{op} needs a token sequence [N, embed_dim], got {format_shape(shape)}", hint=hint)
    n, e = shape
    return n, known(e, "embedding dim", op)


class SelfAttentionArgs(Args):
    num_heads: PositiveInt = arg("num_heads", "heads")
    dropout: float = Field(0.0, ge=0.0, le=1.0)
    bias: bool = True
    embed_dim: PositiveInt | None = None


@register
class SelfAttention(Layer):
    """Multi-head self-attention: every token attends to every token (torch.nn.MultiheadAttention).

    Args:
        num_heads (alias `heads`): attention heads; must divide the embedding dim E.
        dropout: dropout on the attention weights, in training.
        bias: learn the input and output projection biases.
        embed_dim: optional; inferred from the input, checked when given.

    Shapes: (N, E) -> (N, E); N may be symbolic.

    Costs: params = 4E² + 4E (bias), as torch counts (q, k, v and output
    projections); MACs = 4·N·E² for the projections plus 2·N²·E for the two
    matrix products (q·kᵀ and weights·v, over all heads); bias adds, scaling and
    softmax not counted. Receptive field: global.

    Example: `- self_attention: 8` or `- self_attention: {heads: 8, dropout: 0.1}`
    """

    op = "self_attention"
    family = "attention"
    Args = SelfAttentionArgs
    main_arg = "num_heads"

    def infer(self, a, shapes):
        _, e = tokens(self.op, shapes[0])
        check_stated(a, "embed_dim", e, "features", holder="the tokens have")
        if e % a.num_heads:
            fits = nearest_divisors(e, a.num_heads, 6)
            raise ShapeError(f"num_heads {a.num_heads} does not divide the embedding dim {e}",
                             hint=f"use a num_heads that divides {e}: {', '.join(map(str, fits))}",
                             arg="num_heads")
        return shapes[0]

    def params(self, a, shapes):
        e = shapes[0][-1]
        return 4 * e * e + (4 * e if a.bias else 0)

    def macs(self, a, shapes, out):
        n = count(shapes[0][:1])
        e = shapes[0][-1]
        return 4 * n * e * e + 2 * n * n * e

    def rf(self, a, shapes):
        return GLOBAL

    def label(self, a):
        return f"self_attention {a.num_heads} heads"

    def module(self, a, shapes):
        return Call("MultiheadAttention", (shapes[0][-1], a.num_heads),
                    {"dropout": a.dropout, "bias": a.bias, "batch_first": True})

    def forward(self, m, a, xs):
        (x,) = xs
        return m(x, x, x, need_weights=False)[0]


@register
class ClassToken(Layer):
    """Prepend one learnable token to a token sequence (ViT's [class] token).

    Args: none.

    Shapes: (N, E) -> (N+1, E); N may be symbolic.

    Costs: params = E; no MACs. The token starts at zero.

    Example: `- class_token`
    """

    op = "class_token"
    family = "attention"

    def infer(self, a, shapes):
        n, e = tokens(self.op, shapes[0])
        return (dim_sum([n, 1]), e)

    def params(self, a, shapes):
        return shapes[0][-1]

    def module(self, a, shapes):
        return Call.parameter((1, 1, shapes[0][-1]))

    def forward(self, m, a, xs):
        import torch

        (x,) = xs
        return torch.cat([m.expand(x.shape[0], -1, -1), x], dim=1)


@register
class PosEmbedding(Layer):
    """Add a learnable position table, one E-vector per token position.

    Args: none.

    Shapes: (N, E) -> (N, E); N must be known (the table has N rows).

    Costs: params = N·E; no MACs; flops = N·E (the additions). The table starts at zero.

    Example: `- pos_embedding`
    """

    op = "pos_embedding"
    family = "attention"

    def infer(self, a, shapes):
        n, _ = tokens(self.op, shapes[0])
        known(n, "number of tokens", self.op,
              hint="the position table has one row per token: give the input a fixed length")
        return shapes[0]

    def params(self, a, shapes):
        return count(shapes[0])

    def flops(self, a, shapes, out):
        return count(out)

    def module(self, a, shapes):
        return Call.parameter((1, *shapes[0]))

    def forward(self, m, a, xs):
        (x,) = xs
        return x + m
