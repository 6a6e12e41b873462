import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from netspec.layers import GLOBAL, REGISTRY, ShapeError, SymbolicSize
from tests.layers.harness import check, infer, sample

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)


def batched(dim):
    return dim + 1 if dim >= 0 else dim


def run(op, args, shape):
    """The entry's output shape and its forward on a random batch, with that batch."""
    out, _, _ = check(op, args, [shape])
    entry = REGISTRY[op]
    a = entry.Args.model_validate(args)
    x = sample(shape)
    return out, entry.forward(None, a, [x]), x, entry, a




@settings(max_examples=40, deadline=None)
@given(shape=shapes, data=st.data())
def test_flatten_matches_torch(shape, data):
    rank = len(shape)
    start, end = sorted(data.draw(st.lists(st.integers(0, rank - 1), min_size=2, max_size=2)))
    start -= data.draw(st.sampled_from([0, rank]))  # negative indices too
    out, y, x, entry, a = run("flatten", {"start_dim": start, "end_dim": end}, shape)
    assert out == (*shape[:start % rank], math.prod(shape[start % rank:end + 1]), *shape[end + 1:])
    assert torch.equal(y, torch.flatten(x, batched(start), batched(end)))
    assert entry.rf(a, [shape]) == (GLOBAL if end > start % rank else None)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, data=st.data())
def test_reshape_matches_torch(shape, data):
    target = list(data.draw(st.permutations(shape)))
    if data.draw(st.booleans()):
        target[data.draw(st.integers(0, len(target) - 1))] = -1
    out, y, x, entry, a = run("reshape", {"shape": target}, shape)
    assert math.prod(out) == math.prod(shape)
    assert torch.equal(y, x.reshape(2, *target))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, target=st.lists(st.sampled_from([-1, 1, 2, 3, 4, 6, 8]), max_size=3))
def test_reshape_accepts_exactly_what_torch_accepts(shape, target):
    try:
        expected = tuple(sample(shape).reshape(2, *target).shape[1:])
    except RuntimeError:
        expected = None
    try:
        out, _, _ = check("reshape", {"shape": target}, [shape])
    except ShapeError as exc:
        assert expected is None, exc.message
    else:
        assert out == expected


@settings(max_examples=40, deadline=None)
@given(shape=shapes, data=st.data())
def test_permute_matches_torch(shape, data):
    rank = len(shape)
    dims = [d - data.draw(st.sampled_from([0, rank])) for d in data.draw(st.permutations(range(rank)))]
    out, y, x, _, _ = run("permute", {"dims": dims}, shape)
    assert torch.equal(y, x.permute(0, *map(batched, dims)))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, data=st.data())
def test_select_matches_torch(shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    index = data.draw(st.integers(-shape[dim], shape[dim] - 1))
    out, y, x, _, _ = run("select", {"dim": dim, "index": index}, shape)
    assert torch.equal(y, x.select(batched(dim), index))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, data=st.data(), keepdim=st.booleans())
def test_mean_matches_torch(shape, data, keepdim):
    dims = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=len(shape),
                              unique_by=lambda d: d % len(shape)))
    dim = dims[0] if len(dims) == 1 and data.draw(st.booleans()) else dims
    out, y, x, entry, a = run("mean", {"dim": dim, "keepdim": keepdim}, shape)
    torch.testing.assert_close(y, x.mean(dim=[batched(d) for d in dims], keepdim=keepdim))
    assert entry.flops(a, [shape], out) == math.prod(shape)


def test_reshape_count_mismatch_lists_both_sizes():
    with pytest.raises(ShapeError) as info:
        infer("reshape", {"shape": [4, 5]}, (3, 8))
    assert info.value.message == "reshape to 4×5 needs 20 elements, but the input 3×8 has 24"
    assert info.value.arg == "shape"
    assert "batch" in info.value.hint
    with pytest.raises(ShapeError, match="needs a multiple of 5 elements, but the input 3×8 has 24"):
        infer("reshape", {"shape": [-1, 5]}, (3, 8))


@pytest.mark.parametrize("target", [[-1, -1], [0, 24], [-2, 12]])
def test_reshape_dims_are_positive_with_one_minus_one(target):
    with pytest.raises(ShapeError, match=r"reshape dims must be positive, with at most one -1") as info:
        infer("reshape", {"shape": target}, (3, 8))
    assert info.value.arg == "shape"


def test_permute_needs_a_permutation():
    with pytest.raises(ShapeError) as info:
        infer("permute", {"dims": [0, 0, 1]}, (3, 4, 5))
    assert info.value.message == ("permute dims [0, 0, 1] are not a permutation of the 3 dims of the input "
                                  "3×4×5")
    assert info.value.arg == "dims"
    assert info.value.hint == "list each of [0, 1, 2] once; the batch dim is not counted"
    with pytest.raises(ShapeError, match="not a permutation"):
        infer("permute", {"dims": [0, 1, 2, 3]}, (3, 4, 5))


def test_select_index_out_of_range():
    with pytest.raises(ShapeError) as info:
        infer("select", {"dim": 1, "index": 5}, (3, 4))
    assert info.value.message == "select index 5 is out of range for dim 1 of size 4 (input 3×4)"
    assert (info.value.arg, info.value.hint) == ("index", "indices run from -4 to 3")
    with pytest.raises(ShapeError, match="select dim 2 is out of range for the 2-dim input 3×4"):
        infer("select", {"dim": 2, "index": 0}, (3, 4))


def test_flatten_and_mean_errors():
    with pytest.raises(ShapeError, match="flatten start_dim 2 comes after end_dim 1 in the input 3×4×5"):
        infer("flatten", {"start_dim": 2, "end_dim": 1}, (3, 4, 5))
    with pytest.raises(ShapeError, match="flatten needs at least one dim, got a scalar"):
        infer("flatten", {}, ())
    with pytest.raises(ShapeError, match=r"mean dims \[1, -2\] name a dim twice") as info:
        infer("mean", {"dim": [1, -2]}, (3, 4, 5))
    assert info.value.arg == "dim"
    with pytest.raises(ValidationError):
        REGISTRY["mean"].Args.model_validate({"dim": []})


def test_symbolic_dims():
    assert infer("flatten", {"start_dim": 1}, (3, "H", "W")) == (3, "H*W")
    assert infer("flatten", {}, ("T", 4, 4)) == ("T*16",)
    assert infer("flatten", {"start_dim": 1}, (3, "(H-1)//2+1", 4)) == (3, "((H-1)//2+1)*4")
    assert infer("reshape", {"shape": [-1, 8, 8]}, ("T", 64)) == ("T", 8, 8)
    assert infer("reshape", {"shape": [4, -1]}, ("T", 8)) == (4, "T*2")
    with pytest.raises(ShapeError, match="cannot check the element count of T×8: `T` is symbolic") as info:
        infer("reshape", {"shape": [8, 8]}, ("T", 8))
    assert "-1" in info.value.hint
    assert infer("permute", {"dims": [1, 0]}, ("T", 8)) == (8, "T")
    assert infer("select", {"index": 0}, ("T", 8)) == (8,)
    assert infer("mean", {"dim": 0}, ("T", 8)) == (8,)
    entry = REGISTRY["mean"]
    with pytest.raises(SymbolicSize):
        entry.flops(entry.Args.model_validate({"dim": 0}), [("T", 8)], (8,))


def test_labels_and_receptive_fields():
    def label(op, args):
        return REGISTRY[op].label(REGISTRY[op].Args.model_validate(args))

    assert label("flatten", {}) == "flatten"
    assert label("flatten", {"start_dim": 1}) == "flatten 1..-1"
    assert label("reshape", {"shape": [-1, 8, 8]}) == "reshape -1×8×8"
    assert label("permute", {"dims": [1, 2, 0]}) == "permute 1,2,0"
    assert label("select", {"index": 0}) == "select dim=0 index=0"
    assert label("mean", {"dim": [1, 2]}) == "mean dim=1,2"
    mean = REGISTRY["mean"]
    assert mean.rf(mean.Args.model_validate({"dim": [1, 2]}), [(3, 4, 4)]) == GLOBAL
    assert mean.rf(mean.Args.model_validate({"dim": 0}), [(3, 4, 4)]) is None
    reshape = REGISTRY["reshape"]
    assert reshape.rf(reshape.Args.model_validate({"shape": [-1]}), [(3, 4)]) == GLOBAL
    assert all(REGISTRY[op].module(None, [(3,)]) is None for op in ["flatten", "reshape", "select", "mean"])


@settings(max_examples=80, deadline=None)
@given(op=st.sampled_from(["flatten", "reshape", "permute", "select", "mean"]),
       shape=st.lists(st.integers(1, 3), max_size=3).map(tuple),
       args=st.fixed_dictionaries({}, optional={
           "start_dim": st.integers(-4, 4), "end_dim": st.integers(-4, 4), "dim": st.integers(-4, 4),
           "index": st.integers(-4, 4), "keepdim": st.booleans(),
           "dims": st.lists(st.integers(-4, 4), max_size=4),
           "shape": st.lists(st.integers(-2, 9), max_size=4)}))
def test_bad_combinations_raise_shape_or_validation_errors(op, shape, args):
    try:
        check(op, args, [shape])
    except (ShapeError, ValidationError):
        pass
