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
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .arith import MAX_DIMS, MAX_ELEMENTS, numel
from .errors import MAX_ERRORS, Diagnostics, PathT, SpecError, brief, did_you_mean, format_path, listing
from .init import Init, parse_init
from .layers import REGISTRY
from .loader import Source, load_source, parse_yaml
from .perf import without_gc

LAYER_KEYS = ("name", "from", "repeat", "when", "frozen", "init", "layers", "share", "keep_position")
TYPE_NAMES = {"int": int, "float": float, "bool": bool, "str": str, "list": list}
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
POSITION_RE = re.compile(r"^(0|[1-9][0-9]*)$")  # a layer may also be named by a position: `name: '1'`
# or by identifier parts joined by hyphens, as torchvision's RegNet names its blocks (`block1-0`)
LAYER_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*$")
MAX_NAME = 100  # characters in a name: the network's, a layer's, an input's, a symbolic dim's
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
TENSOR_LIMIT = "a torch tensor holds fewer than 2**60 elements (its size in bytes, up to 8 per element, is an int64)"
MAX_ENTRIES = 1_000  # named inputs, outputs, blocks: pydantic reports one error for a longer list, not one per item
Shape = Annotated[list[Dim], Field(max_length=MAX_DIMS)]
_TREE = object()  # pydantic_errors' default: the tree at the error's path


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class InputDef(_Model):
    shape: Shape
    dtype: Literal["float32", "float64", "float16", "bfloat16", "int64", "int32"] = "float32"

    @property
    def integer(self) -> bool:
        """Whether it holds integer values (token ids), not floating-point ones."""
        return self.dtype.startswith("int")


class BlockDef(_Model):
    description: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    inputs: list[str] = Field(default_factory=lambda: ["input"], min_length=1, max_length=MAX_ENTRIES)
    layers: list[Any] = Field(min_length=1)
    output: str | None = None


class Expect(_Model):
    params: int | None = None
    trainable_params: int | None = None
    macs: int | None = None
    output: Shape | None = None
    outputs: dict[str, Shape] | None = Field(None, max_length=MAX_ENTRIES)


class SpecModel(_Model):
    name: str
    description: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    input: Shape | InputDef | None = None
    inputs: dict[str, Shape | InputDef] | None = Field(None, max_length=MAX_ENTRIES)
    outputs: list[str] | None = Field(None, max_length=MAX_ENTRIES)
    blocks: dict[str, BlockDef] = Field(default_factory=dict, max_length=MAX_ENTRIES)
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
    share: str | None = None  # `share: fc`: apply the layer `fc` (its parameters) again, to this item's input
    keep_position: bool = True  # false: when skipped, the unnamed items after it take its position


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
    if len(model.name) > MAX_NAME:
        diag.add(source.error(f"the network's name has {len(model.name):,} characters (at most {MAX_NAME})",
                              ("name",)))
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
            diag.add(source.error(f"block `{brief(bname)}` has the name of a built-in layer type", path, key=True,
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
        _check_shape(value.shape, shape_path, source, diag)
        if len(str(name)) > MAX_NAME:
            diag.add(source.error(f"input name `{brief(name)}` has {len(str(name)):,} characters (at most {MAX_NAME})",
                                  path, key=True))
        elif not NAME_RE.match(str(name)):
            diag.add(source.error(f"input name `{brief(name)}` must be an identifier (a letter, then letters, "
                                  "digits, `_`)", path, key=True))
        elif name in TAKEN_NAMES and name != "input":
            diag.add(source.error(f"input name `{name}` is taken by Python or torch.nn.Module", path, key=True,
                                  hint=f"rename it (e.g. `{name}_x`)"))
        out[name] = value
    return out


def _check_shape(shape: list, path: PathT, source: Source, diag: Diagnostics) -> None:
    """An input's shape (at most MAX_DIMS dims, checked by pydantic): positive dims or names, fewer than 2**60
    elements."""
    for i, d in enumerate(shape):
        if isinstance(d, int) and d < 1:
            diag.add(source.error(f"input dims must be positive, got {d}", path + (i,)))
        if isinstance(d, str) and (len(d) > MAX_NAME or not NAME_RE.match(d)):
            diag.add(source.error(f"symbolic dim `{brief(d)}` must be a name (at most {MAX_NAME} characters)",
                                  path + (i,)))
    elements = numel([d for d in shape if isinstance(d, int)])
    if elements >= MAX_ELEMENTS:
        diag.add(source.error(f"an input of {elements:,} elements per sample is too large: {TENSOR_LIMIT}", path))


def _block_args(decl: dict, path: PathT, source: Source, diag: Diagnostics) -> dict:
    out = {}
    for name, value in decl.items():
        if not NAME_RE.match(str(name)):
            diag.add(source.error(f"block argument `{brief(name)}` must be an identifier", path + (name,), key=True))
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
        if value not in ops and not _is_op_arg(value):
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
        raise source.error(f"one layer item holds two ops, `{brief(op_keys[0])}` and `{brief(op_keys[1])}`",
                           path + (op_keys[1],), hint="start a new item with `- ` for each layer", key=True)
    op = op_keys[0] if op_keys else None
    if op is not None and op not in ops and not _is_op_arg(op):
        raise _unknown_op(op, path + (op,), source, ops | set(LAYER_KEYS), key=True)
    item = Item(op, value.get(op, {}) if op else None, path, from_=value.get("from"),
                repeat=value.get("repeat"), when=value.get("when"))
    if item.args is None:
        item.args = {}
    name = value.get("name")
    if name is not None:
        if type(name) is int and name >= 0:
            raise source.error(f"layer name {name} is a number; a name is a string", path + ("name",),
                               hint=f"quote it: `name: '{name}'`")
        if not isinstance(name, str) or len(name) > MAX_NAME or not (LAYER_NAME_RE.match(name) or
                                                                      POSITION_RE.match(name)):
            raise source.error(f"layer name `{brief(name)}` must be an identifier (a letter, then letters, digits, "
                               f"`_`, single `-` between them; at most {MAX_NAME} characters) or a position (`'3'`)",
                               path + ("name",), hint="dots are added by nesting: `layer1.0.conv1`")
        if name == "input":
            raise source.error("`input` names the incoming tensor; choose another layer name", path + ("name",))
        if name in TAKEN_NAMES:
            raise source.error(f"layer name `{name}` is taken by Python or torch.nn.Module", path + ("name",),
                               hint=f"rename it (e.g. `{name}_layer`)")
        item.name = name
    for key in ("frozen", "keep_position"):
        if not isinstance(value.get(key, True), bool):
            raise source.error(f"`{key}` is true or false", path + (key,))
    item.frozen = value.get("frozen", False)
    item.keep_position = value.get("keep_position", True)
    if "init" in value:
        item.init = parse_init(value["init"], path + ("init",), source)
    if "share" in value:
        if op is not None or "layers" in value:
            raise source.error("an item either shares a layer (`share:`) or is an op or a group, not both",
                               path + ("share",), key=True)
        if not isinstance(value["share"], str):
            raise source.error("`share` names one earlier layer", path + ("share",),
                               hint="e.g. `- share: encoder` applies `encoder` again, with the same weights")
        item.share = value["share"]
    elif "layers" in value:
        if op is not None:
            raise source.error(f"an item is either an op (`{brief(op)}`) or a group (`layers:`), not both",
                               path + ("layers",), key=True)
        if not isinstance(value["layers"], list) or not value["layers"]:
            raise source.error("`layers:` takes a non-empty list of layers", path + ("layers",))
        item.layers = parse_items(value["layers"], path + ("layers",), source, ops, diag)
    elif op is None:
        raise source.error("this item names no op", path,
                           hint=f"layer keys are {', '.join(LAYER_KEYS)}; add an op such as `- relu`")
    return item


def _is_op_arg(op: Any) -> bool:
    """`- $activation`: an op named by a block argument (or spec arg), resolved where the item is expanded."""
    return isinstance(op, str) and op.startswith("$") and not op.startswith("${") and NAME_RE.match(op[1:]) is not None


def _unknown_op(op: Any, path: PathT, source: Source, ops: set[str], key: bool) -> SpecError:
    return source.error(f"unknown layer type `{brief(op)}`", path, key=key,
                        hint=did_you_mean(op, ops) or "`netspec ops` lists the layer types")


def pydantic_errors(exc: ValidationError, path: PathT, source: Source, aliases: dict | None = None,
                    what: str = "", data: Any = _TREE) -> list[SpecError]:
    """Turn pydantic's errors into located SpecErrors (unknown keys get a did-you-mean), at most MAX_ERRORS.

    `data` is the value that was validated (default: the spec's tree at `path`): walking it tells the
    user's keys in an error's location from the names pydantic adds for union members (`int`, `list[...]`),
    which a user's key may equal (`str: 2`, a typo of `stride`).
    """
    if data is _TREE:
        data = _at(source.tree, path)
    out, other = [], {}
    errs = exc.errors(include_url=False)
    locs = [_clean_loc(e["loc"], data, e["type"] in ("missing", "extra_forbidden")) for e in errs]
    extras = {loc[-1] for e, loc in zip(errs, locs) if e["type"] == "extra_forbidden" and loc}
    missing = {loc[-1] for e, loc in zip(errs, locs) if e["type"] == "missing" and loc}
    # one unknown key and one missing one (`filters` for `out_channels`): the unknown one is meant for it
    paired = (next(iter(extras)), next(iter(missing))) if len(extras) == len(missing) == 1 else None
    for err, loc in zip(errs, locs):
        if len(out) >= MAX_ERRORS:
            break
        last = loc[-1] if loc else ""
        if err["type"] == "missing" and (paired or did_you_mean(last, map(str, extras))):
            continue  # a misspelling of it is reported, with the right name
        where = path + loc
        if err["type"] == "extra_forbidden":
            known = aliases if aliases is not None else _known_keys(loc[:-1])
            meant = f"did you mean `{paired[1]}`? (it is required)" if paired and paired[0] == last else None
            out.append(source.error(f"unknown {what or 'key'} `{brief(last)}`", where, key=True,
                                    hint=did_you_mean(last, known) or meant or
                                    (f"known: {listing(known)}" if known else None)))
        elif err["type"] == "missing":
            out.append(source.error(f"missing required {what or 'key'} `{last}`", path + loc[:-1]))
        else:
            other.setdefault(loc, []).append(err)
    deeper = {loc[:i] for loc in locs for i in range(len(loc))}
    for loc, group in other.items():  # one error per place: a union's members become "a or b"
        if loc in deeper:
            continue  # a union member that failed further in says more
        got = group[0].get("input")
        shown = "" if isinstance(got, (dict, list)) else f", got {brief(repr(got))}"
        label = f"`{brief(format_path(loc))}`: " if loc else ""
        out.append(source.error(f"{label}{_either(e['msg'] for e in group)}{shown}", path + loc))
    return out[:MAX_ERRORS]


def _either(messages) -> str:
    """`Input should be a valid integer` + `Input should be a valid list` -> `input should be a valid integer or
    a valid list`."""
    first, *rest = dict.fromkeys(m.lower() for m in messages)
    prefix = "input should be "
    return " or ".join([first, *(m.removeprefix(prefix) if first.startswith(prefix) else m for m in rest)])


def _at(tree: Any, path: PathT) -> Any:
    """The value at `path` in `tree`, or None when there is none."""
    for part in path:
        if isinstance(tree, dict) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and isinstance(part, int) and 0 <= part < len(tree):
            tree = tree[part]
        else:
            return None
    return tree


def _clean_loc(loc: tuple, data: Any, keep_last: bool) -> tuple:
    """The parts of pydantic's error location that the validated `data` has (its keys and indices), without
    pydantic's names for the union member or validator that failed; with `keep_last`, the last part always
    (a missing field, or an unknown key)."""
    out = []
    for i, part in enumerate(loc):
        if isinstance(data, dict) and part in data:
            out.append(part)
            data = data[part]
        elif isinstance(data, list) and type(part) is int and -len(data) <= part < len(data):
            out.append(part)
            data = data[part]
        elif keep_last and i == len(loc) - 1:
            out.append(part)
    return tuple(out)


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
