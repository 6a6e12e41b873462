"""Compile a Graph into a torch module: submodules named as the spec names them, and a
straight-line `forward` recorded as a torch.fx graph.

Each layer's catalog `Call` is instantiated in a module tree that follows the
dotted node names (`layer1.0.conv1` is `layer1[0].conv1`), so `state_dict` keys
are the node names plus torch's parameter names. A container whose children are
0..n-1 is an `nn.ModuleList`, one with other numbers only an `nn.ModuleDict`, any
other (names, or a bare parameter among its children) a plain `nn.Module`. The forward is recorded by
running each entry's `forward` on fx proxies in topological order; every fx node
notes the layer it computes (`node.meta["layer"]`), from which codegen writes one
line per layer of the very graph `build` runs.

The result is a `torch.fx.GraphModule`: called with the spec's inputs (positional or
by name, in spec order), it returns a tensor, or a dict output name -> tensor when
the spec lists several `outputs`.
"""

from __future__ import annotations

import keyword
import os
import re
from dataclasses import dataclass

import torch
from torch import fx
from torch.fx.proxy import GraphAppendingTracer, Proxy

from .errors import SpecErrors
from .graph import Graph, build_graph
from .init import Init, layer_init, to_init
from .layers import Call
from .spec import Spec
from .torch_backend import instantiate


def build(spec: Spec | Graph, device=None, dtype: torch.dtype | None = None,
          init: str | dict | None = None) -> fx.GraphModule:
    """The spec as an `nn.Module` on `device` (`"meta"` allocates nothing), parameters in `dtype` (default: the
    floating-point dtype the spec's inputs declare, `input: {shape: [4], dtype: float64}`, else float32).

    `init` replaces the spec's top-level `init:` (same values; a layer's own `init:` still wins).
    Raises SpecError before allocating when the parameters would not fit in memory. `expect:` is not
    checked here (`netspec.analyze` and `netspec validate` check it): a build is the same on every device.
    """
    graph = valid_graph(spec)
    dtype = dtype or declared_dtype(graph)
    check_memory(graph, device, dtype)
    return compile_graph(graph, device, dtype, to_init(init) if init is not None else None).module


def declared_dtype(graph: Graph) -> torch.dtype | None:
    """The one floating-point dtype the graph's float inputs declare, if they declare one other than float32."""
    floats = {d.dtype for d in graph.inputs.values() if not d.integer}
    return getattr(torch, floats.pop()) if len(floats) == 1 and floats != {"float32"} else None


def valid_graph(spec: Spec | Graph) -> Graph:
    """The spec's graph; raises its errors (a Graph expanded with strict=False may hold some)."""
    graph = spec if isinstance(spec, Graph) else build_graph(spec)
    if graph.errors:
        raise SpecErrors(graph.errors)
    return graph


@dataclass(frozen=True)
class InitCall:
    param: str  # full parameter name: `layer1.0.conv1.weight`
    fn: str  # a torch.nn.init function: `kaiming_normal_`
    kwargs: dict


@dataclass
class Compiled:
    """What build and codegen share: the module, the Call of each module or parameter, the containers' kinds,
    and the init calls applied."""

    module: fx.GraphModule
    holders: dict[str, Call]  # node name -> its Call, in node order
    kinds: dict[str, str]  # container path ("" = root) -> "list", "dict" or "module"
    inits: list[InitCall]
    values: dict[str, fx.Node]  # input or layer name -> the fx node of its value


def compile_graph(graph: Graph, device=None, dtype=None, top: Init | None = None) -> Compiled:
    """Instantiate, initialize and freeze every layer's state in node order, then record the forward."""
    holders = {}
    for node in graph.nodes.values():
        call = node.entry.module(node.args, node.in_shapes) if node.shares is None else None
        if call is not None:
            holders[node.name] = call
    kinds = container_kinds(holders)
    root = torch.nn.Module()
    for name, call in holders.items():
        _attach(root, kinds, name, instantiate(call, device, dtype))
    inits = init_calls(graph, root, holders, top)
    for c in inits:
        getattr(torch.nn.init, c.fn)(get_state(root, c.param), **c.kwargs)
    for name in holders:
        if graph.nodes[name].frozen:
            get_state(root, name).requires_grad_(False)
    fx_graph, values = trace(graph, holders)
    module = fx.GraphModule(root, fx_graph, class_name=class_name(graph.name))
    for name, child in root.named_children():  # GraphModule copies containers as plain Modules
        setattr(module, name, child)
    return Compiled(module, holders, kinds, inits, values)


CONTAINERS = {"list": torch.nn.ModuleList, "dict": torch.nn.ModuleDict, "module": torch.nn.Module}


def container_kinds(holders: dict[str, Call]) -> dict[str, str]:
    """Each container path ("" = root) -> "list" (children 0..n-1), "dict" (other numbers) or "module"."""
    children: dict[str, dict[str, bool]] = {}  # container -> child -> is a bare parameter
    for name, call in holders.items():
        parts = name.split(".")
        for i, part in enumerate(parts):
            is_param = i == len(parts) - 1 and call.is_parameter
            children.setdefault(".".join(parts[:i]), {})[part] = is_param
    return {path: _kind(path, kids) for path, kids in children.items()}


def _kind(path: str, kids: dict[str, bool]) -> str:
    if path == "" or any(kids.values()):
        return "module"
    names = list(kids)
    if names == [str(i) for i in range(len(names))]:
        return "list"
    return "dict" if all(n.isdigit() for n in names) else "module"


def _attach(root: torch.nn.Module, kinds: dict[str, str], name: str, state) -> None:
    """Put `state` (a module or parameter) at the dotted `name`, creating its containers on the way."""
    *owners, last = name.split(".")
    parent, prefix = root, ""
    for part in owners:
        here = f"{prefix}.{part}" if prefix else part
        child = parent._modules.get(part)
        if child is None:
            child = CONTAINERS[kinds[here]]()
            _add(parent, kinds[prefix], part, child)
        parent, prefix = child, here
    _add(parent, kinds[prefix], last, state)


def _add(parent: torch.nn.Module, kind: str, part: str, value) -> None:
    if kind == "list":
        parent.append(value)
    elif kind == "dict":
        parent[part] = value
    else:
        setattr(parent, part, value)


def get_state(root: torch.nn.Module, name: str):
    """The submodule or parameter at a dotted name."""
    owner, _, last = name.rpartition(".")
    return getattr(root.get_submodule(owner), last)


def init_calls(graph: Graph, root: torch.nn.Module, holders: dict[str, Call], top: Init | None) -> list[InitCall]:
    """The torch.nn.init call of each parameter the spec's `init:` rules touch, in node order
    (the rule: `Init.call`, given torch's own name of each parameter, never the layer's)."""
    out = []
    for name, holder in holders.items():
        node = graph.nodes[name]
        scheme = layer_init(graph, node, top)
        state = get_state(root, name)
        params = [(name, None, state)] if holder.is_parameter else \
            [(f"{name}.{p}", p.rpartition(".")[2], t) for p, t in state.named_parameters()]
        for full, attr, tensor in params:
            call = scheme.call(attr, tensor.ndim, norm=node.entry.family == "norm")
            if call is not None:
                out.append(InitCall(full, *call))
    return out


class _Tracer(GraphAppendingTracer):
    """Appends fx nodes to a graph, each noting the layer it computes (`meta["layer"]`)."""

    layer: str | None = None

    def create_node(self, *args, **kwargs) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        node.meta["layer"] = self.layer
        return node


def trace(graph: Graph, holders: dict[str, Call]) -> tuple[fx.Graph, dict[str, fx.Node]]:
    """The fx graph of the network (placeholders named as the spec's inputs, then every layer in order),
    and the fx node of each input's and layer's value."""
    fx_graph = fx.Graph()
    tracer = _Tracer(fx_graph)
    values: dict[str, Proxy] = {}
    for name in graph.inputs:
        values[name] = Proxy(fx_graph.placeholder(name), tracer)
    for node in graph.nodes.values():
        tracer.layer = node.name
        owner = node.shares or node.name  # a `share:` applies its layer's module again
        state = _state(tracer, owner, holders.get(owner))
        values[node.name] = node.entry.forward(state, node.args, [values[i] for i in node.inputs])
    outputs = {name: values[ref] for name, ref in graph.outputs.items()}
    result = outputs["output"] if list(outputs) == ["output"] else outputs
    fx_graph.output(tracer.create_arg(result))
    return fx_graph, {name: value.node for name, value in values.items()}


def _state(tracer: _Tracer, name: str, call: Call | None):
    """What a layer's `forward` gets as `m`: its parameter, or a callable recording a call of its module."""
    if call is None:
        return None
    if call.is_parameter or call.is_buffer:
        return tracer.create_proxy("get_attr", name, (), {})
    if call.is_container:
        return _Members(tracer, name, call)
    return lambda *args, **kwargs: tracer.create_proxy("call_module", name, args, kwargs)


class _Members:
    """A container layer's `m` while tracing: `m.qkv(x)` records a call of that member module, `m.table` reads
    that parameter or buffer, and a plain attribute is its value, as on the built module."""

    def __init__(self, tracer: _Tracer, name: str, call: Call):
        self._tracer, self._name, self._call = tracer, name, call

    def __getattr__(self, member: str):
        if member not in self._call.kwargs:
            raise AttributeError(f"`{self._name}` has no member `{member}`")
        value = self._call.kwargs[member]
        return _state(self._tracer, f"{self._name}.{member}", value) if isinstance(value, Call) else value


def class_name(name: str) -> str:
    """`resnet18` -> `Resnet18`, `conv_autoencoder` -> `ConvAutoencoder` (always an identifier)."""
    camel = "".join(w[:1].upper() + w[1:] for w in re.findall(r"[A-Za-z0-9]+", name))
    return camel if camel.isidentifier() and not keyword.iskeyword(camel) else f"Net{camel}"  # `none`: NetNone


def check_memory(graph: Graph, device, dtype) -> None:
    """Fail before allocating when the parameters would not fit in the device's available memory
    (the catalog's parameter counts only: no analysis, no `expect:` check)."""
    device = torch.device(device if device is not None else "cpu")
    if device.type == "meta":
        return
    itemsize = torch.empty((), dtype=dtype or torch.get_default_dtype(), device="meta").element_size()
    need = sum(node.entry.params(node.args, node.in_shapes) for node in graph.nodes.values()) * itemsize
    free = available_memory(device)
    if free is not None and need > free:
        raise graph.spec.source.error(
            f"the parameters of `{graph.name}` need {gib(need)}, but {device} has {gib(free)} available", (),
            hint='build it on the meta device to inspect it: netspec.build(spec, device="meta")')


def available_memory(device: torch.device) -> int | None:
    """Bytes free on `device`: CUDA's free memory, or the host's MemAvailable; None when unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:,.2f} GiB"
