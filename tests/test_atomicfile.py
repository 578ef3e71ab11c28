"""Atomic, durable file replacement (:mod:`facegate.atomicfile`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from facegate.atomicfile import write_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_and_replaces_with_exactly_the_mode_asked(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    old = os.umask(0o077)  # the umask does not narrow it
    try:
        write_atomic(target, b"one", 0o644)
    finally:
        os.umask(old)
    assert (target.read_bytes(), _mode(target)) == (b"one", 0o644)
    write_atomic(target, b"two")
    assert (target.read_bytes(), _mode(target)) == (b"two", 0o600)  # private by default
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.bin"
    write_atomic(target, b"old")

    def full(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
