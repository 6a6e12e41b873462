"""`netspec export SPEC -o model.onnx`: the network as an ONNX model through torch's exporter
(docs/export.md): the batch dim and the spec's symbolic dims dynamic, or bound by `--dim`. The spec is
checked before torch is imported."""

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


def run(args) -> int:
    from ..analysis import analyze

    dims = parse_dims(args.dim)
    writable(args.output, binary=True)
    spec = load_one(args.spec, dims)
    analyze(spec, dims)  # every error of the spec before torch is imported
    from ..export.onnx import ExportError, export

    try:
        if args.output == STDOUT:
            with tempfile.TemporaryDirectory() as folder:
                write(STDOUT, export(spec, Path(folder) / "model.onnx", args.opset, dims).read_bytes())
        else:
            export(spec, args.output, args.opset, dims)
    except ExportError as exc:
        raise Failure(str(exc), EXIT_INVALID) from None
    except OSError as exc:
        raise Failure(f"cannot write `{args.output}`: {exc.strerror or exc}") from None
    if args.output != STDOUT:
        say(args, f"{args.spec}: wrote {args.output}")
    return EXIT_OK
