import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from netspec.layers import GLOBAL, REGISTRY, ShapeError, SymbolicSize
from netspec.torch_backend import instantiate
from tests.layers.harness import Traced, check, entry_and_args, infer, refuses_or_counts, within

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
    assert REGISTRY["cross_attention"].arity == (2, 2)
