"""`netspec export SPEC -o model.onnx`: the network as an ONNX model through torch's exporter
(docs/export.md): the batch dim and the spec's symbolic dims dynamic, or bound by `--dim`; freshly
initialized, or with trained `--weights` (a run's best.pt). The spec is checked before torch is imported."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .common import (
    DIM,
    EXIT_INVALID,
    EXIT_OK,
    STDOUT,
    Failure,
    command,
    load_one,
    parse_dims,
    positive,
    readable,
    say,
    writable,
    write,
)


def register(sub) -> None:
    p = command(sub, "export", run, "write the network as an ONNX model (torch's exporter)")
    p.add_argument("spec", metavar="SPEC", help="the spec file to export")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the .onnx file to write; `-` for stdout (a pipe or a file, not a terminal)")
    p.add_argument("--opset", type=positive, metavar="N",
                   help="the ONNX opset (default: the exporter's; 18 or later, or what it converts to)")
    p.add_argument("--dim", **{**DIM, "help": "bind a symbolic input dim to a size, e.g. T=100, making it "
                                              "static (repeatable; the others stay dynamic)"})
    p.add_argument("--weights", metavar="FILE",
                   help="the weights to export, by name, every tensor of the network: a run's best.pt or "
                        "last.pt, a state_dict .pt/.pth, or .safetensors (default: freshly initialized)")


def run(args) -> int:
    from ..analysis import analyze

    dims = parse_dims(args.dim)
    writable(args.output, binary=True)
    weights = getattr(args, "weights", None)  # `compile --format onnx` has no --weights
    if weights:
        readable([weights])
    spec = load_one(args.spec, dims)
    analyze(spec, dims)  # every error of the spec before torch is imported
    from ..export.onnx import ExportError, export

    module = _trained(spec, weights) if weights else None
    try:
        if args.output == STDOUT:
            with tempfile.TemporaryDirectory() as folder:
                write(STDOUT, export(spec, Path(folder) / "model.onnx", args.opset, dims, module).read_bytes())
        else:
            export(spec, args.output, args.opset, dims, module)
    except ExportError as exc:
        raise Failure(str(exc), EXIT_INVALID) from None
    except OSError as exc:
        raise Failure(f"cannot write `{args.output}`: {exc.strerror or exc}") from None
    if args.output != STDOUT:
        say(args, f"{args.spec}: wrote {args.output}")
    return EXIT_OK


def _trained(spec, path: str):
    """`netspec.build(spec)` with the weights in `path`, read as `init_from` reads them (weights_only; a netspec
    checkpoint's `model`), which must hold every tensor of the network, by name and shape, and no other."""
    from .. import build
    from ..train.transfer import compare, read_weights

    try:
        weights = read_weights(Path(path))
    except ValueError as exc:
        raise Failure(f"--weights: {exc}", EXIT_INVALID) from None
    module = build(spec)
    report = compare(module.state_dict(), weights, path)
    if not report.fits:
        raise Failure(f"--weights: {path} does not fit `{spec.name}`: {'; '.join(report.differences())}",
                      EXIT_INVALID)
    module.load_state_dict(weights)
    return module
