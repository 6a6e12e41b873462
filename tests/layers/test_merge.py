import functools
import math
import operator

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from netspec.layers import FROM, REGISTRY, ShapeError, SymbolicSize
from tests.layers.harness import check, sample

COMBINE = {"add": operator.add, "multiply": operator.mul}


def infer(op, shapes, args=None):
    entry = REGISTRY[op]
    return entry.infer(entry.Args.model_validate(args or {}), shapes)


@settings(max_examples=40, deadline=None)
@given(op=st.sampled_from(sorted(COMBINE)), shape=st.lists(st.integers(1, 4), max_size=3).map(tuple),
       data=st.data())
def test_add_and_multiply_broadcast_as_torch(op, shape, data):
    n = data.draw(st.integers(2, 4))
    ones = st.lists(st.booleans(), min_size=len(shape), max_size=len(shape))
    shapes = [tuple(1 if one else d for d, one in zip(shape, data.draw(ones), strict=True)) for _ in range(n)]
    xs = [sample(s) for s in shapes]
    out, params, macs = check(op, {}, shapes, inputs=xs)
    assert out == tuple(torch.broadcast_shapes(*(x.shape for x in xs))[1:])
    assert (params, macs) == (0, 0)
    entry = REGISTRY[op]
    torch.testing.assert_close(entry.forward(None, entry.Args(), xs), functools.reduce(COMBINE[op], xs))
    assert entry.flops(entry.Args(), shapes, out) == math.prod(out) * (n - 1)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), data=st.data())
def test_concat_matches_torch(shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(1, 4), min_size=2, max_size=4))
    shapes = [tuple(s if i == dim % len(shape) else d for i, d in enumerate(shape)) for s in sizes]
    xs = [sample(s) for s in shapes]
    out, _, _ = check("concat", {"dim": dim}, shapes, inputs=xs)
    entry = REGISTRY["concat"]
    a = entry.Args.model_validate({"dim": dim})
    assert torch.equal(entry.forward(None, a, xs), torch.cat(xs, dim=dim + 1 if dim >= 0 else dim))
    assert out[dim] == sum(sizes)


def test_inputs_come_from_the_short_form():
    for op in ["add", "multiply", "concat"]:
        assert (REGISTRY[op].main_arg, REGISTRY[op].arity) == (FROM, (2, None))
        assert REGISTRY[op].module(None, [(3,), (3,)]) is None


def test_channel_mismatch_lists_every_input_and_suggests_a_projection():
    with pytest.raises(ShapeError) as info:
        infer("add", [(64, 8, 8), (128, 8, 8)])
    assert info.value.message == ("add needs equal shapes (a dim of 1 stretches), got 64×8×8, 128×8×8: "
                                  "dim 0 is 64 vs 128")
    assert "1×1 conv2d projection on the shortcut" in info.value.hint
    with pytest.raises(ShapeError, match="dim 1 is 8 vs 4") as info:
        infer("multiply", [(64, 8, 8), (64, 1, 1), (64, 4, 4)])
    assert "stride" in info.value.hint
    with pytest.raises(ShapeError, match="dim 0 is 10 vs 12") as info:
        infer("add", [(10,), (12,)])
    assert "linear" in info.value.hint


def test_ranks_are_not_padded():
    with pytest.raises(ShapeError) as info:
        infer("add", [(8, 4, 4), (8,)])
    assert info.value.message == "add needs inputs of one rank, got 8×4×4, 8"
    assert "reshape" in info.value.hint
    with pytest.raises(ShapeError, match="concat needs inputs of one rank, got 8×4, 8"):
        infer("concat", [(8, 4), (8,)])


def test_concat_needs_the_other_dims_equal():
    with pytest.raises(ShapeError) as info:
        infer("concat", [(16, 8, 8), (32, 4, 4)])
    assert info.value.message == ("concat along dim 0 needs the other dims equal, got 16×8×8, 32×4×4: "
                                  "dims 1, 2 differ")
    assert "resize" in info.value.hint
    with pytest.raises(ShapeError, match="concat dim 3 is out of range for the 3-dim input 16×8×8") as info:
        infer("concat", [(16, 8, 8), (16, 8, 8)], {"dim": 3})
    assert info.value.arg == "dim"


def test_symbolic_dims():
    assert infer("add", [("T", 8), ("T", 8)]) == ("T", 8)
    assert infer("add", [("T", 8), (1, 8)]) == ("T", 8)
    with pytest.raises(ShapeError, match="dim 0 is T vs S"):
        infer("add", [("T", 8), ("S", 8)])
    assert infer("concat", [(1, 8), ("T", 8)]) == ("T+1", 8)
    assert infer("concat", [("T", 8), ("T", 8)]) == ("T+T", 8)
    assert infer("concat", [("T", 8), ("T", 4)], {"dim": -1}) == ("T", 12)
    entry = REGISTRY["add"]
    with pytest.raises(SymbolicSize):
        entry.flops(entry.Args(), [("T", 8), ("T", 8)], ("T", 8))


def test_labels():
    assert REGISTRY["add"].label(REGISTRY["add"].Args()) == "add"
    assert REGISTRY["concat"].label(REGISTRY["concat"].Args()) == "concat dim=0"


@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(["add", "multiply", "concat"]),
       shapes=st.lists(st.lists(st.integers(1, 3), max_size=3).map(tuple), min_size=2, max_size=3),
       args=st.fixed_dictionaries({}, optional={"dim": st.integers(-4, 4)}))
def test_bad_combinations_raise_shape_or_validation_errors(op, shapes, args):
    try:
        check(op, args, shapes)
    except (ShapeError, ValidationError):
        pass
