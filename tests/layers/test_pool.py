import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from netspec.layers import GLOBAL, REGISTRY, Call, ShapeError, SymbolicSize
from tests.layers.harness import check, entry_and_args, infer, rejects, sample, within

TORCH_ERRORS = (RuntimeError, ValueError)  # NotImplementedError is a RuntimeError






def flops(op, args, shape):
    entry, a = entry_and_args(op, args)
    return entry.flops(a, [shape], entry.infer(a, [shape]))


def per_axis(nd, values):
    """An int for every axis, or a list of one per axis."""
    return st.one_of(values, st.lists(values, min_size=nd, max_size=nd))


def as_torch(args):
    return {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}


def check_or_rejected(op, args, shape, torch_module):
    """The harness's result, or None after asserting that both netspec and torch reject the case."""
    try:
        return check(op, args, [shape])
    except ShapeError as error:
        assert error.arg in REGISTRY[op].Args.model_fields, error.message
        with pytest.raises(TORCH_ERRORS):
            torch_module()(sample(shape))
        return None


def shapes(nd):
    return st.tuples(st.integers(1, 3), *[st.integers(1, 8 if nd < 3 else 5)] * nd)


@st.composite
def pool_cases(draw):
    nd = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["max", "avg"]))
    args = {"kernel_size": draw(per_axis(nd, st.integers(1, 4))),
            "padding": draw(per_axis(nd, st.integers(0, 2))),
            "ceil_mode": draw(st.booleans())}
    stride = draw(st.one_of(st.none(), per_axis(nd, st.integers(1, 3))))
    if stride is not None:
        args["stride"] = stride
    if kind == "max":
        args["dilation"] = draw(per_axis(nd, st.integers(1, 2)))
    else:
        args["count_include_pad"] = draw(st.booleans())
    return f"{kind}pool{nd}d", args, draw(shapes(nd))


@settings(max_examples=60, deadline=None)
@given(case=pool_cases())
def test_pool_matches_torch(case):
    op, args, shape = case
    torch_cls = ("MaxPool" if op.startswith("max") else "AvgPool") + op[-2:]
    result = check_or_rejected(op, args, shape, lambda: getattr(torch.nn, torch_cls)(**as_torch(args)))
    if result is None:
        return
    out, params, macs = result
    nd = len(shape) - 1
    kernel = args["kernel_size"]
    window = math.prod(kernel) if isinstance(kernel, list) else kernel ** nd
    assert (params, macs) == (0, 0)
    assert flops(op, args, shape) == math.prod(out) * window


@st.composite
def adaptive_cases(draw):
    nd = draw(st.integers(1, 3))
    op = f"adaptive_{draw(st.sampled_from(['avg', 'max']))}pool{nd}d"
    size = st.integers(1, 6)
    entry = st.one_of(size, st.none()) if nd > 1 else size  # torch's 1-d adaptive pools take no `null`
    output_size = draw(st.one_of(size, st.lists(entry, min_size=nd, max_size=nd)))
    return op, {"output_size": output_size}, draw(shapes(nd))


@settings(max_examples=50, deadline=None)
@given(case=adaptive_cases())
def test_adaptive_pool_matches_torch(case):
    op, args, shape = case
    out, params, macs = check(op, args, [shape])
    assert (params, macs) == (0, 0)
    work = flops(op, args, shape)
    assert work >= math.prod(shape)  # the windows cover the input
    if all(n % o == 0 for n, o in zip(shape[1:], out[1:], strict=True)):
        assert work == math.prod(shape)  # ... exactly once when they tile it


@st.composite
def upsample_cases(draw):
    nd = draw(st.integers(1, 3))
    args = {"mode": draw(st.sampled_from(["nearest", "linear", "bilinear", "bicubic", "trilinear"]))}
    which = draw(st.sampled_from(["size", "scale_factor", "size", "scale_factor", "both", "neither"]))
    if which in ("size", "both"):
        args["size"] = draw(per_axis(nd, st.integers(1, 8)))
    if which in ("scale_factor", "both"):
        args["scale_factor"] = draw(per_axis(nd, st.floats(0.2, 3.0).map(lambda f: round(f, 2))))
    align = draw(st.sampled_from([None, None, True, False]))
    if align is not None:
        args["align_corners"] = align
    return args, draw(shapes(nd))


@settings(max_examples=60, deadline=None)
@given(case=upsample_cases())
def test_upsample_matches_torch(case):
    args, shape = case
    result = check_or_rejected("upsample", args, shape, lambda: torch.nn.Upsample(**as_torch(args)))
    if result is None:
        return
    out, params, macs = result
    assert (params, macs) == (0, 0)
    taps = {"nearest": 0, "bicubic": 4}.get(args["mode"], 2)  # input reads per axis and output element
    assert flops("upsample", args, shape) == math.prod(out) * taps ** (len(shape) - 1)


def test_resnet_stem_pool_and_head():
    assert check("maxpool2d", {"kernel": 3, "stride": 2, "padding": 1}, [(64, 112, 112)])[0] == (64, 56, 56)
    assert check("adaptive_avgpool2d", {"output_size": 1}, [(512, 7, 7)])[0] == (512, 1, 1)
    assert flops("maxpool2d", {"kernel": 3, "stride": 2, "padding": 1}, (64, 112, 112)) == 64 * 56 * 56 * 9


def test_ceil_mode_keeps_a_partial_window():
    assert check("maxpool1d", {"kernel": 2, "ceil_mode": True}, [(1, 5)])[0] == (1, 3)
    assert check("maxpool1d", {"kernel": 2}, [(1, 5)])[0] == (1, 2)


def test_symbolic_lengths():
    assert infer("maxpool2d", {"kernel": 2}, (8, "H", "W")) == (8, "H//2", "W//2")
    assert infer("maxpool1d", {"kernel": 3, "stride": 2, "ceil_mode": True}, (8, "T")) == (8, "T//2")
    assert infer("avgpool1d", {"kernel": 3, "stride": 2, "padding": 1}, (8, "T")) == (8, "(T+1)//2")
    assert infer("adaptive_avgpool2d", {"output_size": [None, 1]}, (8, "H", "W")) == (8, "H", 1)
    assert infer("upsample", {"scale": 2}, (8, "T")) == (8, "T*2")
    with pytest.raises(SymbolicSize):
        flops("adaptive_avgpool1d", {"output_size": 4}, (8, "T"))


def test_labels_and_modules():
    entry, a = entry_and_args("maxpool2d", {"kernel": 3, "stride": 2, "padding": 1})
    assert entry.label(a) == "maxpool2d 3×3/2"
    assert entry.module(a, None) == Call("MaxPool2d", (), {"kernel_size": 3, "stride": 2, "padding": 1})
    entry, a = entry_and_args("avgpool1d", {"kernel": 4, "count_include_pad": False})
    assert entry.label(a) == "avgpool1d 4/4"
    assert entry.module(a, None) == Call("AvgPool1d", (), {"kernel_size": 4, "count_include_pad": False})
    entry, a = entry_and_args("adaptive_maxpool2d", {"output_size": [None, 7]})
    assert entry.label(a) == "adaptive_maxpool2d -×7"
    assert entry.module(a, None) == Call("AdaptiveMaxPool2d", ((None, 7),))
    entry, a = entry_and_args("upsample", {"scale": 2, "mode": "bilinear", "align_corners": False})
    assert entry.label(a) == "upsample ×2 bilinear"
    assert entry.module(a, None) == Call("Upsample", (), {"scale_factor": 2.0, "mode": "bilinear",
                                                          "align_corners": False})
    entry, a = entry_and_args("upsample", {"size": [16, 32]})
    assert entry.label(a) == "upsample → 16×32 nearest"


def test_receptive_fields():
    entry, a = entry_and_args("maxpool2d", {"kernel": 3, "stride": 2, "dilation": [1, 2]})
    assert entry.rf(a, [(1, 9, 9)]) == [(3, Fraction(2)), (5, Fraction(2))]
    entry, a = entry_and_args("adaptive_avgpool2d", {"output_size": 1})
    assert entry.rf(a, [(512, 7, 7)]) == GLOBAL
    entry, a = entry_and_args("adaptive_avgpool2d", {"output_size": [7, None]})
    assert entry.rf(a, [(8, 14, 5)]) == [(2, Fraction(2)), (1, Fraction(1))]
    assert entry.rf(a, [(8, 10, 5)]) == [(3, Fraction(10, 7)), (1, Fraction(1))]  # windows of 2 and 3
    entry, a = entry_and_args("upsample", {"scale": 2, "mode": "bilinear"})
    assert entry.rf(a, [(3, 4, 4)]) == [(2, Fraction(1, 2))] * 2
    entry, a = entry_and_args("upsample", {"size": 6})
    assert entry.rf(a, [(3, 4)]) == [(1, Fraction(2, 3))]


@pytest.mark.parametrize("op, args, shape, message, arg, hint", [
    ("maxpool2d", {"kernel": 3, "padding": 2}, (3, 8, 8), "padding=2 is more than half of kernel_size=3",
     "padding", "at most kernel_size // 2 = 1"),
    ("avgpool2d", {"kernel": 5}, (3, 8, 4), "the window spans 5 but the padded input is 4", "kernel_size",
     "use a smaller kernel_size, or more padding"),
    ("maxpool1d", {"kernel": 3, "dilation": 4}, (3, 8), "the window spans 9 but the padded input is 8",
     "kernel_size", "use a smaller kernel_size or dilation, or more padding"),
    ("avgpool3d", {"kernel": 3, "padding": 1}, (3, 8, 2, 8),
     "avgpool3d needs each input length to hold kernel_size=3 before padding, got 2", "kernel_size", None),
    ("maxpool2d", {"kernel": 2}, (3, 8), "maxpool2d needs a [C, H, W] input (batch excluded), got 3×8", None,
     "did you mean `maxpool1d`?"),
    ("avgpool1d", {"kernel": [2, 2]}, (3, 8), "kernel_size has 2 entries but the input has 1 spatial dims",
     "kernel_size", None),
    ("adaptive_avgpool2d", {"output_size": [1, 1, 1]}, (3, 8, 8), "output_size has 3 entries", "output_size",
     None),
    ("adaptive_avgpool2d", {"output_size": 1}, (512,), "adaptive_avgpool2d needs a [C, H, W] input", None,
     "reshape"),
    ("adaptive_maxpool1d", {"output_size": [None]}, (3, 8), "adaptive_maxpool1d needs an output size",
     "output_size", None),
    ("upsample", {"scale": 2, "mode": "bilinear"}, (3, 8),
     "mode `bilinear` needs 2 spatial dims, the input has 1", "mode", "use `linear`"),
    ("upsample", {"scale": 2, "align_corners": True}, (3, 8),
     "align_corners applies to the interpolating modes", "align_corners", None),
    ("upsample", {"scale": 2, "size": 16}, (3, 8),
     "exactly one of size and scale_factor, got both", "size", None),
    ("upsample", {"mode": "linear"}, (3, 8), "got neither", "scale_factor", None),
    ("upsample", {"scale": 0.1}, (3, 8), "scale_factor=0.1 turns a length of 8 into 0", "scale_factor", None),
    ("upsample", {"scale": 2}, (8,), "upsample needs [C, L], [C, H, W] or [C, D, H, W]", None, "reshape"),
])
def test_pool_rejects(op, args, shape, message, arg, hint):
    rejects(op, args, shape, message, arg, hint)


def test_adaptive_pool_costs_are_closed_forms_on_huge_lengths():
    # per axis the windows' widths sum to L + out - gcd(L, out); the widest has a closed form too
    shape = (2, 60_000_001, 5)
    entry, a = entry_and_args("adaptive_avgpool2d", {"output_size": [30_000_000, 1]})
    with within(2):
        out = entry.infer(a, [shape])
        assert entry.flops(a, [shape], out) == 2 * (60_000_001 + 30_000_000 - 1) * 5
        assert entry.rf(a, [shape]) == [(3, Fraction(60_000_001, 30_000_000)), (5, Fraction(5))]


def test_adaptive_pool_rf_does_not_rerun_infer(monkeypatch):
    entry, a = entry_and_args("adaptive_maxpool2d", {"output_size": [7, None]})

    def infer_again(*args):
        raise AssertionError("rf re-ran the shape inference")

    monkeypatch.setattr(type(entry), "infer", infer_again)
    assert entry.rf(a, [(8, 10, 5)]) == [(3, Fraction(10, 7)), (1, Fraction(1))]
    assert entry.rf(a, [(8, "H", "W")]) == GLOBAL


class ResizeNet(torch.nn.Module):
    """resize_as's forward as a module, for torch.fx to trace."""

    def __init__(self, a):
        super().__init__()
        self.a = a

    def forward(self, x, ref):
        return REGISTRY["resize_as"].forward(None, self.a, [x, ref])


@settings(max_examples=40, deadline=None)
@given(nd=st.integers(1, 3), channels=st.integers(1, 3), data=st.data())
def test_resize_as_matches_interpolate(nd, channels, data):
    mode = data.draw(st.sampled_from(["nearest", {1: "linear", 2: "bilinear", 3: "trilinear"}[nd]]
                                     + (["bicubic"] if nd == 2 else [])))
    args = {"mode": mode} | ({"align_corners": data.draw(st.booleans())} if mode != "nearest" else {})
    x_shape = (channels, *data.draw(st.lists(st.integers(1, 5), min_size=nd, max_size=nd)))
    ref_shape = (data.draw(st.integers(1, 3)), *data.draw(st.lists(st.integers(1, 7), min_size=nd, max_size=nd)))
    x, ref = sample(x_shape), sample(ref_shape)
    out, params, macs = check("resize_as", args, [x_shape, ref_shape], inputs=[x, ref])
    assert (out, params, macs) == ((channels, *ref_shape[1:]), 0, 0)
    expected = torch.nn.functional.interpolate(x, size=ref_shape[1:], mode=mode,
                                               align_corners=args.get("align_corners"))
    traced = torch.fx.symbolic_trace(ResizeNet(REGISTRY["resize_as"].Args.model_validate(args)))
    torch.testing.assert_close(traced(x, ref), expected)
    entry = REGISTRY["resize_as"]
    a = entry.Args.model_validate(args)
    taps = {"nearest": 0, "bicubic": 4}.get(mode, 2)
    assert entry.flops(a, [x_shape, ref_shape], out) == math.prod(out) * taps ** nd
    assert entry.rf(a, [x_shape, ref_shape]) == [(max(taps, 1), Fraction(n, o))
                                                 for n, o in zip(x_shape[1:], ref_shape[1:])]


def test_resize_as_refusals_and_symbolic_sizes():
    assert infer("resize_as", {}, (21, 28, 28), (3, "H", "W")) == (21, "H", "W")
    entry = REGISTRY["resize_as"]
    assert entry.rf(entry.Args.model_validate({}), [(21, 28, 28), (3, "H", "W")]) == GLOBAL
    assert entry.label(entry.Args.model_validate({"mode": "bilinear"})) == "resize_as bilinear"
    with pytest.raises(ShapeError, match="resize_as needs two inputs \\[C, H, W\\] of one rank"):
        infer("resize_as", {}, (21, 28, 28), (3, 224))
    with pytest.raises(ShapeError, match="mode `bilinear` needs 2 spatial dims, the input has 1") as info:
        infer("resize_as", {"mode": "bilinear"}, (21, 28), (3, 224))
    assert info.value.arg == "mode"
    with pytest.raises(ShapeError, match="align_corners applies to the interpolating modes"):
        infer("resize_as", {"align_corners": True}, (21, 28), (3, 224))
    assert entry.arity == (2, 2) and entry.main_arg == "from"
