"""`netspec.train`: a spec and its `train:` section become a run folder.

`train(spec, epochs=..., lr=..., out=..., resume=...)` validates the section (located
errors, before anything trains), loads the data, builds the module, and hands a
`Setup` to the loop (`netspec/train/loop.py`). `Setup` holds everything a step needs
and everything a checkpoint saves.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..analysis import Analysis, analyze
from ..spec import Spec, load
from . import checkpoint
from .augment import pipeline
from .config import SAFE_TO_CHANGE, TrainConfig, check_fields, check_train, lr_override, parse_train
from .data import INPUT, DataError, Field, Splits, batches, epoch_order, prepare
from .distributed import World
from .grads import GradMonitor
from .loop import Diverged, EarlyStopping, Objective, Trainer
from .optim import LRSchedule, param_groups
from .run import RunDir, RunFolderError, resolved_tree
from .transfer import Freezing, load_weights

OVERRIDES = ("epochs", "batch_size", "seed", "device")  # train keys a keyword argument of `train` sets


@dataclass
class Run:
    """A finished run: its folder and what `summary.json` holds."""

    path: Path
    summary: dict[str, Any]


def train(spec: Spec | str | Path, *, epochs: int | None = None, batch_size: int | None = None,
          lr: float | str | None = None, device: str | None = None, seed: int | None = None,
          out: str | Path | None = None, resume: str | Path | None = None, overrides: dict | None = None,
          progress: bool | None = None) -> Run:
    """Train `spec` as its `train:` section says; the run folder and its summary.

    Keyword arguments override the section (`lr` sets the optimizer's: a number or `"auto"`); `overrides`
    sets any dotted key (`{"optimizer.adam.weight_decay": 0.01}`). `out` names the run folder (default
    `runs/<spec>-<timestamp>`); `resume` continues the run in that folder exactly. Raises SpecError(s)
    for a wrong section, DataError for missing or malformed data, RunFolderError for an `out` folder that
    holds files or a run that cannot be resumed (its spec changed), CheckpointError, and Diverged when the
    loss becomes NaN or infinite. Started by torchrun (several processes), it trains with
    DistributedDataParallel (netspec/train/distributed.py, docs/distributed.md); every process returns the Run.
    """
    spec, config, analysis = configure(spec, dict(zip(OVERRIDES, (epochs, batch_size, seed, device))), lr, overrides)
    check_train(config, analysis, spec)
    setup = Setup(spec, config, analysis, out, resume, progress)
    try:
        final = Trainer(setup).fit()
        run = Run(setup.run.path, setup.finish(final))
    except Diverged as exc:  # on every process at the same step
        setup.run.note(f"stopped: {exc}")
        setup.world.close()
        raise
    setup.world.close()
    return run


def configure(spec: Spec | str | Path, given: dict[str, Any], lr: float | str | None = None,
              overrides: dict | None = None) -> tuple[Spec, TrainConfig, Analysis]:
    """The loaded spec, its `train:` section and its analysis. `given` sets train keys (those that are None are
    left out), `lr` the optimizer's lr, `overrides` any dotted key. Raises SpecErrors for a wrong section."""
    spec = spec if isinstance(spec, Spec) else load(spec)
    keys = {k: v for k, v in given.items() if v is not None}
    if lr is not None:
        keys.update(lr_override(spec.model.train or {}, lr))
    return spec, parse_train(spec, {**keys, **(overrides or {})}), analyze(spec)


class Setup:
    """Everything one run needs: the data, the module, the optimizer and schedule, and the run folder.

    With `folder=False` it is a bench for the practice checks (netspec.train.practice): no run folder, no
    schedule (a warm-up or one_cycle would move the lr the checks set), and `lr: auto` left at the
    optimizer's default lr for the caller to change."""

    def __init__(self, spec: Spec, config: TrainConfig, analysis, out, resume, progress: bool | None,
                 folder: bool = True):
        args = config.args
        self.spec, self.config, self.analysis = spec, config, analysis
        # under torchrun, one process of several (netspec/train/distributed.py); the practice benches train alone
        self.world = World.from_env() if folder else World()
        self.device = self.world.device(_device(args.device, spec))
        self.world.start(self.device)
        _seed_everything(args.seed, args.deterministic)
        self.started = time.perf_counter()
        root = Path(spec.file).parent
        self.splits = prepare(config, dict(analysis.inputs), root).to(self.device)
        if config.dataset.entry.fields(config.dataset.args) is None:  # only loading told them: check them now
            check_fields(config, analysis, spec, _fields(self.splits))
        self.augment = pipeline(config.augment)
        if self.augment is not None:
            self.augment = self.augment.to(self.device)
        self.splits = self.splits.with_inputs(train=self.augment is None)
        from ..compiler import build

        self.model = build(spec, device=self.device)
        self.loaded = load_weights(self.model, args, spec) if args.init_from is not None and resume is None \
            else None
        self.channels_last = args.channels_last
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.input_names = list(analysis.inputs)
        self.outputs = list(analysis.outputs)
        self.objective = Objective(config.loss, [tuple(n or self.outputs[0] for n in t.outputs) for t in config.loss])
        opt = config.optimizer
        self.auto_lr = opt.args.lr == "auto"  # built with the optimizer's default lr until the LR range test
        groups = param_groups(self.model, args.param_groups)
        self.own_lr = ["lr" in g for g in groups]  # the groups whose lr `param_groups` sets
        self.optimizer = opt.entry.build(opt.args, groups, opt.entry.default_lr() if self.auto_lr else None)
        self.grads = GradMonitor(self.model, [s.name for s in analysis.layers if s.params],
                                 scaled=args.precision == "fp16")
        self.freezing = Freezing(self.model, args, {n for n, node in analysis.graph.nodes.items() if node.frozen})
        self.freezing.apply(0)
        self.steps_per_epoch = math.ceil(math.ceil(self.splits.sizes()["train"] / (args.batch_size * self.world.size))
                                         / args.accumulate_grad_batches)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=args.precision == "fp16")
        es = args.early_stopping
        # without `early_stopping:`, best.pt still follows val_loss, and the run ends with its last weights
        self.stopper = EarlyStopping(**es.model_dump()) if es is not None else EarlyStopping(restore_best_weights=False)
        self.topk = sorted({1 if m == "accuracy" else int(m[3:]) for m in config.metrics}) \
            if config.classification else []
        self.epoch, self.step = 0, 0
        self.run, self.schedule = None, None
        self.lr_found: dict[str, Any] | None = None
        if folder:
            tree = resolved_tree(spec, config.raw)
            self.run = self.world.open_run(lambda: RunDir.open(spec.name, out, resume, tree, SAFE_TO_CHANGE, progress))
            if self.auto_lr:
                self._choose_lr(resume is not None)
        self.schedule = LRSchedule(config.schedule, self.optimizer, self.steps_per_epoch, args.epochs) \
            if config.schedule is not None and folder else None
        if resume is not None:
            self._resume()
        self.net = self.world.wrap(self.model)  # what trains: the module, or the module in DDP
        if folder:
            self.run.start(self.describe())
            if self.world.size > 1:
                self.run.note(f"distributed: {self.world.size} processes ({self.world.backend}), batch "
                              f"{args.batch_size} each, {args.batch_size * self.world.size} per step")
            for line in ([self.loaded.line()] if self.loaded else []) + (self._lr_lines() if self.lr_found else []):
                self.run.note(line)

    def _choose_lr(self, resumed: bool) -> None:
        """`lr: auto`: the LR range test's suggestion (or, resuming, the one the run recorded) becomes the lr of
        every parameter group without an lr of its own. Raises a SpecError at the lr when the test finds none."""
        from .practice import LRFindResult, lr_range_test

        if resumed:
            self.lr_found = LRFindResult.read(self.run.path)
        else:
            result = lr_range_test(self)
            if self.world.leader:
                result.write(self.run.path)
            if not result.passed:
                raise self.spec.source.error(f"lr: auto: {result.reason}", self.config.optimizer.args_path + ("lr",),
                                             hint="write the lr; `netspec lr-find SPEC` draws the curve")
            self.lr_found = result.record()
        for group, own in zip(self.optimizer.param_groups, self.own_lr):
            if not own:
                group["lr"] = self.lr_found["suggested_lr"]

    def _lr_lines(self) -> list[str]:
        found = self.lr_found
        return [f"lr: auto -> {found['suggested_lr']:.3g}, where the smoothed loss of an LR range test fell "
                f"fastest (lr_find.png)"]

    # --- one step --------------------------------------------------------------------------------------------
    def inputs(self, batch: dict, train: bool = False) -> dict[str, torch.Tensor]:
        """The spec's inputs from a batch (`data.inputs` maps them to fields); augmented when `train`."""
        xs = self.splits.inputs(batch, self.augment if train else None)
        if self.channels_last:
            xs = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in xs.items()}
        return xs

    def forward(self, inputs: dict, train: bool = False) -> dict[str, torch.Tensor]:
        """Output name -> tensor. A training step (`train`) runs through DDP when there are several processes, so
        that its backward pass averages their gradients; evaluation runs the module alone."""
        net = self.net if train else self.model
        return self.named(net(*[inputs[n] for n in self.input_names]))

    def syncing(self, sync: bool):
        """The context of a micro-batch's forward and backward pass: with several processes, gradients are
        averaged across them only when `sync` (the step's last micro-batch)."""
        return self.world.syncing(self.net, sync)

    def named(self, out) -> dict[str, torch.Tensor]:
        """What the module returned as output name -> tensor (a one-output module returns a tensor)."""
        return out if isinstance(out, dict) else {self.outputs[0]: out}

    def scores(self, outs: dict, batch: dict) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(class scores, labels) of the first loss term, for accuracy; (None, None) without classes."""
        if not self.topk:
            return None, None
        term, names = self.objective.terms[0], self.objective.outputs[0]
        return outs[names[0]].detach(), batch[term.target]

    def autocast(self):
        precision = self.config.args.precision
        if precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler.is_enabled() else loss).backward()

    def begin_epoch(self, epoch: int) -> None:
        """Freeze and thaw parameters for `epoch` (counted from 0), noting layers `unfreeze` turns on."""
        thawed = self.freezing.apply(epoch)
        self.world.seed_epoch(self.config.args.seed, epoch)
        if thawed:
            self.net = self.world.wrap(self.model)  # DDP averages the gradients of what trained when it was made
        if thawed and self.run is not None:
            n = sum(self.freezing.params[name].numel() for name in thawed)
            self.run.note(f"epoch {epoch + 1}: unfreezing {', '.join(self.freezing.thawed)} ({n:,} params)")

    def train_mode(self) -> None:
        """Training mode, but for frozen layers with running statistics (batch norm), which keep them."""
        self.model.train()
        for module in self.freezing.still():
            module.eval()

    def optimizer_step(self, log_grads: bool = False) -> None:
        """Clip (after unscaling), step, zero the gradients, advance the schedule. With `log_grads`, first log
        each layer's gradient norm (unscaled, before clipping) to the run folder."""
        args = self.config.args
        clip = args.clip_grad_norm is not None or args.clip_grad_value is not None
        if clip or log_grads:
            self.scaler.unscale_(self.optimizer)
        if log_grads:
            norms, warnings = self.grads.record()
            self.run.log_grads({"epoch": self.epoch + 1, "step": self.step + 1, **norms})
            for warning in warnings:
                self.run.note(f"step {self.step + 1}: {warning}")
        if clip:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            if args.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, args.clip_grad_norm)
            else:
                torch.nn.utils.clip_grad_value_(params, args.clip_grad_value)
        if self.scaler.is_enabled():
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        if self.schedule is not None:
            self.schedule.after_step()

    def batches(self, split: dict, shuffle: bool, epoch: int):
        """The batches of a split, of what a step reads (`read`)."""
        return batches(self.read(split), self.config.args.batch_size, shuffle, self.config.args.seed, epoch,
                       self.device)

    def read(self, split: dict) -> dict:
        """What a step reads of a split: the targets of the loss terms, and each input made once
        (`Splits.with_inputs`) or else its field."""
        targets = {t.target for t in self.config.loss if t.target is not None}
        made = {f for name, f in self.splits.input_fields.items() if (INPUT, name) in split}
        return {k: v for k, v in split.items() if k in targets or k not in made}

    def train_batches(self, epoch: int):
        """(batches, sizes): this process's training batches of epoch `epoch`, and for each (the samples in it
        that count, the samples of its micro-batch across all processes) — (b, b) with one process; with
        several, its shard (`World.shard`), where a padded sample counts 0."""
        split, args = self.splits.train, self.config.args
        n = len(next(iter(split.values())))
        if self.world.size == 1:
            return self.batches(split, True, epoch), [(b, b) for b in self.batch_sizes(n)]
        shard = self.world.shard(epoch_order(n, args.seed, epoch).to(self.device), args.batch_size)
        tensors = self.read(split)
        return ({k: v[at] for k, v in tensors.items()} for at, _, _ in shard), [(k, m) for _, k, m in shard]

    def eval_batches(self, split: dict):
        """The batches of an evaluated split, in order: with several processes, this process's share."""
        return self.batches(self.world.part(split), False, 0)

    def batch_sizes(self, n: int) -> list[int]:
        """The sizes of an epoch's batches (the last may be short)."""
        b = self.config.args.batch_size
        return [min(b, n - i) for i in range(0, n, b)]

    def progress(self, iterable, epoch: int, total: int):
        return self.run.progress(iterable, f"epoch {epoch + 1}/{self.config.args.epochs}", total)

    # --- checkpoints -----------------------------------------------------------------------------------------
    @property
    def last_checkpoint(self) -> str | None:
        path = self.run.path / "last.pt"
        return str(path) if path.exists() else None

    def save(self, name: str) -> None:
        """Write checkpoint `name` into the run folder (rank 0 alone, with several processes)."""
        if not self.world.leader:
            return
        checkpoint.save(self.run.path / name, {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule else None, "scaler": self.scaler.state_dict(),
            "stopper": self.stopper.state_dict(), "epoch": self.epoch, "step": self.step,
            "train": self.config.raw})

    def _resume(self) -> None:
        """Continue from the run folder's last.pt: weights, optimizer, schedule, scaler, early stopping, RNGs.
        Raises CheckpointError when it does not fit this network, RunFolderError when the run's new `epochs`
        would stretch a schedule that spans the run."""
        path = self.run.path / "last.pt"
        state = checkpoint.load(path, map_location=self.device)
        saved = state["schedule"]
        if self.schedule is not None and self.schedule.spans_run and saved and saved["total"] != self.schedule.total:
            raise RunFolderError(f"{self.run.path}: its `{self.config.schedule.choice.name}` schedule spans the run "
                                 f"({saved['total']} steps), so `epochs` cannot change when resuming it")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.schedule is not None and saved is not None:
                self.schedule.load_state_dict(saved)
            self.scaler.load_state_dict(state["scaler"])
            self.stopper.load_state_dict(state["stopper"])
            checkpoint.set_rng_state(state["rng"])
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:  # a checkpoint of another network
            raise checkpoint.CheckpointError(f"{path} does not fit this run: {exc}".splitlines()[0]) from None
        self.epoch, self.step = state["epoch"], state["step"]
        self.run.truncate(self.epoch, self.step)

    # --- the run folder --------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        sizes = self.splits.sizes()
        return {"spec": self.spec.name, "device": str(self.device), "params": self.analysis.total_params,
                "samples": sizes, "epochs": self.config.args.epochs, "resumed_at_epoch": self.epoch or None}

    def finish(self, final: dict[str, float]) -> dict[str, Any]:
        """Write summary.json and the plots; the summary."""
        from .. import __version__

        summary = {
            "spec": self.spec.name, "epochs_run": self.epoch, "steps": self.step,
            "best_epoch": self.stopper.best_epoch + 1, "monitor": self.stopper.monitor,
            "best_value": self.stopper.best, "stopped_early": self.stopper.should_stop,
            "restored_best_weights": bool(self.stopper.restore and self.stopper.best_weights is not None),
            **final,
            "params": self.analysis.total_params, "trainable_params": self.analysis.trainable_params,
            "samples": self.splits.sizes(), "device": str(self.device), "precision": self.config.args.precision,
            "wall_seconds": round(time.perf_counter() - self.started, 3),
            "versions": {"netspec": __version__, "torch": torch.__version__, "python": sys.version.split()[0]},
        }
        if self.world.size > 1:
            summary["distributed"] = {"processes": self.world.size, "backend": self.world.backend,
                                      "batch_per_step": self.config.args.batch_size * self.world.size}
        if self.lr_found is not None:
            summary["lr_find"] = self.lr_found
        if self.loaded is not None:
            summary["init_from"] = {"path": self.loaded.path, "loaded": len(self.loaded.loaded),
                                    "missing": self.loaded.missing, "unexpected": self.loaded.unexpected,
                                    "mismatched": [k for k, _, _ in self.loaded.mismatched]}
        self.run.finish(summary, self)
        return summary


def _device(name: str, spec: Spec) -> torch.device:
    """The torch device `train.device` names (`auto`: CUDA when there is one); a SpecError at `train.device`
    when torch cannot use it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    count = torch.cuda.device_count()
    if device.type == "cuda" and (device.index or 0) >= count:
        problem = f"torch sees {count} CUDA device{'s' if count != 1 else ''}"
    elif device.type == "mps" and not torch.backends.mps.is_available():
        problem = "torch has no MPS backend here"
    else:
        return device
    raise spec.source.error(f"device `{name}` is not available: {problem}", ("train", "device"),
                            hint="use `device: auto` or `--device cpu`")


def _fields(splits: Splits) -> dict[str, Field]:
    """The per-sample fields of loaded splits: int64 tensors hold class ids (`y`'s count is known)."""
    return {name: Field(tuple(t.shape[1:]), "class", splits.classes if name == "y" else None) if t.dtype == torch.int64
            else Field(tuple(t.shape[1:]), "float") for name, t in splits.train.items()}


def _seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA); in deterministic mode, make torch pick deterministic
    kernels (and fail on ops that have none), else let it pick any (an earlier run in this process may have
    asked for deterministic ones)."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False


__all__ = ["DataError", "Diverged", "Run", "RunFolderError", "train"]
