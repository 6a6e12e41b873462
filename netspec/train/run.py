"""The run folder: `runs/<spec>-<timestamp>/` (or the `--out` folder).

    spec.yaml      the resolved spec: the file as loaded (`extends` merged), overrides applied
    metrics.csv    one row per epoch: epoch, train_/val_ loss terms and accuracies, step, lr (of the epoch's last
                   step), seconds
    steps.csv      one row per optimizer step: epoch, step, loss (the sample mean over its micro-batches), lr (the
                   one the step used)
    grad_norms.csv one row per gradient logging point (each epoch's last step, or every `grad_norms_every`
                   steps): epoch, step, each layer's gradient norm (netspec/train/grads.py)
    lr_find.csv    with `lr: auto`: the LR range test (step, lr, loss, smoothed_loss); lr_find.json its choice
    summary.json   best epoch, final train/val/test loss and accuracy, params, wall time, device, versions
    log.txt        one line per epoch and every note (early stopping, divergence)
    best.pt        the checkpoint of the best epoch by the monitored metric
    last.pt        the checkpoint of the last finished epoch (what `--resume` continues from)
    *.png          loss.png, accuracy.png, lr.png, grad_norms.png (lr_find.png with `lr: auto`);
                   reconstructions.png and samples.png for autoencoders

Every file is written atomically (whole or not at all). On a terminal each epoch
shows a tqdm progress bar; elsewhere one plain line per epoch, so CI logs stay short.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from ..files import atomic_write


class RunFolderError(Exception):
    """A run folder that cannot be used (a resume with a changed spec, say)."""


def resolved_tree(spec, train: dict) -> dict:
    """The spec as loaded (`extends` merged), with the `train:` section as resolved."""
    tree = dict(spec.source.tree)
    tree["train"] = train
    return tree


def _dump(tree: dict) -> str:
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)


class RunDir:
    """One run's folder and its logs."""

    def __init__(self, path: Path, progress: bool | None):
        self.path = path
        self.epochs: list[dict] = []
        self.steps: list[dict] = []
        self.grads: list[dict] = []  # grad_norms.csv's rows
        self.steps_written = 0  # rows of self.steps already in steps.csv
        self.show_bar = sys.stderr.isatty() if progress is None else progress

    @classmethod
    def open(cls, name: str, out, resume, tree: dict, safe: tuple[str, ...], progress: bool | None) -> RunDir:
        """A new folder (`out`, else `runs/<name>-<timestamp>`), or the `resume` folder after checking that
        the spec has not changed but in `safe` keys (dotted paths under `train`)."""
        if resume is not None:
            run = cls(Path(resume), progress)
            run._check_same(tree, safe)
            run.epochs = _read_csv(run.path / "metrics.csv")
            run.steps = _read_csv(run.path / "steps.csv")
            run.grads = _read_csv(run.path / "grad_norms.csv")
        else:
            run = cls(new_folder(out, name, "choose another --out, or --resume it"), progress)
        atomic_write(run.path / "spec.yaml", _dump(tree))
        return run

    def _check_same(self, tree: dict, safe: tuple[str, ...]) -> None:
        saved_file = self.path / "spec.yaml"
        if not saved_file.is_file():
            raise RunFolderError(f"{self.path} is not a run folder (it has no spec.yaml)")
        saved = yaml.safe_load(saved_file.read_text(encoding="utf-8"))
        if _without(saved, safe) != _without(tree, safe):
            diff = difflib.unified_diff(_dump(_without(saved, safe)).splitlines(),
                                        _dump(_without(tree, safe)).splitlines(),
                                        f"{saved_file} (the run)", "the spec now", lineterm="")
            raise RunFolderError("the spec differs from the run's; only "
                                 f"{', '.join('train.' + s for s in safe)} may change on resume:\n"
                                 + "\n".join(diff))

    def truncate(self, epoch: int, step: int) -> None:
        """Forget log rows past the checkpoint being resumed (written by the killed process)."""
        self.epochs = [r for r in self.epochs if int(r["epoch"]) <= epoch]
        self.steps = [r for r in self.steps if int(r["step"]) <= step]
        self.grads = [r for r in self.grads if int(r["step"]) <= step]
        self.steps_written = 0
        self._write_steps()

    def _write_steps(self) -> None:
        path = self.path / "steps.csv"
        if not self.steps_written:
            write_csv(path, self.steps)
        else:
            with open(path, "a", encoding="utf-8", newline="") as f:
                _writer(f, self.steps[0]).writerows(map(_formatted, self.steps[self.steps_written:]))
        self.steps_written = len(self.steps)

    def start(self, info: dict[str, Any]) -> None:
        samples = info["samples"]
        self.note(f"{info['spec']}: {info['params']:,} params on {info['device']}; "
                  f"{samples['train']}/{samples['val']}/{samples['test']} train/val/test samples"
                  + (f"; resumed after epoch {info['resumed_at_epoch']}" if info["resumed_at_epoch"] else ""))

    def note(self, text: str) -> None:
        """Print a line and keep it in log.txt."""
        print(text, flush=True)
        with open(self.path / "log.txt", "a", encoding="utf-8") as f:
            f.write(text + "\n")

    def progress(self, iterable, desc: str, total: int):
        if not self.show_bar:
            return iterable
        from tqdm import tqdm

        return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)

    def log_step(self, row: dict) -> None:
        self.steps.append(row)

    def log_grads(self, row: dict) -> None:
        self.grads.append(row)

    def log_epoch(self, row: dict) -> None:
        """Keep an epoch's row: metrics.csv and grad_norms.csv are rewritten whole (atomically); the epoch's step
        rows are appended to steps.csv, which grows by thousands of rows in a long run (a resume rewrites it
        whole)."""
        self.epochs.append(row)
        write_csv(self.path / "metrics.csv", self.epochs)
        if self.grads:
            write_csv(self.path / "grad_norms.csv", self.grads)
        self._write_steps()
        shown = [f"{k} {row[k]:.4g}" for k in row if k.endswith(("_loss", "accuracy"))]
        self.note(f"epoch {row['epoch']}: " + ", ".join(shown) + f", lr {row['lr']:.3g} ({row['seconds']:.2f} s)")

    def finish(self, summary: dict, setup) -> None:
        from .plots import write_plots

        atomic_write(self.path / "summary.json", json.dumps(summary, indent=2, default=float) + "\n")
        write_plots(self, setup)
        shown = ", ".join(f"{k} {summary[k]:.4g}" for k in ("test_loss", "test_accuracy") if k in summary)
        self.note("done: " + (f"{shown}; " if shown else "") + f"run folder {self.path}")


def new_folder(out: str | Path | None, name: str, hint: str = "choose another --out") -> Path:
    """`out` (default `runs/<name>-<timestamp>`) as a new folder for a command's files: created (with its
    parents), or taken when it is an empty folder. Raises RunFolderError when it holds files (`hint` says what
    to do instead), is a file, or cannot be created."""
    path = Path(out) if out is not None else Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise RunFolderError(f"{path} already holds files; {hint}" if path.is_dir()
                             else f"{path} is a file, not a folder; choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a parent folder should be, no permission
        raise RunFolderError(f"cannot create the folder {path}: {exc.strerror or exc}; choose another --out") \
            from None
    return path


def _without(tree: dict, safe: tuple[str, ...]) -> dict:
    """`tree` without the dotted `train.` keys in `safe`."""
    import copy

    out = copy.deepcopy(tree)
    for dotted in safe:
        node = out.get("train") or {}
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    for dotted in safe:  # a section that held only safe keys (`early_stopping: {patience: 3}`) counts as absent
        parents = dotted.split(".")[:-1]
        node = out.get("train")
        for key in parents[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if parents and isinstance(node, dict) and node.get(parents[-1]) == {}:
            del node[parents[-1]]
    return out


def write_csv(path: Path, rows: list[dict]) -> None:
    """`rows` as a CSV file (the columns: every key, in order of appearance; floats to 6 digits), atomically."""
    buffer = io.StringIO()
    writer = _writer(buffer, dict.fromkeys(k for row in rows for k in row))
    writer.writeheader()
    writer.writerows(map(_formatted, rows))
    atomic_write(path, buffer.getvalue())


def _writer(f, columns) -> csv.DictWriter:
    return csv.DictWriter(f, list(columns), lineterminator="\n")


def _formatted(row: dict) -> dict:
    return {k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()}


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f)  # a torn last line (a kill mid-append) has empty fields: dropped
        return [{k: _number(v) for k, v in row.items()} for row in rows if all(v not in (None, "") for v in
                                                                                row.values())]


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text
