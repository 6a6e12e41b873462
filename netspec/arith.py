"""Shared shape arithmetic: pure functions used by every conv, pool and upsample entry.

Shapes are per sample (batch excluded): a tuple of dims, each an `int` or a
symbolic name (`"T"`). Symbolic dims pass through the ops that keep them; an op
that must compute with one yields a new symbolic expression string such as
`"(L-3)//2+1"`, which stays symbolic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Union

Dim = Union[int, str]
Shape = tuple  # tuple[Dim, ...]


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
    if scale_num != 1:
        expr = f"{_atom(expr)}*{scale_num}"
    if scale_den != 1:
        expr = f"{_atom(expr)}//{scale_den}"
    return f"{expr}{offset:+d}" if offset else expr


def conv_out(length: Dim, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
             ceil_mode: bool = False) -> Dim:
    """Output length of a convolution or pooling window (torch.nn.Conv*d / *Pool*d docs).

    out = floor((L + 2p - d(k-1) - 1) / s) + 1, or with ceil_mode ceil(…) + 1, less one when
    that last window would start past the input and its left padding (torch's
    pooling_output_shape). A result below 1 means the window does not fit. A symbolic
    length gets the expression, without the ceil_mode correction.
    """
    span = dilation * (kernel - 1) + 1
    round_up = stride - 1 if ceil_mode else 0  # ceil(x/s) = floor((x + s - 1)/s)
    # floor((L + offset)/s) = floor((L + rest)/s) + steps, with 0 <= rest < s: `(H+1)//2`, `H//2-1`
    steps, rest = divmod(2 * padding - span + round_up, stride)
    if not is_known(length):
        return _affine(_affine(length, 1, 1, rest), 1, stride, steps + 1)
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


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """(left, right) zero padding that keeps the length at stride 1; torch pads the extra on the right."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def scale_dim(length: Dim, factor: float) -> Dim:
    """floor(L * factor), as torch's interpolate computes output sizes from a scale factor."""
    if is_known(length):
        return int(math.floor(length * factor))
    if float(factor).is_integer():
        return _affine(length, int(factor), 1, 0)
    return f"floor({length}*{factor!r})"


def adaptive_windows(length: int, out: int) -> list[tuple[int, int]]:
    """[start, end) of each window of torch's adaptive pooling (aten AdaptiveAveragePooling):
    start = floor(i·L/out), end = ceil((i+1)·L/out)."""
    return [(i * length // out, -(-(i + 1) * length // out)) for i in range(out)]


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
