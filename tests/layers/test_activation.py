import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from netspec.layers import REGISTRY, ShapeError, SymbolicSize
from netspec.torch_backend import instantiate
from tests.layers.harness import check, entry_and_args, sample

ELEMENTWISE = {"relu": {}, "sigmoid": {}, "tanh": {}, "silu": {}, "gelu": {"approximate": "tanh"},
               "leaky_relu": {"negative_slope": 0.2}, "elu": {"alpha": 0.5}}
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
                                      ("softmax", {"dim": 1.0}), ("leaky_relu", {"negative_slope": "0.1"})])
def test_bad_arguments_are_validation_errors(op, args):
    with pytest.raises(ValidationError):
        REGISTRY[op].Args.model_validate(args)


def test_labels():
    cases = {("relu", None): "relu", ("leaky_relu", 0.2): "leaky_relu 0.2", ("gelu", "tanh"): "gelu tanh",
             ("gelu", None): "gelu", ("elu", None): "elu", ("elu", 0.5): "elu 0.5",
             ("softmax", None): "softmax dim=-1", ("log_softmax", 0): "log_softmax dim=0"}
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
@given(op=st.sampled_from(sorted(ELEMENTWISE) + ["softmax", "log_softmax", "identity"]),
       shape=st.lists(st.integers(1, 3), max_size=3).map(tuple),
       args=st.fixed_dictionaries({}, optional={"dim": st.integers(-4, 4), "negative_slope": st.floats(-1, 1),
                                                "approximate": st.sampled_from(["none", "tanh", "erf"])}))
def test_bad_combinations_raise_shape_or_validation_errors(op, shape, args):
    try:
        check(op, args, [shape])
    except (ShapeError, ValidationError):
        pass
