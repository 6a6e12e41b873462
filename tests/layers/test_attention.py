import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from netspec.layers import GLOBAL, REGISTRY, ShapeError, SymbolicSize
from netspec.torch_backend import instantiate
from tests.layers.harness import Traced, check, entry_and_args, infer, refuses_or_counts, rejects, within

NONE = REGISTRY["pos_embedding"].Args()  # pos_embedding's defaults: one row per token


@settings(max_examples=30, deadline=None)
@given(
    tokens=st.integers(1, 9),
    head_dim=st.integers(1, 4),
    heads=st.integers(1, 4),
    bias=st.booleans(),
    dropout=st.sampled_from([0.0, 0.1]),
)
def test_self_attention_matches_torch(tokens, head_dim, heads, bias, dropout):
    e = heads * head_dim
    shape, params, macs = check("self_attention", {"heads": heads, "bias": bias, "dropout": dropout},
                                [(tokens, e)])
    assert shape == (tokens, e)
    assert params == 4 * e * e + (4 * e if bias else 0)
    assert macs == 4 * tokens * e * e + 2 * tokens * tokens * e


def test_self_attention_symbolic_tokens():
    entry = REGISTRY["self_attention"]
    a = entry.Args.model_validate({"num_heads": 2, "embed_dim": 8})
    assert entry.infer(a, [("N", 8)]) == ("N", 8)
    assert entry.params(a, [("N", 8)]) == 4 * 64 + 4 * 8
    with pytest.raises(SymbolicSize):
        entry.macs(a, [("N", 8)], ("N", 8))
    assert entry.rf(a, [("N", 8)]) == GLOBAL
    assert entry.label(a) == "self_attention 2 heads"


def test_self_attention_module_and_fx():
    entry = REGISTRY["self_attention"]
    a = entry.Args.model_validate({"heads": 2, "bias": False})
    call = entry.module(a, [(5, 8)])
    assert (call.cls, call.args, call.kwargs) == ("MultiheadAttention", (8, 2),
                                                  {"dropout": 0.0, "bias": False, "batch_first": True})

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = instantiate(call)

        def forward(self, x):
            return entry.forward(self.attn, a, [x])

    net = Net().eval()
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(torch.fx.symbolic_trace(net)(x), net(x))


def test_heads_must_divide_embed_dim():
    entry = REGISTRY["self_attention"]
    with pytest.raises(ShapeError, match="num_heads 5 does not divide the embedding dim 12") as info:
        entry.infer(entry.Args.model_validate({"heads": 5}), [(4, 12)])
    assert info.value.arg == "num_heads"
    assert info.value.hint == "use a num_heads that divides 12: 1, 2, 3, 4, 6, 12"


def test_checks_stated_embed_dim():
    entry = REGISTRY["self_attention"]
    with pytest.raises(ShapeError, match="embed_dim is 16 but the tokens have 12 features") as info:
        entry.infer(entry.Args.model_validate({"heads": 2, "embed_dim": 16}), [(4, 12)])
    assert info.value.arg == "embed_dim"


@pytest.mark.parametrize("op", ["self_attention", "class_token", "pos_embedding", "sinusoidal_pos_embedding"])
def test_token_ops_reject_an_image(op):
    entry = REGISTRY[op]
    a = entry.Args.model_validate({"heads": 1} if op == "self_attention" else {})
    with pytest.raises(ShapeError, match=rf"{op} needs a token sequence \[N, embed_dim\], got 3×4×4") as info:
        entry.infer(a, [(3, 4, 4)])
    assert "permute" in info.value.hint
    with pytest.raises(ShapeError, match="needs a known embedding dim, got symbolic `E`"):
        entry.infer(a, [(4, "E")])


@settings(max_examples=20, deadline=None)
@given(tokens=st.integers(1, 9), e=st.integers(1, 16))
def test_class_token_and_pos_embedding_match_torch(tokens, e):
    shape, params, macs = check("class_token", {}, [(tokens, e)])
    assert (shape, params, macs) == ((tokens + 1, e), e, 0)
    shape, params, macs = check("pos_embedding", {}, [(tokens, e)])
    assert (shape, params, macs) == ((tokens, e), tokens * e, 0)
    assert REGISTRY["pos_embedding"].flops(NONE, [(tokens, e)], shape) == tokens * e


def test_class_token_prepends_the_learned_token():
    entry = REGISTRY["class_token"]
    token = instantiate(entry.module(None, [(3, 4)]))
    with torch.no_grad():
        token.fill_(7.0)
    x = torch.randn(2, 3, 4)
    y = entry.forward(token, None, [x])
    assert torch.equal(y[:, 0], torch.full((2, 4), 7.0))
    assert torch.equal(y[:, 1:], x)


def test_class_token_symbolic_length():
    entry = REGISTRY["class_token"]
    assert entry.infer(None, [("N", 8)]) == ("N+1", 8)
    assert entry.infer(None, [("(L-3)//2+1", 8)]) == ("((L-3)//2+1)+1", 8)


def test_pos_embedding_needs_known_length():
    entry = REGISTRY["pos_embedding"]
    with pytest.raises(ShapeError, match="needs a known number of tokens, got symbolic `N`") as info:
        entry.infer(NONE, [("N", 8)])
    assert "fixed length" in info.value.hint


def test_vit_front_end_chains():
    """conv2d patchify -> flatten -> permute -> class_token -> pos_embedding -> self_attention, in torch."""
    cls, pos, attn = (REGISTRY[op] for op in ("class_token", "pos_embedding", "self_attention"))
    a = attn.Args.model_validate({"heads": 4})
    patches = (4, 16)  # 8×8 image, 4×4 patches, 16 channels
    seq = cls.infer(None, [patches])
    assert pos.infer(NONE, [seq]) == attn.infer(a, [seq]) == (5, 16)
    token, table = instantiate(cls.module(None, [patches])), instantiate(pos.module(NONE, [seq]))
    m = instantiate(attn.module(a, [seq])).eval()
    x = torch.nn.Conv2d(3, 16, kernel_size=4, stride=4)(torch.randn(2, 3, 8, 8))
    x = x.flatten(2).permute(0, 2, 1)  # (B, 4, 16)
    y = attn.forward(m, a, [pos.forward(table, NONE, [cls.forward(token, None, [x])])])
    assert tuple(y.shape) == (2, 5, 16)


VALUES = st.one_of(st.integers(-2, 8), st.booleans(), st.none(), st.sampled_from([0.0, 0.5, 2.0, "x", [1]]))
KEYS = st.sampled_from(["heads", "num_heads", "dropout", "bias", "embed_dim", "kernel"])
DIMS = st.one_of(st.integers(1, 8), st.just("N"))


@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(["self_attention", "class_token", "pos_embedding"]),
       args=st.dictionaries(KEYS, VALUES, max_size=4), shape=st.lists(DIMS, max_size=3))
def test_random_bad_combos_raise_only_spec_errors(op, args, shape):
    refuses_or_counts(op, args, [tuple(shape)], "N")


def test_heads_hint_lists_the_divisors_nearest_the_asked_heads():
    with pytest.raises(ShapeError, match="num_heads 24 does not divide the embedding dim 1000") as info:
        infer("self_attention", {"heads": 24}, (4, 1000))
    assert info.value.hint == "use a num_heads that divides 1000: 5, 8, 10, 20, 25, 40"
    with within(2), pytest.raises(ShapeError) as info:
        infer("self_attention", {"heads": 7}, (4, 10**400 + 1))
    assert info.value.arg == "num_heads"


def test_class_token_adds_one_to_a_symbolic_count():
    assert infer("class_token", {}, ("T", 8)) == ("T+1", 8)
    assert infer("class_token", {}, ("(H+1)//2", 8)) == ("((H+1)//2)+1", 8)
    assert infer("class_token", {}, (5, 8)) == (6, 8)


@settings(max_examples=30, deadline=None)
@given(tokens=st.integers(1, 9), e=st.integers(1, 8), spare=st.integers(0, 4))
def test_pos_embedding_with_max_len_matches_torch(tokens, e, spare):
    args = {"max_len": tokens + spare}
    shape, params, macs = check("pos_embedding", args, [(tokens, e)])
    assert (shape, params, macs) == ((tokens, e), (tokens + spare) * e, 0)
    entry, a = entry_and_args("pos_embedding", args)
    table = instantiate(entry.module(a, [(tokens, e)]))
    assert tuple(table.shape) == (1, tokens + spare, e)
    with torch.no_grad():
        table.copy_(torch.randn_like(table))
    x = torch.randn(2, tokens, e)
    torch.testing.assert_close(entry.forward(table, a, [x]), x + table[:, :tokens])


def test_pos_embedding_max_len_takes_a_symbolic_length():
    entry, a = entry_and_args("pos_embedding", {"max_len": 64})
    assert entry.infer(a, [("T", 8)]) == ("T", 8)
    assert entry.params(a, [("T", 8)]) == 64 * 8
    assert entry.label(a) == "pos_embedding ≤64" and entry.label(NONE) == "pos_embedding"
    with pytest.raises(ShapeError, match="pos_embedding has max_len 64 rows but the input has 65 tokens") as info:
        entry.infer(a, [(65, 8)])
    assert info.value.arg == "max_len"


def vaswani_table(n, e):
    """The PyTorch tutorial's PositionalEncoding table (Vaswani et al. 2017, §3.5)."""
    position = torch.arange(n).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, e, 2) * (-math.log(10000.0) / e))
    pe = torch.zeros(n, e)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe


@settings(max_examples=30, deadline=None)
@given(tokens=st.integers(1, 50), half=st.integers(1, 16))
def test_sinusoidal_pos_embedding_matches_vaswani(tokens, half):
    e = 2 * half
    shape, params, macs = check("sinusoidal_pos_embedding", {}, [(tokens, e)])
    assert (shape, params, macs) == ((tokens, e), 0, 0)
    entry, a = entry_and_args("sinusoidal_pos_embedding", {})
    assert entry.flops(a, [(tokens, e)], shape) == 2 * tokens * e
    x = torch.randn(2, tokens, e)
    torch.testing.assert_close(entry.forward(None, a, [x]), x + vaswani_table(tokens, e))


def test_sinusoidal_pos_embedding_traces_for_any_length():
    entry, a = entry_and_args("sinusoidal_pos_embedding", {})
    assert entry.infer(a, [("T", 8)]) == ("T", 8)
    with pytest.raises(ShapeError, match="needs an even embedding dim, got 7"):
        entry.infer(a, [("T", 7)])

    class Net(torch.nn.Module):
        def forward(self, x):
            return entry.forward(None, a, [x])

    net = torch.fx.symbolic_trace(Net())
    for n in (3, 11):
        x = torch.randn(2, n, 8)
        torch.testing.assert_close(net(x), x + vaswani_table(n, 8))


@settings(max_examples=20, deadline=None)
@given(tokens=st.integers(1, 9), head_dim=st.integers(1, 4), heads=st.integers(1, 3), bias=st.booleans())
def test_causal_self_attention_matches_torch_with_a_square_subsequent_mask(tokens, head_dim, heads, bias):
    e = heads * head_dim
    args = {"heads": heads, "bias": bias, "is_causal": True}
    assert check("self_attention", args, [(tokens, e)])[0] == (tokens, e)
    entry, a = entry_and_args("self_attention", args)
    m = instantiate(entry.module(a, [(tokens, e)])).eval()
    x = torch.randn(2, tokens, e)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(tokens)
    with torch.no_grad():
        y = entry.forward(m, a, [x])
        torch.testing.assert_close(y, m(x, x, x, attn_mask=mask, need_weights=False)[0])
        later = x.clone()
        later[:, -1] += 1.0  # changing the last token changes no earlier output
        torch.testing.assert_close(entry.forward(m, a, [later])[:, :-1], y[:, :-1])
    assert entry.label(a) == f"self_attention {heads} heads causal"


def test_causal_self_attention_traces_for_any_length():
    entry, a = entry_and_args("self_attention", {"heads": 2, "causal": True})
    net = torch.fx.symbolic_trace(Traced(entry, a, instantiate(entry.module(a, [("T", 8)])))).eval()
    for n in (3, 6):
        x = torch.randn(2, n, 8)
        mask = torch.nn.Transformer.generate_square_subsequent_mask(n)
        with torch.no_grad():
            torch.testing.assert_close(net(x), net.state(x, x, x, attn_mask=mask, need_weights=False)[0])


def flop_counter_macs(attention, queries, memory):
    """torch.utils.flop_counter's count / 2 for one sample of nn.MultiheadAttention, on its unfused path
    (need_weights=True: the two matrix products as bmm, which the counter sees)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        attention(queries, memory, memory, need_weights=True)
    return counter.get_total_flops() // 2


class Cross(torch.nn.Module):
    def __init__(self, entry, a, state):
        super().__init__()
        self.entry, self.a, self.state = entry, a, state

    def forward(self, queries, memory):
        return self.entry.forward(self.state, self.a, [queries, memory])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 7), m=st.integers(1, 7), head_dim=st.integers(1, 4), heads=st.integers(1, 3),
       k=st.integers(1, 9), bias=st.booleans(), same=st.booleans())
def test_cross_attention_matches_torch(n, m, head_dim, heads, k, bias, same):
    e = heads * head_dim
    k = e if same else k
    args = {"heads": heads, "bias": bias}
    shape, params, macs = check("cross_attention", args, [(n, e), (m, k)])
    assert shape == (n, e)
    assert params == 2 * e * e + 2 * e * k + (4 * e if bias else 0)
    assert macs == 2 * n * e * e + 2 * m * e * k + 2 * n * m * e
    entry, a = entry_and_args("cross_attention", args)
    net = Cross(entry, a, instantiate(entry.module(a, [(n, e), (m, k)])))
    q, kv = torch.randn(1, n, e), torch.randn(1, m, k)
    assert flop_counter_macs(net.state, q, kv) == macs
    with torch.no_grad():
        torch.testing.assert_close(net(q, kv), net.state(q, kv, kv, need_weights=False)[0])
        torch.testing.assert_close(torch.fx.symbolic_trace(net)(q, kv), net(q, kv))


def test_cross_attention_refusals_and_symbolic_lengths():
    entry, a = entry_and_args("cross_attention", {"heads": 2})
    assert entry.infer(a, [("N", 8), ("M", 6)]) == ("N", 8)
    assert entry.params(a, [("N", 8), ("M", 6)]) == 2 * 64 + 2 * 48 + 32
    with pytest.raises(SymbolicSize):
        entry.macs(a, [("N", 8), ("M", 6)], ("N", 8))
    assert entry.rf(a, [(3, 8), (4, 8)]) == GLOBAL and entry.label(a) == "cross_attention 2 heads"
    with pytest.raises(ShapeError, match="kdim is 5 but the memory has 6 features") as info:
        infer("cross_attention", {"heads": 2, "kdim": 5}, (4, 8), (3, 6))
    assert info.value.arg == "kdim"
    with pytest.raises(ShapeError, match="num_heads 3 does not divide the embedding dim 8"):
        infer("cross_attention", {"heads": 3}, (4, 8), (3, 6))
    with pytest.raises(ShapeError, match=r"cross_attention needs a token sequence \[N, embed_dim\], got 3×4×4"):
        infer("cross_attention", {"heads": 1}, (4, 8), (3, 4, 4))
    assert REGISTRY["cross_attention"].arity == (2, 3)  # queries, memory, and its padding mask


# ---- Swin: shifted-window attention and patch merging on channels-last maps [H, W, C] -------------------


def swin_reference(x, m, heads, window, shift):
    """Shifted-window attention written from its definition (Liu et al. 2021, §3.2), window by window and
    pair by pair: pad the map to whole windows, roll it by -shift (none on an axis one window covers), and
    let each token attend to the tokens of its window, scores q·k/√d plus the bias of their relative offset
    (dy, dx) at table row (dy + wh - 1)·(2ww - 1) + dx + ww - 1, minus 100 between a token the roll carried
    across the map's edge and one it did not; then project, roll back, crop."""
    b, h, w, c = x.shape
    (wh, ww), d = window, c // heads
    hp, wp = -(-h // wh) * wh, -(-w // ww) * ww
    sh, sw = (s if k < n else 0 for s, k, n in zip(shift, window, (hp, wp)))
    padded = torch.zeros(b, hp, wp, c, dtype=x.dtype)
    padded[:, :h, :w] = x
    rolled = padded.roll((-sh, -sw), (1, 2))
    q, k, v = m.qkv(rolled).split(c, dim=-1)
    out = torch.zeros_like(rolled)
    for top in range(0, hp, wh):
        for left in range(0, wp, ww):
            cells = [(top + i, left + j) for i in range(wh) for j in range(ww)]
            for head in range(heads):
                part = slice(head * d, (head + 1) * d)
                scores = torch.zeros(b, len(cells), len(cells), dtype=x.dtype)
                for p, (y0, x0) in enumerate(cells):
                    for r, (y1, x1) in enumerate(cells):
                        row = (y0 - y1 + wh - 1) * (2 * ww - 1) + x0 - x1 + ww - 1
                        crossed = (y0 >= hp - sh) != (y1 >= hp - sh) or (x0 >= wp - sw) != (x1 >= wp - sw)
                        scores[:, p, r] = (q[:, y0, x0, part] * k[:, y1, x1, part]).sum(-1) / d ** 0.5 + \
                            m.relative_position_bias_table[row, head] - (100.0 if crossed else 0.0)
                weights = scores.softmax(-1)
                for p, (y0, x0) in enumerate(cells):
                    out[:, y0, x0, part] = sum(weights[:, p, r, None] * v[:, y1, x1, part]
                                               for r, (y1, x1) in enumerate(cells))
    return m.proj(out).roll((sh, sw), (1, 2))[:, :h, :w]


def flop_counted_macs(module, entry, a, x) -> int:
    """torch's FlopCounterMode count of one forward, halved: the reference figures' MACs convention."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        entry.forward(module, a, [x])
    return counter.get_total_flops() // 2 // x.shape[0]


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), head_dim=st.integers(1, 3), heads=st.integers(1, 3),
       window=st.tuples(st.integers(1, 4), st.integers(1, 4)), data=st.data())
def test_shifted_window_attention_matches_its_definition(h, w, head_dim, heads, window, data):
    shift = tuple(data.draw(st.integers(0, k - 1)) for k in window)
    args = {"heads": heads, "window": list(window), "shift": list(shift)}
    c = heads * head_dim
    shape, params, macs = check("shifted_window_attention", args, [(h, w, c)])
    entry, a = entry_and_args("shifted_window_attention", args)
    m = instantiate(entry.module(a, [(h, w, c)])).double().eval()
    with torch.no_grad():
        m.relative_position_bias_table.normal_()
    x = torch.randn(2, h, w, c, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(entry.forward(m, a, [x]), swin_reference(x, m, heads, window, shift))
    assert shape == (h, w, c)
    assert params == sum(p.numel() for p in m.parameters())
    assert macs == flop_counted_macs(m, entry, a, x)


def test_shifted_window_attention_state_is_torchvisions():
    entry, a = entry_and_args("shifted_window_attention", {"heads": 3, "window": 7, "shift": 3})
    m = instantiate(entry.module(a, [(56, 56, 96)]))
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == {
        "relative_position_bias_table": (169, 3), "relative_position_index": (2401,),
        "qkv.weight": (288, 96), "qkv.bias": (288,), "proj.weight": (96, 96), "proj.bias": (96,)}
    assert [name for name, _ in m.named_buffers()] == ["relative_position_index"]  # not a parameter
    index = m.relative_position_index.reshape(49, 49)
    for i, j in ((0, 0), (0, 48), (48, 0), (10, 24), (30, 5)):  # row (dy + 6)·13 + dx + 6 of the table
        (yi, xi), (yj, xj) = divmod(i, 7), divmod(j, 7)
        assert index[i, j] == (yi - yj + 6) * 13 + xi - xj + 6
    assert index.dtype == torch.int64 and int(index.min()) == 0 and int(index.max()) == 168


def test_shifted_window_attention_costs_and_field():
    entry, a = entry_and_args("shifted_window_attention", {"heads": 3, "window": 7, "shift": 3})
    assert entry.params(a, [(56, 56, 96)]) == 4 * 96 * 96 + 4 * 96 + 169 * 3
    # 64 windows of 49 tokens: projections 3136·4·96², products 2·64·49²·96
    assert entry.macs(a, [(56, 56, 96)], (56, 56, 96)) == 3136 * 4 * 96 * 96 + 2 * 64 * 49 * 49 * 96
    assert entry.macs(a, [(10, 10, 96)], (10, 10, 96)) == 196 * 4 * 96 * 96 + 2 * 4 * 49 * 49 * 96  # padded 14×14
    assert entry.rf(a, [(56, 56, 96)]) == [(7, 1), (7, 1)]
    assert entry.rf(a, [(7, 5, 96)]) == GLOBAL  # one window covers the map
    assert entry.label(a) == "shifted_window_attention 3 heads 7×7 shift 3,3"
    assert entry.geometry(a, 7, 7) == ((7, 7), (0, 0), (7, 7))  # one window: no shift, as torchvision


def test_shifted_window_attention_refuses_what_it_cannot_build():
    rejects("shifted_window_attention", {"heads": 2, "window": 4}, (96, 56, 56 + 1),
            "num_heads 2 does not divide the embedding dim 57", "num_heads", None)
    rejects("shifted_window_attention", {"heads": 1, "window": 4}, (96, 56),
            "shifted_window_attention needs a channels-last map [H, W, C], got 96×56", None, "permute: [1, 2, 0]")
    rejects("shifted_window_attention", {"heads": 1, "window": 4}, ("H", 56, 8),
            "shifted_window_attention needs a known height, got symbolic `H`", None, "known size")
    rejects("patch_merging", {}, (6, "W", 8), "patch_merging needs a known width, got symbolic `W`", None,
            "built for one map size")
    rejects("patch_merging", {}, (6, 8), "patch_merging needs a channels-last map [H, W, C], got 6×8", None,
            "permute: [1, 2, 0]")
    with pytest.raises(ValidationError, match=r"shift_size \[1, 4\] must be below window_size 4"):
        entry_and_args("shifted_window_attention", {"heads": 1, "window": 4, "shift": [1, 4]})


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 6), out=st.sampled_from([None, 5]))
def test_patch_merging_matches_its_definition(h, w, c, out):
    args = {} if out is None else {"out": out}
    shape, params, macs = check("patch_merging", args, [(h, w, c)])
    entry, a = entry_and_args("patch_merging", args)
    m = instantiate(entry.module(a, [(h, w, c)])).double().eval()
    x = torch.randn(2, h, w, c, dtype=torch.float64)
    # each output cell: its 2×2 block's tokens (a zero past an odd edge), in the order (0,0), (1,0), (0,1), (1,1)
    merged = torch.zeros(2, -(-h // 2), -(-w // 2), 4 * c, dtype=torch.float64)
    for i in range(merged.shape[1]):
        for j in range(merged.shape[2]):
            for n, (dy, dx) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
                if 2 * i + dy < h and 2 * j + dx < w:
                    merged[:, i, j, n * c:(n + 1) * c] = x[:, 2 * i + dy, 2 * j + dx]
    normed = torch.nn.functional.layer_norm(merged, (4 * c,), m.norm.weight, m.norm.bias, 1e-5)
    with torch.no_grad():
        torch.testing.assert_close(entry.forward(m, a, [x]), normed @ m.reduction.weight.T)
    width = out or 2 * c
    assert shape == (-(-h // 2), -(-w // 2), width)
    assert params == 4 * c * width + 8 * c
    assert macs == flop_counted_macs(m, entry, a, x)
    assert list(m.state_dict()) == ["reduction.weight", "norm.weight", "norm.bias"]  # torchvision's order
    assert entry.rf(a, [(h, w, c)]) == [(2, 2), (2, 2)]


@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(["shifted_window_attention", "patch_merging"]),
       args=st.dictionaries(st.sampled_from(["heads", "window", "shift", "out", "eps", "dropout"]),
                            st.one_of(st.integers(-1, 5), st.just([2, 1]), st.just(0.5), st.none()), max_size=4),
       shape=st.lists(DIMS, max_size=4))
def test_swin_ops_refuse_bad_combos_as_spec_errors(op, args, shape):
    refuses_or_counts(op, args, [tuple(shape)], "N")


def test_a_shift_past_the_window_is_located_at_the_shift():
    from tests.test_graph import errors

    (err,) = errors("name: t\ninput: [8, 8, 4]\nlayers:\n  - shifted_window_attention: {heads: 2, window: [4, 3], "
                    "shift: [1, 3]}\n")
    assert (err.mark.line, err.mark.col) == (4, 65)  # the `[` of `shift: [1, 3]`
    assert "shift_size [1, 3] must be below window_size [4, 3] on each axis" in err.message


# --- padding masks (torch's key_padding_mask) ----------------------------------------------------------------


def padding(n: int, seed: int) -> torch.Tensor:
    """A (BATCH, n) int64 mask, 1 at padding, with at least the first key of each sample kept."""
    mask = torch.randint(0, 2, (2, n), generator=torch.Generator().manual_seed(seed))
    mask[:, 0] = 0
    return mask


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 8), head_dim=st.integers(1, 4), heads=st.integers(1, 3), causal=st.booleans(),
       seed=st.integers(0, 99))
def test_self_attention_with_a_padding_mask_matches_torch(n, head_dim, heads, causal, seed):
    e = heads * head_dim
    args = {"heads": heads, "causal": causal}
    x, mask = torch.randn(2, n, e), padding(n, seed)
    shape, params, macs = check("self_attention", args, [(n, e), (n,)], inputs=[x, mask])
    assert shape == (n, e) and params == 4 * e * e + 4 * e and macs == 4 * n * e * e + 2 * n * n * e
    entry, a = entry_and_args("self_attention", args)
    m = instantiate(entry.module(a, [(n, e), (n,)])).eval()
    future = torch.ones(n, n, dtype=torch.bool).triu(1) if causal else None
    with torch.no_grad():
        y = entry.forward(m, a, [x, mask])
        torch.testing.assert_close(y, m(x, x, x, need_weights=False, attn_mask=future,
                                        key_padding_mask=mask.bool())[0])
        changed = x.clone()
        changed[mask.bool()] += 1.0  # a padding token's value reaches no output (its own row aside)
        kept = ~mask.bool()
        torch.testing.assert_close(entry.forward(m, a, [changed, mask])[kept], y[kept])
        torch.testing.assert_close(entry.forward(m, a, [x, mask.bool()]), y)  # bool masks too


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 6), mlen=st.integers(1, 6), heads=st.integers(1, 3), seed=st.integers(0, 99))
def test_cross_attention_with_a_memory_padding_mask_matches_torch(n, mlen, heads, seed):
    e = 2 * heads
    q, kv, mask = torch.randn(2, n, e), torch.randn(2, mlen, 5), padding(mlen, seed)
    shape, _, _ = check("cross_attention", {"heads": heads}, [(n, e), (mlen, 5), (mlen,)], inputs=[q, kv, mask])
    entry, a = entry_and_args("cross_attention", {"heads": heads})
    m = instantiate(entry.module(a, [(n, e), (mlen, 5), (mlen,)])).eval()
    with torch.no_grad():
        torch.testing.assert_close(entry.forward(m, a, [q, kv, mask]),
                                   m(q, kv, kv, need_weights=False, key_padding_mask=mask.bool())[0])


@pytest.mark.parametrize("op, shapes", [("self_attention", [(5, 8), (4,)]), ("self_attention", [(5, 8), (5, 1)]),
                                        ("cross_attention", [(5, 8), (3, 8), (5,)])])
def test_a_padding_mask_of_another_length_is_refused(op, shapes):
    entry, a = entry_and_args(op, {"heads": 2})
    with pytest.raises(ShapeError, match="padding mask must be"):
        entry.infer(a, shapes)


def test_a_spec_takes_an_integer_padding_mask_but_not_integer_tokens():
    import netspec

    text = ("name: t\ninputs:\n  tokens: {shape: [T], dtype: int64}\n  mask: {shape: [T], dtype: int64}\nlayers:\n"
            "  - embedding: {num_embeddings: 20, embedding_dim: 8}\n    from: tokens\n    name: emb\n"
            "  - self_attention: 2\n    from: [emb, mask]\n")
    net = netspec.build(netspec.loads(text)).eval()
    tokens, mask = torch.randint(0, 20, (2, 5)), torch.tensor([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]])
    with torch.no_grad():
        y = net(tokens, mask)
        other = tokens.clone()
        other[0, 3:] = (other[0, 3:] + 1) % 20  # other ids at the padding
        torch.testing.assert_close(net(other, mask)[0, :3], y[0, :3])
    with pytest.raises(netspec.SpecErrors, match="`self_attention` computes on floating-point values, but `tokens`"):
        netspec.analyze(netspec.loads(text.replace("from: [emb, mask]", "from: [tokens, mask]")))
