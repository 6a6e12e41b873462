"""`netspec draw -o -` and --format (the rest: tests/test_draw.py)."""

import shutil
import subprocess
import sys

import pytest

from tests.cli.helpers import BAD, GOOD, ROOT, call, write

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs graphviz's dot")


def test_dot_on_stdout(tmp_path, capsys):
    code, out, err = call(capsys, "draw", write(tmp_path, "net.yaml", GOOD), "-o", "-")
    assert code == 0 and out.startswith("digraph good {") and err == ""


@needs_dot
def test_svg_on_stdout(tmp_path, capsys):
    code, out, _ = call(capsys, "draw", write(tmp_path, "net.yaml", GOOD), "-o", "-", "--format", "svg")
    assert code == 0 and "<svg" in out and not list(tmp_path.glob("*.svg"))


@needs_dot
def test_png_into_a_pipe(tmp_path):
    spec = write(tmp_path, "net.yaml", GOOD)
    run = subprocess.run([sys.executable, "-m", "netspec", "draw", str(spec), "-o", "-", "--format", "png"],
                         capture_output=True, cwd=ROOT, timeout=60)
    assert run.returncode == 0 and run.stdout.startswith(b"\x89PNG")


def test_binary_to_a_terminal_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, err = call(capsys, "draw", write(tmp_path, "net.yaml", GOOD), "-o", "-", "--format", "pdf")
    assert code == 2 and out == "" and "will not write binary data to a terminal" in err


def test_format_must_agree_with_the_file_s_ending(tmp_path, capsys):
    spec = write(tmp_path, "net.yaml", GOOD)
    code, _, err = call(capsys, "draw", spec, "-o", tmp_path / "net.svg", "--format", "png")
    assert code == 2 and "--format png does not match `net.svg`" in err
    assert call(capsys, "draw", spec, "-o", tmp_path / "net.dot", "--format", "dot")[0] == 0


def test_says_what_it_wrote(tmp_path, capsys):
    spec, out = write(tmp_path, "net.yaml", GOOD), tmp_path / "net.dot"
    assert call(capsys, "draw", spec, "-o", out) == (0, f"{spec}: wrote {out}\n", "")


def test_says_what_it_wrote_for_an_invalid_spec_too(tmp_path, capsys):
    """`draw` and `validate --draw` draw an invalid spec up to its errors: the errors on stderr, then where the
    diagram went on stdout (exit 1), as for a valid one (`-q` leaves the line out)."""
    bad, good, out = write(tmp_path, "bad.yaml", BAD), write(tmp_path, "good.yaml", GOOD), tmp_path / "net.dot"
    for argv in (["draw", bad, "-o", out], ["validate", bad, "--draw", out]):
        code, text, err = call(capsys, *argv)
        assert (code, text) == (1, f"{bad}: wrote {out} (up to its errors, in red)\n") and "5:5: error:" in err
        assert call(capsys, "-q", *argv)[:2] == (1, "")
    code, text, _ = call(capsys, "validate", good, "--draw", out)
    assert code == 0 and text.splitlines()[1:] == [f"{good}: wrote {out}"]
