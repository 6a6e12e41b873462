"""Shared shape arithmetic: pure functions used by every conv, pool and upsample entry.

Shapes are per sample (batch excluded): a tuple of dims, each an `int` or a
symbolic name (`"T"`). Symbolic dims pass through the ops that keep them; an op
that must compute with one yields a new symbolic expression string such as
`"(L-3)//2+1"`, which stays symbolic.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Union

Dim = Union[int, str]
Shape = tuple  # tuple[Dim, ...]

# What torch can hold (docs/security.md): a tensor's storage size in bytes, numel * itemsize, must fit
# in int64; with itemsizes up to 8 (float64, int64) that is fewer than 2**60 elements, in a parameter
# or in one sample's activation. Shapes have at most MAX_DIMS dims; a symbolic dim's expression stays
# under MAX_SYMBOLIC characters (a deeper chain of strided layers over a symbolic size needs `--dim`).
MAX_ELEMENTS = 2**60
MAX_DIMS = 64
MAX_SYMBOLIC = 200
_OFFSET = re.compile(r"^(.+?)([+-]\d+)$")  # `(L-3)//2+1` -> `(L-3)//2`, `+1`: a trailing constant term


def is_known(d: Dim) -> bool:
    return isinstance(d, int)


def numel(shape: Shape) -> int | None:
    """Number of elements, or None if a dim is symbolic."""
    n = 1
    for d in shape:
        if not isinstance(d, int):
            return None
        n *= d
    return n


def _term(d: Dim) -> str:
    """A symbolic dim as one term of a sum or product: a name as it is, an expression in parentheses."""
    return str(d) if str(d).isidentifier() else f"({d})"


def dim_sum(dims: Sequence[Dim]) -> Dim:
    """sum(dims): an int when every dim is known, else an expression such as `T+1`."""
    known = sum(d for d in dims if is_known(d))
    terms = [_term(d) for d in dims if not is_known(d)]
    if not terms:
        return known
    return "+".join(terms + ([str(known)] if known else []))


def dim_product(dims: Sequence[Dim]) -> Dim:
    """prod(dims): an int when every dim is known, else an expression such as `T*16`."""
    known = math.prod(d for d in dims if is_known(d))
    terms = [_term(d) for d in dims if not is_known(d)]
    if not terms:
        return known
    return "*".join(terms + ([str(known)] if known != 1 else []))


def int_root(n: int, k: int) -> int:
    """floor(n ** (1/k)) in integer arithmetic, exact for any size of n ≥ 0 (no float overflow)."""
    if n < 2 or k == 1:
        return n
    x = 1 << -(-n.bit_length() // k)  # 2^ceil(bits/k) ≥ the root: Newton's steps descend from above
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            return x
        x = y


DIVISOR_SCAN = 1 << 14  # candidates tried on each side of the wanted value, and below sqrt(n)


def nearest_divisors(n: int, wanted: int, count: int) -> list[int]:
    """Up to `count` divisors of n ≥ 1 closest to `wanted` (ties to the smaller), in ascending order.

    Bounded work for any n: it tries 1..min(sqrt(n), DIVISOR_SCAN) with their cofactors, and
    the DIVISOR_SCAN values on each side of `wanted`. Exact when n ≤ DIVISOR_SCAN², or when the
    `count` nearest divisors lie within DIVISOR_SCAN of `wanted`; otherwise still divisors of n.
    """
    found = set()
    for d in range(1, min(math.isqrt(n), DIVISOR_SCAN) + 1):
        if n % d == 0:
            found.update((d, n // d))
    for d in range(max(1, wanted - DIVISOR_SCAN), min(n, wanted + DIVISOR_SCAN) + 1):
        if n % d == 0:
            found.add(d)
    return sorted(sorted(sorted(found), key=lambda d: abs(d - wanted))[:count])


def _atom(expr: str) -> str:
    """`expr` as one operand: a name or a parenthesized whole stays as it is, anything else is wrapped."""
    if expr.isidentifier():
        return expr
    depth = 0
    for i, ch in enumerate(expr):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0:
            return expr if i == len(expr) - 1 and expr[0] == "(" else f"({expr})"
    return f"({expr})"


def _affine(d: Dim, scale_num: int, scale_den: int, offset: int) -> Dim:
    """floor(d * num / den) + offset for a known dim, a readable expression otherwise."""
    if is_known(d):
        return (d * scale_num) // scale_den + offset
    expr = str(d)
    folded = _OFFSET.match(expr) if scale_num == scale_den == 1 else None
    if folded:  # `L-2-2` is `L-4`: a chain of layers adds no length
        expr, offset = folded.group(1), offset + int(folded.group(2))
    if scale_num != 1:
        expr = f"{_atom(expr)}*{scale_num}"
    if scale_den != 1:
        expr = f"{_atom(expr)}//{scale_den}"
    return f"{expr}{offset:+d}" if offset else expr


def offset_dim(d: Dim, offset: int) -> Dim:
    """d + offset: an int for a known dim, else an expression with its trailing constant folded in (`H-1` + 2
    is `H+1`)."""
    return _affine(d, 1, 1, offset)


def conv_out(length: Dim, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
             ceil_mode: bool = False) -> Dim:
    """Output length of a convolution or pooling window (torch.nn.Conv*d / *Pool*d docs).

    out = floor((L + 2p - d(k-1) - 1) / s) + 1, or with ceil_mode ceil(…) + 1, less one when
    that last window would start past the input and its left padding (torch's
    pooling_output_shape). A result below 1 means the window does not fit. A symbolic
    length gets the expression; where the ceil_mode correction can apply, it is the smaller of
    that and the most windows whose start lies in the input or its left padding,
    floor((L + p - 1)/s) + 1: `min((L+1)//2+1, L//2+1)`.
    """
    span = dilation * (kernel - 1) + 1
    round_up = stride - 1 if ceil_mode else 0  # ceil(x/s) = floor((x + s - 1)/s)
    # floor((L + offset)/s) = floor((L + rest)/s) + steps, with 0 <= rest < s: `(H+1)//2`, `H//2-1`
    steps, rest = divmod(2 * padding - span + round_up, stride)
    if not is_known(length):
        out = _affine(_affine(length, 1, 1, rest), 1, stride, steps + 1)
        if ceil_mode and padding + stride - 1 >= span:  # the correction can apply: the last start, as a bound
            last = _affine(_affine(length, 1, 1, padding - 1), 1, stride, 1)
            return f"min({out}, {last})"
        return out
    out = (length + rest) // stride + steps + 1
    if ceil_mode and (out - 1) * stride >= length + padding:
        out -= 1
    return out


def conv_transpose_out(length: Dim, kernel: int, stride: int = 1, padding: int = 0,
                       output_padding: int = 0, dilation: int = 1) -> Dim:
    """Output length of a transposed convolution (torch.nn.ConvTranspose*d docs).

    out = (L - 1)s - 2p + d(k-1) + output_padding + 1
    """
    offset = -stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    return _affine(length, stride, 1, offset)


def scale_dim(length: Dim, factor: float) -> Dim:
    """floor(L * factor), as torch's interpolate computes output sizes from a scale factor."""
    if is_known(length):
        return int(math.floor(length * factor))
    if float(factor).is_integer():
        return _affine(length, int(factor), 1, 0)
    return f"floor({_atom(str(length))}*{factor!r})"


def adaptive_windows(length: int, out: int) -> list[tuple[int, int]]:
    """[start, end) of each window of torch's adaptive pooling (aten AdaptiveAveragePooling):
    start = floor(i·L/out), end = ceil((i+1)·L/out)."""
    return [(i * length // out, -(-(i + 1) * length // out)) for i in range(out)]


def adaptive_width_sum(length: int, out: int) -> int:
    """sum of the widths of adaptive_windows(length, out), in closed form: L + out - gcd(L, out).

    Each width is ceil((i+1)L/out) - floor(iL/out); the floors telescope to L, and each ceil
    exceeds its floor by 1 except at the gcd(L, out) multiples of out among (i+1)L.
    """
    return length + out - math.gcd(length, out)


def adaptive_max_width(length: int, out: int) -> int:
    """max width of adaptive_windows(length, out), in closed form.

    With g = gcd(L, out), L = gL', out = g·o': window i has width ceil((r + L')/o') for
    r = iL' mod o', and r takes every value in [0, o') (L' and o' are coprime), so the widest
    has r = o' - 1: ceil((L' + o' - 1)/o').
    """
    g = math.gcd(length, out)
    reduced_length, reduced_out = length // g, out // g
    return -(-(reduced_length + reduced_out - 1) // reduced_out)


def as_tuple(value: object | Sequence, n: int) -> tuple | None:
    """Broadcast a scalar to n axes; a list must have exactly n entries (else None)."""
    if not isinstance(value, (list, tuple)):
        return (value,) * n
    value = tuple(value)
    return value if len(value) == n else None


def format_shape(shape: Shape | None, sep: str = "×") -> str:
    if shape is None:
        return "?"
    return sep.join(str(d) for d in shape) if shape else "scalar"
