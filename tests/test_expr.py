import pytest
from hypothesis import given
from hypothesis import strategies as st

from netspec.expr import ExprError, evaluate, resolve

ENV = {"width": 64, "stride": 2, "depths": [2, 2, 2, 2], "in_channels": 64}


@pytest.mark.parametrize("text, value", [
    ("width * 4", 256),
    ("width // 3", 21),
    ("2 ** 5", 32),
    ("stride != 1 or in_channels != width", True),
    ("stride == 1 and in_channels == width", False),
    ("2 if stride > 1 else 1", 2),
    ("depths[2] + depths[-1]", 4),
    ("max(width, 100) - min(1, 2)", 99),
    ("not (width > 1)", False),
    ("[width, width * 2]", [64, 128]),
    ("len(depths)", 4),
    ("1 < stride <= 2", True),
])
def test_evaluate(text, value):
    assert evaluate(text, ENV) == value


def test_resolve_walks_lists_and_mappings():
    assert resolve({"out": "$width", "k": ["${stride + 1}", 3]}, ENV) == {"out": 64, "k": [3, 3]}


@pytest.mark.parametrize("text, message", [
    ("__import__('os')", "only min, max"),
    ("width.__class__", "is not allowed"),
    ("widht * 2", "unknown name `widht`"),
    ("[x for x in depths]", "is not allowed"),
    ("lambda: 1", "is not allowed"),
    ("width / 0", "division by zero"),
    ("10 ** 10 ** 10", "too large"),
    ("'a' * 100", "needs numbers"),
    ("depths[9]", "out of range"),
    ("width +", "cannot parse"),
    ("int(float('inf'))", "not a finite number"),
    ("ceil(float('1e999'))", "not a finite number"),
    ("round(4, -100000000)", "at most 64 digits"),
    ("2.0 ** 60 * 2.0 ** 60", "too large"),
    ("sqrt(-1)", "math domain error"),
])
def test_rejects_unsafe_or_wrong_expressions(text, message):
    with pytest.raises(ExprError, match=message):
        evaluate(text, ENV)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ExprError) as info:
        evaluate("widht", ENV)
    assert info.value.hint == "did you mean `width`?"


@given(st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_arithmetic_agrees_with_python(a, b):
    env = {"a": a, "b": b}
    assert evaluate("a * b + a - b", env) == a * b + a - b
    if b:
        assert evaluate("a // b", env) == a // b and evaluate("a % b", env) == a % b


@given(st.text(max_size=30))
def test_any_text_either_evaluates_or_raises_expr_error(text):
    try:
        evaluate(text, ENV)
    except ExprError:
        pass
