"""Write a spec as a standalone Python file that imports only torch, laid out as torchvision lays out its models.

The file holds one class per block definition (`class Basic(nn.Module)`), parameterized by what differs between
the block's uses (`Basic(64, 128, stride=2)`), then one class named after the spec. A group or a repeat whose
layers run in sequence is an `nn.Sequential` (`self.features = nn.Sequential(nn.Conv2d(...), ...)`, copies of a
block `nn.Sequential(Basic(64, 64), Basic(64, 64))`), called in one line.

The module tree has `build`'s `state_dict`: the same keys in the same order, created in the same order (so one
seed gives identical weights), then the same init calls and freezing. Only layers without state may take
another attribute name than their node name: an unnamed `relu` at position 1 among named layers is
`self.relu`, not `getattr(self, "1")`. Each `forward` is written from the fx graph `build` runs: one line per
layer (or per block, group or repeat called whole), annotated with the per-sample output shape and parameter
count where every use of the class has the same.

Variables follow torch.fx's naming rules: valid identifiers, unique, never a keyword, a builtin (`input` is
`x`) or a name of `spec.TAKEN_NAMES`. A value flows through `x` (or `out` while `x` is still needed) when it
feeds only the next line; a value needed later is named after its layer (`layer1.0.bn2` -> `bn2` inside the
block, `layer1_0_bn2` outside it).
"""

from __future__ import annotations

import builtins
import functools
import inspect
import itertools
import keyword
import math
import operator
import re
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import fx
from torch.fx.node import _get_qualified_name

from .analysis import Analysis, analyze
from .arith import format_shape
from .compiler import CONTAINERS, Compiled, class_name, compile_graph, get_state, valid_graph
from .graph import Graph, Scope
from .init import to_init
from .layers import Call
from .layers.base import TensorCall
from .spec import TAKEN_NAMES, Spec

LINE = 110  # the longest line; a layer's comment moves above its code rather than pass it
INDENT = "    "
RUN = 3  # identical consecutive members of a Sequential written as one `*[... for _ in range(n)]`
RESERVED = TAKEN_NAMES | frozenset(dir(builtins)) | frozenset(keyword.kwlist)  # no variable takes these
CHAIN = ("x", "out")  # the variables a value flowing to the next line takes, first free first

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


# ---- constructor expressions: `nn.Conv2d(64, 128, kernel_size=3, stride=2)`, with their constants as slots ----


@dataclass(frozen=True)
class Lit:
    """A constant of a constructor call; `label` names the class parameter it becomes if it varies."""

    value: Any
    label: str


@dataclass
class Ctor:
    """`head(args..., name=value...)`; a kwarg with a torch default is left out when every use gives that."""

    head: str
    args: list = field(default_factory=list)  # Lit | Ctor | Run
    kwargs: list = field(default_factory=list)  # (name, Lit | Ctor, default or _NONE)
    comment: str | None = None  # shape and parameters, written after it as a member of a Sequential


@dataclass
class Run:
    """`*[ctor for _ in range(n)]`."""

    ctor: Ctor
    n: int


_NONE = object()


def shape_of(x) -> str:
    """The structure of a constructor expression, its constants as `{}`: what two uses must share."""
    if isinstance(x, Lit):
        return "{}"
    if isinstance(x, Run):
        return f"*{shape_of(x.ctor)}x{x.n}"
    return f"{x.head}({','.join(map(shape_of, x.args))};{','.join(k + '=' + shape_of(v) for k, v, _ in x.kwargs)})"


def lits(x) -> list[Lit]:
    if isinstance(x, Lit):
        return [x]
    if isinstance(x, Run):
        return lits(x.ctor)
    return [lit for a in [*x.args, *(v for _, v, _ in x.kwargs)] for lit in lits(a)]


class _Text:
    """Renders constructor expressions given the text of each constant slot (None: leave its kwarg out) and,
    per Ctor in visiting order, whether its comment is shown."""

    def __init__(self, texts: list[str | None], keep: list[bool]):
        self.texts, self.keep, self.i, self.j = texts, keep, 0, 0

    def inline(self, x) -> str:
        if isinstance(x, Lit):
            self.i += 1
            return self.texts[self.i - 1]
        if isinstance(x, Run):
            return f"*[{self.inline(x.ctor)} for _ in range({x.n})]"
        self.j += 1
        return f"{x.head}({', '.join(self.items(x))})"

    def items(self, x: Ctor) -> list[str]:
        return [self.inline(a) for a in x.args] + self.keywords(x)

    def keywords(self, x: Ctor) -> list[str]:
        """`name=value` for each kwarg not left out."""
        out = []
        for name, value, _ in x.kwargs:
            start = self.i
            text = self.inline(value)
            if not (isinstance(value, Lit) and self.texts[start] is None):
                out.append(f"{name}={text}")
        return out

    def lines(self, x, depth: int, lead: str, tail: str) -> list[str]:
        """`lead` + the expression + `tail`, on one line when it fits and shows no member's comment, else one
        member a line."""
        i, j = self.i, self.j
        flat = lead + self.inline(x) + tail
        if not isinstance(x, Ctor):
            return [flat]
        shown, k = [], j + 1
        for a in x.args:
            shown.append(self.keep[k] and _comment(a) if not isinstance(a, Lit) and k < len(self.keep) else None)
            k += _count(a)
        if len(INDENT * depth + flat) <= LINE and not any(shown):
            return [flat]
        self.i, self.j = i, j + 1
        out = [f"{lead}{x.head}("]
        for a, comment in zip(x.args, shown):
            sub = self.lines(a, depth + 1, "", ",")
            if comment and len(INDENT * (depth + 1) + sub[-1] + "  # " + comment) > LINE:
                sub.insert(0, f"# {comment}")
            elif comment:
                sub[-1] += f"  # {comment}"
            out += [INDENT + line for line in sub]
        out += [f"{INDENT}{kwarg}," for kwarg in self.keywords(x)]
        return [*out, f"){tail}"]


def _count(x) -> int:
    """Ctors visited in rendering `x`."""
    if isinstance(x, Lit):
        return 0
    if isinstance(x, Run):
        return _count(x.ctor)
    return 1 + sum(_count(a) for a in x.args) + sum(_count(v) for _, v, _ in x.kwargs)


def _comment(x) -> str | None:
    return x.ctor.comment if isinstance(x, Run) else x.comment


# ---- the plan: which scopes are classes, Sequentials, or written inline ----------------------------------


@dataclass
class Unit:
    """The code of one module: the model, or one use of a block (its class is shared by like uses)."""

    prefix: str  # "" for the model, `layer1.0.` for a block's use
    init: list = field(default_factory=list)  # (text before, Ctor or None, text after)
    forward: list = field(default_factory=list)  # (code, comment)
    params: list = field(default_factory=list)  # forward's parameters
    ret: str = ""
    attrs: list = field(default_factory=list)  # how it reaches each module it places: `.conv1`, `[0]`
    owners: list = field(default_factory=list)  # per init statement: the item of the block it builds
    optional: dict = field(default_factory=dict)  # forward line -> (item, access, call) of an optional item
    sequential: bool = False  # an nn.Sequential: its __init__ is one call, and it has no forward of its own

    def signature(self, skip=frozenset()) -> tuple:
        """What like uses share; `skip`: the optional items, whose statements some uses lack."""
        init = [(a, shape_of(c) if c is not None else "", b) for (a, c, b), o in zip(self.init, self.owners)
                if o not in skip]
        return (tuple(init),
                tuple(code for code, _ in self.forward), tuple(self.params), self.ret)

    def ctors(self) -> list[Ctor]:
        return [c for _, c, _ in self.init if c is not None]


@dataclass
class BlockClass:
    """One class written for uses of a block: its parameters, and what each use passes."""

    name: str
    op: str
    units: list[Unit]
    scopes: list[Scope]
    optional: list[str] = field(default_factory=list)  # items some uses skip: a flag each (`downsample=True`)
    params: list[tuple[str, Any]] = field(default_factory=list)  # (name, default or _NONE)
    values: list[list] = field(default_factory=list)  # per use: the value of each parameter
    texts: list[str | None] = field(default_factory=list)  # per constant slot: its text (None: left out)
    flags: dict[str, str] = field(default_factory=dict)  # optional item -> the parameter deciding it


class _Writer:
    def __init__(self, graph: Graph, compiled: Compiled, result: Analysis):
        self.graph = graph
        self.compiled = compiled
        self.result = result
        self.stats = result.by_name
        self.by_layer: dict[str, list[fx.Node]] = {}
        for node in compiled.module.graph.nodes:
            if node.meta.get("layer") is not None:
                self.by_layer.setdefault(node.meta["layer"], []).append(node)
        self.order = {name: i for i, name in enumerate(graph.nodes)}
        self.kind: dict[str, str] = {}  # scope -> "class" or "seq"
        self.step: dict[str, str] = {}  # module path -> how its parent reaches it: `.conv1`, `[0]`, ...
        self.classes: dict[str, list[BlockClass]] = {}  # block op -> its classes
        self.class_of: dict[str, tuple[BlockClass, int]] = {}  # block scope -> (its class, its use's index)
        self.taken_classes = {class_name(graph.name)}
        self.fx_order = {f: i for i, f in enumerate(compiled.module.graph.nodes)}
        self.sequential: set[str] = set()  # block uses whose layers run in sequence
        self.merging: _Merge | None = None  # the optional items of the block whose uses are being written
        self.within: dict[str, list[str]] = {}  # dotted prefix -> the nodes below it, in node order
        for name in graph.nodes:
            parts = name.split(".")
            for i in range(1, len(parts)):
                self.within.setdefault(".".join(parts[:i]), []).append(name)
        self.boundaries: dict[str, tuple[list[fx.Node], fx.Node | None]] = {}

    # ---- scopes --------------------------------------------------------------------------------------------

    def members(self, scope: str) -> list[str]:
        return self.within.get(scope, [])

    def fx_nodes(self, layers) -> list[fx.Node]:
        return [f for layer in layers for f in self.by_layer.get(layer, [])]

    def boundary(self, scope: str) -> tuple[list[fx.Node], fx.Node | None]:
        """The values a scope's nodes take from outside it, in order of first use, and the one value used outside
        it (None when not exactly one, or when a node reaches state outside the scope)."""
        if scope not in self.boundaries:
            self.boundaries[scope] = self._boundary(scope)
        return self.boundaries[scope]

    def _boundary(self, scope: str) -> tuple[list[fx.Node], fx.Node | None]:
        inside = set(self.fx_nodes(self.members(scope)))
        external, outs = [], []
        for f in inside:
            if f.op in ("call_module", "get_attr") and not f.target.startswith(scope + "."):
                return [], None
        for f in sorted(inside, key=self.fx_order.__getitem__):
            for a in f.all_input_nodes:
                if a not in inside and a not in external:
                    external.append(a)
            if any(u not in inside for u in f.users):
                outs.append(f)
        return external, outs[0] if len(outs) == 1 else None

    def plan(self) -> None:
        depth = {}
        for name, scope in self.graph.scopes.items():
            depth[name] = 0 if scope.parent is None else depth[scope.parent] + 1
        for name in sorted(self.graph.scopes, key=lambda s: -depth[s]):
            scope = self.graph.scopes[name]
            if not any(n in self.compiled.holders for n in self.members(name)):
                continue  # no state: nothing to construct, written inline
            external, out = self.boundary(name)
            if out is None:
                continue
            if scope.kind == "block":
                values = [self.compiled.values[i] for i in scope.inputs]
                if set(external) <= set(values):
                    self.kind[name] = "class"
                if len(external) == 1 and len(values) == 1 and self.chain(name, external[0], out):
                    self.sequential.add(name)  # its class is an nn.Sequential, as torchvision's Conv2dNormActivation
            elif len(external) == 1 and self.chain(name, external[0], out):
                self.kind[name] = "seq"

    def children(self, scope: str) -> list[str]:
        """The direct children of a scope, as node names or scope names, in node order."""
        return list(dict.fromkeys(f"{scope}.{n[len(scope) + 1:].split('.')[0]}" for n in self.members(scope)))

    def chain(self, scope: str, first: fx.Node, out: fx.Node) -> bool:
        """Whether the children of `scope` are named 0..n-1 and each takes only its predecessor's value, each
        a module called whole: then it is an nn.Sequential."""
        kids = self.children(scope)
        if [k.rsplit(".", 1)[1] for k in kids] != [str(i) for i in range(len(kids))]:
            return False
        value = first
        for i, kid in enumerate(kids):
            if kid in self.graph.nodes:
                fxs = self.by_layer.get(kid, [])
                if kid not in self.compiled.holders or self.compiled.holders[kid].is_container or len(fxs) != 1:
                    return False
                f = fxs[0]
                if f.op != "call_module" or f.target != kid or f.args != (value,) or f.kwargs:
                    return False
            elif self.kind.get(kid) in ("class", "seq"):
                external, f = self.boundary(kid)
                if external != [value] or f is None:
                    return False
                if self.kind[kid] == "class" and len(self.graph.scopes[kid].inputs) != 1:
                    return False
            else:
                return False
            if i + 1 < len(kids) and not all(self.owner(u, kids[i + 1]) for u in f.users):
                return False
            value = f
        return value is out

    def owner(self, f: fx.Node, kid: str) -> bool:
        layer = f.meta.get("layer")
        return layer is not None and (layer == kid or layer.startswith(kid + "."))

    def outer(self, name: str, prefix: str) -> str | None:
        """The outermost class or Sequential scope below `prefix` holding the node or path `name`."""
        parts = name[len(prefix):].split(".")
        for i in range(1, len(parts)):
            path = prefix + ".".join(parts[:i])
            if path in self.kind:
                return path
        return None

    # ---- source --------------------------------------------------------------------------------------------

    def source(self) -> str:
        self.plan()
        for op in self.block_order():
            self.make_classes(op)
        root = self.unit("")
        lines = [*self.docstring(), "", "import torch", "from torch import nn"]
        for op in self.block_order():
            for cls in self.classes[op]:
                lines += ["", "", *self.class_lines(cls)]
        description = self.graph.spec.model.description or self.graph.name
        lines += ["", "", f"class {class_name(self.graph.name)}(nn.Module):",
                  *_wrap(f'"""{_quote(description)}"""', 1), "",
                  *self.method_lines(root, self.root_init(root), [True] * len(root.forward))]
        return "\n".join(lines) + "\n"

    def block_order(self) -> list[str]:
        """Block types with class scopes, each after the types used inside it."""
        uses: dict[str, set[str]] = {}
        for name in (s for s, k in self.kind.items() if k == "class"):
            op = self.graph.scopes[name].op
            uses.setdefault(op, set())
            outer = self.graph.scopes[name].parent
            while outer is not None:
                if self.kind.get(outer) == "class":
                    uses.setdefault(self.graph.scopes[outer].op, set()).add(op)
                outer = self.graph.scopes[outer].parent
        order: list[str] = []
        while len(order) < len(uses):
            order += sorted(op for op, inner in uses.items() if op not in order and inner <= set(order))
        return order

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
            *_wrap(f"Inputs (batch first, in this order): {inputs}. {returns}", 0),
            f"{r.total_params:,} parameters ({r.trainable_params:,} trainable).",
            '"""',
        ]

    # ---- one module: __init__ statements and forward lines ---------------------------------------------------

    def unit(self, prefix: str) -> Unit:
        u = Unit(prefix)
        if prefix[:-1] in self.sequential:  # `super().__init__(nn.Conv2d(...), nn.BatchNorm2d(...), ...)`
            u.init.append(("", Ctor("super().__init__", self.sequence(prefix[:-1])), ""))
            u.owners.append(None)
            u.sequential = True
            return u
        created: set[str] = set()
        names: dict[str, set[str]] = {}  # container -> attribute names taken in it
        done: set[str] = set()
        for layer in self.members(prefix[:-1]) if prefix else self.graph.nodes:
            top = self.outer(layer, prefix)
            path = top or layer
            if path in done or (top is None and layer not in self.compiled.holders):
                continue
            done.add(path)
            parts = path[len(prefix):].split(".")
            for i in range(1, len(parts)):
                container = prefix + ".".join(parts[:i])
                if container not in created:
                    created.add(container)
                    self.place(u, container, None, f"nn.{CONTAINERS[self.compiled.kinds[container]].__name__}()",
                               names)
            self.place(u, path, self.ctor(path), "", names)
            if top is None:
                members = self.members_of(path, self.compiled.holders[path], prefix)
                u.init += [(line, None, "") for line in members]
                u.owners += [parts[0]] * len(members)
        self.forward(u)
        return u

    def place(self, u: Unit, path: str, ctor: Ctor | None, text: str, names: dict[str, set[str]]) -> None:
        """The statement putting a module at `path` in its container, and how the container reaches it."""
        parent, _, part = path.rpartition(".")
        kind = "module" if parent + "." == u.prefix else self.compiled.kinds.get(parent, "module")
        base = self.access(parent, u.prefix)
        if kind == "list":
            step, before, after = f"[{part}]", f"{base}.append(", ")"
        elif kind == "dict":
            step, before, after = f'["{part}"]', f'{base}["{part}"] = ', ""
        else:
            if parent not in names:
                below = self.members(parent) if parent else self.graph.nodes
                names[parent] = {n[len(parent) + 1 if parent else 0:].split(".")[0] for n in below
                                 if n in self.compiled.holders}
            taken = names[parent]
            if _plain(part):
                step, before, after = f".{part}", f"{base}.{part} = ", ""
            elif not self.has_state(path):
                attr = _fresh(self.op_name(path), taken | RESERVED)
                taken.add(attr)
                step, before, after = f".{attr}", f"{base}.{attr} = ", ""
            elif path in self.compiled.holders and self.compiled.holders[path].is_parameter:
                step, before, after = f'.get_parameter("{part}")', f'{base}.register_parameter("{part}", ', ")"
            else:
                step, before, after = f'.get_submodule("{part}")', f'{base}.add_module("{part}", ', ")"
        self.step[path] = step
        u.attrs.append(step)
        u.init.append((before + text + after, None, "") if ctor is None else (before, ctor, after))
        u.owners.append(path[len(u.prefix):].split(".")[0])

    def has_state(self, path: str) -> bool:
        state = get_state(self.compiled.module, path)
        return isinstance(state, torch.Tensor) or bool(state.state_dict())

    def op_name(self, path: str) -> str:
        if path in self.graph.nodes:
            return self.graph.nodes[path].op
        scope = self.graph.scopes.get(path)
        return scope.op if scope is not None and scope.op else "layers"

    def access(self, path: str, prefix: str = "") -> str:
        """`layer1.0.conv1.weight` -> `self.layer1[0].conv1.weight`, from the module at `prefix`."""
        text = "self"
        parts = path[len(prefix):].split(".") if path and path + "." != prefix else []
        done = prefix[:-1]
        for part in parts:
            here = f"{done}.{part}" if done else part
            text += self.step.get(here, f".{part}" if _plain(part) else f'.get_submodule("{part}")')
            done = here
        return text

    def ctor(self, path: str) -> Ctor:
        kind = self.kind.get(path)
        last = path.rsplit(".", 1)[-1]
        label = self.op_name(path) if last.isdigit() else last  # what its constants' slots are named after
        if kind == "class":
            cls, i = self.class_of[path]
            c = Ctor(cls.name)
            for (name, default), value in zip(cls.params, cls.values[i]):
                lit = Lit(value, f"{label}_{name}")
                if default is _NONE:
                    c.args.append(lit)
                else:
                    c.kwargs.append((name, lit, default))
        elif kind == "seq":
            c = Ctor("nn.Sequential", self.sequence(path))
        else:
            c = call_ctor(self.compiled.holders[path], label)
        c.comment = self.comment(path)
        return c

    def sequence(self, path: str) -> list:
        """The members of the nn.Sequential at `path`, each reached by its index."""
        kids = self.children(path)
        for i, kid in enumerate(kids):
            self.step[kid] = f"[{i}]"
        return _runs([self.ctor(k) for k in kids])

    def comment(self, path: str) -> str:
        layers = [path] if path in self.graph.nodes else self.members(path)
        out = self.compiled.values.get(path)
        last = out.meta.get("layer") if out is not None else layers[-1]
        text = format_shape(self.stats[last or layers[-1]].output_shape)
        params = sum(self.stats[n].params or 0 for n in layers)
        return text + (f" · {params:,} params" if params else "")

    def members_of(self, path: str, call: Call, prefix: str) -> list[str]:
        """The statements filling a container layer's module: its modules and parameters, its buffers
        (`register_buffer`, a long value broken over lines) and its plain attributes, in the Call's order."""
        if not call.is_container:
            return []
        lines, owner = [], self.access(path, prefix)
        for name, member in call.kwargs.items():
            if not isinstance(member, Call):
                lines.append(f"{owner}.{name} = {member!r}")
            elif member.is_buffer:
                head = f'{owner}.register_buffer("{name}", '
                value = _tensor_lines(member.args[0], 2)
                lines += [head + value[0] + ")"] if len(value) == 1 and len(INDENT * 2 + head + value[0]) < LINE \
                    else [head.rstrip(" "), *(INDENT + line for line in _tensor_lines(member.args[0], 3)), ")"]
            else:
                lines.append(f"{owner}.{name} = {construct(member)}")
                lines += self.members_of(f"{path}.{name}", member, prefix)
        return lines

    def forward(self, u: Unit) -> None:
        scope = u.prefix[:-1]
        layers = self.members(scope) if scope else list(self.graph.nodes)
        items: list[tuple[str, list[fx.Node], fx.Node | None]] = []  # (layer or scope, its fx nodes, its value)
        for layer in layers:
            top = self.outer(layer, u.prefix)
            if top is None:
                items.append((layer, self.by_layer.get(layer, []), self.compiled.values[layer]))
            elif not items or items[-1][0] != top:
                items.append((top, self.fx_nodes(self.members(top)), self.boundary(top)[1]))
        if self.merging is not None:
            items = self.merging.items(u, items)
        frame = _Frame(self, u.prefix, items)
        if scope:
            s = self.graph.scopes[scope]
            block = self.graph.spec.blocks[s.op]
            params = frame.bind([self.compiled.values[i] for i in s.inputs], block.inputs)
            result = self.boundary(scope)[1]
            frame.outputs = {result}
        else:
            params = frame.bind([self.compiled.values[i] for i in self.graph.inputs], list(self.graph.inputs))
            frame.outputs = {self.compiled.values[ref] for ref in self.graph.outputs.values()}
        u.params = params
        u.forward = frame.lines()
        u.optional = frame.optional
        if scope:
            u.ret = frame.text(result)
        elif list(self.graph.outputs) == ["output"]:
            u.ret = frame.text(self.compiled.values[self.graph.outputs["output"]])
        else:
            u.ret = "{" + ", ".join(f'"{name}": {frame.text(self.compiled.values[ref])}'
                                    for name, ref in self.graph.outputs.items()) + "}"

    # ---- block classes ---------------------------------------------------------------------------------------

    def make_classes(self, op: str) -> None:
        scopes = [self.graph.scopes[s] for s, k in self.kind.items() if k == "class" and self.graph.scopes[s].op == op]
        scopes.sort(key=lambda s: self.order[self.members(s.name)[0]])
        groups: dict[tuple, tuple[list[Unit], list[Scope]]] = {}
        for scope in scopes:
            u = self.unit(scope.name + ".")
            units, owners = groups.setdefault(u.signature(), ([], []))
            units.append(u)
            owners.append(scope)
        self.classes[op] = []
        if len(groups) > 1:
            merged = self.merge(scopes)
            if merged is not None:
                cls = BlockClass(_fresh_class(class_name(op), self.taken_classes), op, *merged)
                self.parameterize(cls)
                self.classes[op].append(cls)
                for k, scope in enumerate(cls.scopes):
                    self.class_of[scope.name] = (cls, k)
                return
        base = class_name(op)
        first = None
        for i, (units, owners) in enumerate(groups.values()):
            attrs = {a[1:] for a in units[0].attrs if a.startswith(".")}
            extra = "".join(class_name(a) for a in sorted(attrs - first)) if first is not None else ""
            first = attrs if first is None else first
            name = _fresh_class(base + extra if i == 0 or extra else f"{base}{i + 1}", self.taken_classes)
            cls = BlockClass(name, op, units, owners)
            self.parameterize(cls)
            self.classes[op].append(cls)
            for k, scope in enumerate(owners):
                self.class_of[scope.name] = (cls, k)

    def merge(self, scopes: list[Scope]) -> tuple[list[Unit], list[Scope], list[str]] | None:
        """One class for uses that differ only by items some of them skip (`when:`), each taking one input:
        (the uses, the scopes, the optional items), a use holding all of them first; None when they differ
        otherwise."""
        kids = {s.name: [k[len(s.name) + 1:] for k in self.children(s.name)] for s in scopes}
        union = list(dict.fromkeys(k for s in scopes for k in kids[s.name]))
        optional = [k for k in union if not all(k in kids[s.name] for s in scopes)]
        full = [s for s in scopes if set(optional) <= set(kids[s.name])]
        if not full or any(not _plain(k) for k in optional):
            return None
        ordered = full[:1] + [s for s in scopes if s is not full[0]]
        self.merging = _Merge(set(optional), kids[full[0].name])
        try:
            units = [self.unit(s.name + ".") for s in ordered]
        except _NoMerge:
            return None
        finally:
            self.merging = None
        signatures = {u.signature(frozenset(optional)) for u in units}
        if len(signatures) != 1 or any(len(self.statements(u, k)) != 1 for k in optional for u in units[:1]):
            return None
        return units, ordered, optional

    def statements(self, u: Unit, item: str) -> list[int]:
        return [i for i, owner in enumerate(u.owners) if owner == item]

    def parameterize(self, cls: BlockClass) -> None:
        """Each constant differing between the class's uses becomes an expression of its parameters: a block
        argument (`width`), the input's channels or features, either times or divided by a whole number, else a
        parameter of its own (named after the layer and argument); constants shared by all uses stay literal."""
        block = self.graph.spec.blocks[cls.op]
        per_use = [self.aligned(cls, u, lambda c: [lit.value for lit in lits(c)]) for u in cls.units]
        candidates: list[tuple[str, list, Any]] = []  # (name, value per use, default), block arguments first
        for key, (_, default) in block.args.items():
            plain = isinstance(default, (int, float, bool, str)) and not (isinstance(default, str) and "$" in default)
            candidates.append((key, [s.args[key] for s in cls.scopes], default if plain else _NONE))
        shapes = [self.graph.shape_of(s.inputs[0]) if s.inputs else None for s in cls.scopes]
        if all(shapes) and len({len(s) for s in shapes}) == 1:
            key = "in_features" if len(shapes[0]) == 1 else "in_channels"  # the input's, as torch names them
            if key not in block.args:
                candidates.append((key, [s[0] for s in shapes], _NONE))
        used: dict[str, Any] = {}
        own: list[tuple[str, list]] = []
        texts: list[str | None] = []
        slots = [slot for c in cls.units[0].ctors() for slot in _slots(c)]  # (constant, its torch default)
        for j, (first, torch_default) in enumerate(slots):
            present = [k for k, use in enumerate(per_use) if use[j] is not _NONE]
            values = [per_use[k][j] for k in present]
            candidates_here = [(n, [known[k] for k in present], d) for n, known, d in candidates]
            same_name = next((n for n, known, _ in candidates_here if n in used and
                              all(_same(k, v) for k, v in zip(known, values))), None)
            if same_name is not None and len(present) < len(per_use):  # in an optional item: `stride=stride`
                texts.append(same_name)
                continue
            if all(_same(values[0], v) for v in values):
                texts.append(None if _left_out(torch_default, first.value) else _literal(values[0]))
                continue
            # the exact one, else the smallest factor: with few uses, `kernel // 2` rather than `out // 6`
            found = [(_explain(values, known, name), i) for i, (name, known, _) in enumerate(candidates_here)]
            best = min(((e, i) for e, i in found if e is not None), key=lambda f: (f[0][0], f[1]), default=None)
            text = None if best is None else best[0][1]
            if best is not None:
                used[candidates_here[best[1]][0]] = candidates_here[best[1]][2]
            for (a, known_a, default_a), (b, known_b, default_b) in [] if text else _pairs(candidates_here):
                if all(_number(x) and _number(y) and _same(v, x * y) for x, y, v in zip(known_a, known_b, values)):
                    text, used[a], used[b] = f"{a} * {b}", default_a, default_b
                    break
            if text is None:
                name = _fresh(first.label, RESERVED | {c[0] for c in candidates} | {o[0] for o in own})
                own.append((name, [per_use[k][j] for k in range(len(per_use))]))
                text = name
            texts.append(text)
        names = {c[0]: c for c in candidates}
        shape_first = [c[0] for c in candidates[len(block.args):]] + list(block.args)  # torchvision's order
        # a parameter of an item some uses skip: None where skipped (and so left out of the call)
        own = [(n, [None if v is _NONE else v for v in values], _NONE if _NONE not in values else None)
               for n, values in own]
        params = [(n, names[n][2]) for n in shape_first if n in used] + [(n, d) for n, _, d in own]
        params.sort(key=lambda p: p[1] is not _NONE)
        own = [(n, values) for n, values, _ in own]
        flags = {item: _fresh(item, RESERVED | {n for n, _ in params}) for item in cls.optional}
        params += [(flag, False) for flag in flags.values()]
        present_items = [{o for o in u.owners} for u in cls.units]
        own += [(flag, [item in items for items in present_items]) for item, flag in flags.items()]
        cls.flags = flags
        safe = {n: _fresh(n, RESERVED) if n not in flags.values() else n for n, _ in params}
        if any(safe[n] != n for n in safe):
            texts = [_rename(t, safe) if t is not None else None for t in texts]
        cls.params = [(safe[n], d) for n, d in params]
        own_values = dict(own)
        cls.values = [[names[n][1][k] if n in names else own_values[n][k] for n, _ in params]
                      for k in range(len(cls.units))]
        cls.texts = texts

    def aligned(self, cls: BlockClass, u: Unit, each) -> list:
        """`each(ctor)` of every statement of `u`, lined up with the class's first use: _NONE for each value of
        a statement of an optional item this use skips."""
        template = cls.units[0]
        mine = iter(c for c, owner in zip((c for _, c, _ in u.init), u.owners) if c is not None)
        out = []
        for (_, ctor, _), owner in zip(template.init, template.owners):
            if ctor is None:
                continue
            if owner in cls.optional and owner not in u.owners:
                out += [_NONE] * len(each(ctor))
            else:
                out += each(next(mine))
        return out

    def class_lines(self, cls: BlockClass) -> list[str]:
        block = self.graph.spec.model.blocks[cls.op]
        doc = block.description or f"The block `{cls.op}` of {self.graph.name}."
        hints = [_hint([use[i] for use in cls.values]) for i in range(len(cls.params))]
        signature = ", ".join(["self", *(n + h if d is _NONE else f"{n}{h}{' = ' if h else '='}{_literal(d)}"
                                         for (n, d), h in zip(cls.params, hints))])
        units = cls.units
        columns = zip(*(self.aligned(cls, u, _all_comments) for u in units))
        keep = [len({c for c in column if c is not _NONE}) == 1 for column in columns]
        same = [len({u.forward[i][1] for u in units}) == 1 for i in range(len(units[0].forward))]
        init = self.init_lines(units[0], cls.texts, keep, signature, cls.flags)
        base = "nn.Sequential" if units[0].sequential else "nn.Module"
        return [f"class {cls.name}({base}):", *_wrap(f'"""{_quote(doc)}"""', 1), "",
                *(init if units[0].sequential else self.method_lines(units[0], init, same))]

    def init_lines(self, u: Unit, texts: list[str | None], keep: list[bool], signature: str,
                   flags: dict[str, str] | None = None) -> list[str]:
        head = f"{INDENT}def __init__({signature}) -> None:"
        if len(head) > LINE:
            head = "\n".join([f"{INDENT}def __init__(", *(f"{INDENT * 2}{p}," for p in signature.split(", ")),
                              f"{INDENT}) -> None:"])
        lines = [head] if u.sequential else [head, f"{INDENT * 2}super().__init__()"]
        renderer = _Text(texts, keep)
        for (before, ctor, after), owner in zip(u.init, u.owners):
            if flags and owner in flags:
                after += f" if {flags[owner]} else None"
            if ctor is None:
                lines.append(INDENT * 2 + before)
            else:
                lines += [INDENT * 2 + line for line in renderer.lines(ctor, 2, before, after)]
        return lines

    def root_init(self, u: Unit) -> list[str]:
        texts = _slot_texts(u.ctors())
        keep = [True] * sum(len(_all_comments(c)) for c in u.ctors())
        lines = self.init_lines(u, texts, keep, "self")
        c = self.compiled
        extra = []
        for ic in c.inits:
            kwargs = "".join(f", {k}={v!r}" for k, v in ic.kwargs.items())
            extra.append(f"nn.init.{ic.fn}({self.access(ic.param)}{kwargs})")
        frozen = {name for name in c.holders if self.graph.nodes[name].frozen}
        extra += [f"{self.access(path)}.requires_grad_(False)" for path in frozen_roots(list(c.holders), frozen)]
        return lines + [INDENT * 2 + part for line in extra for part in _fit(line, 2)]

    def method_lines(self, u: Unit, init: list[str], keep: list[bool]) -> list[str]:
        """`__init__` (given), then `forward`, showing the comments `keep` marks."""
        params = ", ".join(f"{p}: torch.Tensor" for p in u.params)
        single = not u.ret.startswith("{")
        kind = "torch.Tensor" if single else "dict[str, torch.Tensor]"
        body = []
        for i, ((code, comment), shown) in enumerate(zip(u.forward, keep)):
            if i in u.optional:  # `identity = x if self.downsample is None else self.downsample(x)`
                _, access, call = u.optional[i]
                var, arg = code.split(" = ")
                code = f"{var} = {arg} if {access} is None else {call}"
            if not shown or not comment:
                body.append(code)
            elif len(INDENT * 2 + code + "  # " + comment) > LINE:
                body += [f"# {comment}", code]
            else:
                body.append(f"{code}  # {comment}")
        return [*init, "", f"{INDENT}def forward(self, {params}) -> {kind}:",
                *(INDENT * 2 + line for line in body), f"{INDENT * 2}return {u.ret}"]


class _NoMerge(Exception):
    """Uses of a block differ by more than the items some of them skip."""


class _Merge:
    """The items some uses of a block skip, the order of its items in a use that has them all, and the variable
    each takes (filled by the first use written)."""

    def __init__(self, names: set[str], order: list[str]):
        self.names, self.order, self.args = names, order, {}

    def items(self, u: Unit, items: list) -> list:
        """A use's forward items with a stand-in (no fx nodes) where it skips an optional item."""
        have = {name[len(u.prefix):] for name, _, _ in items}
        out = list(items)
        for item in self.order:
            if item in self.names and item not in have:
                before = self.order[:self.order.index(item)]
                at = max((k + 1 for k, (name, _, _) in enumerate(out) if name[len(u.prefix):] in before), default=0)
                out.insert(at, (u.prefix + item, [], None))
                have.add(item)
        return out


class _Frame:
    """The variables of one `forward`: which fx value each holds, and which are still needed."""

    def __init__(self, writer: _Writer, prefix: str, items: list):
        self.w = writer
        self.prefix = prefix
        self.items = items
        self.item_of = {f: i for i, (_, fxs, _) in enumerate(items) for f in fxs}
        self.names: dict[fx.Node, str] = {}
        self.holds: dict[str, fx.Node] = {}
        self.used = set(RESERVED) | set(CHAIN)
        self.outputs: set[fx.Node] = set()
        self.optional: dict[int, tuple[str, str, str]] = {}

    def bind(self, values: list[fx.Node], names: list[str]) -> list[str]:
        """The forward's parameters: the inputs' names as fx would write them, `input` as `x`."""
        params = []
        for value, name in zip(values, names):
            var = "x" if name == "input" and "x" not in names and "x" not in params else \
                _fresh(name, (self.used - set(CHAIN)) | set(params))
            params.append(var)
            self.used.add(var)
            self.names.setdefault(value, var)
            self.holds[var] = value
        return params

    def lines(self) -> list[tuple[str, str]]:
        out = []
        merging = self.w.merging
        for i, (name, fxs, result) in enumerate(self.items):
            item = name[len(self.prefix):]
            if merging is not None and item in merging.names:
                out.append(self.optional_item(i, name, item, result, len(out)))
            elif name in self.w.graph.nodes:
                out += self.layer(i, name, fxs, result)
            else:
                args = ", ".join(self.text(v) for v in self.w.boundary(name)[0])
                if self.w.kind[name] == "class":
                    scope = self.w.graph.scopes[name]
                    args = ", ".join(self.text(self.w.compiled.values[v]) for v in scope.inputs)
                code = f"{self.w.access(name, self.prefix)}({args})"
                out.append((f"{self.variable(i, self.base(name), result, code)} = {code}", self.w.comment(name)))
        return out

    def optional_item(self, i: int, name: str, item: str, result: fx.Node | None, line: int) -> tuple[str, str]:
        """An item some uses of the block skip, taking one value: `identity = x`, where this use skips it (the
        value passes on), and `identity = self.downsample(x)` where it runs, written as one conditional line."""
        merging = self.w.merging
        var = self.fresh(self.base(name))
        if result is None:  # skipped here: the value it would take passes on under its name
            arg = merging.args.get(item)
            value = self.holds.get(arg) if arg is not None else None
            if value is None:
                raise _NoMerge
            self.names[value] = var
            self.holds[var] = value
            return f"{var} = {arg}", ""
        external = self.w.boundary(name)[0] if name not in self.w.graph.nodes else \
            [self.w.compiled.values[v] for v in self.w.graph.nodes[name].inputs]
        fxs = self.items[i][1]
        if len(external) != 1 or external[0] not in self.names or name not in self.w.kind and (
                len(fxs) != 1 or fxs[0] is not result or result.op != "call_module"):
            raise _NoMerge
        arg = self.names[external[0]]
        if merging.args.setdefault(item, arg) != arg:
            raise _NoMerge
        call = f"{self.w.access(name, self.prefix)}({arg})"
        if name not in self.w.kind and self.render(result)[0] != call:
            raise _NoMerge
        self.hold(var, result)
        self.optional[line] = (item, self.w.access(name, self.prefix), call)
        return f"{var} = {arg}", self.w.comment(name)

    def layer(self, i: int, layer: str, fxs: list[fx.Node], result: fx.Node) -> list[tuple[str, str]]:
        out = []
        crowded = result in fxs and len(INDENT * 2 + "x = " + self.render(result)[0]) > LINE
        base = self.base(layer)
        for f in fxs:
            hoist = crowded and len(self.render(f)[0]) > LINE // 2
            if f is not result and (not self.inlined(f) or hoist):
                out += [(line, "") for line in self.operands_hoisted(f, base)]
                var = self.fresh(self.hoisted(f, base)) if f.users else "_"
                out.append((self.statement(f, var), ""))
        if result in fxs:
            code = self.render(result)[0]
            stats = self.w.stats[layer]
            comment = format_shape(stats.output_shape) + (f" · {stats.params:,} params" if stats.params else "")
            out.append((f"{self.variable(i, base, result, code)} = {code}", comment))
        return out

    def base(self, layer: str) -> str:
        """A layer's variable name: its name within the frame, an unnamed layer's op for its number."""
        parts = layer[len(self.prefix):].split(".")
        if parts[-1].isdigit():
            parts[-1] = self.w.op_name(layer)
        return "_".join(parts)

    def hoisted(self, f: fx.Node, base: str) -> str:
        if f.op in ("call_module", "get_attr"):
            return f.target.rsplit(".", 1)[-1]
        if f.op == "call_method":
            return f.target
        if f.target is getattr or f.target in BINARY or f.target in UNARIES or f.target is operator.getitem:
            return base
        return getattr(f.target, "__name__", base)

    def operands_hoisted(self, f: fx.Node, base: str) -> list[str]:
        """Statements naming an intermediate value's inlined operands, longest first, until its own line fits
        in LINE (a table indexed by a buffer, both reached through long attribute paths)."""
        lines = []
        while len(INDENT * 2 + f"{self.hoisted(f, base)} = " + self.render(f)[0]) > LINE:
            inner = [a for a in f.all_input_nodes if a not in self.names and a.op != "placeholder"]
            if not inner:
                break
            longest = max(inner, key=lambda a: len(self.render(a)[0]))
            lines += self.operands_hoisted(longest, base)
            lines.append(self.statement(longest, self.fresh(self.hoisted(longest, base))))
        return lines

    def inlined(self, f: fx.Node) -> bool:
        """A layer's intermediate value used once, by the same layer, is written inside its user."""
        return len(f.users) == 1 and next(iter(f.users)).meta.get("layer") == f.meta["layer"]

    def dead(self, var: str, i: int) -> bool:
        value = self.holds.get(var)
        if value is None:
            return True
        return value not in self.outputs and all(self.item_of.get(u, math.inf) <= i for u in value.users)

    def variable(self, i: int, base: str, result: fx.Node, code: str) -> str:
        """`x`/`out` for a value feeding only the next line (or returned), else a name of its own."""
        if not result.users:
            return "_"
        later = {self.item_of.get(u, math.inf) for u in result.users}
        returned = result in self.outputs and len(self.outputs) == 1 and i == len(self.items) - 1
        if later == {i + 1} or (returned and later == {math.inf}):
            found = {v: re.search(rf"\b{v}\b", code) for v in CHAIN}
            consumed = sorted((v for v in CHAIN if found[v] and self.dead(v, i)), key=lambda v: found[v].start())
            free = consumed or [v for v in CHAIN if self.dead(v, i)]
            if free:
                return self.hold(free[0], result)
        return self.hold(self.fresh(base), result)

    def hold(self, var: str, value: fx.Node) -> str:
        self.holds[var] = value
        self.names[value] = var
        return var

    def fresh(self, base: str) -> str:
        name = _fresh(base, self.used)
        self.used.add(name)
        return name

    def statement(self, f: fx.Node, var: str) -> str:
        line = f"{var} = {self.render(f)[0]}"
        if var != "_":
            self.hold(var, f)
        return line

    # ---- expressions: (text, binding strength) ---------------------------------------------------------------

    def render(self, node: fx.Node) -> tuple[str, int]:
        op, target, args = node.op, node.target, node.args
        if op == "call_module":
            return f"{self.w.access(target, self.prefix)}({self.call_args(args, node.kwargs)})", POSTFIX
        if op == "get_attr":
            return self.w.access(target, self.prefix), POSTFIX
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


# ---- helpers ---------------------------------------------------------------------------------------------


def call_ctor(call: Call, label: str) -> Ctor:
    """A catalog Call as a constructor expression: `nn.Conv2d(3, 64, kernel_size=7, ...)`, each argument a slot
    labelled after the layer and torch's name of the argument (`conv1_out_channels`)."""
    if call.is_container:
        return Ctor("nn.Module")
    if call.is_parameter:
        if call.fill:
            return Ctor("nn.Parameter", [Ctor("torch.full", [Lit(call.shape, f"{label}_shape"),
                                                              Lit(call.fill, f"{label}_fill")])])
        return Ctor("nn.Parameter", [Ctor("torch.zeros", [Lit(d, f"{label}_size") for d in call.shape])])
    cls = getattr(torch.nn, call.cls)
    defaults = _defaults(cls)
    names = _positional(cls)
    args = [Lit(v, f"{label}_{names[i] if i < len(names) else 'arg'}") for i, v in enumerate(call.args)]
    # every keyword torch takes, in its order, so that uses of a block giving different ones line up
    order = [*names, *(k for k in defaults if k not in names)]
    given = [k for k in order if k not in names[:len(call.args)] and k not in ("device", "dtype")]
    keys = [k for k in given if k in call.kwargs or k in defaults] + [k for k in call.kwargs if k not in given]
    kwargs = [(k, Lit(call.kwargs.get(k, defaults.get(k)), f"{label}_{k}"), defaults.get(k, _NONE)) for k in keys]
    return Ctor(f"nn.{call.cls}", args, kwargs)


def construct(call: Call) -> str:
    """The source of a catalog Call, arguments equal to torch's defaults left out: `nn.Conv2d(3, 64, ...)`
    (a container: `nn.Module()`, its members written by `_Writer.members_of`)."""
    ctor = call_ctor(call, "")
    return _Text(_slot_texts([ctor]), []).inline(ctor)


def _slot_texts(ctors: list[Ctor]) -> list[str | None]:
    """The text of each constant slot of `ctors`, None for a kwarg equal to its torch default (left out)."""
    return [None if _left_out(d, lit.value) else _literal(lit.value) for c in ctors for lit, d in _slots(c)]


def _left_out(default, value) -> bool:
    """Whether a kwarg given `value` equals its torch `default` (_NONE: positional or none), so is not written."""
    return default is not _NONE and _same(default, value)


def _slots(x) -> list[tuple[Lit, Any]]:
    """The constants of a constructor expression with their torch defaults (_NONE: positional or none)."""
    if isinstance(x, Run):
        return _slots(x.ctor)
    out = []
    for a in x.args:
        out += [(a, _NONE)] if isinstance(a, Lit) else _slots(a)
    for _, v, d in x.kwargs:
        out += [(v, d)] if isinstance(v, Lit) else _slots(v)
    return out


def _all_comments(x) -> list:
    """The comments of a constructor expression and its members, in the order `_Text` visits them."""
    if isinstance(x, Lit):
        return []
    if isinstance(x, Run):
        return [x.ctor.comment, *_all_comments(x.ctor)[1:]]
    return [x.comment] + [c for a in x.args for c in _all_comments(a)] + \
        [c for _, v, _ in x.kwargs for c in _all_comments(v)]


def _runs(ctors: list[Ctor]) -> list:
    """Members of a Sequential, RUN or more identical neighbours as one Run."""
    out: list = []
    for _, group in itertools.groupby(ctors, lambda c: (shape_of(c), [lit.value for lit in lits(c)], c.comment)):
        same = list(group)
        each = replace(same[0], comment=f"each {same[0].comment}") if same[0].comment else same[0]
        out += [Run(each, len(same))] if len(same) >= RUN else same
    return out


def _explain(values: list, known: list, name: str) -> tuple[int, str] | None:
    """(0, `name`) when `known` equals `values` in every use, else (k, `name * k`) or (k, `name // k`) when that
    gives them; None when neither does."""
    if all(_same(k, v) for k, v in zip(known, values)):
        return 0, name
    if not all(_number(v) and v >= 0 for v in values) or not all(_number(k) and k > 0 for k in known):
        return None
    if all(v % k == 0 and v for k, v in zip(known, values)):
        factors = {v // k for k, v in zip(known, values)}
        if len(factors) == 1:
            factor = factors.pop()
            return factor, f"{name} * {factor}"
    divisor = next((d for d in range(2, 9) if all(k // d == v for k, v in zip(known, values))), None)
    return (divisor, f"{name} // {divisor}") if divisor is not None else None


def _pairs(candidates: list) -> list:
    return [(a, b) for i, a in enumerate(candidates) for b in candidates[i + 1:]]


def _number(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _rename(text: str, names: dict[str, str]) -> str:
    return re.sub(r"\b[A-Za-z_]\w*\b", lambda m: names.get(m.group(0), m.group(0)), text)


def _fresh(base: str, taken) -> str:
    """`base` as torch.fx names a value: non-identifier characters as `_`, a leading digit prefixed, a keyword,
    builtin or taken name suffixed `_1`, `_2`, ..."""
    base = re.sub(r"\W", "_", base) or "_"
    if base[0].isdigit():
        base = f"_{base}"
    name, k = base, 0
    while name in taken or keyword.iskeyword(name):
        k += 1
        name = f"{base}_{k}"
    return name


def _fresh_class(base: str, taken: set[str]) -> str:
    name, k = base, 1
    while name in taken or name in RESERVED:
        k += 1
        name = f"{base}{k}"
    taken.add(name)
    return name


def _hint(values: list) -> str:
    """`: int`, `: bool`, ... for a parameter given values of one plain type (`: int | None` with None too)."""
    kinds = {type(v) for v in values if v is not None}
    if len(kinds) != 1 or not kinds <= {int, float, bool, str}:
        return ""
    return f": {kinds.pop().__name__}" + (" | None" if None in values else "")


def _literal(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    return repr(value)


@functools.cache
def _positional(cls: type) -> list[str]:
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _tensor_lines(value: TensorCall, depth: int) -> list[str]:
    """The source of a TensorCall, `torch.flatten(torch.arange(9))`; when it would pass LINE at `depth`
    indents, each argument on lines of its own, one indent deeper, as a formatter breaks a call."""
    args = [_tensor_lines(a, depth + 1) if isinstance(a, TensorCall) else [repr(a)] for a in value.args]
    args += [[f"{k}={line}" for line in _tensor_lines(v, depth + 1)] if isinstance(v, TensorCall)
             else [f"{k}={v!r}"] for k, v in value.kwargs.items()]
    flat = f"torch.{value.fn}({', '.join(a[0] for a in args)})"
    if all(len(a) == 1 for a in args) and len(INDENT * depth + flat) <= LINE:
        return [flat]
    lines = [f"torch.{value.fn}("]
    for arg in args:
        lines += [INDENT + line for line in arg[:-1]] + [f"{INDENT}{arg[-1]},"]
    return [*lines, ")"]


def _function_defaults(function) -> dict:
    """Default arguments of a torch function written in Python (`F.interpolate`); none for a builtin."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in parameters if p.default is not p.empty}


def _same(default, value) -> bool:
    return type(default) is type(value) and default == value


@functools.cache
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
    """A statement that would pass LINE at `depth` indents, broken after its torch call's `(`."""
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
