"""Write a spec as a standalone Python file that imports only torch.

The file holds one class named after the spec. Its `__init__` creates the module
tree `build` creates (the same containers in the same order, so `state_dict` keys
are identical and one seed gives identical weights), then applies the same init
calls and freezing. Its `forward` is written from the fx graph `build` runs: one
line per layer, annotated with the layer's per-sample output shape and parameter
count; a layer's intermediate values are inlined into its line unless used twice.

A value flows through one variable (`x`; `h` or `x_1` when an input takes that
name) while it feeds only the next layer; a value needed later, or returned among
several outputs, is named after its layer (`layer1.0.7` -> `layer1_0_7`). No
variable takes a name of `spec.TAKEN_NAMES` (Python's keywords, `self`, `torch`,
`nn`, the builtins the code calls) or an input's name.
"""

from __future__ import annotations

import inspect
import keyword
import math
import operator
import re
import textwrap
from pathlib import Path

import torch
from torch import fx
from torch.fx.node import _get_qualified_name

from .analysis import Analysis, analyze
from .arith import format_shape
from .compiler import CONTAINERS, Compiled, class_name, compile_graph, valid_graph
from .graph import Graph
from .init import to_init
from .layers import Call
from .spec import TAKEN_NAMES, Spec

LINE = 110  # the longest line; a layer's comment moves above its code rather than pass it
INDENT = "    "

# binding strength of a rendered expression, loosest first, as in Python's grammar
ADD, MUL, UNARY, POW, POSTFIX, ATOM = range(6)
BINARY = {operator.add: ("+", ADD), operator.sub: ("-", ADD), operator.mul: ("*", MUL),
          operator.truediv: ("/", MUL), operator.floordiv: ("//", MUL), operator.mod: ("%", MUL),
          operator.matmul: ("@", MUL), operator.pow: ("**", POW)}
UNARIES = {operator.neg: "-", operator.pos: "+", operator.invert: "~"}


def generate(spec: Spec | Graph, init: str | dict | None = None) -> str:
    """The source of the standalone module for `spec` (`init` as in `netspec.build`)."""
    graph = valid_graph(spec)
    compiled = compile_graph(graph, "meta", top=to_init(init) if init is not None else None)
    return _Writer(graph, compiled, analyze(graph)).source()


class _Writer:
    def __init__(self, graph: Graph, compiled: Compiled, result: Analysis):
        self.graph = graph
        self.compiled = compiled
        self.result = result
        self.stats = result.by_name
        self.names: dict[fx.Node, str] = {}  # fx values held in variables of `forward`
        self.used = {*TAKEN_NAMES, *graph.inputs}  # names no variable of `forward` may take

    def source(self) -> str:
        lines = [
            *self.docstring(), "", "import torch", "from torch import nn", "", "",
            f"class {class_name(self.graph.name)}(nn.Module):",
            *_wrap(f'"""{_quote(self.graph.spec.model.description or self.graph.name)}"""', 1), "",
            f"{INDENT}def __init__(self) -> None:",
            f"{INDENT * 2}super().__init__()",
            *(f"{INDENT * 2}{line}" for line in self.init_lines()), "",
            *self.forward_lines(),
        ]
        return "\n".join(lines) + "\n"

    def docstring(self) -> list[str]:
        r = self.result
        inputs = ", ".join(f"{k} {_batched(v)}" for k, v in r.inputs.items())
        outputs = ", ".join(f"{k} {_batched(v)}" for k, v in r.outputs.items())
        single = list(r.outputs) == ["output"]
        returns = f"Returns {_batched(r.outputs['output'])}." if single else f"Returns a dict: {outputs}."
        return [
            *_wrap(f'"""{_quote(r.name)}: written by `netspec compile` from '
                   f"{_quote(Path(self.graph.spec.file).name)}; regenerate it rather than edit it.", 0),
            "",
            *_wrap(f"Inputs (batch first): {inputs}. {returns}", 0),
            f"{r.total_params:,} parameters ({r.trainable_params:,} trainable).",
            '"""',
        ]

    # ---- __init__ ------------------------------------------------------------------------------

    def init_lines(self) -> list[str]:
        c = self.compiled
        lines, created = [], set()
        for name, call in c.holders.items():
            parts = name.split(".")
            for i in range(1, len(parts)):
                path = ".".join(parts[:i])
                if path not in created:
                    created.add(path)
                    lines.append(self.assign(path, f"nn.{CONTAINERS[c.kinds[path]].__name__}()"))
            lines.append(self.assign(name, construct(call)))
        for ic in c.inits:
            kwargs = "".join(f", {k}={v!r}" for k, v in ic.kwargs.items())
            lines.append(f"nn.init.{ic.fn}({self.access(ic.param)}{kwargs})")
        frozen = {name for name in c.holders if self.graph.nodes[name].frozen}
        lines += [f"{self.access(path)}.requires_grad_(False)" for path in frozen_roots(list(c.holders), frozen)]
        return [part for line in lines for part in _fit(line, 2)]

    def assign(self, path: str, value: str) -> str:
        """The statement putting `value` at `path` in its container."""
        parent, _, part = path.rpartition(".")
        base, kind = self.access(parent), self.compiled.kinds[parent]
        if kind == "list":
            return f"{base}.append({value})"
        if kind == "dict":
            return f'{base}["{part}"] = {value}'
        return f"{base}.{part} = {value}" if _plain(part) else f'setattr({base}, "{part}", {value})'

    def access(self, path: str) -> str:
        """`layer1.0.conv1.weight` -> `self.layer1[0].conv1.weight` (torch's own names are plain)."""
        text, prefix = "self", ""
        for part in path.split(".") if path else []:
            kind = self.compiled.kinds.get(prefix, "module")
            if kind == "list":
                text += f"[{part}]"
            elif kind == "dict":
                text += f'["{part}"]'
            else:
                text = f"{text}.{part}" if _plain(part) else f'getattr({text}, "{part}")'
            prefix = f"{prefix}.{part}" if prefix else part
        return text

    # ---- forward ------------------------------------------------------------------------------

    def forward_lines(self) -> list[str]:
        graph, values = self.graph, self.compiled.values
        chain = self.fresh(next((c for c in ("x", "h") if c not in self.used), "x"))  # never an input's name
        for name in graph.inputs:
            self.names[values[name]] = name
        by_layer: dict[str, list[fx.Node]] = {}
        for node in self.compiled.module.graph.nodes:
            if "layer" in node.meta:
                by_layer.setdefault(node.meta["layer"], []).append(node)
        order = list(graph.nodes)
        body = []
        for i, layer in enumerate(order):
            result, nodes = values[layer], by_layer.get(layer, [])
            # a line that would pass LINE gets its long inner expressions as variables of their own
            crowded = result in nodes and len(INDENT * 2 + "x = " + self.render(result)[0]) > LINE
            for node in nodes:
                hoist = crowded and len(self.render(node)[0]) > LINE // 2
                if node is not result and (not self.inlined(node) or hoist):
                    body.append(self.statement(node, self.fresh(node.name) if node.users else "_"))
            if result in nodes:
                nxt = order[i + 1] if i + 1 < len(order) else None
                body += self.annotated(self.statement(result, self.variable(layer, result, nxt, chain)), layer)
        single = list(graph.outputs) == ["output"]
        outputs = {name: self.text(values[ref]) for name, ref in graph.outputs.items()}
        returned = outputs["output"] if single else \
            "{" + ", ".join(f'"{name}": {text}' for name, text in outputs.items()) + "}"
        params = ", ".join(f"{name}: torch.Tensor" for name in graph.inputs)
        kind = "torch.Tensor" if single else "dict[str, torch.Tensor]"
        return [f"{INDENT}def forward(self, {params}) -> {kind}:",
                *(f"{INDENT * 2}{line}" for line in body), f"{INDENT * 2}return {returned}"]

    def inlined(self, node: fx.Node) -> bool:
        """A layer's intermediate value used once, by the same layer, is written inside its user."""
        return len(node.users) == 1 and next(iter(node.users)).meta.get("layer") == node.meta["layer"]

    def variable(self, layer: str, result: fx.Node, nxt: str | None, chain: str) -> str:
        owners = {user.meta.get("layer") for user in result.users}  # None: the output
        if not owners:
            return "_"
        feeds_next = nxt is not None and owners == {nxt}
        is_the_output = nxt is None and list(self.graph.outputs) == ["output"]
        return chain if feeds_next or is_the_output else self.fresh(layer)

    def fresh(self, base: str) -> str:
        """A new variable name from a layer or fx name: `layer1.0.7` -> `layer1_0_7`."""
        base = re.sub(r"\W", "_", base)
        base = f"x_{base}" if base[0].isdigit() else f"{base}_" if keyword.iskeyword(base) else base
        name, k = base, 0
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def statement(self, node: fx.Node, var: str) -> str:
        line = f"{var} = {self.render(node)[0]}"
        if var != "_":
            self.names[node] = var
        return line

    def annotated(self, code: str, layer: str) -> list[str]:
        stats = self.stats[layer]
        comment = f"# {format_shape(stats.output_shape)}"
        if stats.params:
            comment += f" · {stats.params:,} params"
        if len(INDENT * 2 + code + "  " + comment) > LINE:
            return [comment, code]
        return [f"{code}  {comment}"]

    # ---- expressions: (text, binding strength) -------------------------------------------------

    def render(self, node: fx.Node) -> tuple[str, int]:
        op, target, args = node.op, node.target, node.args
        if op == "call_module":
            return f"{self.access(target)}({self.call_args(args, node.kwargs)})", POSTFIX
        if op == "get_attr":
            return self.access(target), POSTFIX
        if op == "call_method":
            return f"{self.wrap(args[0], POSTFIX)}.{target}({self.call_args(args[1:], node.kwargs)})", POSTFIX
        if target is getattr:
            return f"{self.wrap(args[0], POSTFIX)}.{args[1]}", POSTFIX
        if target is operator.getitem:
            return f"{self.wrap(args[0], POSTFIX)}[{self.index(args[1])}]", POSTFIX
        if target in BINARY:
            symbol, strength = BINARY[target]
            left, right = (POSTFIX, UNARY) if strength == POW else (strength, strength + 1)
            return f"{self.wrap(args[0], left)} {symbol} {self.wrap(args[1], right)}", strength
        if target in UNARIES:
            return f"{UNARIES[target]}{self.wrap(args[0], UNARY)}", UNARY
        name = _get_qualified_name(target)
        if not name.startswith("torch."):
            raise TypeError(f"codegen cannot write a call of `{name}` (layer `{node.meta['layer']}`)")
        defaults = _function_defaults(target)  # fx records every argument of a Python function, defaults too
        kwargs = {k: v for k, v in node.kwargs.items() if k not in defaults or not _same(defaults[k], v)}
        return f"{name}({self.call_args(args, kwargs)})", POSTFIX

    def expr(self, arg) -> tuple[str, int]:
        if isinstance(arg, fx.Node):
            return (self.names[arg], ATOM) if arg in self.names else self.render(arg)
        if isinstance(arg, list):
            return f"[{self.call_args(arg, {})}]", ATOM
        if isinstance(arg, tuple):
            return f"({self.call_args(arg, {})}{',' if len(arg) == 1 else ''})", ATOM
        if isinstance(arg, slice):
            return f"slice({self.call_args((arg.start, arg.stop, arg.step), {})})", POSTFIX
        if isinstance(arg, torch.dtype):
            return str(arg), POSTFIX
        if isinstance(arg, torch.device):
            return f"torch.device({str(arg)!r})", POSTFIX
        if arg is Ellipsis:
            return "...", ATOM
        if isinstance(arg, float) and not math.isfinite(arg):
            return f"float({str(arg)!r})", POSTFIX
        if arg is None or isinstance(arg, (bool, int, float, str)):
            negative = isinstance(arg, (int, float)) and arg < 0
            return repr(arg), UNARY if negative else ATOM
        raise TypeError(f"codegen cannot write the constant {arg!r}")

    def text(self, arg) -> str:
        return self.expr(arg)[0]

    def wrap(self, arg, strength: int) -> str:
        text, own = self.expr(arg)
        return text if own >= strength else f"({text})"

    def call_args(self, args, kwargs: dict) -> str:
        return ", ".join([self.text(a) for a in args] + [f"{k}={self.text(v)}" for k, v in kwargs.items()])

    def index(self, idx) -> str:
        """A subscript: `x[:, -1, :64]`."""
        if isinstance(idx, tuple):
            return ", ".join(map(self.index_item, idx)) if idx else "()"
        return self.index_item(idx)

    def index_item(self, item) -> str:
        if not isinstance(item, slice):
            return self.text(item)
        bounds = [self.text(b) if b is not None else "" for b in (item.start, item.stop)]
        return ":".join(bounds + ([self.text(item.step)] if item.step is not None else []))


def construct(call: Call) -> str:
    """The source of a catalog Call, arguments equal to torch's defaults left out: `nn.Conv2d(3, 64, ...)`."""
    if call.is_parameter:
        if call.fill:
            return f"nn.Parameter(torch.full({call.shape!r}, {call.fill!r}))"
        return f"nn.Parameter(torch.zeros({', '.join(map(str, call.shape))}))"
    defaults = _defaults(getattr(torch.nn, call.cls))
    kwargs = [f"{k}={v!r}" for k, v in call.kwargs.items() if k not in defaults or defaults[k] != v]
    return f"nn.{call.cls}({', '.join([*map(repr, call.args), *kwargs])})"


def _function_defaults(function) -> dict:
    """Default arguments of a torch function written in Python (`F.interpolate`); none for a builtin."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in parameters if p.default is not p.empty}


def _same(default, value) -> bool:
    return type(default) is type(value) and default == value


def _defaults(cls: type) -> dict:
    """Default constructor arguments of a torch.nn class, its bases' included (nn.LSTM takes **kwargs)."""
    out = {}
    for klass in reversed(cls.__mro__):
        if "__init__" in vars(klass):
            out.update(_function_defaults(vars(klass)["__init__"]))
    return out


def frozen_roots(leaves: list[str], frozen: set[str]) -> list[str]:
    """The fewest module paths covering exactly the frozen leaves: a container when all its leaves are."""
    thawed = {prefix for leaf in leaves if leaf not in frozen for prefix in _prefixes(leaf)}
    roots: list[str] = []
    for leaf in leaves:
        if leaf in frozen:
            top = next(p for p in _prefixes(leaf) if p not in thawed)
            if top not in roots:
                roots.append(top)
    return roots


def _prefixes(name: str) -> list[str]:
    """`a.b.c` -> ["", "a", "a.b", "a.b.c"]."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) + 1)]


def _fit(line: str, depth: int) -> list[str]:
    """A statement that would pass LINE at `depth` indents, broken after its torch call's `(`:
    `setattr(self, "2", nn.RNN(` then the arguments, one indent deeper."""
    if len(INDENT * depth + line) <= LINE or "nn." not in line:
        return [line]
    cut = line.index("(", line.index("nn.")) + 1
    return [line[:cut], INDENT + line[cut:]]


def _plain(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def _quote(text: str) -> str:
    """Text safe inside a docstring: backslashes and quotes escaped, and characters that are not printable
    (a NUL, a line separator, a lone surrogate from a file name) written as escapes."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


def _batched(shape) -> str:
    return f"[N, {', '.join(map(str, shape))}]" if shape else "[N]"


def _wrap(text: str, depth: int) -> list[str]:
    return textwrap.wrap(text, LINE, initial_indent=INDENT * depth, subsequent_indent=INDENT * depth,
                         break_on_hyphens=False, break_long_words=False) or [INDENT * depth]  # keeps escapes whole
