"""`netspec schema`: the JSON Schema of the spec language (netspec.export.schema), for editors; no torch.
docs/netspec.schema.json is this output, kept current by a test; specs point at it with a modeline."""

from __future__ import annotations

import json

from .common import EXIT_OK, STDOUT, command, say, writable, write


def register(sub) -> None:
    p = command(sub, "schema", run, "print the JSON Schema of the spec language, for editors")
    p.add_argument("-o", "--output", default=STDOUT, metavar="FILE", help="the file to write (default: stdout)")


def run(args) -> int:
    writable(args.output)
    write(args.output, text())
    if args.output != STDOUT:
        say(args, f"wrote {args.output}")
    return EXIT_OK


def text() -> str:
    """The schema as JSON text: ASCII (valid on any terminal), one key per line."""
    from ..export.schema import schema

    return json.dumps(schema(), indent=1) + "\n"
