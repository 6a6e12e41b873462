"""Drawing speed: `netspec.draw` of specs/resnet50.yaml against torchview on the same network.

Prints, in one run, the best of several runs each of:
- netspec: load + expand + DOT + `dot -Tsvg`, expanded (every layer) and collapsed
  (the default depth, and depth 0), with the node count of each drawing;
- torchview: `draw_graph` (it traces a forward pass) + render to SVG, on a
  hand-written torchvision-style ResNet-50, at depth 3 (every module: expanded)
  and depth 1 (one node per stage: collapsed);
- the ratios. torchview is skipped, with a message, when it is not installed.

    python benchmarks/draw_speed.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from timing import best_of

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "resnet50.yaml"
REPEAT = 5



def netspec_draw(out: Path, depth: int | None) -> tuple[float, int]:
    import netspec
    from netspec.draw import to_dot

    seconds = best_of(lambda: netspec.draw(netspec.load(SPEC), out, depth=depth), REPEAT)
    nodes = to_dot(netspec.load(SPEC), depth=depth).source.count("[label=<")
    return seconds, nodes


def resnet50():
    """torchvision's resnet50 layout, written out (torchvision is not a dependency)."""
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, width: int, stride: int):
            super().__init__()
            cout = width * 4
            self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return self.relu(y + (x if self.downsample is None else self.downsample(x)))

    def stage(cin: int, width: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [Bottleneck(cin, width, stride)]
        layers += [Bottleneck(width * 4, width, 1) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    class ResNet50(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
            self.relu, self.maxpool = nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
            self.layer1, self.layer2 = stage(64, 64, 3, 1), stage(256, 128, 4, 2)
            self.layer3, self.layer4 = stage(512, 256, 6, 2), stage(1024, 512, 3, 2)
            self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(2048, 1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return ResNet50().eval()


def torchview_draw(out: Path, depth: int) -> tuple[float, float, int]:
    """(draw_graph seconds, render seconds, node count) at torchview's `depth`."""
    from torchview import draw_graph

    model = resnet50()
    trace = best_of(lambda: draw_graph(model, input_size=(1, 3, 224, 224), depth=depth, device="cpu"), REPEAT)
    graph = draw_graph(model, input_size=(1, 3, 224, 224), depth=depth, device="cpu").visual_graph
    render = best_of(lambda: out.write_bytes(graph.pipe(format="svg")), REPEAT)
    return trace, render, graph.source.count("label=<")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "resnet50.svg"
        ours = {name: netspec_draw(out, depth) for name, depth in
                (("expanded", 99), ("default depth", None), ("depth 0", 0))}
        for name, (seconds, nodes) in ours.items():
            print(f"netspec   resnet50 {name:<14} {seconds * 1000:7.1f} ms   {nodes:4d} nodes")
        try:
            import torch  # noqa: F401  (imported here so its start-up is not timed)
            import torchview  # noqa: F401
        except ImportError as exc:
            print(f"torchview skipped: {exc} (pip install torchview)")
            return
        for name, depth, ref in (("expanded", 3, "expanded"), ("collapsed", 1, "depth 0")):
            trace, render, nodes = torchview_draw(out, depth)
            total = trace + render
            print(f"torchview resnet50 {name:<14} {total * 1000:7.1f} ms   {nodes:4d} nodes"
                  f"   (draw_graph {trace * 1000:.1f} ms + render {render * 1000:.1f} ms, depth={depth})"
                  f"   netspec {ref} is {total / ours[ref][0]:.1f}x faster")


if __name__ == "__main__":
    main()
