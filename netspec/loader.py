"""Load YAML safely, keeping the source position of every key and value.

`load_source(path)` returns a `Source`: the plain tree (dicts, lists, scalars)
and two maps from spec path to `Mark` — where each value starts and where each
mapping key starts. `extends: base.yaml` is resolved here: the base is loaded
(relative to the deriving file), then the deriving file is merged over it.

Merge rules for `extends`: mappings merge key by key, recursively; any other
value (a list, a scalar) in the deriving file replaces the base's value whole;
`extends` chains are followed, and a cycle is an error.

Hostile files stay located errors in bounded time and memory (docs/security.md):
the file's size is checked before it is read, its bytes must be UTF-8 text YAML
allows, and the tree is built from the parser's events by one loop (no recursion)
that refuses a value nested deeper than MAX_DEPTH or the MAX_NODES-th value,
aliases counted at their full size, before building any more.
"""

from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import Mark, PathT, SpecError, brief, remember_source
from .perf import without_gc

# libyaml's parser when present (about 10x faster), the pure-Python one otherwise; both are safe loaders
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_FILE_BYTES = 10 * 2**20  # a spec file: checked before it is read
MAX_NODES = 250_000  # YAML values in one file (a 10,000-layer chain has about 40,000): stops alias bombs
MAX_DEPTH = 100  # values nested in values (a spec's own nesting is under 30 deep)
MAX_EXTENDS = 16  # files in one `extends` chain
MAX_NUMBER = 2**63  # no tensor dim or count is larger
MAX_NUMBER_CHARS = 100  # the longest number written: no integer up to 2**63 needs more
_EXPONENT = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+$")  # 1e-3, 5E4: floats without a dot
# characters YAML does not allow in a stream (its `c-printable` complement; PyYAML's Reader.NON_PRINTABLE)
_NON_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")  # YAML's line breaks, as libyaml counts lines
_TAG = "tag:yaml.org,2002:"
_NULLS = ("", "~", "null", "Null", "NULL")


@dataclass
class Source:
    """A loaded spec tree with the source marks of its paths."""

    tree: Any
    file: str
    marks: dict[PathT, Mark] = field(default_factory=dict)
    key_marks: dict[PathT, Mark] = field(default_factory=dict)

    def mark(self, path: PathT, key: bool = False) -> Mark:
        """Where `path` is written (its key with key=True), else its nearest written ancestor, else the
        file's start: every error has a line."""
        path = tuple(path)
        if key and path in self.key_marks:
            return self.key_marks[path]
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), Mark(self.file, 1, 1))

    def error(self, message: str, path: PathT, hint: str | None = None, key: bool = False) -> SpecError:
        return SpecError(message, tuple(path), self.mark(path, key=key), hint)


def read_text(path: str | Path) -> str:
    """The file's text: at most MAX_FILE_BYTES (checked before reading it all), UTF-8."""
    file = str(path)
    start = Mark(file, 1, 1)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            data = f.read(MAX_FILE_BYTES + 1) if size <= MAX_FILE_BYTES else b""
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise SpecError(f"cannot read `{brief(file)}`: {getattr(exc, 'strerror', None) or exc}", (), start) from None
    if size > MAX_FILE_BYTES or len(data) > MAX_FILE_BYTES:
        raise SpecError(f"the file is larger than {MAX_FILE_BYTES // 2**20} MiB, the most a spec may be "
                        f"({max(size, len(data)):,} bytes or more)", (), start,
                        "write repeated layers once, with `repeat:` or a block")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", "replace")  # to quote the line
        remember_source(file, text)
        index = len(data[:exc.start].decode("utf-8"))
        raise SpecError(f"the file is not UTF-8 text: byte 0x{data[exc.start]:02x} does not decode",
                        (), _mark_at(text, index, file), "save the spec as UTF-8 (is it a binary file?)") from None


def _within(text: str, mark: Mark) -> Mark:
    """`mark`, or the end of the text when it lies past it: at the end of a file without a final line break,
    libyaml puts the stream's end on the line after the last, which the file does not have."""
    end = _mark_at(text, len(text), mark.file)
    return end if (mark.line, mark.col) > (end.line, end.col) else mark


def _mark_at(text: str, index: int, file: str) -> Mark:
    """The line and column of character `index` of `text`, counted as YAML counts them."""
    line, start = 1, 0
    for m in _BREAK.finditer(text, 0, index):
        line, start = line + 1, m.end()
    return Mark(file, line, index - start + 1)


@without_gc
def parse_yaml(text: str, file: str) -> Source:
    """Parse one YAML document with the safe loader, recording marks; no tags beyond YAML's own."""
    remember_source(file, text)
    bad = _NON_PRINTABLE.search(text)
    if bad:
        code = ord(bad.group())
        raise SpecError(f"the file holds the control character U+{code:04X}, which YAML does not allow", (),
                        _mark_at(text, bad.start(), file), "a spec is plain text: remove it (is it a binary file?)")
    loader = SafeLoader(text)
    try:
        return _Builder(loader, file).document()
    except yaml.MarkedYAMLError as exc:
        if _holds_nothing(text):  # libyaml refuses some empty files: tabs on a blank line, a lone `...`
            raise _empty(file) from None
        mark = exc.problem_mark or exc.context_mark
        where = _within(text, Mark(file, mark.line + 1, mark.column + 1) if mark else Mark(file, 1, 1))
        problem = exc.problem or exc.context
        if "maximum nesting depth" in str(problem):  # libyaml's own limit, deeper than ours
            raise SpecError(f"values are nested more than {MAX_DEPTH} levels deep", (), where) from None
        where, hint = _syntax_hint(text, where)
        raise SpecError(f"invalid YAML: {problem}", (), where, hint) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {brief(str(exc), 200)}", (), Mark(file, 1, 1)) from None
    finally:
        loader.dispose()


_NOTHING = re.compile(r"[ \t]*((---|\.\.\.)([ \t].*)?|%.*|#.*)?")  # a line without a value


def _empty(file: str) -> SpecError:
    return SpecError("the file is empty: it holds no YAML value, only blank lines or comments", (),
                     Mark(file, 1, 1), "a spec is a mapping: `name:`, `input:`, `layers:`")


def _holds_nothing(text: str) -> bool:
    """Whether `text` has only blank lines (spaces and tabs), comments, directives and document markers."""
    return all(_NOTHING.fullmatch(line) for line in _BREAK.split(text.lstrip("\ufeff")))


_ITEM_WITHOUT_COLON = re.compile(r"^\s*- *([A-Za-z_][A-Za-z0-9_]*)\s*(#.*)?$")


def _syntax_hint(text: str, where: Mark) -> tuple[Mark, str | None]:
    """Where a YAML syntax error really starts, and how to fix it, for the two mistakes specs invite:
    `${...}` unquoted inside `{...}`/`[...]`, and `- op` followed by the item's keys without `- op:`."""
    lines = text.splitlines()
    if not 0 < where.line <= len(lines):
        return where, None
    line = lines[where.line - 1]
    dollar = line.rfind("${", 0, where.col)
    if dollar >= 0 and ("{" in line[:dollar] or "[" in line[:dollar]):
        end = line.find("}", dollar)
        shown = line[dollar:end + 1] if end > 0 else line[dollar:]
        return Mark(where.file, where.line, dollar + 1), (
            f"inside `{{...}}` or `[...]`, YAML reads `{{` and `}}` as its own: quote the expression, "
            f"`'{brief(shown)}'`")
    above = next((ln for ln in reversed(lines[:where.line - 1]) if ln.strip()), "")
    item = _ITEM_WITHOUT_COLON.match(above)
    if item and len(line) - len(line.lstrip()) > above.index("-"):
        return where, f"an item with keys needs a colon after its op: `- {item.group(1)}:`"
    return where, None


def _mark(file: str, event: yaml.Event) -> Mark:
    return Mark(file, event.start_mark.line + 1, event.start_mark.column + 1)


def _shown(tag: str) -> str:
    """`tag:yaml.org,2002:binary` as it is written, `!!binary`."""
    return brief(tag.replace(_TAG, "!!"))


@dataclass
class _Collection:
    """A mapping or list being built: its path, anchor, and for a mapping the key awaiting its value."""

    value: dict | list
    path: PathT
    anchor: str | None
    start: int  # values counted before it
    key: Any = None  # a mapping's key whose value comes next; _PENDING: the next event is a key
    merges: list = field(default_factory=list)  # (merged value, its path) for each `<<`
    height: int = 1  # levels of collections in it, itself included


@dataclass
class _Anchor:
    value: Any  # _PENDING while its value is being built
    path: PathT
    count: int = 1  # values inside it, itself included
    height: int = 0  # levels of collections in it (0: a scalar)


_PENDING, _MERGE, _MISSING = object(), object(), object()
_NUMBERISH = re.compile(r"[-+0-9_:.eExXoObBa-fA-F]*")  # what a long plain scalar that reads as a number holds


class _Builder:
    """Builds the plain tree from parser events in one loop, recording a mark for every path.

    Refuses tags beyond YAML's own plain ones, values nested deeper than MAX_DEPTH, more than MAX_NODES
    values (an alias counts as everything it copies: alias bombs), aliases to values that contain them,
    scalars that do not fit their tag (`!!int x`), and numbers too long or too large to be sizes.
    """

    def __init__(self, loader, file: str):
        self.loader, self.file = loader, file
        self.source = Source(None, file)
        self.count = 0
        self.anchors: dict[str, _Anchor] = {}
        self.plain: dict[str, Any] = {}  # plain scalar text -> its value (`relu`, `64`, `true` repeat a lot)

    def document(self) -> Source:
        loader = self.loader
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            raise self.empty()
        loader.get_event()  # document start
        first = loader.peek_event()
        if isinstance(first, yaml.ScalarEvent) and first.value == "" and first.tag is None and first.implicit[0]:
            raise self.empty()  # only `---` and comments
        self.source.tree = self.value()
        loader.get_event()  # document end
        if not loader.check_event(yaml.StreamEndEvent):
            raise SpecError("a spec file holds one YAML document; this is a second one", (),
                            _mark(self.file, loader.peek_event()), "remove the `---` line that starts it")
        return self.source

    def empty(self) -> SpecError:
        return _empty(self.file)

    def value(self) -> Any:
        """Read events until one whole value is built; the collections being built wait on a stack."""
        stack: list[_Collection] = []
        get_event, file, marks = self.loader.get_event, self.file, self.source.marks
        while True:
            event = get_event()
            kind = type(event)
            height = 0  # of the value built by this event
            if kind is yaml.SequenceEndEvent or kind is yaml.MappingEndEvent:
                done = stack.pop()
                value, height = self.finish(done), done.height
            else:
                parent = stack[-1] if stack else None
                if parent is not None and parent.key is _PENDING:
                    parent.key = self.key(event, parent)
                    continue
                path = () if parent is None else parent.path + (
                    len(parent.value) if type(parent.value) is list else
                    "<<" if parent.key is _MERGE else parent.key,)
                mark = Mark(file, event.start_mark.line + 1, event.start_mark.column + 1)
                if kind is yaml.AliasEvent:
                    value, height = self.alias(event.anchor, path, mark, len(stack))
                else:
                    self.count += 1
                    if self.count > MAX_NODES:
                        raise self.too_many(path, mark)
                    marks[path] = mark
                    if kind is yaml.ScalarEvent:
                        value = self.scalar(event, path, mark)
                        if event.anchor is not None:
                            self.anchor(event.anchor, path, mark, value, self.count - 1)
                    else:
                        if len(stack) >= MAX_DEPTH:
                            raise SpecError(f"values are nested more than {MAX_DEPTH} levels deep", path, mark,
                                            "a spec nests far less: flatten the structure")
                        mapping = kind is yaml.MappingStartEvent
                        self.check_tag(event.tag, path, mark, "map" if mapping else "seq")
                        if event.anchor is not None:
                            self.anchor(event.anchor, path, mark, _PENDING, self.count - 1)
                        stack.append(_Collection({} if mapping else [], path, event.anchor, self.count - 1,
                                                 _PENDING if mapping else None))
                        continue
            if not stack:
                return value
            parent = stack[-1]
            parent.height = max(parent.height, height + 1)
            if type(parent.value) is list:
                parent.value.append(value)
            else:
                if parent.key is _MERGE:
                    parent.merges.append((value, parent.path + ("<<",)))
                else:
                    parent.value[parent.key] = value
                parent.key = _PENDING

    def too_many(self, path: PathT, mark: Mark) -> SpecError:
        return SpecError(f"the spec holds more than {MAX_NODES:,} YAML values", path, mark,
                         "aliases (`*name`) count as everything they copy; write repeated layers with "
                         "`repeat:` or a block")

    def check_tag(self, tag: str | None, path: PathT, mark: Mark, kind: str) -> None:
        if tag not in (None, "!", _TAG + kind):
            raise SpecError(f"invalid YAML: the tag `{_shown(tag)}` is not allowed", path, mark,
                            "specs hold plain data: mappings, lists, numbers, strings, booleans")

    def key(self, event, parent: _Collection) -> Any:
        mark = _mark(self.file, event)
        if type(event) is not yaml.ScalarEvent:
            raise SpecError("mapping keys must be names", parent.path, mark)
        if event.value == "<<" and event.tag is None and event.implicit[0]:
            return _MERGE
        key = self.scalar(event, parent.path, mark)
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            raise SpecError("mapping keys must be names", parent.path, mark)
        if key in parent.value:
            raise SpecError(f"duplicate key `{brief(key)}`", parent.path + (key,), mark,
                            "each key may appear once in a mapping")
        self.source.key_marks[parent.path + (key,)] = mark
        return key

    def finish(self, done: _Collection) -> Any:
        value = self.merge(done) if done.merges else done.value
        if done.anchor is not None:
            self.anchors[done.anchor] = _Anchor(value, done.path, self.count - done.start, done.height)
        return value

    def merge(self, done: _Collection) -> dict:
        """YAML merge keys (`<<: *base`, `<<: [*a, *b]`): the merged mappings' keys not written here, an
        earlier mapping's before a later one's; their marks move to the keys they become."""
        out = dict(done.value)
        for merged, path in done.merges:
            sources = [(merged, path)] if isinstance(merged, dict) else \
                [(m, path + (i,)) for i, m in enumerate(merged)] if isinstance(merged, list) else []
            if not sources or not all(isinstance(m, dict) for m, _ in sources):
                raise SpecError("`<<` merges a mapping or a list of mappings", path, self.source.mark(path))
            for mapping, where in sources:
                for key in [key for key in mapping if key not in out]:
                    out[key] = mapping[key]
                    self.copy_marks(mapping[key], where + (key,), done.path + (key,))
                    if where + (key,) in self.source.key_marks:
                        self.source.key_marks[done.path + (key,)] = self.source.key_marks[where + (key,)]
        return out

    def copy_marks(self, value: Any, source: PathT, target: PathT) -> None:
        """The marks of `value`, written at `source`, for its copy at `target` (no recursion)."""
        marks, key_marks = self.source.marks, self.source.key_marks
        stack = [(value, ())]
        while stack:
            item, sub = stack.pop()
            if source + sub in marks:
                marks[target + sub] = marks[source + sub]
            if isinstance(item, dict):
                for k, v in item.items():
                    if source + sub + (k,) in key_marks:
                        key_marks[target + sub + (k,)] = key_marks[source + sub + (k,)]
                    stack.append((v, sub + (k,)))
            elif isinstance(item, list):
                stack.extend((v, sub + (i,)) for i, v in enumerate(item))

    def anchor(self, name: str, path: PathT, mark: Mark, value: Any, start: int) -> None:
        if name in self.anchors:
            raise SpecError(f"invalid YAML: the anchor `&{brief(name)}` is defined twice", path, mark)
        self.anchors[name] = _Anchor(value, path, self.count - start)

    def alias(self, name: str, path: PathT, mark: Mark, level: int) -> tuple[Any, int]:
        """A copy of the anchored value for `*name`, at `level` collections deep, and its height."""
        anchor = self.anchors.get(name)
        if anchor is None:
            raise SpecError(f"invalid YAML: the alias `*{brief(name)}` names no anchor before it", path, mark)
        if anchor.value is _PENDING:
            raise SpecError("invalid YAML: an alias refers to a value that contains it", path, mark)
        if level + anchor.height > MAX_DEPTH:  # aliases inside aliases would nest without end
            raise SpecError(f"values are nested more than {MAX_DEPTH} levels deep", path, mark,
                            f"`*{brief(name)}` copies {anchor.height} levels here")
        self.count += anchor.count
        if self.count > MAX_NODES:  # refused before anything is copied
            raise self.too_many(path, mark)
        self.copy_marks(anchor.value, anchor.path, path)
        self.source.marks[path] = mark
        return copy.deepcopy(anchor.value), anchor.height

    def scalar(self, event, path: PathT, mark: Mark) -> Any:
        text, tag = event.value, event.tag
        if tag is None:
            if not event.implicit[0]:
                return text  # quoted: a string
            value = self.plain.get(text, _MISSING)
            if value is _MISSING:
                value = self.plain_value(text, path, mark)
                if len(text) <= MAX_NUMBER_CHARS:
                    self.plain[text] = value
            return value
        if tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, text, event.implicit)
        return self.construct(tag, text, path, mark)

    def plain_value(self, text: str, path: PathT, mark: Mark) -> Any:
        """A plain scalar by YAML 1.1's rules (`64`, `true`, `null`, `relu`), and `1e-3` as a number."""
        if len(text) > MAX_NUMBER_CHARS:  # resolving it would be slow: only a string or a too-long number
            if text[0] in "-+.0123456789" and _NUMBERISH.fullmatch(text):
                return self.construct(_TAG + "int", text, path, mark)
            return text
        tag = self.loader.resolve(yaml.ScalarNode, text, (True, False))
        if tag == _TAG + "str" and _EXPONENT.match(text):
            return self.number(float(text), text, path, mark)  # YAML 1.1 reads a plain `1e-3` as text
        if tag.removeprefix(_TAG) not in ("int", "float", "bool", "null"):
            return text  # `2024-01-31` (a YAML 1.1 timestamp), `=`: plain text, as YAML 1.2 reads them
        return self.construct(tag, text, path, mark)

    def construct(self, tag: str, text: str, path: PathT, mark: Mark) -> Any:
        """The value of a scalar with a resolved or written tag; a located error if it does not fit the tag."""
        kind = tag.removeprefix(_TAG)
        if kind == "str":
            return text
        if kind not in ("int", "float", "bool", "null") or not tag.startswith(_TAG):
            raise SpecError(f"invalid YAML: the tag `{_shown(tag)}` is not allowed", path, mark,
                            "specs hold plain data: mappings, lists, numbers, strings, booleans")
        if kind == "null":
            if text not in _NULLS:
                raise SpecError(f"`{brief(text)}` is not null (`!!null` takes `null`, `~` or nothing)", path, mark)
            return None
        if kind == "bool":
            value = self.loader.bool_values.get(text.lower())
            if value is None:
                raise SpecError(f"`{brief(text)}` is not a boolean (`!!bool` takes true or false)", path, mark)
            return value
        if len(text) > MAX_NUMBER_CHARS:
            raise SpecError(f"`{brief(text)}` is too large: a number of {len(text):,} characters (at most "
                            f"{MAX_NUMBER_CHARS}; no size or count exceeds 2**63)", path, mark)
        try:
            value = self.loader.yaml_constructors[tag](self.loader, yaml.ScalarNode(tag, text))
        except (ValueError, TypeError, ArithmeticError, IndexError):
            what = "a whole number" if kind == "int" else "a number"
            raise SpecError(f"`{brief(text)}` is not {what} (`!!{kind}`)", path, mark) from None
        return self.number(value, text, path, mark)

    def number(self, value: int | float, text: str, path: PathT, mark: Mark) -> int | float:
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"`{brief(text)}` is not a finite number", path, mark)
        if abs(value) > MAX_NUMBER:
            raise SpecError(f"{brief(text)} is too large (no size or count exceeds 2**63)", path, mark)
        return value


def load_source(path: str | Path, _chain: tuple[str, ...] = ()) -> Source:
    """Read a spec file, following `extends` (relative to the file) and merging."""
    path = Path(path)
    source = parse_yaml(read_text(path), str(path))
    if not isinstance(source.tree, dict):
        raise source.error("a spec is a mapping (name:, input:, layers:, ...)", ())
    base_name = source.tree.get("extends")
    if base_name is None:
        return source
    if not isinstance(base_name, str):
        raise source.error("`extends` takes a file name", ("extends",))
    base_path = path.parent / base_name
    chain = _chain + (os.path.realpath(path),)
    try:
        exists = "\0" not in base_name and base_path.exists()
        is_file = exists and base_path.is_file()
    except OSError as exc:  # a name too long for the system, a folder the user may not search
        raise source.error(f"`extends` names `{brief(base_name)}`, which cannot be read: {exc.strerror or exc}",
                           ("extends",)) from None
    if not exists:
        raise source.error(f"`extends` names `{brief(base_name)}`, which does not exist next to `{path}`",
                           ("extends",))
    if os.path.realpath(base_path) in chain:  # realpath: no error on a symlink loop
        raise source.error(f"`extends` forms a cycle through `{brief(base_name)}`", ("extends",))
    if len(chain) >= MAX_EXTENDS:
        raise source.error(f"`extends` chains more than {MAX_EXTENDS} files", ("extends",))
    if not is_file:
        raise source.error(f"`extends` names `{brief(base_name)}`, which is not a file", ("extends",))
    base = load_source(base_path, chain)
    return merge(base, source)


def merge(base: Source, over: Source) -> Source:
    """`over` merged onto `base` by the `extends` rules; marks follow the value that wins."""
    replaced: set[PathT] = set()
    tree = _merge_value(base.tree, over.tree, (), replaced)
    tree.pop("extends", None)
    # forget where the base's versions of the replaced subtrees were written (one pass over the marks)
    marks, key_marks = ({p: m for p, m in table.items() if not _under(p, replaced)}
                        for table in (base.marks, base.key_marks))
    marks.update(over.marks)
    key_marks.update(over.key_marks)
    return Source(tree, over.file, marks, key_marks)


def _merge_value(base: Any, over: Any, path: PathT, replaced: set[PathT]) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if key in base:
                out[key] = _merge_value(base[key], value, path + (key,), replaced)
            else:
                out[key] = value
        return out
    if isinstance(base, (dict, list)):
        replaced.add(path)
    return over


def _under(path: PathT, replaced: set[PathT]) -> bool:
    """Whether `path` lies strictly inside one of the `replaced` paths."""
    return bool(replaced) and any(path[:i] in replaced for i in range(len(path)))
