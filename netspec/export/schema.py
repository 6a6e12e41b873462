"""A JSON Schema (draft 2020-12) of the netspec language, generated from the layer catalog and the training
registries, so that editors check and complete specs as they are typed.

    netspec schema > netspec.schema.json
    # yaml-language-server: $schema=netspec.schema.json      (a spec's first line; the path is relative)

Every op is a property of a layer item, its value one of its written forms: nothing (`- relu`,
`- batchnorm2d:`), its main argument (`- linear: 10`), or a mapping of its arguments under their torch
names and aliases (`- conv2d: {out_channels: 64, kernel: 3}`), each typed and bounded as its pydantic
argument model checks it, with its default and description. A layer value may be an expression
(`$width`, `${2 * width}`) wherever the network is expanded: layer arguments at any depth, `repeat`,
`when`, block arguments. The `train:` section comes from `TrainArgs` and the registries of data
sources, transforms, augmentations, losses, optimizers and schedules.

Blocks: a spec's own block names (`- basic: {width: 64}`) cannot be known to a schema written once for
every spec. A spec without `blocks:` and without `extends:` may use catalog ops only, so a misspelt op is
an error; in a spec that defines blocks (or extends one that may), and inside every block body, a layer
item may also hold one key the catalog does not know, taken for a block (its arguments unchecked).

What the schema cannot check, `netspec validate` does: shapes, the names `from` refers to, a block's
arguments, the values of expressions, cross-field rules (a `train:` loss reading an output the network
lacks), and the whole of a spec that `extends` another (the schema checks the file as written).
"""

from __future__ import annotations

import inspect
import itertools
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import AfterValidator, BaseModel, BeforeValidator, PlainValidator, WrapValidator
from pydantic.fields import FieldInfo

from ..docgen import arguments, dotted_keys, extra_type
from ..init import SCHEMES
from ..layers import FROM, REGISTRY
from ..spec import (
    LAYER_KEYS,
    LAYER_NAME_RE,
    NAME_RE,
    POSITION_RE,
    TAKEN_NAMES,
    TYPE_NAMES,
    BlockDef,
    InputDef,
    SpecModel,
)
from ..train.augment import AUGMENTATIONS
from ..train.config import DEVICE_RE, TOPK_RE, TrainArgs, WarmupArgs
from ..train.data import SOURCES, TRANSFORMS
from ..train.losses import LOSSES
from ..train.optim import OPTIMIZERS, SCHEDULES
from ..train.registry import Registry

DRAFT = "https://json-schema.org/draft/2020-12/schema"
NAME = NAME_RE.pattern
OP_ARG = r"^\$[A-Za-z][A-Za-z0-9_]*$"  # `- $activation`: an op named by a block's or the spec's argument
EXPRESSION = {"$ref": "#/$defs/expression"}
# Registries of the `train:` section, by the def name of their choice (`#/$defs/optimizer`)
REGISTRIES: dict[str, Registry] = {"data_source": SOURCES, "transform": TRANSFORMS, "augmentation": AUGMENTATIONS,
                                   "loss": LOSSES, "optimizer": OPTIMIZERS, "schedule": SCHEDULES}
# Hand-written descriptions of the keys no pydantic model holds (docs/language.md says the same)
TOP = {
    "name": "The network's name.",
    "description": "Free text.",
    "extends": "A spec file this one derives from (relative to it): mappings merge key by key, other values "
               "replace the base's.",
    "args": "Spec-level variables for expressions: `{depths: [2, 2, 2, 2]}`.",
    "input": "The shape of the single input, named `input` (per sample, batch excluded): `[3, 224, 224]`, "
             "or `{shape: [T], dtype: int64}`.",
    "inputs": "Several named inputs instead of `input`: `{image: [3, 32, 32], ids: {shape: [T], dtype: int64}}`.",
    "outputs": "The names of the layers whose outputs the network returns; without it, the last layer's, "
               "named `output`.",
    "blocks": "Parameterized sub-networks, used like layer types.",
    "layers": "The layer list.",
    "expect": "Assertions `netspec validate` checks: params, trainable_params, macs, output, outputs.",
    "init": "Weight initialization of every layer.",
    "train": "How to train the network (docs/training.md).",
}
ITEM = {
    "name": "The layer's name (an identifier, hyphens allowed between its parts: `block1-0`, or a quoted "
            "position: `'2'`); default: its position in its sequence.",
    "from": "Its input, or a list of inputs: earlier layers, spec inputs, or dotted names (`layer1.0.conv1`); "
            "default: the previous item's output.",
    "repeat": "Copies in sequence, named `<name>.0`, `<name>.1`, ...; `index` is the copy's number in "
              "expressions. Or `{count: N, name: 'layer_{i}', start: 1}`: copies named by a template.",
    "when": "Skip the item when false (its name then refers to its input; a skipped merge passes on the "
            "previous item's output).",
    "share": "Instead of an op: apply this earlier layer again, with the same parameters.",
    "keep_position": "false: when skipped, the item leaves its position number to the next unnamed item.",
    "frozen": "Parameters not trainable (for groups and blocks too).",
    "init": "This item's weight initialization (for groups and blocks too).",
    "layers": "A group: a named sub-sequence instead of an op.",
}
TERM = {
    "output": "The network output the loss reads (needed when the network has several).",
    "target": "The data field it compares with (default `y`).",
    "weight": "The term's weight in the total loss.",
    "name": "The column the term is logged as (default: the loss's name).",
}
_IGNORED = (AfterValidator, BeforeValidator, PlainValidator, WrapValidator)  # checks no JSON Schema states
_BOUNDS = (("ge", "minimum"), ("gt", "exclusiveMinimum"), ("le", "maximum"), ("lt", "exclusiveMaximum"))


def schema() -> dict:
    """The JSON Schema of a spec file."""
    defs: dict[str, Any] = {
        "expression": {"type": "string", "pattern": r"^\$",
                       "description": "`$name` or `${expression}`, evaluated while the network is expanded."},
        "name": {"type": "string", "pattern": NAME, "not": {"enum": sorted(TAKEN_NAMES)},
                 "description": "An identifier that is no Python keyword or torch.nn.Module attribute."},
        "layer_name": {"type": "string", "pattern": f"{LAYER_NAME_RE.pattern}|{POSITION_RE.pattern}",
                       "not": {"enum": sorted(TAKEN_NAMES)},
                       "description": "A name, hyphens allowed between its parts (`block1-0`), or a position."},
        "shape": {"type": "array", "items": {"anyOf": [{"type": "integer", "minimum": 1},
                                                       {"type": "string", "pattern": NAME}]},
                  "description": "Per-sample dims: positive sizes or symbolic names (`[T, 128]`)."},
        "init": _init(),
        "layers": _layers(open_=False),
        "layers_open": _layers(open_=True),
        "item": _item(open_=False),
        "item_open": _item(open_=True),
    }
    layer = _Converter(expressions=True)
    for op, entry in REGISTRY.items():
        defs[f"layer.{op}"] = _entry_value(entry, layer)
    plain = _Converter(expressions=False)
    for kind, registry in REGISTRIES.items():
        for name, entry in registry.entries.items():
            defs[f"{kind}.{name}"] = _entry_value(entry, plain)
        defs[kind] = _choice(kind, registry)
    defs["block"] = _block()
    defs["train"] = _train(plain)
    return {
        "$schema": DRAFT,
        "title": "netspec spec",
        "description": "A network, and how to train it, in one YAML file (docs/language.md).",
        "type": "object",
        "properties": _top(plain),
        "additionalProperties": False,
        "allOf": [
            {"if": {"required": ["extends"]}, "else": {
                "required": ["name", "layers"], "oneOf": [{"required": ["input"]}, {"required": ["inputs"]}]}},
            {"if": {"anyOf": [{"required": ["blocks"]}, {"required": ["extends"]}]},
             "then": {"properties": {"layers": {"$ref": "#/$defs/layers_open"}}},
             "else": {"properties": {"layers": {"$ref": "#/$defs/layers"}}}},
        ],
        "$defs": defs,
    }


def undocumented() -> list[str]:
    """`kind name: arg, arg` for each layer type and training component whose arguments have no description
    (neither a pydantic `description` nor an item of their docstring's `Args:` section), and `train: key, key`
    for the `train:` keys without a `description`."""
    out = []
    entries = [("layer", op, e) for op, e in REGISTRY.items()]
    entries += [(registry.kind, name, e) for registry in REGISTRIES.values() for name, e in registry.entries.items()]
    for kind, name, entry in entries:
        missing = [a.name for a in arguments(entry.Args, type(entry).__doc__ or "") if not a.description]
        if missing:
            out.append(f"{kind} {name}: {', '.join(missing)}")
    missing = [key for key, info in dotted_keys(TrainArgs) if not info.description]
    if missing:
        out.append(f"train: {', '.join(missing)}")
    return out


# --- the network -----------------------------------------------------------------------------------------


def _top(plain: _Converter) -> dict:
    """The top-level keys: SpecModel's fields and `extends` (which the loader resolves)."""
    written = {
        "extends": {"type": "string"},
        "args": {"type": "object"},
        "input": {"anyOf": [{"$ref": "#/$defs/shape"}, _input_def(plain)]},
        "inputs": {"type": "object", "propertyNames": {"pattern": NAME},
                   "additionalProperties": {"anyOf": [{"$ref": "#/$defs/shape"}, _input_def(plain)]}},
        "blocks": {"type": "object", "propertyNames": {"pattern": NAME, "not": {"enum": sorted(REGISTRY)}},
                   "additionalProperties": {"$ref": "#/$defs/block"}},
        "layers": {"type": "array", "minItems": 1},  # its items: `layers` or `layers_open`, by `allOf`
        "init": {"$ref": "#/$defs/init"},
        "train": {"$ref": "#/$defs/train"},
    }
    out = {}
    for key in ("extends", *SpecModel.model_fields):
        field = written.get(key) or plain.value(SpecModel.model_fields[key].rebuild_annotation(), key)
        out[key] = {**field, "description": TOP[key]}
    return out


def _input_def(plain: _Converter) -> dict:
    out = plain.model(InputDef, "")
    out["properties"]["shape"] = {"$ref": "#/$defs/shape"}
    return out


def _block() -> dict:
    out = _Converter(expressions=False).model(BlockDef, "")
    out["properties"]["args"] = {
        "type": "object", "propertyNames": {"pattern": NAME},
        "description": f"Its arguments: a type name ({', '.join(TYPE_NAMES)}) for a required one, else the "
                       "default value."}
    out["properties"]["layers"] = {"$ref": "#/$defs/layers_open"}
    out["description"] = "A parameterized sub-network, used like a layer type (`- basic: {width: 64}`)."
    return out


def _init() -> dict:
    normal = {"type": "object", "required": ["std"], "additionalProperties": False,
              "properties": {"std": {"type": "number", "exclusiveMinimum": 0}}}
    return {"anyOf": [{"enum": list(SCHEMES)},
                      {"type": "object", "required": ["normal"], "additionalProperties": False,
                       "properties": {"normal": normal}}],
            "description": f"{', '.join(SCHEMES)}, or `{{normal: {{std: 0.02}}}}`."}


def _layers(open_: bool) -> dict:
    return {"type": "array", "minItems": 1, "items": {"$ref": f"#/$defs/item{'_open' if open_ else ''}"}}


def _item(open_: bool) -> dict:
    """A layer item: a bare op, or a mapping of one op (or `layers:`, a group) and the layer keys. `open_`
    also takes one unknown key (a block) and any bare name."""
    keys = {
        "name": {"$ref": "#/$defs/layer_name"},
        "from": {"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": {"type": "string"}}]},
        "repeat": {"anyOf": [{"type": "integer", "minimum": 0}, EXPRESSION, {
            "type": "object", "required": ["count"], "additionalProperties": False,
            "properties": {"count": {"anyOf": [{"type": "integer", "minimum": 0}, EXPRESSION]},
                           "name": {"type": "string", "pattern": r"\{i\}"},
                           "start": {"anyOf": [{"type": "integer", "minimum": 0}, EXPRESSION]}}}]},
        "when": {"anyOf": [{"type": "boolean"}, EXPRESSION]},
        "share": {"type": "string"},
        "keep_position": {"type": "boolean"},
        "frozen": {"type": "boolean"},
        "init": {"$ref": "#/$defs/init"},
        "layers": {"$ref": f"#/$defs/layers{'_open' if open_ else ''}"},
    }
    properties = {op: {"$ref": f"#/$defs/layer.{op}"} for op in REGISTRY}
    properties.update({key: {**value, "description": ITEM[key]} for key, value in keys.items()})
    one = [{"required": [op]} for op in REGISTRY] + [{"required": ["layers"]}, {"required": ["share"]}]
    one.append({"not": {"propertyNames": {"not": {"pattern": OP_ARG}}}})  # a key names an op argument
    mapping = {"type": "object", "properties": properties, "oneOf": one, "patternProperties": {
        OP_ARG: {"description": "The op an argument names (`- $activation: {...}`), with its arguments."}}}
    bare = {"anyOf": [{"enum": [op for op, entry in REGISTRY.items() if not _required(entry.Args)]},
                      {"type": "string", "pattern": OP_ARG}]}
    if open_:
        mapping["additionalProperties"] = {"description": "A block of the spec, with its arguments."}
        mapping["propertyNames"] = {"anyOf": [{"pattern": NAME}, {"pattern": OP_ARG}]}
        one.append({"not": {"propertyNames": {"anyOf": [{"enum": [*REGISTRY, *LAYER_KEYS]},
                                                        {"pattern": OP_ARG}]}}})  # a block
        needs = [op for op, entry in REGISTRY.items() if _required(entry.Args)]
        bare = {"anyOf": [bare, {"type": "string", "pattern": NAME, "not": {"enum": needs}}]}
    else:
        mapping["additionalProperties"] = False
    return {"if": {"type": "string"}, "then": bare, "else": mapping}


def _entry_value(entry, conv: _Converter) -> dict:
    """What an op or a training component may be given: nothing (when no argument is required), its main
    argument alone, or a mapping of its arguments."""
    args = conv.model(entry.Args, "", type(entry).__doc__ or "")
    short = [] if _required(entry.Args) else [{"type": "null"}]
    if entry.main_arg == FROM:
        short.append({"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": {"type": "string"}}],
                      "description": "Its inputs, by name."})
    elif entry.main_arg is not None:
        short.append(args["properties"][entry.main_arg])
    return {"description": _summary(type(entry).__doc__ or ""), "if": {"type": "object"}, "then": args,
            "else": short[0] if len(short) == 1 else {"anyOf": short} if short else False}


def _summary(doc: str) -> str:
    """A docstring's first paragraph, and its `Example:` line when it has one."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    example = [p for p in paragraphs[1:] if p.startswith("Example")]
    return "\n\n".join(" ".join(p.split()) for p in paragraphs[:1] + example[:1])


def _required(model: type[BaseModel]) -> list[str]:
    return [name for name, info in model.model_fields.items() if info.is_required()]


# --- the `train:` section --------------------------------------------------------------------------------


def _train(plain: _Converter) -> dict:
    """TrainArgs, each key that names a component (typed `Any` there: the registry checks it) replaced by the
    registry's choice."""
    choice = {kind: {"$ref": f"#/$defs/{kind}"} for kind in REGISTRIES}
    listed = {kind: {"type": "array", "items": choice[kind]} for kind in ("transform", "augmentation")}
    metric = {"type": "string", "pattern": f"^accuracy$|{TOPK_RE.pattern}"}
    conv = _Converter(expressions=False, written={
        "data.dataset": choice["data_source"], "data.transform": listed["transform"],
        "data.augment": listed["augmentation"], "loss": _loss(), "optimizer": choice["optimizer"],
        "schedule": _schedule(plain), "device": {"type": "string", "pattern": DEVICE_RE.pattern},
        "metrics": {"anyOf": [{"type": "null"}, {"type": "array", "items": metric}]},
    })
    return {**conv.model(TrainArgs, ""), "description": TOP["train"]}


def _choice(kind: str, registry: Registry) -> dict:
    """`name`, or `{name: main argument}`, or `{name: {arguments}}`."""
    names = {name: {"$ref": f"#/$defs/{kind}.{name}"} for name in registry.entries}
    bare = [name for name, entry in registry.entries.items() if not _required(entry.Args)]
    return {"description": f"A {registry.kind}: `name`, `{{name: main argument}}` or `{{name: {{arguments}}}}`.",
            "if": {"type": "string"}, "then": {"enum": bare},
            "else": {"type": "object", "properties": names, "additionalProperties": False,
                     "minProperties": 1, "maxProperties": 1}}


def _loss() -> dict:
    """A loss, or a term (a loss with the term keys), or a list of losses and terms."""
    keys = {"output": {"type": "string", "pattern": NAME}, "target": {"type": "string", "pattern": NAME},
            "weight": {"type": "number", "minimum": 0}, "name": {"type": "string", "pattern": NAME}}
    term = {"type": "object",
            "properties": {**{name: {"$ref": f"#/$defs/loss.{name}"} for name in LOSSES.entries},
                           **{key: {**value, "description": TERM[key]} for key, value in keys.items()}},
            "additionalProperties": False, "oneOf": [{"required": [name]} for name in LOSSES.entries]}
    bare = {"enum": [name for name, entry in LOSSES.entries.items() if not _required(entry.Args)]}
    return {"description": "A loss, a term `{LOSS: args, output:, target:, weight:, name:}`, or a list of them "
                            "(their weighted sum).",
            "anyOf": [bare, term, {"type": "array", "minItems": 1, "items": {"anyOf": [bare, term]}}]}


def _schedule(plain: _Converter) -> dict:
    """No schedule, a schedule, or a mapping of at most one schedule and the warm-up keys."""
    names = list(SCHEDULES.entries)
    warmup = plain.model(WarmupArgs, "")["properties"]
    mapping = {
        "type": "object",
        "properties": {**{name: {"$ref": f"#/$defs/schedule.{name}"} for name in names}, **warmup},
        "additionalProperties": False,
        "oneOf": [*({"required": [name]} for name in names), {"not": {"anyOf": [{"required": [n]} for n in names]}}],
        "not": {"required": ["warmup_epochs", "warmup_steps"]},
        "allOf": [{"if": {"required": [name]}, "then": {"propertyNames": {"not": {"enum": list(warmup)}}}}
                  for name, entry in SCHEDULES.entries.items() if getattr(entry, "has_warmup", False)],
    }
    return {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/schedule"}, mapping]}


# --- Python annotations as JSON Schema -----------------------------------------------------------------------


class _Converter:
    """Pydantic models and annotations as JSON Schema. With `expressions`, every value (and every element of a
    list or mapping) may also be an expression; `written` replaces the schema of a dotted key."""

    def __init__(self, expressions: bool, written: dict[str, dict] | None = None):
        self.expressions = expressions
        self.written = written or {}

    def value(self, annotation, key: str) -> dict:
        """The schema of a value at dotted `key`."""
        if key in self.written:
            return self.written[key]
        out = self.type(annotation, key)
        if not self.expressions or out == {}:
            return out
        members = out["anyOf"] if list(out) == ["anyOf"] else [out]
        return {"anyOf": [*members, EXPRESSION]}

    def model(self, model: type[BaseModel], key: str, doc: str = "") -> dict:
        """An object of the model's fields under their names and aliases (giving two names of one field is an
        error, as in pydantic), typed, bounded, with defaults and descriptions (`doc`: the docstring whose
        `Args:` section describes the fields pydantic does not)."""
        properties, required, rules = {}, [], []
        for name, names, info, text in arguments(model, doc):
            field = self.value(info.rebuild_annotation(), f"{key}.{name}" if key else name)
            field = {**field, **_default(info)}
            for n in names:
                said = text if n == name else f"Alias of `{name}`." + (f" {text}" if text else "")
                properties[n] = {**field, "description": said} if said else field
            if info.is_required():
                if len(names) == 1:
                    required.append(name)
                else:
                    rules.append({"oneOf": [{"required": [n]} for n in names]})
            elif len(names) > 1:
                rules += [{"not": {"required": list(pair)}} for pair in itertools.combinations(names, 2)]
        out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        extra = extra_type(model)
        if extra is not None:
            out["additionalProperties"] = self.value(extra, f"{key}.*")
        if required:
            out["required"] = required
        if rules:
            out["allOf"] = rules
        return out

    def type(self, annotation, key: str) -> dict:
        origin, args = get_origin(annotation), get_args(annotation)
        if annotation is Any:
            return {}
        if annotation is type(None):
            return {"type": "null"}
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return self.model(annotation, key)
        simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
        if annotation in simple:
            return {"type": simple[annotation]}
        if origin is Annotated:
            return {**self.type(args[0], key), **_constraints(args[0], args[1:])}
        if origin in (Union, types.UnionType):
            members = [self.type(a, key) for a in args]
            return {"anyOf": [m for member in members for m in (member["anyOf"] if list(member) == ["anyOf"]
                                                                 else [member])]}
        if origin is Literal:
            return {"enum": list(args)}
        if origin is list or annotation is list:
            return {"type": "array", **({"items": self.value(args[0], f"{key}[]")} if args else {})}
        if origin is tuple and (len(args) == 2 and args[1] is Ellipsis):
            return {"type": "array", "items": self.value(args[0], f"{key}[]")}
        if origin is tuple:  # one schema for all items when they agree (what draft-07 editors understand too)
            items = [self.value(a, f"{key}[]") for a in args]
            each = {"items": items[0]} if all(i == items[0] for i in items) else {"prefixItems": items, "items": False}
            return {"type": "array", **each, "minItems": len(args), "maxItems": len(args)}
        if origin is dict or annotation is dict:
            return {"type": "object", **({"additionalProperties": self.value(args[1], f"{key}.*")} if args else {})}
        raise TypeError(f"no JSON Schema for `{annotation}` (at `{key}`): teach netspec.export.schema this type")


def _constraints(base, metadata) -> dict:
    """Bounds and lengths (annotated_types, as pydantic's `Field(ge=...)` records them) as JSON Schema
    keywords; each applies to its own JSON type only, so they may sit beside a union."""
    out = {}
    sized = "minLength" if base is str else "minItems"
    for meta in metadata:
        if isinstance(meta, FieldInfo):
            out.update(_constraints(base, meta.metadata))
        elif isinstance(meta, (annotated_types.Ge, annotated_types.Gt, annotated_types.Le, annotated_types.Lt)):
            out.update({keyword: getattr(meta, attr) for attr, keyword in _BOUNDS if hasattr(meta, attr)})
        elif isinstance(meta, (annotated_types.MinLen, annotated_types.MaxLen, annotated_types.Len)):
            low, high = getattr(meta, "min_length", None), getattr(meta, "max_length", None)
            if low:
                out[sized] = low
            if high is not None:
                out[sized.replace("min", "max")] = high
        elif not isinstance(meta, _IGNORED):
            raise TypeError(f"no JSON Schema for the constraint `{meta!r}`: teach netspec.export.schema it")
    return out


def _default(info: FieldInfo) -> dict:
    """`{"default": value}` for a field with a JSON default (tuples as lists; a sub-model's is left out)."""
    if info.is_required():
        return {}
    value = info.get_default(call_default_factory=True)
    if isinstance(value, tuple):
        value = list(value)
    return {} if isinstance(value, BaseModel) else {"default": value}

