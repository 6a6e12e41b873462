"""Hyperparameter search over `train:` keys on optuna: a grid, random or TPE search, one run folder per trial,
trials in parallel processes, a results table sorted by the monitored metric, and the best resolved spec.

    from netspec.train.sweep import sweep

    result = sweep("specs/mlp_digits.yaml", {"optimizer.adam.lr": [1e-4, 1e-3, 1e-2]}, jobs=2,
                   fixed={"epochs": 5}, out="runs/lr-sweep")
    result.best.params, result.best.value       # {'optimizer.adam.lr': 0.01}, its best val_loss
    print(result.table())

The keys are the dotted keys `netspec train --set` takes. Every value is checked against the spec (with
`fixed`) before any trial runs. The sampler picks among the listed values: `grid` runs every combination
once (optuna's GridSampler), `random` and `tpe` (the Tree-structured Parzen Estimator, Bergstra et al.,
"Algorithms for hyper-parameter optimization", 2011) run `trials` trials, drawing a value of each key
independently (random) or from a model of the results so far (tpe); both may draw a combination twice.

Trials are ranked by the best value their monitored metric reached (`summary.json`'s `best_value`): the
section's `early_stopping.monitor` and mode, else `val_loss`, lower is better. The sweep folder holds

    trial-000/, trial-001/, ...   one run folder per trial (netspec.train's files)
    results.csv                   one row per trial, best first: rank, trial, each swept key, the metric,
                                  the test loss (and accuracy), epochs, seconds, status, why a trial failed
    results.json                  the same rows, with the sweep's settings
    best.yaml                     the best trial's resolved spec (its spec.yaml): `netspec train best.yaml`

Only this process's main thread talks to optuna (a study in memory, through its ask-and-tell interface): it
asks for up to `jobs` trials at a time and hands each to a worker of a pool of `jobs` processes (started with
`spawn`, not forked from this one), which trains into the trial's own folder, so no two processes write one
file; it tells optuna each result as it comes. Each worker uses cpu_count // jobs torch threads. A trial that
fails (its loss diverged, its combination of values does not fit) is listed last with why; the others go on.
Ctrl-C ends the workers at once and writes the results so far.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis import analyze
from ..errors import SpecError, SpecErrors
from ..files import atomic_write
from ..spec import Spec, load
from .config import check_train, parse_train
from .defaults import SAMPLERS
from .optim import mode_for
from .run import new_folder, write_csv

RANKED_BY = ("early_stopping.monitor", "early_stopping.mode")  # keys a sweep cannot vary: they rank the trials


class SweepError(Exception):
    """A sweep that cannot be meant (a key swept and fixed at once, no trial count for a random search)."""


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by Ctrl-C, after writing the results so far (`result`)."""

    def __init__(self, result: SweepResult):
        super().__init__(f"the sweep was interrupted; the results so far are in {result.path}")
        self.result = result


class GridErrors(SpecErrors):
    """Swept values that do not fit the spec: its errors, each with a note naming the value."""


@dataclass
class Trial:
    """One trial: the values it ran with, its run folder, and how it ended."""

    number: int
    params: dict[str, Any]
    path: Path
    status: str = "running"  # then "done", "failed" or "interrupted"
    value: float | None = None  # the best value of the monitored metric
    reason: str = ""  # why it failed
    summary: dict[str, Any] = field(default_factory=dict)  # its summary.json

    def finish(self, outcome: tuple[str, Any]) -> None:
        """Record a worker's (status, summary or reason)."""
        status, detail = outcome
        if status == "done":
            value = detail.get("best_value")
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.status, self.value, self.summary = "done", float(value), detail
                return
            detail = f"its monitored metric has no value ({value}): is the val split empty?"
        self.status, self.reason = "failed", detail

    def row(self, rank: int | None, monitor: str) -> dict[str, Any]:
        s = self.summary
        row = {"rank": rank if rank is not None else "", "trial": self.path.name, **self.params,
               monitor: self.value if self.value is not None else ""}
        row.update({k: s[k] for k in ("test_loss", "test_accuracy") if k in s})
        row.update({"best_epoch": s.get("best_epoch", ""), "epochs_run": s.get("epochs_run", ""),
                    "seconds": s.get("wall_seconds", ""), "status": self.status, "reason": self.reason})
        return row


@dataclass
class SweepResult:
    """A finished sweep: its folder, the metric that ranks the trials, and the trials, best first."""

    path: Path
    monitor: str
    mode: str  # "min" or "max"
    keys: list[str]
    trials: list[Trial]  # done trials by value (ties: by number), then the failed ones
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Trial | None:
        return self.trials[0] if self.trials and self.trials[0].status == "done" else None

    def rows(self) -> list[dict[str, Any]]:
        ranks = iter(range(1, len(self.trials) + 1))
        return [t.row(next(ranks) if t.status == "done" else None, self.monitor) for t in self.trials]

    def write(self) -> None:
        """results.csv, results.json and (when a trial finished) best.yaml into the sweep folder."""
        rows = self.rows()
        write_csv(self.path / "results.csv", [{k: _json(v) for k, v in row.items()} for row in rows])
        best = self.best
        record = {**self.settings, "monitor": self.monitor, "mode": self.mode,
                  "best": None if best is None else {"trial": best.path.name, "params": best.params,
                                                     self.monitor: best.value},
                  "trials": rows}
        atomic_write(self.path / "results.json", json.dumps(record, indent=2, default=str) + "\n")
        if best is not None:
            atomic_write(self.path / "best.yaml", (best.path / "spec.yaml").read_text(encoding="utf-8"))

    def table(self) -> str:
        """The results as aligned text columns, best first."""
        shown = ["rank", "trial", *self.keys, self.monitor, "test_loss", "test_accuracy", "status"]
        rows = self.rows()
        columns = [c for c in shown if any(c in row for row in rows)]
        cells = [columns] + [[_cell(row.get(c, "")) for c in columns] for row in rows]
        widths = [max(len(str(line[i])) for line in cells) for i in range(len(columns))]
        lines = ["  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells]
        lines += [f"{t.path.name}: {t.reason}" for t in self.trials if t.status == "failed"]
        return "\n".join(lines)


def sweep(spec: str | Path, grid: dict[str, list], *, sampler: str = "grid", trials: int | None = None,
          jobs: int = 1, out: str | Path | None = None, fixed: dict | None = None, seed: int = 0,
          on_trial: Callable[[Trial], None] | None = None) -> SweepResult:
    """Train `spec` once per trial, each with one value of every key of `grid` (dotted `train:` key -> the
    values to try) and the overrides `fixed`, into `out` (default `runs/<spec>-sweep-<timestamp>`), `jobs`
    trials at a time; the trials ranked, with results.csv, results.json and best.yaml written.

    `sampler` is `grid` (every combination; `trials`, when given, at most their number), `random` or `tpe`
    (`trials` required); `seed` seeds the sampler. `on_trial` is called with each trial as it ends. Raises
    SpecErrors when the spec (with `fixed`) is wrong, GridErrors when a swept value does not fit it, SweepError
    for a sweep that cannot be meant, RunFolderError for an `out` that holds files or cannot be created.

    Interrupted (Ctrl-C), it stops the workers at once, writes the results of the trials that finished (the
    interrupted ones listed last, `interrupted`) and raises SweepInterrupted, a KeyboardInterrupt holding
    them. A worker that dies (killed, out of memory) fails its trial and ends the sweep the same way, without
    the exception."""
    import optuna

    spec_obj = load(spec)
    fixed = dict(fixed or {})
    check_grid(spec_obj, grid, fixed)
    count = trial_count(sampler, grid, trials)
    monitor, mode = ranking(spec_obj, fixed)
    folder = new_folder(out, f"{spec_obj.name}-sweep")
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial's line is on_trial's to print
    study = optuna.create_study(direction="minimize" if mode == "min" else "maximize",
                                sampler=_sampler(sampler, grid, seed))
    jobs = min(jobs, count)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    settings = {"spec": str(spec), "sampler": sampler, "trials": count, "jobs": jobs, "seed": seed,
                "grid": grid, "fixed": fixed}
    started: list[Trial] = []
    running: dict[Future, tuple[Any, Trial]] = {}  # a worker's future -> (optuna's trial, ours)

    def result() -> SweepResult:
        return SweepResult(folder, monitor, mode, list(grid), _ranked(started, mode), settings)

    def tell(asked, trial: Trial, outcome: tuple[str, Any]) -> None:
        trial.finish(outcome)
        study.tell(asked, trial.value if trial.status == "done" else None,
                   optuna.trial.TrialState.COMPLETE if trial.status == "done" else optuna.trial.TrialState.FAIL)
        if on_trial is not None:
            on_trial(trial)

    before = set(multiprocessing.active_children())
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            while running or len(started) < count:  # optuna is asked and told here only, in this thread
                while len(running) < jobs and len(started) < count:
                    asked = study.ask()
                    params = {key: values[asked.suggest_categorical(key, list(range(len(values))))]
                              for key, values in grid.items()}  # by index: a value may be a list
                    trial = Trial(asked.number, params, folder / f"trial-{asked.number:03d}")
                    running[pool.submit(run_trial, str(spec_obj.file), {**fixed, **params}, str(trial.path),
                                        threads)] = (asked, trial)
                    started.append(trial)  # after the submit, which a broken pool refuses
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    outcome = future.result()  # before the pop: a broken pool leaves the trial in `running`
                    tell(*running.pop(future), outcome)
        except BrokenProcessPool:  # the pool cannot run another trial
            for asked, trial in running.values():
                tell(asked, trial, ("failed", "its worker process died (killed, or out of memory?); the sweep "
                                              "stopped"))
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            workers = set(multiprocessing.active_children()) - before  # the pool's
            for process in workers:
                process.terminate()
            for process in workers:
                process.join()
            for _, trial in running.values():
                trial.status, trial.reason = "interrupted", "the sweep was interrupted"
            so_far = result()
            so_far.write()
            raise SweepInterrupted(so_far) from None
    finished = result()
    finished.write()
    return finished


def check_grid(spec: Spec, grid: dict[str, list], fixed: dict) -> None:
    """Check, before anything trains, the spec with `fixed` (SpecErrors), then each swept value on its own with
    `fixed` (GridErrors, each error noting the value); SweepError for a key that is swept and fixed, or that
    ranks the trials, or that has no values."""
    for key, values in grid.items():
        if key in fixed:
            raise SweepError(f"`{key}` is both swept and set: drop one")
        if key in RANKED_BY:
            raise SweepError(f"`{key}` ranks the trials, so it cannot vary between them: set it instead")
        if not values:
            raise SweepError(f"`{key}` has no values to try")
    analysis = analyze(spec)
    check_train(parse_train(spec, fixed), analysis, spec)
    found: dict[str, tuple[SpecError, list[str]]] = {}  # one error whatever the value (an unknown key) once
    for key, values in grid.items():
        for value in values:
            try:
                check_train(parse_train(spec, {**fixed, key: value}), analysis, spec)
            except (SpecError, SpecErrors) as exc:
                for e in exc.errors:
                    found.setdefault(e.format(), (e, []))[1].append(f"{key}={json.dumps(value, default=str)}")
    if found:
        raise GridErrors([dataclasses.replace(e, notes=[*e.notes, f"with the swept value{'s' * (len(v) > 1)} "
                                                        + ", ".join(v)]) for e, v in found.values()])


def trial_count(sampler: str, grid: dict[str, list], trials: int | None) -> int:
    """How many trials run: every combination of a grid (at most `trials`), else `trials`."""
    if sampler not in SAMPLERS:
        raise SweepError(f"unknown sampler `{sampler}`; known: {', '.join(SAMPLERS)}")
    size = math.prod(len(values) for values in grid.values())
    if sampler != "grid":
        if trials is None:
            raise SweepError(f"a {sampler} search needs a number of trials (the grid has {size} combinations)")
        return trials
    if trials is not None and trials > size:
        raise SweepError(f"the grid has {size} combinations, fewer than the {trials} trials asked for")
    return size if trials is None else trials


def ranking(spec: Spec, fixed: dict) -> tuple[str, str]:
    """(the monitored metric, `min` or `max`): the section's early stopping, else val_loss."""
    es = parse_train(spec, fixed).args.early_stopping
    if es is None:
        return "val_loss", "min"
    return es.monitor, es.mode or mode_for(es.monitor)


def run_trial(spec: str, overrides: dict, out: str, threads: int) -> tuple[str, Any]:
    """In a worker: train `spec` with `overrides` into `out`; ("done", its summary) or ("failed", why)."""
    import torch

    from .checkpoint import CheckpointError
    from .data import DataError
    from .loop import Diverged
    from .run import RunFolderError
    from .session import train

    torch.set_num_threads(threads)
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):  # log.txt keeps the lines
            run = train(spec, out=out, overrides=overrides, progress=False)
    except (SpecError, SpecErrors) as exc:
        return "failed", "; ".join(f"{e.location}: {e.message}" for e in exc.errors)
    except (DataError, CheckpointError, RunFolderError, Diverged) as exc:
        return "failed", str(exc).splitlines()[0]
    return "done", run.summary


def _sampler(name: str, grid: dict[str, list], seed: int):
    import optuna

    if name == "grid":

        class Grid(optuna.samplers.GridSampler):
            """GridSampler without its stop after the last combination: that stop calls `study.stop()`, which
            raises outside `study.optimize` (optuna issue #5141; its docs note it for ask-and-tell). The sweep
            asks for exactly the trials it runs, so it needs no stop."""

            def after_trial(self, study, trial, state, values) -> None:
                pass

        return Grid({key: list(range(len(values))) for key, values in grid.items()}, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _ranked(trials: list[Trial], mode: str) -> list[Trial]:
    sign = 1 if mode == "min" else -1
    done = sorted((t for t in trials if t.status == "done"), key=lambda t: (sign * t.value, t.number))
    return done + sorted((t for t in trials if t.status != "done"), key=lambda t: t.number)


def _json(value: Any) -> Any:
    """A list or mapping as JSON (a CSV cell, a table's column), anything else as it is."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _cell(value: Any) -> str:
    """A value as the table shows it: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(_json(value))
