"""`netspec new NAME`: start a spec, from a small template or from another spec (`--from`), with the modeline
that points editors at the JSON Schema (docs/netspec.schema.json, `netspec schema`). No torch."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from ..spec import NAME_RE
from .common import EXIT_OK, STDOUT, UsageError, command, load_one, say, writable, write

ROOT = Path(__file__).resolve().parents[2]  # a source checkout: specs/ and docs/ beside the package
SHIPPED = ROOT / "specs"
SCHEMA = ROOT / "docs" / "netspec.schema.json"
MODELINE = "# yaml-language-server: $schema="
TEMPLATE = """\
# {name}: started by `netspec new`. The language: docs/language.md; the layer types: `netspec ops`.
name: {name}
input: [1, 8, 8]                  # per sample, batch excluded: scikit-learn's 8×8 handwritten digits
layers:
  - conv2d: {{out_channels: 16, kernel_size: 3, padding: 1}}
    name: conv1
  - relu
  - maxpool2d: 2
  - flatten
  - linear: 64
    name: fc1
  - relu
  - linear: 10
    name: fc2
train:                            # `netspec train`; the keys: docs/training.md
  data: {{dataset: digits, split: [0.8, 0.1, 0.1]}}
  loss: cross_entropy
  optimizer: {{adam: {{lr: 1.0e-3}}}}
  epochs: 10
  batch_size: 64
"""


def register(sub) -> None:
    p = command(sub, "new", run, "start a spec from a template, or from another spec, with the schema modeline")
    p.add_argument("name", metavar="NAME", help="the network's name (letters, digits, _), and the file's")
    p.add_argument("--from", dest="source", metavar="SPEC",
                   help="copy this spec (a file, or a shipped spec's name: resnet18) instead of the template")
    p.add_argument("-o", "--output", metavar="FILE", help="the file to write (default NAME.yaml; `-` for stdout); "
                                                           "an existing file is not replaced")


def run(args) -> int:
    if not NAME_RE.match(args.name):
        raise UsageError(f"NAME `{args.name}` is not a name: letters, digits and _, starting with a letter")
    out = args.output or f"{args.name}.yaml"
    if out != STDOUT and os.path.lexists(out):
        raise UsageError(f"`{out}` exists; name another file with -o")
    writable(out)
    body = _copy(_source(args.source), args.name, out) if args.source else TEMPLATE.format(name=args.name)
    write(out, f"{MODELINE}{_schema_path(out)}\n{body}")
    if out != STDOUT:
        say(args, f"wrote {out}; check it with `netspec validate {out}`")
    return EXIT_OK


def _source(given: str) -> str:
    """The spec file `--from` names: a path, or the name of a spec in the checkout's specs/."""
    if os.path.exists(given) or not NAME_RE.match(given):
        return given
    shipped = SHIPPED / f"{given}.yaml"
    if shipped.is_file():
        return str(shipped)
    names = sorted(p.stem for p in SHIPPED.glob("*.yaml"))
    listed = f" (shipped: {', '.join(names)})" if names else ""
    raise UsageError(f"--from {given}: no such file, and no shipped spec of that name{listed}")


def _copy(source: str, name: str, out: str) -> str:
    """The text of `source` renamed to `name`, its modeline dropped and its `extends:` path made relative to
    `out`'s folder; every comment kept."""
    from ..errors import SpecError, SpecErrors
    from ..loader import parse_yaml, read_text

    load_one(source)  # it parses (its `extends` too)
    text = "".join(line for line in read_text(source).splitlines(keepends=True) if not line.startswith(MODELINE))
    text, named = re.subn(r"^name:.*$", f"name: {name}", text, count=1, flags=re.M)
    if not named:
        text = f"name: {name}\n{text}"
    text = re.sub(r"^extends:[ \t]*(['\"]?)(.+?)\1[ \t]*(#.*)?$",
                  lambda m: f"extends: {_relative(Path(source).parent / m[2], out)}" + (f"  {m[3]}" if m[3] else ""),
                  text, count=1, flags=re.M)
    try:
        tree = parse_yaml(text, out).tree
    except (SpecError, SpecErrors):
        tree = None
    if not isinstance(tree, dict) or tree.get("name") != name:
        raise UsageError(f"cannot rename `{source}`: it writes `name:` in a way this copy cannot replace; "
                         "copy it by hand")
    return text


def _schema_path(out: str) -> str:
    """The schema as the modeline names it: relative to the new spec's folder (the current folder for stdout).
    Outside a source checkout, `netspec.schema.json` beside the spec, which `netspec schema -o` writes."""
    if SCHEMA.is_file():
        return _relative(SCHEMA, out)
    folder = Path(out).parent if out != STDOUT else Path(".")
    print(f"netspec: note: the modeline names netspec.schema.json beside the spec; write it with "
          f"`netspec schema -o {folder / 'netspec.schema.json'}`", file=sys.stderr)
    return "netspec.schema.json"


def _relative(target: Path, out: str) -> str:
    """`target` as a path from `out`'s folder: relative when they share a folder below the root, else absolute."""
    target, folder = Path(target).resolve(), Path(out).resolve().parent if out != STDOUT else Path.cwd()
    if os.path.commonpath([target, folder]) == target.anchor:
        return target.as_posix()
    return Path(os.path.relpath(target, folder)).as_posix()
