"""The typed `train:` section, checked like the network: located errors, and no torch.

    train:
      data: {dataset: digits, split: [0.8, 0.1, 0.1], augment: [random_horizontal_flip]}
      loss: cross_entropy                       # or a weighted list of terms over named outputs
      optimizer: {adam: {lr: 1.0e-3, weight_decay: 1.0e-4}}
      schedule: {cosine: {}, warmup_epochs: 1}
      epochs: 30
      batch_size: 64
      early_stopping: {monitor: val_loss, patience: 5}

`parse_train(spec)` reads the section into a `TrainConfig` (every component a
registry `Choice`) and checks what the section alone decides: keys, value types,
split fractions, metrics and monitored columns. `check_train(config, analysis, spec)`
checks it against the network: the outputs the losses read, targets against outputs,
data fields against inputs, augmentations against the input, `param_groups`, `freeze` and
`unfreeze` against the layers, and that something trains in the first epoch. `check_fields`
repeats the data checks for sources whose fields only loading tells (files).
`validate_train(spec, analysis)`, for `netspec validate`, does all of it in one pass.
Each raises `SpecErrors` holding every independent mistake at its YAML line; a part with
a mistake is left out of the checks that read it, so one mistake is reported once.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from ..errors import Diagnostics, PathT, SpecError, SpecErrors, did_you_mean, format_path
from ..loader import Source
from ..spec import NAME_RE, pydantic_errors
from .augment import AUGMENTATIONS
from .data import SOURCES, TRANSFORMS
from .data import Field as DataField
from .losses import LOSSES
from .optim import OPTIMIZERS, SCHEDULES, matches
from .registry import Args, Choice, Registry

if TYPE_CHECKING:
    from ..analysis import Analysis
    from ..spec import Spec

PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class DataArgs(Args):
    dataset: Any = "digits"
    """The data source."""
    split: list[Fraction] = Field(default_factory=lambda: [0.8, 0.1, 0.1], min_length=3, max_length=3)
    """Train, val and test fractions, adding up to 1; stratified by the class field `y`, seeded by `seed`."""
    normalize: bool = True
    """Standardize each input field with the train split's mean and std, per channel (images) or feature (vectors)."""
    transform: list[Any] = Field(default_factory=list)
    """Deterministic preprocessing, applied once to every float field before the split."""
    augment: list[Any] = Field(default_factory=list)
    """Random changes to each training batch's inputs, before normalization."""
    inputs: dict[str, str] | None = None
    """Network input -> the data field it reads (default: every input reads `x`)."""


class EarlyStoppingArgs(Args):
    monitor: str = "val_loss"
    """The metrics.csv column watched (`val_loss`, `val_accuracy`, `train_loss`, …)."""
    mode: Literal["min", "max"] | None = None
    """`min` or `max`; by default `max` for accuracies and `min` otherwise."""
    patience: PosInt = 5
    """Epochs without an improvement before training stops."""
    min_delta: NonNegFloat = 0.0
    """The least change that counts as an improvement."""
    restore_best_weights: bool = True
    """Load the best epoch's weights back at the end, before the final evaluation."""


class ParamGroupArgs(Args):
    params: list[str] = Field(min_length=1)
    """Glob patterns over layer and parameter names (`features.*`, `*.bias`)."""
    lr: PosFloat | None = None
    """The group's learning rate (default: the optimizer's)."""
    weight_decay: NonNegFloat | None = None
    """The group's weight decay (default: the optimizer's)."""


class InitFromArgs(Args):
    path: str
    """The weights file (relative to the spec's folder): `.pt`/`.pth` or `.safetensors`."""
    strict: bool = True
    """The file holds every tensor of the network, by name and shape, and no other; `false` loads those that fit."""


class UnfreezeArgs(Args):
    at_epoch: PosInt
    """The first epoch (counted from 1) that trains these layers again."""
    layers: list[str] = Field(min_length=1)
    """Glob patterns over layer and parameter names, among those `freeze` freezes (`features.*`, `layer4`)."""


class TrainArgs(Args):
    data: DataArgs = Field(default_factory=DataArgs)
    """Where the samples come from, and how they are split, normalized, transformed and augmented."""
    loss: Any = "cross_entropy"
    """A loss, or a list of terms with `output`, `target`, `weight` and `name` keys."""
    optimizer: Any = "adam"
    """The optimizer; its main argument is `lr`."""
    param_groups: list[ParamGroupArgs] = Field(default_factory=list)
    """Parameters with their own `lr` or `weight_decay`; a parameter joins the first group matching it."""
    schedule: Any = None
    """The lr schedule, with `warmup_epochs` or `warmup_steps` and `warmup_start_factor` beside its name."""
    epochs: PosInt = 10
    """Passes over the train split."""
    batch_size: PosInt = 64
    """Samples per batch (an epoch's last batch may be smaller); under torchrun, per process: a step reads
    batch_size × processes (docs/distributed.md)."""
    clip_grad_norm: PosFloat | None = None
    """Rescale the gradients when their total L2 norm exceeds this."""
    clip_grad_value: PosFloat | None = None
    """Clamp each gradient element to ± this (instead of clip_grad_norm)."""
    accumulate_grad_batches: PosInt = 1
    """Batches per optimizer step, their losses weighted by their share of its samples."""
    early_stopping: EarlyStoppingArgs | None = None
    """Stop when the monitored metric has not improved for `patience` epochs."""
    seed: NonNegInt = 0
    """Seeds Python, NumPy and torch, the split and the batch order."""
    deterministic: bool = False
    """Make torch use deterministic kernels (and fail on ops that have none)."""
    device: str = "auto"
    """`auto` (CUDA when there is a GPU), `cpu`, `cuda`, `cuda:N` or `mps`."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """`bf16` or `fp16` run the forward pass under autocast (fp16 with loss scaling)."""
    channels_last: bool = False
    """The channels-last memory format for the weights and 4-d inputs."""
    metrics: list[str] | None = None
    """Classification metrics: `accuracy`, `topK` (default `[accuracy]`)."""
    init_from: str | InitFromArgs | None = None  # parsing makes `FILE` `{path: FILE}`
    """Initial weights from a file, matched by name: `init_from: FILE`, or `{path: FILE, strict: false}`."""
    freeze: list[str] = Field(default_factory=list)
    """Glob patterns over layer and parameter names whose parameters do not train (`features.*`, `*`)."""
    unfreeze: UnfreezeArgs | None = None
    """Train frozen layers again from an epoch on: `{at_epoch: N, layers: [globs]}`."""
    grad_norms_every: PosInt | None = None
    """Log each layer's gradient norm every N optimizer steps (default: at each epoch's last step)."""


class WarmupArgs(Args):
    """The warm-up keys a `schedule:` mapping may hold beside the schedule."""

    warmup_epochs: NonNegInt = 0
    """Epochs of linear warm-up before the schedule."""
    warmup_steps: NonNegInt = 0
    """Optimizer steps of linear warm-up (instead of warmup_epochs)."""
    warmup_start_factor: Annotated[float, Field(gt=0, le=1)] = 0.1
    """The warm-up's first lr, as a fraction of the lr."""


_SECTIONS = {("train",): TrainArgs, ("train", "data"): DataArgs, ("train", "early_stopping"): EarlyStoppingArgs,
            ("train", "param_groups"): ParamGroupArgs, ("train", "init_from"): InitFromArgs,
            ("train", "unfreeze"): UnfreezeArgs}  # mappings of the section, for "belongs in" hints
LOSS_KEYS = ("output", "target", "weight", "name")
DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")
TOPK_RE = re.compile(r"^top([1-9]\d*)$")
SAFE_TO_CHANGE = ("epochs", "early_stopping.patience")  # keys a resumed run may change


@dataclass(frozen=True)
class LossTerm:
    """One term of the loss: `weight · loss(outputs, target)`, logged as `name`."""

    choice: Choice
    name: str
    outputs: tuple[str | None, ...]  # the network outputs it reads; (None,): the network's only one
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
        return bool(self.loss) and self.loss[0].choice.entry.target == "class"


@dataclass
class _Parsed:
    """A parse in progress: the config (a component with a mistake is None, or left out of its list) and the
    dotted keys that had mistakes, whose checks stand down."""

    config: TrainConfig
    broken: set[str]


# --- entry points --------------------------------------------------------------------------------------------


def parse_train(spec: Spec, overrides: dict | None = None) -> TrainConfig:
    """The spec's `train:` section (an empty one when absent) with `overrides` applied
    (`{"epochs": 3, "optimizer.adam.lr": 0.01}`: dotted keys into the section). Raises SpecErrors."""
    diag = Diagnostics()
    parsed = _parse(spec, overrides, diag)
    diag.raise_if_any()
    return parsed.config


def check_train(config: TrainConfig, analysis: Analysis, spec: Spec) -> None:
    """Check a parsed section against the network: loss outputs exist, targets fit outputs, data fields fit inputs
    (for sources that know their fields without loading), augmentations fit the input, `param_groups` name
    layers with parameters, topK fits the classes. Raises SpecErrors."""
    diag = Diagnostics()
    _check(config, set(), analysis, spec.source, diag)
    diag.raise_if_any()


def check_fields(config: TrainConfig, analysis: Analysis, spec: Spec, fields: dict[str, DataField]) -> None:
    """`check_train`'s data checks for fields known only once loaded (npz, npy, csv, image folders): `fields` maps
    each field to its per-sample `Field(shape, kind, classes)` after `transform`. Data inputs fit the network's
    inputs, loss targets fit the outputs they are compared with, topK fits the classes. Raises SpecErrors at the
    section's lines."""
    diag = Diagnostics()
    _check_data(config, analysis, fields, spec.source, diag)
    diag.raise_if_any()


def validate_train(spec: Spec, analysis: Analysis | None) -> None:
    """Every mistake of the spec's `train:` section in one SpecErrors: `parse_train`'s, and `check_train`'s against
    `analysis` (None when the network itself is invalid) for the parts that parsed."""
    diag = Diagnostics()
    parsed = _parse(spec, None, diag)
    if analysis is not None:
        _check(parsed.config, parsed.broken, analysis, spec.source, diag)
    diag.raise_if_any()


def input_fields(config: TrainConfig, spec_inputs) -> dict[str, str]:
    """Spec input name -> data field: `data.inputs`, else every input reads field `x`."""
    if config.args.data.inputs is not None:
        return dict(config.args.data.inputs)
    return {name: "x" for name in spec_inputs}


def apply_overrides(raw: dict, overrides: dict) -> dict:
    """A copy of `raw` with dotted keys set: `{"optimizer.adam.lr": 0.01}` sets raw["optimizer"]["adam"]["lr"]
    (a string optimizer `adam` becomes `{adam: {lr: 0.01}}`)."""
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


def fits(data_shape, shape) -> bool:
    """Whether per-sample data of `data_shape` reshapes to `shape` (same size; a symbolic dim takes what is
    left when the rest divides the size)."""
    size = math.prod(data_shape)
    known = [d for d in shape if isinstance(d, int)]
    if len(known) == len(shape):
        return math.prod(known) == size
    return len(known) == len(shape) - 1 and size % max(math.prod(known), 1) == 0


def columns(config: TrainConfig) -> set[str]:
    """The metrics.csv columns a run can monitor: `train_`/`val_` + `loss`, each loss term's name, and for
    classification each of `metrics` (`accuracy` by default; `top1` is `accuracy`)."""
    names = {"loss", *(t.name for t in config.loss)}
    if config.classification:
        names |= {"accuracy" if m == "top1" else m for m in config.metrics}
    return {f"{split}_{name}" for split in ("train", "val") for name in names}


# --- parsing -------------------------------------------------------------------------------------------------


def _parse(spec: Spec, overrides: dict | None, diag: Diagnostics) -> _Parsed:
    """The section as far as it parses, its mistakes added to `diag`."""
    source = spec.source
    raw = apply_overrides(spec.model.train or {}, overrides or {})
    args, broken = _train_args(raw, source, diag)
    data = ("train", "data")
    dataset = _choice(SOURCES, args.data.dataset, data + ("dataset",), source, diag)
    transform = [_choice(TRANSFORMS, t, data + ("transform", i), source, diag)
                 for i, t in enumerate(args.data.transform)]
    augment = [_choice(AUGMENTATIONS, t, data + ("augment", i), source, diag) for i, t in enumerate(args.data.augment)]
    loss = _parse_loss(args.loss, source, diag) if "loss" not in broken else []  # not the default, misspelt
    optimizer = _choice(OPTIMIZERS, args.optimizer, ("train", "optimizer"), source, diag)
    schedule = _parse_schedule(args.schedule, source, diag)
    terms = [t for t in loss if t is not None]
    broken |= {key for key, failed in (("data.dataset", dataset is None), ("data.transform", None in transform),
                                       ("loss", len(terms) < len(loss) or not terms)) if failed}
    config = TrainConfig(args, dataset, [c for c in transform if c is not None], [c for c in augment if c is not None],
                         terms, optimizer, schedule, raw=raw)
    if "loss" not in broken:  # which metrics apply depends on the loss
        config.metrics = list(args.metrics) if args.metrics is not None else \
            ["accuracy"] if config.classification else []
    _check_section(config, broken, source, diag)
    return _Parsed(config, broken)


def _train_args(raw: dict, source: Source, diag: Diagnostics) -> tuple[TrainArgs, set[str]]:
    """The section's keys as TrainArgs. A key with a mistake is reported and takes its default; the dotted keys
    that did so are returned, so that the checks reading them stand down."""
    path = ("train",)
    raw, broken = dict(raw), set()
    if isinstance(raw.get("init_from"), str):  # `init_from: FILE` is `{path: FILE}`
        raw["init_from"] = {"path": raw["init_from"]}
    for key, model in (("data", DataArgs), ("early_stopping", EarlyStoppingArgs), ("init_from", InitFromArgs),
                       ("unfreeze", UnfreezeArgs)):
        if key in raw and (raw[key] is not None or TrainArgs.model_fields[key].default is not None):
            value, bad = _model(model, raw.pop(key), path + (key,), source, diag)
            if value is None:
                broken.add(key)
            else:
                raw[key] = value
                broken |= {f"{key}.{k}" for k in bad}
    if isinstance(raw.get("param_groups"), list):
        groups = [_model(ParamGroupArgs, g, path + ("param_groups", i), source, diag)
                  for i, g in enumerate(raw["param_groups"])]
        # a group that failed holds no globs, so the checks see the others at their own indices
        raw["param_groups"] = [g if g is not None else ParamGroupArgs.model_construct(params=[]) for g, _ in groups]
    args, bad = _model(TrainArgs, raw, path, source, diag)
    return args, broken | bad


def _model(model: type[BaseModel], raw: Any, path: PathT, source: Source, diag: Diagnostics
           ) -> tuple[Any, set[str]]:
    """`model` validated from the mapping `raw` at `path`, each mistake added to `diag`: an unknown key (with a
    did-you-mean, or where it belongs), a wrong value. The keys with mistakes are left out, so their defaults
    apply. (The model, the keys with mistakes and the keys the unknown ones misspell), or (None, ...) when `raw`
    is no mapping or a required key is missing."""
    what = f"{path[-1] if isinstance(path[-1], str) else path[-2]} key"
    known = model.model_fields
    if not isinstance(raw, dict):
        got = "" if isinstance(raw, list) else f", got {raw!r}"
        diag.add(_error(source, f"`{format_path(path)}` takes a mapping of {', '.join(known)}{got}", path))
        return None, set()
    unknown = {k for k in raw if k not in known}
    meant = set()
    for key in unknown:
        home = _elsewhere(key, path)
        if home is None:
            meant.update(difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6))  # as did_you_mean
        diag.add(_error(source, f"unknown {what} `{key}`", path + (key,), key=True,
                        hint=home or did_you_mean(key, known) or f"known: {', '.join(known)}"))
    raw = {k: v for k, v in raw.items() if k in known}
    try:
        return model.model_validate(raw), unknown | meant
    except ValidationError as exc:
        misspelt = {f"missing required {what} `{key}`" for key in meant}  # reported as the misspelling
        errors = pydantic_errors(exc, path, source, set(known), what, data=raw)
        diag.extend(e for e in errors if e.message not in misspelt)
        bad = {err["loc"][0] for err in exc.errors() if err["loc"]}
    try:
        return model.model_validate({k: v for k, v in raw.items() if k not in bad}), unknown | meant | bad
    except ValidationError:
        return None, unknown | meant | bad


def _elsewhere(key: str, path: PathT) -> str | None:
    """Where a key unknown at `path` belongs, when it belongs elsewhere in the section."""
    if any(key in OPTIMIZERS[name].Args.model_fields for name in OPTIMIZERS):
        return f"`{key}` is an optimizer argument: `optimizer: {{adam: {{{key}: ...}}}}`"
    if key in WarmupArgs.model_fields:
        return f"`{key}` belongs in `train.schedule`, beside the schedule: `schedule: {{cosine: {{}}, {key}: 1}}`"
    here = tuple(p for p in path if isinstance(p, str))
    for home, model in _SECTIONS.items():
        if home != here and key in model.model_fields:
            return f"`{key}` belongs in `{format_path(home)}`"
    return None


def _choice(registry: Registry, value: Any, path: PathT, source: Source, diag: Diagnostics,
            keys: tuple[str, ...] = ()) -> Choice | None:
    """`registry.parse`, its errors added to `diag`: the Choice, or None."""
    try:
        return registry.parse(value, path, source, keys)
    except SpecErrors as exc:
        diag.extend(exc.errors)
    except SpecError as exc:
        diag.add(exc)
    return None


def _parse_loss(value: Any, source: Source, diag: Diagnostics) -> list[LossTerm | None]:
    """`loss: cross_entropy`, `loss: {mse: {...}}`, or a list of terms `- {LOSS: args, output:, target:, weight:,
    name:}`; None for a term with a mistake. A term is logged under its `name`, else its loss's, numbered
    (`mse_0`, `mse_1`) when several terms use the same loss."""
    path = ("train", "loss")
    if value == []:
        diag.add(_error(source, "`loss` needs at least one term", path, hint="e.g. `loss: cross_entropy`"))
    items = [(path + (i,), item) for i, item in enumerate(value)] if isinstance(value, list) else [(path, value)]
    terms = [_parse_term(item, at, source, diag) for at, item in items]
    uses = Counter(t.choice.name for t in terms if t is not None and not t.name)
    numbered: Counter = Counter()
    for i, t in enumerate(terms):
        if t is not None and not t.name:
            loss = t.choice.name
            terms[i] = replace(t, name=loss if uses[loss] == 1 else f"{loss}_{numbered[loss]}")
            numbered[loss] += 1
    seen = set()
    for i, t in enumerate(terms):
        if t is None:
            continue
        if t.name in seen or t.name in ("loss", "accuracy") or TOPK_RE.match(t.name):
            whose = "another term's" if t.name in seen else "a metric's"
            diag.add(_error(source, f"this loss term is logged as `{t.name}`, {whose} name", t.path + ("name",),
                            hint="give the term a `name:` of its own (the total is logged as `loss`)"))
            terms[i] = None
        seen.add(t.name)
    return terms


def _parse_term(item: Any, at: PathT, source: Source, diag: Diagnostics) -> LossTerm | None:
    """One loss term, a loss choice plus the term keys (LOSS_KEYS); None after reporting its mistakes."""
    keys, loss = {}, item
    if isinstance(item, dict):
        keys = {k: v for k, v in item.items() if k in LOSS_KEYS}
        loss = {k: v for k, v in item.items() if k not in LOSS_KEYS}
        if len(loss) != 1 and sum(k in LOSSES for k in loss) != 1:  # one loss and stray keys: _choice says
            diag.add(_error(source, "a loss term names one loss" if loss else "this loss term names no loss",
                            at + (list(loss)[1],) if loss else at, key=bool(loss),
                            hint=f"e.g. `- mse: {{}}`, with the term keys {', '.join(LOSS_KEYS)}"))
            return None
    choice = _choice(LOSSES, loss, at, source, diag, LOSS_KEYS)
    ok = choice is not None
    weight = keys.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
        diag.add(_error(source, f"a loss weight is a number ≥ 0, got {weight!r}", at + ("weight",)))
        ok = False
    for key in ("output", "target", "name"):
        value = keys.get(key)
        if key in keys and not (isinstance(value, str) and NAME_RE.match(value)):
            diag.add(_error(source, f"`{key}` takes a name (a letter, then letters, digits, `_`), got {value!r}",
                            at + (key,)))
            ok = False
    if not ok:
        return None
    entry = choice.entry
    reads = tuple(entry.outputs(choice.args))
    if reads and "output" in keys:
        diag.add(_error(source, f"loss `{entry.name}` reads the outputs {' and '.join(f'`{o}`' for o in reads)}; "
                        "`output` does not apply", at + ("output",), key=True,
                        hint=f"name other outputs in its arguments: `{entry.name}: {{...}}`"))
        return None
    if entry.target is None and "target" in keys:
        diag.add(_error(source, f"loss `{entry.name}` compares with no data field; `target` does not apply",
                        at + ("target",), key=True))
        return None
    return LossTerm(choice, keys.get("name", ""), reads or (keys.get("output"),),
                    keys.get("target", "y") if entry.target is not None else None, float(weight), at)


def _parse_schedule(value: Any, source: Source, diag: Diagnostics) -> Schedule | None:
    """`cosine`, `{step: {step_size: 10}}`, with optional warm-up keys beside it (WarmupArgs); the warm-up keys
    alone warm up to a constant lr. None for no schedule, or one with a mistake."""
    path = ("train", "schedule")
    if value is None:
        return None
    warm, bad, given = WarmupArgs(), set(), {}
    if isinstance(value, dict):
        given = {k: v for k, v in value.items() if k in WarmupArgs.model_fields}
        value = {k: v for k, v in value.items() if k not in given} or "constant"
        warm, bad = _model(WarmupArgs, given, path, source, diag)
        if "warmup_epochs" in given and "warmup_steps" in given:
            diag.add(_error(source, "warm up by epochs or by steps, not both", path + ("warmup_steps",), key=True))
            bad.add("warmup_steps")
    choice = _choice(SCHEDULES, value, path, source, diag, tuple(WarmupArgs.model_fields))
    if choice is None or bad:
        return None
    if choice.entry.has_warmup and given:
        diag.add(_error(source, f"`{choice.name}` has its own warm-up phase", path + (next(iter(given)),), key=True,
                        hint="drop the warm-up keys, or set its pct_start"))
        return None
    return Schedule(choice, **warm.model_dump())


def _check_section(config: TrainConfig, broken: set[str], source: Source, diag: Diagnostics) -> None:
    """What the section decides alone: device, gradient clipping, split fractions, metrics, monitored columns."""
    args, path = config.args, ("train",)
    if not DEVICE_RE.match(args.device):
        diag.add(_error(source, f"unknown device `{args.device}`", path + ("device",),
                        hint="one of auto, cpu, cuda, cuda:N, mps"))
    if args.clip_grad_norm is not None and args.clip_grad_value is not None:
        diag.add(_error(source, "clip gradients by norm or by value, not both", path + ("clip_grad_value",), key=True,
                        hint="keep `clip_grad_norm` (the usual one) or `clip_grad_value`"))
    split, at = args.data.split, path + ("data", "split")
    if abs(sum(split) - 1) > 1e-6:
        diag.add(_error(source, f"split fractions add up to {sum(split):g}, not 1", at,
                        hint="train, val, test: e.g. [0.8, 0.1, 0.1]"))
    elif split[0] == 0:
        diag.add(_error(source, "the split leaves no samples to train on", at + (0,),
                        hint="train, val, test: e.g. [0.8, 0.1, 0.1]"))
    _check_metrics(config, "loss" not in broken, source, diag)
    if "loss" in broken or "metrics" in broken:
        return
    watched = {path + ("early_stopping", "monitor"): args.early_stopping.monitor if args.early_stopping else None}
    if config.schedule is not None and hasattr(config.schedule.choice.args, "monitor"):
        watched[config.schedule.choice.args_path + ("monitor",)] = config.schedule.choice.args.monitor
    logged = columns(config)
    for where, monitor in watched.items():
        if monitor is not None and monitor not in logged:
            metric = monitor.partition("_")[2]
            diag.add(_error(source, f"`{monitor}` is not a column of this run's metrics.csv", where,
                            hint=f"add `{metric}` to `metrics`" if TOPK_RE.match(metric) and config.classification
                            else did_you_mean(monitor, logged) or f"its columns: {', '.join(sorted(logged))}"))
    if split[1] == 0 and not broken & {"early_stopping", "early_stopping.monitor"}:
        used = [m for m in watched.values() if m is not None and m.startswith("val_")] or \
            (["val_loss"] if args.early_stopping is None else [])
        if used:
            diag.add(_error(source, f"the split leaves no validation samples, but the run watches `{used[0]}` every "
                            "epoch", at + (1,), hint="give val a fraction (e.g. [0.8, 0.1, 0.1]), or monitor "
                            "a train_ column: `early_stopping: {monitor: train_loss}`"))


def _check_metrics(config: TrainConfig, loss_known: bool, source: Source, diag: Diagnostics) -> None:
    """Metrics are `accuracy` and `topK`, and need a first loss term that compares with class ids (checked when
    the loss is `loss_known`)."""
    for i, metric in enumerate(config.args.metrics or []):
        at = ("train", "metrics", i)
        if metric != "accuracy" and not TOPK_RE.match(metric):
            k = re.fullmatch(r"top[\W_]*([1-9]\d*)", str(metric), re.IGNORECASE)  # `top_3`, `Top-3`
            diag.add(_error(source, f"unknown metric `{metric}`", at, hint=(k and f"did you mean `top{k[1]}`?")
                            or did_you_mean(metric, ["accuracy", "top5"])
                            or "metrics are `accuracy` and `topK` (top5: the true class among the 5 highest scores)"))
        elif loss_known and not config.classification:
            diag.add(_error(source, f"metric `{metric}` needs class scores, but the first loss term, "
                            f"`{config.loss[0].name}`, compares values", at,
                            hint="accuracies come with a classification loss (cross_entropy, nll)"))


# --- checks against the network ------------------------------------------------------------------------------


def _check(config: TrainConfig, broken: set[str], analysis: Analysis, source: Source, diag: Diagnostics) -> None:
    """`check_train`'s checks of a (possibly partial) config, skipping what `broken` keys feed."""
    outs = [_term_outputs(term, analysis, source, diag) for term in config.loss]
    if config.classification and outs[0] is not None:
        name = outs[0][0]
        scores = analysis.outputs[name][0] if analysis.outputs[name] else None
        if isinstance(scores, int):
            _check_topk(config, f"output `{name}` has {scores} scores", scores, source, diag)
    for aug in config.augment:
        for name, shape in analysis.inputs.items():
            problem = aug.entry.check(aug.args, shape)
            if problem:
                diag.add(_error(source, f"{aug.name} cannot augment input `{name}` of shape {_fmt(shape)}: {problem}",
                                aug.path))
    _check_param_groups(config, analysis, source, diag)
    _check_freeze(config, analysis, source, diag)
    if config.dataset is None or broken & {"data", "data.dataset", "data.transform", "data.inputs"}:
        return
    fields = config.dataset.entry.fields(config.dataset.args)
    if fields is not None:
        fields = _transformed(config, fields, source, diag)
        if fields is None:
            return
    _check_data(config, analysis, fields, source, diag)


def _term_outputs(term: LossTerm, analysis: Analysis, source: Source, diag: Diagnostics | None = None
                  ) -> tuple[str, ...] | None:
    """The network outputs a loss term reads, or None (reported to `diag` when given) when they do not exist."""
    outputs = analysis.outputs
    if term.outputs == (None,):
        if len(outputs) == 1:
            return (next(iter(outputs)),)
        if diag is not None:
            diag.add(_error(source, f"the network has {len(outputs)} outputs ({', '.join(outputs)}); say which loss "
                            f"`{term.choice.name}` reads", term.path,
                            hint=f"add `output: {next(iter(outputs))}` (say) to the loss term"))
        return None
    for name in term.outputs:
        if name not in outputs:
            if diag is not None:
                diag.add(_error(source, f"loss `{term.choice.name}` reads output `{name}`, which the network lacks",
                                _written(term, name), hint=did_you_mean(name, outputs)
                                or f"outputs: {', '.join(outputs)}"))
            return None
    return term.outputs


def _written(term: LossTerm, output: str) -> PathT:
    """Where a loss term names `output`: its `output:` key, or the argument of its loss that holds the name."""
    args = [k for k, v in term.choice.args if v == output] if term.choice.entry.outputs(term.choice.args) else []
    return term.choice.args_path + (args[0],) if args else term.path + ("output",)


def _check_param_groups(config: TrainConfig, analysis: Analysis, source: Source, diag: Diagnostics) -> None:
    """Each `param_groups` glob matches a layer with trainable parameters (or a parameter of one: `*.bias`)."""
    for i, group in enumerate(config.args.param_groups):
        for j, pattern in enumerate(group.params):
            _check_glob(pattern, ("train", "param_groups", i, "params", j), "this group would hold no parameters",
                        analysis, source, diag)


def _check_glob(pattern: str, at: PathT, empty: str, analysis: Analysis, source: Source, diag: Diagnostics) -> None:
    """Glob `pattern` matches a layer with trainable parameters; `empty` says what it would do otherwise."""
    layers = [s.name for s in analysis.layers]
    trainable = trainable_layers(analysis)
    if any(_covers(pattern, name) for name in trainable):
        return
    hit = [name for name in layers if _covers(pattern, name)]
    if hit:
        diag.add(_error(source, f"`{pattern}` matches only layers without trainable parameters ({few(hit, 3)})", at,
                        hint=f"{empty}; match the layers that have some"))
    else:
        diag.add(_error(source, f"`{pattern}` matches no layer of the network", at,
                        hint=did_you_mean(pattern, layers) or f"layers with parameters: {few(trainable, 6)}"))


def _check_freeze(config: TrainConfig, analysis: Analysis, source: Source, diag: Diagnostics) -> None:
    """`freeze` globs match layers with trainable parameters, `unfreeze` globs match layers that `freeze` freezes,
    and something trains in the first epoch."""
    args = config.args
    for j, pattern in enumerate(args.freeze):
        _check_glob(pattern, ("train", "freeze", j), "it would freeze nothing", analysis, source, diag)
    if args.unfreeze is not None:
        frozen = [name for name in trainable_layers(analysis) if any(_covers(p, name) for p in args.freeze)]
        if not args.freeze:
            diag.add(_error(source, "`unfreeze` has nothing to unfreeze: `freeze` is empty", ("train", "unfreeze"),
                            key=True, hint="list the layers to keep fixed at first in `freeze: [...]`"))
        for j, pattern in enumerate(args.unfreeze.layers if args.freeze else []):
            if not any(_covers(pattern, name) for name in frozen):
                diag.add(_error(source, f"`{pattern}` matches no layer that `freeze` freezes",
                                ("train", "unfreeze", "layers", j),
                                hint=did_you_mean(pattern, frozen) or f"frozen layers: {few(frozen, 6)}"))
    problem = nothing_trains(config, analysis)
    if problem is not None:
        message, at, hint = problem
        diag.add(_error(source, message, at, hint=hint))


def trainable_layers(analysis: Analysis) -> list[str]:
    """The layers with parameters that the network does not freeze (`frozen: true`), in order."""
    return [s.name for s in analysis.layers if s.params and s.trainable]


def nothing_trains(config: TrainConfig, analysis: Analysis) -> tuple[str, PathT, str] | None:
    """Why no parameter would train in the first epoch — (message, where, hint) — or None when some would."""
    trainable = trainable_layers(analysis)
    if not any(s.params for s in analysis.layers):
        return "nothing to train: the network has no parameters", ("train",), "a network to train needs layers " \
            "with weights (linear, conv2d, ...)"
    if not trainable:
        return "nothing to train: every layer with parameters is frozen (`frozen: true`)", ("train",), \
            "drop `frozen: true` from the layers to train"
    unfreeze = config.args.unfreeze
    thawed = unfreeze.layers if unfreeze is not None and unfreeze.at_epoch == 1 else []
    if config.args.freeze and all(frozen(name, config.args.freeze, thawed) for name in trainable):
        later = f" until epoch {unfreeze.at_epoch}" if unfreeze is not None and not thawed else ""
        return f"nothing to train: `freeze` freezes every trainable layer ({few(trainable, 3)}){later}", \
            ("train", "freeze"), "freeze the layers to keep (`features.*`) and leave the head out of the list"
    return None


def frozen(name: str, freeze: list[str], thawed: list[str]) -> bool:
    """Whether layer or parameter `name` is frozen by the `freeze` globs and not thawed by the `thawed` ones."""
    return any(matches(name, p) for p in freeze) and not any(matches(name, p) for p in thawed)


def few(names: list[str], n: int = 3) -> str:
    """The first `n` names, comma-separated, with `, ...` when there are more."""
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def _covers(pattern: str, layer: str) -> bool:
    """Whether glob `pattern` (netspec.train.optim.matches) matches `layer`, or may match one of its parameters:
    the part of the pattern before one of its dots matches the layer (`fc.weight`, `*.bias`, `attn.out_proj.*`)."""
    parts = pattern.split(".")
    return any(matches(layer, ".".join(parts[:i])) for i in range(len(parts), 0, -1))


def _transformed(config: TrainConfig, fields: dict[str, DataField], source: Source, diag: Diagnostics
                 ) -> dict[str, DataField] | None:
    """The fields after `transform` (each applies to every float field), or None after reporting a transform
    that does not apply."""
    for t in config.transform:
        out = {}
        for name, f in fields.items():
            if f.kind != "float":
                out[name] = f
                continue
            try:
                out[name] = DataField(tuple(t.entry.shape(t.args, f.shape)), f.kind, f.classes)
            except ValueError as exc:
                diag.add(_error(source, f"transform `{t.name}` cannot apply to the data's `{name}` "
                                f"({_fmt(f.shape)} per sample): {exc}", t.path))
                return None
        fields = out
    return fields


def _check_data(config: TrainConfig, analysis: Analysis, fields: dict[str, DataField] | None, source: Source,
                diag: Diagnostics) -> None:
    """Inputs read fields that exist and fit them; loss targets exist and fit the outputs; topK fits the classes.
    Without `fields` (a source that only loading tells), the mapping of inputs alone."""
    mapped = config.args.data.inputs
    path = ("train", "data", "inputs")
    reads = input_fields(config, analysis.inputs)
    strays = [name for name in reads if name not in analysis.inputs]
    for name in strays:
        diag.add(_error(source, f"`data.inputs` maps `{name}`, which is not an input of the network", path + (name,),
                        key=True, hint=did_you_mean(name, analysis.inputs)
                        or f"its inputs: {', '.join(analysis.inputs)}"))
    if mapped is None and len(analysis.inputs) > 1:
        diag.add(_error(source, f"the network has {len(analysis.inputs)} inputs ({', '.join(analysis.inputs)}); "
                        "say which data field each reads", ("train", "data"),
                        hint=f"`inputs: {{{', '.join(f'{n}: FIELD' for n in analysis.inputs)}}}` in `data:`"))
    else:
        for name, shape in analysis.inputs.items():
            if name not in reads:
                if not strays:  # else a stray name is the misspelling of this one
                    diag.add(_error(source, f"input `{name}` gets no data", path, hint=f"map it: `{name}: FIELD`"))
            elif fields is not None:
                where = path + (name,) if mapped is not None else config.transform[-1].path if config.transform \
                    else ("train", "data", "dataset")
                _check_input(name, shape, analysis.graph.inputs[name].dtype, reads[name], fields, where, source,
                             diag)
    if fields is None:
        return
    for i, term in enumerate(config.loss):
        out = _term_outputs(term, analysis, source)
        if term.target is not None and out is not None:
            scores = analysis.outputs[out[0]]
            classes = _check_target(term, out[0], scores, fields, source, diag)
            if i == 0 and classes and not (isinstance(scores[0], int) and scores[0] <= classes):  # else check_train's
                _check_topk(config, f"the data has {classes} classes", classes, source, diag)


def _check_input(name: str, shape, dtype: str, field_name: str, fields: dict[str, DataField], where: PathT,
                 source: Source, diag: Diagnostics) -> None:
    """Input `name` of `shape` and `dtype` reads `field_name`: it exists, holds that kind of values, and fits."""
    f = fields.get(field_name)
    if f is None:
        diag.add(_error(source, f"the data has no field `{field_name}` for input `{name}`", where,
                        hint=did_you_mean(field_name, fields) or f"its fields: {', '.join(fields)}"))
        return
    ids = dtype.startswith("int")
    if ids != (f.kind == "class"):
        held = "class ids" if f.kind == "class" else "float values"
        diag.add(_error(source, f"input `{name}` takes {'integer ids' if ids else 'float values'} ({dtype}), but the "
                        f"data's `{field_name}` holds {held}", where))
    elif not fits(f.shape, shape):
        unwritten = ("train",) not in source.marks and ("train",) not in source.key_marks
        hint = (f"the spec has no `train:` section, so it would train on the default data (digits, "
                f"{_fmt(f.shape)} per sample): write one whose `data:` fits input `{name}`") if unwritten \
            else _resize_hint(f.shape, shape)
        diag.add(_error(source, f"the data's `{field_name}` is {_fmt(f.shape)} per sample, which does not fit input "
                        f"`{name}` {_fmt(shape)}", where, hint=hint))


def _resize_hint(have: tuple, want) -> str:
    """How to make images `have` [C, H, W] fit input `want`: the `resize` that gives the input's size."""
    if len(have) == 3 and all(isinstance(d, int) for d in want):
        c, size = have[0], math.prod(want)
        side = math.isqrt(size // c)
        hw = tuple(want[1:]) if len(want) == 3 and want[0] == c else (side, side) if side * side * c == size \
            else None
        if hw is not None:
            return f"resize the images: `transform: [{{resize: [{hw[0]}, {hw[1]}]}}]` in `data:`"
    return "a field is reshaped to the input when their sizes agree; add a transform, or change the input"


def _check_target(term: LossTerm, out_name: str, out_shape, fields: dict[str, DataField], source: Source,
                  diag: Diagnostics) -> int | None:
    """The term's target field exists and fits output `out_name`; the number of classes it holds, if any."""
    f = fields.get(term.target)
    loss = term.choice.name
    if f is None:
        diag.add(_error(source, f"the data has no field `{term.target}` for loss `{loss}` to compare with",
                        term.path + ("target",),
                        hint=did_you_mean(term.target, fields) or f"its fields: {', '.join(fields)}"))
        return None
    if term.choice.entry.target == "class":
        if f.kind != "class":
            diag.add(_error(source, f"`{loss}` compares with class ids, but the data's `{term.target}` holds values "
                            f"({_fmt(f.shape)} per sample)", term.path,
                            hint="use mse, l1 or bce for values"))
        elif not out_shape or not fits(f.shape, out_shape[1:]):
            diag.add(_error(source, f"`{loss}` needs one score per class in output `{out_name}` ([C], or [C, ...] "
                            f"for {_fmt(f.shape)} class ids per sample), but it is {_fmt(out_shape)}",
                            term.path))
        elif f.classes and isinstance(out_shape[0], int) and out_shape[0] < f.classes:
            diag.add(_error(source, f"the data has {f.classes} classes but output `{out_name}` has {out_shape[0]} "
                            "scores", term.path, hint=f"make the last layer `linear: {f.classes}`"))
        else:
            return f.classes
    elif f.kind == "class" and tuple(out_shape) != (1,) and f.shape != tuple(out_shape):
        diag.add(_error(source, f"`{loss}` compares values, but the data's `{term.target}` holds class ids and output "
                        f"`{out_name}` is {_fmt(out_shape)}", term.path,
                        hint="use cross_entropy for class ids"))
    elif not fits(f.shape, out_shape):
        diag.add(_error(source, f"the data's `{term.target}` is {_fmt(f.shape)} per sample, which does not fit output "
                        f"`{out_name}` {_fmt(out_shape)}", term.path))
    return None


def _check_topk(config: TrainConfig, why: str, limit: int, source: Source, diag: Diagnostics) -> None:
    """Each `topK` metric has K ≤ `limit` classes to rank (`why` says where the limit comes from)."""
    for i, metric in enumerate(config.metrics):
        k = TOPK_RE.match(metric)
        if k and int(k[1]) > limit:
            diag.add(_error(source, f"`{metric}` ranks the true class among the {k[1]} highest scores, but {why}",
                            ("train", "metrics", i), hint=f"use a K of at most {limit}"))


def _error(source: Source, message: str, path: PathT, hint: str | None = None, key: bool = False) -> SpecError:
    """`source.error`, at the key of the nearest written mapping when `path` is not written (a default applies)."""
    while path and path not in source.marks and not (key and path in source.key_marks):
        path, key = path[:-1], True
    return source.error(message, path, hint, key)


def _fmt(shape) -> str:
    return "×".join(map(str, shape)) if len(shape) else "a scalar"
