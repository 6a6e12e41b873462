"""The lecture's sanity checks of "training in practice": an LR range test, overfitting one batch, and a
numerical gradient check. Each is a function with a pass/fail result and a one-line reason.

    from netspec.train.practice import gradcheck, lr_find, overfit_batch

    gradcheck("specs/lenet5.yaml")                    # does every layer's backward match its forward?
    overfit_batch("specs/cnn_digits.yaml", n=32)      # can the network and the loss learn at all?
    lr_find("specs/mlp_digits.yaml", out="runs/lr")   # which lr? lr_find.png, lr_find.csv, .suggested_lr

A result has `status` (`pass`, `fail`, or `skip` for a network over a check's size cap), `reason`
(one line), `line()` (`mlp_digits: overfit-batch passed: ...`) and `exit_code` (1 for a failure, else
0), plus the numbers behind them. `lr_find` and `overfit_batch` need the spec's `train:` section (its
data, loss and optimizer); `gradcheck` needs only the network. docs/training.md ("Training in
practice") walks through them in the lecture's order.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..analysis import analyze
from ..files import atomic_write
from ..spec import Spec, load
from . import checkpoint
from .config import check_train, nothing_trains
from .data import batches
from .defaults import (
    ATOL,
    BETA,
    CLASS_LOSS,
    DIVERGE,
    END_LR,
    EPS,
    FLOOR_GAP,
    GRAD_BATCH,
    GRAD_MAX_MACS,
    GRAD_MAX_PARAMS,
    LR_STEPS,
    MIN_FALL,
    OVERFIT_MAX_MACS,
    OVERFIT_N,
    OVERFIT_STEPS,
    RTOL,
    SLOPE_SPAN,
    START_LR,
    SYMBOLIC_DIM,
)
from .run import RunFolderError, new_folder, write_csv
from .session import Setup, configure

_WORD = {"pass": "passed", "fail": "failed", "skip": "skipped"}


@dataclass
class Result:
    """A check's verdict on a spec."""

    spec: str
    check: str  # "lr-find", "overfit-batch", "gradcheck"
    status: str  # "pass", "fail" or "skip" (over a size cap)
    reason: str  # one line

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def exit_code(self) -> int:
        """The command line's status: 1 for a failure, 0 for a pass or a skip."""
        return 1 if self.status == "fail" else 0

    def line(self) -> str:
        return f"{self.spec}: {self.check} {_WORD[self.status]}: {self.reason}"


# --- LR range test -------------------------------------------------------------------------------------------


@dataclass
class LRFindResult(Result):
    """The LR range test: the lr of each step, its training loss, the smoothed loss, and what they suggest."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggested_lr: float | None = None  # where the smoothed loss falls fastest against log lr
    lowest_lr: float | None = None  # where the smoothed loss is lowest
    diverged_lr: float | None = None  # where it passed DIVERGE × its lowest (or became NaN); None: END_LR reached
    settings: dict[str, float] = field(default_factory=dict)  # start_lr, end_lr, steps, beta, diverge
    files: list[Path] = field(default_factory=list)  # what `write` wrote

    def record(self) -> dict[str, Any]:
        """What lr_find.json holds (and summary.json's `lr_find`)."""
        return {"passed": self.passed, "suggested_lr": self.suggested_lr, "lowest_lr": self.lowest_lr,
                "diverged_lr": self.diverged_lr, "steps_run": len(self.lrs), **self.settings}

    def write(self, folder: str | Path) -> list[Path]:
        """lr_find.csv (step, lr, loss, smoothed_loss), lr_find.json (the choice) and lr_find.png into `folder`."""
        from .plots import lr_find_plot

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        rows = [{"step": i + 1, "lr": lr, "loss": loss, "smoothed_loss": smooth}
                for i, (lr, loss, smooth) in enumerate(zip(self.lrs, self.losses, self.smoothed))]
        write_csv(folder / "lr_find.csv", rows)
        atomic_write(folder / "lr_find.json", json.dumps(self.record(), indent=2) + "\n")
        png = lr_find_plot(folder / "lr_find.png", self.lrs, self.losses, self.smoothed, self.suggested_lr,
                           self.diverged_lr)
        self.files = [folder / "lr_find.csv", folder / "lr_find.json", png]
        return self.files

    @staticmethod
    def read(folder: str | Path) -> dict[str, Any]:
        """lr_find.json of a run folder (a run with `lr: auto` being resumed)."""
        path = Path(folder) / "lr_find.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise RunFolderError(f"{folder} trains with `lr: auto`, but its lr_find.json, which holds the lr the "
                                 "run chose, is missing or damaged") from None


def lr_find(spec: Spec | str | Path, *, out: str | Path | None = None, start_lr: float = START_LR,
            end_lr: float = END_LR, steps: int = LR_STEPS, beta: float = BETA, diverge: float = DIVERGE,
            overrides: dict | None = None, device: str | None = None, seed: int | None = None) -> LRFindResult:
    """The LR range test on the spec's training data, its files written into `out` (default
    `runs/<spec>-lr-find-<timestamp>`), a new or empty folder. Fails when the smoothed loss never falls by
    MIN_FALL. Raises SpecErrors for a wrong `train:` section, RunFolderError (before the test runs) when `out`
    holds files or cannot be created."""
    spec, config, analysis = configure(spec, {"device": device, "seed": seed}, None, overrides)
    check_train(config, analysis, spec)
    folder = new_folder(out, f"{spec.name}-lr-find")
    result = lr_range_test(Setup(spec, config, analysis, None, None, False, folder=False), start_lr, end_lr, steps,
                           beta, diverge)
    result.write(folder)
    return result


def lr_range_test(s: Setup, start_lr: float = START_LR, end_lr: float = END_LR, steps: int = LR_STEPS,
                  beta: float = BETA, diverge: float = DIVERGE) -> LRFindResult:
    """Train `s` for up to `steps` optimizer steps on its training batches (augmented, as in training; one batch
    per step), every parameter group's lr rising exponentially from `start_lr` to `end_lr`, until the smoothed
    loss exceeds `diverge` × its lowest. The weights, the optimizer's and the loss scaler's state, the random
    generators and the step count are restored afterwards, so training then starts as if the test had not run.

    The suggestion is the lr where the smoothed loss falls fastest: the most negative slope of smoothed loss
    against log10(lr), among the steps up to the lowest smoothed loss."""
    saved = _snapshot(s)
    lrs, losses, smoothed = [], [], []
    avg, best, diverged = 0.0, math.inf, None
    try:
        s.train_mode()
        stream = _endless(s)
        for i in range(steps):
            lr = start_lr * (end_lr / start_lr) ** (i / max(steps - 1, 1))
            for group in s.optimizer.param_groups:
                group["lr"] = lr
            batch = next(stream)
            with s.autocast():
                outs = s.forward(s.inputs(batch, train=True))
            total, _ = s.objective(outs, batch)
            loss = total.item()
            if not math.isfinite(loss):
                diverged = lr
                break
            avg = beta * avg + (1 - beta) * loss
            smooth = avg / (1 - beta ** (i + 1))
            lrs.append(lr)
            losses.append(loss)
            smoothed.append(smooth)
            if smooth > diverge * best:
                diverged = lr
                break
            best = min(best, smooth)
            s.backward(total)
            s.optimizer_step()
    finally:
        _restore(s, saved)
    settings = {"start_lr": start_lr, "end_lr": end_lr, "steps": steps, "beta": beta, "diverge": diverge}
    return _verdict(s.spec.name, lrs, losses, smoothed, diverged, settings)


def _verdict(name: str, lrs: list, losses: list, smoothed: list, diverged: float | None, settings: dict
             ) -> LRFindResult:
    import numpy as np

    result = LRFindResult(name, "lr-find", "fail", "", lrs, losses, smoothed, diverged_lr=diverged, settings=settings)
    if len(smoothed) < 3:  # too few points for a slope
        result.reason = (f"the loss diverged after {len(smoothed)} steps, at lr {diverged:.3g}: start lower"
                         if diverged is not None else f"{len(smoothed)} steps are too few: the test needs 3 at least")
        return result
    low = int(np.argmin(smoothed))
    result.lowest_lr = lrs[low]
    end = f"diverged at lr {diverged:.3g}" if diverged is not None else f"no divergence up to lr {lrs[-1]:.3g}"
    if smoothed[low] > (1 - MIN_FALL) * smoothed[0]:
        result.reason = (f"the smoothed loss never fell {MIN_FALL:.0%} below its start ({smoothed[0]:.4g}; lowest "
                         f"{smoothed[low]:.4g}) between lr {lrs[0]:.3g} and {lrs[-1]:.3g} ({end}): nothing learns")
        return result
    result.suggested_lr = lrs[_steepest(np.log10(lrs[:low + 1]), np.asarray(smoothed[:low + 1]))]
    result.status = "pass"
    result.reason = (f"suggested lr {result.suggested_lr:.3g}, where the smoothed loss falls fastest; lowest "
                     f"{smoothed[low]:.4g} at lr {lrs[low]:.3g}; {end}")
    return result


def _steepest(logs, smoothed) -> int:
    """The step where `smoothed` falls fastest against `logs` (log10 lr), measured over SLOPE_SPAN decades
    centred on each step (a step's neighbours alone differ mostly by the noise the smoothing leaves)."""
    import numpy as np

    k = max(1, round(SLOPE_SPAN / 2 / (logs[1] - logs[0])))
    if len(logs) <= 2 * k:
        return int(np.argmin(np.gradient(smoothed, logs)))
    slope = (smoothed[2 * k:] - smoothed[:-2 * k]) / (logs[2 * k:] - logs[:-2 * k])  # centred on steps k..n-k-1
    return k + int(np.argmin(slope))


def _snapshot(s: Setup) -> dict:
    return {"model": {k: v.detach().clone() for k, v in s.model.state_dict().items()},
            "optimizer": copy.deepcopy(s.optimizer.state_dict()), "scaler": s.scaler.state_dict(),
            "rng": checkpoint.rng_state(), "step": s.step}


def _restore(s: Setup, saved: dict) -> None:
    s.model.load_state_dict(saved["model"])
    s.optimizer.load_state_dict(saved["optimizer"])
    s.optimizer.zero_grad(set_to_none=True)
    s.scaler.load_state_dict(saved["scaler"])
    checkpoint.set_rng_state(saved["rng"])
    s.step = saved["step"]


def _endless(s: Setup):
    """The training batches of epoch 0, 1, 2, ... in their training order."""
    epoch = 0
    while True:
        yield from s.batches(s.splits.train, shuffle=True, epoch=epoch)
        epoch += 1


# --- overfitting one batch -----------------------------------------------------------------------------------


@dataclass
class OverfitResult(Result):
    samples: int = 0
    steps: int = 0  # optimizer steps taken
    threshold: float | None = None
    floor: float | None = None  # the judged loss with every output equal to its target (None: an absolute bar)
    losses: list[float] = field(default_factory=list)  # the judged loss before each step, and after the last


def overfit_batch(spec: Spec | str | Path, n: int = OVERFIT_N, *, steps: int = OVERFIT_STEPS,
                  threshold: float | None = None, lr: float | None = None, overrides: dict | None = None,
                  device: str | None = None, seed: int | None = None, max_macs: int = OVERFIT_MAX_MACS
                  ) -> OverfitResult:
    """Train on one batch of `n` training samples until the loss that fits the data falls to a threshold, for
    `steps` optimizer steps at most.

    The judged loss is the weighted sum of the terms that compare an output with a data field; terms without
    a target (a VAE's KL term) train but are not judged (they regularize; they do not fit the batch), and the
    total is judged when no term has a target. It passes at `threshold` when given; else, when every judged
    term compares class ids, at CLASS_LOSS above its floor (0, or with label smoothing the smoothed targets'
    entropy); else once it has closed 1 - FLOOR_GAP of the way from its start to its floor, its value with
    every output equal to its target (0 for mse and l1, the targets' entropy for bce on grey levels; an upper
    bound for a loss on logits).

    The batch is the first `n` samples of the first epoch's order, without augmentation; the network is in
    training mode (dropout as the spec has it, frozen batch norms excepted); the optimizer is the section's,
    with its lr (`lr` overrides it; `lr: auto`: the optimizer's default lr), weight decay, parameter groups,
    freezing and clipping, and no schedule. Fails when nothing trains, when no gradient reaches the trainable
    parameters, when the loss becomes NaN, or when it stays above the threshold; skips when a forward pass of
    the batch needs more than `max_macs` multiply-accumulates."""
    spec, config, analysis = configure(spec, {"device": device, "seed": seed}, lr, overrides)
    result = OverfitResult(spec.name, "overfit-batch", "fail", "", samples=n)
    problem = nothing_trains(config, analysis)
    if problem is not None:
        result.reason = f"{problem[0]}; hint: {problem[2]}"
        return result
    if analysis.macs is not None and analysis.macs * n > max_macs:
        result.status = "skip"
        result.reason = (f"a forward pass of {n} samples needs {analysis.macs * n:.3g} MACs, over the cap of "
                         f"{max_macs:.3g}; run it on a GPU with a higher max_macs, or fewer samples")
        return result
    check_train(config, analysis, spec)
    s = Setup(spec, config, analysis, None, None, False, folder=False)  # no schedule
    batch = next(batches(s.splits.train, n, True, config.args.seed, 0, s.device))
    result.samples = len(next(iter(batch.values())))
    inputs = s.inputs(batch)  # not augmented
    s.train_mode()
    judged = [i for i, t in enumerate(s.objective.terms) if t.target is not None] or None
    classes = judged is None or all(s.objective.terms[i].choice.entry.target == "class" for i in judged)
    blocked: list[str] = []
    for step in range(steps + 1):
        with s.autocast():
            outs = s.forward(inputs)
        total, values = s.objective(outs, batch)
        loss = total.item() if judged is None else sum(s.objective.terms[i].weight * values[
            s.objective.terms[i].name].item() for i in judged)
        result.losses.append(loss)
        result.steps = step
        if step == 0:
            result.floor, result.threshold = _threshold(s, outs, batch, judged, classes, loss, threshold)
        if not math.isfinite(loss):
            result.reason = f"the loss became {loss} after {step} steps: lower the lr"
            return result
        if loss <= result.threshold:
            result.status = "pass"
            result.reason = f"{_fell(s, result, judged)} to {loss:.4g} {_bar(result, classes)} in {step} steps on " \
                            f"{result.samples} samples"
            return result
        if step == steps:
            break
        if not total.requires_grad:
            result.reason = "the loss does not depend on any trainable parameter: no gradient flows back"
            return result
        s.backward(total)
        if step == 0:
            blocked = _blocked(s.model)
            if blocked and len(blocked) == sum(p.requires_grad for p in s.model.parameters()):
                result.reason = f"no gradient reaches any trainable parameter ({', '.join(blocked[:3])}, ...)"
                return result
        s.optimizer_step()
    result.reason = (f"{_fell(s, result, judged)} only to {min(result.losses):.4g} in {steps} steps on "
                     f"{result.samples} samples, not {_bar(result, classes)}: check the labels, the loss and the lr"
                     + (f"; no gradient reaches {', '.join(blocked[:3])}" if blocked else ""))
    return result


def _threshold(s: Setup, outs: dict, batch: dict, judged: list[int] | None, classes: bool, start: float,
               given: float | None) -> tuple[float | None, float]:
    """(floor, threshold) of the judged loss, which is `start` before training; no floor for an absolute bar.
    Class losses (`classes`) pass at CLASS_LOSS above their floor: 0, or with label smoothing the loss at the
    smoothed targets (a floor of 0 is left out, as an absolute bar)."""
    terms = s.objective.terms
    if given is not None:
        return None, given
    if judged is None:
        return None, CLASS_LOSS
    floor = 0.0
    with torch.no_grad():
        for i in judged:
            term, out = terms[i], outs[s.objective.outputs[i][0]]
            entry, target = term.choice.entry, batch[term.target]
            best = entry.best_output(term.choice.args, out, target)
            if best is not None:  # None: a floor of 0
                floor += term.weight * float(entry.compute(term.choice.args, [best], target))
    if classes:
        return floor or None, floor + CLASS_LOSS
    floor = min(max(floor, 0.0), start)
    return floor, floor + FLOOR_GAP * (start - floor)


def _fell(s: Setup, result: OverfitResult, judged: list[int] | None) -> str:
    names = "the loss" if judged is None or len(judged) == len(s.objective.terms) else \
        " + ".join(f"`{s.objective.terms[i].name}`" for i in judged)
    return f"{names} fell from {result.losses[0]:.4g}"


def _bar(result: OverfitResult, classes: bool) -> str:
    if result.floor is None:
        return f"(≤ {result.threshold:.3g})"
    if classes:
        return f"(≤ {result.threshold:.4g}: {CLASS_LOSS:g} above its floor {result.floor:.4g}, with label smoothing)"
    return f"(≤ {result.threshold:.4g}: {1 - FLOOR_GAP:.0%} of the way to its floor {result.floor:.4g})"


def _blocked(model: torch.nn.Module) -> list[str]:
    """The trainable parameters that got no gradient from a backward pass."""
    return [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]


# --- gradient check ------------------------------------------------------------------------------------------


@dataclass
class LayerCheck:
    name: str
    op: str
    passed: bool
    message: str = ""  # why it failed


@dataclass
class GradcheckResult(Result):
    layers: list[LayerCheck] = field(default_factory=list)  # every layer with something differentiable

    @property
    def failures(self) -> list[LayerCheck]:
        return [c for c in self.layers if not c.passed]


def gradcheck(spec: Spec | str | Path, *, batch: int = GRAD_BATCH, dims: dict[str, int] | None = None,
              seed: int = 0, max_params: int = GRAD_MAX_PARAMS, max_macs: int = GRAD_MAX_MACS) -> GradcheckResult:
    """Compare every layer's analytical gradients (its backward) with numerical ones (central differences), in
    float64, layer by layer: `torch.autograd.gradcheck` of each layer's forward, with respect to its float inputs
    and its parameters, on the shapes it sees in a forward pass of `batch` samples (symbolic dims bound by
    `dims`, else SYMBOLIC_DIM).

    Each layer gets fresh standard-normal inputs of those shapes — kinks (ReLU at 0) and ties (max-pooling
    equal values) then have probability 0, unlike activations recorded after a ReLU — and the integer ids the
    forward pass gave it (embeddings). The network is in eval mode (dropout off, batch norm on its running
    statistics) and torch's generator is reseeded before each evaluation, so a sampling layer
    (`reparameterize`) is a fixed function. Checking each layer alone names the one whose backward is wrong.
    Uses fast mode (random vector-Jacobian-vector products): its cost does not grow with a layer's size.
    Skips networks over `max_params` parameters or `max_macs` multiply-accumulates per sample."""
    from torch import fx

    from ..compiler import compile_graph, get_state

    spec = spec if isinstance(spec, Spec) else load(spec)
    analysis = analyze(spec)
    result = GradcheckResult(spec.name, "gradcheck", "fail", "")
    over = ([f"{analysis.total_params:,} params, over the cap of {max_params:,} (max_params)"]
            if analysis.total_params > max_params else []) + \
        ([f"{analysis.macs:.3g} MACs per sample, over the cap of {max_macs:.3g} (max_macs)"]
         if (analysis.macs or 0) > max_macs else [])
    if over:
        result.status = "skip"
        result.reason = " and ".join(over) + ": a float64 check of every layer would take long; raise the cap to run it"
        return result
    graph = analysis.graph
    sizes = dict(dims or {})
    with _reseeded(seed):
        compiled = compile_graph(graph, dtype=torch.float64)
        module = compiled.module.eval()
        inputs = [_example(d.shape, d.dtype, batch, sizes) for d in graph.inputs.values()]
        recorder = fx.Interpreter(module, garbage_collect_values=False)
        with torch.no_grad(), _reseeded(seed):
            recorder.run(*inputs)
        values = {name: recorder.env[node] for name, node in compiled.values.items()}
        for node in graph.nodes.values():
            holder = compiled.holders.get(node.name)
            state = get_state(module, node.name) if holder is not None else None
            check = _check_layer(node, holder, state, [values[i] for i in node.inputs], seed)
            if check is not None:
                result.layers.append(check)
    bad = result.failures
    shapes = ", ".join(f"{name} {list(x.shape)}" for name, x in zip(graph.inputs, inputs))
    if bad:
        result.reason = (f"{len(bad)} of {len(result.layers)} layers' gradients disagree: "
                         + "; ".join(f"`{c.name}` ({c.op}): {c.message}" for c in bad[:3])
                         + ("; ..." if len(bad) > 3 else ""))
    else:
        result.status = "pass"
        result.reason = f"the gradients of all {len(result.layers)} layers agree (float64; {shapes})"
    return result


def _example(shape, dtype: str, batch: int, sizes: dict[str, int]) -> torch.Tensor:
    """A batch for an input: standard-normal floats, or ids 0 (valid for any vocabulary)."""
    full = (batch, *(d if isinstance(d, int) else sizes.get(d, SYMBOLIC_DIM) for d in shape))
    if dtype.startswith("int"):
        return torch.zeros(full, dtype=torch.int64)
    return torch.randn(full, dtype=torch.float64)


@contextlib.contextmanager
def _reseeded(seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _check_layer(node, holder, state, xs: list, seed: int) -> LayerCheck | None:
    """gradcheck of one layer's forward with respect to its float inputs and parameters; None when it has
    neither."""
    from torch.autograd.gradcheck import GradcheckError
    from torch.func import functional_call

    slots = [i for i, x in enumerate(xs) if isinstance(x, torch.Tensor) and x.is_floating_point()]
    params = {} if holder is None else {"": state} if holder.is_parameter else dict(state.named_parameters())
    fresh = [torch.randn(xs[i].shape, dtype=torch.float64).requires_grad_() for i in slots]
    leaves = [p.detach().clone().requires_grad_() for p in params.values()]
    if not fresh and not leaves:
        return None
    labels = [f"input {slots.index(i)}" if len(slots) > 1 else "its input" for i in slots] + \
        [f"`{name}`" if name else "its value" for name in params]

    def forward(*args):
        ins = list(xs)
        for i, t in zip(slots, args):
            ins[i] = t
        ps = dict(zip(params, args[len(slots):]))
        m = None if holder is None else ps[""] if holder.is_parameter else \
            (lambda *a, **k: functional_call(state, ps, a, k))
        with _reseeded(seed):
            return node.entry.forward(m, node.args, ins)

    try:
        torch.autograd.gradcheck(forward, (*fresh, *leaves), eps=EPS, atol=ATOL, rtol=RTOL, fast_mode=True)
    except GradcheckError as exc:
        return LayerCheck(node.name, node.op, False, _explain(str(exc), labels))
    except RuntimeError as exc:  # a backward that fails outright
        return LayerCheck(node.name, node.op, False, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    return LayerCheck(node.name, node.op, True)


def _explain(message: str, labels: list[str]) -> str:
    """gradcheck's message as one line, its `input k` named (an input, or a parameter such as `weight`)."""
    found = re.search(r"with respect to input (\d+)", message)
    if found and "Jacobian mismatch" in message:
        return f"numerical and analytical gradients differ with respect to {labels[int(found[1])]}"
    return message.strip().splitlines()[0]


__all__ = ["GradcheckResult", "LRFindResult", "LayerCheck", "OverfitResult", "Result", "gradcheck", "lr_find",
           "lr_range_test", "overfit_batch"]
