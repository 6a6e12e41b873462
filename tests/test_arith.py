"""The shared shape arithmetic against torch, on random cases; symbolic results evaluated back."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from netspec.arith import (
    adaptive_max_width,
    adaptive_width_sum,
    adaptive_windows,
    conv_out,
    conv_transpose_out,
    dim_product,
    dim_sum,
    int_root,
    nearest_divisors,
    scale_dim,
)
from netspec.expr import evaluate

fast = settings(max_examples=60, deadline=None)
lengths = st.integers(1, 24)
kernels = st.integers(1, 6)
strides = st.integers(1, 4)
dilations = st.integers(1, 3)


def row(length):
    return torch.arange(float(length)).reshape(1, 1, length)


@fast
@given(length=lengths, kernel=kernels, stride=strides, padding=st.integers(0, 3), dilation=dilations)
def test_conv_out_matches_conv1d(length, kernel, stride, padding, dilation):
    assume(length + 2 * padding >= dilation * (kernel - 1) + 1)
    weight = torch.ones(1, 1, kernel)
    y = F.conv1d(row(length), weight, stride=stride, padding=padding, dilation=dilation)
    assert conv_out(length, kernel, stride, padding, dilation) == y.shape[-1]
    expr = conv_out("L", kernel, stride, padding, dilation)
    assert evaluate(expr, {"L": length}) == y.shape[-1]


@fast
@given(length=lengths, kernel=kernels, stride=strides, dilation=dilations, ceil_mode=st.booleans(),
       data=st.data())
def test_conv_out_matches_max_pool1d(length, kernel, stride, dilation, ceil_mode, data):
    padding = data.draw(st.integers(0, kernel // 2))
    expected = conv_out(length, kernel, stride, padding, dilation, ceil_mode)
    if expected < 1:  # the window does not fit
        with pytest.raises(RuntimeError):
            F.max_pool1d(row(length), kernel, stride, padding, dilation, ceil_mode=ceil_mode)
        return
    y = F.max_pool1d(row(length), kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    assert expected == y.shape[-1]


@fast
@given(length=lengths, kernel=kernels, stride=strides, ceil_mode=st.booleans())
def test_symbolic_conv_out_without_padding(length, kernel, stride, ceil_mode):
    # with no padding, the last-window correction never applies once the kernel reaches the stride
    assume(length >= kernel >= stride)
    expr = conv_out("L", kernel, stride, 0, 1, ceil_mode)
    assert evaluate(expr, {"L": length}) == conv_out(length, kernel, stride, 0, 1, ceil_mode)


@fast
@given(length=lengths, kernel=kernels, stride=strides, padding=st.integers(0, 3), dilation=dilations,
       data=st.data())
def test_conv_transpose_out_matches_torch(length, kernel, stride, padding, dilation, data):
    output_padding = data.draw(st.integers(0, max(stride, dilation) - 1))
    expected = conv_transpose_out(length, kernel, stride, padding, output_padding, dilation)
    assume(expected >= 1)
    weight = torch.ones(1, 1, kernel)
    y = F.conv_transpose1d(row(length), weight, stride=stride, padding=padding,
                           output_padding=output_padding, dilation=dilation)
    assert expected == y.shape[-1]
    expr = conv_transpose_out("L", kernel, stride, padding, output_padding, dilation)
    assert evaluate(expr, {"L": length}) == expected


@fast
@given(length=lengths, factor=st.floats(0.1, 4.0, allow_nan=False))
def test_scale_dim_matches_interpolate(length, factor):
    expected = scale_dim(length, factor)
    assume(expected >= 1)
    y = F.interpolate(row(length), scale_factor=factor, mode="nearest")
    assert expected == y.shape[-1]
    assert evaluate(scale_dim("L", factor), {"L": length}) == expected


@fast
@given(length=lengths, out=st.integers(1, 30))
def test_adaptive_windows_match_adaptive_max_pool(length, out):
    # on 0, 1, 2, … a window's max is its last index and its -max is minus its first
    windows = adaptive_windows(length, out)
    ends = F.adaptive_max_pool1d(row(length), out).flatten().tolist()
    starts = (-F.adaptive_max_pool1d(-row(length), out)).flatten().tolist()
    assert [(int(s), int(e) + 1) for s, e in zip(starts, ends, strict=True)] == windows


@settings(max_examples=300, deadline=None)
@given(length=st.integers(1, 3000), out=st.integers(1, 3000))
def test_adaptive_window_closed_forms(length, out):
    # sum of widths = L + out - gcd(L, out); widest = ceil((L' + o' - 1)/o') with L', o' reduced by the gcd
    widths = [e - s for s, e in adaptive_windows(length, out)]
    assert adaptive_width_sum(length, out) == sum(widths)
    assert adaptive_max_width(length, out) == max(widths)


def test_adaptive_window_closed_forms_on_huge_lengths():
    assert adaptive_width_sum(10**400, 3) == 10**400 + 2
    assert adaptive_max_width(10**400, 3) == -(-10**400 // 3)  # three windows of (L + 2) // 3
    assert adaptive_max_width(30_000_000, 7) == max(e - s for s, e in adaptive_windows(30_000_000, 7))


def test_dim_sum_and_product():
    assert dim_sum([3, 4]) == 7
    assert dim_sum(["T", 1]) == "T+1"
    assert dim_sum(["(H+1)//2", 3, 2]) == "((H+1)//2)+5"
    assert dim_sum(["T", "S"]) == "T+S"
    assert dim_product([2, 8]) == 16
    assert dim_product(["T", 4, 4]) == "T*16"
    assert dim_product(["T-2", 1]) == "(T-2)"
    assert dim_product([]) == 1
    assert evaluate(dim_sum(["L//2", 3]), {"L": 9}) == 7
    assert evaluate(dim_product(["L-1", 3]), {"L": 9}) == 24


@settings(max_examples=200, deadline=None)
@given(n=st.one_of(st.integers(0, 10**6), st.integers(0, 10**400)), k=st.integers(1, 3))
def test_int_root_is_the_floor_of_the_real_root(n, k):
    r = int_root(n, k)
    assert r ** k <= n < (r + 1) ** k


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 5000), wanted=st.integers(1, 6000), count=st.integers(1, 8))
def test_nearest_divisors_match_the_full_divisor_list(n, wanted, count):
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    assert nearest_divisors(n, wanted, count) == sorted(sorted(divisors, key=lambda d: abs(d - wanted))[:count])


def test_nearest_divisors_of_huge_numbers_are_bounded():
    # 10**12 + 1 = 73 · 137 · 99990001; a 400-digit number takes the same bounded scan
    assert nearest_divisors(10**12 + 1, 7, 4) == [1, 73, 137, 10001]
    huge = 3 * 10**400
    assert nearest_divisors(huge, 64, 4) == [50, 60, 64, 75]
    assert all(huge % d == 0 for d in nearest_divisors(huge, 10**399, 6))
