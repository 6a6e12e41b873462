"""Training speed: `netspec train`'s epoch against a hand-written PyTorch loop, same model, data and device.

For specs/mlp_digits.yaml and specs/cnn_digits.yaml (Adam 1e-3, cross-entropy, batch 64, the digits'
stratified 8:1:1 split normalized by the train split), one epoch is one pass over the train split plus an
evaluation of the val split, with the loss and accuracy of every batch summed, on both sides:

- netspec: `Trainer.train_epoch` + `Trainer.evaluate("val")` of a `netspec.train.session.Setup` (made once,
  outside the timing, as are the checkpoint and CSV files `Trainer.fit` writes after each epoch: `--profile`
  times the checkpoint);
- hand-written: `torch.randperm` batches of the same tensors, normalized once, then `zero_grad`, forward,
  `F.cross_entropy`, `backward`, `step`, with `loss.item()` and the correct count's `.item()` per step, and
  a `no_grad` pass over val. Its module is a second `netspec.build` of the spec holding the same weights, so
  the two sides differ only in the loop machinery (the ratio the issue bars at ≤ 1.10). The same loop over
  the plain `nn.Module`s written out below (same names, same weights) shows what the fx module costs.

The three run interleaved (the order alternating each round) after one warm-up epoch each; the table gives
the median and range of REPEAT epochs, and the median and range of the per-round ratios. One CPU thread by
default: these networks gain nothing from intra-op threads, and on a busy 2-core machine a second one makes
single epochs stall for seconds. `--clock cpu` times the thread's CPU time instead of the wall clock, which
other jobs on the machine disturb far less. `--profile` then runs both loops under cProfile.

    python benchmarks/train_speed.py [--repeat 20] [--threads 1] [--device cpu] [--clock wall|cpu] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import netspec
from netspec.train.config import check_train
from netspec.train.loop import Trainer
from netspec.train.session import Setup, configure

ROOT = Path(__file__).resolve().parent.parent
SPECS = ("mlp_digits", "cnn_digits")
BAR = 1.10


class MLP(nn.Module):
    """specs/mlp_digits.yaml by hand: 64-128-10, ReLU, dropout 0.2."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(64, 128), nn.Linear(128, 10)
        self.drop = nn.Dropout(0.2)

    def forward(self, x):  # (B, 64)
        return self.fc2(self.drop(F.relu(self.fc1(x))))


class CNN(nn.Module):
    """specs/cnn_digits.yaml by hand: two 3×3 conv + ReLU + 2×2 max-pool stages, then a linear classifier."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):  # (B, 1, 8, 8)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, 16, 4, 4)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, 32, 2, 2)
        return self.fc(x.flatten(1))


PLAIN = {"mlp_digits": MLP, "cnn_digits": CNN}


def netspec_setup(name: str, device: str, out: Path) -> Setup:
    """The Setup `netspec train specs/<name>.yaml --device DEVICE --out OUT` makes, made quietly."""
    spec, config, analysis = configure(ROOT / "specs" / f"{name}.yaml", {"device": device})
    check_train(config, analysis, spec)
    with contextlib.redirect_stdout(io.StringIO()):
        return Setup(spec, config, analysis, out, None, False)


class HandWritten:
    """The usual PyTorch loop over tensors normalized once, with a module holding netspec's weights."""

    def __init__(self, setup: Setup, model: nn.Module):
        splits, (name,) = setup.splits, setup.input_names
        self.model = model.to(setup.device)
        self.model.load_state_dict(setup.model.state_dict(), strict=True)
        self.x, self.y = splits.inputs(splits.train)[name], splits.train["y"]  # normalized, reshaped
        self.val_x, self.val_y = splits.inputs(splits.val)[name], splits.val["y"]
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.batch = setup.config.args.batch_size

    def epoch(self, epoch: int) -> tuple[float, float, float, float]:
        """Train and val (loss, accuracy) of one epoch (`epoch` is unused: randperm draws the order)."""
        model, b = self.model, self.batch
        model.train()
        n = len(self.x)
        order = torch.randperm(n).to(self.x.device)
        loss_sum = correct = 0.0
        for i in range(0, n, b):
            at = order[i:i + b]
            x, y = self.x[at], self.y[at]
            self.optimizer.zero_grad(set_to_none=True)
            out = model(x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
        model.eval()
        val_loss = val_correct = 0.0
        with torch.no_grad():
            for i in range(0, len(self.val_x), b):
                x, y = self.val_x[i:i + b], self.val_y[i:i + b]
                out = model(x)
                val_loss += F.cross_entropy(out, y).item() * len(y)
                val_correct += (out.argmax(1) == y).sum().item()
        m = len(self.val_x)
        return loss_sum / n, correct / n, val_loss / m, val_correct / m


def netspec_epoch(trainer: Trainer, epoch: int) -> dict:
    return {**trainer.train_epoch(epoch), **trainer.evaluate("val")}


CLOCK = time.perf_counter  # or time.thread_time (`--clock cpu`)


def timed(device: torch.device, fn, *args) -> float:
    """Seconds `fn(*args)` takes by CLOCK, its GPU work included."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = CLOCK()
    fn(*args)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return CLOCK() - start


def compare(name: str, device: str, repeat: int, tmp: Path) -> dict[str, list[float]]:
    """Seconds per epoch of each variant, `repeat` interleaved epochs after one warm-up each."""
    setup = netspec_setup(name, device, tmp / name)
    trainer = Trainer(setup)
    hand = HandWritten(setup, netspec.build(setup.spec))
    plain = HandWritten(setup, PLAIN[name]())
    variants = {"netspec": partial(netspec_epoch, trainer), "hand": hand.epoch, "plain": plain.epoch}
    times: dict[str, list[float]] = {label: [] for label in variants}
    for i in range(repeat + 1):  # round 0 warms up
        for label in list(variants) if i % 2 else list(variants)[::-1]:
            elapsed = timed(setup.device, variants[label], i)
            if i:
                times[label].append(elapsed)
    return times


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:6.1f} ({min(values) * 1000:.1f}–{max(values) * 1000:.1f})"


def _ratio(ours: list[float], theirs: list[float]) -> str:
    """The median of the per-round ratios (each pair ran back to back, so a slow spell of the machine scales
    both sides of one ratio), and their range."""
    ratios = [a / b for a, b in zip(ours, theirs)]
    return f"{statistics.median(ratios):.3f} ({min(ratios):.2f}–{max(ratios):.2f})"


def profile(name: str, device: str, epochs: int, tmp: Path, top: int) -> None:
    """cProfile of `epochs` epochs of netspec and of the hand-written loop (after a warm-up epoch each), the
    functions taking the most time of their own; then the checkpoint `Trainer.fit` also writes every epoch."""
    setup = netspec_setup(name, device, tmp / f"{name}-profile")
    hand = HandWritten(setup, netspec.build(setup.spec))
    for label, epoch in (("netspec", partial(netspec_epoch, Trainer(setup))), ("hand-written", hand.epoch)):
        epoch(0)
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(1, epochs + 1):
            epoch(i)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
        print(f"\n--- cProfile: {name}, {label}, {epochs} epochs (train + val) ---")
        print(out.getvalue().strip())
    save = min(timed(setup.device, setup.save, "last.pt") for _ in range(5))
    print(f"\n{name}: Trainer.fit also writes last.pt every epoch: {save * 1000:.1f} ms (best of 5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="timed epochs per variant (default 20)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or this thread's CPU time (one thread on the CPU only): steadier when "
                             "other jobs share the machine")
    parser.add_argument("--profile", action="store_true", help="then profile both loops with cProfile")
    parser.add_argument("--top", type=int, default=25, help="functions listed per profile (default 25)")
    args = parser.parse_args()
    if args.clock == "cpu" and (args.threads != 1 or args.device != "cpu"):
        parser.error("--clock cpu measures one thread on the CPU: use it with --threads 1 --device cpu")
    global CLOCK
    CLOCK = time.thread_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, device {args.device}, {args.threads} CPU threads; {args.clock} ms per "
          f"epoch (train + val), median (range) of {args.repeat} interleaved epochs")
    header = (f"{'spec':11} | {'netspec':>20} | {'hand-written':>20} | {'ratio':>17} | "
              f"{'hand-written, plain nn.Module':>29} | {'ratio':>17}")
    with tempfile.TemporaryDirectory() as tmp:
        results = {name: compare(name, args.device, args.repeat, Path(tmp)) for name in SPECS}
        print(header)
        print("-" * len(header))
        for name, t in results.items():
            print(f"{name:11} | {_ms(t['netspec']):>20} | {_ms(t['hand']):>20} | "
                  f"{_ratio(t['netspec'], t['hand']):>17} | {_ms(t['plain']):>29} | "
                  f"{_ratio(t['netspec'], t['plain']):>17}")
        print(f"ratio: netspec / hand-written, the median (and range) of the per-round ratios; bar ≤ {BAR}")
        if args.profile:
            for name in SPECS:
                profile(name, args.device, 10, Path(tmp), args.top)


if __name__ == "__main__":
    main()
