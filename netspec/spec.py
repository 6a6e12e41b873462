"""The typed spec: the top level checked by pydantic, layer items parsed into `Item`s.

A layer item is `- op`, `- op: <main arg>`, or `- op: {args}`, plus the layer
keys `name`, `from`, `repeat`, `when`, `frozen`, `init`; a group is an item with
`layers:` (and no op). Ops are catalog entries or the spec's own `blocks`.
Values may be expressions (`$width`, `${2 * width}`), resolved while the
graph is expanded.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import Diagnostics, PathT, SpecError, did_you_mean, format_path
from .init import Init, parse_init
from .layers import REGISTRY
from .loader import Source, load_source, parse_yaml
from .perf import without_gc

LAYER_KEYS = ("name", "from", "repeat", "when", "frozen", "init", "layers")
TYPE_NAMES = {"int": int, "float": float, "bool": bool, "str": str, "list": list}
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Names a layer or an input cannot take: they become attributes of a torch module and names in
# generated Python (tests/test_build.py checks this list against torch.fx.GraphModule's attributes).
TAKEN_NAMES = frozenset(keyword.kwlist) | frozenset((
    "self", "torch", "nn", "getattr", "setattr", "slice", "input",
    "T_destination", "add_module", "add_submodule", "apply", "bfloat16", "buffers", "call_super_init",
    "children", "code", "compile", "cpu", "cuda", "delete_all_unused_submodules", "delete_submodule",
    "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state",
    "get_parameter", "get_submodule", "graph", "half", "ipu", "load_state_dict", "meta", "modules", "mtia",
    "named_buffers", "named_children", "named_modules", "named_parameters", "parameters", "print_readable",
    "recompile", "register_backward_hook", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
    "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_",
    "set_extra_state", "set_submodule", "shape_env", "share_memory", "state_dict", "to", "to_empty",
    "to_folder", "train", "training", "type", "xpu", "zero_grad",
))
Dim = int | str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class InputDef(_Model):
    shape: list[Dim]
    dtype: Literal["float32", "float64", "float16", "bfloat16", "int64", "int32"] = "float32"


class BlockDef(_Model):
    description: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    inputs: list[str] = Field(default_factory=lambda: ["input"], min_length=1)
    layers: list[Any] = Field(min_length=1)
    output: str | None = None


class Expect(_Model):
    params: int | None = None
    trainable_params: int | None = None
    macs: int | None = None
    output: list[Dim] | None = None
    outputs: dict[str, list[Dim]] | None = None


class SpecModel(_Model):
    name: str
    description: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    input: list[Dim] | InputDef | None = None
    inputs: dict[str, list[Dim] | InputDef] | None = None
    outputs: list[str] | None = None
    blocks: dict[str, BlockDef] = Field(default_factory=dict)
    layers: list[Any] = Field(min_length=1)
    expect: Expect | None = None
    init: Any = None  # an `Init` once parsed (netspec/init.py)
    train: dict[str, Any] | None = None


@dataclass
class Item:
    """One layer item of a sequence, before expansion."""

    op: str | None  # None for a group (`layers:`) or an invalid item
    args: Any
    path: PathT
    invalid: bool = False  # reported at parse time; expansion gives it an unknown shape
    name: str | None = None
    from_: Any = None
    repeat: Any = None
    when: Any = None
    frozen: bool = False
    init: Init | None = None
    layers: list[Item] | None = None


@dataclass
class Block:
    name: str
    args: dict[str, tuple[type | None, Any]]  # arg -> (required type or None, default)
    inputs: list[str]
    layers: list[Item]
    output: str | None
    path: PathT


@dataclass
class Spec:
    """A parsed spec: what `netspec.load` returns and every later stage reads."""

    name: str
    source: Source
    model: SpecModel
    inputs: dict[str, InputDef]
    layers: list[Item]
    blocks: dict[str, Block] = field(default_factory=dict)
    errors: list[SpecError] = field(default_factory=list)  # item errors, raised with expansion's

    @property
    def file(self) -> str:
        return self.source.file


def load(path: str | Path) -> Spec:
    """Read and parse a spec file (following `extends`); raises SpecError(s)."""
    return parse(load_source(path))


def loads(text: str, file: str = "<string>") -> Spec:
    """Parse a spec from YAML text (no `extends`: it has no directory to look in)."""
    source = parse_yaml(text, file)
    if not isinstance(source.tree, dict):
        raise source.error("a spec is a mapping (name:, input:, layers:, ...)", ())
    return parse(source)


@without_gc
def parse(source: Source) -> Spec:
    diag = Diagnostics()
    try:
        model = SpecModel.model_validate(source.tree)
    except ValidationError as exc:
        diag.extend(pydantic_errors(exc, (), source))
        diag.raise_if_any()
    inputs = _inputs(model, source, diag)
    if model.init is not None:
        try:
            model.init = parse_init(model.init, ("init",), source)
        except SpecError as exc:
            diag.add(exc)
    blocks = {}
    for bname, bdef in model.blocks.items():
        path = ("blocks", bname)
        if bname in REGISTRY:
            diag.add(source.error(f"block `{bname}` has the name of a built-in layer type", path, key=True,
                                  hint="rename the block"))
        blocks[bname] = Block(bname, _block_args(bdef.args, path + ("args",), source, diag), bdef.inputs,
                              [], bdef.output, path)
    ops = set(REGISTRY) | set(blocks)
    for bname, bdef in model.blocks.items():
        blocks[bname].layers = parse_items(bdef.layers, ("blocks", bname, "layers"), source, ops, diag)
    layers = parse_items(model.layers, ("layers",), source, ops, diag)
    return Spec(model.name, source, model, inputs, layers, blocks, diag.errors)


def _inputs(model: SpecModel, source: Source, diag: Diagnostics) -> dict[str, InputDef]:
    if (model.input is None) == (model.inputs is None):
        diag.add(source.error("a spec has exactly one of `input:` (one tensor) or `inputs:` (named tensors)",
                              (), hint="e.g. `input: [3, 224, 224]` (per-sample shape, batch excluded)"))
        return {}
    raw = {"input": model.input} if model.input is not None else model.inputs
    out = {}
    for name, value in raw.items():
        path = ("input",) if model.input is not None else ("inputs", name)
        shape_path = path if isinstance(value, list) else path + ("shape",)
        value = value if isinstance(value, InputDef) else InputDef(shape=value)
        for i, d in enumerate(value.shape):
            if isinstance(d, int) and d < 1:
                diag.add(source.error(f"input dims must be positive, got {d}", shape_path + (i,)))
            if isinstance(d, str) and not NAME_RE.match(d):
                diag.add(source.error(f"symbolic dim `{d}` must be a name", shape_path + (i,)))
        if not NAME_RE.match(str(name)):
            diag.add(source.error(f"input name `{name}` must be an identifier (a letter, then letters, digits, `_`)",
                                  path, key=True))
        elif name in TAKEN_NAMES and name != "input":
            diag.add(source.error(f"input name `{name}` is taken by Python or torch.nn.Module", path, key=True,
                                  hint=f"rename it (e.g. `{name}_x`)"))
        out[name] = value
    return out


def _block_args(decl: dict, path: PathT, source: Source, diag: Diagnostics) -> dict:
    out = {}
    for name, value in decl.items():
        if not NAME_RE.match(str(name)):
            diag.add(source.error(f"block argument `{name}` must be an identifier", path + (name,), key=True))
        if isinstance(value, str) and value in TYPE_NAMES:
            out[name] = (TYPE_NAMES[value], None)
        else:
            out[name] = (None, value)
    return out


def parse_items(raw: list, path: PathT, source: Source, ops: set[str], diag: Diagnostics) -> list[Item]:
    items = []
    for i, value in enumerate(raw):
        try:
            items.append(parse_item(value, path + (i,), source, ops, diag))
        except SpecError as exc:
            diag.add(exc)
            name = value.get("name") if isinstance(value, dict) else None
            items.append(Item(None, None, path + (i,), name=name if isinstance(name, str) else None,
                              invalid=True))
    return items


def parse_item(value: Any, path: PathT, source: Source, ops: set[str], diag: Diagnostics) -> Item:
    if isinstance(value, str):
        if value not in ops:
            raise _unknown_op(value, path, source, ops, key=False)
        return Item(value, {}, path)
    if not isinstance(value, dict) or not value:
        raise source.error("a layer is `- op`, `- op: arg` or `- op: {args}`", path,
                           hint="e.g. `- conv2d: {out_channels: 64, kernel_size: 3}`")
    op_keys = [k for k in value if k not in LAYER_KEYS]
    if len(op_keys) > 1:
        unknown = [k for k in op_keys if k not in ops]
        if unknown:
            raise _unknown_op(unknown[0], path + (unknown[0],), source, ops | set(LAYER_KEYS), key=True)
        raise source.error(f"one layer item holds two ops, `{op_keys[0]}` and `{op_keys[1]}`",
                           path + (op_keys[1],), hint="start a new item with `- ` for each layer", key=True)
    op = op_keys[0] if op_keys else None
    if op is not None and op not in ops:
        raise _unknown_op(op, path + (op,), source, ops | set(LAYER_KEYS), key=True)
    item = Item(op, value.get(op, {}) if op else None, path, from_=value.get("from"),
                repeat=value.get("repeat"), when=value.get("when"))
    if item.args is None:
        item.args = {}
    name = value.get("name")
    if name is not None:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise source.error(f"layer name `{name}` must be an identifier (a letter, then letters, digits, `_`)",
                               path + ("name",), hint="dots are added by nesting: `layer1.0.conv1`")
        if name == "input":
            raise source.error("`input` names the incoming tensor; choose another layer name", path + ("name",))
        if name in TAKEN_NAMES:
            raise source.error(f"layer name `{name}` is taken by Python or torch.nn.Module", path + ("name",),
                               hint=f"rename it (e.g. `{name}_layer`)")
        item.name = name
    frozen = value.get("frozen", False)
    if not isinstance(frozen, bool):
        raise source.error("`frozen` is true or false", path + ("frozen",))
    item.frozen = frozen
    if "init" in value:
        item.init = parse_init(value["init"], path + ("init",), source)
    if "layers" in value:
        if op is not None:
            raise source.error(f"an item is either an op (`{op}`) or a group (`layers:`), not both",
                               path + ("layers",), key=True)
        if not isinstance(value["layers"], list) or not value["layers"]:
            raise source.error("`layers:` takes a non-empty list of layers", path + ("layers",))
        item.layers = parse_items(value["layers"], path + ("layers",), source, ops, diag)
    elif op is None:
        raise source.error("this item names no op", path,
                           hint=f"layer keys are {', '.join(LAYER_KEYS)}; add an op such as `- relu`")
    return item


def _unknown_op(op: Any, path: PathT, source: Source, ops: set[str], key: bool) -> SpecError:
    return source.error(f"unknown layer type `{op}`", path, key=key,
                        hint=did_you_mean(op, ops) or "`netspec ops` lists the layer types")


def pydantic_errors(exc: ValidationError, path: PathT, source: Source, aliases: dict | None = None,
                    what: str = "") -> list[SpecError]:
    """Turn pydantic's errors into located SpecErrors (unknown keys get a did-you-mean)."""
    out, other = [], {}
    errs = exc.errors()
    extras = {_clean_loc(e["loc"])[-1] for e in errs if e["type"] == "extra_forbidden"}
    for err in errs:
        loc = _clean_loc(err["loc"])
        if err["type"] == "missing" and did_you_mean(loc[-1], map(str, extras)):
            continue  # a misspelling of it is reported, with the right name
        where = path + loc
        if err["type"] == "extra_forbidden":
            key = loc[-1]
            known = aliases if aliases is not None else _known_keys(loc[:-1])
            out.append(source.error(f"unknown {what or 'key'} `{key}`", where, key=True,
                                    hint=did_you_mean(key, known) or
                                    (f"known: {', '.join(sorted(known))}" if known else None)))
        elif err["type"] == "missing":
            out.append(source.error(f"missing required {what or 'key'} `{loc[-1]}`", path + loc[:-1]))
        else:
            other.setdefault(loc, []).append(err)
    deeper = {loc[:i] for loc in other for i in range(len(loc))}
    for loc, group in other.items():  # one error per place: a union's members become "a or b"
        if loc in deeper:
            continue  # a union member that failed further in says more
        got = group[0].get("input")
        shown = "" if isinstance(got, (dict, list)) else f", got {got!r}"
        label = f"`{format_path(loc)}`: " if loc else ""
        out.append(source.error(f"{label}{_either(e['msg'] for e in group)}{shown}", path + loc))
    return out


def _either(messages) -> str:
    """`Input should be a valid integer` + `Input should be a valid list` -> `input should be a valid integer or
    a valid list`."""
    first, *rest = dict.fromkeys(m.lower() for m in messages)
    prefix = "input should be "
    return " or ".join([first, *(m.removeprefix(prefix) if first.startswith(prefix) else m for m in rest)])


# pydantic's names for the member of a union (or the validator) that failed, which it puts in error locations
_TAGS = {"int", "str", "float", "bool", "list", "dict", "none", "InputDef", "constrained-int", "constrained-float",
         "function-after", "function-before", "function-plain", "function-wrap", "lax-or-strict", "literal"}


def _clean_loc(loc: tuple) -> tuple:
    """Drop pydantic's union-member tags (`int`, `list[int]`, ...) from an error location."""
    return tuple(part for part in loc if not (isinstance(part, str) and (part in _TAGS or "[" in part)))


def _known_keys(parent: tuple) -> set[str]:
    """The keys allowed in the top-level mapping at `parent` (for did-you-mean hints)."""
    if not parent:
        model = SpecModel
    elif parent[0] == "blocks":
        model = BlockDef
    elif parent[0] == "expect":
        model = Expect
    else:
        model = InputDef
    return set(model.model_fields)
