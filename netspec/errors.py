"""Compiler-style errors: every user mistake is a `SpecError` at a YAML location.

A `SpecError` carries the file, line and column (1-based), the spec path
(`layers[3].conv2d.kernel_size`), a plain message and an optional hint.
Independent errors are gathered in a `Diagnostics` and raised together as
`SpecErrors`, so one run reports them all — up to MAX_ERRORS, where it stops,
as a C compiler stops after its error limit: a hostile file's thousands of
mistakes cost no more than a hundred. Output stays small whatever the file:
a quoted line shows a window around its caret, and a message's quoted values
are shortened (`brief`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

PathT = tuple  # a spec path: a tuple of str keys and int indices

MAX_ERRORS = 100  # errors reported in one run; a run stops at the 100th
MAX_CANDIDATES = 1_000  # names a did-you-mean search compares (past that, it suggests nothing)
MAX_COMPARED = 500_000  # and characters × characters: comparing two names costs about the product of their lengths
WINDOW = 60  # columns shown either side of the caret in a quoted line
MAX_LINE = 500  # characters in one line of a message, hint or note


@dataclass(frozen=True)
class Mark:
    """A place in a source file (1-based line and column)."""

    file: str
    line: int
    col: int


def format_path(path: PathT) -> str:
    """`('layers', 3, 'conv2d', 'kernel_size')` -> `layers[3].conv2d.kernel_size`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class SpecError(Exception):
    """One mistake in a spec, located at a YAML line."""

    message: str
    path: PathT = ()
    mark: Mark | None = None
    hint: str | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.format(with_source=False)

    @property
    def errors(self) -> list[SpecError]:
        """This error alone, as a list: what `SpecErrors.errors` holds, so either exception reads alike."""
        return [self]

    @property
    def location(self) -> str:
        if self.mark is None:
            return "<spec>"
        return f"{printable(self.mark.file)}:{self.mark.line}:{self.mark.col}"

    def format(self, with_source: bool = True) -> str:
        """`file:line:col: error: message`, the source line with a caret, then the hint."""
        lines = [f"{self.location}: error: {_clip(self.message)}"]
        if with_source and self.mark is not None:
            source = _source_line(self.mark.file, self.mark.line)
            if source is not None:
                before, after = _window(source, self.mark.col)
                lines.append(f"  {self.mark.line:>4} | {before}{after}")
                lines.append(f"       | {' ' * len(before)}^")
        lines.extend(f"  note: {_clip(note)}" for note in self.notes)
        if self.hint:
            lines.append(f"  hint: {_clip(self.hint)}")
        return "\n".join(lines)


class SpecErrors(Exception):
    """Several independent `SpecError`s from one run, in source order."""

    def __init__(self, errors: Iterable[SpecError]):
        self.errors = sorted(errors, key=_order)
        super().__init__("\n".join(e.format(with_source=False) for e in self.errors))

    def format(self) -> str:
        return "\n".join(e.format() for e in self.errors)


def _order(error: SpecError):
    mark = error.mark
    return (mark.file, mark.line, mark.col) if mark else ("", 0, 0)


class Diagnostics:
    """Collects errors; duplicates (same place, same message) are kept once. The MAX_ERRORS-th error
    raises them all: the run stops there."""

    def __init__(self) -> None:
        self._errors: dict[tuple, SpecError] = {}

    def __contains__(self, error: SpecError) -> bool:
        """Whether an error at the same place with the same message is already reported."""
        return (error.mark, error.message) in self._errors

    def add(self, error: SpecError) -> None:
        self._errors.setdefault((error.mark, error.message), error)
        if len(self._errors) >= MAX_ERRORS:
            raise SpecErrors(self._errors.values())

    def extend(self, errors: Iterable[SpecError]) -> None:
        for error in errors:
            self.add(error)

    @property
    def errors(self) -> list[SpecError]:
        return list(self._errors.values())

    def __bool__(self) -> bool:
        return bool(self._errors)

    def raise_if_any(self) -> None:
        if self._errors:
            raise SpecErrors(self._errors.values())


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest choice, or None.

    Only choices whose length could reach difflib's 0.6 ratio are compared (the test difflib itself
    makes first); when more than MAX_CANDIDATES remain, or their characters times the word's pass
    MAX_COMPARED (difflib's matching takes about len(a)·len(b) steps), none is suggested: the search stays
    cheap however many names, and however long, a spec defines.
    """
    word = str(word)
    n = len(word)
    pool = {c for c in map(str, choices) if 3 * max(n, len(c)) <= 7 * min(n, len(c))}
    if not pool or len(pool) > MAX_CANDIDATES or n * sum(map(len, pool)) > MAX_COMPARED:
        return None
    close = difflib.get_close_matches(word, sorted(pool), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def brief(value, limit: int = 60) -> str:
    """`value` as text of at most about `limit` characters, its middle cut out with `…`."""
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit * 2 // 3]}…{text[-(limit // 3):]}"


def listing(names: Iterable[str], limit: int = 12) -> str:
    """`a, b, c` for a hint; past `limit` names, the first ones and how many there are."""
    names = sorted(map(str, names))
    shown = ", ".join(brief(n, 40) for n in names[:limit])
    return shown if len(names) <= limit else f"{shown}, … ({len(names):,} in all)"


def printable(text: str) -> str:
    """`text` with each character a terminal would act on (an escape sequence, a NUL, a bidi override) written
    as its Python escape: a spec's strings cannot drive the terminal that shows its errors."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\t" else c.encode("unicode_escape").decode("ascii") for c in text)


def _clip(text: str) -> str:
    return "\n".join(printable(brief(line, MAX_LINE)) for line in text.split("\n"))


def _window(line: str, col: int) -> tuple[str, str]:
    """At most WINDOW columns of `line` either side of column `col` (1-based): the text before the caret's
    column, and from it on."""
    at = min(max(col - 1, 0), len(line))
    start, end = max(at - WINDOW, 0), at + WINDOW
    left = "…" if start > 0 else ""
    right = "…" if end < len(line) else ""
    return f"{left}{printable(line[start:at])}", f"{printable(line[at:end])}{right}"


_LINES: dict[str, list[str]] = {}


def _source_line(file: str, line: int) -> str | None:
    """Line `line` of a spec this process has read (never the file itself again: it may have changed,
    or be huge)."""
    lines = _LINES.get(file, [])
    return lines[line - 1] if 0 < line <= len(lines) else None


def remember_source(file: str, text: str) -> None:
    """Keep a spec's text so errors can quote it even if it came from a string."""
    _LINES[file] = text.splitlines()
