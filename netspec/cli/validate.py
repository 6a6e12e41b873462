"""`netspec validate SPEC...`: check specs (shapes, references, arguments, `expect:`, `train:`) without
importing torch; `--draw` also draws one, an invalid one up to its errors."""

from __future__ import annotations

import sys

from ..analysis import analyze
from ..errors import SpecError, SpecErrors, printable
from .common import (
    DIM,
    EXIT_INVALID,
    EXIT_OK,
    STDOUT,
    UsageError,
    command,
    error_records,
    load_all,
    parse_dims,
    print_errors,
    print_json,
    say,
    writable,
)
from .draw import draw_graph, output_format


def register(sub) -> None:
    p = command(sub, "validate", run, "check specs: shapes, references, arguments, expect and train")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files to check")
    p.add_argument("--json", action="store_true",
                   help='print {"errors": [...]} on stdout, one record per error: file, line, col, path, '
                        "message, hint, notes")
    p.add_argument("--dim", **DIM)
    p.add_argument("--draw", metavar="FILE", help="also draw the spec (one SPEC only); an invalid one up to its "
                                                  "errors, in red")


def run(args) -> int:
    if args.draw and len(args.specs) != 1:
        raise UsageError("--draw takes a single SPEC")
    if args.draw == STDOUT:
        raise UsageError("--draw writes a file; to draw on stdout, use `netspec draw SPEC -o -`")
    dims = parse_dims(args.dim)
    if args.draw:
        output_format(args.draw, None)
        writable(args.draw)
    report = _Report(args)
    drawn = EXIT_OK
    for path, spec in load_all(args.specs, dims):
        if args.draw:
            result, drawn = _validate_and_draw(path, spec, dims, args, report)
        else:
            result = report.attempt(path, _checked, spec, dims)
        if result is not None and not args.json:  # with --json, stdout holds the JSON only
            say(args, f"{path}: ok ({printable(result.name)}: {result.total_params:,} params, "
                      f"{len(result.layers)} layers)")
        if args.draw and drawn == EXIT_OK and not args.json:
            say(args, f"{path}: wrote {args.draw}" + (" (up to its errors, in red)" if result is None else ""))
    report.finish()
    return EXIT_INVALID if report.failed else drawn  # as `draw` answers: 2 when the diagram could not be made


class _Report:
    """Errors, printed as they come, or kept and printed as JSON at the end (--json)."""

    def __init__(self, args):
        self.records: list[dict] | None = [] if args.json else None
        self.failed = 0

    def errors(self, path: str, exc: SpecError | SpecErrors) -> None:
        self.failed += 1
        if self.records is None:
            print_errors(exc)
        else:
            self.records += error_records(exc, path)

    def attempt(self, path: str, fn, *args):
        """`fn(*args)`, or None after reporting the spec's errors."""
        try:
            return fn(*args)
        except (SpecError, SpecErrors) as exc:
            self.errors(path, exc)
            return None

    def finish(self) -> None:
        if self.records is not None:
            print_json({"errors": self.records})


def _checked(spec, dims, analyze=analyze):
    """`analyze(spec, dims)`, then the `train:` section against it; every error of both raised together.
    `spec` may be the errors that kept it from loading: they are raised."""
    if isinstance(spec, Exception):
        raise spec
    errors = []
    try:
        result = analyze(spec, dims)
    except (SpecError, SpecErrors) as exc:
        errors += exc.errors
        result = None
    if spec.model.train is not None:
        from ..train.config import validate_train

        try:
            validate_train(spec, result)  # result is None when the network itself failed
        except (SpecError, SpecErrors) as exc:
            errors += exc.errors
    if errors:
        raise SpecErrors(errors)
    return result


def _validate_and_draw(path: str, spec, dims: dict[str, int], args, report: _Report):
    """`validate --draw`: expand the spec once and cost its layers once, check it as `validate` does, report
    its errors, and draw it (an invalid one up to its errors). The Analysis, or None when the spec is
    invalid; and the exit code of drawing."""
    from ..analysis import Analysis, analyze, bind_dims, layer_stats
    from ..graph import build_graph

    if isinstance(spec, Exception):
        report.errors(path, spec)
        print(f"netspec: no diagram: {path} does not parse", file=sys.stderr)
        return None, EXIT_INVALID
    try:
        graph = build_graph(bind_dims(spec, dims), strict=False)
    except (SpecError, SpecErrors) as exc:  # a runaway `repeat:`, say
        report.errors(path, exc)
        print(f"netspec: no diagram: {path} cannot be expanded", file=sys.stderr)
        return None, EXIT_INVALID
    stats = layer_stats(graph)

    def analyzed(spec, dims) -> Analysis:
        """`analyze`, over the graph and the costs made above."""
        if graph.errors:
            raise SpecErrors(graph.errors)
        return analyze(graph, dims, stats)

    try:
        result, errors = _checked(spec, dims, analyzed), None
    except SpecErrors as exc:  # the network's errors and the `train:` section's, in source order
        result, errors = None, exc.errors
        report.errors(path, exc)
    return result, draw_graph(graph, args.draw, args, errors, stats)
