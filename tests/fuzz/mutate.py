"""Mutants of valid specs: structural changes to the YAML tree, then textual changes to the bytes.

`make_case(seed, index)` is a pure function of its arguments: it starts from a file of `specs/` or a random
spec (`tests.strategies.random_spec`), applies one to four mutations and returns the bytes with a description
of each mutation, so that `python -m tests.fuzz.run --seed S --case I` rebuilds any case exactly.

Structural mutations: keys deleted, renamed (typos, other keys, type names, non-string keys), values replaced
by other types, numbers made zero, negative or huge, references to missing or later names, lists turned into
mappings and back, subtrees copied (shared copies become YAML anchors and aliases), random expressions,
`repeat`/`when`/`from`/`name` on layers, a layer repeated thousands of times, random catalog layers inserted,
`extends` pointed anywhere, blocks that use themselves, deep nesting. Textual mutations: truncation, bit
flips, inserted bytes (non-UTF-8, control characters, BOMs, line separators, YAML syntax), deleted ranges,
duplicated and swapped lines (duplicate keys), indentation changed, tabs, CRLF/CR line ends, other encodings,
a chunk repeated many times.
"""

from __future__ import annotations

import copy
import random
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.strategies import random_spec

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "specs").glob("*.yaml"))
CASE = "case.yaml"  # the mutant's file name, next to copies of SHIPPED (for `extends:`)


@dataclass
class Case:
    seed: int
    index: int
    origin: str  # `specs/NAME.yaml` or `random:N`
    data: bytes
    mutations: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"seed {self.seed} case {self.index}"


def make_case(seed: int, index: int) -> Case:
    rng = random.Random(f"netspec-fuzz:{seed}:{index}")
    if rng.random() < 0.5:
        path = rng.choice(SHIPPED)
        origin, text = f"specs/{path.name}", _shipped(path.name)
    else:
        n = rng.getrandbits(32)
        origin, text = f"random:{n}", random_spec(random.Random(n))
    case = Case(seed, index, origin, b"")
    count = rng.choice([1, 1, 1, 2, 2, 3, 4])
    structural = rng.randint(0, count)
    if structural:
        tree = copy.deepcopy(_tree(text))
        for _ in range(structural):
            name = rng.choice(STRUCTURAL)
            tree = globals()[f"_s_{name}"](rng, tree, case)
        text = _dump(rng, tree)
    data = text.encode("utf-8", "surrogatepass")
    for _ in range(count - structural):
        name = rng.choice(TEXTUAL)
        data = globals()[f"_t_{name}"](rng, data, case)
    case.data = data
    return case


@cache
def _shipped(name: str) -> str:
    return (ROOT / "specs" / name).read_text(encoding="utf-8")


_TREES: dict[str, Any] = {}


def _tree(text: str) -> Any:
    if text not in _TREES:
        if len(_TREES) > 64:
            _TREES.clear()
        _TREES[text] = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return _TREES[text]


def _dump(rng: random.Random, tree: Any) -> str:
    return yaml.dump(tree, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False,
                     allow_unicode=rng.random() < 0.7,
                     default_flow_style=rng.choice([False, False, None, True]), width=rng.choice([80, 10**6]))


# ---- vocabularies ---------------------------------------------------------------------------------------------------


@cache
def _vocab() -> dict[str, list]:
    from netspec.layers import REGISTRY
    from netspec.spec import LAYER_KEYS, BlockDef, SpecModel

    args = sorted({name for entry in REGISTRY.values() for name, info in entry.Args.model_fields.items()} |
                  {alias for entry in REGISTRY.values() for info in entry.Args.model_fields.values()
                   for alias in getattr(info.validation_alias, "choices", []) if isinstance(alias, str)})
    return {"ops": sorted(REGISTRY), "args": args, "layer_keys": list(LAYER_KEYS),
            "top": sorted(SpecModel.model_fields) + ["extends"], "block": sorted(BlockDef.model_fields),
            "types": ["int", "float", "str", "list", "dict", "bool", "none", "literal", "InputDef"]}


NUMBERS = [0, -1, 1, 2, 3, 7, 2**31 - 1, 2**31, 2**32 + 1, 2**53 + 1, 2**60, 2**62, 2**63 - 1, 2**63, 2**64,
           -2**63, -2**64, 10**19, 10**30, 10**100, 0.5, -0.0, 1e-320, 1e308, 1.5, float("inf"), float("-inf"),
           float("nan")]
STRINGS = ["", " ", "x", "relu", "input", "T", "L", "none", "null", "true", "~", "a.b", "layer1.0.conv1", "é",
           "名前", "\u202e", "\x00", "\x1b[2J", "\u2028", "\ufeff", "a" * 5000, "-", "- relu", "{", "[", "*a", "&a",
           "!!int 3", "%", "@", "`", "$", "${", "$width", "${}", "${${1}}", "$in_features", "${in_shape}"]


def _expression(rng: random.Random, depth: int = 0) -> str:
    """A random expression over the evaluator's names, functions and operators, and some it refuses."""
    if depth > 3 or rng.random() < 0.3:
        return rng.choice(["1", "0", "2", "-1", "3.5", "2**62", "2**63", "10**18", "1e308", "'x'", "''", "None", "True",
                           "in_shape", "in_channels", "in_features", "index", "width", "depth", "nosuch", "in_shape[0]",
                           "in_shape[-1]", "in_shape[9]", "[1, 2, 3]", "[]", "[[1], [2]]", "[0] * 3", "'T'"])
    a, b = _expression(rng, depth + 1), _expression(rng, depth + 1)
    form = rng.randrange(9)
    if form == 0:
        op = rng.choice(["+", "-", "*", "/", "//", "%", "**", "@", "|", "<<", "and", "or"])
        return f"({a} {op} {b})"
    if form == 1:
        op = rng.choice(["==", "!=", "<", "<=", ">", ">=", "in", "not in", "is"])
        return f"({a} {op} {b})"
    if form == 2:
        fn = rng.choice(["min", "max", "abs", "int", "float", "round", "len", "sum", "ceil", "floor", "sqrt", "pow",
                         "eval", "__import__", "print"])
        return f"{fn}({a}{', ' + b if rng.random() < 0.4 else ''})"
    if form == 3:
        return f"({a} if {b} else {_expression(rng, depth + 1)})"
    if form == 4:
        return f"{a}[{b}]"
    if form == 5:
        return f"[{a}, {b}]"
    if form == 6:
        return f"{rng.choice(['not ', '-', '+', '~'])}{a}"
    if form == 7:
        return rng.choice([f"{a}.real", f"lambda: {a}", f"[i for i in {a}]", f"{a}[0:1]", f"(y := {a})",
                           f"f'{{{a}}}'", f"{{{a}: {b}}}", f"*{a}"])
    return f"({a})"


def _wrapped(rng: random.Random) -> str:
    text = _expression(rng)
    return rng.choice([f"${{{text}}}", f"${{{text}}}", f"${{{text}", f"$({text})", f"${text}"])


def _weird(rng: random.Random, tree: Any) -> Any:
    kind = rng.randrange(10)
    if kind < 3:
        return rng.choice(NUMBERS)
    if kind < 5:
        return rng.choice(STRINGS)
    if kind == 5:
        return _wrapped(rng)
    if kind == 6:
        return rng.choice([None, True, False, [], {}, [1, 2, 3], {"a": 1}, ["relu"], {"relu": None},
                           [rng.randint(-3, 9) for _ in range(rng.choice([65, 2000]))]])
    if kind == 7:
        return _nested(rng)
    if kind == 8:
        return _layer(rng)
    spots = _spots(tree)
    return copy.deepcopy(rng.choice(spots)[2]) if spots else None


def _nested(rng: random.Random) -> Any:
    value: Any = rng.choice([1, "relu", None])
    for _ in range(rng.choice([5, 40, 99, 101, 150])):
        value = [value] if rng.random() < 0.5 else {"a": value}
    return value


def _layer(rng: random.Random) -> Any:
    """A catalog layer with random arguments, in one of the forms an item takes."""
    vocab = _vocab()
    op = rng.choice(vocab["ops"])
    form = rng.randrange(4)
    if form == 0:
        return op
    if form == 1:
        return {op: rng.choice([1, 3, 64, 0, -2, 0.5, True, None, "same", [2, 2], "x"])}
    values = [0, 1, 2, 3, 8, -1, True, False, None, 0.1, 1.5, [1, 2], [3, 3, 3], "same", "sequence", "last",
              "nearest", "bilinear", "tanh", "x", "${in_channels}", "${in_features * 2}"]
    args = {rng.choice(vocab["args"]): rng.choice(values) for _ in range(rng.randint(0, 4))}
    item: dict[str, Any] = {op: args}
    if form == 3:
        item.update({rng.choice(vocab["layer_keys"]): rng.choice([True, 2, "l1", "input", ["a", "b"], None])})
    return item


# ---- structural mutations -------------------------------------------------------------------------------------------


def _spots(tree: Any) -> list[tuple[Any, Any, Any]]:
    """(container, key or index, value) of every value in the tree, root excluded; iterative."""
    out, stack, seen = [], [tree], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:  # a subtree shared by an earlier mutation, or a cycle
            continue
        seen.add(id(node))
        pairs = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) if isinstance(node, list) \
            else []
        for key, value in pairs:
            out.append((node, key, value))
            if isinstance(value, (dict, list)):
                stack.append(value)
    return out


def _pick(rng, tree, case, what, test=lambda c, k, v: True):
    spots = [s for s in _spots(tree) if test(*s)]
    if not spots:
        case.mutations.append(f"{what}: nothing to mutate")
        return None
    return rng.choice(spots)


def _path(container, key) -> str:
    return f"[{key}]" if isinstance(container, list) else f".{key}"


def _s_delete(rng, tree, case):
    spot = _pick(rng, tree, case, "delete")
    if spot:
        container, key, _ = spot
        del container[key]
        case.mutations.append(f"delete {_path(container, key)}")
    return tree


def _s_rename(rng, tree, case):
    spot = _pick(rng, tree, case, "rename", lambda c, k, v: isinstance(c, dict))
    if spot:
        container, key, value = spot
        vocab = _vocab()
        new = rng.choice([_typo(rng, str(key)), rng.choice(vocab["top"]), rng.choice(vocab["layer_keys"]),
                          rng.choice(vocab["ops"]), rng.choice(vocab["args"]), rng.choice(vocab["types"]),
                          rng.choice(vocab["block"]), "<<", "", " ", "ñame", 7, True, None, 1.5])
        if new in container:
            case.mutations.append(f"rename .{key}: `{new}` is taken")
            return tree
        items = [(new if k == key else k, v) for k, v in container.items()]
        container.clear()
        container.update(items)
        case.mutations.append(f"rename .{key} -> {new!r}")
    return tree


def _typo(rng: random.Random, word: str) -> str:
    if not word:
        return "x"
    i = rng.randrange(len(word))
    return rng.choice([word[:i] + word[i + 1:], word[:i] + rng.choice("aeiouxs_") + word[i:],
                       word[:i] + word[i:][::-1], word.upper(), word + "s"]) or "x"


def _s_replace(rng, tree, case):
    spot = _pick(rng, tree, case, "replace")
    if spot:
        container, key, value = spot
        container[key] = new = _weird(rng, tree)
        case.mutations.append(f"replace {_path(container, key)} with {_show(new)}")
    return tree


def _s_number(rng, tree, case):
    spot = _pick(rng, tree, case, "number",
                 lambda c, k, v: isinstance(v, (int, float)) and not isinstance(v, bool))
    if spot:
        container, key, value = spot
        new = rng.choice([0, -value, value + 1, value - 1, value * 1000, 2**rng.randint(30, 70), -2**63, 2**63,
                          value + 0.5, rng.choice(NUMBERS)])
        container[key] = new
        case.mutations.append(f"number {_path(container, key)}: {value!r} -> {new!r}")
    return tree


def _s_reference(rng, tree, case):
    names = [v for _, _, v in _spots(tree) if isinstance(v, str) and re.fullmatch(r"[A-Za-z][\w.]*", v)]
    spot = _pick(rng, tree, case, "reference", lambda c, k, v: isinstance(v, str) and (k in ("from", "output")
                 or isinstance(c, list)))
    if spot:
        container, key, value = spot
        new = rng.choice(["missing", "input", value + "x", value.upper(), *(names or ["x"])])
        container[key] = new
        case.mutations.append(f"reference {_path(container, key)}: {value} -> {new}")
    return tree


def _s_shape(rng, tree, case):
    """Lists become mappings and mappings lists."""
    spot = _pick(rng, tree, case, "list<->mapping", lambda c, k, v: isinstance(v, (list, dict)))
    if spot:
        container, key, value = spot
        if isinstance(value, list):
            new = rng.choice([{str(i): v for i, v in enumerate(value)}, {i: v for i, v in enumerate(value)},
                              {v if isinstance(v, str) else str(v): None for v in value}])
        else:
            new = rng.choice([list(value.values()), [[k, v] for k, v in value.items()],
                              [{k: v} for k, v in value.items()], list(value)])
        container[key] = new
        case.mutations.append(f"list<->mapping {_path(container, key)}")
    return tree


def _s_wrap(rng, tree, case):
    spot = _pick(rng, tree, case, "wrap")
    if spot:
        container, key, value = spot
        container[key] = rng.choice([[value], {"layers": [value]}, {rng.choice(_vocab()["ops"]): value},
                                     {"name": "g", "layers": value}])
        case.mutations.append(f"wrap {_path(container, key)}")
    return tree


def _s_share(rng, tree, case):
    """A value replaced by another subtree itself (YAML anchors and aliases), or a copy of it."""
    spots = _spots(tree)
    if len(spots) < 2:
        return tree
    (container, key, _), (_, _, other) = rng.sample(spots, 2)
    container[key] = other if rng.random() < 0.6 else copy.deepcopy(other)
    case.mutations.append(f"share {_path(container, key)} with {_show(other)}")
    return tree


def _s_expression(rng, tree, case):
    spot = _pick(rng, tree, case, "expression", lambda c, k, v: not isinstance(v, (list, dict)))
    if spot:
        container, key, value = spot
        container[key] = new = _wrapped(rng)
        case.mutations.append(f"expression {_path(container, key)} = {new}")
    return tree


def _layers(tree) -> list[list]:
    return [v for c, k, v in _spots(tree) if k == "layers" and isinstance(v, list)] + \
        ([tree["layers"]] if isinstance(tree, dict) and isinstance(tree.get("layers"), list) else [])


def _s_item_keys(rng, tree, case):
    """A layer key (`repeat`, `when`, `from`, `name`, `frozen`, `init`) set on a layer item."""
    items = [item for layers in _layers(tree) for item in layers if isinstance(item, dict)]
    if not items:
        return tree
    item = rng.choice(items)
    key = rng.choice(["repeat", "when", "from", "name", "frozen", "init", "layers"])
    value = rng.choice({"repeat": [0, 1, 2, 3, -1, 50000, 50001, 10**6, 2**63, 1.5, "$depth", "${index + 1}"],
                        "when": [True, False, "yes", "${index % 2 == 0}", "${in_shape[0] > 2}", 0, None],
                        "from": ["input", "missing", ["input", "input"], [], 3, "layer1.0"],
                        "name": ["input", "self", "forward", "a.b", "x" * 101, "dup", 3, "l1"],
                        "frozen": [True, "yes", 1],
                        "init": ["kaiming", "zeros", {"normal": {"std": -1}}, 3],
                        "layers": [[], ["relu"], "relu", [{"linear": 4}]]}[key] + [_weird(rng, tree)])
    item[key] = value
    case.mutations.append(f"layer key {key}: {_show(value)}")
    return tree


def _s_insert_layer(rng, tree, case):
    lists = _layers(tree)
    if not lists:
        return tree
    layers = rng.choice(lists)
    new = _layer(rng)
    layers.insert(rng.randint(0, len(layers)), new)
    case.mutations.append(f"insert layer {_show(new)}")
    return tree


def _s_swap(rng, tree, case):
    lists = [v for _, _, v in _spots(tree) if isinstance(v, list) and len(v) > 1]
    if lists:
        items = rng.choice(lists)
        i, j = rng.sample(range(len(items)), 2)
        items[i], items[j] = items[j], items[i]
        case.mutations.append(f"swap items {i} and {j}")
    return tree


def _s_duplicate(rng, tree, case):
    lists = [v for _, _, v in _spots(tree) if isinstance(v, list) and v]
    if lists:
        items = rng.choice(lists)
        i = rng.randrange(len(items))
        items.insert(i, copy.deepcopy(items[i]) if rng.random() < 0.5 else items[i])
        case.mutations.append(f"duplicate item {i}")
    return tree


def _s_extends(rng, tree, case):
    if not isinstance(tree, dict):
        return tree
    base = rng.choice([rng.choice(SHIPPED).name, CASE, "missing.yaml", ".", "/", "/dev/null", "../specs",
                       "resnet18.yaml\0", 3, ["a.yaml"], ""])
    tree["extends"] = base
    case.mutations.append(f"extends: {base!r}")
    return tree


def _s_blocks(rng, tree, case):
    """A block that uses itself, a chain of blocks, or a block used with odd arguments."""
    if not isinstance(tree, dict):
        return tree
    blocks = tree.setdefault("blocks", {}) if isinstance(tree.get("blocks", {}), dict) else {}
    kind = rng.randrange(3)
    if kind == 0:
        blocks["selfish"] = {"layers": ["relu", "selfish"]}
        use = "selfish"
    elif kind == 1:
        depth, double = rng.choice([3, 63, 65, 200]), rng.choice([2, 8, 20])  # 2**20 copies meet MAX_ITEMS
        blocks.update({f"b{i}": {"layers": [f"b{i + 1}", f"b{i + 1}"] if i < double else [f"b{i + 1}"]}
                       for i in range(depth)})
        blocks[f"b{depth}"] = {"layers": ["relu"]}
        use = "b0"
    else:
        blocks["odd"] = {"args": {"w": rng.choice(["int", "float", 3, None, "list"])},
                         "inputs": rng.choice([["input"], ["a", "b"], [], "x"]), "layers": [{"linear": "$w"}]}
        use = {"odd": rng.choice([{"w": 2}, {"w": "x"}, {"v": 1}, 3, None, [1]])}
    if isinstance(tree.get("layers"), list):
        tree["layers"].insert(rng.randint(0, len(tree["layers"])), use)
    case.mutations.append(f"blocks: {_show(use)}")
    return tree


def _s_amplify(rng, tree, case):
    """A layer item repeated thousands of times, whatever it does: work done per copy, valid or failing, adds up."""
    items = [item for layers in _layers(tree) for item in layers if isinstance(item, dict)]
    if items:
        item = rng.choice(items)
        item["repeat"] = n = rng.choice([1000, 10000, 50000])
        case.mutations.append(f"amplify: repeat {n} on {_show(item, 40)}")
    return tree


def _s_deep(rng, tree, case):
    spot = _pick(rng, tree, case, "deep")
    if spot:
        container, key, _ = spot
        container[key] = _nested(rng)
        case.mutations.append(f"deep nesting at {_path(container, key)}")
    return tree


STRUCTURAL = ["delete", "delete", "rename", "rename", "replace", "replace", "replace", "number", "number",
              "reference", "reference", "shape", "wrap", "share", "expression", "expression", "item_keys",
              "item_keys", "insert_layer", "insert_layer", "swap", "duplicate", "extends", "blocks", "deep", "amplify"]


# ---- textual mutations ----------------------------------------------------------------------------------------------

TOKENS = [b"\x00", b"\xff", b"\xfe", b"\xc3", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\x07",
          b"\x1b[31m", b"\x7f", b"\t", b"\r", b"\r\n", b"\n", b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xae",
          b"\xef\xbb\xbf", b"\xef\xbf\xbe", b"\xf0\x9f\x98\x80", b": ", b"- ", b"-", b"[", b"]", b"{", b"}", b",",
          b"&a ", b"*a", b"*b ", b"!!python/object/apply:os.system ", b"!!binary ", b"!!int ", b"!!float ",
          b"!custom ", b"!<tag:yaml.org,2002:str> ", b"<<: ", b"<<: *a\n", b"---\n", b"...\n", b"%YAML 1.1\n",
          b"%TAG ! tag:x,2000:\n", b"? ", b"|", b">-", b'"', b"'", b"#", b"${", b"$", b"}", b"\\", b'"\\x00"',
          b'"\\e"', b'"\\u202e"', b"0x", b"0o7", b"1_000", b"1:30", b".inf", b".nan", b"~", b"null", b"9" * 120]


def _t_truncate(rng, data, case):
    at = rng.randint(0, len(data))
    case.mutations.append(f"truncate at byte {at}")
    return data[:at]


def _t_flip(rng, data, case):
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if out:
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
            case.mutations.append(f"flip a bit of byte {i}")
    return bytes(out)


def _t_insert(rng, data, case):
    at = rng.randint(0, len(data))
    token = rng.choice(TOKENS) if rng.random() < 0.8 else bytes([rng.randrange(256)])
    case.mutations.append(f"insert {token!r} at byte {at}")
    return data[:at] + token + data[at:]


def _t_delete(rng, data, case):
    if not data:
        return data
    at = rng.randrange(len(data))
    n = rng.choice([1, 2, 5, 20, 200])
    case.mutations.append(f"delete bytes {at}..{at + n}")
    return data[:at] + data[at + n:]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _t_duplicate_line(rng, data, case):
    lines = _lines(data)
    i = rng.randrange(len(lines))
    lines.insert(i, lines[i])
    case.mutations.append(f"duplicate line {i + 1}")
    return b"\n".join(lines)


def _t_swap_lines(rng, data, case):
    lines = _lines(data)
    if len(lines) > 1:
        i, j = rng.sample(range(len(lines)), 2)
        lines[i], lines[j] = lines[j], lines[i]
        case.mutations.append(f"swap lines {i + 1} and {j + 1}")
    return b"\n".join(lines)


def _t_indent(rng, data, case):
    lines = _lines(data)
    i = rng.randrange(len(lines))
    n = rng.randint(1, min(8, len(lines) - i))
    delta = rng.choice([-4, -2, -1, 1, 2, 3])
    for k in range(i, i + n):
        lines[k] = b" " * delta + lines[k] if delta > 0 else re.sub(rb"^ {1,%d}" % -delta, b"", lines[k])
    case.mutations.append(f"indent lines {i + 1}..{i + n} by {delta}")
    return b"\n".join(lines)


def _t_tabs(rng, data, case):
    lines = _lines(data)
    i = rng.randrange(len(lines))
    every = rng.random() < 0.3
    for k in range(len(lines)) if every else [i]:
        lines[k] = re.sub(rb"^( {2})+", lambda m: b"\t" * (len(m.group()) // 2), lines[k])
    case.mutations.append("tabs for indentation" + ("" if every else f" on line {i + 1}"))
    return b"\n".join(lines)


def _t_number(rng, data, case):
    numbers = list(re.finditer(rb"(?<![\w.])\d+(?![\w.])", data))
    if not numbers:
        return data
    m = rng.choice(numbers)
    new = rng.choice([b"0", b"-1", b"-0", b"9" * 19, b"9" * 25, b"1e400", b"2.5", b"0x7fffffffffffffff", b"1_0",
                      b"1:2:3", b".5", b"+3", str(2**63).encode(), b"00", b"0b1", b"\xd9\xa3"])
    case.mutations.append(f"number at byte {m.start()}: {m.group().decode()} -> {new!r}")
    return data[:m.start()] + new + data[m.end():]


def _t_line_ends(rng, data, case):
    end = rng.choice([b"\r\n", b"\r", b"\xc2\x85", b"\xe2\x80\xa8"])
    case.mutations.append(f"line ends {end!r}")
    return data.replace(b"\n", end)


def _t_encoding(rng, data, case):
    encoding = rng.choice(["utf-16", "utf-16-le", "latin-1", "utf-32", "utf-8-sig", "cp1252"])
    case.mutations.append(f"encoded as {encoding}")
    return data.decode("utf-8", "replace").encode(encoding, "replace")


def _t_repeat(rng, data, case):
    if not data:
        return data
    at = rng.randrange(len(data))
    chunk = data[at:at + rng.choice([1, 10, 40, 200])]
    times = rng.choice([10, 100, 1000, 20000])
    times = min(times, 400_000 // max(len(chunk), 1))
    case.mutations.append(f"repeat {len(chunk)} bytes at {at} {times} times")
    return data[:at] + chunk * times + data[at:]


def _t_construct(rng, data, case):
    """A line of YAML syntax netspec must read or refuse: anchors, aliases, merge keys, tags, documents."""
    line = rng.choice([b"a: &a [1, 2]\nb: *a", b"<<: {name: x}", b"x: !!set {a: null}", b"---\nname: t",
                       b"? [a, b]\n: c", b"x: |\n  text", b"x: >\n  folded\n", b"x: *nosuch", b"%YAML 1.2\n---",
                       b"x: !!timestamp 2001-12-14", b"x: 2001-12-14", b"x: &a\n  - *a", b"y: [*a, *a, *a, *a]",
                       b"x: {a: 1, a: 2}", b"name: !!python/name:os.system", b"- relu", b"layers:", b"input:",
                       b"x: \"\\uD800\"", b"x: '\t'", b"\t- relu"])
    lines = _lines(data)
    i = rng.randint(0, len(lines))
    lines.insert(i, line)
    case.mutations.append(f"insert line {i + 1}: {line!r}")
    return b"\n".join(lines)


TEXTUAL = ["truncate", "truncate", "flip", "flip", "insert", "insert", "insert", "delete", "duplicate_line",
           "duplicate_line", "swap_lines", "indent", "indent", "tabs", "number", "line_ends", "encoding", "repeat",
           "construct", "construct"]


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 1]}…"
