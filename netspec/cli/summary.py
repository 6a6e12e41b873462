"""`netspec summary SPEC...`: per-layer shapes, params, MACs and receptive fields, and the totals, as a table,
Markdown or JSON (the machine-readable contract); no torch."""

from __future__ import annotations

from ..analysis import OPTIMIZER_STATES, analyze
from ..errors import SpecError, SpecErrors
from .common import (
    DIM,
    EXIT_INVALID,
    EXIT_OK,
    command,
    error_records,
    load_all,
    parse_dims,
    positive,
    print_errors,
    print_json,
)


def register(sub) -> None:
    p = command(sub, "summary", run, "per-layer shapes, params, MACs, receptive fields and totals")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files; several are summarized in turn")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true",
                     help='one JSON object per spec (a list of them for several); an invalid spec\'s is '
                          '{"file": ..., "errors": [...]}, the records of `validate --json`')
    fmt.add_argument("--markdown", action="store_true", help="a Markdown table")
    p.add_argument("--batch", type=positive, metavar="N", help="add a training-memory estimate at batch N")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZER_STATES), default="adam",
                   help="optimizer for the training-memory estimate (default adam)")
    p.add_argument("--dim", **DIM)


def run(args) -> int:
    from .. import report

    dims = parse_dims(args.dim)
    shown, failed = [], False
    for path, spec in load_all(args.specs, dims):
        try:
            if isinstance(spec, Exception):
                raise spec
            result = analyze(spec, dims)
        except (SpecError, SpecErrors) as exc:
            failed = True
            if args.json:
                shown.append({"file": path, "errors": error_records(exc, path)})
            else:
                print_errors(exc)
            continue
        if args.json:
            shown.append(result.to_json(args.batch, args.optimizer))
        else:
            render = report.markdown if args.markdown else report.table
            shown.append(render(result, args.batch, args.optimizer))
    if args.json:
        print_json(shown[0] if len(args.specs) == 1 else shown)
    elif shown:
        print("\n\n".join(shown))
    return EXIT_INVALID if failed else EXIT_OK
