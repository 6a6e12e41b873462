"""The network of a spec as an ONNX model, through torch's `torch.export`-based exporter.

    from netspec.export.onnx import export
    export(spec, "model.onnx")                    # the batch dim and symbolic dims stay dynamic
    export(spec, "model.onnx", dims={"T": 100})   # or bind a symbolic dim to a size

The model is `netspec.build(spec)` (or a module you pass, such as a trained one) in eval
mode. Its graph inputs and outputs are named as the spec names them (`input`, or the
`inputs:` names; `output`, or the `outputs:` names), its weights keep their `state_dict`
names (`layer1.0.conv1.weight`) where the exporter's optimizer leaves them as they are, and
every symbolic dim of the spec (`[T, 32]`) is a named dynamic axis, as is the batch dim,
`batch`. The file is written whole or not at all.

Why `torch.onnx.export(..., dynamo=True)` (torch.export, translated to ONNX by onnxscript):
it is torch's default and maintained exporter since 2.9; the TorchScript-based one
(`dynamo=False`) warns that it is deprecated and will be removed. The new exporter writes
opset 18 and later (20 by default in torch 2.13), and converts to a lower one when the onnx
version converter can.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from pathlib import Path

import torch

from ..analysis import bind_dims
from ..compiler import build, valid_graph
from ..errors import SpecError, SpecErrors
from ..files import atomic_write
from ..graph import Graph, build_graph
from ..spec import Spec

BATCH = "batch"  # the name of the dynamic batch axis
EXAMPLE_BATCH = 2  # the batch the exporter traces with (not 0 or 1, which torch.export specializes)
EXAMPLE_SIZES = (16, 32, 64, 128, 256, 512, 1024)  # tried in turn for the symbolic dims (see example_dims)


class ExportError(Exception):
    """torch's exporter could not export the network; the message says why, and what to try."""


def export(spec: Spec, path: str | Path, opset: int | None = None, dims: dict[str, int] | None = None,
           module: torch.nn.Module | None = None) -> Path:
    """Write the spec's network to `path` as an ONNX model; return the path.

    `opset`: the ONNX opset (default: the exporter's, 20 in torch 2.13; below 18 when the model converts).
    `dims`: symbolic dims to bind to sizes (`{"T": 100}`), which become static in the model; the
    others stay dynamic. `module`: the module to export (default: `netspec.build(spec)`, freshly
    initialized), e.g. one with trained weights; it is put in eval mode.
    Raises SpecError(s) for an invalid spec, ValueError for a `dims` name that is no symbolic
    dim of the inputs, ExportError when torch's exporter fails.
    """
    graph = valid_graph(_bound(spec, dims or {}))
    module = (module if module is not None else build(graph)).eval()
    dynamic = {name: {0: BATCH, **{i + 1: d for i, d in enumerate(value.shape) if isinstance(d, str)}}
               for name, value in graph.inputs.items()}
    with _quiet():
        _clear_rnn_dispatch_caches()
        try:
            program = torch.onnx.export(
                module, tuple(example_inputs(graph).values()), dynamic_shapes=dynamic,
                input_names=list(graph.inputs), output_names=list(graph.outputs), opset_version=opset,
                dynamo=True, external_data=False, verbose=False)
        except ImportError as exc:
            raise ExportError(f"ONNX export needs the packages onnx and onnxscript ({exc}): "
                              "pip install 'netspec[export]'") from exc
        except Exception as exc:  # torch's exporter raises many kinds; each becomes one message
            raise ExportError(_reason(graph, exc)) from exc
    proto = program.model_proto
    written = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if opset is not None and written != opset:
        raise ExportError(f"torch's exporter wrote opset {written}, not {opset}: the onnx version converter "
                          f"cannot take `{graph.name}` to opset {opset}")
    return atomic_write(path, proto.SerializeToString())


def _bound(spec: Spec, dims: dict[str, int]) -> Spec:
    """`spec` with `dims` bound; ValueError for a name that is no symbolic dim of its inputs."""
    symbolic = symbolic_dims(spec)
    unknown = [name for name in dims if name not in symbolic]
    if unknown:
        have = f"its symbolic dims: {', '.join(symbolic)}" if symbolic else "its inputs have no symbolic dims"
        raise ValueError(f"`{unknown[0]}` is not a symbolic dim of `{spec.name}`'s inputs ({have})")
    return bind_dims(spec, dims)


def symbolic_dims(spec: Spec | Graph) -> list[str]:
    """The names of the symbolic dims of the inputs, in order of first appearance."""
    names = [d for value in spec.inputs.values() for d in value.shape if isinstance(d, str)]
    return list(dict.fromkeys(names))


def example_dims(spec: Spec | Graph) -> dict[str, int]:
    """A size for each symbolic dim to trace with: distinct sizes (torch.export would take two dims of one
    size for one dim), and the smallest in EXAMPLE_SIZES, times the dim's number, that the network accepts."""
    spec = spec.spec if isinstance(spec, Graph) else spec
    names = symbolic_dims(spec)
    if not names:
        return {}
    for size in EXAMPLE_SIZES:
        dims = {name: size * (i + 1) for i, name in enumerate(names)}
        try:
            build_graph(bind_dims(spec, dims))
        except (SpecError, SpecErrors) as exc:
            last = exc
            continue
        return dims
    raise ExportError(f"`{spec.name}` accepts none of the sizes {', '.join(map(str, EXAMPLE_SIZES))} for its "
                      f"symbolic dims ({', '.join(names)}), so none can be traced: {last}")


def example_inputs(graph: Graph) -> dict[str, torch.Tensor]:
    """A batch of zeros for each input, symbolic dims at their example sizes (values do not matter to
    the exporter: every netspec op's shapes are independent of the data)."""
    dims = example_dims(graph)
    return {name: torch.zeros((EXAMPLE_BATCH, *(dims.get(d, d) for d in value.shape)),
                              dtype=getattr(torch, value.dtype))
            for name, value in graph.inputs.items()}


def _reason(graph: Graph, exc: Exception) -> str:
    """torch's error, shortened to its summary (or, for a symbolic dim torch fixed, said in the spec's words),
    with a hint when symbolic dims may be why."""
    text = str(exc)
    summary = text.partition("## Exception summary")[2].strip() or text.strip()
    summary = summary.partition("\n\n(Refer to")[0].strip()
    fixed = _fixed_dim(graph, summary)
    if fixed is not None:
        dim, name, size = fixed
        summary = (f"torch.export fixed the symbolic dim `{dim}` of input `{name}` to its example size {size}: "
                   "an op of the network cannot take a length it does not know")
    message = f"torch's ONNX exporter cannot export `{graph.name}`: {summary}"
    names = symbolic_dims(graph)
    if names:
        dim = fixed[0] if fixed is not None else names[0]
        message += f"\n  hint: bind the dim to the size the model will run at: dims={{'{dim}': N}} (`--dim {dim}=N`)"
    return message


# torch.export's words for an axis declared dynamic that tracing made static
_FIXED = re.compile(r"inferred a static shape of (?P<size>\d+) for dimension "
                    r"inputs\['(?P<input>\w+)'\]\.shape\[(?P<axis>\d+)\]")


def _fixed_dim(graph: Graph, text: str) -> tuple[str, str, str] | None:
    """(symbolic dim, input, example size) when `text` says torch.export made that dim static."""
    match = _FIXED.search(text)
    if match is None or match["input"] not in graph.inputs:
        return None
    shape, axis = graph.inputs[match["input"]].shape, int(match["axis"])
    dim = shape[axis - 1] if 0 < axis <= len(shape) else None
    return (dim, match["input"], match["size"]) if isinstance(dim, str) else None


@contextlib.contextmanager
def _quiet():
    """Silence what torch's exporter logs and warns about its own internals (torchvision ops it skips when
    torchvision is absent, deprecations inside torch.export, nn.RNN's `_flat_weights`, onnxscript's opset
    conversion): nothing a netspec user can act on. Errors still raise."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _clear_rnn_dispatch_caches() -> None:
    """Work around torch 2.13: the exporter swaps while-loop decompositions of `aten.lstm`/`aten.gru` (which
    keep a symbolic sequence length) into those ops' `py_kernels` without clearing the ops' dispatch caches,
    so from the second export in a process on, the cached default decomposition specializes the length and
    the export fails. Clearing the caches first makes every export like the first."""
    for op in (torch.ops.aten.lstm.input, torch.ops.aten.gru.input):
        cache = getattr(op, "_dispatch_cache", None)
        if cache is not None:
            cache.clear()
