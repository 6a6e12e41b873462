"""Attention over token sequences [N, E], and the learnable tokens a vision transformer adds."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from ..arith import Dim, dim_sum, format_shape, is_known, nearest_divisors
from .base import GLOBAL, Args, Call, Layer, ShapeError, arg, check_stated, count, known, register


def tokens(op: str, shape) -> tuple[Dim, int]:
    """(N, E) of a per-sample token sequence; E must be known."""
    if len(shape) != 2:
        hint = "`flatten` and `permute` an image into [tokens, channels] first" if len(shape) > 2 else None
        raise ShapeError(f"{op} needs a token sequence [N, embed_dim], got {format_shape(shape)}", hint=hint)
    n, e = shape
    return n, known(e, "embedding dim", op)


def check_heads(heads: int, e: int) -> None:
    """The heads must divide the embedding dim E: ShapeError naming the divisors nearest `heads`."""
    if e % heads:
        fits = nearest_divisors(e, heads, 6)
        raise ShapeError(f"num_heads {heads} does not divide the embedding dim {e}",
                         hint=f"use a num_heads that divides {e}: {', '.join(map(str, fits))}", arg="num_heads")


class AttentionArgs(Args):
    """The arguments of self- and cross-attention alike (torch.nn.MultiheadAttention's)."""

    num_heads: PositiveInt = arg("num_heads", "heads")
    dropout: float = Field(0.0, ge=0.0, le=1.0)
    bias: bool = True
    embed_dim: PositiveInt | None = None


class SelfAttentionArgs(AttentionArgs):
    causal: bool = arg("causal", "is_causal", default=False)


@register
class SelfAttention(Layer):
    """Multi-head self-attention: every token attends to every token (torch.nn.MultiheadAttention).

    Args:
        num_heads (alias `heads`): attention heads; must divide the embedding dim E.
        dropout: dropout on the attention weights, in training.
        bias: learn the input and output projection biases.
        embed_dim: optional; inferred from the input, checked when given.
        causal (alias `is_causal`): token i attends to tokens 0..i only (a decoder's mask: a boolean
            [N, N] `attn_mask`, True above the diagonal, built in the forward for the input's length).

    Shapes: (N, E) -> (N, E); N may be symbolic.

    Costs: params = 4E² + 4E (bias), as torch counts (q, k, v and output
    projections); MACs = 4·N·E² for the projections plus 2·N²·E for the two
    matrix products (q·kᵀ and weights·v, over all heads), causal or not (torch computes the
    masked scores too); bias adds, scaling and softmax not counted. Receptive field: global
    (causal: every earlier token).

    Example: `- self_attention: 8` or `- self_attention: {heads: 8, dropout: 0.1, causal: true}`
    """

    op = "self_attention"
    family = "attention"
    Args = SelfAttentionArgs
    main_arg = "num_heads"

    def infer(self, a, shapes):
        _, e = tokens(self.op, shapes[0])
        check_stated(a, "embed_dim", e, "features", holder="the tokens have")
        check_heads(a.num_heads, e)
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
        return f"self_attention {a.num_heads} heads" + (" causal" if a.causal else "")

    def module(self, a, shapes):
        return Call("MultiheadAttention", (shapes[0][-1], a.num_heads),
                    {"dropout": a.dropout, "bias": a.bias, "batch_first": True})

    def forward(self, m, a, xs):
        (x,) = xs
        if a.causal:
            import torch

            n = x.shape[1]
            future = torch.ones((n, n), dtype=torch.bool, device=x.device).triu(1)  # (N, N): True masks j > i
            return m(x, x, x, need_weights=False, attn_mask=future)[0]
        return m(x, x, x, need_weights=False)[0]


class CrossAttentionArgs(AttentionArgs):
    kdim: PositiveInt | None = None


@register
class CrossAttention(Layer):
    """Multi-head cross-attention: the tokens of the first input attend to those of the second
    (torch.nn.MultiheadAttention with queries from one sequence, keys and values from another: a
    transformer decoder reading its encoder's memory).

    Args:
        num_heads (alias `heads`): attention heads; must divide the query embedding dim E.
        dropout: dropout on the attention weights, in training.
        bias: learn the input and output projection biases.
        embed_dim: optional; E, inferred from the queries, checked when given.
        kdim: optional; the memory's feature dim K (torch's `kdim`, and `vdim`), inferred, checked
            when given. K may differ from E: the keys and values are projected to E.
        The inputs come from `from: [queries, memory]`, in that order.

    Shapes: (N, E), (M, K) -> (N, E); N and M may be symbolic, independently.

    Costs: params = 2E² + 2E·K + 4E (bias), as torch counts (q and output projections E×E, k and
    v projections E×K; one packed in_proj of 3E² when K = E, the same count); MACs = 2·N·E² + 2·M·E·K
    for the projections plus 2·N·M·E for the two matrix products; bias adds, scaling and softmax not
    counted. Receptive field: global.

    Example: `- cross_attention: 8` with `from: [decoder, encoder]`
    """

    op = "cross_attention"
    family = "attention"
    Args = CrossAttentionArgs
    main_arg = "num_heads"
    arity = (2, 2)

    def infer(self, a, shapes):
        queries, memory = shapes
        n, e = tokens(self.op, queries)
        _, k = tokens(self.op, memory)
        check_stated(a, "embed_dim", e, "features", holder="the queries have")
        check_stated(a, "kdim", k, "features", holder="the memory has")
        check_heads(a.num_heads, e)
        return (n, e)

    def params(self, a, shapes):
        e, k = shapes[0][-1], shapes[1][-1]
        return 2 * e * e + 2 * e * k + (4 * e if a.bias else 0)

    def macs(self, a, shapes, out):
        n, m = count(shapes[0][:1]), count(shapes[1][:1])
        e, k = shapes[0][-1], shapes[1][-1]
        return 2 * n * e * e + 2 * m * e * k + 2 * n * m * e

    def rf(self, a, shapes):
        return GLOBAL

    def label(self, a):
        return f"cross_attention {a.num_heads} heads"

    def module(self, a, shapes):
        e, k = shapes[0][-1], shapes[1][-1]
        dims = {} if k == e else {"kdim": k, "vdim": k}
        return Call("MultiheadAttention", (e, a.num_heads),
                    {"dropout": a.dropout, "bias": a.bias, **dims, "batch_first": True})

    def forward(self, m, a, xs):
        queries, memory = xs
        return m(queries, memory, memory, need_weights=False)[0]


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


class PosEmbeddingArgs(Args):
    max_len: PositiveInt | None = None


@register
class PosEmbedding(Layer):
    """Add a learnable position table, one E-vector per token position.

    Args:
        max_len: optional; the table's rows, for sequences of any length up to it (a symbolic N):
            the first N rows are added. Default: one row per token of the input, whose N must be known.

    Shapes: (N, E) -> (N, E); N may be symbolic with max_len (checked N ≤ max_len when known).

    Costs: params = max_len·E, or N·E; no MACs; flops = N·E (the additions). The table starts at zero;
    its `state_dict` key is the layer's own name, of shape [1, rows, E] (torchvision's ViT
    `encoder.pos_embedding`).

    Example: `- pos_embedding` or `- pos_embedding: 512` (a sequence [T, E] of up to 512 tokens)
    """

    op = "pos_embedding"
    family = "attention"
    Args = PosEmbeddingArgs
    main_arg = "max_len"

    def rows(self, a, shape) -> int:
        n, _ = tokens(self.op, shape)
        if a.max_len is not None:
            if is_known(n) and n > a.max_len:
                raise ShapeError(f"pos_embedding has max_len {a.max_len} rows but the input has {n} tokens",
                                 hint=f"use max_len ≥ {n}", arg="max_len")
            return a.max_len
        return known(n, "number of tokens", self.op,
                     hint="the position table has one row per token: give the input a fixed length, "
                          "or a `max_len`")

    def infer(self, a, shapes):
        self.rows(a, shapes[0])
        return shapes[0]

    def params(self, a, shapes):
        return self.rows(a, shapes[0]) * shapes[0][-1]

    def flops(self, a, shapes, out):
        return count(out)

    def label(self, a):
        return "pos_embedding" if a.max_len is None else f"pos_embedding ≤{a.max_len}"

    def module(self, a, shapes):
        return Call.parameter((1, self.rows(a, shapes[0]), shapes[0][-1]))

    def forward(self, m, a, xs):
        (x,) = xs
        if a.max_len is not None:
            return x + m[:, : x.shape[1]]  # the first N rows
        return x + m


@register
class SinusoidalPosEmbedding(Layer):
    """Add the fixed sinusoidal position encoding of Vaswani et al. 2017 ("Attention is all you need", §3.5).

    PE[n, 2i] = sin(n / 10000^(2i/E)), PE[n, 2i+1] = cos(n / 10000^(2i/E)), computed in the forward
    for the input's length, so N may be symbolic and there is nothing to learn or store.

    Args: none.

    Shapes: (N, E) -> (N, E); N may be symbolic; E is known and even.

    Costs: params 0; no MACs; flops = 2·N·E (a sine or cosine and an addition per element).
    Receptive field: kept (each token gets its own position's vector).

    Example: `- sinusoidal_pos_embedding`
    """

    op = "sinusoidal_pos_embedding"
    family = "attention"

    def infer(self, a, shapes):
        _, e = tokens(self.op, shapes[0])
        if e % 2:
            raise ShapeError(f"sinusoidal_pos_embedding pairs sines and cosines, so it needs an even embedding dim, "
                             f"got {e}", hint="project to an even width with `linear` first")
        return shapes[0]

    def flops(self, a, shapes, out):
        return 2 * count(out)

    def forward(self, m, a, xs):
        import math

        import torch

        (x,) = xs  # (B, N, E)
        n, e = x.shape[1], x.shape[2]
        position = torch.arange(n, device=x.device, dtype=x.dtype).unsqueeze(1)  # (N, 1)
        freq = torch.exp(torch.arange(0, e, 2, device=x.device, dtype=x.dtype) * (-math.log(10000.0) / e))
        angle = position * freq  # (N, E/2)
        return x + torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(-2)  # sin, cos interleaved
