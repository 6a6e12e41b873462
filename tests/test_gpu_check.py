"""benchmarks/gpu_check.py: its every check runs on the CPU in the quick setting, so no path of it is dead on
machines without a GPU (the numbers it prints on a GPU are recorded in docs/performance.md)."""

from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def gpu_check(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import gpu_check

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield gpu_check
    torch.set_num_threads(threads)


def test_quick_on_the_cpu_runs_every_check_and_passes(gpu_check, capsys):
    assert gpu_check.main(["--device", "cpu", "--quick"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[3:]]
    assert [r[0] for r in rows] == ["resnet18"] * 7 + ["vit_tiny"] * 5
    for check in ("cpu vs cpu, fp32", "bf16 autocast + channels_last vs fp32", "torch.compile (eager) vs eager",
                  "3 training steps (compiled, bf16, channels_last, batch 2)",
                  "step time vs hand-written, eager, bf16", "step time vs hand-written, compiled (eager), bf16",
                  "peak memory, fp32 Adam, batch 2"):
        assert check in out
    assert "FAIL" not in out


def test_a_failed_check_fails_the_script(gpu_check):
    table = gpu_check.Table()
    table.add("m", "a check", True, "")
    table.add("m", "a measurement", None, "")
    assert not table.failed
    table.add("m", "another", False, "")
    assert table.failed


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine runs the check itself")
def test_without_cuda_it_says_so_and_exits_0(gpu_check, capsys):
    assert gpu_check.main([]) == 0
    assert "no CUDA device here" in capsys.readouterr().out
