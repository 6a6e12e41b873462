"""Analysis speed: netspec's symbolic analysis against torchinfo on the same network.

Prints, in one run:
- in-process analysis of specs/resnet152.yaml vs `torchinfo.summary` on the
  equivalent torch module (netspec.build of the same spec), and their ratio;
- whole-process `netspec validate specs/resnet152.yaml` (interpreter start included);
- analysis time of generated chains of 1,000 and 10,000 layers, and the
  per-layer time of each (linear growth keeps it flat).

    python benchmarks/analysis_speed.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from timing import best_of

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "resnet152.yaml"



def netspec_analysis() -> float:
    import netspec

    return best_of(lambda: netspec.analyze(netspec.load(SPEC)), 5)


def torchinfo_summary() -> tuple[float, float]:
    start = time.perf_counter()
    import torch
    import torchinfo

    import_time = time.perf_counter() - start
    import netspec

    model = netspec.build(netspec.load(SPEC)).eval()
    run = best_of(lambda: torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0,
                                            device=torch.device("cpu")), 3)
    return run, import_time


def whole_process() -> float:
    cmd = [sys.executable, "-m", "netspec", "validate", "-q", str(SPEC)]
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def chain(n: int) -> str:
    """A chain of n layers (linear + relu pairs) as YAML text."""
    body = "".join("  - linear: 64\n  - relu\n" for _ in range(n // 2))
    return f"name: chain{n}\ninput: [64]\nlayers:\n{body}"


def chain_time(n: int) -> float:
    import netspec

    text = chain(n)
    return best_of(lambda: netspec.analyze(netspec.loads(text, f"chain{n}.yaml")), 3)


def main() -> None:
    ours = netspec_analysis()
    theirs, torch_import = torchinfo_summary()
    print(f"resnet152 analysis   netspec {ours * 1000:8.1f} ms   torchinfo.summary {theirs * 1000:8.1f} ms"
          f"   ratio {theirs / ours:5.1f}x faster   (goal >= 20x; torch import alone {torch_import:.1f} s)")
    print(f"whole-process `netspec validate specs/resnet152.yaml`: {whole_process() * 1000:.0f} ms"
          "   (goal < 500 ms)")
    small, large = chain_time(1_000), chain_time(10_000)
    print(f"chain of  1,000 layers: {small * 1000:8.1f} ms  ({small / 1_000 * 1e6:6.1f} us/layer)")
    print(f"chain of 10,000 layers: {large * 1000:8.1f} ms  ({large / 10_000 * 1e6:6.1f} us/layer)")
    print(f"growth 1k -> 10k: {large / small:.1f}x for 10x the layers   (linear = 10x)")


if __name__ == "__main__":
    main()
