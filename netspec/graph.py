"""Expand a Spec into a Graph: a networkx DAG of named layer nodes with their shapes.

Expansion resolves blocks, groups, `repeat`, `when`, `from` and `${...}`
expressions, and infers every node's output shape on the way, because a
`when:` or an argument may depend on the incoming shape (`in_channels`).
Names are hierarchical: `layer1.0.conv1`; an unnamed layer is named by its
position in its sequence. An op giving several tensors (`chunk` named `x`) is
one node per part, `x.0`, `x.1`, ..., in a scope `x`. Errors are collected; a
node whose input is unknown (because of an earlier error) is kept with an
unknown shape, without a second error, so one run reports every independent
mistake.

The work is bounded before it is done (docs/security.md): a `repeat:` whose
copies, times those of the repeats around it, pass MAX_LAYERS is refused before
its first copy; every item copy the walk visits counts toward MAX_ITEMS (skipped
ones too); blocks and groups nest at most MAX_NESTING deep; a layer's parameters
and output must fit in a torch tensor (arith.MAX_ELEMENTS, MAX_DIMS).
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import ValidationError

from .arith import MAX_DIMS, MAX_ELEMENTS, MAX_SYMBOLIC, Shape, format_shape, numel
from .errors import Diagnostics, PathT, SpecError, SpecErrors, brief, did_you_mean, listing
from .expr import Budget, ExprError, OverBudget, has_expression, resolve, size
from .init import Init
from .layers import ANY, FLOAT, FROM, INDEX, REGISTRY, Args, Layer, ShapeError
from .perf import without_gc
from .spec import LAYER_NAME_RE, TENSOR_LIMIT, Block, InputDef, Item, Spec, pydantic_errors

if TYPE_CHECKING:
    import networkx as nx


@dataclass
class Node:
    """One layer of the expanded graph."""

    name: str
    op: str
    args: Args
    inputs: list[str]
    in_shapes: list[Shape | None]
    shape: Shape | None
    path: PathT
    scope: str | None = None
    frozen: bool = False
    init: Init | None = None  # its own `init:`; netspec.init.layer_init resolves the inherited one
    params: int | None = None  # its parameter count, once its shape is known
    shares: str | None = None  # the layer whose parameters it applies again (`share:`); its own params are 0

    @property
    def entry(self) -> Layer:
        return REGISTRY[self.op]

    @property
    def label(self) -> str:
        try:
            return self.entry.label(self.args)
        except ShapeError:  # arguments that do not fit the input: this node's error says so
            return self.op


@dataclass
class Scope:
    """A block instance, a group, the copies of a repeated item, or the parts of an op giving several tensors."""

    name: str
    kind: str  # "block", "group", "repeat" or "parts"
    op: str | None  # the block's type, for kind "block" (and "repeat" of a block); the op, for kind "parts"
    parent: str | None
    path: PathT
    repeat: int | None = None
    init: Init | None = None
    args: dict[str, Any] = field(default_factory=dict)  # a block's argument values, as this instance got them
    inputs: list[str] = field(default_factory=list)  # the values a block instance takes, in its `inputs:` order


@dataclass
class Graph:
    name: str
    spec: Spec
    inputs: dict[str, InputDef]
    nodes: dict[str, Node] = field(default_factory=dict)  # in topological (creation) order
    outputs: dict[str, str] = field(default_factory=dict)  # output name -> node or input name
    scopes: dict[str, Scope] = field(default_factory=dict)
    errors: list[SpecError] = field(default_factory=list)
    invalid: dict[str, Invalid] = field(default_factory=dict)  # items that failed to expand

    @cached_property
    def dag(self) -> nx.DiGraph:
        """The networkx DiGraph: node attr `kind` (input, layer, invalid); edge attrs `index`, `shape`.

        Built on first use, so validating never pays for importing networkx.
        """
        import networkx as nx

        dag = nx.DiGraph()
        dag.add_nodes_from(self.inputs, kind="input")
        for name, bad in self.invalid.items():
            dag.add_node(name, kind="invalid", path=bad.path)
        for node in self.nodes.values():
            dag.add_node(node.name, kind="layer")
        for target, sources in self.edges():
            for i, src in enumerate(sources):
                dag.add_edge(src, target, index=i, shape=self.shape_of(src))
        return dag

    def edges(self):
        """(item, its input names) for every layer and every invalid item that resolved its inputs."""
        for node in self.nodes.values():
            yield node.name, node.inputs
        for name, bad in self.invalid.items():
            yield name, bad.inputs

    def shape_of(self, name: str) -> Shape | None:
        if name in self.inputs:
            return tuple(self.inputs[name].shape)
        return self.nodes[name].shape if name in self.nodes else None


@dataclass
class Invalid:
    """An item that failed to expand (its error is reported): where it is, and the inputs it named."""

    path: PathT
    inputs: list[str]


class Ref(NamedTuple):
    name: str
    shape: Shape | None
    integer: bool = False  # holds integer values (token ids), not floating-point ones
    parts: tuple[Ref, ...] = ()  # the tensors of an op giving several (`chunk`): then `name` holds none itself


class Names:
    """A scope's visible names; block bodies start a fresh chain (they see only their inputs)."""

    def __init__(self, parent: Names | None = None):
        self.table: dict[str, Ref] = {}
        self.pending: set[str] = set()
        self.parent = parent

    def chain(self):
        """This scope and the ones it can see, innermost first."""
        scope: Names | None = self
        while scope is not None:
            yield scope
            scope = scope.parent

    def lookup(self, name: str) -> Ref | None:
        return next((scope.table[name] for scope in self.chain() if name in scope.table), None)

    def is_pending(self, name: str) -> bool:
        return any(name in scope.pending for scope in self.chain())

    def visible(self) -> set[str]:
        return set().union(*(scope.table.keys() for scope in self.chain()))


@without_gc
def build_graph(spec: Spec, strict: bool = True) -> Graph:
    """Expand `spec`. With strict=False, return the partial graph with its errors instead of raising."""
    graph = _Expander(spec).run()
    if strict and graph.errors:
        raise SpecErrors(graph.errors)
    return graph


class _Expander:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.source = spec.source
        self.diag = Diagnostics()
        self.diag.extend(spec.errors)
        self.graph = Graph(spec.name, spec, dict(spec.inputs))
        self.refs: dict[str, Ref] = {}  # every full name -> its output, for dotted `from`
        self.used: set[str] = set()  # names some layer takes as input
        self.expanding: list[str] = []  # the blocks being expanded, outermost first
        self.skipped_item: Item | None = None  # the last item a `when:` skipped
        self.roots = [""]  # prefix of the dotted names `from` may use: a block body names only its own layers
        self.copies = 1  # copies made of the item being expanded: the product of the repeats around it
        self.items = 0  # item copies visited so far (MAX_ITEMS)
        self.depth = 0  # groups and blocks around the item being expanded (MAX_NESTING)
        self.budget = Budget()  # steps of work for the whole expansion: arguments walked, expressions
        self.measured: dict[int, tuple[Any, bool, int]] = {}  # id of a spec list or mapping -> (it, dynamic, size)
        self.refused: set[tuple] = set()  # (item path, pydantic's errors) reported: each copy fails the same way

    def error(self, message: str, path: PathT, hint: str | Callable[[], str | None] | None = None,
              key: bool = False, where: str | None = None) -> None:
        """Report an error; `hint` may be a function, called only for an error not reported yet (a block
        used many times repeats its body's errors, and a did-you-mean search is not free)."""
        err = self.source.error(message, path, key=key)
        if err in self.diag:
            return
        err.hint = hint() if callable(hint) else hint
        if where:
            err.notes.append(f"in `{brief(where)}`")
        self.diag.add(err)

    def run(self) -> Graph:
        top = Names()
        for name, spec_input in self.graph.inputs.items():
            ref = Ref(name, tuple(spec_input.shape), spec_input.integer)
            top.table[name] = ref
        env = self.spec.model.args
        first = next(iter(top.table.values())) if len(top.table) == 1 else None
        try:
            last = self.seq(self.spec.layers, "", top, first, env, False, None)
            self._unused_inputs()
            self._outputs(top, last)
            self._dead_layers()
        except SpecErrors:  # MAX_ERRORS reached: the run stops, and the graph so far is kept
            pass
        self.graph.errors = self.diag.errors
        return self.graph

    def _outputs(self, top: Names, last: Ref | None) -> None:
        names = self.spec.model.outputs
        if names is None:
            if last is not None and last.parts:
                self.error("the last layer is split into parts: list the ones the network returns",
                           self.spec.layers[-1].path,
                           f"e.g. `outputs: [{_quoted(last.name + '.0')}, {_quoted(last.name + '.1')}]`")
            elif last is not None:
                self.graph.outputs["output"] = last.name
            return
        if not names:
            self.error("`outputs` lists no layer: the network would return nothing", ("outputs",),
                       "name the layers it returns (`outputs: [logits]`), or remove `outputs:` to return the last")
        for i, name in enumerate(names):
            ref = top.lookup(name) or self.refs.get(name)
            if ref is None:
                self.error(f"output `{brief(name)}` names no layer", ("outputs", i),
                           lambda name=name: did_you_mean(name, top.visible() | self.refs.keys()))
            elif name in self.graph.outputs:
                self.error(f"output `{brief(name)}` is listed twice", ("outputs", i))
            elif ref.parts:
                self.error(f"output `{brief(name)}` is split into parts: list the ones the network returns",
                           ("outputs", i),
                           f"list its parts: `{_quoted(name + '.0')}`, `{_quoted(name + '.1')}`, ...")
            else:
                self.graph.outputs[name] = ref.name

    def _dead_layers(self) -> None:
        """Layers no output depends on are an error: their parameters would be counted and built, but they
        compute nothing the network returns (often a `from:` or a merge that names the wrong layer)."""
        if self.diag:  # a failed item may be why a layer looks unused
            return
        live = set(self.graph.outputs.values())
        for node in reversed(self.graph.nodes.values()):
            if node.name in live:
                live.update(node.inputs)
                if node.shares:  # its parameters live in the layer it shares
                    live.add(node.shares)
        consumed = {name for node in self.graph.nodes.values() for name in node.inputs}
        for node in self.graph.nodes.values():
            if node.name in live or node.name in consumed:  # live, or within a dead branch: its end is reported
                continue
            whole = self.graph.scopes.get(node.scope or "")
            if whole is not None and whole.kind == "parts":
                self.error(f"part `{brief(node.name)}` of this `{node.op}` reaches no output", node.path,
                           "use every part (in a later `from:` or merge, or in `outputs:`); to keep only some of "
                           "the dim, crop it with `pad` (negative padding) instead", where=node.name)
            else:
                self.error("this layer reaches no output: nothing the network returns uses it", node.path,
                           "use it (name it in a later `from:` or merge), list it in `outputs:`, or remove it",
                           where=node.name)

    def _unused_inputs(self) -> None:
        if self.diag:  # a failed `from` may be why an input looks unused
            return
        for name in self.graph.inputs:
            if name not in self.used and name not in self.graph.outputs.values():
                path = ("input",) if self.spec.model.input is not None else ("inputs", name)
                self.error(f"input `{name}` is never used", path, key=self.spec.model.inputs is not None,
                           hint="name it in a layer's `from:`, or remove it")

    # ---- sequences and items -------------------------------------------------------------

    def seq(self, items: list[Item], prefix: str, names: Names, current: Ref | None, env: Mapping,
            frozen: bool, scope: str | None) -> Ref | None:
        names.pending = {item.name for item in items if item.name}
        position = 0  # the next unnamed item's name; a skipped `keep_position: false` item does not take one
        for item in items:
            local = item.name or str(position)
            position += 1
            full = prefix + local
            self.items += 1
            if self.items > MAX_ITEMS:
                raise self.source.error(f"the network expands to more than {MAX_ITEMS:,} items (layers, groups, "
                                        "blocks and their copies, skipped ones too)", item.path, _OVER_BUDGET)
            if item.name and item.name in names.table:
                self.error(f"duplicate layer name `{item.name}`", item.path + ("name",),
                           "names must be unique within their sequence")
            elif not item.name and local in names.table:  # an earlier item took this position as its name
                self.error(f"this unnamed layer's position `{local}` is the name of an earlier layer", item.path,
                           "name this layer, or give the earlier one another position", where=full)
            if item.op and item.op.startswith("$"):
                item = self.op_of(item, env, full, current)
            if item.invalid:  # reported by the parser, or an op argument that names no op
                inputs, ok = [current] if current else [], False
            else:
                inputs, ok = self.inputs_of(item, names, current, full)
            self.used.update(r.name for r in inputs)
            self.skipped_item = None  # a block's items recur in each use: only this use's skip counts
            out = self.item(item, full, names, inputs, current, env, frozen or item.frozen, scope) if ok else None
            if out is None:  # failed (already reported): later layers see an unknown shape
                out = Ref(full, None)
                self.graph.invalid[full] = Invalid(item.path, [r.name for r in inputs])
            current = out
            if self.skipped_item is item and not item.keep_position:
                position -= 1
                if not item.name:
                    continue
            names.pending.discard(local)
            names.table[local] = current
            self.refs[full] = current
            if current.parts and item.layers is None and item.op in REGISTRY:  # a `chunk`'s `x.0`, `x.1`, ...
                for i, part in enumerate(current.parts):
                    names.table[f"{local}.{i}"] = self.refs[f"{full}.{i}"] = part
        return current

    def item(self, item: Item, full: str, names: Names, inputs: list[Ref], current: Ref | None, env: Mapping,
             frozen: bool, scope: str | None) -> Ref | None:
        if item.when is not None:
            when = self.value(item.when, env, item.path + ("when",), full, inputs)
            if when is _FAILED:
                return None
            if not isinstance(when, bool):
                self.error(f"`when` must be true or false, got {when!r}", item.path + ("when",), where=full)
                return None
            if not when:
                self.skipped_item = item
                return self.skipped(item, inputs, current, full, env)
        if item.repeat is None:
            return self.one(item, full, inputs, names, env, frozen, scope)
        counted = self.repeat_of(item, env, full, inputs)
        if counted is None:
            return None
        repeat, template, start = counted
        if repeat == 0:
            return inputs[0]
        if repeat * self.copies > MAX_LAYERS:
            around = f" inside repeats making {self.copies:,} copies" if self.copies > 1 else ""
            raise self.source.error(f"`repeat: {repeat:,}`{around} makes more than {MAX_LAYERS:,} copies, "
                                    f"the most a network may expand to", item.path + ("repeat",),
                                    "check the `repeat:` counts")
        if template is None:  # copies `<name>.<i>`, in a scope of their own
            self.graph.scopes[full] = Scope(full, "repeat", item.op if item.op in self.spec.blocks else None,
                                            scope, item.path, repeat, item.init)
        out: Ref | None = None
        self.copies *= repeat
        try:
            for k in range(repeat):
                if template is None:
                    copy, within = f"{full}.{start + k}", full
                else:  # copies named by the template, side by side in the item's own sequence
                    local = template.replace("{i}", str(start + k))
                    copy, within = full[:full.rfind(".") + 1] + local, scope
                    if local in names.table:
                        self.error(f"repeat copy name `{brief(local)}` is taken", item.path + ("repeat", "name"),
                                   "names must be unique within their sequence", where=full)
                        return None
                out = self.one(item, copy, inputs, names, _scope({"index": k}, env), frozen, within)
                if out is None:
                    return None
                if out.parts:
                    self.error("`repeat` feeds each copy's output to the next, but this layer's output is split "
                               "into parts", item.path + ("repeat",),
                               "split once, then repeat what follows on one part", where=full)
                    return None
                if template is not None:
                    names.table[local] = self.refs[copy] = out
                inputs = [out]
        finally:
            self.copies //= repeat
        return out

    def repeat_of(self, item: Item, env: Mapping, full: str, inputs: list[Ref]) -> tuple | None:
        """`repeat: N` or `repeat: {count: N, name: 'layer_{i}', start: 1}`: (count, name template or None,
        first number), or None after an error."""
        path = item.path + ("repeat",)
        given = self.value(item.repeat, env, path, full, inputs)
        if given is _FAILED:
            return None
        given = given if isinstance(given, dict) else {"count": given}
        unknown = next((k for k in given if k not in ("count", "name", "start")), None)
        if unknown is not None:
            self.error(f"unknown `repeat` key `{brief(unknown)}`", path + (unknown,),
                       lambda: did_you_mean(unknown, ("count", "name", "start")) or "keys: count, name, start",
                       key=True, where=full)
            return None
        count, template, start = given.get("count"), given.get("name"), given.get("start", 0)
        mapping = isinstance(item.repeat, dict)
        for key, value in (("count", count), ("start", start)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                self.error(f"`{'repeat.' + key if mapping else 'repeat'}` must be a whole number ≥ 0, got {value!r}",
                           path + (key,) if mapping else path, where=full)
                return None
        if template is not None and not (isinstance(template, str) and "{i}" in template and
                                         LAYER_NAME_RE.match(template.replace("{i}", "0"))):
            self.error("`repeat.name` is a name with `{i}` where the copy's number goes, got "
                       f"{brief(repr(template))}",
                       path + ("name",), "e.g. `name: 'encoder_layer_{i}'`", where=full)
            return None
        return count, template, start

    def op_of(self, item: Item, env: Mapping, full: str, current: Ref | None) -> Item:
        """The item with its op argument (`- $activation`) replaced by the op it names; invalid if none."""
        path = item.path + (item.op,)
        op = self.value(item.op, env, path, full, [current or Ref("", None)])
        if op is _FAILED:
            return replace(item, invalid=True)
        if not isinstance(op, str) or (op not in REGISTRY and op not in self.spec.blocks):
            self.error(f"`{item.op}` is {brief(repr(op))}, not a layer type", path,
                       lambda: did_you_mean(str(op), set(REGISTRY) | set(self.spec.blocks)) or
                       "`netspec ops` lists the layer types", key=True, where=full)
            return replace(item, invalid=True)
        return replace(item, op=op)

    def skipped(self, item: Item, inputs: list[Ref], current: Ref | None, full: str, env: Mapping) -> Ref | None:
        """What a skipped item passes on: its one input (a skipped `from: input` shortcut is the identity; a
        skipped `chunk` passes it on as each of its parts), or, for a merge of several inputs, the previous
        item's output, as if the item were not there."""
        if len(inputs) == 1:
            entry = REGISTRY.get(item.op) if item.layers is None else None
            if entry is None or not entry.splits:
                return inputs[0]
            validated = self.arguments(item, entry, full, inputs, env)
            if validated is None:
                return None
            return Ref(full, None, inputs[0].integer, (inputs[0],) * self.part_count(entry, validated[0], item))
        if current is None:
            self.error("a skipped merge passes on the previous item's output, but it is the first item here",
                       item.path + ("when",), "put the merge after the layer whose output it should pass on",
                       where=full)
        return current

    def one(self, item: Item, full: str, inputs: list[Ref], names: Names, env: Mapping, frozen: bool,
            scope: str | None) -> Ref | None:
        if item.share is not None:
            return self.shared(item, full, inputs, names, scope)
        if item.layers is None and item.op not in self.spec.blocks:
            return self.layer(item, full, inputs, env, frozen, scope)
        if self.depth >= MAX_NESTING:
            err = self.source.error(f"groups and blocks nest more than {MAX_NESTING} deep here", item.path,
                                    "nest fewer blocks in blocks (each block is a level, and each group)")
            err.notes.append(f"in `{brief(full)}`")
            raise err
        self.depth += 1
        try:
            return self.nested(item, full, inputs, names, env, frozen, scope)
        finally:
            self.depth -= 1

    def shared(self, item: Item, full: str, inputs: list[Ref], names: Names, scope: str | None) -> Ref | None:
        """`- share: fc`: the layer `fc` applied to this item's input, with the same parameters (counted once,
        one copy in the state_dict), its MACs counted per application."""
        path = item.path + ("share",)
        ref = names.lookup(item.share) or self.refs.get(self.roots[-1] + item.share)
        node = self.graph.nodes.get(ref.name) if ref is not None else None
        if ref is not None and ref.parts:  # a `chunk`: one node per part, none of them with weights to share
            self.error(f"`share` names `{brief(item.share)}`, which is split into parts, not one layer", path,
                       "`share` applies again a layer with parameters (a linear, a conv)", where=full)
            return None
        if node is None:
            self.error(f"`share` names `{brief(item.share)}`, which is not an earlier layer here", path,
                       lambda: did_you_mean(item.share, names.visible()) or
                       "`share` names one layer (not an input, a group or a block) defined before it", where=full)
            return None
        if node.shape is None:
            return None  # its own error is reported
        entry, in_shapes = node.entry, [r.shape for r in inputs]
        if any(s is None for s in in_shapes):
            return Ref(full, None)
        if len(inputs) != len(node.inputs):
            self.error(f"`{brief(node.name)}` takes {len(node.inputs)} input(s), got {len(inputs)}", path, where=full)
            return None
        try:
            shape = tuple(entry.infer(node.args, in_shapes))
            fits = entry.module(node.args, in_shapes) == entry.module(node.args, node.in_shapes)
        except ShapeError as exc:
            shape, fits = None, exc.message
        if fits is not True:
            seen = ", ".join(format_shape(s) for s in node.in_shapes)
            self.error(f"`{brief(node.name)}` ({node.op}, made for input {seen}) cannot be applied to "
                       f"{', '.join(format_shape(s) for s in in_shapes)}" + (f": {fits}" if fits else ""), path,
                       "shared weights need inputs of the shape the layer was made for", where=full)
            return None
        self.graph.nodes[full] = Node(full, node.op, node.args, [r.name for r in inputs], in_shapes, shape, item.path,
                                      scope, node.frozen, None, 0, node.shares or node.name)
        return Ref(full, shape, entry.dtypes == ANY and all(r.integer for r in inputs))

    def nested(self, item: Item, full: str, inputs: list[Ref], names: Names, env: Mapping, frozen: bool,
               scope: str | None) -> Ref | None:
        """A group's or a block's sequence."""
        if item.layers is not None:
            if len(inputs) != 1:
                self.error(f"a group takes one input, got {len(inputs)}", item.path + ("from",),
                           "merge them first (`- concat: [a, b]`), or make a block with `inputs: [a, b]`",
                           where=full)
                return None
            self.graph.scopes[full] = Scope(full, "group", None, scope, item.path, init=item.init)
            inner = Names(names)
            inner.table["input"] = inputs[0]
            return self.seq(item.layers, full + ".", inner, inputs[0], env, frozen, full)
        return self.block(self.spec.blocks[item.op], item, full, inputs, env, frozen, scope)

    def inputs_of(self, item: Item, names: Names, current: Ref | None, full: str) -> tuple[list[Ref], bool]:
        """The item's inputs, and whether every one resolved (the resolved ones either way)."""
        entry = REGISTRY.get(item.op) if item.op else None
        if entry is not None and entry.main_arg == FROM and isinstance(item.args, (list, str)):
            refs, path = item.args, item.path + (item.op,)
            if item.from_ is not None:
                self.error(f"`{item.op}` names its inputs twice (in its list and in `from`)",
                           item.path + ("from",), where=full)
        elif item.from_ is not None:
            refs, path = item.from_, item.path + ("from",)
        elif current is None:
            self.error("this layer has no input", item.path,
                       "with several inputs, the first layer names its input with `from:`", where=full)
            return [], False
        else:
            return ([current], True) if self.single(current, item.path, full) else ([], False)
        refs = [refs] if isinstance(refs, (str, int, float)) and not isinstance(refs, bool) else refs
        number = next((i for i, r in enumerate(refs) if type(r) in (int, float)), None) \
            if isinstance(refs, list) else None
        if number is not None:  # `add: [0, input]`: an unnamed layer's name is its position, as a string
            listed = path[-1] == item.op  # `add: [...]`, not `from:`
            given = item.args if listed else item.from_
            hint = f"quote it: `'{refs[number]}'` names the unnamed layer at position {refs[number]}" \
                if type(refs[number]) is int else (f"quote it as written (`'{refs[number]}'`): a part of an unnamed "
                                                   "layer is named by its position, a dot and the part's number")
            self.error(f"{f'`{item.op}: [...]`' if listed else '`from`'} takes layer names, and {refs[number]} is a "
                       "number", path + (number,) if isinstance(given, list) else path, hint, where=full)
            return [], False
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            self.error("`from` takes a layer name or a list of names", path, where=full)
            return [], False
        out = []
        for i, ref_name in enumerate(refs):
            ref = names.lookup(ref_name) or self.refs.get(self.roots[-1] + ref_name)
            where = path + (i,) if len(refs) > 1 or isinstance(item.args, list) else path
            head = names.lookup(ref_name.partition(".")[0])
            if ref is not None:
                if self.single(ref, where, full):
                    out.append(ref)
            elif head is not None and head.name in self.graph.invalid:  # `x.0` of a failed `x`: its error says why
                out.append(head)
            elif names.is_pending(ref_name) or names.is_pending(ref_name.partition(".")[0]):
                self.error(f"`{brief(ref_name)}` is defined after this layer", where,
                           "`from` may only name earlier layers (so the graph has no cycles)", where=full)
            else:
                self.error(f"`from` names `{brief(ref_name)}`, which is not defined here", where,
                           lambda ref_name=ref_name: did_you_mean(ref_name, names.visible()) or
                           f"visible here: {listing(names.visible()) or 'nothing'}", where=full)
        return out, len(out) == len(refs)

    def single(self, ref: Ref, path: PathT, full: str) -> bool:
        """Whether `ref` is one tensor; else (a `chunk` named `x`, whose tensors are `x.0`, `x.1`, ...) an error."""
        if not ref.parts:
            return True
        parts = [_quoted(f"{self.local(ref.name)}.{i}") for i in range(len(ref.parts))]
        self.error(f"`{brief(self.local(ref.name))}` is split into parts: name the one this layer takes", path,
                   f"its parts are {listing(parts)}: e.g. `from: {parts[0]}`", where=full)
        return False

    def value(self, raw: Any, env: Mapping, path: PathT, full: str, inputs: list[Ref]) -> Any:
        """`raw` with its expressions evaluated over `env` and the incoming tensor's names."""
        dynamic, steps = self.measure(raw)
        if not dynamic:
            return raw
        self.spend(steps, path)  # resolve walks it
        try:
            return resolve(raw, _scope(_shape_vars(inputs[0].shape), env), self.budget)
        except ExprError as exc:
            cascade = any(r.shape is None for r in inputs) and \
                exc.message.startswith(tuple(f"unknown name `{v}`" for v in _SHAPE_VARS))
            if not cascade:  # a name of the unknown input's shape: the earlier error explains it
                self.error(exc.message, path, exc.hint, where=full)
            return _FAILED
        except OverBudget as exc:
            raise self.source.error(str(exc), path, _OVER_BUDGET) from None

    def measure(self, raw: Any) -> tuple[bool, int]:
        """Whether `raw` holds an expression, and its size (Budget.walk's steps): found once per list or
        mapping of the spec, not once per copy."""
        if not isinstance(raw, (list, dict)) or not raw:
            return isinstance(raw, str) and raw.startswith("$"), size(raw)
        known = self.measured.get(id(raw))
        if known is None:  # keeps `raw` alive, so that its id names it
            known = self.measured[id(raw)] = (raw, has_expression(raw), size(raw))
        return known[1], known[2]

    def spend(self, steps: int, path: PathT) -> None:
        """Spend the budget's steps; past MAX_STEPS, the expansion stops here."""
        try:
            self.budget.spend(steps)
        except OverBudget as exc:
            raise self.source.error(str(exc), path, _OVER_BUDGET) from None

    # ---- blocks ---------------------------------------------------------------------------

    def block(self, block: Block, item: Item, full: str, inputs: list[Ref], env: Mapping, frozen: bool,
              scope: str | None) -> Ref | None:
        path = item.path + (item.op,)
        if block.name in self.expanding:
            cycle = " → ".join([*self.expanding[self.expanding.index(block.name):], block.name])
            self.error(f"block `{block.name}` uses itself ({cycle})", path, key=True,
                       hint="a block may use other blocks, but not itself, directly or through others")
            return None
        given = item.args
        if not isinstance(given, dict):
            if len(block.args) != 1:
                self.error(f"block `{block.name}` takes named arguments: {', '.join(block.args) or 'none'}",
                           path, f"write `{block.name}: {{name: value}}`", where=full)
                return None
            given = {next(iter(block.args)): given}
        block_env = _scope({}, self.spec.model.args)  # a body sees the spec's args, not its caller's names
        block_env.update(_block_vars(inputs[0].shape if inputs else None))  # and its own input's shape
        ok = True
        for key in given:
            if key not in block.args:
                self.error(f"unknown argument `{brief(key)}` for block `{block.name}`", path + (key,),
                           lambda key=key: did_you_mean(key, block.args) or f"its arguments: {listing(block.args)}",
                           key=True, where=full)
                ok = False
        for key, (required, default) in block.args.items():
            if key not in given:
                if required is not None:
                    self.error(f"block `{block.name}` needs argument `{key}` ({required.__name__})", path,
                               where=full)
                    ok = False
                    continue
                # a default is evaluated where the block is used: `${in_channels}` is the input's channels
                value = self.value(default, block_env, block.path + ("args", key), full, inputs)
                ok = ok and value is not _FAILED
                block_env[key] = value
                continue
            value = self.value(given[key], env, path + (key,), full, inputs)
            if value is _FAILED:
                ok = False
                continue
            expected = required or (type(default) if default is not None and not has_expression(default) else None)
            if expected is not None and not _is_type(value, expected):
                self.error(f"argument `{key}` of block `{block.name}` must be {expected.__name__}, "
                           f"got {value!r}", path + (key,), where=full)
                ok = False
            block_env[key] = value
        if len(inputs) != len(block.inputs):
            self.error(f"block `{block.name}` takes {len(block.inputs)} input(s) "
                       f"({', '.join(block.inputs)}), got {len(inputs)}", item.path, where=full)
            ok = False
        if not ok:
            return None
        self.graph.scopes[full] = Scope(full, "block", block.name, scope, item.path, init=item.init,
                                        args={k: block_env[k] for k in block.args}, inputs=[r.name for r in inputs])
        inner = Names()
        inner.table.update(zip(block.inputs, inputs))
        self.expanding.append(block.name)
        self.roots.append(full + ".")
        out = self.seq(block.layers, full + ".", inner, inputs[0], block_env, frozen, full)
        self.roots.pop()
        self.expanding.pop()
        if block.output is None:
            return out
        ref = inner.lookup(block.output)
        if ref is None:
            self.error(f"block output `{brief(block.output)}` names no layer of the block", block.path + ("output",),
                       lambda: did_you_mean(block.output, inner.visible()))
        return ref

    # ---- catalog layers ---------------------------------------------------------------------

    def layer(self, item: Item, full: str, inputs: list[Ref], env: Mapping, frozen: bool,
              scope: str | None) -> Ref | None:
        if len(self.graph.nodes) >= MAX_LAYERS:
            raise self.source.error(f"the network expands to more than {MAX_LAYERS:,} layers", item.path,
                                    _OVER_BUDGET)
        entry = REGISTRY[item.op]
        path = item.path + (item.op,)
        validated = self.arguments(item, entry, full, inputs, env)
        if validated is None:
            return None
        args, named = validated
        low, high = entry.arity
        if len(inputs) < low or (high is not None and len(inputs) > high):
            want = f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
            self.error(f"`{item.op}` takes {want} input(s), got {len(inputs)}",
                       item.path + ("from",) if item.from_ is not None else path,
                       "name its inputs: `- add: [a, b]`" if low > 1 else None, where=full)
            return None
        if not self.dtypes_fit(entry, item, inputs, path, full):
            return None
        integer = entry.dtypes == ANY and all(r.integer for r in inputs)
        if not entry.splits:
            return Ref(full, self.node(item, entry, args, full, inputs, named, frozen, scope), integer)
        # several outputs (`chunk`): one node per part, `<name>.<i>`, in a scope named after the item
        count = self.part_count(entry, args, item)
        self.graph.scopes[full] = Scope(full, "parts", item.op, scope, item.path)
        shapes: list[Shape | None] = []
        for i in range(count):  # the first part's shape rule checks the split; the others follow it
            shapes.append(self.node(item, entry, entry.part(args, i), f"{full}.{i}", inputs, named, frozen, full,
                                    infer=i == 0 or shapes[0] is not None))
        return Ref(full, None, integer, tuple(Ref(f"{full}.{i}", s, integer) for i, s in enumerate(shapes)))

    def arguments(self, item: Item, entry: Layer, full: str, inputs: list[Ref],
                  env: Mapping) -> tuple[Args, set[str]] | None:
        """The item's validated arguments and the names its mapping gives them (none for a main argument
        given alone); None after an error, reported."""
        path = item.path + (item.op,)
        raw, short = item.args, False
        if entry.main_arg == FROM and isinstance(raw, (list, str)):
            raw = {}
        elif not isinstance(raw, dict):
            if entry.main_arg is None or entry.main_arg == FROM:
                self.error(f"`{item.op}` takes no single argument", path,
                           f"write `{item.op}: {{...}}` with named arguments", where=full)
                return None
            short = True
        values = self.value(raw, env, path, full, inputs)
        if values is _FAILED:
            return None
        if short:
            values = {entry.main_arg: values}
        dynamic, steps = self.measure(raw)
        self.spend(steps, path)  # pydantic validates it: a copy of a big argument is not free
        long = next((k for k, v in values.items() if isinstance(v, list) and len(v) > MAX_DIMS), None) \
            if dynamic or steps > MAX_DIMS else None
        if long is not None:  # pydantic would report each of its items
            self.error(f"`{brief(long)}` lists {len(values[long]):,} values; a list argument gives one per axis or "
                       f"dim, at most {MAX_DIMS}", path + (long,) if not short else path, where=full)
            return None
        try:
            args = entry.Args.model_validate(values)
        except ValidationError as exc:
            # a failing item in a repeated block fails alike in every copy: describe it once (a did-you-mean
            # search per copy made 50,000 copies take 20 s)
            seen = (path, short, tuple((e["type"], e["loc"], _brief_input(e.get("input"))) for e in exc.errors()))
            if seen in self.refused:
                return None
            self.refused.add(seen)
            fields = _field_names(entry.Args)
            for err in pydantic_errors(exc, () if short else path, self.source, aliases=fields,
                                       what="argument", data=values):
                if short:
                    err = self.source.error(f"`{item.op}`: {err.message}", path)
                if "integer" in err.message and "/" in str(raw).replace("//", ""):
                    err.hint = err.hint or ("`/` always gives a float: use `//` for a whole number "
                                            "(`${in_features // 4}`)")
                err.notes.append(f"in `{full}`")
                self.diag.add(err)
            return None
        return args, set() if short else set(values)

    def node(self, item: Item, entry: Layer, args: Args, name: str, inputs: list[Ref], named: set[str], frozen: bool,
             scope: str | None, infer: bool = True) -> Shape | None:
        """Add the node `name` applying `entry` with `args` to `inputs`; its output shape, None when an input's
        is unknown, when `infer` is false (an earlier part's error covers it), or when it is refused (reported)."""
        path = item.path + (item.op,)
        in_shapes = [r.shape for r in inputs]
        shape = params = None
        if infer and all(s is not None for s in in_shapes):
            try:
                shape = tuple(entry.infer(args, in_shapes))
            except ShapeError as exc:
                written = [k for k in _spellings(entry.Args, exc.arg) if k in named] if exc.arg else []
                blamed = path + (written[0],) if written else path  # the argument as the spec spells it
                shown = ", ".join("×".join(map(str, s)) for s in in_shapes)
                err = self.source.error(exc.message, blamed, exc.hint, key=blamed == path)
                err.notes.append(f"in `{brief(name)}` ({item.op}), input {brief(shown)}")
                self.diag.add(err)
            else:
                params = entry.params(args, in_shapes)
                if not self.fits_torch(entry, shape, params, path, name):
                    shape = None
        self.graph.nodes[name] = Node(name, item.op, args, [r.name for r in inputs], in_shapes, shape, item.path,
                                      scope, frozen, item.init, params if shape is not None else None)
        return shape

    def part_count(self, entry: Layer, args: Args, item: Item) -> int:
        """How many tensors the item's op gives; past MAX_LAYERS nodes in all, the expansion stops here."""
        count = entry.parts(args)
        if len(self.graph.nodes) + count > MAX_LAYERS:
            raise self.source.error(f"`{item.op}` into {count:,} parts makes the network more than {MAX_LAYERS:,} "
                                    "layers", item.path + (item.op,), "split into fewer parts")
        return count

    def local(self, name: str) -> str:
        """A full name as the block body being expanded names it (`from:` resolves it there)."""
        return name.removeprefix(self.roots[-1])

    def fits_torch(self, entry: Layer, shape: Shape, params: int, path: PathT, full: str) -> bool:
        """Whether the layer's output and parameters fit in torch tensors; if not, an error says why."""
        elements = numel(shape)
        hint = "check the sizes"
        if len(shape) > MAX_DIMS:
            problem = f"its output has {len(shape)} dims, more than the {MAX_DIMS} netspec allows"
        elif elements is not None and elements >= MAX_ELEMENTS:
            problem = f"its output holds {elements:,} elements per sample; {TENSOR_LIMIT}"
        elif params >= MAX_ELEMENTS:
            problem = f"it would hold {params:,} parameters; {TENSOR_LIMIT}"
        elif elements is None and any(len(str(d)) > MAX_SYMBOLIC for d in shape):  # None: a dim is symbolic
            problem = (f"the expression of its output size passes {MAX_SYMBOLIC} characters: "
                       f"{brief(format_shape(shape))}")
            hint = "give the input's symbolic dims sizes (`netspec validate --dim NAME=SIZE`)"
        else:
            return True
        self.error(f"`{entry.op}` is too large: {problem}", path, hint, key=True, where=full)
        return False

    def dtypes_fit(self, entry: Layer, item: Item, inputs: list[Ref], path: PathT, full: str) -> bool:
        """Integer ids go into lookups (`embedding`) and reshapes; everything else computes on floats."""
        values = [r for i, r in enumerate(inputs) if i not in entry.mask_inputs]  # a mask may be integer
        if entry.dtypes == FLOAT and any(r.integer for r in values):
            ids = next(r.name for r in values if r.integer)
            self.error(f"`{item.op}` computes on floating-point values, but `{ids}` holds integer ids", path,
                       "map the ids to vectors with `embedding` first", key=True, where=full)
            return False
        if entry.dtypes == INDEX and not all(r.integer for r in inputs):
            values = next(r.name for r in inputs if not r.integer)
            self.error(f"`{item.op}` looks up integer ids, but `{values}` holds floating-point values", path,
                       "declare the input as integer ids: `input: {shape: [T], dtype: int64}`", key=True,
                       where=full)
            return False
        return True


_FAILED = object()
_OVER_BUDGET = "blocks that use blocks, and repeats, multiply their contents: check how often each is used"
MAX_LAYERS = 50_000  # layers after expansion; also the most copies of one item, repeats multiplied
MAX_ITEMS = 200_000  # item copies expansion visits: layers, groups, blocks, skipped ones
MAX_NESTING = 64  # groups and blocks inside each other
SMALL_ENV = 64  # expression names copied per layer rather than chained


def _scope(local: dict, env: Mapping) -> Mapping:
    """`local`'s names over `env`'s: a merged copy while `env` is small, else a ChainMap, so that a spec with
    many `args` is not copied for every layer."""
    if isinstance(env, dict) and len(env) <= SMALL_ENV:
        return {**env, **local}
    return ChainMap(local, env)


_SHAPE_VARS = ("in_shape", "in_channels", "in_features", "input_shape", "input_channels", "input_features")


def _quoted(name: str) -> str:
    """A dotted name as YAML reads it back as a string: `x.0` as it is, `'3.0'` (else a float) quoted."""
    return name if name[:1].isalpha() else f"'{name}'"


def _block_vars(shape: Shape | None) -> dict[str, Any]:
    """Names a block body may use about the block's own (first) input, the same in every layer of the body."""
    return {f"input_{k[3:]}": v for k, v in _shape_vars(shape).items()}


def _shape_vars(shape: Shape | None) -> dict[str, Any]:
    """Names an expression may use about the incoming tensor."""
    if not shape:
        return {}
    return {"in_shape": list(shape), "in_channels": shape[0], "in_features": shape[-1]}


def _is_type(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _brief_input(value: Any) -> str:
    """A short, hashable stand-in for a value pydantic refused (its repr, cut)."""
    return brief(repr(value)) if not isinstance(value, (dict, list)) else type(value).__name__


def _field_names(model: type[Args]) -> set[str]:
    return {key for name in model.model_fields for key in _spellings(model, name)}


def _spellings(model: type[Args], name: str) -> list[str]:
    """The keys a spec may give argument `name` by: the name and its aliases (`kernel_size`, `kernel`)."""
    info = model.model_fields.get(name)
    alias = info.validation_alias if info is not None else None
    return [name, *(c for c in getattr(alias, "choices", ()) if isinstance(c, str))]
