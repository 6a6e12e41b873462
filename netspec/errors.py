"""Compiler-style errors: every user mistake is a `SpecError` at a YAML location.

A `SpecError` carries the file, line and column (1-based), the spec path
(`layers[3].conv2d.kernel_size`), a plain message and an optional hint.
Independent errors are gathered in a `Diagnostics` and raised together as
`SpecErrors`, so one run reports them all.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

PathT = tuple  # a spec path: a tuple of str keys and int indices


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
    def location(self) -> str:
        if self.mark is None:
            return "<spec>"
        return f"{self.mark.file}:{self.mark.line}:{self.mark.col}"

    def format(self, with_source: bool = True) -> str:
        """`file:line:col: error: message`, the source line with a caret, then the hint."""
        lines = [f"{self.location}: error: {self.message}"]
        if with_source and self.mark is not None:
            source = _source_line(self.mark.file, self.mark.line)
            if source is not None:
                lines.append(f"  {self.mark.line:>4} | {source}")
                lines.append(f"       | {' ' * (self.mark.col - 1)}^")
        lines.extend(f"  note: {note}" for note in self.notes)
        if self.hint:
            lines.append(f"  hint: {self.hint}")
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
    """Collects errors; duplicates (same place, same message) are kept once."""

    def __init__(self) -> None:
        self._errors: dict[tuple, SpecError] = {}

    def add(self, error: SpecError) -> None:
        self._errors.setdefault((error.mark, error.message), error)

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
    """A hint naming the closest choice, or None."""
    close = difflib.get_close_matches(str(word), sorted(set(choices)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


_LINES: dict[str, list[str]] = {}


def _source_line(file: str, line: int) -> str | None:
    if file not in _LINES:
        try:
            _LINES[file] = Path(file).read_text(encoding="utf-8").splitlines()
        except OSError:
            _LINES[file] = []
    lines = _LINES[file]
    return lines[line - 1] if 0 < line <= len(lines) else None


def remember_source(file: str, text: str) -> None:
    """Keep a spec's text so errors can quote it even if it came from a string."""
    _LINES[file] = text.splitlines()
