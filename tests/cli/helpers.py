"""Running `netspec` in this process (fast) or in a child process (exit codes, imports, terminals)."""

import os
import subprocess
import sys
from pathlib import Path

from netspec.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
GOOD = "name: good\ninput: [4]\nlayers:\n  - linear: 2\n    name: fc\n"
BAD = ("name: bad\ninput: [3, 32, 32]\nlayers:\n  - conv2d: {out_channels: 8, kernel_size: 3}\n"
       "  - conv1d: {out_channels: 4, kernel_size: 3}\n")  # an error at 5:5, with a hint


def call(capsys, *args: str) -> tuple[int, str, str]:
    """`netspec ARGS...` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def netspec(*args, env: dict | None = None, cwd=ROOT, **kw) -> subprocess.CompletedProcess:
    """`python -m netspec ARGS...` in a child process, text out."""
    return subprocess.run([sys.executable, "-m", "netspec", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=300, **kw)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path
