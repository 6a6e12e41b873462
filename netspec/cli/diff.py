"""`netspec diff A B`: what changed between two architectures (netspec.diff); no torch. Exit 0 whether or not
they differ (`--json` says: `identical`), 1 when a spec is invalid."""

from __future__ import annotations

from ..errors import SpecErrors
from .common import EXIT_OK, command, load_all, print_json


def register(sub) -> None:
    p = command(sub, "diff", run, "compare two architectures: layers added, removed and changed; params, MACs")
    p.add_argument("a", metavar="A", help="the spec before")
    p.add_argument("b", metavar="B", help="the spec after")
    p.add_argument("--json", action="store_true", help="one JSON object (docs/export.md lists its fields)")


def run(args) -> int:
    from ..diff import diff

    (_, a), (_, b) = load_all([args.a, args.b], {})
    failed = [e for spec in (a, b) if isinstance(spec, Exception) for e in spec.errors]
    if failed:
        raise SpecErrors(failed)
    result = diff(a, b)
    if args.json:
        print_json(result.to_json())
    else:
        print(result.table())
    return EXIT_OK
