"""Replacing a file so that a reader, or the file system after a crash, sees the old content or
the new one, never a mix.

:func:`write_atomic` writes a temporary file next to the target (``.<name>.<random>.tmp``,
created exclusively), sets its mode, writes every byte, fsyncs it, renames it over the target
and fsyncs the directory, so the rename itself is durable. A failure before the rename removes
the temporary file and leaves the target as it was; a crash may leave a ``.*.tmp`` file behind,
which its owner may delete (the audit log does at start). Imports nothing of facegate.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (created, renamed files) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a short write is retried, an error raised)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably (module docstring); the new file
    has exactly ``mode`` (the umask does not apply). Private (0600) unless told otherwise."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            os.fchmod(fd, mode)
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
