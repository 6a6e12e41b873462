import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import netspec
from netspec.layers import REGISTRY, ShapeError, SymbolicSize
from netspec.torch_backend import instantiate
from tests.layers.harness import check, infer, within

BATCHNORM_RANKS = {"batchnorm1d": [1, 2], "batchnorm2d": [3], "batchnorm3d": [4]}
dims = st.lists(st.integers(1, 4), max_size=3)




@settings(max_examples=40, deadline=None)
@given(op=st.sampled_from(sorted(BATCHNORM_RANKS)), data=st.data(), channels=st.integers(1, 8),
       affine=st.booleans(), track=st.booleans(), momentum=st.sampled_from([0.1, 0.5, None]))
def test_batchnorm_matches_torch(op, data, channels, affine, track, momentum):
    rank = data.draw(st.sampled_from(BATCHNORM_RANKS[op]))
    shape = (channels, *data.draw(st.lists(st.integers(1, 4), min_size=rank - 1, max_size=rank - 1)))
    args = {"affine": affine, "track_running_stats": track, "momentum": momentum, "eps": 1e-3}
    out, params, macs = check(op, args, [shape])
    assert out == shape
    assert params == (2 * channels if affine else 0)
    assert macs == 0
    entry = REGISTRY[op]
    assert entry.flops(entry.Args.model_validate(args), [shape], out) == 2 * math.prod(shape)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data(), affine=st.booleans(),
       bias=st.booleans())
def test_layernorm_matches_torch(shape, data, affine, bias):
    k = data.draw(st.integers(0, len(shape)))
    trailing = shape[len(shape) - k:]
    forms = [trailing] + ([trailing[0]] if k == 1 else [])  # a list, or an int for one dim
    normalized = data.draw(st.sampled_from(forms)) if k else None
    args = {"normalized_shape": normalized, "affine": affine, "bias": bias}
    out, params, _ = check("layernorm", args, [tuple(shape)])
    n = math.prod(trailing or shape[-1:])
    assert out == tuple(shape)
    assert params == (n * (2 if bias else 1) if affine else 0)


@settings(max_examples=40, deadline=None)
@given(groups=st.integers(1, 4), per_group=st.integers(1, 4), rest=dims, affine=st.booleans())
def test_groupnorm_matches_torch(groups, per_group, rest, affine):
    shape = (groups * per_group, *rest)
    out, params, _ = check("groupnorm", {"num_groups": groups, "affine": affine}, [shape])
    assert out == shape
    assert params == (2 * groups * per_group if affine else 0)


@pytest.mark.parametrize("op, shape, expected, other", [
    ("batchnorm2d", (8, 16), "batchnorm2d needs [C, H, W], got 8×16", "batchnorm1d"),
    ("batchnorm1d", (8, 4, 4), "batchnorm1d needs [C] or [C, L], got 8×4×4", "batchnorm2d"),
    ("batchnorm3d", (8, 4, 4), "batchnorm3d needs [C, D, H, W], got 8×4×4", "batchnorm2d"),
])
def test_batchnorm_of_the_wrong_rank_suggests_the_right_one(op, shape, expected, other):
    with pytest.raises(ShapeError) as info:
        infer(op, {}, shape)
    assert info.value.message == expected
    assert info.value.hint == f"did you mean `{other}`?"


def test_batchnorm_checks_stated_num_features():
    with pytest.raises(ShapeError, match="num_features is 16 but the input has 8 channels") as info:
        infer("batchnorm2d", {"num_features": 16}, (8, 4, 4))
    assert info.value.arg == "num_features"


def test_groupnorm_groups_must_divide_channels():
    with pytest.raises(ShapeError, match="num_groups 5 does not divide the 12 channels") as info:
        infer("groupnorm", {"num_groups": 5}, (12, 4, 4))
    assert info.value.arg == "num_groups"
    assert info.value.hint == "choose a divisor of 12, e.g. 2, 3, 4, 6"


def test_layernorm_normalized_shape_must_match_trailing_dims():
    with pytest.raises(ShapeError) as info:
        infer("layernorm", {"normalized_shape": [4, 8]}, (3, 8, 4))
    assert info.value.message == "normalized_shape is [4, 8] but the input 3×8×4 ends in [8, 4]"
    assert info.value.arg == "normalized_shape"
    assert "[8, 4]" in info.value.hint


def test_symbolic_dims_pass_and_costs_are_unknown():
    entry = REGISTRY["batchnorm1d"]
    a = entry.Args.model_validate({})
    assert entry.infer(a, [(16, "L")]) == (16, "L")
    assert entry.params(a, [(16, "L")]) == 32
    with pytest.raises(SymbolicSize):
        entry.flops(a, [(16, "L")], (16, "L"))
    assert infer("layernorm", {}, ("T", 64)) == ("T", 64)
    assert REGISTRY["layernorm"].params(REGISTRY["layernorm"].Args(), [("T", 64)]) == 128
    with pytest.raises(ShapeError, match="known normalized dims"):
        infer("layernorm", {}, (64, "T"))
    with pytest.raises(ShapeError, match="known channel dim"):
        infer("groupnorm", {"num_groups": 2}, ("C", 4))


def test_labels_and_torch_calls():
    bn = REGISTRY["batchnorm2d"]
    a = bn.Args.model_validate({"momentum": None})
    assert bn.label(a) == "batchnorm2d"
    call = bn.module(a, [(8, 4, 4)])
    assert (call.cls, call.args, call.kwargs["momentum"]) == ("BatchNorm2d", (8,), None)
    gn = REGISTRY["groupnorm"]
    assert gn.label(gn.Args.model_validate({"num_groups": 32})) == "groupnorm 32"


@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(["batchnorm1d", "batchnorm2d", "batchnorm3d", "layernorm", "groupnorm"]),
       shape=st.lists(st.integers(1, 4), max_size=5),
       args=st.fixed_dictionaries({}, optional={
           "num_features": st.integers(-1, 4), "num_groups": st.integers(-1, 5),
           "num_channels": st.integers(0, 4),
           "normalized_shape": st.one_of(st.integers(-1, 4), st.lists(st.integers(0, 4), max_size=3)),
           "eps": st.sampled_from([1e-5, 0.0, -1.0]), "momentum": st.sampled_from([0.1, None, 1.5]),
           "affine": st.booleans()}))
def test_bad_combinations_raise_shape_or_validation_errors(op, shape, args):
    try:
        check(op, args, [tuple(shape)])
    except (ShapeError, ValidationError):
        pass


@pytest.mark.parametrize("channels, hint", [
    (10**12 + 1, "e.g. 1, 73, 137, 10001"),  # 73 · 137 · 99990001: the old hint listed divisors up to C
    (3 * 10**400, "e.g. 4, 5, 6, 8"),
], ids=["13-digit", "401-digit"])
def test_groupnorm_divisor_hint_is_bounded_on_huge_channels(channels, hint):
    with within(2), pytest.raises(ShapeError, match="num_groups 7 does not divide") as info:
        infer("groupnorm", {"num_groups": 7}, (channels, 4))
    assert info.value.hint.endswith(hint)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), value=st.floats(-2, 2),
       data=st.data())
def test_layer_scale_matches_torch(shape, value, data):
    table = data.draw(st.one_of(st.none(), st.lists(st.booleans(), min_size=1, max_size=len(shape)).map(
        lambda keep: [d if k else 1 for d, k in zip(shape[len(shape) - len(keep):], keep)])))
    args = {"init_value": value} if table is None else {"init_value": value, "shape": table}
    out, params, macs = check("layer_scale", args, [shape])
    expected = (shape[0], *[1] * (len(shape) - 1)) if table is None else tuple(table)
    assert (out, params, macs) == (shape, math.prod(expected), 0)
    entry = REGISTRY["layer_scale"]
    a = entry.Args.model_validate(args)
    scale = instantiate(entry.module(a, [shape]))
    assert tuple(scale.shape) == expected and torch.equal(scale, torch.full(expected, value))
    x = torch.randn(2, *shape)
    assert torch.equal(entry.forward(scale, a, [x]), x * torch.full(expected, value))
    assert entry.flops(a, [shape], out) == math.prod(shape)


def test_layer_scale_is_keyed_by_its_own_name_and_kept_by_init():
    spec = netspec.loads("""
name: block
input: [8, 5, 5]
init: kaiming_normal
layers:
  - conv2d: {out_channels: 8, kernel_size: 7, padding: 3, groups: 8}
  - layer_scale: {}
    name: layer_scale
""")
    model = netspec.build(spec)
    state = model.state_dict()
    assert tuple(state["layer_scale"].shape) == (8, 1, 1)
    assert torch.equal(state["layer_scale"], torch.full((8, 1, 1), 1e-6))
    assert netspec.analyze(spec).total_params == 8 * 49 + 8 + 8


@pytest.mark.parametrize("args, shape, message", [
    ({"shape": [3, 1]}, (4, 5, 5), "layer_scale shape [3, 1] does not broadcast to the input 4×5×5"),
    ({"shape": [1, 1, 1, 1]}, (4, 5, 5), "layer_scale shape [1, 1, 1, 1] does not broadcast"),
    ({"shape": [4, 5, 1]}, (4, "H", 5), "layer_scale shape [4, 5, 1] does not broadcast"),
])
def test_layer_scale_shape_must_broadcast_to_the_input(args, shape, message):
    with pytest.raises(ShapeError, match=re.escape(message)) as info:
        infer("layer_scale", args, shape)
    assert info.value.arg == "shape"


def test_layer_scale_defaults_and_symbolic_dims():
    assert infer("layer_scale", {}, (4, "H", "W")) == (4, "H", "W")
    assert infer("layer_scale", {"shape": [8]}, ("T", 8)) == ("T", 8)
    with pytest.raises(ShapeError, match="layer_scale needs a known channel dim, got symbolic `T`"):
        infer("layer_scale", {}, ("T", 8))
    with pytest.raises(ShapeError, match="layer_scale needs a channel dim, got a scalar"):
        infer("layer_scale", {}, ())
    entry = REGISTRY["layer_scale"]
    assert entry.label(entry.Args.model_validate({})) == "layer_scale 1e-06"
    with pytest.raises(ValidationError):
        entry.Args.model_validate({"shape": []})
    whole = entry.Args.model_validate({"init_value": 1})  # an int from YAML: still a float tensor
    assert instantiate(entry.module(whole, [(3, 2)])).dtype == torch.float32


def torchvision_layernorm2d(x, weight, bias, eps):
    """torchvision.models.convnext.LayerNorm2d.forward, as torchvision 0.29 writes it."""
    x = x.permute(0, 2, 3, 1)
    x = torch.nn.functional.layer_norm(x, (x.shape[-1],), weight, bias, eps)
    return x.permute(0, 3, 1, 2)


@settings(max_examples=40, deadline=None)
@given(shape=st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(1, 4)), affine=st.booleans(),
       bias=st.booleans(), eps=st.sampled_from([1e-5, 1e-6]), stated=st.booleans())
def test_layernorm2d_matches_torchvision(shape, affine, bias, eps, stated):
    args = {"affine": affine, "bias": bias, "eps": eps} | ({"num_channels": shape[0]} if stated else {})
    out, params, macs = check("layernorm2d", args, [shape])
    assert (out, params, macs) == (shape, shape[0] * (1 + bias) if affine else 0, 0)
    entry = REGISTRY["layernorm2d"]
    a = entry.Args.model_validate(args)
    m = instantiate(entry.module(a, [shape]))
    if affine:
        torch.nn.init.normal_(m.weight)
        assert sorted(m.state_dict()) == (["bias", "weight"] if bias else ["weight"])
        assert tuple(m.weight.shape) == (shape[0],)
    x = torch.randn(2, *shape)
    weight, b = (m.weight if affine else None), (m.bias if affine and bias else None)
    torch.testing.assert_close(entry.forward(m, a, [x]), torchvision_layernorm2d(x, weight, b, eps))
    assert entry.flops(a, [shape], out) == math.prod(shape) * (5 if affine else 4)


def test_layernorm2d_needs_an_image_of_known_channels():
    with pytest.raises(ShapeError, match="layernorm2d needs an image \\[C, H, W\\], got 4×5") as info:
        infer("layernorm2d", {}, (4, 5))
    assert "`layernorm`" in info.value.hint
    with pytest.raises(ShapeError, match="normalized_shape is 3 but the input has 4 channels") as info:
        infer("layernorm2d", {"normalized_shape": 3}, (4, 5, 5))
    assert info.value.arg == "normalized_shape"
    with pytest.raises(ShapeError, match="layernorm2d needs a known channel dim, got symbolic `C`"):
        infer("layernorm2d", {}, ("C", 5, 5))
    assert infer("layernorm2d", {}, (4, "H", "W")) == (4, "H", "W")
    assert REGISTRY["layernorm2d"].label(None) == "layernorm2d"
