"""netspec.files.atomic_write: the old file or the new one, never half of one."""

from __future__ import annotations

import os
import stat

import pytest

from netspec.files import atomic_write


def test_writes_text_and_bytes_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "out.py"
    assert atomic_write(path, "π = 3\n") == path
    assert path.read_bytes() == "π = 3\n".encode()
    atomic_write(str(path), b"\x89PNG")
    assert path.read_bytes() == b"\x89PNG"
    assert os.listdir(tmp_path) == ["out.py"]


def test_a_failure_mid_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "out.svg"
    path.write_text("old")

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)  # after some bytes are written, before the replace
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, "new" * 100_000)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.svg"]
    monkeypatch.undo()
    with pytest.raises(UnicodeEncodeError):
        atomic_write(path, "bad \ud800")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.svg"]


def test_a_missing_folder_is_an_error_and_permissions_are_kept(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "nowhere" / "out.dot", "x")
    path = tmp_path / "run.sh"
    path.write_text("old")
    path.chmod(0o750)
    atomic_write(path, "new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o750
    fresh = tmp_path / "fresh.txt"
    atomic_write(fresh, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
