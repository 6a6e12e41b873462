"""Load YAML safely, keeping the source position of every key and value.

`load_source(path)` returns a `Source`: the plain tree (dicts, lists, scalars)
and two maps from spec path to `Mark` — where each value starts and where each
mapping key starts. `extends: base.yaml` is resolved here: the base is loaded
(relative to the deriving file), then the deriving file is merged over it.

Merge rules for `extends`: mappings merge key by key, recursively; any other
value (a list, a scalar) in the deriving file replaces the base's value whole;
`extends` chains are followed, and a cycle is an error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import Mark, PathT, SpecError, remember_source
from .perf import without_gc

# libyaml's parser when present (about 10x faster), the pure-Python one otherwise; both are safe loaders
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Source:
    """A loaded spec tree with the source marks of its paths."""

    tree: Any
    file: str
    marks: dict[PathT, Mark] = field(default_factory=dict)
    key_marks: dict[PathT, Mark] = field(default_factory=dict)

    def mark(self, path: PathT, key: bool = False) -> Mark | None:
        """Where `path` is written (its key with key=True), else its nearest written ancestor."""
        path = tuple(path)
        if key and path in self.key_marks:
            return self.key_marks[path]
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), None)

    def error(self, message: str, path: PathT, hint: str | None = None, key: bool = False) -> SpecError:
        return SpecError(message, tuple(path), self.mark(path, key=key), hint)


@without_gc
def parse_yaml(text: str, file: str) -> Source:
    """Parse one YAML document with the safe loader, recording marks; no tags beyond YAML's own."""
    remember_source(file, text)
    loader = SafeLoader(text)
    source = Source(None, file)
    try:
        root = loader.get_single_node()
        source.tree = {} if root is None else _Converter(loader, source).convert(root, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Mark(file, mark.line + 1, mark.column + 1) if mark else None
        raise SpecError(f"invalid YAML: {exc.problem or exc.context}", (), where) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", (), Mark(file, 1, 1)) from None
    finally:
        loader.dispose()
    return source


def _mark(file: str, node: yaml.Node) -> Mark:
    return Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)


_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("map", "seq", "str", "int", "float", "bool", "null")}
MAX_NODES = 250_000  # YAML values in one file (a 10,000-layer chain has about 40,000): stops alias bombs
MAX_NUMBER = 2**63  # no tensor dim or count is larger
_EXPONENT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")  # 1e-3, 5E4: floats without a dot


class _Converter:
    """YAML nodes to plain values with their marks; refuses tags, alias cycles and alias bombs."""

    def __init__(self, loader: SafeLoader, source: Source):
        self.loader, self.source = loader, source
        self.active: set[int] = set()  # nodes being converted: one seen again is an alias cycle
        self.count = 0

    def convert(self, node: yaml.Node, path: PathT) -> Any:
        source = self.source
        mark = source.marks[path] = _mark(source.file, node)
        self.count += 1
        if self.count > MAX_NODES:
            raise SpecError(f"the spec expands to more than {MAX_NODES:,} YAML values", path, mark,
                            "aliases (`*name`) may be nested too deeply")
        if node.tag not in _PLAIN_TAGS:
            raise SpecError(f"invalid YAML: the tag `{node.tag}` is not allowed", path, mark,
                            "specs hold plain data: mappings, lists, numbers, strings, booleans")
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            return self.scalar(node, path, mark)
        if id(node) in self.active:
            raise SpecError("invalid YAML: an alias refers to a value that contains it", path, mark)
        self.active.add(id(node))
        try:
            return self.mapping(node, path) if isinstance(node, yaml.MappingNode) else \
                [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: PathT) -> dict:
        self.loader.flatten_mapping(node)  # YAML merge keys (<<) resolve here
        out: dict = {}
        for key_node, value_node in node.value:
            key_mark = _mark(self.source.file, key_node)
            key = self.loader.construct_object(key_node, deep=True) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise SpecError("mapping keys must be names", path, key_mark)
            if key in out:
                raise SpecError(f"duplicate key `{key}`", path + (key,), key_mark,
                                "each key may appear once in a mapping")
            self.source.key_marks[path + (key,)] = key_mark
            out[key] = self.convert(value_node, path + (key,))
        return out

    def scalar(self, node: yaml.Node, path: PathT, mark: Mark) -> Any:
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, str) and not node.style and _EXPONENT.match(value):
            value = float(value)  # YAML 1.1 reads a plain `1e-3` as text; YAML 1.2 and people read a number
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"`{node.value}` is not a finite number", path, mark)
        if isinstance(value, (int, float)) and abs(value) > MAX_NUMBER:
            raise SpecError(f"{node.value} is too large (no size or count exceeds 2**63)", path, mark)
        return value


def load_source(path: str | Path, _chain: tuple[str, ...] = ()) -> Source:
    """Read a spec file, following `extends` (relative to the file) and merging."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read `{file}`: {exc.strerror or exc}", (), None) from None
    source = parse_yaml(text, file)
    if not isinstance(source.tree, dict):
        raise source.error("a spec is a mapping (name:, input:, layers:, ...)", ())
    base_name = source.tree.get("extends")
    if base_name is None:
        return source
    if not isinstance(base_name, str):
        raise source.error("`extends` takes a file name", ("extends",))
    base_path = path.parent / base_name
    chain = _chain + (str(path.resolve()),)
    if str(base_path.resolve()) in chain:
        raise source.error(f"`extends` forms a cycle through `{base_name}`", ("extends",))
    if not base_path.exists():
        raise source.error(f"`extends` names `{base_name}`, which does not exist next to `{file}`",
                           ("extends",))
    base = load_source(base_path, chain)
    return merge(base, source)


def merge(base: Source, over: Source) -> Source:
    """`over` merged onto `base` by the `extends` rules; marks follow the value that wins."""
    marks = dict(base.marks)
    key_marks = dict(base.key_marks)
    tree = _merge_value(base.tree, over.tree, (), marks, key_marks)
    tree.pop("extends", None)
    marks.update(over.marks)
    key_marks.update(over.key_marks)
    return Source(tree, over.file, marks, key_marks)


def _merge_value(base: Any, over: Any, path: PathT, marks: dict, key_marks: dict) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if key in base:
                out[key] = _merge_value(base[key], value, path + (key,), marks, key_marks)
            else:
                out[key] = value
        return out
    # replaced whole: forget where the base's version of this subtree was written
    for table in (marks, key_marks):
        for p in [p for p in table if p[: len(path)] == path and len(p) > len(path)]:
            del table[p]
    return over
