"""Attention over token sequences [N, E], the learnable tokens a vision transformer adds, and Swin's
windowed attention and patch merging over channels-last maps [H, W, C]."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field, NonNegativeInt, PositiveInt, ValidationInfo, field_validator

from ..arith import MAX_ELEMENTS, Dim, as_tuple, dim_sum, format_shape, is_known, nearest_divisors
from .base import GLOBAL, Args, Call, Layer, ShapeError, TensorCall, arg, check_stated, count, known, register


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


def check_scores(heads: int, n: Dim, m: Dim) -> None:
    """The attention weights torch makes, [heads, N, M] per sample, must fit a tensor (fewer than
    arith.MAX_ELEMENTS elements): ShapeError otherwise. Symbolic lengths are checked once bound."""
    if is_known(n) and is_known(m) and heads * n * m >= MAX_ELEMENTS:
        raise ShapeError(f"its attention weights ([heads, queries, keys] = {heads}×{n}×{m}) would hold "
                         f"{heads * n * m:,} elements per sample; a torch tensor holds fewer than 2**60",
                         hint="attend over shorter sequences (pool or patch them first)")


def check_padding_mask(op: str, mask, n: Dim, what: str) -> None:
    """A key padding mask must hold one value per key: shape [N] for N `what` (ShapeError otherwise)."""
    if len(mask) != 1 or mask[0] != n:
        raise ShapeError(f"{op}'s padding mask must be [{n}], one value per {what[:-1]}; got {format_shape(mask)}",
                         hint=f"a mask input of shape [{n}], nonzero (or true) where a {what[:-1]} is padding")


def padding_mask(mask):
    """torch's `key_padding_mask` from a mask input: True where a key is padding (any nonzero value)."""
    import torch

    return torch.ne(mask, 0)


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
        A second input, `from: [tokens, mask]`, is a padding mask [N]: a token whose mask value is
        nonzero (or true) is padding, which no token attends to (torch's `key_padding_mask`).

    Shapes: (N, E) -> (N, E), or (N, E), (N) -> (N, E); N may be symbolic.

    Costs: params = 4E² + 4E (bias), as torch counts (q, k, v and output
    projections); MACs = 4·N·E² for the projections plus 2·N²·E for the two
    matrix products (q·kᵀ and weights·v, over all heads), causal or not (torch computes the
    masked scores too); bias adds, scaling and softmax not counted. Receptive field: global
    (causal: every earlier token).

    Example: `- self_attention: 8` or `- self_attention: {heads: 8, dropout: 0.1, causal: true}`, or with
    a padding mask `- self_attention: 8` and `from: [embedded, mask]`
    """

    op = "self_attention"
    family = "attention"
    Args = SelfAttentionArgs
    main_arg = "num_heads"
    arity = (1, 2)
    mask_inputs = (1,)

    def infer(self, a, shapes):
        n, e = tokens(self.op, shapes[0])
        check_stated(a, "embed_dim", e, "features", holder="the tokens have")
        check_heads(a.num_heads, e)
        check_scores(a.num_heads, n, n)
        if len(shapes) == 2:
            check_padding_mask(self.op, shapes[1], n, "tokens")
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
        x = xs[0]
        padding = {"key_padding_mask": padding_mask(xs[1])} if len(xs) == 2 else {}
        if a.causal:
            import torch

            n = x.shape[1]
            future = torch.ones((n, n), dtype=torch.bool, device=x.device).triu(1)  # (N, N): True masks j > i
            return m(x, x, x, need_weights=False, attn_mask=future, **padding)[0]
        return m(x, x, x, need_weights=False, **padding)[0]


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
        The inputs come from `from: [queries, memory]`, in that order; a third, `from: [queries, memory,
        mask]`, is the memory's padding mask [M]: a memory token whose mask value is nonzero (or true) is
        padding, which no query attends to (torch's `key_padding_mask`).

    Shapes: (N, E), (M, K) -> (N, E), or with the mask (M) too; N and M may be symbolic, independently.

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
    arity = (2, 3)
    mask_inputs = (2,)

    def infer(self, a, shapes):
        queries, memory = shapes[:2]
        n, e = tokens(self.op, queries)
        m, k = tokens(self.op, memory)
        check_stated(a, "embed_dim", e, "features", holder="the queries have")
        check_stated(a, "kdim", k, "features", holder="the memory has")
        check_heads(a.num_heads, e)
        check_scores(a.num_heads, n, m)
        if len(shapes) == 3:
            check_padding_mask(self.op, shapes[2], m, "memory tokens")
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
        queries, memory = xs[:2]
        padding = {"key_padding_mask": padding_mask(xs[2])} if len(xs) == 3 else {}
        return m(queries, memory, memory, need_weights=False, **padding)[0]


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


def channels_last(op: str, shape) -> tuple[int, int, int]:
    """(H, W, C) of a per-sample channels-last map, all known."""
    if len(shape) != 3:
        raise ShapeError(f"{op} needs a channels-last map [H, W, C], got {format_shape(shape)}",
                         hint="`permute: [1, 2, 0]` turns a [C, H, W] image into [H, W, C]" if len(shape) > 1
                         else None)
    h, w, c = shape
    hint = "the module is built for one map size (its padding, and any windows): give the map a known size"
    return known(h, "height", op, hint), known(w, "width", op, hint), known(c, "channel dim", op)


Pair = PositiveInt | Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]


class WindowAttentionArgs(Args):
    num_heads: PositiveInt = arg("num_heads", "heads")
    window_size: Pair = arg("window_size", "window")
    shift_size: NonNegativeInt | Annotated[list[NonNegativeInt], Field(min_length=2, max_length=2)] = \
        arg("shift_size", "shift", default=0)
    qkv_bias: bool = True
    proj_bias: bool = True
    attention_dropout: float = Field(0.0, ge=0.0, le=1.0)
    dropout: float = Field(0.0, ge=0.0, le=1.0)

    @field_validator("shift_size")
    @classmethod
    def _shift_inside_window(cls, shift, info: ValidationInfo):
        window = info.data.get("window_size")  # absent when it failed itself
        if window is not None and any(s >= k for s, k in zip(as_tuple(shift, 2), as_tuple(window, 2))):
            raise ValueError(f"shift_size {shift} must be below window_size {window} on each axis "
                             "(a shifted block shifts by window_size // 2)")
        return shift


def relative_position_index(wh: int, ww: int) -> TensorCall:
    """Swin's [N·N] table index of the relative position of token j seen from token i in a wh×ww window
    (N = wh·ww, tokens in row-major order): (hᵢ - hⱼ + wh - 1)·(2ww - 1) + (wᵢ - wⱼ + ww - 1)
    (Liu et al. 2021, §3.2), as f(i) - f(j) + f(N-1) with f(p) = hₚ·(2ww - 1) + wₚ, the entries of the
    first ww columns of a wh×(2ww-1) grid numbered row by row."""
    f = TensorCall("flatten", (TensorCall("narrow", (TensorCall("reshape", (TensorCall("arange", (wh * (2 * ww - 1),)),
                                                                         (wh, 2 * ww - 1))), 1, 0, ww)),))
    last = (wh - 1) * (2 * ww - 1) + ww - 1  # f(N-1)
    return TensorCall("flatten", (TensorCall("sub", (TensorCall("unsqueeze", (f, 1)), TensorCall("sub", (f, last)))),))


@register
class ShiftedWindowAttention(Layer):
    """Multi-head self-attention within non-overlapping windows of a channels-last map, the windows shifted
    by `shift_size` (Swin's W-MSA and SW-MSA: Liu et al. 2021, "Swin Transformer: hierarchical vision
    transformer using shifted windows", §3.2; torchvision's `ShiftedWindowAttention`).

    The map is padded with zeros at the bottom and right to whole windows; rolled by -shift_size; cut
    into wh×ww windows whose N = wh·ww tokens attend to each other: softmax(q·kᵀ/√d + B) · v per head
    (d = C / num_heads), B a learnable bias per head and relative position, read from a
    [(2wh-1)·(2ww-1), heads] table through an [N·N] index; with a shift, tokens that the roll brought
    together from different regions are kept apart by adding -100 to their scores, as torchvision does;
    then projected, put back in place, rolled back and cropped. On an axis a single window covers
    (padded size ≤ window), the shift is 0, as in torchvision. The padded tokens take part in the
    attention (unmasked), as in torchvision.

    Args:
        num_heads (alias `heads`): attention heads; must divide C.
        window_size (alias `window`): the window, an int (square) or [wh, ww].
        shift_size (alias `shift`): the cyclic shift, an int or [sh, sw], each below the window; 0 (the
            default) for W-MSA, window // 2 for SW-MSA.
        qkv_bias, proj_bias: learn the biases of the qkv and output projections.
        attention_dropout: dropout on the attention weights, in training.
        dropout: dropout on the output, in training.

    Shapes: (H, W, C) -> (H, W, C); H, W and C known (the windows are fixed when the module is built).

    State (torchvision's names): `qkv` (Linear C→3C), `proj` (Linear C→C), `relative_position_bias_table`
    (starts at zero) and the buffer `relative_position_index` (not a parameter).

    Costs: params = 4C² + 4C (biases) + (2wh-1)(2ww-1)·heads; MACs over the padded map Hp×Wp:
    Hp·Wp·4C² for the projections plus 2·Hp·Wp·N·C for q·kᵀ and weights·v in every window; bias adds,
    scaling, the mask and softmax not counted. Receptive field: a window per axis (global when one window
    covers the map).

    Example: `- shifted_window_attention: {heads: 3, window: 7, shift: 3}`
    """

    op = "shifted_window_attention"
    family = "attention"
    Args = WindowAttentionArgs
    main_arg = "num_heads"

    @staticmethod
    def geometry(a, h: int, w: int) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """((wh, ww), (sh, sw), (Hp, Wp)): the window, the shift actually applied, the padded size."""
        window = as_tuple(a.window_size, 2)
        padded = tuple(math.ceil(n / k) * k for n, k in zip((h, w), window))
        shift = tuple(s if k < n else 0 for s, k, n in zip(as_tuple(a.shift_size, 2), window, padded))
        return window, shift, padded

    def infer(self, a, shapes):
        h, w, c = channels_last(self.op, shapes[0])
        check_heads(a.num_heads, c)
        (wh, ww), _, (hp, wp) = self.geometry(a, h, w)
        check_scores(a.num_heads * (hp // wh) * (wp // ww), wh * ww, wh * ww)  # every window's, side by side
        return shapes[0]

    def params(self, a, shapes):
        c = shapes[0][-1]
        wh, ww = as_tuple(a.window_size, 2)
        return 4 * c * c + (3 * c if a.qkv_bias else 0) + (c if a.proj_bias else 0) + \
            (2 * wh - 1) * (2 * ww - 1) * a.num_heads

    def macs(self, a, shapes, out):
        h, w, c = shapes[0]
        (wh, ww), _, (hp, wp) = self.geometry(a, h, w)
        return hp * wp * 4 * c * c + 2 * hp * wp * wh * ww * c

    def rf(self, a, shapes):
        h, w, _ = shapes[0]
        window, _, padded = self.geometry(a, h, w)
        return GLOBAL if window == padded else [(k, 1) for k in window]

    def label(self, a):
        wh, ww = as_tuple(a.window_size, 2)
        shift = as_tuple(a.shift_size, 2)
        shifted = f" shift {','.join(map(str, shift))}" if any(shift) else ""
        return f"shifted_window_attention {a.num_heads} heads {wh}×{ww}{shifted}"

    def module(self, a, shapes):
        c = shapes[0][-1]
        wh, ww = as_tuple(a.window_size, 2)
        members = {"qkv": Call("Linear", (c, 3 * c), {"bias": a.qkv_bias}),
                   "proj": Call("Linear", (c, c), {"bias": a.proj_bias}),
                   "relative_position_bias_table": Call.parameter(((2 * wh - 1) * (2 * ww - 1), a.num_heads)),
                   "relative_position_index": Call.buffer(relative_position_index(wh, ww))}
        if a.attention_dropout:
            members["attention_dropout"] = Call("Dropout", (), {"p": a.attention_dropout})
        if a.dropout:
            members["dropout"] = Call("Dropout", (), {"p": a.dropout})
        return Call.container({**members, "input_shape": tuple(shapes[0])})

    def forward(self, m, a, xs):
        import torch

        (x,) = xs  # (B, H, W, C)
        h, w, c = m.input_shape
        (wh, ww), (sh, sw), (hp, wp) = self.geometry(a, h, w)
        n, heads, windows = wh * ww, a.num_heads, (hp // wh) * (wp // ww)
        if (hp, wp) != (h, w):
            x = torch.nn.functional.pad(x, (0, 0, 0, wp - w, 0, hp - h))  # zeros at the bottom and right
        if sh or sw:
            x = x.roll((-sh, -sw), (1, 2))
        x = x.reshape(-1, hp // wh, wh, wp // ww, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, n, c)  # (B·nW, N, C)
        qkv = m.qkv(x).reshape(-1, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)  # (3, B·nW, heads, N, d)
        scores = (qkv[0] * (c // heads) ** -0.5) @ qkv[1].transpose(-2, -1)  # (B·nW, heads, N, N)
        bias = m.relative_position_bias_table[m.relative_position_index]  # (N·N, heads)
        scores = scores + bias.reshape(n, n, heads).permute(2, 0, 1)
        if sh or sw:
            apart = self.regions_apart(x, (wh, ww), (sh, sw), (hp, wp))  # (nW, 1, N, N)
            scores = scores.reshape(-1, windows, heads, n, n)
            scores = torch.where(apart, scores - 100.0, scores).reshape(-1, heads, n, n)
        weights = scores.softmax(-1)
        if a.attention_dropout:
            weights = m.attention_dropout(weights)
        x = m.proj((weights @ qkv[2]).transpose(1, 2).reshape(-1, n, c))  # (B·nW, N, C)
        if a.dropout:
            x = m.dropout(x)
        x = x.reshape(-1, hp // wh, wp // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, hp, wp, c)
        if sh or sw:
            x = x.roll((sh, sw), (1, 2))
        return x[:, :h, :w] if (hp, wp) != (h, w) else x

    @staticmethod
    def regions_apart(x, window, shift, padded):
        """(nW, 1, N, N) booleans: whether tokens i and j of a window came from different regions of the
        rolled map. Along an axis of padded size P, window k and shift s > 0, positions [0, P-k), [P-k, P-s)
        and [P-s, P) are three regions (one region when s = 0); a position's region pair is its label."""
        import torch

        labels = []
        for size, k, s in zip(padded, window, shift):
            i = torch.arange(size, device=x.device)
            labels.append(torch.ge(i, size - k).int() + torch.ge(i, size - s).int() if s else i * 0)
        (hp, wp), (wh, ww) = padded, window
        label = (labels[0].unsqueeze(1) * 3 + labels[1]).reshape(hp // wh, wh, wp // ww, ww)
        label = label.permute(0, 2, 1, 3).reshape(-1, 1, wh * ww)  # (nW, 1, N)
        return torch.ne(label.unsqueeze(-1), label.unsqueeze(-2))  # (nW, 1, N, N)


class PatchMergingArgs(Args):
    out_features: PositiveInt | None = arg("out_features", "out", default=None)
    eps: float = Field(1e-5, gt=0.0)


@register
class PatchMerging(Layer):
    """Halve a channels-last map by concatenating each 2×2 neighbourhood's features, then layer-normalize
    and project them (Swin's patch merging: Liu et al. 2021, §3.1; torchvision's `PatchMerging`).

    An odd H or W is first padded with zeros at the bottom or right. The four tokens of each 2×2 block
    join in torchvision's order, x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2], into 4C
    features, normalized by `norm` (LayerNorm(4C)) and mapped by `reduction` (Linear 4C→out, no bias).
    Its state is declared in torchvision's order, `reduction` before `norm`, so checkpoints load in
    order: the reason this is one op rather than concat, layernorm and linear items.

    Args:
        out_features (alias `out`): output features; default 2C, as Swin doubles the width.
        eps: ε of the LayerNorm.

    Shapes: (H, W, C) -> (⌈H/2⌉, ⌈W/2⌉, out); H, W and C known.

    Costs: params = 4C·out + 8C; MACs = ⌈H/2⌉·⌈W/2⌉·4C·out; FLOPs: the LayerNorm's 5 per element of
    the ⌈H/2⌉·⌈W/2⌉·4C merged map. Receptive field: kernel 2, stride 2 on both axes.

    Example: `- patch_merging` or `- patch_merging: {out: 192}`
    """

    op = "patch_merging"
    family = "attention"
    Args = PatchMergingArgs
    main_arg = "out_features"

    def out_features(self, a, shape) -> int:
        return a.out_features if a.out_features is not None else 2 * shape[-1]

    def infer(self, a, shapes):
        h, w, _ = channels_last(self.op, shapes[0])
        return ((h + 1) // 2, (w + 1) // 2, self.out_features(a, shapes[0]))

    def params(self, a, shapes):
        c = shapes[0][-1]
        return 4 * c * self.out_features(a, shapes[0]) + 8 * c

    def macs(self, a, shapes, out):
        return count(out) * 4 * shapes[0][-1]

    def flops(self, a, shapes, out):
        return count(out[:2]) * 4 * shapes[0][-1] * 5

    def rf(self, a, shapes):
        return [(2, 2), (2, 2)]

    def label(self, a):
        return "patch_merging" if a.out_features is None else f"patch_merging {a.out_features}"

    def module(self, a, shapes):
        c = shapes[0][-1]
        return Call.container({"reduction": Call("Linear", (4 * c, self.out_features(a, shapes[0])), {"bias": False}),
                               "norm": Call("LayerNorm", (4 * c,), {"eps": a.eps}),
                               "input_shape": tuple(shapes[0])})

    def forward(self, m, a, xs):
        import torch

        (x,) = xs  # (B, H, W, C)
        h, w, _ = m.input_shape
        if h % 2 or w % 2:
            x = torch.nn.functional.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)  # (B, H/2, W/2, 4C)
        return m.reduction(m.norm(x))
