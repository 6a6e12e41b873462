import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from netspec.layers import REGISTRY, Call, ShapeError, SymbolicSize
from tests.layers.harness import check, entry_and_args, infer, rejects, sample, within


def per_axis(nd, values):
    """An int for every axis, or a list of one per axis."""
    return st.one_of(values, st.lists(values, min_size=nd, max_size=nd))


def torch_module(op, in_channels, args):
    """The module torch builds from the same arguments, as a person would write it."""
    cls = {"conv": "Conv", "conv_transpose": "ConvTranspose"}[op[:-2]] + op[-2:]
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
    return getattr(torch.nn, cls)(in_channels, **kwargs)


@st.composite
def conv_cases(draw):
    nd = draw(st.integers(1, 3))
    transposed = draw(st.booleans())
    op = f"conv_transpose{nd}d" if transposed else f"conv{nd}d"
    in_channels = draw(st.integers(1, 6))
    groups = draw(st.sampled_from([1, 1, 1, 2, in_channels]))
    args = {
        "out_channels": draw(st.one_of(st.integers(1, 3).map(lambda n: n * groups), st.integers(1, 6))),
        "kernel_size": draw(per_axis(nd, st.integers(1, 4))),
        "stride": draw(per_axis(nd, st.integers(1, 3))),
        "dilation": draw(per_axis(nd, st.integers(1, 2))),
        "groups": groups,
        "bias": draw(st.booleans()),
    }
    paddings = per_axis(nd, st.integers(0, 2))
    args["padding"] = draw(paddings if transposed else st.one_of(paddings, st.just("same")))
    if transposed:
        args["output_padding"] = draw(per_axis(nd, st.integers(0, 1)))
    spatial = draw(st.lists(st.integers(1, 7 if nd < 3 else 4), min_size=nd, max_size=nd))
    return op, args, (in_channels, *spatial)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@settings(max_examples=60, deadline=None)
@given(case=conv_cases())
def test_conv_matches_torch(case):
    op, args, shape = case
    try:
        out, params, macs = check(op, args, [shape])
    except ShapeError as error:
        assert error.arg in REGISTRY[op].Args.model_fields, error.message
        try:
            y = torch_module(op, shape[0], args)(sample(shape))
        except (RuntimeError, ValueError):
            return
        assert y.numel() == 0, f"torch accepts {error.message}"  # torch lets a transposed conv output nothing
        return
    nd = len(shape) - 1
    k = args["kernel_size"]
    kernel = math.prod(k) if isinstance(k, list) else k ** nd
    if op.startswith("conv_transpose"):  # each input element meets one group's weights
        assert macs == math.prod(shape) * (args["out_channels"] // args["groups"]) * kernel
    else:  # each output element meets one group's weights
        assert macs == math.prod(out) * (shape[0] // args["groups"]) * kernel
    if args["padding"] == "same":
        assert out[1:] == shape[1:]


def test_resnet_stem_costs():
    out, params, macs = check("conv2d", {"out": 64, "kernel": 7, "stride": 2, "padding": 3, "bias": False},
                              [(3, 224, 224)])
    assert (out, params, macs) == ((64, 112, 112), 9408, 118_013_952)


def test_depthwise_conv():
    out, params, macs = check("conv2d", {"out": 32, "kernel": 3, "padding": 1, "groups": 32}, [(32, 8, 8)])
    assert (out, params, macs) == ((32, 8, 8), 32 * 9 + 32, 32 * 64 * 9)


def test_symbolic_lengths_pass_through():
    assert infer("conv1d", {"out": 8, "kernel": 3}, (4, "T")) == (8, "T-2")
    assert infer("conv2d", {"out": 8, "kernel": 3, "stride": 2, "padding": 1}, (4, "H", 9)) == (8, "(H+1)//2", 5)
    assert infer("conv1d", {"out": 8, "kernel": 4, "padding": "same"}, (4, "T")) == (8, "T")
    transposed = {"out": 8, "kernel": 4, "stride": 2, "padding": 1}
    assert infer("conv_transpose1d", transposed, (4, "T")) == (8, "T*2")
    entry, a = entry_and_args("conv1d", {"out": 8, "kernel": 3})
    with pytest.raises(SymbolicSize):
        entry.macs(a, [(4, "T")], (8, "T-2"))


def test_label_module_and_rf():
    entry, a = entry_and_args("conv2d", {"out": 64, "kernel": 3, "stride": 2, "dilation": 2, "groups": 4,
                                         "padding": [1, 2], "bias": False})
    assert entry.label(a) == "conv2d 3×3/2 d2×2 g4 · 64"
    assert entry.module(a, [(8, 16, 16)]) == Call("Conv2d", (8, 64), {
        "kernel_size": 3, "stride": 2, "padding": (1, 2), "dilation": 2, "groups": 4, "bias": False})
    assert entry.rf(a, [(8, 16, 16)]) == [(5, Fraction(2)), (5, Fraction(2))]
    entry, a = entry_and_args("conv1d", {"out": 16, "kernel": 5, "padding": "same"})
    assert entry.label(a) == "conv1d 5 · 16"
    assert entry.module(a, [(4, 10)]) == Call("Conv1d", (4, 16), {"kernel_size": 5, "padding": "same"})
    entry, a = entry_and_args("conv_transpose2d", {"out": 8, "kernel": 4, "stride": 2, "padding": 1})
    assert entry.label(a) == "conv_transpose2d 4×4/2 · 8"
    assert entry.rf(a, [(4, 5, 5)]) == [(2, Fraction(1, 2))] * 2  # an output sees 2 inputs per axis


@pytest.mark.parametrize("op, args, shape, message, arg, hint", [
    ("conv2d", {"out": 8, "kernel": 3}, (784,), "conv2d needs a [C, H, W] input (batch excluded), got 784",
     None, "`reshape: [1, 28, 28]`"),
    ("conv2d", {"out": 8, "kernel": 3}, (3, 20), "got 3×20", None, "did you mean `conv1d`?"),
    ("conv1d", {"out": 8, "kernel": 3}, (3, 8, 8), "conv1d needs a [C, L] input", None, "`conv2d`"),
    ("conv2d", {"out": 8, "kernel": 3, "groups": 4}, (6, 8, 8),
     "the input's 6 channels are not divisible by groups=4", "groups", "groups must divide"),
    ("conv2d", {"out": 6, "kernel": 3, "groups": 4}, (8, 8, 8),
     "out_channels=6 is not divisible by groups=4", "out_channels", "multiple of 4"),
    ("conv2d", {"out": 8, "kernel": 5, "dilation": 2}, (3, 8, 8),
     "the kernel spans 9 but the padded input is 8", "kernel_size", "smaller kernel_size or dilation"),
    ("conv1d", {"out": 8, "kernel": 9}, (3, 8),
     "the kernel spans 9 but the padded input is 8", "kernel_size", "use a smaller kernel_size, or more padding"),
    ("conv2d", {"out": 8, "kernel": 3}, (28, 28, 1),
     "the kernel spans 3 but the padded input is 1", "kernel_size", "puts channels first: `input: [1, 28, 28]`"),
    ("conv2d", {"out": 32, "kernel": 5}, (16, 4, 4),  # a feature map, not an image given channels-last
     "the kernel spans 5 but the padded input is 4", "kernel_size", "use a smaller kernel_size, or more padding"),
    ("conv2d", {"out": 8, "kernel": [3, 3, 3]}, (3, 8, 8),
     "kernel_size has 3 entries but the input has 2 spatial dims", "kernel_size", "a list of 2"),
    ("conv1d", {"out": 8, "kernel": 3, "stride": 2, "padding": "same"}, (3, 8),
     "padding `same` needs stride 1", "padding", "kernel_size // 2"),
    ("conv2d", {"out": 8, "kernel": 3, "in_channels": 4}, (3, 8, 8),
     "in_channels is 4 but the input has 3 channels", "in_channels", "inferred"),
    ("conv_transpose1d", {"out": 8, "kernel": 3, "stride": 2, "output_padding": 2}, (3, 8),
     "output_padding=2 must be smaller than stride=2 or dilation=1", "output_padding", None),
    ("conv_transpose1d", {"out": 8, "kernel": 3, "padding": 4}, (3, 2),
     "padding=4 leaves an output length of -4", "padding", "less padding"),
])
def test_conv_rejects(op, args, shape, message, arg, hint):
    rejects(op, args, shape, message, arg, hint)


def test_symbolic_channels_are_rejected():
    with pytest.raises(ShapeError, match="needs a known channel dim, got symbolic `C`"):
        infer("conv2d", {"out": 8, "kernel": 3}, ("C", 8, 8))


def test_transposed_conv_has_no_same_padding():
    with pytest.raises(ValidationError, match="padding"):
        REGISTRY["conv_transpose2d"].Args.model_validate({"out": 8, "kernel": 3, "padding": "same"})


@pytest.mark.parametrize("op, side", [("conv1d", 10**400), ("conv2d", 10**200), ("conv3d", 10**133)],
                         ids=["conv1d", "conv2d", "conv3d"])
def test_rank_hint_on_huge_dims_uses_integer_roots(op, side):
    nd = int(op[-2])
    n = side ** nd
    with within(2), pytest.raises(ShapeError, match="input") as info:  # was OverflowError (int to float)
        infer(op, {"out": 8, "kernel": 3}, (n,))
    assert info.value.hint.endswith(f"e.g. `reshape: [1, {', '.join([str(side)] * nd)}]` for {n} values")
    if nd > 1:  # n + 1 is no square or cube: no example
        with pytest.raises(ShapeError) as info:
            infer(op, {"out": 8, "kernel": 3}, (n + 1,))
        assert info.value.hint.endswith(f"before `{op}`")
