import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from netspec.layers import GLOBAL, REGISTRY, ShapeError, SymbolicSize
from netspec.torch_backend import instantiate
from tests.layers.harness import check, entry_and_args, infer, rejects, sample

ELEMENTWISE = {"relu": {}, "sigmoid": {}, "tanh": {}, "silu": {}, "gelu": {"approximate": "tanh"},
               "leaky_relu": {"negative_slope": 0.2}, "elu": {"alpha": 0.5}, "relu6": {},
               "hardtanh": {"min_val": -0.5, "max_val": 2.0}, "hardswish": {}, "hardsigmoid": {}, "selu": {},
               "softplus": {"beta": 2.0, "threshold": 5.0}, "mish": {}}
F = torch.nn.functional
REFERENCE = {  # op -> torch.nn.functional applied with ELEMENTWISE's args
    "relu6": F.relu6, "hardtanh": lambda x: F.hardtanh(x, -0.5, 2.0), "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid, "selu": F.selu, "softplus": lambda x: F.softplus(x, 2.0, 5.0), "mish": F.mish}
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@settings(max_examples=40, deadline=None)
@given(op=st.sampled_from(sorted(ELEMENTWISE)), shape=shapes, defaults=st.booleans())
def test_elementwise_matches_torch(op, shape, defaults):
    args = {} if defaults else ELEMENTWISE[op]
    out, params, macs = check(op, args, [shape])
    assert (out, params, macs) == (shape, 0, 0)
    entry, a = entry_and_args(op, args)
    assert entry.flops(a, [shape], out) == math.prod(shape)


@settings(max_examples=40, deadline=None)
@given(op=st.sampled_from(sorted(REFERENCE)), shape=shapes)
def test_new_activations_compute_what_torch_functional_does(op, shape):
    entry, a = entry_and_args(op, ELEMENTWISE[op])
    x = sample(shape) * 4
    torch.testing.assert_close(entry.forward(instantiate(entry.module(a, [shape])), a, [x]), REFERENCE[op](x))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, channelwise=st.booleans(), init=st.floats(-1, 1))
def test_prelu_matches_torch(shape, channelwise, init):
    n = shape[0] if channelwise else 1
    out, params, macs = check("prelu", {"num_parameters": n, "init": init}, [shape])
    assert (out, params, macs) == (shape, n, 0)
    entry, a = entry_and_args("prelu", {"num_parameters": n, "init": init})
    x = sample(shape)
    y = entry.forward(instantiate(entry.module(a, [shape])), a, [x])
    torch.testing.assert_close(y, F.prelu(x, torch.full((n,), init)))


@pytest.mark.parametrize("shape, message, hint", [
    ((4, 5), "num_parameters is 3 but the input has 4 channels (dim 0)", "use num_parameters 4"),
    ((), "prelu with num_parameters 3 needs a channel dim, got a scalar", "num_parameters 1"),
])
def test_prelu_slopes_must_match_the_channels(shape, message, hint):
    rejects("prelu", {"num_parameters": 3}, shape, message, "num_parameters", hint)
    assert infer("prelu", {}, ("T", 5)) == ("T", 5)
    with pytest.raises(ShapeError, match="prelu needs a known channel dim, got symbolic `T`"):
        infer("prelu", {"num_parameters": 3}, ("T", 5))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, data=st.data())
def test_glu_matches_torch(shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    shape = tuple(2 * d if i == dim % len(shape) else d for i, d in enumerate(shape))
    out, params, macs = check("glu", {"dim": dim}, [shape])
    half = list(shape)
    half[dim] //= 2
    assert (out, params, macs) == (tuple(half), 0, 0)
    entry, a = entry_and_args("glu", {"dim": dim})
    assert entry.flops(a, [shape], out) == 2 * math.prod(half)
    x = sample(shape)
    torch.testing.assert_close(entry.forward(instantiate(entry.module(a, [shape])), a, [x]),
                               F.glu(x, dim + 1 if dim >= 0 else dim))


def test_glu_needs_an_even_known_dim():
    rejects("glu", {}, (4, 5), "glu halves dim -1, but it is 5 (odd) in the input 4×5", "dim", "even size")
    assert infer("glu", {"dim": 1}, ("T", 8)) == ("T", 4)
    with pytest.raises(ShapeError, match="glu needs a known size of dim 0, got symbolic `T`"):
        infer("glu", {"dim": 0}, ("T", 8))


@settings(max_examples=40, deadline=None)
@given(op=st.sampled_from(["softmax", "log_softmax"]), shape=shapes, data=st.data())
def test_softmax_normalizes_along_the_per_sample_dim(op, shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    out, _, _ = check(op, {"dim": dim}, [shape])
    assert out == shape
    entry, a = entry_and_args(op, {"dim": dim})
    x = sample(shape)
    y = entry.forward(instantiate(entry.module(a, [shape])), a, [x])
    batched = dim + 1 if dim >= 0 else dim
    reference = torch.softmax if op == "softmax" else torch.log_softmax
    torch.testing.assert_close(y, reference(x, dim=batched))
    assert entry.flops(a, [shape], out) == 3 * math.prod(shape)


def test_softmax_dim_out_of_range():
    entry, a = entry_and_args("softmax", {"dim": 2})
    with pytest.raises(ShapeError) as info:
        entry.infer(a, [(4, 5)])
    assert info.value.message == "softmax dim 2 is out of range for the 2-dim input 4×5"
    assert info.value.arg == "dim"
    assert info.value.hint == "per-sample dims run from -2 to 1; the batch dim is not counted"


@pytest.mark.parametrize("op, args", [("gelu", {"approximate": "fast"}), ("relu", {"inplace": True}),
                                      ("softmax", {"dim": 1.0}), ("leaky_relu", {"negative_slope": "0.1"}),
                                      ("hardtanh", {"min_val": 1.0, "max_val": 1.0}), ("softplus", {"beta": 0.0}),
                                      ("prelu", {"num_parameters": 0}), ("selu", {"alpha": 1.0})])
def test_bad_arguments_are_validation_errors(op, args):
    with pytest.raises(ValidationError):
        REGISTRY[op].Args.model_validate(args)


def test_labels():
    cases = {("relu", None): "relu", ("leaky_relu", 0.2): "leaky_relu 0.2", ("gelu", "tanh"): "gelu tanh",
             ("gelu", None): "gelu", ("elu", None): "elu", ("elu", 0.5): "elu 0.5",
             ("softmax", None): "softmax dim=-1", ("log_softmax", 0): "log_softmax dim=0",
             ("relu6", None): "relu6", ("softplus", 2.0): "softplus 2", ("prelu", None): "prelu",
             ("prelu", 8): "prelu 8", ("glu", None): "glu dim=-1"}
    for (op, main), label in cases.items():
        entry = REGISTRY[op]
        args = {} if main is None else {entry.main_arg: main}
        assert entry.label(entry.Args.model_validate(args)) == label


def test_torch_calls_carry_the_batched_dim():
    entry, a = entry_and_args("softmax", {"dim": 0})
    assert entry.module(a, [(3, 4)]).kwargs == {"dim": 1}
    entry, a = entry_and_args("identity", {})
    assert entry.module(a, [(3,)]).cls == "Identity"
    assert entry.flops(a, [(3,)], (3,)) == 0


def test_symbolic_dims_pass_and_costs_are_unknown():
    entry, a = entry_and_args("relu", {})
    assert entry.infer(a, [("T", 8)]) == ("T", 8)
    with pytest.raises(SymbolicSize):
        entry.flops(a, [("T", 8)], ("T", 8))
    entry, a = entry_and_args("softmax", {"dim": 0})
    assert entry.infer(a, [("T", 8)]) == ("T", 8)


@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(sorted(ELEMENTWISE) + ["softmax", "log_softmax", "identity", "prelu", "glu"]),
       shape=st.lists(st.integers(1, 3), max_size=3).map(tuple),
       args=st.fixed_dictionaries({}, optional={"dim": st.integers(-4, 4), "negative_slope": st.floats(-1, 1),
                                                "num_parameters": st.integers(0, 3), "min_val": st.floats(-2, 2),
                                                "approximate": st.sampled_from(["none", "tanh", "erf"])}))
def test_bad_combinations_raise_shape_or_validation_errors(op, shape, args):
    try:
        check(op, args, [shape])
    except (ShapeError, ValidationError):
        pass


def test_glu_receptive_field():
    entry, a = entry_and_args("glu", {"dim": 0})
    assert entry.rf(a, [(8, 5, 5)]) is None
    entry, a = entry_and_args("glu", {"dim": -1})
    assert entry.rf(a, [(8, 5, 6)]) == GLOBAL
