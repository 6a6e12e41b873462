"""What the commands share: exit codes, the two kinds of failure, errors printed compiler-style (coloured on
a terminal) or as JSON records, the files named on the command line, and `--dim`. Imports no torch."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable

from ..errors import MAX_ERRORS, SpecError, SpecErrors, format_path, printable

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
STDOUT = "-"  # `-o -`
QUIET = "print errors and the output asked for only: no `ok`, `wrote` or progress lines"


class UsageError(Exception):
    """The command line asks for something it cannot mean: printed under the command's usage, exit 2."""


class Failure(Exception):
    """A command that could not do its job for a reason outside the spec (a file it cannot write, a program
    that is missing): printed as `netspec: error: ...`, exit `code`."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse, with its error in the words and colours of netspec's own errors."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        print_error(message, self.prog)
        self.exit(EXIT_USAGE)


def command(sub, name: str, run: Callable[[argparse.Namespace], int], help: str, **kwargs) -> Parser:
    """A subcommand's parser: `netspec NAME`, running `run(args)`; it takes `-q` too (as `netspec -q NAME`)."""
    parser = sub.add_parser(name, help=help, description=help[:1].upper() + help[1:], **kwargs)
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help=QUIET)
    parser.set_defaults(run=run, parser=parser)
    return parser


def commands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, help, parser) of each command of the top-level parser, in order: for completion and docs."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in action._choices_actions}
    return [(name, helps[name], sub) for name, sub in action.choices.items()]


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings]


def positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]


def choices(action: argparse.Action) -> list[str]:
    """The values an argument takes: its `choices`, or the `completions` a command gave it (`ops OP`)."""
    return [str(c) for c in (action.choices or getattr(action, "completions", None) or ())]


# ---- printing -------------------------------------------------------------------------------------------------------

BOLD_RED, BOLD_CYAN, RESET = "\033[1;31m", "\033[1;36m", "\033[0m"
_ERROR = re.compile(r"^((?:.*?:\d+:\d+|<spec>|netspec(?: [\w-]+)?): )(error:)", re.M)
_HINT = re.compile(r"^(\s*)(hint:)", re.M)


def colour(stream) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org) or TERM is dumb."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def paint(text: str, stream) -> str:
    """`text` with its `error:` and `hint:` words coloured when `stream` is a colour terminal."""
    if not colour(stream):
        return text
    text = _ERROR.sub(rf"\1{BOLD_RED}\2{RESET}", text)
    return _HINT.sub(rf"\1{BOLD_CYAN}\2{RESET}", text)


def print_error(message: str, prog: str = "netspec") -> None:
    print(paint(_shown(f"{prog}: error: {message}"), sys.stderr), file=sys.stderr)


def say(args: argparse.Namespace, text: str) -> None:
    """A line of what a command did (`wrote x.py`), unless --quiet."""
    if not getattr(args, "quiet", False):
        print(_shown(text))


def _shown(text: str) -> str:
    """`text` with the characters that would drive a terminal (in a file name: `a\x1b[2J.yaml`) escaped."""
    return "\n".join(printable(line) for line in text.split("\n"))


def print_errors(exc: SpecError | SpecErrors) -> None:
    """Each error as `file:line:col: error: ...` with its source line and caret, then how many."""
    errors = exc.errors
    for err in errors:
        print(paint(err.format(), sys.stderr), file=sys.stderr)
    stopped = f"; netspec stops at {MAX_ERRORS}: fix these and run it again" if len(errors) >= MAX_ERRORS else ""
    print(f"{len(errors)} error{'s' if len(errors) != 1 else ''}{stopped}", file=sys.stderr)


def error_records(exc: SpecError | SpecErrors, file: str) -> list[dict]:
    """The errors as JSON records: file, line, col (1-based; null when unknown), the spec path, message, hint
    (or null) and notes. `file` stands in for an error that has no location."""
    return [{"file": e.mark.file if e.mark else file, "line": e.mark.line if e.mark else None,
             "col": e.mark.col if e.mark else None, "path": format_path(e.path), "message": e.message,
             "hint": e.hint, "notes": list(e.notes)} for e in exc.errors]


def print_json(data) -> None:
    """JSON on stdout, ASCII-escaped so it stays valid on any terminal."""
    print(json.dumps(data, indent=2))


# ---- files ----------------------------------------------------------------------------------------------------------


def readable(paths: list[str]) -> None:
    """Refuse, before any work, an input that is no file (exit 2, as for any argument that cannot be meant)."""
    for path in paths:
        if not os.path.exists(path):
            raise UsageError(f"cannot read `{printable(path)}`: no such file")
        if os.path.isdir(path):
            raise UsageError(f"cannot read `{printable(path)}`: it is a folder")


def writable(path: str, binary: bool = False) -> None:
    """Refuse, before any work, an output file whose folder does not exist, and binary data for a terminal."""
    if path == STDOUT:
        if binary and sys.stdout.isatty():
            raise UsageError("will not write binary data to a terminal: redirect it (`> FILE`) or name a file")
        return
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        problem = f"`{folder}` is not a folder" if os.path.exists(folder) else f"the folder `{folder}` does not exist"
        raise Failure(f"cannot write `{path}`: {problem}")


def write(path: str, data: str | bytes) -> None:
    """Write `data` to `path`, replacing it whole or not at all (`netspec.files.atomic_write`), or to stdout."""
    if path == STDOUT:
        if isinstance(data, str):
            sys.stdout.write(data)
        else:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    from ..files import atomic_write

    try:
        atomic_write(path, data)
    except OSError as exc:
        raise Failure(f"cannot write `{path}`: {exc.strerror or exc}") from None


def load_all(paths: list[str], dims: dict[str, int]) -> list[tuple[str, object]]:
    """Each spec, loaded, or the errors that kept it from loading; `dims` checked against those that loaded."""
    from ..spec import load

    readable(paths)
    loaded: list[tuple[str, object]] = []
    for path in paths:
        try:
            loaded.append((path, load(path)))
        except (SpecError, SpecErrors) as exc:
            loaded.append((path, exc))
    check_dims(dims, [spec for _, spec in loaded if not isinstance(spec, Exception)])
    return loaded


def load_one(path: str, dims: dict[str, int] | None = None):
    """The spec at `path` (raising its errors), `dims` checked against it."""
    from ..spec import load

    readable([path])
    spec = load(path)
    check_dims(dims or {}, [spec])
    return spec


# ---- arguments ------------------------------------------------------------------------------------------------------

DIM = dict(action="append", metavar="NAME=SIZE", help="bind a symbolic input dim to a size, e.g. T=32 (repeatable)")


def parse_dims(pairs: list[str] | None) -> dict[str, int]:
    dims = {}
    for pair in pairs or []:
        name, _, value = pair.partition("=")
        if not name.isidentifier() or not (value.isascii() and value.isdigit()) or int(value) < 1:
            raise UsageError(f"--dim takes NAME=SIZE with a positive size, got `{printable(pair)}`")
        dims[name] = int(value)
    return dims


def symbolic_dims(spec) -> list[str]:
    """The names of a spec's symbolic input dims (`T` of `[T, 128]`), in order."""
    return list(dict.fromkeys(d for value in spec.inputs.values() for d in value.shape if isinstance(d, str)))


def check_dims(dims: dict[str, int], specs: list) -> None:
    """A `--dim` must name a symbolic input dim of a spec it is given with (of one of them, for several)."""
    known = sorted({d for spec in specs for d in symbolic_dims(spec)})
    unknown = [name for name in dims if name not in known]
    if not unknown or not specs:
        return
    if len(specs) == 1:
        have = f"its symbolic dims: {', '.join(known)}" if known else "its inputs have no symbolic dims"
        raise UsageError(f"--dim {unknown[0]}: `{printable(specs[0].name)}` has no symbolic input dim "
                         f"`{unknown[0]}` ({have})")
    have = f"theirs: {', '.join(known)}" if known else "they have none"
    raise UsageError(f"--dim {unknown[0]}: none of the specs has a symbolic input dim `{unknown[0]}` ({have})")


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got `{text}`")
    return int(text)


def learning_rate(text: str) -> float | str:
    """`--lr`: a positive number, or `auto` (the LR range test's suggestion)."""
    return "auto" if text == "auto" else positive_float(text)


DEVICE = dict(metavar="DEVICE", help="cpu, cuda, cuda:N or auto (override train.device)")
SET = dict(action="append", metavar="KEY=VALUE",
           help="override any train: key by its dotted path, e.g. optimizer.adam.weight_decay=0.01 (repeatable)")


def parse_sets(pairs: list[str] | None, option: str = "--set") -> dict:
    """`--set optimizer.adam.lr=0.01` pairs as overrides; values read as YAML (numbers, booleans, lists)."""
    out = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        key = train_key(key)
        if not eq or not key:
            raise UsageError(f"{option} takes KEY=VALUE (a dotted key under train:), got `{printable(pair)}`")
        out[key] = yaml_value(value, f"{option} {key}") if value else None
    return out


def train_key(key: str) -> str:
    """A dotted key under `train:`, which may be written with its `train.` (`train.batch_size`)."""
    return key.removeprefix("train.")


def yaml_value(text: str, where: str):
    """`text` read as the spec's own values are: `1e-3` is a number, `[32, 64]` a list. UsageError if it is no
    YAML."""
    from ..loader import parse_yaml

    try:
        return parse_yaml(text, where).tree
    except SpecError as exc:
        raise UsageError(f"{where}: {exc.message}") from None


@contextlib.contextmanager
def training_failures():
    """A run that cannot go on for a reason outside the spec (its data, a run folder, a checkpoint) as a
    Failure with exit 1."""
    from ..train.checkpoint import CheckpointError
    from ..train.data import DataError
    from ..train.run import RunFolderError

    try:
        yield
    except (DataError, CheckpointError, RunFolderError) as exc:
        raise Failure(str(exc), EXIT_INVALID) from None


def verdict(args: argparse.Namespace, result) -> int:
    """Print a check's one-line verdict (netspec.train.practice.Result): on stdout when it passed or was
    skipped (not with --quiet), on stderr when it failed; its exit status (0 pass or skip, 1 fail)."""
    if result.exit_code:
        print(result.line(), file=sys.stderr)
    else:
        say(args, result.line())
    return result.exit_code


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got `{text}`")
    return value
