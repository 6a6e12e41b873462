"""Per-layer and total costs of a Graph, computed symbolically (pure Python, no torch).

Conventions (see docs/analysis.md):
- `params`: learnable parameters, as torch's `sum(p.numel())`; buffers excluded.
- `macs`: multiply-accumulates of convolutions, linear layers, matrix products
  and recurrent gates, bias not counted (the convention of torchvision's
  "GFLOPS" column and the ResNet paper's FLOPs). Unknown (None) when a layer's
  cost depends on a symbolic dim.
- `flops`: 2·MACs plus the element-wise work each entry reports (activations,
  normalization, pooling, merges).
- memory: float32 (4 bytes per element). Activations are counted per sample:
  every layer's output, as autograd keeps them for the backward pass.
- receptive field: per spatial axis of a [C, *spatial] input, composed as
  r' = r + (k-1)·j, j' = j·s; merges take the largest; `global` once a layer
  mixes every position.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .arith import Shape, numel
from .errors import Diagnostics
from .graph import Graph, Node, build_graph
from .layers import GLOBAL, SymbolicSize
from .perf import without_gc
from .spec import InputDef, Spec

BYTES = 4  # float32
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "rmsprop": 1, "adagrad": 1, "adam": 2, "adamw": 2}


@dataclass(frozen=True)
class RF:
    """Receptive field of one output element: size and jump (stride product) per spatial axis."""

    size: tuple
    jump: tuple

    def to_json(self) -> dict:
        return {"size": [_num(s) for s in self.size], "jump": [_num(j) for j in self.jump]}

    def __str__(self) -> str:
        sizes = [_num(s) for s in self.size]
        return str(sizes[0]) if len(set(sizes)) == 1 else "×".join(map(str, sizes))


@dataclass
class LayerStats:
    node: Node = field(repr=False)
    inputs: list[str]
    output_shape: Shape
    params: int
    trainable: bool
    macs: int | None
    flops: int | None
    activations: int | None  # output elements per sample
    receptive_field: Any  # RF, GLOBAL or None

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def op(self) -> str:
        return self.node.op

    @property
    def label(self) -> str:
        """`conv2d 3×3/2 · 64`: made when shown, not for every analysis."""
        return self.node.label

    @property
    def scope(self) -> str | None:
        return self.node.scope

    def to_json(self) -> dict:
        rf = self.receptive_field
        return {
            "name": self.name, "op": self.op, "label": self.label, "inputs": self.inputs,
            "output_shape": list(self.output_shape), "params": self.params, "trainable": self.trainable,
            "macs": self.macs, "flops": self.flops, "activations": self.activations,
            "receptive_field": rf.to_json() if isinstance(rf, RF) else rf,
        }


@dataclass
class Analysis:
    name: str
    graph: Graph
    inputs: dict[str, Shape]
    outputs: dict[str, Shape]
    layers: list[LayerStats] = field(default_factory=list)

    @property
    def by_name(self) -> dict[str, LayerStats]:
        return {s.name: s for s in self.layers}

    @property
    def total_params(self) -> int:
        return sum(s.params for s in self.layers)

    @property
    def trainable_params(self) -> int:
        return sum(s.params for s in self.layers if s.trainable)

    @property
    def macs(self) -> int | None:
        return _sum_known(s.macs for s in self.layers)

    @property
    def flops(self) -> int | None:
        return _sum_known(s.flops for s in self.layers)

    @property
    def activation_elements(self) -> int | None:
        return _sum_known(s.activations for s in self.layers)

    @property
    def activation_bytes(self) -> int | None:
        """Forward activation memory per sample (float32)."""
        acts = self.activation_elements
        return None if acts is None else acts * BYTES

    @property
    def param_bytes(self) -> int:
        return self.total_params * BYTES

    def training_memory(self, batch: int, optimizer: str = "adam") -> dict[str, int | None]:
        """Estimated bytes to train at `batch`: weights, gradients, optimizer state, activations.

        Activations are every layer's output for `batch` samples plus the inputs;
        gradients and optimizer state cover trainable parameters only.
        """
        trainable = self.trainable_params * BYTES
        acts = self.activation_elements
        inputs = _sum_known(numel(s) for s in self.inputs.values())
        activations = None if acts is None or inputs is None else (acts + inputs) * batch * BYTES
        parts = {
            "weights": self.param_bytes,
            "gradients": trainable,
            "optimizer_state": trainable * OPTIMIZER_STATES[optimizer],
            "activations": activations,
        }
        parts["total"] = _sum_known(parts.values())
        return parts

    def to_json(self, batch: int | None = None, optimizer: str = "adam") -> dict:
        out = {
            "name": self.name,
            "inputs": {k: list(v) for k, v in self.inputs.items()},
            "outputs": {k: list(v) for k, v in self.outputs.items()},
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "macs": self.macs,
            "flops": self.flops,
            "param_bytes": self.param_bytes,
            "activation_bytes_per_sample": self.activation_bytes,
            "layers": [s.to_json() for s in self.layers],
        }
        if batch is not None:
            out["training_memory"] = {"batch": batch, "optimizer": optimizer,
                                      **self.training_memory(batch, optimizer)}
        return out


@without_gc
def analyze(spec: Spec | Graph, dims: dict[str, int] | None = None,
            stats: list[LayerStats] | None = None) -> Analysis:
    """Expand (if given a Spec), then compute every layer's costs; checks `expect:`.

    `dims` binds symbolic input dims (`{"T": 32}`) so costs that depend on them are known. `stats`: the
    graph's `layer_stats`, when the caller has them already.
    """
    dims = dims or {}
    graph = spec if isinstance(spec, Graph) else build_graph(bind_dims(spec, dims))
    result = Analysis(graph.name, graph, {k: tuple(v.shape) for k, v in graph.inputs.items()},
                      {k: graph.shape_of(v) for k, v in graph.outputs.items()},
                      layer_stats(graph) if stats is None else stats)
    check_expect(result, dims)
    return result


def layer_stats(graph: Graph) -> list[LayerStats]:
    """Costs of every layer whose shapes are known (all of them in a valid graph), in order."""
    rfs: dict[str, Any] = {name: _input_rf(tuple(d.shape), d.integer) for name, d in graph.inputs.items()}
    out = []
    for node in graph.nodes.values():
        if node.shape is None or any(s is None for s in node.in_shapes):
            continue
        stats = _layer_stats(node, rfs)
        rfs[node.name] = stats.receptive_field
        out.append(stats)
    return out


def bind_dims(spec: Spec, dims: dict[str, int]) -> Spec:
    """A copy of `spec` whose symbolic input dims named in `dims` are replaced by sizes."""
    if not dims:
        return spec
    inputs = {name: InputDef(shape=[dims.get(d, d) if isinstance(d, str) else d for d in value.shape],
                             dtype=value.dtype) for name, value in spec.inputs.items()}
    return dataclasses.replace(spec, inputs=inputs)


def _layer_stats(node: Node, rfs: dict[str, Any]) -> LayerStats:
    entry, a, shapes, out = node.entry, node.args, node.in_shapes, node.shape
    try:  # a cost that depends on an unbound symbolic dim is unknown
        macs = entry.macs(a, shapes, out)
    except SymbolicSize:
        macs = None
    try:
        flops = None if macs is None else 2 * macs + entry.flops(a, shapes, out)
    except SymbolicSize:
        flops = None
    rf = _compose_rf([rfs.get(i) for i in node.inputs], entry.rf(a, shapes))
    return LayerStats(node, list(node.inputs), out, node.params, not node.frozen, macs, flops, numel(out), rf)


def _input_rf(shape: Shape, ids: bool):
    """An input's field: one position on each spatial axis; every axis of integer ids is spatial (an
    `embedding` adds the channels), so `[T]` ids and `[T, E]` vectors have the same field over T."""
    axes = len(shape) if ids else len(shape) - 1
    return RF((1,) * axes, (1,) * axes) if axes >= 1 else None


def _compose_rf(inputs: list, rule) -> Any:
    """A layer's field from its inputs' fields and its rule (see Layer.rf)."""
    base = inputs[0] if len(inputs) == 1 else _merge_rf(inputs)
    if rule is None or base is None:
        return base
    if rule == GLOBAL or base == GLOBAL:
        return GLOBAL
    if len(rule) != len(base.size):
        return None
    size = tuple(_exact(r + (k - 1) * j) for r, j, (k, _) in zip(base.size, base.jump, rule))
    jump = tuple(_exact(j * s) for j, (_, s) in zip(base.jump, rule))
    return RF(size, jump)


def _merge_rf(inputs: list) -> Any:
    """A merge sees the largest field (and jump) of its inputs; `global` if any input is."""
    if GLOBAL in inputs:
        return GLOBAL
    if not all(isinstance(r, RF) for r in inputs) or len({len(r.size) for r in inputs}) != 1:
        return None
    return RF(tuple(map(max, zip(*(r.size for r in inputs)))), tuple(map(max, zip(*(r.jump for r in inputs)))))


def _exact(x):
    """A whole Fraction as an int: ints keep the common case fast."""
    return x.numerator if isinstance(x, Fraction) and x.denominator == 1 else x


def check_expect(result: Analysis, dims: dict[str, int]) -> None:
    """Compare `expect:` with the analysis; each mismatch is an error at its line.

    Symbolic dims in expected shapes are bound by `dims` as the inputs were.
    """
    spec = result.graph.spec
    expect = spec.model.expect
    if expect is None:
        return

    def bound(shape):
        return [dims.get(d, d) if isinstance(d, str) else d for d in shape]

    diag = Diagnostics()
    source = spec.source

    def fail(key, want, got, hint=None):
        diag.add(source.error(f"expected {key} {_fmt(want)}, the spec gives {_fmt(got)}", ("expect", key), hint))

    if expect.params is not None and expect.params != result.total_params:
        fail("params", expect.params, result.total_params)
    if expect.trainable_params is not None and expect.trainable_params != result.trainable_params:
        fail("trainable_params", expect.trainable_params, result.trainable_params)
    if expect.macs is not None and expect.macs != result.macs:
        fail("macs", expect.macs, result.macs)
    if expect.output is not None:
        if len(result.outputs) != 1:
            diag.add(source.error("`expect.output` is for a single output; use `expect.outputs`",
                                  ("expect", "output")))
        elif list(next(iter(result.outputs.values()))) != bound(expect.output):
            fail("output", bound(expect.output), list(next(iter(result.outputs.values()))))
    for name, shape in (expect.outputs or {}).items():
        got = result.outputs.get(name)
        if got is None:
            diag.add(source.error(f"expected an output `{name}`; outputs are {', '.join(result.outputs)}",
                                  ("expect", "outputs", name), key=True))
        elif list(got) != bound(shape):
            diag.add(source.error(f"expected output `{name}` {bound(shape)}, the spec gives {list(got)}",
                                  ("expect", "outputs", name)))
    for err in diag.errors:  # an `expect:` from the file this one extends: say which network failed it
        if err.mark is not None and err.mark.file != spec.file:
            err.notes.append(f"checked for `{spec.file}`, which inherits this `expect` from `{err.mark.file}` "
                             f"through `extends`: override it in `{spec.file}`")
    diag.raise_if_any()


def _fmt(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _num(x):
    return x if isinstance(x, int) else int(x) if x.denominator == 1 else float(x)


def _sum_known(values) -> int | None:
    total = 0
    for v in values:
        if v is None:
            return None
        total += v
    return total
