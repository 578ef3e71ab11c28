"""The data directory is private: mode 0700, every file in it 0600.

It holds face descriptors and external image ids (the SQLite file and its -wal), held review
results, the audit log (organisations, cases, FaceIds), the master key, the audit signing key
and the bootstrap credentials. Under the usual umask (022) SQLite and plain ``open`` create
0644 files in a 0755 directory: any local user could copy them.

* Creation: every file facegate creates there is created 0600 and every directory 0700
  explicitly (``os.open(..., 0o600)``, ``mkdir(mode=0o700)``; the SQLite file is created
  0600 before SQLite opens it, and SQLite gives its -wal and -shm the database file's mode), so
  the umask can only narrow them; ``facegate serve`` also sets its umask to 077.
* Start-up check (:func:`secure_data_dir`, from ``facegate serve`` and ``Services.open``): the
  data directory and everything under it (symlinks are not followed) lose their group and other
  permission bits, each fix is logged as a warning and recorded in the audit chain
  (``integrity``, ``datadir.permissions_fixed``): the contents may already have been copied,
  and the record says since when they are private. A path that cannot be changed (owned by
  another user) is refused with :class:`DataDirError`, and so is a secret file (the audit
  signing key, ``master.key``, ``credentials``) readable by group or others: facegate always
  created those 0600, so someone widened them, and fixing the mode would hide that the secret
  may be known; the message says to restrict it and replace the secret.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from facegate.audit.layout import DIR_MODE, SIGNING_KEY_NAME
from facegate.errors import FacegateError

SECRET_FILES = frozenset({SIGNING_KEY_NAME, "master.key", "credentials"})
"""Files at the top of the data directory that hold secrets: refused, not fixed."""
_OPEN_BITS = 0o077

_logger = logging.getLogger("facegate.datadir")


class DataDirError(FacegateError):
    """The data directory cannot be made private, or a secret in it was readable by others."""

    http_status = 500


def create_private(data_dir: Path) -> None:
    """Create ``data_dir`` (and missing parents) with the data directory's mode 0700."""
    if not data_dir.is_dir():
        data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.chmod(data_dir, DIR_MODE)  # mkdir's mode is narrowed by the umask, never widened


def secure_data_dir(data_dir: Path) -> tuple[str, ...]:
    """Create ``data_dir`` if needed and take group/other permissions away from it and from
    everything under it. Returns the paths fixed (relative to ``data_dir``, ``.`` for itself;
    each also logged as a warning). Raises :class:`DataDirError` for a secret file readable by
    group or others or a path whose mode cannot be changed."""
    create_private(data_dir)
    fixed: list[str] = []
    _secure(data_dir, data_dir, fixed)
    for root, dirs, files in os.walk(data_dir):
        for name in [*dirs, *files]:
            _secure(Path(root) / name, data_dir, fixed)
    return tuple(fixed)


def _secure(path: Path, data_dir: Path, fixed: list[str]) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:  # removed meanwhile (a temporary file)
        return
    if stat.S_ISLNK(info.st_mode) or not info.st_mode & _OPEN_BITS:
        return
    mode = stat.S_IMODE(info.st_mode)
    relative = path.relative_to(data_dir).as_posix() if path != data_dir else "."
    if path.parent == data_dir and path.name in SECRET_FILES and stat.S_ISREG(info.st_mode):
        raise DataDirError(
            f"{path}: holds a secret but is readable by group or others (mode {mode:o}); "
            "facegate creates it 0600, so someone widened it and the secret may be known: "
            f"chmod 600 {path} and replace the secret (see docs/audit.md, docs/security.md)"
        )
    try:
        os.chmod(path, mode & ~_OPEN_BITS)
    except OSError as exc:
        raise DataDirError(
            f"{path}: mode {mode:o} lets group or others in and cannot be changed "
            f"({exc.strerror or exc}; owner uid {info.st_uid}): chmod go-rwx it, or run "
            "facegate as its owner"
        ) from exc
    _logger.warning(
        "data directory: %s was mode %o (group/other access); now %o",
        relative,
        mode,
        mode & ~_OPEN_BITS,
    )
    fixed.append(relative)
