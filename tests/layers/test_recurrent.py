import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from netspec.layers import GLOBAL, REGISTRY, SymbolicSize
from netspec.torch_backend import instantiate
from tests.layers.harness import check, refuses_or_counts, rejects

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def expected_costs(gates, steps, features, hidden, layers, dirs, bias):
    """(params, MACs) written out: gates × (H·(in + H) + 2H) per layer and direction."""
    inputs = [features] + [hidden * dirs] * (layers - 1)
    params = dirs * sum(gates * (hidden * (n + hidden) + (2 * hidden if bias else 0)) for n in inputs)
    return params, steps * dirs * sum(gates * hidden * (n + hidden) for n in inputs)


@settings(max_examples=30, deadline=None)
@given(
    op=st.sampled_from(sorted(GATES)),
    steps=st.integers(1, 5),
    features=st.integers(1, 8),
    hidden=st.integers(1, 8),
    layers=st.integers(1, 3),
    bidirectional=st.booleans(),
    bias=st.booleans(),
    output=st.sampled_from(["sequence", "last"]),
    relu=st.booleans(),
    dropout=st.sampled_from([0.0, 0.25]),
)
def test_recurrent_matches_torch(op, steps, features, hidden, layers, bidirectional, bias, output, relu,
                                 dropout):
    args = {"hidden": hidden, "num_layers": layers, "bidirectional": bidirectional, "bias": bias,
            "output": output, "dropout": dropout if layers > 1 else 0.0}
    if op == "rnn":
        args["nonlinearity"] = "relu" if relu else "tanh"
    shape, params, macs = check(op, args, [(steps, features)])
    dirs = 2 if bidirectional else 1
    assert shape == ((steps, hidden * dirs) if output == "sequence" else (hidden * dirs,))
    assert (params, macs) == expected_costs(GATES[op], steps, features, hidden, layers, dirs, bias)


@pytest.mark.parametrize("op, params, macs", [("lstm", 921_600, 29_360_128), ("gru", 691_200, 22_020_096)])
def test_published_reference_numbers(op, params, macs):
    shape, got_params, got_macs = check(op, {"hidden_size": 256, "num_layers": 2}, [(32, 128)])
    assert shape == (32, 256)
    assert (got_params, got_macs) == (params, macs)


def test_symbolic_length_passes_through_and_costs_are_unknown():
    entry = REGISTRY["lstm"]
    a = entry.Args.model_validate({"hidden": 32, "bidirectional": True})
    assert entry.infer(a, [("T", 16)]) == ("T", 64)
    assert entry.params(a, [("T", 16)]) == 2 * 4 * (32 * (16 + 32) + 2 * 32)
    with pytest.raises(SymbolicSize):
        entry.macs(a, [("T", 16)], ("T", 64))
    last = entry.Args.model_validate({"hidden": 32, "output": "last"})
    assert entry.infer(last, [("T", 16)]) == (32,)
    assert entry.rf(a, [("T", 16)]) == GLOBAL


@pytest.mark.parametrize("op", sorted(GATES))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_last_is_each_directions_final_state(op, bidirectional):
    entry = REGISTRY[op]
    a = entry.Args.model_validate({"hidden": 5, "num_layers": 2, "bidirectional": bidirectional,
                                   "output": "last"})
    m = instantiate(entry.module(a, [(7, 3)])).eval()
    x = torch.randn(2, 7, 3)
    with torch.no_grad():
        y = entry.forward(m, a, [x])
        h_n = m(x)[1]
    h_n = h_n[0] if op == "lstm" else h_n  # (layers·dirs, B, H)
    top = h_n[-2:] if bidirectional else h_n[-1:]
    torch.testing.assert_close(y, torch.cat(list(top), dim=-1))


@pytest.mark.parametrize("output", ["sequence", "last"])
def test_forward_traces_with_fx(output):
    entry = REGISTRY["gru"]
    a = entry.Args.model_validate({"hidden": 4, "bidirectional": True, "output": output})

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = instantiate(entry.module(a, [(6, 3)]))

        def forward(self, x):
            return entry.forward(self.rnn, a, [x])

    net = Net().eval()
    x = torch.randn(2, 6, 3)
    torch.testing.assert_close(torch.fx.symbolic_trace(net)(x), net(x))


def test_module_is_torch_class_with_explicit_kwargs():
    entry = REGISTRY["rnn"]
    a = entry.Args.model_validate({"hidden": 8, "num_layers": 2, "dropout": 0.1, "nonlinearity": "relu"})
    call = entry.module(a, [(10, 4)])
    assert (call.cls, call.args) == ("RNN", (4, 8))
    assert call.kwargs == {"num_layers": 2, "bias": True, "batch_first": True, "dropout": 0.1,
                           "bidirectional": False, "nonlinearity": "relu"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        instantiate(call)


def test_labels():
    assert REGISTRY["lstm"].label(REGISTRY["lstm"].Args.model_validate(
        {"hidden": 256, "num_layers": 2, "bidirectional": True})) == "lstm 256 ×2 bi"
    assert REGISTRY["gru"].label(REGISTRY["gru"].Args.model_validate({"hidden": 64, "output": "last"})) \
        == "gru 64 last"
    assert REGISTRY["rnn"].label(REGISTRY["rnn"].Args.model_validate(
        {"hidden": 16, "nonlinearity": "relu"})) == "rnn 16 relu"


@pytest.mark.parametrize("op, args, shape, message, arg, hint", [
    ("lstm", {"hidden": 4, "input_size": 7}, (10, 8), "input_size is 7 but the input has 8 features",
     "input_size", "inferred"),
    ("gru", {"hidden": 4, "dropout": 0.2}, (10, 8), "dropout 0.2 has no effect with num_layers 1", "dropout",
     "num_layers > 1"),
    ("rnn", {"hidden": 4}, (3, 8, 8), "rnn needs a sequence [T, features], got 3×8×8", None, "flatten"),
    ("lstm", {"hidden": 4}, (10, "F"), "needs a known feature dim, got symbolic `F`", None, None),
])
def test_recurrent_rejects(op, args, shape, message, arg, hint):
    rejects(op, args, shape, message, arg, hint)


@pytest.mark.parametrize("op, args", [
    ("lstm", {"hidden": 4, "nonlinearity": "relu"}),  # rnn only
    ("rnn", {"hidden": 4, "nonlinearity": "sigmoid"}),
    ("gru", {"hidden": 0}),
    ("gru", {"hidden": 4, "dropout": 1.5}),
    ("lstm", {"hidden": 4, "output": "first"}),
    ("lstm", {"num_layers": 2}),
])
def test_bad_arguments_are_validation_errors(op, args):
    with pytest.raises(ValidationError):
        REGISTRY[op].Args.model_validate(args)


VALUES = st.one_of(st.integers(-2, 6), st.booleans(), st.none(),
                   st.sampled_from([0.0, 0.5, 2.0, "x", "last", "relu", [1]]))
KEYS = st.sampled_from(["hidden", "hidden_size", "num_layers", "bias", "bidirectional", "dropout",
                        "input_size", "output", "nonlinearity", "kernel"])
DIMS = st.one_of(st.integers(1, 6), st.just("T"))


@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(sorted(GATES)), args=st.dictionaries(KEYS, VALUES, max_size=5),
       shape=st.lists(DIMS, max_size=3))
def test_random_bad_combos_raise_only_spec_errors(op, args, shape):
    refuses_or_counts(op, args, [tuple(shape)], "T")
