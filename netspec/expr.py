"""A small, safe evaluator for `$name` and `${expression}` values in specs.

Expressions are parsed with Python's `ast` module and interpreted here over a
fixed set of node types — arithmetic, comparisons, `and`/`or`/`not`,
`a if c else b`, list literals, indexing, and the functions in `FUNCTIONS`.
Nothing is ever passed to `eval`, and no attribute access or import exists,
so a spec cannot reach Python objects.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from .errors import did_you_mean

FUNCTIONS = {
    "min": min, "max": max, "abs": abs, "int": int, "float": float, "round": round,
    "len": len, "sum": sum, "ceil": math.ceil, "floor": math.floor, "sqrt": math.sqrt,
}
_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_NUMBER = (int, float, bool)
_LIMIT = 2**63  # bigger numbers than any tensor dim are a mistake, not a size


class ExprError(Exception):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def has_expression(value: Any) -> bool:
    """Whether `value` holds a `$...` anywhere (lists and mappings included)."""
    if isinstance(value, str):
        return value.startswith("$")
    if isinstance(value, list):
        return any(has_expression(v) for v in value)
    if isinstance(value, dict):
        return any(has_expression(v) for v in value.values())
    return False


def resolve(value: Any, env: Mapping[str, Any]) -> Any:
    """Replace `$name` / `${expr}` anywhere inside `value` (lists and mappings included)."""
    if isinstance(value, str) and value.startswith("$"):
        if value.startswith("${"):
            if not value.endswith("}"):
                raise ExprError(f"unterminated expression `{value}`", "close it with `}`")
            return evaluate(value[2:-1], env)
        name = value[1:]
        return env[name] if name in env else evaluate(name, env)  # `$width`: a plain look-up
    if isinstance(value, list):
        return [resolve(v, env) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, env) for k, v in value.items()}
    return value


def evaluate(text: str, env: Mapping[str, Any]) -> Any:
    """Evaluate one expression over the names in `env`."""
    body = _parse(text.strip())
    try:
        return _Eval(env, text).visit(body)
    except RecursionError:
        raise ExprError(f"expression `{text[:40]}...` is nested too deeply") from None


def _checked(value: Any, node: ast.AST) -> Any:
    """Numbers stay finite and no bigger than any tensor could be."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError(f"`{ast.unparse(node)}` is not a finite number")
    if isinstance(value, (int, float)) and abs(value) > _LIMIT:
        raise ExprError(f"`{ast.unparse(node)}` is too large")
    return value


@lru_cache(maxsize=4096)
def _parse(text: str) -> ast.AST:
    """Parse once per distinct expression: a block used 50 times repeats its expressions."""
    try:
        return ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ExprError(f"cannot parse expression `{text}`") from None


class _Eval:
    def __init__(self, env: Mapping[str, Any], text: str):
        self.env = env
        self.text = text

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise ExprError(f"`{ast.unparse(node)}` is not allowed in an expression",
                            "use arithmetic, comparisons, and/or/not, `x if c else y`, indexing "
                            f"and {', '.join(FUNCTIONS)}")
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> Any:
        if not isinstance(node.value, (*_NUMBER, str, type(None))):
            raise ExprError(f"constant `{node.value!r}` is not allowed")
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        if node.id not in self.env:
            raise ExprError(f"unknown name `{node.id}` in `{self.text}`",
                            did_you_mean(node.id, self.env) or
                            f"names here: {', '.join(sorted(self.env)) or 'none'}")
        return self.env[node.id]

    def visit_List(self, node: ast.List) -> list:
        return [self.visit(e) for e in node.elts]

    visit_Tuple = visit_List

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        op = type(node.op)
        if op not in _BINARY:
            raise ExprError(f"operator in `{ast.unparse(node)}` is not allowed")
        if op is ast.Add and isinstance(left, list) and isinstance(right, list):
            return left + right
        if not (isinstance(left, _NUMBER) and isinstance(right, _NUMBER)):
            raise ExprError(f"`{ast.unparse(node)}` needs numbers, got {left!r} and {right!r}")
        if op is ast.Pow and (abs(right) > 64 or abs(left) > _LIMIT):
            raise ExprError(f"`{ast.unparse(node)}` is too large")
        try:
            result = _BINARY[op](left, right)
        except ZeroDivisionError:
            raise ExprError(f"division by zero in `{ast.unparse(node)}`") from None
        except ArithmeticError:
            raise ExprError(f"`{ast.unparse(node)}` is too large") from None
        return _checked(result, node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.visit(node.operand)
        if type(node.op) not in _UNARY:
            raise ExprError(f"operator in `{ast.unparse(node)}` is not allowed")
        if not isinstance(node.op, ast.Not) and not isinstance(value, _NUMBER):
            raise ExprError(f"`{ast.unparse(node)}` needs a number")
        return _UNARY[type(node.op)](value)

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        if isinstance(node.op, ast.And):
            value = True
            for e in node.values:
                value = self.visit(e)
                if not value:
                    return value
            return value
        value = False
        for e in node.values:
            value = self.visit(e)
            if value:
                return value
        return value

    def visit_Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            right = self.visit(right_node)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:
                raise ExprError(f"cannot compare {left!r} and {right!r} in `{ast.unparse(node)}`") from None
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        value = self.visit(node.value)
        index = self.visit(node.slice)
        if not isinstance(value, (list, str)) or not isinstance(index, int) or isinstance(index, bool):
            raise ExprError(f"`{ast.unparse(node)}`: only lists are indexed, by an integer")
        if not -len(value) <= index < len(value):
            raise ExprError(f"index {index} is out of range in `{ast.unparse(node)}` (length {len(value)})")
        return value[index]

    def visit_Call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
            raise ExprError(f"`{ast.unparse(node)}`: only {', '.join(FUNCTIONS)} may be called",
                            did_you_mean(getattr(node.func, "id", ""), FUNCTIONS))
        args = [self.visit(a) for a in node.args]
        if node.func.id == "round" and len(args) > 1 and isinstance(args[1], int) and abs(args[1]) > 64:
            raise ExprError(f"`{ast.unparse(node)}`: round to at most 64 digits")
        try:
            return _checked(FUNCTIONS[node.func.id](*args), node)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ExprError(f"`{ast.unparse(node)}`: {exc}") from None
