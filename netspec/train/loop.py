"""The training loop: epochs of optimizer steps, evaluation, early stopping and checkpoints.

`Trainer(setup).fit()` is the whole loop; everything it uses (the module, the
splits, the optimizer, the schedule, the loss terms, the run folder) is made in
`netspec.train.session`. One optimizer step is `accumulate_grad_batches` micro-batches,
each loss weighted by its share of the step's samples, so 2 micro-batches of 32
update exactly like one batch of 64. Metrics are averaged over samples. Under torchrun the same loop runs
in every process on its shard of each batch (netspec/train/distributed.py): the micro-batch weights then
count the samples of all processes, and metrics and the decision to stop are shared.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from .config import LossTerm
from .optim import mode_for


class Diverged(Exception):
    """The loss became NaN or infinite."""

    def __init__(self, epoch: int, step: int, terms: dict[str, float], checkpoint: str | None):
        self.epoch, self.step, self.terms, self.checkpoint = epoch, step, terms, checkpoint
        values = ", ".join(f"{k} {v:g}" for k, v in terms.items())
        super().__init__(f"the loss is not finite at epoch {epoch + 1}, step {step} ({values})")


@dataclass
class Objective:
    """The weighted loss terms, each bound to the network outputs it reads."""

    terms: list[LossTerm]
    outputs: list[tuple[str, ...]]  # per term: the output names it reads

    def __call__(self, outs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]):
        """(total, {term name: value}) for one batch; values are 0-dim float32 tensors. Call it outside autocast:
        half-precision outputs are cast up first, since losses need the precision (and autocast refuses some,
        such as binary_cross_entropy on CUDA)."""
        outs = {k: v.float() if v.dtype in (torch.float16, torch.bfloat16) else v for k, v in outs.items()}
        values = {}
        for term, names in zip(self.terms, self.outputs):
            target = batch[term.target] if term.target is not None else None
            values[term.name] = term.choice.entry.compute(term.choice.args, [outs[n] for n in names], target)
        weighted = [values[t.name] if t.weight == 1 else t.weight * values[t.name] for t in self.terms]
        return sum(weighted[1:], weighted[0]), values


@dataclass
class Metrics:
    """Sample-weighted means of an epoch's loss terms and accuracies (`accuracy`: top-1, `topK`: the true class
    among the K highest scores). Batch values stay on the device until `means`, so adding one needs no sync
    and no arithmetic: a batch's mean loss is weighted by its size `n` once, at the end."""

    topk: list[int]
    batch_means: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # name -> per batch: its mean value
    hits: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # name -> per batch: correct samples
    sizes: list[int] = field(default_factory=list)

    def add(self, n: int, total, values: dict, scores: torch.Tensor | None, labels: torch.Tensor | None) -> None:
        """One batch of `n` samples: its loss, its terms' values, and (classification) its scores (n, C, *)
        with the labels (n, *)."""
        loss = total.detach()
        for key, value in (("loss", total), *values.items()):
            self.batch_means.setdefault(key, []).append(loss if value is total else value.detach())
        if scores is not None:
            if 1 in self.topk:
                self.hits.setdefault("accuracy", []).append((scores.argmax(dim=1) == labels).sum())
            ks = [k for k in self.topk if k != 1]
            if ks:
                ranked = scores.topk(max(ks), dim=1).indices == labels.unsqueeze(1)
                for k in ks:
                    self.hits.setdefault(f"top{k}", []).append(ranked[:, :k].any(dim=1).sum())
        self.sizes.append(n)

    def means(self, prefix: str, world=None) -> dict[str, float]:
        """`{prefix}_{name}` -> the mean over the samples added (none added: no entries). With a `world` of
        several processes (netspec.train.distributed), over the samples all of them added: their sums and
        counts are gathered and added, so the mean is exact and the same on every process."""
        sums, count = self.sums()
        if world is not None and world.size > 1:
            parts = world.gather((sums, count))
            count = sum(c for _, c in parts)
            sums = {k: sum(s.get(k, 0.0) for s, _ in parts) for k in dict.fromkeys(k for s, _ in parts for k in s)}
        return {f"{prefix}_{k}": v / count for k, v in sums.items()} if count else {}

    def sums(self) -> tuple[dict[str, float], int]:
        """(name -> its sum over the samples added: a batch's mean × its size, or its hits; the samples added)."""
        if not self.sizes:
            return {}, 0
        sizes = torch.tensor(self.sizes, dtype=torch.float64)
        out = {k: float(torch.stack(v).cpu().double() @ sizes) for k, v in self.batch_means.items()}
        out.update((k, float(torch.stack(v).cpu().double().sum())) for k, v in self.hits.items())
        return out, sum(self.sizes)


class EarlyStopping:
    """Tracks the monitored metric; says when `patience` epochs passed without an improvement of more than
    `min_delta`, and keeps a copy of the best weights (`restore_best_weights`)."""

    def __init__(self, monitor: str = "val_loss", mode: str | None = None, patience: int | None = None,
                 min_delta: float = 0.0, restore_best_weights: bool = True):
        self.monitor, self.mode = monitor, mode or mode_for(monitor)
        self.patience, self.min_delta, self.restore = patience, min_delta, restore_best_weights
        self.best: float | None = None
        self.best_epoch = -1
        self.bad = 0
        self.best_weights: dict | None = None

    def update(self, value: float, epoch: int, model: torch.nn.Module) -> bool:
        """Record an epoch's value; True when it is the best so far."""
        gain = (self.best - value if self.mode == "min" else value - self.best) if self.best is not None else math.inf
        if gain > self.min_delta:
            self.best, self.best_epoch, self.bad = value, epoch, 0
            if self.restore:
                self.best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return True
        self.bad += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad": self.bad, "best_weights": self.best_weights}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.bad = state["best"], state["best_epoch"], state["bad"]
        self.best_weights = state["best_weights"]


class Trainer:
    """Runs a prepared `Setup` (netspec.train.session): `fit()` trains, evaluates and checkpoints."""

    def __init__(self, setup):
        self.s = setup

    def fit(self) -> dict[str, Any]:
        """Train from the setup's epoch to the last; the final metrics (test included)."""
        s = self.s
        for epoch in range(s.epoch, s.config.args.epochs):
            if s.stopper.should_stop:  # resumed after it stopped early
                break
            start = time.perf_counter()
            s.begin_epoch(epoch)
            row = {"epoch": epoch + 1, **self.train_epoch(epoch), **self.evaluate("val")}
            row.update(step=s.step, lr=s.run.steps[-1]["lr"], seconds=time.perf_counter() - start)
            s.run.log_epoch(row)
            if s.schedule is not None:
                s.schedule.after_epoch(row)
            improved = s.stopper.update(row[s.stopper.monitor], epoch, s.model)
            s.epoch = epoch + 1
            s.save("last.pt")
            if improved:
                s.save("best.pt")
            if s.world.agree(s.stopper.should_stop):  # rank 0's decision on every process: none trains on alone
                s.run.note(f"early stopping: {s.stopper.monitor} has not improved for {s.stopper.patience} epochs "
                           f"(best {s.stopper.best:.4g} at epoch {s.stopper.best_epoch + 1})")
                break
        if s.stopper.restore and s.stopper.best_weights is not None:
            s.model.load_state_dict(s.stopper.best_weights)
        return {**self.evaluate("train"), **self.evaluate("val"), **self.evaluate("test")}

    def train_epoch(self, epoch: int) -> dict[str, float]:
        s, args = self.s, self.s.config.args
        s.train_mode()
        metrics = Metrics(s.topk)
        accum = args.accumulate_grad_batches
        # per batch: (its samples that count, the samples of the micro-batch across processes); one process: (n, n)
        batches, sizes = s.train_batches(epoch)
        s.optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0  # the step's loss: the sample-weighted mean over its micro-batches (and processes)
        for i, batch in enumerate(s.progress(batches, epoch, len(sizes))):
            group = [m for _, m in sizes[i - i % accum: i - i % accum + accum]]
            n = sizes[i][0]
            last = i == len(sizes) - 1
            ends_step = i % accum == accum - 1 or last
            with s.syncing(ends_step):
                inputs = s.inputs(batch, train=True)
                with s.autocast():
                    outs = s.forward(inputs, train=True)
                total, values = s.objective(outs, batch)
                # the micro-batch's weight in the step's mean; DDP averages the gradients over the processes
                share = s.world.size * n / sum(group)
                loss = s.world.mean(total.item() * share)  # its part of the step's loss: the one sync of a micro-batch
                if not math.isfinite(loss):  # on every process at once: the mean is NaN when any part is
                    raise Diverged(epoch, s.step + 1, {k: float(v.detach()) for k, v in values.items()},
                                   s.last_checkpoint)
                s.backward(total if share == 1.0 else total * share)
            step_loss += loss
            if n:  # a padded sample counts in no metric
                metrics.add(n, total, values, *s.scores(outs, batch))
            if ends_step:
                lr = s.optimizer.param_groups[0]["lr"]  # the lr this step uses; the schedule moves it after
                every = args.grad_norms_every
                s.optimizer_step(log_grads=last if every is None else (s.step + 1) % every == 0)
                s.run.log_step({"epoch": epoch + 1, "step": s.step, "loss": step_loss, "lr": lr})
                step_loss = 0.0
        return metrics.means("train", s.world)

    @torch.no_grad()
    def evaluate(self, split_name: str) -> dict[str, float]:
        """Sample-averaged loss terms and accuracies on a split, in eval mode."""
        s = self.s
        s.model.eval()
        metrics = Metrics(s.topk)
        split = getattr(s.splits, split_name)
        for batch in s.eval_batches(split):
            with s.autocast():
                outs = s.forward(s.inputs(batch))
            total, values = s.objective(outs, batch)
            metrics.add(len(next(iter(batch.values()))), total, values, *s.scores(outs, batch))
        return metrics.means(split_name, s.world)
