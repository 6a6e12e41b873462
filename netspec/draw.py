"""Draw a Graph with graphviz: one box per layer, edges labelled with the shapes they carry.

Pure Python over the Graph (no torch). Blocks, groups and repeats are clusters;
`depth` collapses every scope nested deeper than `depth` levels into one node
(block name, repeat count, in → out shape, totals), and with it every other
instance of the same block type. `layout` fits the page: long chains wrap into
side-by-side columns, an encoder–decoder with nested skips is drawn as a U
(`_Plan`). Colours come from each
layer's `entry.family`, labels from `entry.label`: nothing here knows an op by
name. An invalid graph (`build_graph(strict=False)`) is drawn up to its errors:
the failing layers and the edges into them in red, with the messages attached.
See docs/drawing.md.
"""

from __future__ import annotations

import math
import textwrap
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
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
FIGURES = "#444444"  # a layer's figures on its family's fill: MUTED on olive or blue was 2.2:1 contrast, this 3.9:1
IO_FILL, BLOCK_FILL, UNKNOWN_FILL = "#3d4752", "#ffffff", "#ffffff"
BLOCK_BORDER = "#3d4752"  # a collapsed block: white, with a dark double border
CLUSTER_FILLS = ("#f7f7f5", "#efefec")  # alternating by nesting level
# One fill per layer family: the nine colours of Paul Tol's colour-blind-safe "light" scheme (Tol, "Colour
# Schemes", SRON/EPS/TN/09-002, 2021, made for boxes with black text), then three rare families drawn white
# with a coloured border so that no two families share a look. docs/drawing.md lists them.
FAMILY_COLORS = {
    "conv": "#77aadd", "activation": "#99ddff", "linear": "#ee8866", "norm": "#eedd88", "pool": "#44bb99",
    "merge": "#ffaabb", "recurrent": "#bbcc33", "attention": "#aaaa00", "reshape": "#dddddd",
    "regularization": "#ffffff", "embedding": "#ffffff", "generative": "#ffffff",
}
FAMILY_BORDERS = {"regularization": "#888888", "embedding": "#aaaa00", "generative": "#ee8866"}
FAMILY_STYLES = {"regularization": "rounded,filled,dotted", "embedding": "rounded,filled,bold",
                 "generative": "rounded,filled,bold"}
SPARE_COLORS = ("#bbccee", "#cceeff", "#ccddaa", "#eeeebb", "#ffcccc")  # Tol's "pale" scheme, less grey
LAYOUTS = ("auto", "column", "wrap", "u")
PAGE = 1.3  # the height:width a wrapped drawing aims at (a page, portrait)
LONG_CLUSTER = 12  # a cluster of layers only is wrapped in columns of its own when longer than this
SHORT_CHAIN = 8  # the top level stays one column when at most this tall (a page holds it; wrapped, it zigzags)
NODE_HEIGHT, COLUMN_WIDTH = 0.85, 2.3  # inches a layer takes down a column (with its edge) and across
MAX_RANKS = 18  # the default collapse also keeps the drawing at most this many nodes tall
MAX_COLUMNS = 5  # ... and at most this many columns wide (ResNet-101 opened was 7 columns, 19 inches)


class GraphvizMissing(RuntimeError):
    """The `dot` program is not installed (`draw` writes the `.dot` source instead)."""


def draw(spec_or_graph: Spec | Graph, path: str | Path, depth: int | None = None, rankdir: str = "TB",
         show: Iterable[str] = ("params",), errors: Iterable[SpecError] | None = None,
         stats: Iterable[LayerStats] | None = None, layout: str = "auto") -> Path:
    """Write the diagram to `path`: `.dot`, `.svg`, `.png` or `.pdf` by its ending.

    `depth`: how many levels of blocks/groups/repeats stay open (0: every top-level
    block is one node; None: the deepest level drawn in at most MAX_NODES nodes, MAX_RANKS
    ranks and MAX_COLUMNS columns). Every instance of a block type is drawn the same way: open, or collapsed.
    `layout`: one of LAYOUTS — `column` (one chain), `wrap` (long chains wrapped into side-by-side
    columns, see `_Plan`), `u` (an encoder down the left, the decoder up the right, the
    skip connections across), `auto` (`u` when the top level has two or more nested skip
    connections, else `wrap`).
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
    dot = to_dot(spec_or_graph, depth, rankdir, show, errors, stats, layout)
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
           stats: Iterable[LayerStats] | None = None, layout: str = "auto") -> graphviz.Digraph:
    """The diagram as a graphviz Digraph (see `draw`)."""
    graph = spec_or_graph if isinstance(spec_or_graph, Graph) else build_graph(spec_or_graph, strict=False)
    show = tuple(show)
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"rankdir must be TB or LR, got `{rankdir}`")
    if unknown := [s for s in show if s not in SHOW]:
        raise ValueError(f"cannot show {', '.join(unknown)}; choose from {', '.join(SHOW)}")
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be 0 or more, got {depth}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got `{layout}`")
    view = _View(graph, list(graph.errors if errors is None else errors),
                 {s.name: s for s in (layer_stats(graph) if stats is None else stats)})
    if depth is None:
        view.collapse(_auto_depth(view, layout), fold=True)
    else:
        view.collapse(depth)
    return _Emitter(view, rankdir, show, _Plan(view, layout)).digraph()


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

    def collapse(self, depth: int, fold: bool = False) -> None:
        """Collapse every scope nested `depth` levels deep or deeper, and with it every other instance of
        the same block type (and every group of the same name in it), wherever it is nested: copies of a
        block are all drawn open or all collapsed. `fold` (the default depth): a repeat whose copies are
        all collapsed and alike (the same shapes in and out, the same parameter count) is one node."""
        scopes = self.graph.scopes
        closed = {name for name in scopes if _level(self.graph, name) >= depth}
        kinds = {_kind(self.graph, name) for name in closed} - {None}
        closed |= {name for name in scopes if _kind(self.graph, name) in kinds}
        if fold:
            closed |= {name for name, scope in scopes.items() if scope.kind == "repeat" and self._alike(name, closed)}
        self.rep = {name: next((s for s in chain if s in closed and s not in self.keep), name)
                    for name, chain in self.chains.items()}

    def _alike(self, repeat: str, closed: set[str]) -> bool:
        copies = [name for name, scope in self.graph.scopes.items() if scope.parent == repeat]
        looks = {(tuple(self.crossing(c, True)), tuple(self.crossing(c, False)),
                  sum(self.stats[m].params for m in self.members(c) if m in self.stats)) for c in copies}
        return bool(copies) and set(copies) <= closed and len(looks) == 1

    def tree(self) -> dict[str | None, list[str]]:
        """Drawn items (nodes and open scopes) by the scope holding them, each once, in graph order."""
        tree: dict[str | None, dict[str, None]] = {}  # ordered sets
        for item in self.visible():
            parent = self.parent(item)
            tree.setdefault(parent, {})[item] = None
            while parent is not None:
                grand = self.graph.scopes[parent].parent
                siblings = tree.setdefault(grand, {})
                if parent in siblings:
                    break
                siblings[parent] = None
                parent = grand
        return {scope: list(items) for scope, items in tree.items()}

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


def _level(graph: Graph, scope: str) -> int:
    """How many scopes enclose `scope` (0: a top-level block, group or repeat)."""
    level, parent = 0, graph.scopes[scope].parent
    while parent is not None:
        level, parent = level + 1, graph.scopes[parent].parent
    return level


def _kind(graph: Graph, scope: str) -> tuple | None:
    """What makes two scopes copies of one another: a block's type; a group's name within the nearest
    enclosing block's type (`downsample` in `basic`). None for a repeat, and for a group in no block."""
    node = graph.scopes[scope]
    if node.kind == "block" and node.op:
        return ("block", node.op)
    if node.kind == "group":
        parent = node.parent
        while parent is not None and graph.scopes[parent].kind != "block":
            parent = graph.scopes[parent].parent
        if parent is not None and graph.scopes[parent].op:
            return ("group", graph.scopes[parent].op, scope[len(parent) + 1:])
    return None


def _auto_depth(view: _View, layout: str) -> int:
    """The deepest depth whose drawing has at most MAX_NODES nodes and, laid out, MAX_RANKS ranks and
    MAX_COLUMNS columns."""
    deepest = max((len(chain) for chain in view.chains.values()), default=0)
    for depth in range(deepest, 0, -1):
        view.collapse(depth, fold=True)
        plan = _Plan(view, layout)
        if (len(view.visible()) + len(view.graph.outputs) <= MAX_NODES and plan.height <= MAX_RANKS
                and plan.width <= MAX_COLUMNS):
            return depth
    return 0


def _columns(items: list[str], heights: list[float], tail: list[float],
             widths: dict[str, int]) -> list[list[str]]:
    """`items` cut into the number of columns whose drawing comes closest to PAGE (height over width), its
    size estimated from NODE_HEIGHT and COLUMN_WIDTH (a column as wide as its widest item, `widths`, 1 by
    default), among the cuts whose columns are even (none shorter than a third of the tallest); `tail`: the
    heights of what follows the last column (the output markers). Fewer columns win a tie."""
    place = dict(zip(items, heights))

    def misfit(columns: list[list[str]]) -> float:
        tallest = max(sum(place[item] for item in column) for column in columns) + sum(tail)
        wide = sum(max(widths.get(item, 1) for item in column) for column in columns)
        return abs(math.log(tallest * NODE_HEIGHT / (wide * COLUMN_WIDTH) / PAGE))

    def even(columns: list[list[str]]) -> bool:  # no column shorter than a third of the tallest
        sizes = [sum(place[item] for item in column) for column in columns]
        return min(sizes) * 3 >= max(sizes)

    options = [_partition(items, heights, count) for count in range(1, min(len(items), 12) + 1)]
    return min((option for option in options if even(option)), key=misfit, default=[items])


def _partition(items: list[str], heights: list[float], count: int) -> list[list[str]]:
    """`items` cut, in order, into at most `count` runs whose tallest is as short as can be: the smallest
    capacity (to a hundredth of an item) that a greedy packing fits into `count` runs, found by bisection."""
    def pack(capacity: float) -> list[list[str]]:
        runs: list[list[str]] = [[]]
        height = 0.0
        for item, h in zip(items, heights):
            if runs[-1] and height + h > capacity:
                runs.append([])
                height = 0.0
            runs[-1].append(item)
            height += h
        return runs

    low, high = max(heights, default=0.0), sum(heights)
    while high - low > 0.01:
        middle = (low + high) / 2
        low, high = (low, middle) if len(pack(middle)) <= count else (middle, high)
    return pack(high)


def _within(error_path: tuple, node_path: tuple | None) -> bool:
    return node_path is not None and error_path[:len(node_path)] == tuple(node_path)


# ---- where it is shown: the layout ------------------------------------------------------------------------


class _Plan:
    """Where the drawn items go, as ranking constraints on top of dot's own layout.

    `wrap`: the top level's items, when taller than SHORT_CHAIN (and the layers of a cluster of layers only,
    when longer than LONG_CLUSTER), are cut, in order, into the number of columns that brings the drawing
    closest to PAGE (`_columns`), set side by side: the first node of every column on one rank. An edge
    from one column of the top level to a later one runs through a junction atop the later column
    (`junction`); inside a wrapped cluster, the edge from a column's foot to the next column's top is
    declared backwards (see `backwards`). What follows a wrapped cluster is ranked below all its columns.
    `u`: the top level's items up to the middle of the innermost skip connection go down (the encoder
    and the bottom), the ones after it go up (the decoder: its edges are declared backwards), and each
    skip connection joins two nodes of one rank. A skip connection is a merge's later input
    (`concat: [up2, enc2]`: enc2 → concat) between top-level items at least two apart; `auto` picks `u`
    when two or more of them nest (s₁ < s₂ < t₂ < t₁).
    `height`: the estimated height in nodes, which the default depth keeps under MAX_RANKS; `width`: the
    number of columns side by side (a wrapped cluster's own columns counted), kept under MAX_COLUMNS.
    """

    def __init__(self, view: _View, layout: str):
        self.view, self.tree = view, view.tree()
        self.columns: dict[str | None, list[list[str]]] = {}  # wrapped scope -> its items, by column
        self.column_of: dict[str | None, dict[str, int]] = {}  # wrapped scope -> drawn node -> its column
        self.tops: set[str] = set()  # the first node of every column
        self.feet: set[str] = set()  # the last node of every column of the top level
        self.up: set[str] = set()  # the drawn nodes of a U's decoder side (and its output markers)
        self.bottom: set[str] = set()  # the drawn nodes of the item at the bottom of the U
        self.skips: list[tuple[str, str]] = []  # a U's skip connections, as drawn (tail, head)
        self.leaves: dict[str, list[str]] = {}
        self.widths: dict[str | None, int] = {}  # open scope (None: the top level) -> its width in columns
        skips = self._nested_skips() if layout in ("auto", "u") else []
        if skips and (layout == "u" or len(skips) >= 2):
            self.height = self._u(skips)
        else:
            self.height = self._wrap(None, layout != "column")
        self.width = self.widths[None]

    def leaves_of(self, item: str) -> list[str]:
        """The drawn nodes of an item: itself, or every node inside an open scope, in order."""
        if item not in self.leaves:
            inner = self.tree.get(item)
            self.leaves[item] = [leaf for child in inner for leaf in self.leaves_of(child)] if inner else [item]
        return self.leaves[item]

    def _heights(self, scope: str | None, wrap: bool) -> list[float]:
        items = self.tree.get(scope, [])
        return [self._wrap(item, wrap) + 1.0 if item in self.tree else 2.0 if item in self.view.graph.scopes
                else 1.0 for item in items]

    def _wrap(self, scope: str | None, wrap: bool) -> float:
        """The height of a scope's items, wrapped into columns when `wrap` and long (see the class); its width
        goes into `widths`."""
        heights = self._heights(scope, wrap)
        items = self.tree.get(scope, [])
        self.widths[scope] = self._width([items])
        if scope is None:
            heights.append(1.0 if self.view.graph.outputs else 0.0)
        total = sum(heights)
        flat = not any(item in self.tree for item in self.tree.get(scope, []))  # a cluster of layers only
        if not wrap or total <= SHORT_CHAIN or (scope is not None and (not flat or total <= LONG_CLUSTER)):
            if scope is None:
                return total
            tallest = self._longest(items, heights)  # side by side, the items' area over that height
            area = sum(height * self.widths.get(item, 1) for item, height in zip(items, heights))
            self.widths[scope] = max(self.widths[scope], round(area / tallest)) if tallest else 1
            return tallest
        columns = _columns(items, heights[:len(items)], heights[len(items):], self.widths)
        self.widths[scope] = self._width(columns)
        if len(columns) > 1:
            self.columns[scope] = columns
            self.tops |= {self.leaves_of(column[0])[0] for column in columns}
            if scope is None:
                self.feet = {self.leaves_of(column[-1])[-1] for column in columns}
            self.column_of[scope] = {leaf: i for i, column in enumerate(columns)
                                     for item in column for leaf in self.leaves_of(item)}
        place = dict(zip(items, heights))
        tallest = max(sum(place[item] for item in column) for column in columns)
        return tallest + (1.0 if scope is None and self.view.graph.outputs and len(columns) > 1 else 0.0)

    def _nested_skips(self) -> list[tuple[int, int, str, str]]:
        """The top level's skip connections (tail index, head index, tail, head), when they nest."""
        top = self.tree.get(None, [])
        where = {leaf: i for i, item in enumerate(top) for leaf in self.leaves_of(item)}
        found = {}
        for u, v, index, _ in self.view.edges():
            tail, head = self.view.rep[u], self.view.rep[v]
            if index > 0 and head == v and tail in where and head in where and where[head] - where[tail] >= 2:
                found.setdefault((where[tail], where[head]), (where[tail], where[head], tail, head))
        skips = sorted(found.values())
        nested = all(a[0] < b[0] and b[1] < a[1] for a, b in zip(skips, skips[1:]))
        return skips if nested else []

    def _u(self, skips: list[tuple[int, int, str, str]]) -> float:
        top = self.tree[None]
        middle = (skips[-1][0] + skips[-1][1]) // 2
        self.bottom = set(self.leaves_of(top[middle]))
        self.up = {leaf for item in top[middle + 1:] for leaf in self.leaves_of(item)}
        self.up |= {f"{name}@output" for name in self.view.graph.outputs}
        self.skips = [(tail, head) for _, _, tail, head in skips]
        heights = self._heights(None, False)
        self.widths[None] = self._width([top[:middle + 1], top[middle + 1:]])
        return max(sum(heights[:middle + 1]), sum(heights[middle:]) + 1)

    @cached_property
    def drawn_sources(self) -> dict[str, list[str]]:
        """Each drawn node's sources (drawn nodes), from every edge of the view, found once."""
        sources: dict[str, list[str]] = {}
        for u, v, _, _ in self.view.edges():
            sources.setdefault(self.view.rep[v], []).append(self.view.rep[u])
        return sources

    def _longest(self, items: list[str], heights: list[float]) -> float:
        """The height of a scope's items stacked as dot ranks them: the tallest path through them (an
        Inception block's four branches side by side are as tall as one, not four)."""
        owner = {leaf: item for item in items for leaf in self.leaves_of(item)}
        below: dict[str, float] = {}  # item -> the height of the tallest path ending with it
        feeds: dict[str, set[str]] = {}
        for leaf, head in owner.items():  # the edges into this scope's nodes only: every scope reading every
            for source in self.drawn_sources.get(leaf, ()):  # edge took minutes for 50,000 layers in 2,500 groups
                tail = owner.get(source)
                if tail is not None and tail != head:
                    feeds.setdefault(head, set()).add(tail)
        for item, height in zip(items, heights):  # in graph order: an item's sources come before it
            below[item] = height + max((below.get(t, 0.0) for t in feeds.get(item, ())), default=0.0)
        return max(below.values(), default=0.0)

    def _width(self, columns: list[list[str]]) -> int:
        """How many columns wide items set in `columns` are: each as wide as its widest item."""
        return sum(max((self.widths.get(item, 1) for item in column), default=1) for column in columns)

    def upward(self, tail: str, head: str) -> bool:
        """Whether an edge runs up the decoder side of a U."""
        return head in self.up and (tail in self.up or tail in self.bottom)

    def backwards(self, tail: str, head: str) -> bool:
        """Whether an edge goes up the page: up a U's decoder, or into the first node of a column from an
        earlier one. Such an edge is declared head -> tail with `dir=back` (drawn the right way, ranked the
        other): `constraint=false` would do as much, but makes dot crash on large clustered graphs."""
        return self.upward(tail, head) or (self.wraps(tail, head) and head in self.tops)

    def free(self, tail: str, head: str) -> bool:
        """Whether an edge between columns leaves the ranking alone (`constraint=false`): one that does not
        enter a column's top (a skip from the input to the last layer)."""
        return self.wraps(tail, head) and head not in self.tops

    def junction(self, tail: str, head: str) -> str | None:
        """The point atop the head's column that an edge from the foot of an earlier column of the top level
        runs through (`_Emitter._via`); None for any other edge (one from higher up, like a skip from the
        input, runs down into its head directly)."""
        column = self.column_of.get(None, {})
        if tail in column and head in column and column[tail] != column[head] and tail in self.feet:
            return f"{tail}@column{column[head]}"
        return None

    def wraps(self, tail: str, head: str) -> bool:
        """Whether an edge runs from one column of a wrapped scope into another."""
        return any(column.get(tail, -1) != column.get(head, -1) and tail in column and head in column
                   for column in self.column_of.values())

    def columns_rank(self, dot: graphviz.Digraph, scope: str | None) -> None:
        """A wrapped scope's columns side by side, in order: their first nodes on one rank (for the top
        level, invisible anchors above them: a column may start with a cluster), joined left to right by
        invisible edges. This goes inside the scope's own cluster: dot keeps the order of a rank's nodes
        only among nodes of one cluster."""
        columns = self.columns.get(scope)
        if not columns:
            return
        firsts = [self.leaves_of(column[0])[0] for column in columns]
        anchors = firsts if scope is not None else [f"@column{i}" for i in range(len(columns))]
        with dot.subgraph() as rank:
            rank.attr(rank="same")
            for anchor, first in zip(anchors, firsts):
                if anchor != first:  # the top level's columns may start with a cluster: anchored above it
                    rank.node(anchor, label="", shape="point", width="0", height="0", style="invis")
            for a, b in zip(anchors, anchors[1:]):
                rank.edge(a, b, style="invis")
        for anchor, first in zip(anchors, firsts):
            if anchor != first:
                dot.edge(anchor, first, style="invis", weight="8")

    def constrain(self, dot: graphviz.Digraph, edges: list[tuple[str, str]]) -> None:
        """Add the ranking constraints that go after the edges: whatever follows a wrapped cluster below all
        its columns (an invisible edge from the foot of each column longer than the last: one from every
        foot drew the last column's foot between the others), and each skip connection's two ends on one
        rank."""
        hidden = dict(style="invis", weight="0")  # ranks only: no pull sideways
        for scope, columns in self.columns.items():
            if scope is not None:  # a wrapped cluster holds layers only: a column is as tall as it is long
                inside = set(self.leaves_of(scope))
                after = dict.fromkeys(h for t, h in edges  # (unless it starts a column of its own)
                                      if t in inside and h not in inside and not self.wraps(t, h))
                for column in [column for column in columns[:-1] if len(column) > len(columns[-1])]:
                    for head in after:
                        dot.edge(self.leaves_of(column[-1])[-1], head, **hidden)
        for tail, head in self.skips:
            with dot.subgraph() as rank:
                rank.attr(rank="same")
                rank.node(tail)
                rank.node(head)


# ---- how it is shown: DOT ----------------------------------------------------------------------------------


class _Emitter:
    def __init__(self, view: _View, rankdir: str, show: tuple[str, ...], plan: _Plan):
        self.view, self.graph, self.rankdir, self.show, self.plan = view, view.graph, rankdir, show, plan
        self.drawn: list[tuple[str, str]] = []  # the edges drawn, (tail, head)
        self.sources: set[tuple[str, str]] = set()  # (tail, shape) of the edges between columns labelled
        self.junctions: set[str] = set()  # the junctions atop the top level's columns drawn (`_via`)
        self.families: dict[str, str] = {}  # family -> colour, in order of appearance
        self.skips = False  # whether a skip edge was drawn (for the legend)

    def digraph(self) -> graphviz.Digraph:
        dot = graphviz.Digraph(self.graph.name, graph_attr=self._graph_attr(),
                               node_attr=dict(shape="box", style="rounded,filled", fontname=FONT,
                                              fontsize="10", fontcolor=INK, color=MUTED, penwidth="0.8",
                                              margin="0.12,0.05", height="0.3"),
                               edge_attr=dict(fontname=FONT, fontsize="8", fontcolor=MUTED, color=EDGE,
                                              penwidth="0.8", arrowsize="0.6"))
        self._emit_scope(dot, None, self.plan.tree, 0)
        for name, node in self.graph.outputs.items():
            self._output(dot, name, node)
        self._edges(dot)
        self.plan.constrain(dot, self.drawn)
        dot.graph_attr["label"] = self._caption()
        return dot

    def _graph_attr(self) -> dict[str, str]:
        return dict(rankdir=self.rankdir, fontname=FONT, fontsize="10", fontcolor=INK, nodesep="0.3",
                    ranksep="0.3", labelloc="b", labeljust="l", newrank="true", bgcolor="white",
                    remincross="false")  # dot's second pass over clusters broke the columns' order

    def _emit_scope(self, dot: graphviz.Digraph, scope: str | None, tree: dict, level: int) -> None:
        self.plan.columns_rank(dot, scope)
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
        lines += [_small(s, FIGURES) for s in self._figures(stats, node.frozen)]
        attrs = dict(fillcolor=self._colour(family), tooltip=f"{name}: {node.label}", **_look(family))
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
        attrs = dict(fillcolor=BLOCK_FILL, penwidth="1.0", color=BLOCK_BORDER, peripheries="2",
                     tooltip=f"{scope}: {len(members)} layers")
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
        self._edge(dot, self.view.rep[node], marker, label=_shape_label(shape))

    def _edge(self, dot: graphviz.Digraph, tail: str, head: str, **attrs: str) -> None:
        """An edge, with the plan's attributes. An edge from one column to a later one carries its shape once
        per source and shape. Into a column's top, as a label beside its middle, which dot makes room for (at
        the edge's end, `taillabel`, the text sat on the edge's curve, the node or the cluster's border); an
        edge that leaves the ranking alone (`free`) gets no room, so its shape goes at its tail. Between two
        columns of the top level, the edge runs through a junction atop the head's column (`_via`)."""
        junction = self.plan.junction(tail, head)
        if junction is not None:
            self._via(dot, junction, tail, head, attrs)
            return
        back = self.plan.backwards(tail, head)
        if self.plan.wraps(tail, head) and "label" in attrs:
            attrs = dict(attrs, weight="0")  # pulls neither end sideways, out of its column
            label = attrs.pop("label")
            if (tail, label) not in self.sources:  # one label where several edges leave a node with one shape
                self.sources.add((tail, label))
                if self.plan.free(tail, head):
                    attrs.update(taillabel=label, labeldistance="1.6", labelangle="-40", labelfontsize="8",
                                 labelfontcolor=attrs.get("fontcolor", MUTED))
                else:
                    attrs["label"] = label
        if self.plan.free(tail, head):
            attrs["constraint"] = "false"
        if back:
            dot.edge(head, tail, dir="back", **attrs)
        else:
            dot.edge(tail, head, **attrs)
        self.drawn.append((tail, head))

    def _via(self, dot: graphviz.Digraph, junction: str, tail: str, head: str, attrs: dict[str, str]) -> None:
        """An edge from one column of the top level into a later one, drawn in two parts: up the gutter from
        its source to a point atop the head's column (`junction`: one per source and column, on the rank of
        the columns' anchors, left of the column's), with the shape beside it; then down into the head, from
        above like any edge. The edges from one source into one column share the long part (a ResNet stage's
        output into the next stage's first conv and its `downsample`): drawn straight to a node inside a
        column, such an edge left the ranking alone (`constraint=false`) and crossed the whole drawing."""
        label = attrs.pop("label", None)
        if junction not in self.junctions:
            self.junctions.add(junction)
            column = self.plan.column_of[None][head]
            with dot.subgraph() as rank:  # in the gutter left of the column: between its anchor and the last
                rank.attr(rank="same")
                rank.node(junction, label="", shape="point", width="0", height="0", style="invis")
                rank.edge(f"@column{column - 1}", junction, style="invis")
                rank.edge(junction, f"@column{column}", style="invis")
            long = dict(attrs, dir="none", weight="0")  # pulls neither end sideways, out of its column
            dot.edge(junction, tail, **(dict(long, label=label) if label else long))
        dot.edge(junction, head, **attrs)
        self.drawn.append((tail, head))

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
                self._edge(dot, tail, head, label=_shape_label(shape), **self._edge_style(v, head, index, shape))

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
        """A grid of swatches drawn as the nodes are (fill, border colour and style), six a row, ending with the
        skip edges' line style."""
        items = [_legend_item(_swatch(family, colour), family) for family, colour in self.families.items()]
        if self.skips:
            dashes = f"<td width='14' height='9' fixedsize='true'><font point-size='8' color='{SKIP}'>╌╌</font></td>"
            items.append(_legend_item(dashes, "skip / merge input"))
        rows = ["<tr>" + "".join(items[i:i + 6]) + "<td></td><td></td>" * (i + 6 - len(items)) + "</tr>"
                for i in range(0, len(items), 6)]
        return [f"<table border='0' cellspacing='3' cellpadding='0'>{''.join(rows)}</table>"] if rows else []


def _look(family: str) -> dict[str, str]:
    """The border and style of a family drawn white (FAMILY_BORDERS); nothing for the others."""
    if family not in FAMILY_BORDERS:
        return {}
    return dict(color=FAMILY_BORDERS[family], style=FAMILY_STYLES[family], penwidth="1.4")


def _swatch(family: str, colour: str) -> str:
    """A legend cell 14×9 points that looks like the family's nodes: a collapsed block's double border, a
    dotted or bold coloured border (FAMILY_STYLES), else a thin grey one."""
    if family == "block (collapsed)":  # border, padding and inner border, 1 point each side: 8×3 inside
        return (f"<td border='1' cellpadding='1' color='{BLOCK_BORDER}' bgcolor='{colour}'><table border='1' "
                f"cellborder='0' cellspacing='0' cellpadding='0' color='{BLOCK_BORDER}'><tr>"
                f"<td width='8' height='3' fixedsize='true'></td></tr></table></td>")
    look = FAMILY_STYLES.get(family, "")
    style = " style='dotted'" if "dotted" in look else ""
    border = "2" if "bold" in look else "1"
    return (f"<td bgcolor='{colour}' width='14' height='9' fixedsize='true' border='{border}'{style} "
            f"color='{FAMILY_BORDERS.get(family, MUTED)}'></td>")


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
