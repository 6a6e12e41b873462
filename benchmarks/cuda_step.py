"""GPU training step: netspec-built resnet50 against the hand-written one, eager and torch.compile'd.

One SGD step (forward, cross-entropy, backward, update) at batch 64, 3×224×224,
under bf16 autocast with channels_last tensors. Both models hold the same weights;
the four variants (netspec/hand-written × eager/compiled) are timed interleaved
with CUDA events, median of REPEAT steps after warm-up (which includes compiling),
and the netspec/hand-written ratio is printed for eager and for compiled.
Exits with a message, status 0, where CUDA is absent.

    python benchmarks/cuda_step.py [--batch 64] [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from compiler_speed import Bottleneck, ResNet  # the hand-written torchvision-style ResNet

import netspec

ROOT = Path(__file__).resolve().parent.parent


def trainer(model: torch.nn.Module, compiled: bool):
    """One training step as a function of a batch (compiled with torch.compile when asked)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    forward = torch.compile(model) if compiled else model

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(forward(x), y)
        loss.backward()
        optimizer.step()
    return step


def timed(step, x, y) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    step(x, y)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("cuda_step: no CUDA device here; run this script on a GPU machine")
        return 0
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    spec = netspec.load(ROOT / "specs" / "resnet50.yaml")
    variants = {}
    for compiled in (False, True):
        built = netspec.build(spec, device="cuda")
        hand = ResNet(Bottleneck, [3, 4, 6, 3], 4).cuda()
        hand.load_state_dict(built.state_dict(), strict=True)
        for label, model in (("netspec", built), ("hand", hand)):
            model.to(memory_format=torch.channels_last).train()
            variants[(label, compiled)] = trainer(model, compiled)
    x = torch.randn(args.batch, 3, 224, 224, device="cuda").to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (args.batch,), device="cuda")
    times: dict = {key: [] for key in variants}
    for i in range(args.warmup + args.repeat):
        keys = list(variants) if i % 2 else list(variants)[::-1]
        for key in keys:
            elapsed = timed(variants[key], x, y)
            if i >= args.warmup:
                times[key].append(elapsed)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, resnet50 batch {args.batch}, "
          f"bf16 autocast, channels_last, SGD step, median of {args.repeat}")
    for compiled in (False, True):
        ours, theirs = (statistics.median(times[(label, compiled)]) for label in ("netspec", "hand"))
        mode = "torch.compile" if compiled else "eager"
        print(f"{mode:13}: netspec {ours * 1000:.1f} ms, hand-written {theirs * 1000:.1f} ms, "
              f"ratio {ours / theirs:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
