"""What changed between two architectures: layers added, removed and changed (matched by name), and the
params, MACs and output shape of each top-level item (a layer, a group, a block, a repeat) side by side,
with totals. Pure Python over the two Graphs and their costs (no torch).

    d = netspec.diff.diff(netspec.load("specs/resnet18.yaml"), netspec.load("specs/resnet34.yaml"))
    print(d.table())        # what `netspec diff A B` prints
    d.to_json()             # what `netspec diff A B --json` prints

A layer is *changed* when both specs have a layer of its name and its op, its resolved arguments or its
inputs differ (arguments: of another op, those both ops take; inputs: when both specs have the layers
named, so a block inserted before it is no change of it); a layer whose size changes only because its
input did (a batchnorm after a wider conv) is not, and shows in its item's numbers. Added and removed
layers are shown by the outermost group, block or repeat copy that is wholly new (`layer3.4`, a `basic`
block of 7 layers), else one by one. `expect:` is not checked: a diff is for specs whose numbers are
changing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .analysis import Analysis, LayerStats, layer_stats
from .arith import Shape, format_shape
from .graph import Graph, build_graph
from .report import human
from .spec import Spec


@dataclass(frozen=True)
class Side:
    """One top-level item in one spec: what it is, its costs and its output shape."""

    op: str  # a layer's label (`conv2d 7×7/2 · 64`), a block's name, `basic ×3` for a repeat, `group`
    params: int
    macs: int | None  # None when it depends on a symbolic dim
    output_shape: Shape

    def to_json(self) -> dict:
        return {"op": self.op, "params": self.params, "macs": self.macs, "output_shape": list(self.output_shape)}


@dataclass(frozen=True)
class Row:
    """A top-level item, by name, in each spec (None where a spec lacks it)."""

    name: str
    a: Side | None
    b: Side | None

    @property
    def mark(self) -> str:
        """`+` only in b, `-` only in a, `~` different, ` ` the same."""
        return "+" if self.a is None else "-" if self.b is None else " " if self.a == self.b else "~"

    def to_json(self) -> dict:
        return {"name": self.name, "a": self.a and self.a.to_json(), "b": self.b and self.b.to_json()}


@dataclass(frozen=True)
class Part:
    """Layers only one spec has: one layer, or a whole group, block or repeat copy."""

    name: str
    op: str
    layers: int
    params: int

    def to_json(self) -> dict:
        return {"name": self.name, "op": self.op, "layers": self.layers, "params": self.params}


@dataclass(frozen=True)
class Change:
    """A layer both specs have, whose op, arguments or inputs differ."""

    name: str
    op: tuple[str, str] | None  # (a, b) when the op differs
    args: dict[str, tuple[Any, Any]]  # argument (torch's name) -> (a, b), the ones that differ
    inputs: tuple[list[str], list[str]] | None  # when they differ

    def to_json(self) -> dict:
        return {"name": self.name, "op": self.op and list(self.op),
                "args": {k: list(v) for k, v in self.args.items()}, "inputs": self.inputs and list(self.inputs)}

    def __str__(self) -> str:
        parts = [f"{self.op[0]} → {self.op[1]}"] if self.op else []
        parts += [f"{k} {_value(a)} → {_value(b)}" for k, (a, b) in self.args.items()]
        if self.inputs:
            parts.append(f"from {', '.join(self.inputs[0])} → {', '.join(self.inputs[1])}")
        return "; ".join(parts)


@dataclass
class Diff:
    """Two architectures compared (a before, b after)."""

    a: Analysis
    b: Analysis
    rows: list[Row]
    added: list[Part] = field(default_factory=list)
    removed: list[Part] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """No layer added, removed or changed, and every item the same."""
        return not (self.added or self.removed or self.changed) and all(r.mark == " " for r in self.rows)

    def to_json(self) -> dict:
        outputs = {name: [_shape(self.a.outputs.get(name)), _shape(self.b.outputs.get(name))]
                   for name in {**self.a.outputs, **self.b.outputs}}
        return {
            "a": self.a.name, "b": self.b.name, "identical": self.identical,
            "totals": {"params": [self.a.total_params, self.b.total_params], "macs": [self.a.macs, self.b.macs],
                       "layers": [len(self.a.layers), len(self.b.layers)], "outputs": outputs},
            "rows": [r.to_json() for r in self.rows],
            "added": [p.to_json() for p in self.added],
            "removed": [p.to_json() for p in self.removed],
            "changed": [c.to_json() for c in self.changed],
        }

    def table(self) -> str:
        head = ("", "name", "op", "params a", "params b", "Δ params", "MACs a", "MACs b", "output")
        rows = [head] + [_cells(r) for r in self.rows]
        rows.append(("", "total", "", f"{self.a.total_params:,}", f"{self.b.total_params:,}",
                     _delta(self.a.total_params, self.b.total_params), human(self.a.macs), human(self.b.macs),
                     _outputs(self.a, self.b)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        rule = "  " + "  ".join("-" * w for w in widths[1:])
        lines = [f"a: {self.a.name} ({self.a.graph.spec.file})", f"b: {self.b.name} ({self.b.graph.spec.file})", ""]
        for k, row in enumerate(rows):
            if k == len(rows) - 1:
                lines.append(rule)
            cells = [c.rjust(w) if 3 <= i <= 7 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
            lines.append(f"{cells[0]} {'  '.join(cells[1:])}".rstrip())
            if k == 0:
                lines.append(rule)
        lines += ["", *_parts("added in b", self.added), *_parts("removed from a", self.removed)]
        lines.append(f"changed: {len(self.changed)} layer{'s' if len(self.changed) != 1 else ''}"
                     + ("" if self.changed else " (none)"))
        lines += [f"  {c.name}: {c}" for c in self.changed]
        if self.identical:
            lines.append("a and b are the same network")
        return "\n".join(lines)


def diff(a: Spec, b: Spec) -> Diff:
    """Compare spec `a` (before) with spec `b` (after). Raises SpecError(s) when either is invalid."""
    ra, rb = _analysis(a), _analysis(b)
    units_a, units_b = _units(ra), _units(rb)
    rows = [Row(name, units_a.get(name), units_b.get(name)) for name in _merged(list(units_a), list(units_b))]
    return Diff(ra, rb, rows, _only(rb, ra), _only(ra, rb), _changes(ra.graph, rb.graph))


def _analysis(spec: Spec) -> Analysis:
    """`netspec.analyze` without the `expect:` check."""
    graph = build_graph(spec)
    return Analysis(graph.name, graph, {k: tuple(v.shape) for k, v in graph.inputs.items()},
                    {k: graph.shape_of(v) for k, v in graph.outputs.items()}, layer_stats(graph))


def _units(result: Analysis) -> dict[str, Side]:
    """Each top-level item that made layers, by name, in order."""
    graph = result.graph
    groups: dict[str, list[LayerStats]] = {}
    for s in result.layers:
        groups.setdefault(_item(s.name), []).append(s)
    # the layers whose output leaves their item: a network output, or an input of another item's layer
    leaving = set(graph.outputs.values())
    leaving.update(i for node in graph.nodes.values() for i in node.inputs if _item(i) != _item(node.name))
    return {name: _side(graph, name, stats, leaving) for name, stats in groups.items()}


def _item(name: str) -> str:
    """The top-level item a layer belongs to (`layer1` of `layer1.0.conv1`)."""
    return name.split(".")[0]


def _side(graph: Graph, name: str, stats: list[LayerStats], leaving: set[str]) -> Side:
    """The item's costs, and the output shape of its last layer whose output leaves it."""
    out = next((s for s in reversed(stats) if s.name in leaving), stats[-1])
    macs = None if any(s.macs is None for s in stats) else sum(s.macs for s in stats)
    return Side(_label(graph, name, stats), sum(s.params for s in stats), macs, out.output_shape)


def _label(graph: Graph, name: str, stats: list[LayerStats]) -> str:
    scope = graph.scopes.get(name)
    if scope is None:
        return stats[0].label
    what = scope.op or scope.kind
    return f"{what} ×{scope.repeat}" if scope.kind == "repeat" else what


def _merged(a: list[str], b: list[str]) -> list[str]:
    """b's names in order, each name only a has placed after the name before it in a."""
    order = list(b)
    for i, name in enumerate(a):
        if name not in order:
            before = next((m for m in reversed(a[:i]) if m in order), None)
            order.insert(order.index(before) + 1 if before is not None else 0, name)
    return order


def _only(mine: Analysis, other: Analysis) -> list[Part]:
    """The layers of `mine` that `other` lacks, each under the outermost scope that `other` lacks too."""
    parts: dict[str, list[LayerStats]] = {}
    for s in mine.layers:
        if s.name in other.graph.nodes:
            continue
        key, scope = s.name, s.scope
        while scope is not None and scope not in other.graph.scopes and scope not in other.graph.nodes:
            key, scope = scope, mine.graph.scopes[scope].parent
        parts.setdefault(key, []).append(s)
    return [Part(key, _label(mine.graph, key, stats), len(stats), sum(s.params for s in stats))
            for key, stats in parts.items()]


def _changes(a: Graph, b: Graph) -> list[Change]:
    """The layers both graphs have whose op, arguments or inputs differ. Inputs count as changed only when
    both graphs have every input named (else a layer added or removed before it explains the change)."""

    def shared(name: str) -> bool:
        return (name in a.nodes or name in a.inputs) and (name in b.nodes or name in b.inputs)

    out = []
    for name, na in a.nodes.items():
        nb = b.nodes.get(name)
        if nb is None:
            continue
        args_a, args_b = na.args.model_dump(), nb.args.model_dump()
        op = (na.op, nb.op) if na.op != nb.op else None
        args = {k: (v, args_b[k]) for k, v in args_a.items() if k in args_b and v != args_b[k]}  # of both ops
        rewired = na.inputs != nb.inputs and all(map(shared, [*na.inputs, *nb.inputs]))
        inputs = (list(na.inputs), list(nb.inputs)) if rewired else None
        if op or args or inputs:
            out.append(Change(name, op, args, inputs))
    return out


def _cells(row: Row) -> tuple[str, ...]:
    a, b = row.a, row.b
    op = a.op if b is None else b.op if a is None or a.op == b.op else f"{a.op} → {b.op}"
    shape = [format_shape(s.output_shape) for s in (a, b) if s is not None]
    return (row.mark, row.name, op, _int(a and a.params), _int(b and b.params),
            _delta(a.params if a else 0, b.params if b else 0), human(a.macs) if a else "-",
            human(b.macs) if b else "-", shape[0] if len(set(shape)) == 1 else " → ".join(shape))


def _outputs(a: Analysis, b: Analysis) -> str:
    def text(result: Analysis) -> str:
        return ", ".join(format_shape(s) if list(result.outputs) == ["output"] else f"{n} {format_shape(s)}"
                         for n, s in result.outputs.items())

    return text(a) if text(a) == text(b) else f"{text(a)} → {text(b)}"


def _parts(title: str, parts: list[Part]) -> list[str]:
    if not parts:
        return [f"{title}: none"]
    layers, params = sum(p.layers for p in parts), sum(p.params for p in parts)
    lines = [f"{title}: {layers} layer{'s' if layers != 1 else ''}, {params:,} params"]
    width = max(len(p.name) for p in parts)
    lines += [f"  {p.name.ljust(width)}  {p.op}: {p.layers} layer{'s' if p.layers != 1 else ''}, {p.params:,} params"
              for p in parts]
    return lines


def _int(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _delta(a: int, b: int) -> str:
    return "" if a == b else f"{b - a:+,}"


def _value(v: Any) -> str:
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def _shape(shape: Shape | None) -> list | None:
    return None if shape is None else list(shape)
