"""GPU check: resnet18 and vit_tiny built by netspec on one CUDA device, checked and timed; one table.

For each of specs/resnet18.yaml (batch 64, 3×224×224) and specs/vit_tiny.yaml (batch 256, 3×32×32):

- device vs CPU: the module built on the device, holding the CPU module's weights, gives the CPU module's
  outputs (eval mode, fp32 with TF32 off; max |difference| against a tolerance of 1e-3 × the outputs' scale);
- bf16 + channels_last: the same forward under bf16 autocast with channels_last tensors, against fp32
  (relative error, tolerance 5e-2: bf16 keeps 8 bits of mantissa);
- torch.compile: the compiled module's outputs against eager (tolerance as device vs CPU);
- training: STEPS Adam steps (lr 1e-3) of the compiled module, bf16 autocast, channels_last, on one fixed
  batch of random images and labels; the loss must fall (the last 10 steps' mean below the first 10's);
  the median step time;
- netspec vs hand-written (resnet18): one training step of the netspec module against the torchvision-style
  ResNet-18 of benchmarks/compiler_speed.py with the same weights, eager and compiled, timed interleaved
  with CUDA events, median of REPEAT; their ratio;
- peak memory: `torch.cuda.max_memory_allocated` over two fp32 eager Adam steps of a fresh module, against
  `Analysis.training_memory(batch, "adam")` (netspec summary --batch N), and their ratio.

Exit status 0 when every check passes, 1 when one fails; without CUDA the script says so and exits 0.
`--device cpu --quick` runs the same code on the CPU with a tiny setting (batch 2, resnet18 at 64×64, 3
steps, torch.compile with its `eager` backend: graph capture without code generation, which would take
minutes on a CPU), so that tests/test_gpu_check.py keeps every path alive on machines without a GPU.

    python benchmarks/gpu_check.py                     # on a CUDA machine: under 5 minutes on one H100/H200
    python benchmarks/gpu_check.py --device cpu --quick
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from compiler_speed import BasicBlock, ResNet  # the hand-written torchvision-style ResNet

import netspec

ROOT = Path(__file__).resolve().parent.parent
EXACT_TOL = 1e-3  # fp32 on two devices (or compiled against eager): max |difference| / max |output|
BF16_TOL = 5e-2  # bf16 autocast against fp32: relative error of the outputs


@dataclass
class Setting:
    """How big the check runs."""

    batches: dict[str, int]  # spec name -> batch size
    sizes: dict[str, int | None]  # spec name -> image side (None: the spec's own)
    steps: int  # training steps
    repeat: int  # timed steps per variant
    backend: str  # torch.compile's backend


FULL = Setting({"resnet18": 64, "vit_tiny": 256}, {"resnet18": None, "vit_tiny": None}, 300, 30, "inductor")
QUICK = Setting({"resnet18": 2, "vit_tiny": 2}, {"resnet18": 64, "vit_tiny": None}, 3, 2, "eager")


class Table:
    """The rows printed at the end: model, check, result, detail; failed checks set `failed`."""

    def __init__(self):
        self.rows: list[tuple[str, str, str, str]] = []
        self.failed = False

    def add(self, model: str, check: str, passed: bool | None, detail: str) -> None:
        """A row; `passed` None for a measurement without a verdict."""
        self.rows.append((model, check, "-" if passed is None else "ok" if passed else "FAIL", detail))
        self.failed |= passed is False

    def print(self, title: str) -> None:
        widths = [max(len(r[i]) for r in self.rows + [("model", "check", "result", "detail")]) for i in range(4)]
        print(title)
        for row in [("model", "check", "result", "detail"), tuple("-" * w for w in widths), *self.rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def inputs(spec, batch: int, side: int | None, device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch of random images (N, C, H, W) and class ids (N,) for `spec`."""
    analysis = netspec.analyze(spec)
    c, h, w = next(iter(analysis.inputs.values()))
    h, w = (side, side) if side else (h, w)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, c, h, w, generator=g)
    (classes,) = next(iter(analysis.outputs.values()))
    y = torch.randint(0, classes, (batch,), generator=g)
    return x.to(device), y.to(device)


def scale_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| / max |b|: the difference relative to the outputs' scale."""
    return float((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-12))


def train_step(model: torch.nn.Module, optimizer, x, y, bf16: bool) -> torch.Tensor:
    """One Adam step: forward (under bf16 autocast when asked), cross-entropy, backward, update; the loss."""
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(x)
    loss = torch.nn.functional.cross_entropy(out.float(), y)
    loss.backward()
    optimizer.step()
    return loss.detach()


def timed(fn, device: torch.device) -> float:
    """Seconds one call of `fn` takes (CUDA events on a GPU, the wall clock on the CPU)."""
    if device.type != "cuda":
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1000


def check_outputs(table: Table, name: str, spec, x_cpu: torch.Tensor, device, backend: str):
    """Device vs CPU, bf16 + channels_last vs fp32, compiled vs eager; the module on the device, in eval mode."""
    cpu = netspec.build(spec).eval()
    model = netspec.build(spec, device=device).eval()
    model.load_state_dict(cpu.state_dict())
    x = x_cpu.to(device)
    with torch.no_grad():
        reference = cpu(x_cpu)
        exact = model(x)
        err = scale_error(exact.cpu(), reference)
        table.add(name, f"{device.type} vs cpu, fp32", err <= EXACT_TOL, f"max |diff| / max |out| = {err:.2e}")
        model_cl = model.to(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            half = model_cl(x.contiguous(memory_format=torch.channels_last))
        err = float((half.float() - exact).norm() / exact.norm())
        table.add(name, "bf16 autocast + channels_last vs fp32", err <= BF16_TOL, f"relative error {err:.2e}")
        compiled = torch.compile(model, backend=backend)
        err = scale_error(compiled(x), exact)
        table.add(name, f"torch.compile ({backend}) vs eager", err <= EXACT_TOL, f"max |diff| / max |out| = {err:.2e}")


def check_training(table: Table, name: str, spec, x, y, setting: Setting) -> None:
    """STEPS compiled bf16 channels_last Adam steps on one fixed batch: the loss falls; the median step time."""
    model = netspec.build(spec, device=x.device).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    compiled = torch.compile(model, backend=setting.backend)
    x = x.contiguous(memory_format=torch.channels_last)
    losses, times = [], []
    for _ in range(setting.steps):
        times.append(timed(lambda: losses.append(train_step(compiled, optimizer, x, y, bf16=True)), x.device))
    losses = [float(v) for v in losses]
    k = min(10, len(losses) // 2 or 1)
    first, last = statistics.fmean(losses[:k]), statistics.fmean(losses[-k:])
    step = statistics.median(times[len(times) // 2:])  # after compiling and warming up
    table.add(name, f"{setting.steps} training steps (compiled, bf16, channels_last, batch {len(x)})",
              last < first, f"loss {losses[0]:.3f} -> {losses[-1]:.3f}; {step * 1000:.2f} ms/step")


def check_against_hand_written(table: Table, spec, x, y, setting: Setting) -> None:
    """resnet18: a training step of the netspec module against the hand-written one, same weights, eager and
    compiled, interleaved, median of REPEAT after one warm-up (which compiles)."""
    x = x.contiguous(memory_format=torch.channels_last)
    for compiled in (False, True):
        built = netspec.build(spec, device=x.device)
        hand = ResNet(BasicBlock, [2, 2, 2, 2], 1).to(x.device)
        hand.load_state_dict(built.state_dict(), strict=True)
        steps = {}
        for label, model in (("netspec", built), ("hand", hand)):
            model = model.to(memory_format=torch.channels_last).train()
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            run = torch.compile(model, backend=setting.backend) if compiled else model
            steps[label] = lambda run=run, optimizer=optimizer: train_step(run, optimizer, x, y, bf16=True)
        times: dict[str, list[float]] = {label: [] for label in steps}
        for i in range(setting.repeat + 1):  # round 0 warms up (and compiles)
            for label in list(steps) if i % 2 else list(steps)[::-1]:
                elapsed = timed(steps[label], x.device)
                if i:
                    times[label].append(elapsed)
        ours, theirs = (statistics.median(times[label]) for label in ("netspec", "hand"))
        mode = f"compiled ({setting.backend})" if compiled else "eager"
        table.add("resnet18", f"step time vs hand-written, {mode}, bf16", None,
                  f"netspec {ours * 1000:.2f} ms, hand-written {theirs * 1000:.2f} ms, ratio {ours / theirs:.3f}")


def check_memory(table: Table, name: str, spec, x, y) -> None:
    """Peak memory of two fp32 eager Adam steps of a fresh module against the analysis's estimate."""
    batch = len(x)
    estimate = netspec.analyze(spec).training_memory(batch, "adam")["total"]
    if x.device.type != "cuda":
        table.add(name, f"peak memory, fp32 Adam, batch {batch}", None,
                  f"estimate {estimate / 2**20:.1f} MiB; measured only on CUDA")
        return
    benchmark, torch.backends.cudnn.benchmark = torch.backends.cudnn.benchmark, False  # no trial workspaces
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    model = netspec.build(spec, device=x.device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):  # the optimizer's state appears at the first step
        train_step(model, optimizer, x, y, bf16=False)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    torch.backends.cudnn.benchmark = benchmark
    del model, optimizer
    table.add(name, f"peak memory vs estimate, fp32 Adam, batch {batch}", None,
              f"measured {peak / 2**20:.1f} MiB, estimate {estimate / 2**20:.1f} MiB, ratio {peak / estimate:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu")
    parser.add_argument("--quick", action="store_true", help="a tiny setting (for the test on machines without GPU)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run this script on a GPU machine (or --device cpu --quick)")
        return 0
    setting = QUICK if args.quick else FULL
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        # fp32 comparisons in true fp32; the timed runs use bf16 autocast, which TF32 does not affect
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    name_of_device = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    table = Table()
    started = time.perf_counter()
    for name in ("resnet18", "vit_tiny"):
        spec = netspec.load(ROOT / "specs" / f"{name}.yaml")
        x, y = inputs(spec, setting.batches[name], setting.sizes[name], "cpu")
        check_outputs(table, name, spec, x, device, setting.backend)
        x, y = x.to(device), y.to(device)
        check_training(table, name, spec, x, y, setting)
        if name == "resnet18":
            check_against_hand_written(table, spec, x, y, setting)
        check_memory(table, name, spec, x, y)
    table.print(f"gpu_check on {name_of_device}, torch {torch.__version__}"
                f"{' (quick)' if args.quick else ''}: {time.perf_counter() - started:.0f} s")
    return 1 if table.failed else 0


if __name__ == "__main__":
    sys.exit(main())
