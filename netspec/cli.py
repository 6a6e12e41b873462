"""The `netspec` command line: compiler-style diagnostics, no Python tracebacks.

Exit codes: 0 success; 1 a spec is invalid; 2 bad usage; 3 an internal error.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable

from .errors import MAX_ERRORS, SpecError, SpecErrors, printable

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def main(argv: list[str] | None = None) -> int:
    _tolerant_output()
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.run(args)
    except (SpecError, SpecErrors) as exc:
        _print_errors(exc)
        return EXIT_INVALID
    except UsageError as exc:
        print(f"netspec: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head`, say
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:  # a bug in netspec, not in the spec
        if os.environ.get("NETSPEC_TRACEBACK"):
            traceback.print_exc()
        print(f"netspec: internal error: {type(exc).__name__}: {exc}\n"
              "  this is a bug in netspec; rerun with NETSPEC_TRACEBACK=1 and report it", file=sys.stderr)
        return EXIT_INTERNAL


class UsageError(Exception):
    pass


def _tolerant_output() -> None:
    """Print what the terminal cannot encode (`×` on an ASCII terminal, a file name's undecodable bytes)
    as escapes instead of failing."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass  # not a text stream we can reconfigure: leave it


def _writable(path: str) -> None:
    """Refuse, before any work, an output file whose folder does not exist."""
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        problem = f"`{folder}` is not a folder" if os.path.exists(folder) else f"the folder `{folder}` does not exist"
        raise UsageError(f"cannot write `{path}`: {problem}")


def _write(path: str, data: str | bytes) -> None:
    from .files import atomic_write

    try:
        atomic_write(path, data)
    except OSError as exc:
        raise UsageError(f"cannot write `{path}`: {exc.strerror or exc}") from None


def _print_errors(exc: SpecError | SpecErrors) -> None:
    errors = exc.errors if isinstance(exc, SpecErrors) else [exc]
    for err in errors:
        print(err.format(), file=sys.stderr)
    stopped = f"; netspec stops at {MAX_ERRORS}: fix these and run it again" if len(errors) >= MAX_ERRORS else ""
    print(f"{len(errors)} error{'s' if len(errors) != 1 else ''}{stopped}", file=sys.stderr)


def _parse_dims(pairs: list[str]) -> dict[str, int]:
    dims = {}
    for pair in pairs or []:
        name, _, value = pair.partition("=")
        if not name.isidentifier() or not (value.isascii() and value.isdigit()) or int(value) < 1:
            raise UsageError(f"--dim takes NAME=SIZE with a positive size, got `{pair}`")
        dims[name] = int(value)
    return dims


def cmd_validate(args) -> int:
    from .analysis import analyze
    from .spec import load

    if args.draw and len(args.specs) != 1:
        raise UsageError("--draw takes a single SPEC")
    if args.draw:
        _writable(args.draw)
    failed, drawn = 0, EXIT_OK
    for path in args.specs:
        if args.draw:
            result, drawn = _validate_and_draw(path, args)
        else:
            try:
                result = _checked(load(path), analyze, _parse_dims(args.dim))
            except (SpecError, SpecErrors) as exc:
                _print_errors(exc)
                result = None
        if result is None:
            failed += 1
        elif not args.quiet:
            print(f"{path}: ok ({printable(result.name)}: {result.total_params:,} params, "
                  f"{len(result.layers)} layers)")
    return EXIT_INVALID if failed else drawn  # as `draw` answers: 2 when the diagram could not be made


def _checked(spec, analyze, dims):
    """`analyze(spec, dims)`, then the `train:` section against it; every error of both raised together."""
    errors = []
    try:
        result = analyze(spec, dims)
    except (SpecError, SpecErrors) as exc:
        errors += exc.errors if isinstance(exc, SpecErrors) else [exc]
        result = None
    if spec.model.train is not None:
        from .train.config import validate_train

        try:
            validate_train(spec, result)  # result is None when the network itself failed
        except (SpecError, SpecErrors) as exc:
            errors += exc.errors if isinstance(exc, SpecErrors) else [exc]
    if errors:
        raise SpecErrors(errors)
    return result


def _validate_and_draw(path: str, args):
    """`validate --draw`: load and expand the spec once and cost its layers once, check it as `analyze`
    does, print its errors, and draw it (an invalid one up to its errors). The Analysis, or None when
    the spec is invalid; and the exit code of drawing."""
    from .analysis import Analysis, bind_dims, check_expect, layer_stats
    from .graph import build_graph
    from .spec import load

    dims = _parse_dims(args.dim)
    stage = "does not parse"
    try:
        spec = bind_dims(load(path), dims)
        stage = "cannot be expanded"  # a runaway `repeat:`, say
        graph = build_graph(spec, strict=False)
    except (SpecError, SpecErrors) as exc:
        _print_errors(exc)
        print(f"netspec: no diagram: {path} {stage}", file=sys.stderr)
        return None, EXIT_INVALID
    stats = layer_stats(graph)
    if graph.errors:
        return None, _draw_failed(graph, SpecErrors(graph.errors), stats, args)
    result = Analysis(graph.name, graph, {k: tuple(v.shape) for k, v in graph.inputs.items()},
                      {k: graph.shape_of(v) for k, v in graph.outputs.items()}, stats)  # as `analyze` makes it
    try:
        _checked(spec, lambda spec, dims: check_expect(result, dims) or result, dims)
    except (SpecError, SpecErrors) as exc:
        return None, _draw_failed(graph, exc, stats, args)
    return result, _draw(graph, args.draw, args, stats=stats)


def _draw_failed(graph, exc: SpecError | SpecErrors, stats, args) -> int:
    """Print an invalid spec's errors, then draw its partial graph up to them (in red)."""
    _print_errors(exc)
    return _draw(graph, args.draw, args, exc.errors if isinstance(exc, SpecErrors) else [exc], stats)


def _draw(graph, out: str, args, errors=None, stats=None) -> int:
    """Write the diagram; without the `dot` program, write the .dot source and say how to install it."""
    from .draw import GraphvizMissing, draw

    show = getattr(args, "show", "params")
    try:
        draw(graph, out, getattr(args, "depth", None), getattr(args, "rankdir", "TB"),
             [s for s in show.split(",") if s], errors, stats)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except GraphvizMissing as exc:
        print(f"netspec: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        raise UsageError(f"cannot write `{out}`: {exc.strerror or exc}") from None
    return EXIT_OK


def cmd_draw(args) -> int:
    from .graph import build_graph
    from .spec import load

    _writable(args.output)
    graph = build_graph(load(args.spec), strict=False)
    code = _draw(graph, args.output, args)
    if graph.errors:
        _print_errors(SpecErrors(graph.errors))
        return EXIT_INVALID
    return code


def cmd_summary(args) -> int:
    from . import report
    from .analysis import analyze
    from .spec import load

    result = analyze(load(args.spec), _parse_dims(args.dim))
    render: Callable = report.to_json if args.json else report.markdown if args.markdown else report.table
    print(render(result, args.batch, args.optimizer))
    return EXIT_OK


def cmd_compile(args) -> int:
    from .codegen import generate
    from .spec import load

    _writable(args.output)
    _write(args.output, generate(load(args.spec)))
    print(f"{args.spec}: wrote {args.output}")
    return EXIT_OK


def cmd_train(args) -> int:
    from .train.checkpoint import CheckpointError
    from .train.data import DataError
    from .train.loop import Diverged
    from .train.run import RunFolderError
    from .train.session import train

    try:
        train(args.spec, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=args.device,
              seed=args.seed, out=args.out, resume=args.resume, overrides=_parse_sets(args.set))
    except Diverged as exc:
        print(f"netspec: error: {exc}", file=sys.stderr)
        if exc.checkpoint:
            print(f"  note: the last good checkpoint is {exc.checkpoint}", file=sys.stderr)
        print("  hint: lower the learning rate (--lr), or clip gradients (train.clip_grad_norm: 1.0)", file=sys.stderr)
        return EXIT_INVALID
    except (DataError, CheckpointError, RunFolderError) as exc:
        print(f"netspec: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def _parse_sets(pairs: list[str] | None) -> dict:
    """`--set optimizer.adam.lr=0.01` pairs as overrides; values read as YAML (numbers, booleans, lists)."""
    from .errors import SpecError
    from .loader import parse_yaml

    out = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise UsageError(f"--set takes KEY=VALUE (a dotted key under train:), got `{pair}`")
        try:  # read as the spec's own values are: `1e-3` is a number, `[32, 64]` a list
            out[key] = parse_yaml(value, f"--set {key}").tree if value else None
        except SpecError as exc:
            raise UsageError(f"--set {key}: {exc.message}") from None
    return out


def cmd_ops(args) -> int:
    from .layers import REGISTRY

    width = max(map(len, REGISTRY))
    for op in sorted(REGISTRY, key=lambda o: (REGISTRY[o].family, o)):
        entry = REGISTRY[op]
        doc = (type(entry).__doc__ or "").strip().splitlines()[0]
        print(f"{op.ljust(width)}  {entry.family:<15} {doc}")
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    from .analysis import OPTIMIZER_STATES

    parser = argparse.ArgumentParser(prog="netspec", description="A declarative network compiler.")
    parser.add_argument("--version", action="version", version=f"netspec {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")

    dim = dict(action="append", metavar="NAME=SIZE", help="bind a symbolic input dim, e.g. T=32")

    p = sub.add_parser("validate", help="check specs: shapes, references, arguments, expect")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.add_argument("--dim", **dim)
    p.add_argument("--draw", metavar="FILE", help="also draw the spec; an invalid one up to its errors, in red")
    p.set_defaults(run=cmd_validate)

    p = sub.add_parser("summary", help="per-layer shapes, params, MACs, receptive fields and totals")
    p.add_argument("spec", metavar="SPEC")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object (the machine-readable contract)")
    fmt.add_argument("--markdown", action="store_true", help="a Markdown table")
    p.add_argument("--batch", type=_positive, metavar="N", help="add a training-memory estimate at batch N")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZER_STATES), default="adam",
                   help="optimizer for the training-memory estimate (default adam)")
    p.add_argument("--dim", **dim)
    p.set_defaults(run=cmd_summary)

    p = sub.add_parser("draw", help="draw the architecture: .dot, .svg, .png or .pdf by the file's ending")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("--depth", type=int, metavar="N",
                   help="levels of blocks/groups/repeats drawn open; deeper ones collapse to one node "
                        "(default: the deepest that fits in 50 nodes)")
    p.add_argument("--rankdir", choices=("TB", "LR"), default="TB", help="top-to-bottom or left-to-right")
    p.add_argument("--show", default="params", metavar="LIST",
                   help="comma-separated figures per node: params, macs, rf (default params)")
    p.set_defaults(run=cmd_draw)

    p = sub.add_parser("compile", help="write a standalone PyTorch module (imports only torch)")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-o", "--output", required=True, metavar="FILE.py")
    p.set_defaults(run=cmd_compile)

    p = sub.add_parser("train", help="train the spec as its train: section says, into a run folder")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--epochs", type=_positive, metavar="N", help="override train.epochs")
    p.add_argument("--batch-size", type=_positive, metavar="N", help="override train.batch_size")
    p.add_argument("--lr", type=_positive_float, metavar="LR", help="override the optimizer's learning rate")
    p.add_argument("--device", metavar="DEVICE", help="cpu, cuda, cuda:N or auto (override train.device)")
    p.add_argument("--seed", type=int, metavar="N", help="override train.seed")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any train: key by its dotted path, e.g. optimizer.adam.weight_decay=0.01")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", metavar="DIR", help="the run folder (default runs/<spec>-<timestamp>)")
    where.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.pt, exactly")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("ops", help="list the layer types")
    p.set_defaults(run=cmd_ops)
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got `{text}`")
    return value


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got `{text}`")
    return int(text)


if __name__ == "__main__":
    sys.exit(main())
