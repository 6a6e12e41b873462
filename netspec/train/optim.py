"""Optimizers and learning-rate schedules: one registered entry each, built from torch.optim.

    optimizer: {sgd: {lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 5.0e-4}}
    param_groups:                      # by layer-name glob; the first match wins
      - {params: ["features.*"], lr: 1.0e-4}
    schedule: {cosine: {}, warmup_epochs: 1}

Weight decay is the lecture's L2 regularization (for `adamw`, decoupled from the
gradient: Loshchilov & Hutter, 2019). Every schedule is stepped after each optimizer
step, its epoch-valued arguments converted to steps, so it changes the lr exactly at
epoch boundaries where torch's epoch-stepped version would (`cosine` anneals every
step); `reduce_on_plateau` is stepped after each epoch with the monitored metric.
A linear warm-up (`warmup_epochs` or `warmup_steps`, from `warmup_start_factor`·lr)
may precede any schedule but `one_cycle`, which has its own. Every optimizer takes
`lr: auto`: the trainer runs an LR range test (netspec.train.practice.lr_find) and
builds the optimizer with the lr it suggests.
Torch is imported inside methods only.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from .registry import Args, Entry, Registry

PosFloat = Annotated[float, Field(gt=0)]
LR = PosFloat | Literal["auto"]  # `auto`: chosen by an LR range test before training (netspec.train.practice)
Decay = Annotated[float, Field(ge=0)]
Beta = Annotated[float, Field(ge=0, lt=1)]
Betas = Annotated[tuple[Beta, Beta], BeforeValidator(lambda v: tuple(v) if isinstance(v, list) else v)]  # [b1, b2]


class Optimizer(Entry):
    """An optimizer: `build(a, groups)` -> a torch.optim.Optimizer over parameter groups."""

    torch_name: ClassVar[str]
    main_arg = "lr"

    def build(self, a: Any, groups: list[dict], lr: float | None = None):
        """The torch optimizer; `lr` replaces the arguments' (required when they say `auto`)."""
        import torch

        kwargs = a.model_dump()
        if lr is not None:
            kwargs["lr"] = lr
        if kwargs["lr"] == "auto":
            raise ValueError("`lr: auto` must be resolved (by an LR range test) before the optimizer is built")
        return getattr(torch.optim, self.torch_name)(groups, **kwargs)

    def default_lr(self) -> float:
        """The lr its arguments default to."""
        return self.Args.model_fields["lr"].default


OPTIMIZERS: Registry[Optimizer] = Registry("optimizer")


class SGDArgs(Args):
    lr: LR = 0.01
    momentum: Beta = 0.0
    dampening: Annotated[float, Field(ge=0, le=1)] = 0.0
    nesterov: bool = False
    weight_decay: Decay = 0.0

    @model_validator(mode="after")
    def _nesterov(self):
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov momentum needs momentum > 0 and dampening 0")
        return self


@OPTIMIZERS.register
class SGD(Optimizer):
    """Stochastic gradient descent, with momentum and Nesterov momentum (torch.optim.SGD).

    Args: `lr` (main; `auto` runs an LR range test first), `momentum` (0.9 is usual), `dampening`, `nesterov`
    (needs momentum > 0; Sutskever et al., 2013), `weight_decay` (L2).

    Example: `optimizer: {sgd: {lr: 0.1, momentum: 0.9, nesterov: true}}`
    """

    name = "sgd"
    torch_name = "SGD"
    Args = SGDArgs


class AdamArgs(Args):
    lr: LR = 1e-3
    betas: Betas = (0.9, 0.999)
    eps: PosFloat = 1e-8
    weight_decay: Decay = 0.0
    amsgrad: bool = False


@OPTIMIZERS.register
class Adam(Optimizer):
    """Adam: per-parameter steps from running moments of the gradient (Kingma & Ba, 2015; torch.optim.Adam).

    Args: `lr` (main, 1e-3; `auto` runs an LR range test first), `betas`, `eps`, `weight_decay` (L2, added to the
    gradient), `amsgrad`.

    Example: `optimizer: {adam: {lr: 1.0e-3, weight_decay: 1.0e-4}}`
    """

    name = "adam"
    torch_name = "Adam"
    Args = AdamArgs


class AdamWArgs(AdamArgs):
    weight_decay: Decay = 0.01


@OPTIMIZERS.register
class AdamW(Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019; torch.optim.AdamW).

    Args: as `adam`; `weight_decay` defaults to 0.01 and shrinks the weights directly.

    Example: `optimizer: {adamw: {lr: 3.0e-4, weight_decay: 0.05}}`
    """

    name = "adamw"
    torch_name = "AdamW"
    Args = AdamWArgs


class RMSpropArgs(Args):
    lr: LR = 0.01
    alpha: Beta = 0.99
    eps: PosFloat = 1e-8
    momentum: Beta = 0.0
    centered: bool = False
    weight_decay: Decay = 0.0


@OPTIMIZERS.register
class RMSprop(Optimizer):
    """RMSprop: steps scaled by a running mean of squared gradients (Hinton's lecture 6e; torch.optim.RMSprop).

    Args: `lr` (main; `auto` runs an LR range test first), `alpha` (smoothing), `eps`, `momentum`,
    `centered`, `weight_decay`.

    Example: `optimizer: {rmsprop: {lr: 1.0e-3}}`
    """

    name = "rmsprop"
    torch_name = "RMSprop"
    Args = RMSpropArgs


def matches(name: str, pattern: str) -> bool:
    """Whether parameter or layer `name` falls under glob `pattern`: `features.*`, `fc`, `layer4.*.conv1`
    (a pattern naming a layer covers its parameters and sublayers)."""
    return fnmatch.fnmatchcase(name, pattern) or any(
        fnmatch.fnmatchcase(name[:i], pattern) for i, c in enumerate(name) if c == ".")


def param_groups(model, groups: list) -> list[dict]:
    """Trainable parameters split by the `param_groups` globs (the first match wins), each group with its
    own `lr`/`weight_decay` where given, the rest in a last default group. Empty groups are dropped."""
    buckets: list[list] = [[] for _ in range(len(groups) + 1)]
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        i = next((i for i, g in enumerate(groups) if any(matches(name, pat) for pat in g.params)), len(groups))
        buckets[i].append(p)
    out = []
    for g, params in zip([*groups, None], buckets):
        if params:
            extra = {} if g is None else {k: v for k, v in (("lr", g.lr), ("weight_decay", g.weight_decay))
                                          if v is not None}
            out.append({"params": params, **extra})
    return out


class Scheduler(Entry):
    """An lr schedule: `build(a, optimizer, steps_per_epoch, steps)` -> a torch lr_scheduler stepped after
    every optimizer step (`steps` of them, warm-up excluded); or, with `per_epoch`, after every epoch."""

    has_warmup: ClassVar[bool] = False
    per_epoch: ClassVar[bool] = False

    def build(self, a: Any, optimizer, steps_per_epoch: int, steps: int):
        raise NotImplementedError

    def spans_run(self, a: Any) -> bool:
        """Whether its length is the run's (`steps`), so that a resumed run cannot change its epochs."""
        return False


SCHEDULES: Registry[Scheduler] = Registry("schedule")


@SCHEDULES.register
class Constant(Scheduler):
    """The optimizer's lr throughout (after any warm-up): `schedule: {warmup_epochs: 2}` alone means this.

    Example: `schedule: constant`
    """

    name = "constant"

    def build(self, a, optimizer, steps_per_epoch, steps):
        import torch

        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


class StepArgs(Args):
    step_size: Annotated[int, Field(ge=1)]
    gamma: PosFloat = 0.1


@SCHEDULES.register
class Step(Scheduler):
    """Multiply the lr by `gamma` every `step_size` epochs (torch.optim.lr_scheduler.StepLR).

    Example: `schedule: {step: {step_size: 10, gamma: 0.1}}` or `schedule: {step: 10}`
    """

    name = "step"
    Args = StepArgs
    main_arg = "step_size"

    def build(self, a, optimizer, steps_per_epoch, steps):
        import torch

        return torch.optim.lr_scheduler.StepLR(optimizer, a.step_size * steps_per_epoch, a.gamma)


class MultiStepArgs(Args):
    milestones: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    gamma: PosFloat = 0.1


@SCHEDULES.register
class MultiStep(Scheduler):
    """Multiply the lr by `gamma` at each milestone epoch (torch.optim.lr_scheduler.MultiStepLR).

    Example: `schedule: {multistep: {milestones: [30, 60], gamma: 0.1}}` (ResNet's ImageNet recipe, in epochs)
    """

    name = "multistep"
    Args = MultiStepArgs
    main_arg = "milestones"

    def build(self, a, optimizer, steps_per_epoch, steps):
        import torch

        return torch.optim.lr_scheduler.MultiStepLR(optimizer, [m * steps_per_epoch for m in a.milestones],
                                                    a.gamma)


class ExponentialArgs(Args):
    gamma: PosFloat


@SCHEDULES.register
class Exponential(Scheduler):
    """Multiply the lr by `gamma` after every epoch (torch.optim.lr_scheduler.ExponentialLR, stepped per epoch).

    Example: `schedule: {exponential: 0.95}`
    """

    name = "exponential"
    Args = ExponentialArgs
    main_arg = "gamma"

    def build(self, a, optimizer, steps_per_epoch, steps):
        import torch

        # ExponentialLR stepped once per epoch is StepLR with one epoch per step
        return torch.optim.lr_scheduler.StepLR(optimizer, steps_per_epoch, a.gamma)


class CosineArgs(Args):
    T_max: Annotated[int, Field(ge=1)] | None = None
    eta_min: Annotated[float, Field(ge=0)] = 0.0


@SCHEDULES.register
class Cosine(Scheduler):
    """Cosine annealing from the lr to `eta_min` (Loshchilov & Hutter, "SGDR", 2017;
    torch.optim.lr_scheduler.CosineAnnealingLR), updated every step.

    lr_t = eta_min + ½(lr − eta_min)(1 + cos(π t / T)), t in steps after warm-up.

    Args: `T_max`: the length in epochs (default: the whole run after warm-up); `eta_min`.

    Example: `schedule: {cosine: {}, warmup_epochs: 1}`
    """

    name = "cosine"
    Args = CosineArgs
    main_arg = "T_max"

    def build(self, a, optimizer, steps_per_epoch, steps):
        import torch

        t_max = a.T_max * steps_per_epoch if a.T_max is not None else steps
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(t_max, 1), a.eta_min)

    def spans_run(self, a):
        return a.T_max is None


class OneCycleArgs(Args):
    max_lr: PosFloat | None = None
    pct_start: Annotated[float, Field(gt=0, lt=1)] = 0.3
    anneal_strategy: Literal["cos", "linear"] = "cos"
    div_factor: PosFloat = 25.0
    final_div_factor: PosFloat = 1e4


@SCHEDULES.register
class OneCycle(Scheduler):
    """The 1cycle policy: the lr rises to `max_lr`, then anneals far below the start (Smith & Topin, 2019;
    torch.optim.lr_scheduler.OneCycleLR), over the whole run, every step; it has its own warm-up.

    Args: `max_lr` (default: the optimizer's lr), `pct_start` (the rising fraction),
    `anneal_strategy`, `div_factor` (start = max_lr / div_factor), `final_div_factor`.

    Example: `schedule: {one_cycle: {max_lr: 0.01}}`
    """

    name = "one_cycle"
    Args = OneCycleArgs
    main_arg = "max_lr"
    has_warmup = True

    def build(self, a, optimizer, steps_per_epoch, steps):
        import torch

        max_lr = a.max_lr if a.max_lr is not None else [g["lr"] for g in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr, total_steps=max(steps, 1), pct_start=a.pct_start,
            anneal_strategy=a.anneal_strategy, div_factor=a.div_factor, final_div_factor=a.final_div_factor,
            cycle_momentum=False)

    def spans_run(self, a):
        return True


class PlateauArgs(Args):
    monitor: str = "val_loss"
    mode: Literal["min", "max"] | None = None
    factor: Annotated[float, Field(gt=0, lt=1)] = 0.1
    patience: Annotated[int, Field(ge=0)] = 10
    threshold: Annotated[float, Field(ge=0)] = 1e-4
    min_lr: Annotated[float, Field(ge=0)] = 0.0


@SCHEDULES.register
class ReduceOnPlateau(Scheduler):
    """Multiply the lr by `factor` when the monitored metric has not improved for `patience` epochs
    (torch.optim.lr_scheduler.ReduceLROnPlateau), checked after every epoch.

    Args: `monitor` (a column of metrics.csv: `val_loss`, `val_accuracy`, ...), `mode`
    (`min`, or `max`; by default `max` for accuracies and `min` otherwise), `factor`,
    `patience`, `threshold`, `min_lr`.

    Example: `schedule: {reduce_on_plateau: {patience: 3, factor: 0.5}}`
    """

    name = "reduce_on_plateau"
    Args = PlateauArgs
    main_arg = "patience"
    per_epoch = True

    def build(self, a, optimizer, steps_per_epoch, steps):
        import torch

        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=a.mode or mode_for(a.monitor), factor=a.factor, patience=a.patience,
            threshold=a.threshold, min_lr=a.min_lr)


def mode_for(metric: str) -> str:
    """`max` for accuracies (`val_accuracy`, `val_top5`), `min` for losses."""
    return "max" if metric.endswith("accuracy") or "_top" in metric else "min"


class LRSchedule:
    """A schedule with its optional linear warm-up, stepped by the trainer: `after_step()` after each optimizer
    step, `after_epoch(metrics)` after each epoch. Holds the torch schedulers' state for checkpoints.

    The lr a step uses is the one in force before its `after_step()`: warm-up steps 1..W use
    lr·(f + (1 − f)(s − 1)/W) for f = `warmup_start_factor`, and the main schedule then counts its steps
    (`total` of them, the run's steps after warm-up) from 0."""

    def __init__(self, schedule, optimizer, steps_per_epoch: int, epochs: int):
        import torch

        self.warm = schedule.warmup_steps or schedule.warmup_epochs * steps_per_epoch
        self.total = max(epochs * steps_per_epoch - self.warm, 1)
        entry, args = schedule.choice.entry, schedule.choice.args
        self.per_epoch = entry.per_epoch
        self.spans_run = entry.spans_run(args)
        self.monitor = getattr(args, "monitor", None)
        self.main = entry.build(args, optimizer, steps_per_epoch, self.total)
        # built after the main schedule, so that its first value (start_factor · lr) is the lr in force
        self.warmup = torch.optim.lr_scheduler.LinearLR(optimizer, schedule.warmup_start_factor, 1.0,
                                                        total_iters=self.warm) if self.warm else None
        self.steps = 0

    def after_step(self) -> None:
        self.steps += 1
        if self.steps <= self.warm:
            self.warmup.step()
        elif not self.per_epoch:
            self.main.step()

    def after_epoch(self, metrics: dict) -> None:
        if self.per_epoch and self.steps >= self.warm:
            self.main.step(metrics[self.monitor])

    def state_dict(self) -> dict:
        return {"steps": self.steps, "total": self.total, "main": self.main.state_dict(),
                "warmup": self.warmup.state_dict() if self.warmup else None}

    def load_state_dict(self, state: dict) -> None:
        self.steps = state["steps"]
        self.main.load_state_dict(state["main"])
        if self.warmup is not None:
            self.warmup.load_state_dict(state["warmup"])
