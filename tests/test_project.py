"""What a fresh clone installs and what `make demo` and `make bench` do (pyproject.toml, Makefile)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_is_an_spdx_string_which_setuptools_77_reads_without_warning():
    assert PROJECT["project"]["license"] == "MIT"
    assert PROJECT["build-system"]["requires"] == ["setuptools>=77"]


def test_benchmark_baselines_are_the_bench_extra_and_no_test_needs_them():
    extras = PROJECT["project"]["optional-dependencies"]
    names = {extra: {re.split(r"[<>=]", r)[0] for r in reqs} for extra, reqs in extras.items()}
    assert names["bench"] == {"torchinfo", "torchview"} and not names["bench"] & names["test"]
    used = [p for p in (ROOT / "tests").rglob("*.py") if re.search(r"^\s*(import|from) torch(info|view)\b",
                                                                    p.read_text(), re.M)]
    assert used == []
    makefile = (ROOT / "Makefile").read_text()
    assert "bench: setup $(VENV)/.bench" in makefile and '-e ".[test,bench]"' in makefile


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_compiles_one_spec_and_says_where_everything_went():
    run = subprocess.run(["make", "-n", "--no-print-directory", "demo"], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    assert re.search(r"netspec compile -q specs/\w+\.yaml -o out/\w+\.py", run.stdout)
    assert re.search(r"netspec train specs/cnn_digits\.yaml --out runs/cnn_digits-\d{8}-\d{6}", run.stdout)
    # the run's first and last lines, not its 100 epoch lines (they stay in the run folder's log.txt)
    assert re.search(r"--out (runs/\S+) -q && sed -n '1p;\$p' \1/log\.txt", run.stdout)
    for line in ("gallery:    docs/gallery/", "compiled:   out/", "run folder: runs/cnn_digits-",
                 "netspec is not on your PATH: run .venv/bin/netspec, or 'source .venv/bin/activate' first"):
        assert f'echo "{line}' in run.stdout, line
