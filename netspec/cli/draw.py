"""`netspec draw SPEC -o FILE`: the architecture as a graphviz diagram (no torch); an invalid spec is drawn up
to its errors, which are printed too."""

from __future__ import annotations

import os

from .common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    STDOUT,
    Failure,
    UsageError,
    command,
    load_one,
    print_error,
    print_errors,
    say,
    writable,
    write,
)

FORMATS = ("dot", "svg", "png", "pdf")  # as netspec.draw.FORMATS, which imports graphviz
LAYOUTS = ("auto", "column", "wrap", "u")  # as netspec.draw.LAYOUTS


def register(sub) -> None:
    p = command(sub, "draw", run, "draw the architecture: .dot, .svg, .png or .pdf by the file's ending")
    p.add_argument("spec", metavar="SPEC", help="the spec file to draw")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the file to write, its format by its ending; `-` for stdout")
    p.add_argument("--format", choices=FORMATS,
                   help="the format (default: FILE's ending; dot for `-o -`); png and pdf go to a file or a pipe")
    p.add_argument("--depth", type=int, metavar="N",
                   help="levels of blocks/groups/repeats drawn open; deeper ones collapse to one node "
                        "(default: the deepest that fits in 50 nodes)")
    p.add_argument("--rankdir", choices=("TB", "LR"), default="TB", help="top-to-bottom or left-to-right")
    p.add_argument("--layout", choices=LAYOUTS, default="auto",
                   help="column: one chain; wrap: long chains in side-by-side columns; u: an encoder down the "
                        "left and the decoder up the right, skips across; auto (default): u for a spec with "
                        "two or more nested skip connections, else wrap")
    p.add_argument("--show", default="params", metavar="LIST",
                   help="comma-separated figures per node: params, macs, rf (default params)")


def run(args) -> int:
    from ..errors import SpecErrors
    from ..graph import build_graph

    fmt = output_format(args.output, args.format)
    writable(args.output, binary=fmt in ("png", "pdf"))
    graph = build_graph(load_one(args.spec), strict=False)
    if graph.errors:  # first, as `validate --draw` prints them: then what drawing says
        print_errors(SpecErrors(graph.errors))
    code = draw_graph(graph, args.output, args, fmt=fmt)
    if code == EXIT_OK and args.output != STDOUT:
        say(args, f"{args.spec}: wrote {args.output}" + (" (up to its errors, in red)" if graph.errors else ""))
    return EXIT_INVALID if graph.errors else code


def output_format(path: str, given: str | None) -> str:
    """The format `-o path` and `--format` ask for: the file's ending, which `--format` must agree with."""
    if path == STDOUT:
        return given or "dot"
    ending = os.path.splitext(path)[1].lstrip(".").lower()
    if ending not in FORMATS:
        raise UsageError(f"cannot draw to `{os.path.basename(path)}`: the ending must be one of "
                         f"{', '.join('.' + f for f in FORMATS)}")
    if given and given != ending:
        raise UsageError(f"--format {given} does not match `{os.path.basename(path)}`: name a .{given} file")
    return ending


def draw_graph(graph, out: str, args, errors=None, stats=None, fmt: str | None = None) -> int:
    """Write the diagram (`out` may be `-`); without the `dot` program, write the .dot source beside a file
    and say how to install it (exit 2)."""
    from ..draw import GraphvizMissing, draw, render, to_dot

    depth, rankdir = getattr(args, "depth", None), getattr(args, "rankdir", "TB")
    layout = getattr(args, "layout", "auto")
    show = [s for s in getattr(args, "show", "params").split(",") if s]
    try:
        if out == STDOUT:
            write(out, render(to_dot(graph, depth, rankdir, show, errors, stats, layout), fmt or "dot"))
        else:
            draw(graph, out, depth, rankdir, show, errors, stats, layout)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except GraphvizMissing as exc:
        print_error(str(exc))
        return EXIT_USAGE
    except OSError as exc:
        raise Failure(f"cannot write `{out}`: {exc.strerror or exc}") from None
    return EXIT_OK
