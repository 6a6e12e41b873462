"""A small, safe evaluator for `$name` and `${expression}` values in specs.

Expressions are parsed with Python's `ast` module and interpreted here over a
fixed set of node types — arithmetic, comparisons, `and`/`or`/`not`,
`a if c else b`, list literals, indexing, and the functions in `FUNCTIONS`.
Nothing is ever passed to `eval`, and no attribute access or import exists,
so a spec cannot reach Python objects. Every other construct is an error that
names it. The work is bounded (docs/security.md): an expression has at most
MAX_CHARS characters and MAX_DEPTH levels of nesting, its numbers stay within
2**63 and its lists within MAX_LIST items.
"""

from __future__ import annotations

import ast
import math
import operator
import warnings
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from .errors import brief, did_you_mean, listing


def _sum(values, start=0):
    """sum of numbers (Python's would also join lists, in quadratic time)."""
    values = list(values)
    if not all(isinstance(v, (int, float)) for v in [*values, start]):
        raise TypeError("sum adds numbers")
    return sum(values, start)


FUNCTIONS = {
    "min": min, "max": max, "abs": abs, "int": int, "float": float, "round": round,
    "len": len, "sum": _sum, "ceil": math.ceil, "floor": math.floor, "sqrt": math.sqrt,
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
MAX_CHARS = 1_000  # characters in one expression
MAX_DEPTH = 100  # levels of nesting in one expression's syntax tree
MAX_LIST = 10_000  # items in a list an expression makes
MAX_STEPS = 2_000_000  # work in one expansion: see Budget
_OPERATORS = {  # how an error names an operator
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
    ast.MatMult: "@", ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
    ast.Invert: "~", ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
}
_CONSTRUCTS = {  # how an error names a construct the evaluator does not have
    "Attribute": "attribute access", "Lambda": "a lambda", "ListComp": "a list comprehension",
    "SetComp": "a set comprehension", "DictComp": "a dict comprehension", "GeneratorExp": "a generator",
    "JoinedStr": "an f-string", "FormattedValue": "an f-string", "NamedExpr": "`:=`", "Starred": "`*` unpacking",
    "Dict": "a mapping", "Set": "a set", "Slice": "a slice", "Await": "await", "Yield": "yield",
    "YieldFrom": "yield",
}


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


class OverBudget(Exception):
    """A Budget is spent: the work a spec asks for is more than MAX_STEPS."""


class Budget:
    """The steps of work a spec's expansion may still take: one budget for the whole expansion, spent by
    expressions (a step per syntax-tree node, and per list item a function, comparison or argument
    walks) and by the expander (netspec/graph.py), so that no spec runs long however often it repeats."""

    def __init__(self, steps: int = MAX_STEPS):
        self.steps = steps

    def spend(self, steps: int = 1) -> None:
        self.steps -= steps
        if self.steps < 0:
            raise OverBudget(f"expanding the spec takes more than {MAX_STEPS:,} steps (layers, their arguments, "
                             "expressions, and every copy of them)")

    def walk(self, value: Any) -> None:
        """Spend a step per item of `value`, nested lists and mappings counted through, and per character
        of a string (before anything walks it: a value too big for the budget is not walked at all)."""
        self.spend(size(value, self.steps + 1))


def size(value: Any, most: int = MAX_STEPS) -> int:
    """Items in `value`, nested lists and mappings counted through, characters of strings; counting stops
    past `most`. Recursive: values are nested at most loader.MAX_DEPTH deep."""
    if isinstance(value, str):
        return max(len(value), 1)
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list):
        return 1
    n = 1
    for item in value:
        n += size(item, most - n) if isinstance(item, (list, dict, str)) else 1
        if n > most:
            break
    return n


def resolve(value: Any, env: Mapping[str, Any], budget: Budget | None = None) -> Any:
    """Replace `$name` / `${expr}` anywhere inside `value` (lists and mappings included)."""
    budget = budget or Budget()
    if isinstance(value, str) and value.startswith("$"):
        if value.startswith("${"):
            if not value.endswith("}"):
                raise ExprError(f"unterminated expression `{brief(value)}`", "close it with `}`")
            return evaluate(value[2:-1], env, budget)
        name = value[1:]
        if name in env:  # `$width`: a plain look-up
            budget.walk(env[name])
            return env[name]
        return evaluate(name, env, budget)
    if isinstance(value, list):
        return [resolve(v, env, budget) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, env, budget) for k, v in value.items()}
    return value


def evaluate(text: str, env: Mapping[str, Any], budget: Budget | None = None) -> Any:
    """Evaluate one expression over the names in `env`."""
    if len(text) > MAX_CHARS:
        raise ExprError(f"an expression of {len(text):,} characters is too long (at most {MAX_CHARS:,})",
                        "compute it in steps: spec `args`, block arguments")
    body, nodes = _parse(text.strip())
    budget = budget or Budget()
    budget.spend(nodes)
    try:
        result = _Eval(env, text, budget).visit(body)
        if isinstance(result, list):  # handed on to a layer's arguments
            budget.walk(result)
        return result
    except RecursionError:
        raise ExprError(f"expression `{brief(text)}` is nested too deeply") from None


def _checked(value: Any, node: ast.AST) -> Any:
    """Numbers stay finite and no bigger than any tensor could be."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError(f"`{_text(node)}` is not a finite number")
    if isinstance(value, complex):  # `(-8) ** 0.5`: Python's power of a negative number
        raise ExprError(f"`{_text(node)}` is not a real number", "a negative number has no real fractional power")
    if isinstance(value, (int, float)) and abs(value) > _LIMIT:
        raise ExprError(f"`{_text(node)}` is too large")
    return value


def _text(node: ast.AST) -> str:
    return brief(ast.unparse(node))


@lru_cache(maxsize=4096)
def _parse(text: str) -> tuple[ast.AST, int]:
    """The expression's syntax tree and its number of nodes (the steps evaluating it may take), parsed once
    per distinct expression: a block used 50 times repeats its expressions."""
    try:
        with warnings.catch_warnings():  # Python's own warnings (`1if x`: "invalid decimal literal") are not
            warnings.simplefilter("ignore")  # the spec's errors, and would print unlocated on stderr
            body = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ExprError(f"cannot parse expression `{brief(text)}`") from None
    depth, nodes = _shape(body)
    if depth > MAX_DEPTH:
        raise ExprError(f"expression `{brief(text)}` is nested more than {MAX_DEPTH} levels deep")
    return body, nodes


def _shape(tree: ast.AST) -> tuple[int, int]:
    """Levels and nodes of the syntax tree, counted without recursion."""
    deepest, nodes, stack = 0, 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest, nodes = max(deepest, depth), nodes + 1
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest, nodes


_ALLOWED = (f"use numbers, strings, lists, + - * / // % **, comparisons, and/or/not, `x if c else y`, "
            f"indexing `xs[i]`, and {', '.join(FUNCTIONS)}")


def _operator(op: type, node: ast.AST, hint: str = _ALLOWED) -> ExprError:
    return ExprError(f"the operator `{_OPERATORS.get(op, op.__name__)}` (in `{_text(node)}`) is not allowed in an "
                     "expression", hint)


def _kind(value: Any) -> str:
    """What a comparison calls a value's type: numbers of any kind compare with each other."""
    return "a number" if isinstance(value, _NUMBER) else "a string" if isinstance(value, str) else \
        "a list" if isinstance(value, list) else type(value).__name__


class _Eval:
    def __init__(self, env: Mapping[str, Any], text: str, budget: Budget):
        self.env = env
        self.text = text
        self.budget = budget

    def visit(self, node: ast.AST) -> Any:
        kind = type(node).__name__
        method = getattr(self, f"visit_{kind}", None)
        if method is None:
            what = _CONSTRUCTS.get(kind, kind)
            raise ExprError(f"{what} (`{_text(node)}`) is not allowed in an expression", _ALLOWED)
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> Any:
        value = node.value
        if type(value) is int and -_LIMIT <= value <= _LIMIT:
            return value
        if not isinstance(value, (*_NUMBER, str, type(None))):
            raise ExprError(f"the constant `{_text(node)}` is not allowed", _ALLOWED)
        return _checked(value, node)

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        if node.id not in self.env:
            raise ExprError(f"unknown name `{brief(node.id)}` in `{brief(self.text)}`",
                            did_you_mean(node.id, self.env) or f"names here: {listing(self.env) or 'none'}")
        return self.env[node.id]

    def visit_List(self, node: ast.List) -> list:
        return [self.visit(e) for e in node.elts]

    visit_Tuple = visit_List

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        op = type(node.op)
        if op not in _BINARY:
            raise _operator(op, node)
        left, right = self.visit(node.left), self.visit(node.right)
        if op is ast.Add and isinstance(left, list) and isinstance(right, list):
            if len(left) + len(right) > MAX_LIST:
                raise ExprError(f"`{_text(node)}` makes a list of {len(left) + len(right):,} items (at most "
                                f"{MAX_LIST:,})")
            self.budget.spend(len(left) + len(right))
            return left + right
        if not (isinstance(left, _NUMBER) and isinstance(right, _NUMBER)):
            raise ExprError(f"`{_text(node)}` needs numbers, got {brief(repr(left))} and {brief(repr(right))}")
        if op is ast.Pow and (abs(right) > 64 or abs(left) > _LIMIT):
            raise ExprError(f"`{_text(node)}` is too large")
        try:
            result = _BINARY[op](left, right)
        except ZeroDivisionError:
            raise ExprError(f"division by zero in `{_text(node)}`") from None
        except ArithmeticError:
            raise ExprError(f"`{_text(node)}` is too large") from None
        return _checked(result, node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        if type(node.op) not in _UNARY:
            raise _operator(type(node.op), node)
        value = self.visit(node.operand)
        if not isinstance(node.op, ast.Not) and not isinstance(value, _NUMBER):
            raise ExprError(f"`{_text(node)}` needs a number")
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
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise _operator(type(op), node, "compare values with `==` and `!=`")
        left = self.visit(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            right = self.visit(right_node)
            self.budget.walk(left)
            self.budget.walk(right)
            if _kind(left) != _kind(right) and None not in (left, right) and type(op) in (ast.Eq, ast.NotEq):
                raise ExprError(f"`{_text(node)}` compares {_kind(left)} {brief(repr(left))} with {_kind(right)} "
                                f"{brief(repr(right))}, which are never equal",
                                "compare values of one type (convert with `int(...)`, `float(...)`)")
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:
                raise ExprError(f"cannot compare {brief(repr(left))} and {brief(repr(right))} in "
                                f"`{_text(node)}`") from None
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        value = self.visit(node.value)
        index = self.visit(node.slice)
        if not isinstance(value, (list, str)) or not isinstance(index, int) or isinstance(index, bool):
            raise ExprError(f"`{_text(node)}`: only lists are indexed, by an integer")
        if not -len(value) <= index < len(value):
            raise ExprError(f"index {index} is out of range in `{_text(node)}` (length {len(value)})")
        return value[index]

    def visit_Call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
            raise ExprError(f"`{_text(node)}`: only {', '.join(FUNCTIONS)} may be called",
                            did_you_mean(getattr(node.func, "id", ""), FUNCTIONS))
        args = [self.visit(a) for a in node.args]
        for arg in args:
            self.budget.walk(arg)
        if node.func.id == "round" and len(args) > 1 and isinstance(args[1], int) and abs(args[1]) > 64:
            raise ExprError(f"`{_text(node)}`: round to at most 64 digits")
        try:
            return _checked(FUNCTIONS[node.func.id](*args), node)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ExprError(f"`{_text(node)}`: {brief(str(exc), 200)}") from None
