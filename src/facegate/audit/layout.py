"""Where things live in the audit directory (durable writes: :mod:`facegate.atomicfile`).

``<data_dir>/audit/`` holds:

* ``segment-000001.jsonl``, ``segment-000002.jsonl``, ...: the log, one entry per line
  (:mod:`facegate.audit.chain`); only the highest-numbered segment is ever appended to.
* ``HEAD.json``: the latest checkpoint, replaced atomically after its line is durable.
* ``public.key``: the checkpoint signing key's public half (base64 of the 32 raw bytes).
* ``LOCK``: held (``flock``) by the one process that has the log open for writing.
* ``torn-segment-NNNNNN-OFFSET.bin``: bytes of an incomplete last line moved aside by recovery.

Every file is created with mode 0600 and the directory with 0700 (:data:`FILE_MODE`,
:data:`DIR_MODE`), whatever the process umask: the log names organisations, cases and FaceIds.

The signing key itself lives outside this directory (``<data_dir>/audit-signing.key``), so the
directory can be copied or published without it.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import os
import re
from collections.abc import Callable
from pathlib import Path

AUDIT_DIRNAME = "audit"
HEAD_NAME = "HEAD.json"
PUBLIC_KEY_NAME = "public.key"
LOCK_NAME = "LOCK"
SIGNING_KEY_NAME = "audit-signing.key"
FILE_MODE = 0o600
"""The mode of every file facegate creates under its data directory (the umask can only
narrow it)."""
DIR_MODE = 0o700
"""The mode of every directory facegate creates under (and as) its data directory."""

_SEGMENT = re.compile(r"segment-(\d{6,})\.jsonl")


def audit_dir_of(data_dir: Path) -> Path:
    """``<data_dir>/audit``."""
    return data_dir / AUDIT_DIRNAME


def segment_name(number: int) -> str:
    """``segment-000001.jsonl`` for 1 (six digits, more when needed)."""
    return f"segment-{number:06d}.jsonl"


def segments(audit_dir: Path) -> list[tuple[int, Path]]:
    """The segment files of ``audit_dir`` as ``(number, path)``, in order (may have gaps)."""
    found = []
    for path in audit_dir.iterdir():
        match = _SEGMENT.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def torn_name(segment: str, offset: int) -> str:
    """Where recovery keeps the torn bytes found at ``offset`` of ``segment``."""
    return f"torn-{segment.removesuffix('.jsonl')}-{offset}.bin"


def writer_active(audit_dir: Path) -> bool:
    """Whether a process holds the log open for writing (its last line may be in flight)."""
    try:
        fd = os.open(audit_dir / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)
    return False


FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02


@functools.cache
def _libc_fallocate() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``fallocate(2)`` (the os module only has ``posix_fallocate``, which changes
    the file's size); None where the C library has none."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = getattr(libc, "fallocate64", None) or libc.fallocate
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return function


def allocate(fd: int, offset: int, length: int, *, release: bool = False) -> None:
    """Allocate ``length`` bytes of disk from ``offset`` without changing the file's size
    (``FALLOC_FL_KEEP_SIZE``), so later writes there cannot fail for want of space; or, with
    ``release``, give such an allocation back (``FALLOC_FL_PUNCH_HOLE``). Raises ``OSError``
    (``EOPNOTSUPP`` where the system or file system cannot do it)."""
    function = _libc_fallocate()
    if function is None:
        raise OSError(errno.EOPNOTSUPP, "fallocate is not available here")
    mode = FALLOC_FL_KEEP_SIZE | (FALLOC_FL_PUNCH_HOLE if release else 0)
    if function(fd, mode, offset, length) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
