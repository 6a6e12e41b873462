import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from netspec.layers import GLOBAL, REGISTRY, ShapeError, SymbolicSize
from netspec.torch_backend import instantiate
from tests.layers.harness import check, check_parts, infer, sample

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


def forward(op, args, shape, x):
    """The entry's forward on `x`, its module built when it has one."""
    entry = REGISTRY[op]
    a = entry.Args.model_validate(args)
    call = entry.module(a, [shape])
    return entry.forward(instantiate(call) if call is not None else None, a, [x])


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 4), max_size=3).map(tuple), data=st.data())
def test_unsqueeze_matches_torch(shape, data):
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)))
    out, params, macs = check("unsqueeze", {"dim": dim}, [shape])
    x = sample(shape)
    assert (out, params, macs) == (tuple(x.unsqueeze(batched(dim)).shape[1:]), 0, 0)
    assert torch.equal(forward("unsqueeze", {"dim": dim}, shape, x), x.unsqueeze(batched(dim)))


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=4).map(tuple), data=st.data())
def test_squeeze_matches_torch(shape, data):
    ones = [i for i, n in enumerate(shape) if n == 1]
    if not ones:
        return
    dims = data.draw(st.lists(st.sampled_from(ones), min_size=1, unique=True))
    dims = [d - len(shape) if data.draw(st.booleans()) else d for d in dims]
    args = {"dim": dims[0] if len(dims) == 1 else dims}
    out, params, macs = check("squeeze", args, [shape])
    x = sample(shape)
    expected = x.squeeze(tuple(batched(d) for d in dims))
    assert (out, params, macs) == (tuple(expected.shape[1:]), 0, 0)
    assert torch.equal(forward("squeeze", args, shape, x), expected)


def test_squeeze_refuses_a_dim_not_of_size_one():
    with pytest.raises(ShapeError, match="squeeze dim 0 has size 4, not 1, in the input 4×1") as info:
        infer("squeeze", {"dim": [0, 1]}, (4, 1))
    assert info.value.arg == "dim" and "`mean`" in info.value.hint
    with pytest.raises(ShapeError, match="squeeze dim 0 has size T, not 1"):
        infer("squeeze", {"dim": 0}, ("T", 1))
    assert infer("squeeze", {"dim": -1}, ("T", 1)) == ("T",)
    with pytest.raises(ValidationError):
        REGISTRY["squeeze"].Args.model_validate({})


@settings(max_examples=40, deadline=None)
@given(lead=st.lists(st.integers(1, 3), max_size=2), sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       trail=st.lists(st.integers(1, 3), max_size=2), data=st.data())
def test_unflatten_matches_torch(lead, sizes, trail, data):
    shape = (*lead, math.prod(sizes), *trail)
    dim = len(lead) - (len(shape) if data.draw(st.booleans()) else 0)
    given_sizes = list(sizes)
    if data.draw(st.booleans()):
        given_sizes[data.draw(st.integers(0, len(sizes) - 1))] = -1
    args = {"dim": dim, "sizes": given_sizes}
    out, params, macs = check("unflatten", args, [shape])
    assert (out, params, macs) == ((*lead, *sizes, *trail), 0, 0)
    x = sample(shape)
    assert torch.equal(forward("unflatten", args, shape, x), x.unflatten(batched(dim), given_sizes))


@pytest.mark.parametrize("args, shape, message", [
    ({"dim": 0, "sizes": [3, 3]}, (8, 2), "unflatten sizes [3, 3] need 9 elements, but dim 0 of the input 8×2 has 8"),
    ({"dim": 0, "sizes": [3, -1]}, (8, 2), "need a multiple of 3 elements"),
    ({"dim": 0, "sizes": [-1, -1]}, (8, 2), "at most one -1"),
    ({"dim": 0, "sizes": [2, 4]}, ("T", 2), "unflatten needs a known size of dim 0, got symbolic `T`"),
])
def test_unflatten_refusals(args, shape, message):
    with pytest.raises(ShapeError, match=re.escape(message)):
        infer("unflatten", args, shape)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), data=st.data())
def test_roll_matches_torch(shape, data):
    dims = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=len(shape)))
    shifts = data.draw(st.lists(st.integers(-5, 5), min_size=len(dims), max_size=len(dims)))
    args = {"shifts": shifts[0], "dims": dims[0]} if len(dims) == 1 and data.draw(st.booleans()) else \
        {"shifts": shifts, "dims": dims}
    assert check("roll", args, [shape]) == (shape, 0, 0)
    x = sample(shape)
    assert torch.equal(forward("roll", args, shape, x), x.roll(shifts, [batched(d) for d in dims]))


def test_roll_refusals_and_label():
    with pytest.raises(ValidationError, match="must have as many entries"):
        REGISTRY["roll"].Args.model_validate({"shifts": [1, 2], "dims": 0})
    with pytest.raises(ShapeError, match="roll dims 2 is out of range for the 2-dim input"):
        infer("roll", {"shifts": 1, "dims": 2}, (3, 4))
    entry = REGISTRY["roll"]
    assert entry.label(entry.Args.model_validate({"shifts": [-3, -3], "dims": [0, 1]})) == "roll -3,-3 dims=0,1"
    assert infer("roll", {"shifts": 1, "dims": 0}, ("T", 4)) == ("T", 4)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple), data=st.data())
def test_pad_matches_torch(shape, data):
    mode = data.draw(st.sampled_from(["constant", "reflect", "replicate"]))
    if mode == "constant":
        n = data.draw(st.integers(1, len(shape)))
        pad = data.draw(st.lists(st.integers(-1, 3), min_size=2 * n, max_size=2 * n))
    else:
        n = data.draw(st.sampled_from([r for r in (len(shape) - 1, len(shape)) if 1 <= r <= 3] or [1]))
        pad = data.draw(st.lists(st.integers(0, 3), min_size=2 * n, max_size=2 * n))
    args = {"pad": pad, "mode": mode} | ({"value": 1.5} if mode == "constant" and data.draw(st.booleans()) else {})
    x = sample(shape)
    try:
        expected = torch.nn.functional.pad(x, pad, mode=mode, **({"value": args.get("value", 0.0)}
                                                                 if mode == "constant" else {}))
    except RuntimeError:  # torch refuses: so must the entry
        with pytest.raises(ShapeError):
            infer("pad", args, shape)
        return
    if expected.numel() == 0:
        with pytest.raises(ShapeError, match="crops dim"):
            infer("pad", args, shape)
        return
    out, params, macs = check("pad", args, [shape])
    assert (out, params, macs) == (tuple(expected.shape[1:]), 0, 0)
    assert torch.equal(forward("pad", args, shape, x), expected)


def test_pad_symbolic_dims_and_refusals():
    assert infer("pad", {"pad": [1, 1, 2, 0]}, (3, "H", "W")) == (3, "H+2", "W+2")
    assert infer("pad", {"pad": [0, -1]}, ("T", 5)) == ("T", 4)
    with pytest.raises(ShapeError, match="pad mode `reflect` needs each pad below the padded length, but dim 1 is 3"):
        infer("pad", {"pad": [3, 0], "mode": "reflect"}, (2, 3))
    with pytest.raises(ShapeError, match="pad needs a known length of dim 1 to reflect, got symbolic `L`"):
        infer("pad", {"pad": [1, 1], "mode": "reflect"}, (2, "L"))
    with pytest.raises(ShapeError, match=re.escape("pad [1, 1, 1, 1] pads 2 dims, but the input 5 has 1")):
        infer("pad", {"pad": [1, 1, 1, 1]}, (5,))
    with pytest.raises(ShapeError, match="pad mode `replicate` pads 1 to 3 dims of a \\[C, \\*spatial\\] input"):
        infer("pad", {"pad": [1, 1], "mode": "replicate"}, (2, 3, 4))
    for args, message in [({"pad": [1, 2, 3]}, "even number"), ({"pad": [-1, 0], "mode": "reflect"}, "cropping"),
                          ({"pad": [1, 1], "mode": "replicate", "value": 2.0}, "value applies"),
                          ({"pad": [1, 1], "mode": "circular"}, "constant")]:
        with pytest.raises(ValidationError, match=message):
            REGISTRY["pad"].Args.model_validate(args)
    entry = REGISTRY["pad"]
    assert entry.label(entry.Args.model_validate({"pad": [3, 3], "mode": "reflect"})) == "pad 3,3 reflect"


def torchvision_channel_shuffle(x, groups):
    """torchvision.models.shufflenetv2.channel_shuffle, as torchvision 0.29 writes it."""
    batchsize, num_channels, height, width = x.size()
    x = x.view(batchsize, groups, num_channels // groups, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, num_channels, height, width)


@settings(max_examples=40, deadline=None)
@given(groups=st.integers(1, 4), per_group=st.integers(1, 4), rest=st.lists(st.integers(1, 3), min_size=1,
                                                                               max_size=3))
def test_channel_shuffle_matches_torch(groups, per_group, rest):
    shape = (groups * per_group, *rest)
    assert check("channel_shuffle", {"groups": groups}, [shape]) == (shape, 0, 0)
    x = sample(shape)
    y = forward("channel_shuffle", {"groups": groups}, shape, x)
    if len(rest) == 2:
        assert torch.equal(y, torchvision_channel_shuffle(x, groups))
    assert torch.equal(y, x.unflatten(1, (groups, per_group)).transpose(1, 2).flatten(1, 2))


def test_channel_shuffle_refusals():
    with pytest.raises(ShapeError, match="groups 3 does not divide the 8 channels") as info:
        infer("channel_shuffle", {"groups": 3}, (8, 4, 4))
    assert info.value.arg == "groups" and "e.g." in info.value.hint
    with pytest.raises(ShapeError, match="channel_shuffle needs \\[C, \\*spatial\\] \\(at least two dims\\), got 8"):
        infer("channel_shuffle", {"groups": 2}, (8,))
    assert infer("channel_shuffle", {"groups": 2}, (8, "H", "W")) == (8, "H", "W")


@settings(max_examples=60, deadline=None)
@given(shape=shapes, data=st.data())
def test_chunk_matches_torch(shape, data):
    """Accepted exactly when the chunks divide the dim, and then torch.chunk's parts, one node each."""
    rank = len(shape)
    dim = data.draw(st.integers(-rank, rank - 1))
    chunks = data.draw(st.integers(1, 5))
    args = {"chunks": chunks, "dim": dim}
    if shape[dim] % chunks:
        with pytest.raises(ShapeError, match=f"{chunks} chunks do not divide dim {dim} of size {shape[dim]}") as info:
            infer("chunk", args, shape)
        assert info.value.arg == "chunks" and "e.g." in info.value.hint
        return
    parts = check_parts("chunk", args, shape, lambda x: torch.chunk(x, chunks, dim=batched(dim)))
    assert len(parts) == chunks
    entry = REGISTRY["chunk"]
    a = entry.Args.model_validate(args)
    assert entry.rf(entry.part(a, 0), [shape]) is None


@settings(max_examples=60, deadline=None)
@given(shape=shapes, data=st.data())
def test_split_matches_torch(shape, data):
    rank = len(shape)
    dim = data.draw(st.integers(-rank, rank - 1))
    sizes = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    args = {"sizes": sizes, "dim": dim}
    if sum(sizes) != shape[dim]:
        entry = REGISTRY["split"]
        with pytest.raises(ShapeError, match=re.escape(f"split sizes {sizes} add up to {sum(sizes)}, but dim {dim}")):
            entry.infer(entry.part(entry.Args.model_validate(args), 0), [shape])
        return
    parts = check_parts("split", args, shape, lambda x: torch.split(x, sizes, dim=batched(dim)))
    assert [p[dim] for p in parts] == sizes


def test_chunk_and_split_need_a_known_dim_and_keep_symbolic_others():
    chunk, split = REGISTRY["chunk"], REGISTRY["split"]
    a = chunk.part(chunk.Args.model_validate({"chunks": 2, "dim": 1}), 1)
    assert chunk.infer(a, [("T", 8)]) == ("T", 4)
    with pytest.raises(ShapeError, match="chunk needs a known size of dim 0, got symbolic `T`"):
        chunk.infer(a.model_copy(update={"dim": 0}), [("T", 8)])
    s = split.part(split.Args.model_validate({"split_sizes": [3, 5], "dim": -1}), 1)
    assert split.infer(s, [("T", 8)]) == ("T", 5)
    assert split.parts(s) == 2 and chunk.parts(a) == 2 and not REGISTRY["relu"].splits and chunk.splits
    assert chunk.label(a) == "chunk 2 dim=1 [1]" and split.label(s) == "split 3,5 dim=-1 [1]"
    for op, args in [("chunk", {"chunks": 0}), ("split", {"sizes": []}), ("split", {"sizes": [2, 0]})]:
        with pytest.raises(ValidationError):
            REGISTRY[op].Args.model_validate(args)
    with pytest.raises(NotImplementedError, match="`relu` gives one tensor"):
        REGISTRY["relu"].part(REGISTRY["relu"].Args(), 0)
