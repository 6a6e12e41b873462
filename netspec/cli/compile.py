"""`netspec compile SPEC -o FILE.py`: a standalone PyTorch module (the file imports only torch). The spec is
checked before torch is imported, so an invalid one is answered as fast as `validate` answers it.
`--format onnx` (or a `.onnx` FILE) is `netspec export`."""

from __future__ import annotations

from .common import DIM, EXIT_OK, STDOUT, UsageError, command, load_one, positive, say, writable, write


def register(sub) -> None:
    p = command(sub, "compile", run, "write a standalone PyTorch module (imports only torch), or an ONNX model")
    p.add_argument("spec", metavar="SPEC", help="the spec file to compile")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write; `-` for stdout")
    p.add_argument("--format", choices=("python", "onnx"),
                   help="python source, or an ONNX model as `netspec export` writes it "
                        "(default: onnx for a .onnx FILE, else python)")
    p.add_argument("--opset", type=positive, metavar="N", help="with --format onnx: the ONNX opset")
    p.add_argument("--dim", **{**DIM, "help": "with --format onnx: bind a symbolic input dim, e.g. T=32"})


def run(args) -> int:
    fmt = args.format or ("onnx" if args.output.lower().endswith(".onnx") else "python")
    if fmt == "onnx":
        from .export import run as export

        return export(args)
    if args.opset is not None or args.dim:
        raise UsageError("--opset and --dim apply to --format onnx")
    writable(args.output)
    from ..analysis import analyze

    result = analyze(load_one(args.spec))  # every error before torch is imported
    from ..codegen import generate

    write(args.output, generate(result.graph))
    if args.output != STDOUT:
        say(args, f"{args.spec}: wrote {args.output}")
    return EXIT_OK
