"""`netspec ops [OP]`: the layer catalog; with OP, that layer type's arguments (torch names, aliases, types,
defaults, descriptions), shapes, costs and example, from its catalog entry. No torch."""

from __future__ import annotations

import inspect
import textwrap

from ..layers import FROM, REGISTRY
from .common import EXIT_OK, UsageError, command

WIDTH = 100


def register(sub) -> None:
    p = command(sub, "ops", run, "list the layer types, or show one's arguments and example")
    op = p.add_argument("op", nargs="?", metavar="OP", help="a layer type (e.g. conv2d): show its arguments, "
                                                          "shapes, costs and example")
    op.completions = sorted(REGISTRY)  # for `netspec completion`; no `choices`: an unknown op gets a did-you-mean


def run(args) -> int:
    if args.op is None:
        width = max(map(len, REGISTRY))
        for op in sorted(REGISTRY, key=lambda o: (REGISTRY[o].family, o)):
            entry = REGISTRY[op]
            doc = (type(entry).__doc__ or "").strip().splitlines()[0]
            print(f"{op.ljust(width)}  {entry.family:<15} {doc}")
        return EXIT_OK
    if args.op not in REGISTRY:
        from ..errors import did_you_mean, printable

        hint = did_you_mean(args.op, REGISTRY) or "`netspec ops` lists them"
        raise UsageError(f"no layer type `{printable(args.op)}`: {hint}")
    print(describe(args.op))
    return EXIT_OK


def describe(op: str) -> str:
    """One layer type as `netspec ops OP` shows it: its summary, its arguments (from its `Args` model and its
    docstring's `Args:` section), then its docstring's other paragraphs (shapes, costs, example)."""
    entry = REGISTRY[op]
    summary, *paragraphs = inspect.cleandoc(type(entry).__doc__ or "").split("\n\n")
    blocks = [f"{op} ({entry.family}): {' '.join(summary.split())}"]
    if entry.Args.model_fields:
        blocks.append(_arguments(op, entry))
        paragraphs = [p for p in paragraphs if not p.startswith("Args:")]
    return "\n\n".join(blocks + paragraphs) + "\n"


def _arguments(op: str, entry) -> str:
    from ..docgen import _default, _type_name, arguments

    rows = []
    for _, names, info, text in arguments(entry.Args, type(entry).__doc__ or ""):
        default = _default(info).replace("`", "")
        rows.append((", ".join(names), _type_name(info.rebuild_annotation()),
                     default if default == "required" else f"default {default}", " ".join(text.split())))
    main = (f"; `- {op}: [a, b]` names its inputs" if entry.main_arg == FROM else
            f"; `- {op}: VALUE` sets {entry.main_arg}" if entry.main_arg else "")
    lines = [f"Arguments (torch's name, then aliases{main}):"]
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    for names, kind, default, text in rows:
        lines.append(f"  {names:<{width[0]}}  {kind:<{width[1]}}  {default}".rstrip())
        lines += textwrap.wrap(text, WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)
