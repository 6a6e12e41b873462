"""Compiler speed: netspec-built ResNets against hand-written ones, and spec -> module time.

Prints, in one run:
- forward+backward time of `netspec.build(resnet18)` (batch 8, 3×224×224) and of
  `netspec.build(resnet50)` (batch 4) against the hand-written torchvision-style
  modules below, loaded with the same weights (strict), timed interleaved, median
  of REPEAT, and their ratio (goal ≤ 1.02);
- spec file -> module time of resnet152 on CPU (goal < 1 s) and on meta (< 0.2 s),
  best of 5.

    python benchmarks/compiler_speed.py [--threads N] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import netspec

ROOT = Path(__file__).resolve().parent.parent


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: two 3×3 convs, identity or 1×1 projection shortcut."""

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.downsample = _projection(cin, width, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck: 1×1 reduce, 3×3 (strided), 1×1 expand ×4."""

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU()
        self.downsample = _projection(cin, width * 4, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _projection(cin: int, cout: int, stride: int) -> nn.Module | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNet(nn.Module):
    def __init__(self, block: type[nn.Module], depths: list[int], expansion: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (depth, width) in enumerate(zip(depths, [64, 128, 256, 512])):
            blocks = []
            for k in range(depth):
                blocks.append(block(cin, width, 2 if k == 0 and i > 0 else 1))
                cin = width * expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * expansion, 1000)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


HAND_WRITTEN = {
    "resnet18": (lambda: ResNet(BasicBlock, [2, 2, 2, 2], 1), 8),
    "resnet50": (lambda: ResNet(Bottleneck, [3, 4, 6, 3], 4), 4),
}


def step(model: nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x).sum().backward()
    return time.perf_counter() - start


def compare(name: str, repeat: int) -> None:
    make, batch = HAND_WRITTEN[name]
    built = netspec.build(netspec.load(ROOT / "specs" / f"{name}.yaml"))
    hand = make()
    hand.load_state_dict(built.state_dict(), strict=True)  # same keys, same weights
    x = torch.randn(batch, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(built.eval()(x), hand.eval()(x), atol=1e-4)
    built.train(), hand.train()
    times: dict[str, list[float]] = {"netspec": [], "hand": []}
    for i in range(repeat + 1):  # round 0 warms up
        pair = [("netspec", built), ("hand", hand)]
        for label, model in pair if i % 2 else pair[::-1]:
            model.zero_grad(set_to_none=True)
            elapsed = step(model, x)
            if i:
                times[label].append(elapsed)
    ours, theirs = statistics.median(times["netspec"]), statistics.median(times["hand"])
    print(f"{name:9} batch {batch}: netspec {ours:.3f} s, hand-written {theirs:.3f} s, "
          f"ratio {ours / theirs:.3f}  (fwd+bwd, median of {repeat})")


def spec_to_module(device: str) -> float:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        netspec.build(netspec.load(ROOT / "specs" / "resnet152.yaml"), device=device)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} CPU threads")
    for name in HAND_WRITTEN:
        compare(name, args.repeat)
    spec_to_module("meta")  # imports and caches warm
    for device, goal in (("cpu", 1.0), ("meta", 0.2)):
        seconds = spec_to_module(device)
        print(f"resnet152 spec -> module on {device}: {seconds:.3f} s (goal < {goal} s)")


if __name__ == "__main__":
    main()
