"""Draw a Graph with graphviz: one box per layer, edges labelled with the shapes they carry.

Pure Python over the Graph (no torch). Blocks, groups and repeats are clusters;
`depth` collapses every scope nested deeper than `depth` levels into one node
(block name, repeat count, in → out shape, totals). Colours come from each
layer's `entry.family`, labels from `entry.label`: nothing here knows an op by
name. An invalid graph (`build_graph(strict=False)`) is drawn up to its errors:
the failing layers and the edges into them in red, with the messages attached.
See docs/drawing.md.
"""

from __future__ import annotations

import textwrap
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import graphviz

from .analysis import LayerStats, layer_stats
from .arith import format_shape
from .errors import SpecError
from .files import atomic_write
from .graph import Graph, Scope, build_graph
from .report import human
from .spec import Spec

FORMATS = ("dot", "svg", "png", "pdf")
SHOW = ("params", "macs", "rf")
MAX_NODES = 50  # the default depth is the deepest whose drawing has at most this many nodes
PNG_DPI = 150
INSTALL_HINT = "install graphviz for the `dot` program (Debian/Ubuntu: apt-get install graphviz)"

FONT = "Helvetica,Arial,sans-serif"
INK, MUTED, EDGE, SKIP, ERROR = "#333333", "#6b6b6b", "#7a7a7a", "#3f6fb0", "#c0392b"
IO_FILL, BLOCK_FILL, UNKNOWN_FILL = "#3d4752", "#dfe6ee", "#ffffff"
CLUSTER_FILLS = ("#f7f7f5", "#efefec")  # alternating by nesting level
FAMILY_COLORS = {  # muted fills, one per layer family
    "linear": "#f3d9a4", "conv": "#a9c8e4", "pool": "#bfe0c3", "norm": "#ddd3ec",
    "activation": "#f4e6dc", "merge": "#fbeaa0", "reshape": "#e2e2e2", "recurrent": "#f1b9b9",
    "attention": "#cdb8e0", "embedding": "#b8e0d8", "generative": "#f6c8dc", "regularization": "#ececec",
}
SPARE_COLORS = ("#c8d8b0", "#e8c7a8", "#b5d3e7", "#e3c8e8", "#d6d6b0", "#b9dcc9")


class GraphvizMissing(RuntimeError):
    """The `dot` program is not installed (`draw` writes the `.dot` source instead)."""


def draw(spec_or_graph: Spec | Graph, path: str | Path, depth: int | None = None, rankdir: str = "TB",
         show: Iterable[str] = ("params",), errors: Iterable[SpecError] | None = None,
         stats: Iterable[LayerStats] | None = None) -> Path:
    """Write the diagram to `path`: `.dot`, `.svg`, `.png` or `.pdf` by its ending.

    `depth`: how many levels of blocks/groups/repeats stay open (0: every top-level
    block is one node; None: the deepest level drawn in at most MAX_NODES nodes).
    `show`: what each node lists besides its op: any of params, macs, rf.
    `errors`: the errors to mark (default: the graph's own).
    `stats`: the graph's `layer_stats`, when the caller has them (default: computed here).
    Raises GraphvizMissing, after writing `<path>.dot`, when `dot` is not installed.
    Every file is written atomically (`netspec.files.atomic_write`): graphviz renders to memory
    (`pipe`), never to files of its own beside `path`.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"cannot draw to `{path.name}`: the ending must be one of "
                         f"{', '.join('.' + f for f in FORMATS)}")
    dot = to_dot(spec_or_graph, depth, rankdir, show, errors, stats)
    try:
        data = render(dot, fmt)
    except GraphvizMissing:
        fallback = atomic_write(path.with_suffix(".dot"), dot.source)
        raise GraphvizMissing(f"cannot write {path}: the `dot` program is missing; wrote {fallback} "
                              f"instead — {INSTALL_HINT}") from None
    return atomic_write(path, data)


def render(dot: graphviz.Digraph, fmt: str) -> str | bytes:
    """The diagram in `fmt` (one of FORMATS): the DOT source as text, else what graphviz's `dot` renders.
    Raises GraphvizMissing when `dot` is not installed."""
    if fmt == "dot":
        return dot.source
    if fmt == "png":
        dot.graph_attr["dpi"] = str(PNG_DPI)
    try:
        return dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise GraphvizMissing(f"cannot draw {fmt}: the `dot` program is missing — {INSTALL_HINT}") from None


def to_dot(spec_or_graph: Spec | Graph, depth: int | None = None, rankdir: str = "TB",
           show: Iterable[str] = ("params",), errors: Iterable[SpecError] | None = None,
           stats: Iterable[LayerStats] | None = None) -> graphviz.Digraph:
    """The diagram as a graphviz Digraph (see `draw`)."""
    graph = spec_or_graph if isinstance(spec_or_graph, Graph) else build_graph(spec_or_graph, strict=False)
    show = tuple(show)
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"rankdir must be TB or LR, got `{rankdir}`")
    if unknown := [s for s in show if s not in SHOW]:
        raise ValueError(f"cannot show {', '.join(unknown)}; choose from {', '.join(SHOW)}")
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be 0 or more, got {depth}")
    view = _View(graph, list(graph.errors if errors is None else errors),
                 {s.name: s for s in (layer_stats(graph) if stats is None else stats)})
    view.collapse(_auto_depth(view) if depth is None else depth)
    return _Emitter(view, rankdir, show).digraph()


# ---- what is shown: which layers are visible, which scopes collapse ----------------------------------------


@dataclass
class _View:
    """The graph's items grouped by scope, the errors placed on items, and the chosen collapse."""

    graph: Graph
    errors: list[SpecError]
    stats: dict[str, LayerStats]  # layer name -> its costs (layers whose shapes are known)
    chains: dict[str, list[str]] = field(init=False)  # item -> its scopes, outermost first
    scope_members: dict[str, list[str]] = field(init=False)  # scope -> the items inside it, at any depth
    failing: dict[str, list[SpecError]] = field(init=False)  # item -> the errors it caused
    loose: list[SpecError] = field(init=False)  # errors no drawn item explains
    keep: set[str] = field(init=False)  # scopes holding a failing item: never collapsed
    rep: dict[str, str] = field(init=False)  # item -> the drawn node standing for it
    _crossings: dict[str, tuple[list, list]] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        graph = self.graph
        self.chains = {name: _chain(graph, name) for name in [*graph.inputs, *graph.nodes, *graph.invalid]}
        self.scope_members = {}
        for name, chain in self.chains.items():
            for scope in chain:
                self.scope_members.setdefault(scope, []).append(name)
        self.failing, self.loose = {}, []
        for err in self.errors:
            culprit = next((n for n in self.chains if self._fails(n) and _within(err.path, self.path(n))), None)
            if culprit is None:
                self.loose.append(err)
            else:
                self.failing.setdefault(culprit, []).append(err)
        self.keep = {scope for name in self.failing for scope in self.chains[name]}

    def path(self, name: str) -> tuple | None:
        """The spec path of an item or scope (None for an input)."""
        for table in (self.graph.nodes, self.graph.scopes):
            if name in table:
                return table[name].path
        bad = self.graph.invalid.get(name)
        return bad.path if bad else None

    def _fails(self, name: str) -> bool:
        """An invalid item, or a layer whose inputs are known but whose own shape is not."""
        node = self.graph.nodes.get(name)
        if node is None:
            return name in self.graph.invalid
        return node.shape is None and all(s is not None for s in node.in_shapes)

    def collapse(self, depth: int) -> None:
        self.rep = {name: _representative(name, chain, depth, self.keep)
                    for name, chain in self.chains.items()}

    def visible(self) -> list[str]:
        return list(dict.fromkeys(self.rep.values()))

    def members(self, scope: str) -> list[str]:
        return self.scope_members.get(scope, [])

    def crossing(self, scope: str, into: bool) -> list:
        """Shapes of the edges entering (or leaving) a scope, and of outputs inside it; every scope's
        are found in one pass over the edges, on first use."""
        if self._crossings is None:
            enter: dict[str, dict] = {}
            leave: dict[str, dict] = {}
            for u, v, _, shape in self.edges():
                tail, head = self.chains.get(u, []), self.chains.get(v, [])
                shared = 0  # chains are paths down the scope tree: they differ after a common prefix
                while shared < min(len(tail), len(head)) and tail[shared] == head[shared]:
                    shared += 1
                for s in head[shared:]:
                    enter.setdefault(s, {})[shape] = None
                for s in tail[shared:]:
                    leave.setdefault(s, {})[shape] = None
            for node in self.graph.outputs.values():
                for s in self.chains.get(node, []):
                    leave.setdefault(s, {})[self.graph.shape_of(node)] = None
            self._crossings = {s: (list(enter.get(s, ())), list(leave.get(s, ()))) for s in self.graph.scopes}
        into_shapes, out_shapes = self._crossings.get(scope, ([], []))
        return into_shapes if into else out_shapes

    def parent(self, item: str) -> str | None:
        """The scope a drawn item sits in (None: top level)."""
        if item in self.chains:
            chain = self.chains[item]
            return chain[-1] if chain else None
        return self.graph.scopes[item].parent

    def edges(self) -> Iterator[tuple[str, str, int, Any]]:
        """(source, item, input index, shape) of every input of a layer or an invalid item."""
        for target, sources in self.graph.edges():
            for i, src in enumerate(sources):
                yield src, target, i, self.graph.shape_of(src)


def _chain(graph: Graph, name: str) -> list[str]:
    """The scopes enclosing an item, outermost first."""
    if name in graph.nodes:
        scope = graph.nodes[name].scope
    else:  # inputs and invalid items: the longest enclosing scope by name
        scope = max((s for s in graph.scopes if name.startswith(s + ".")), key=len, default=None)
    chain = []
    while scope is not None:
        chain.append(scope)
        scope = graph.scopes[scope].parent
    return chain[::-1]


def _representative(name: str, chain: list[str], depth: int, keep: set[str]) -> str:
    """The outermost scope nested deeper than `depth` (and not kept open), else the node itself."""
    for level, scope in enumerate(chain):
        if level >= depth and scope not in keep:
            return scope
    return name


def _auto_depth(view: _View) -> int:
    deepest = max((len(chain) for chain in view.chains.values()), default=0)
    for depth in range(deepest, 0, -1):
        view.collapse(depth)
        if len(view.visible()) + len(view.graph.outputs) <= MAX_NODES:
            return depth
    return 0


def _within(error_path: tuple, node_path: tuple | None) -> bool:
    return node_path is not None and error_path[:len(node_path)] == tuple(node_path)


# ---- how it is shown: DOT ----------------------------------------------------------------------------------


class _Emitter:
    def __init__(self, view: _View, rankdir: str, show: tuple[str, ...]):
        self.view, self.graph, self.rankdir, self.show = view, view.graph, rankdir, show
        self.families: dict[str, str] = {}  # family -> colour, in order of appearance
        self.skips = False  # whether a skip edge was drawn (for the legend)

    def digraph(self) -> graphviz.Digraph:
        dot = graphviz.Digraph(self.graph.name, graph_attr=self._graph_attr(),
                               node_attr=dict(shape="box", style="rounded,filled", fontname=FONT,
                                              fontsize="10", fontcolor=INK, color=MUTED, penwidth="0.8",
                                              margin="0.12,0.05", height="0.3"),
                               edge_attr=dict(fontname=FONT, fontsize="8", fontcolor=MUTED, color=EDGE,
                                              penwidth="0.8", arrowsize="0.6"))
        tree = self._tree()
        self._emit_scope(dot, None, tree, 0)
        for name, node in self.graph.outputs.items():
            self._output(dot, name, node)
        self._edges(dot)
        dot.graph_attr["label"] = self._caption()
        return dot

    def _graph_attr(self) -> dict[str, str]:
        return dict(rankdir=self.rankdir, fontname=FONT, fontsize="10", fontcolor=INK, nodesep="0.25",
                    ranksep="0.3", labelloc="b", labeljust="l", newrank="true", bgcolor="white")

    def _tree(self) -> dict[str | None, list[str]]:
        """Drawn items (nodes and open scopes) by the scope holding them, each once."""
        tree: dict[str | None, dict[str, None]] = {}  # ordered sets
        for item in self.view.visible():
            parent = self.view.parent(item)
            tree.setdefault(parent, {})[item] = None
            while parent is not None:
                grand = self.graph.scopes[parent].parent
                siblings = tree.setdefault(grand, {})
                if parent in siblings:
                    break
                siblings[parent] = None
                parent = grand
        return {scope: list(items) for scope, items in tree.items()}

    def _emit_scope(self, dot: graphviz.Digraph, scope: str | None, tree: dict, level: int) -> None:
        for item in tree.get(scope, []):
            if item not in tree:
                self._node(dot, item, scope)
                continue
            with dot.subgraph(name=f"cluster_{item}") as sub:  # an open scope: a cluster
                sub.attr(label=self._cluster_label(item), style="rounded,filled", color="#c8c8c4",
                         fillcolor=CLUSTER_FILLS[level % 2], penwidth="0.6", fontsize="9",
                         fontcolor=MUTED, labeljust="l", labelloc="t", margin="10")
                self._emit_scope(sub, item, tree, level + 1)
                if item in self.view.chains:  # also an item that failed (a block whose `output:` names
                    self._node(sub, item, scope)  # nothing): drawn once, inside its cluster

    # ---- nodes

    def _node(self, dot: graphviz.Digraph, item: str, scope: str | None) -> None:
        local = item[len(scope) + 1:] if scope else item
        if item in self.graph.inputs:
            dot.node(item, _html([_bold(item, "white"), _small(format_shape(self.graph.shape_of(item)),
                                                              "#d8dde3")]),
                     fillcolor=IO_FILL, color=IO_FILL)
        elif item not in self.view.chains:
            self._collapsed(dot, item)
        elif item in self.graph.nodes:
            self._layer(dot, item, local)
        else:
            self._invalid(dot, item, local)

    def _layer(self, dot: graphviz.Digraph, name: str, local: str) -> None:
        node = self.graph.nodes[name]
        family = node.entry.family
        lines = _title(local, node.label)
        stats = self.view.stats.get(name)
        lines += [_small(s) for s in self._figures(stats, node.frozen)]
        attrs = dict(fillcolor=self._colour(family), tooltip=f"{name}: {node.label}")
        if name in self.view.failing:
            lines += self._messages(name)
            attrs.update(color=ERROR, penwidth="1.6", fillcolor="#fbe4e1")
        elif node.shape is None:  # downstream of an error: not checked
            attrs.update(style="rounded,dashed", color="#b0b0b0", fontcolor="#9a9a9a")
        dot.node(name, _html(lines), **attrs)

    def _invalid(self, dot: graphviz.Digraph, name: str, local: str) -> None:
        if name in self.view.failing:
            dot.node(name, _html([_bold(local)] + self._messages(name)), color=ERROR, penwidth="1.6",
                     fillcolor="#fbe4e1")
        else:
            dot.node(name, _html([_bold(local), _small("not checked")]), style="rounded,dashed",
                     color="#b0b0b0", fontcolor="#9a9a9a", fillcolor=UNKNOWN_FILL)

    def _collapsed(self, dot: graphviz.Digraph, scope: str) -> None:
        members = self.view.members(scope)
        stats = [self.view.stats[m] for m in members if m in self.view.stats]
        flow = f"{self._shapes(scope, into=True)} → {self._shapes(scope, into=False)}"
        kind = _scope_kind(self.graph.scopes[scope])
        lines = [_bold(scope)] + ([escape(kind)] if kind else []) + [escape(flow)]
        attrs = dict(fillcolor=BLOCK_FILL, penwidth="1.2", color="#8797a8", tooltip=f"{scope}: {len(members)} layers")
        if stats:
            lines += [_small(s) for s in self._totals(stats, len(stats) < len(members))]
        else:  # downstream of an error: not checked
            lines.append(_small("not checked"))
            attrs.update(style="rounded,dashed", color="#b0b0b0", fontcolor="#9a9a9a", fillcolor=UNKNOWN_FILL)
        dot.node(scope, _html(lines), **attrs)
        self.families.setdefault("block (collapsed)", BLOCK_FILL)

    def _output(self, dot: graphviz.Digraph, name: str, node: str) -> None:
        marker = f"{name}@output"
        shape = self.graph.shape_of(node) if node in self.graph.inputs or node in self.graph.nodes else None
        lines = [_bold(name, "white")] + ([_small("output", "#d8dde3")] if name != "output" else [])
        dot.node(marker, _html(lines), fillcolor=IO_FILL, color=IO_FILL)
        dot.edge(self.view.rep[node], marker, label=_shape_label(shape))

    def _figures(self, stats: LayerStats | None, frozen: bool) -> list[str]:
        if stats is None:
            return []
        figures = []
        if "params" in self.show and stats.params:
            figures.append(f"{human(stats.params)} params" + (" (frozen)" if frozen else ""))
        if "macs" in self.show and stats.macs != 0:
            figures.append(f"{human(stats.macs)} MACs")
        if "rf" in self.show and stats.receptive_field is not None:
            figures.append(f"RF {stats.receptive_field}")
        return figures

    def _totals(self, stats: list[LayerStats], partial: bool) -> list[str]:
        figures = []
        if "params" in self.show:
            figures.append(f"{human(sum(s.params for s in stats))} params" + (" (so far)" if partial else ""))
        if "macs" in self.show:
            macs = [s.macs for s in stats]
            figures.append(f"{human(None if None in macs else sum(macs))} MACs")
        if "rf" in self.show and stats and stats[-1].receptive_field is not None:
            figures.append(f"RF {stats[-1].receptive_field} at its output")
        return figures

    def _messages(self, name: str) -> list[str]:
        lines = []
        for err in self.view.failing[name]:
            where = f"line {err.mark.line}: " if err.mark else ""
            lines += [_small(line, ERROR) for line in textwrap.wrap(where + err.message, 48)]
        return lines

    def _colour(self, family: str) -> str:
        if family not in self.families:
            spare = SPARE_COLORS[zlib.crc32(family.encode()) % len(SPARE_COLORS)]
            self.families[family] = FAMILY_COLORS.get(family, spare)
        return self.families[family]

    def _cluster_label(self, scope: str) -> str:
        kind = _scope_kind(self.graph.scopes[scope])
        return _html([f"<b>{escape(scope)}</b>" + (f" · {escape(kind)}" if kind else "")])

    # ---- edges

    def _shapes(self, scope: str, into: bool) -> str:
        return ", ".join(_shape_label(s) for s in self.view.crossing(scope, into)) or "—"

    def _edges(self, dot: graphviz.Digraph) -> None:
        seen = set()
        for u, v, index, shape in self.view.edges():
            tail, head = self.view.rep[u], self.view.rep[v]
            if tail != head and (tail, head) not in seen:
                seen.add((tail, head))
                dot.edge(tail, head, label=_shape_label(shape), **self._edge_style(v, head, index, shape))

    def _edge_style(self, target: str, head: str, index: int, shape) -> dict[str, str]:
        if target in self.view.failing:
            return dict(color=ERROR, fontcolor=ERROR, penwidth="1.4")
        if shape is None:
            return dict(color="#b0b0b0", style="dashed")
        if target == head and index > 0:  # a merge's later input: the skip path
            self.skips = True
            return dict(color=SKIP, fontcolor=SKIP, style="dashed", weight="0")
        return dict(weight="4")

    def _caption(self) -> str:
        """The network's name and totals, the family legend, and errors no node explains."""
        stats = list(self.view.stats.values())
        title = f"<b>{escape(self.graph.name)}</b>   {human(sum(s.params for s in stats))} params"
        macs = [s.macs for s in stats]
        if "macs" in self.show:
            title += f" · {human(None if None in macs else sum(macs))} MACs"
        rows = [title, *self._legend()]
        rows += [f"<font point-size='9' color='{ERROR}'>{escape(err.location)}: error: {escape(err.message)}</font>"
                 for err in self.view.loose]
        cells = "".join(f"<tr><td align='left'>{row}</td></tr>" for row in rows)
        return f"<<table border='0' cellspacing='2' cellpadding='1'>{cells}</table>>"

    def _legend(self) -> list[str]:
        """A grid of colour swatches, six a row, ending with the skip edges' line style."""
        items = [_legend_item(f"<td bgcolor='{colour}' width='14' height='9' fixedsize='true'></td>", family)
                 for family, colour in self.families.items()]
        if self.skips:
            dashes = f"<td width='14' height='9' fixedsize='true'><font point-size='8' color='{SKIP}'>╌╌</font></td>"
            items.append(_legend_item(dashes, "skip / merge input"))
        rows = ["<tr>" + "".join(items[i:i + 6]) + "<td></td><td></td>" * (i + 6 - len(items)) + "</tr>"
                for i in range(0, len(items), 6)]
        return [f"<table border='0' cellspacing='3' cellpadding='0'>{''.join(rows)}</table>"] if rows else []


def _legend_item(swatch: str, text: str) -> str:
    return f"{swatch}<td align='left'><font point-size='8' color='{MUTED}'>{escape(text)}</font></td>"


def _scope_kind(scope: Scope) -> str:
    """`basic ×6` for a repeat, the block's type for a block, nothing for a group."""
    if scope.kind == "repeat":
        return f"{scope.op or ''} ×{scope.repeat}".strip()
    return scope.op or ""


def _shape_label(shape) -> str:
    return format_shape(shape) if shape is not None else "?"


def _html(lines: list[str]) -> str:
    return "<" + "<br/>".join(lines) + ">"


def _title(local: str, label: str) -> list[str]:
    """Name over op label; an unnamed layer (a position number) shares one line with its op."""
    if local.isdigit():
        return [f"<font color='{MUTED}'>{local}</font>  {escape(label)}"]
    return [_bold(local)] + ([escape(label)] if label != local else [])


def _bold(text: str, colour: str = INK) -> str:
    return f"<font color='{colour}'><b>{escape(text)}</b></font>"


def _small(text: str, colour: str = MUTED) -> str:
    return f"<font point-size='8' color='{colour}'>{escape(text)}</font>"
