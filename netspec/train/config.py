"""The typed `train:` section, checked with located errors and without torch.

    train:
      data: {dataset: digits, split: [0.8, 0.1, 0.1], augment: [random_horizontal_flip]}
      loss: cross_entropy                       # or a weighted list of terms over named outputs
      optimizer: {adam: {lr: 1.0e-3, weight_decay: 1.0e-4}}
      schedule: {cosine: {}, warmup_epochs: 1}
      epochs: 30
      batch_size: 64
      early_stopping: {monitor: val_loss, patience: 5}

`parse_train(spec)` reads the section into a `TrainConfig` (every component a
registry `Choice`); `check_train(config, analysis)` then checks it against the
network: outputs named by losses exist, targets fit outputs, data fits inputs.
Both raise `SpecErrors` with every independent mistake at its YAML line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from ..errors import Diagnostics, PathT, SpecError, SpecErrors, did_you_mean
from .augment import AUGMENTATIONS
from .data import SOURCES, TRANSFORMS
from .data import Field as DataField
from .losses import LOSSES
from .optim import OPTIMIZERS, SCHEDULES
from .registry import Args, Choice, validate_args

if TYPE_CHECKING:
    from ..analysis import Analysis
    from ..spec import Spec

PosInt = Annotated[int, Field(ge=1)]
PosFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class DataArgs(Args):
    dataset: Any = "digits"
    split: list[Fraction] = Field(default_factory=lambda: [0.8, 0.1, 0.1], min_length=3, max_length=3)
    normalize: bool = True
    transform: list[Any] = Field(default_factory=list)
    augment: list[Any] = Field(default_factory=list)
    inputs: dict[str, str] | None = None


class EarlyStoppingArgs(Args):
    monitor: str = "val_loss"
    mode: Literal["min", "max"] | None = None
    patience: PosInt = 5
    min_delta: Annotated[float, Field(ge=0)] = 0.0
    restore_best_weights: bool = True


class ParamGroupArgs(Args):
    params: list[str] = Field(min_length=1)
    lr: PosFloat | None = None
    weight_decay: Annotated[float, Field(ge=0)] | None = None


class TrainArgs(Args):
    data: DataArgs = Field(default_factory=DataArgs)
    loss: Any = "cross_entropy"
    optimizer: Any = "adam"
    param_groups: list[ParamGroupArgs] = Field(default_factory=list)
    schedule: Any = None
    epochs: PosInt = 10
    batch_size: PosInt = 64
    clip_grad_norm: PosFloat | None = None
    clip_grad_value: PosFloat | None = None
    accumulate_grad_batches: PosInt = 1
    early_stopping: EarlyStoppingArgs | None = None
    seed: Annotated[int, Field(ge=0)] = 0
    deterministic: bool = False
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = False
    metrics: list[str] | None = None


LOSS_KEYS = ("output", "target", "weight", "name")
DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")
METRIC_RE = re.compile(r"^(accuracy|top(\d+))$")
SAFE_TO_CHANGE = ("epochs", "early_stopping.patience")  # keys a resumed run may change


@dataclass(frozen=True)
class LossTerm:
    """One term of the loss: `weight · loss(outputs, target)`, logged as `name`."""

    choice: Choice
    name: str
    outputs: tuple[str, ...]  # the network outputs it reads
    target: str | None  # the data field it compares with, or None (a KL term)
    weight: float
    path: PathT


@dataclass(frozen=True)
class Schedule:
    choice: Choice
    warmup_epochs: int = 0
    warmup_steps: int = 0
    warmup_start_factor: float = 0.1


@dataclass
class TrainConfig:
    """The parsed `train:` section (what the trainer reads)."""

    args: TrainArgs
    dataset: Choice
    transform: list[Choice]
    augment: list[Choice]
    loss: list[LossTerm]
    optimizer: Choice
    schedule: Schedule | None
    metrics: list[str] = field(default_factory=list)
    raw: dict = field(default_factory=dict)  # the section as written, overrides applied

    @property
    def classification(self) -> bool:
        """Whether the first loss term compares with class ids (accuracy is then reported)."""
        return self.loss[0].choice.entry.target == "class"


def parse_train(spec: Spec, overrides: dict | None = None) -> TrainConfig:
    """The spec's `train:` section (an empty one when absent) with `overrides` applied
    (`{"epochs": 3, "optimizer.adam.lr": 0.01}`: dotted keys into the section)."""
    source = spec.source
    raw = apply_overrides(spec.model.train or {}, overrides or {})
    path = ("train",)
    diag = Diagnostics()
    try:
        args = validate_args(TrainArgs, raw, path, source, "train key")
    except (SpecError, SpecErrors) as exc:
        diag.extend(exc.errors if isinstance(exc, SpecErrors) else [exc])
        diag.raise_if_any()
    if not DEVICE_RE.match(args.device):
        diag.add(source.error(f"unknown device `{args.device}`", path + ("device",),
                              hint="one of auto, cpu, cuda, cuda:N, mps"))
    if args.clip_grad_norm is not None and args.clip_grad_value is not None:
        diag.add(source.error("clip by norm or by value, not both", path + ("clip_grad_value",), key=True))
    for i, metric in enumerate(args.metrics or []):
        if not METRIC_RE.match(metric) or metric == "top0":
            diag.add(source.error(f"unknown metric `{metric}`", path + ("metrics", i),
                                  hint="metrics are `accuracy` and `topK` (top5: the true class among the 5 "
                                       "highest scores)"))
    if abs(sum(args.data.split) - 1) > 1e-6:
        diag.add(source.error(f"split fractions add up to {sum(args.data.split):g}, not 1",
                              path + ("data", "split"), hint="train, val, test: e.g. [0.8, 0.1, 0.1]"))
    dpath = path + ("data",)
    dataset = _parse(diag, SOURCES, args.data.dataset, dpath + ("dataset",), source)
    transform = [_parse(diag, TRANSFORMS, t, dpath + ("transform", i), source)
                 for i, t in enumerate(args.data.transform)]
    augment = [_parse(diag, AUGMENTATIONS, t, dpath + ("augment", i), source)
               for i, t in enumerate(args.data.augment)]
    loss = _parse_loss(args.loss, path + ("loss",), source, diag)
    optimizer = _parse(diag, OPTIMIZERS, args.optimizer, path + ("optimizer",), source)
    schedule = _parse_schedule(args.schedule, path + ("schedule",), source, diag)
    diag.raise_if_any()
    metrics = args.metrics if args.metrics is not None else (["accuracy"] if loss[0].choice.entry.target == "class"
                                                             else [])
    return TrainConfig(args, dataset, [c for c in transform], [c for c in augment], loss, optimizer, schedule,
                       list(metrics), raw)


def _parse(diag: Diagnostics, registry, value, path: PathT, source) -> Choice | None:
    try:
        return registry.parse(value, path, source)
    except SpecErrors as exc:
        diag.extend(exc.errors)
    except SpecError as exc:
        diag.add(exc)
    return None


def _parse_loss(value: Any, path: PathT, source, diag: Diagnostics) -> list[LossTerm]:
    """`cross_entropy`, `{mse: {...}}`, or a list of terms `{op: args, output:, target:, weight:, name:}`."""
    items = value if isinstance(value, list) else [value]
    if not items:
        diag.add(source.error("`loss` needs at least one term", path))
    terms = []
    for i, item in enumerate(items):
        at = path + (i,) if isinstance(value, list) else path
        keys = {k: item[k] for k in LOSS_KEYS if isinstance(item, dict) and k in item}
        rest = {k: v for k, v in item.items() if k not in LOSS_KEYS} if isinstance(item, dict) else item
        if isinstance(rest, dict) and len(rest) != 1:
            diag.add(source.error("a loss term names one loss" if rest else "this loss term names no loss", at,
                                  hint=f"e.g. `- mse: {{}}` with optional keys {', '.join(LOSS_KEYS)}"))
            continue
        choice = _parse(diag, LOSSES, rest, at, source)
        if choice is None:
            continue
        weight = keys.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            diag.add(source.error(f"a loss weight is a number ≥ 0, got {weight!r}", at + ("weight",)))
            continue
        for key in ("output", "target", "name"):
            if key in keys and not isinstance(keys[key], str):
                diag.add(source.error(f"`{key}` takes a name, got {keys[key]!r}", at + (key,)))
        entry = choice.entry
        outputs = tuple(entry.outputs(choice.args)) or (keys.get("output"),)
        if entry.target is None and "target" in keys:
            diag.add(source.error(f"loss `{entry.name}` takes no target", at + ("target",), key=True))
        target = keys.get("target", "y") if entry.target is not None else None
        name = keys.get("name") or (entry.name if len(items) == 1 else f"{entry.name}" +
                                    ("" if [t for t in items].count(item) == 1 else f"_{i}"))
        terms.append(LossTerm(choice, str(name), outputs, target, float(weight), at))
    names = [t.name for t in terms]
    for t in terms:
        if names.count(t.name) > 1:
            diag.add(source.error(f"two loss terms are named `{t.name}`", t.path,
                                  hint="give each term its own `name:`"))
            break
    return terms


def _parse_schedule(value: Any, path: PathT, source, diag: Diagnostics) -> Schedule | None:
    """`cosine`, `{step: {step_size: 10}}`, plus optional `warmup_epochs`/`warmup_steps`/`warmup_start_factor`."""
    if value is None:
        return None
    warm = {}
    if isinstance(value, dict):
        warm = {k: value[k] for k in ("warmup_epochs", "warmup_steps", "warmup_start_factor") if k in value}
        value = {k: v for k, v in value.items() if k not in warm}
        if not value:
            value = "constant"
    for key, v in warm.items():
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0 if key != "warmup_start_factor" else \
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1
        if not ok:
            diag.add(source.error(f"`{key}` takes " + ("a whole number ≥ 0" if key != "warmup_start_factor"
                                                       else "a number in (0, 1]") + f", got {v!r}", path + (key,)))
            return None
    if "warmup_epochs" in warm and "warmup_steps" in warm:
        diag.add(source.error("warm up by epochs or by steps, not both", path + ("warmup_steps",), key=True))
    choice = _parse(diag, SCHEDULES, value, path, source)
    if choice is None:
        return None
    if choice.entry.has_warmup and warm:
        diag.add(source.error(f"`{choice.name}` has its own warm-up phase", path + (next(iter(warm)),), key=True,
                              hint="drop the warmup keys, or set its pct_start"))
    return Schedule(choice, **warm)


def apply_overrides(raw: dict, overrides: dict) -> dict:
    """A copy of `raw` with dotted keys set: `{"optimizer.adam.lr": 0.01}` sets raw["optimizer"]["adam"]["lr"]
    (a string optimizer `adam` becomes `{adam: {lr: 0.01}}`)."""
    import copy

    out = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        keys = dotted.split(".")
        node = out
        for key in keys[:-1]:
            child = node.get(key)
            if isinstance(child, str) and child:  # `optimizer: adam` -> `{adam: {}}`
                child = {child: {}}
            elif not isinstance(child, dict):
                child = {}
            node[key] = child
            node = child
        node[keys[-1]] = value
    return out


def lr_override(raw: dict, lr: float) -> dict:
    """The override that sets the optimizer's lr, whatever optimizer the section names."""
    opt = raw.get("optimizer", "adam")
    name = opt if isinstance(opt, str) else next(iter(opt), "adam") if isinstance(opt, dict) else "adam"
    return {f"optimizer.{name}.lr": lr}


def check_train(config: TrainConfig, analysis: Analysis, spec: Spec) -> None:
    """Check the section against the network and the data: loss outputs exist, class counts and target shapes
    fit the outputs, data fields fit the inputs, augmentations fit the input's rank. Raises SpecErrors."""
    source = spec.source
    diag = Diagnostics()
    outputs = analysis.outputs
    fields = config.dataset.entry.fields(config.dataset.args)
    if fields is not None:
        fields = _transformed(config, fields)
    inputs = _input_fields(config, analysis, fields, source, diag)
    for term in config.loss:
        resolved = []
        for name in term.outputs:
            if name is None:
                if len(outputs) != 1:
                    diag.add(source.error(f"the network has {len(outputs)} outputs "
                                          f"({', '.join(outputs)}); say which this loss reads", term.path,
                                          hint="add `output: NAME` to the loss term"))
                    break
                name = next(iter(outputs))
            if name not in outputs:
                diag.add(source.error(f"loss `{term.choice.name}` reads output `{name}`, which the network lacks",
                                      term.path, hint=did_you_mean(name, outputs)
                                      or f"outputs: {', '.join(outputs)}"))
                break
            resolved.append(name)
        else:
            if term.target is not None and fields is not None:
                _check_target(term, resolved[0], outputs[resolved[0]], fields, source, diag)
    for aug in config.augment:
        for name, shape in inputs.items():
            problem = aug.entry.check(aug.args, shape)
            if problem:
                diag.add(source.error(f"{aug.name} cannot augment input `{name}` of shape "
                                      f"{_fmt(shape)}: {problem}", aug.path))
    diag.raise_if_any()


def _transformed(config: TrainConfig, fields: dict[str, DataField]) -> dict[str, DataField]:
    for t in config.transform:
        fields = {k: (DataField(tuple(t.entry.shape(t.args, f.shape)), f.kind, f.classes) if f.kind == "float"
                      else f) for k, f in fields.items()}
    return fields


def input_fields(config: TrainConfig, spec_inputs) -> dict[str, str]:
    """Spec input name -> data field: `data.inputs`, else the one input reads field `x`."""
    if config.args.data.inputs is not None:
        return dict(config.args.data.inputs)
    return {name: "x" for name in spec_inputs}


def _input_fields(config, analysis, fields, source, diag) -> dict[str, tuple]:
    """Check the data fields feeding the spec's inputs; spec input -> its shape."""
    mapping = input_fields(config, analysis.inputs)
    path = ("train", "data", "inputs")
    for name in mapping:
        if name not in analysis.inputs:
            diag.add(source.error(f"`data.inputs` maps `{name}`, which is not an input of the network",
                                  path + (name,), key=True, hint=did_you_mean(name, analysis.inputs)))
    for name, shape in analysis.inputs.items():
        if name not in mapping:
            diag.add(source.error(f"input `{name}` gets no data", path if config.args.data.inputs else
                                  ("train", "data"), hint="map it in `data.inputs: {INPUT: FIELD}`"))
            continue
        if fields is None:
            continue
        fld = fields.get(mapping[name])
        where = path + (name,) if config.args.data.inputs else ("train", "data", "dataset")
        if fld is None:
            diag.add(source.error(f"the data has no field `{mapping[name]}` for input `{name}`", where,
                                  hint=f"fields: {', '.join(fields)}"))
        elif not fits(fld.shape, shape):
            diag.add(source.error(f"the data's `{mapping[name]}` is {_fmt(fld.shape)} per sample, which does not "
                                  f"fit input `{name}` {_fmt(shape)}", where,
                                  hint="a field is reshaped to the input when their sizes agree; add a `resize` "
                                       "transform, or change the input"))
    return {name: shape for name, shape in analysis.inputs.items()}


def _check_target(term: LossTerm, out_name: str, out_shape, fields, source, diag) -> None:
    fld = fields.get(term.target)
    if fld is None:
        diag.add(source.error(f"the data has no field `{term.target}` for loss `{term.choice.name}`", term.path,
                              hint=did_you_mean(term.target, fields) or f"fields: {', '.join(fields)}"))
        return
    want = term.choice.entry.target
    if want == "class":
        if fld.kind != "class":
            diag.add(source.error(f"`{term.choice.name}` compares with class ids, but `{term.target}` holds "
                                  "values", term.path, hint="use mse or l1 for values"))
        elif out_shape and isinstance(out_shape[0], int) and fld.classes and out_shape[0] < fld.classes:
            diag.add(source.error(f"the data has {fld.classes} classes but output `{out_name}` has "
                                  f"{out_shape[0]} scores", term.path,
                                  hint=f"make the last layer `linear: {fld.classes}`"))
    elif fld.kind == "class" and want == "float":
        if not (out_shape and len(out_shape) == 1 and out_shape[0] == 1) and fld.shape != tuple(out_shape):
            diag.add(source.error(f"`{term.choice.name}` compares values, but `{term.target}` holds class ids "
                                  f"and output `{out_name}` is {_fmt(out_shape)}", term.path,
                                  hint="use cross_entropy for class ids"))
    elif not fits(fld.shape, out_shape):
        diag.add(source.error(f"target `{term.target}` is {_fmt(fld.shape)} per sample, which does not fit output "
                              f"`{out_name}` {_fmt(out_shape)}", term.path))


def fits(data_shape, shape) -> bool:
    """Whether per-sample data of `data_shape` reshapes to `shape` (same size; a symbolic dim takes what is
    left when the rest divides the size)."""
    from math import prod

    size = prod(data_shape)
    known = [d for d in shape if isinstance(d, int)]
    if len(known) == len(shape):
        return prod(known) == size
    return len(known) == len(shape) - 1 and size % max(prod(known), 1) == 0


def _fmt(shape) -> str:
    return "×".join(map(str, shape)) if shape else "a scalar"
