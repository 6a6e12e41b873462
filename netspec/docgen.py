"""Generate the layer reference (docs/layers.md) from the catalog, so it never drifts.

    python -m netspec.docgen docs/layers.md
"""

from __future__ import annotations

import inspect
import sys
from types import UnionType
from typing import Annotated, Literal, Union, get_args, get_origin

from .files import atomic_write
from .layers import FROM, REGISTRY, Layer


def _type_name(annotation) -> str:
    """A readable type: `int`, `int | list of int`, `one of 'none', 'tanh'`, `null`."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is Annotated:
        base = _type_name(args[0])
        bounds = [f"{sym} {getattr(m, attr)}" for m in args[1:] for attr, sym in _BOUNDS
                  if getattr(m, attr, None) is not None]
        return f"{base} ({', '.join(bounds)})" if bounds else base
    if origin in (Union, UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    return getattr(annotation, "__name__", str(annotation))


_BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"))


def _args_table(entry: Layer) -> list[str]:
    fields = entry.Args.model_fields
    if not fields:
        return ["No arguments."]
    rows = ["| argument | type | default |", "|---|---|---|"]
    for name, info in fields.items():
        alias = info.validation_alias
        names = [c for c in getattr(alias, "choices", [name]) if isinstance(c, str)]
        shown = " / ".join(f"`{n}`" for n in names)
        if name == entry.main_arg:
            shown += " (main)"
        default = "required" if info.is_required() else f"`{info.default!r}`"
        kind = _type_name(info.rebuild_annotation()).replace("|", "\\|")
        rows.append(f"| {shown} | {kind} | {default} |")
    return rows


def _markdown(doc: str) -> str:
    """Docstring sections (`Args:` with indented items) as Markdown lists."""
    out = []
    for line in doc.splitlines():
        if line.startswith("    ") and line.strip():
            item = line.strip()
            out.append(f"  {item}" if out and out[-1].startswith(("-", "  ")) and not _is_item(item)
                       else f"- {item}")
        else:
            out.append(line)
    return "\n".join(out)


def _is_item(text: str) -> bool:
    head = text.split(":", 1)[0]
    return ":" in text and len(head.split()) <= 4


def render() -> str:
    lines = ["# Layer reference", "",
             "Generated from the catalog by `make docs` (`python -m netspec.docgen docs/layers.md`); "
             "do not edit by hand. Shapes are per sample (batch excluded). The main argument is what a "
             "scalar short form binds to (`- linear: 10`).", ""]
    by_family: dict[str, list[str]] = {}
    for op, entry in REGISTRY.items():
        by_family.setdefault(entry.family, []).append(op)
    for family in sorted(by_family):
        lines.append(f"- **{family}**: " + ", ".join(f"[`{op}`](#{op})" for op in sorted(by_family[family])))
    for family in sorted(by_family):
        lines += ["", f"## {family}"]
        for op in sorted(by_family[family]):
            entry = REGISTRY[op]
            lines += ["", f"### {op}", "", _markdown(inspect.cleandoc(type(entry).__doc__ or "")), ""]
            if entry.main_arg == FROM:
                lines += [f"Inputs: `- {op}: [a, b, ...]` names them (or use `from:`).", ""]
            lines += _args_table(entry)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    atomic_write(argv[0], render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
