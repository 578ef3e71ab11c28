"""Finding the end of a segment and repairing a torn last line after a crash.

A crash (kill -9, power loss) during ``AuditLog.append`` can leave the last segment ending in
an incomplete line: bytes without the final newline, or (on file systems that extend a file
before its data reaches the disk) a last line that does not parse. Only the last line can be
torn, because every line is fsynced before the next one is written. :func:`scan_tail` finds the
last complete, parseable line; :func:`move_torn_bytes` keeps the torn bytes in a side file and
truncates the segment, so the chain can continue from the last complete entry.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from facegate.atomicfile import fsync_dir, write_atomic
from facegate.audit.layout import torn_name

_CHUNK = 64 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Tail:
    """The end of one segment file.

    ``good_end``: offset just after the last complete, parseable line (0 if none);
    ``size``: the file's size (``size > good_end`` means torn bytes follow);
    ``last_seq``/``last_hash``/``last_kind``: that line's entry (0/""/"" if none);
    ``lines``: the number of complete lines up to ``good_end``."""

    size: int
    good_end: int
    last_seq: int
    last_hash: str
    last_kind: str
    lines: int

    @property
    def torn_bytes(self) -> int:
        return self.size - self.good_end


def _rfind_newline(fd: int, end: int) -> int:
    """The offset of the last ``\\n`` before ``end``, or -1."""
    while end > 0:
        start = max(0, end - _CHUNK)
        chunk = os.pread(fd, end - start, start)
        found = chunk.rfind(b"\n")
        if found >= 0:
            return start + found
        end = start
    return -1


def _count_newlines(fd: int, end: int) -> int:
    count, offset = 0, 0
    while offset < end:
        chunk = os.pread(fd, min(16 * _CHUNK, end - offset), offset)
        if not chunk:
            break
        count += chunk.count(b"\n")
        offset += len(chunk)
    return count


def parse_entry_head(line: bytes) -> tuple[int, str, str] | None:
    """``(seq, hash, record kind)`` of a complete line, or None if it does not parse as an
    entry. The hash is not checked here (that is :mod:`facegate.audit.verify`'s job)."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    seq, digest, record = obj.get("seq"), obj.get("hash"), obj.get("record")
    if type(seq) is not int or not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
        return None
    return seq, digest, record["kind"]


def scan_tail(path: Path) -> Tail:
    """Find the last complete, parseable line of ``path``.

    A last line without its newline, or a last complete line that does not parse, counts as
    torn. Raises ``ValueError`` if the line before a torn one does not parse either (that is
    not crash damage: the log must be examined with ``facegate audit verify``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        last_nl = _rfind_newline(fd, size)
        end = last_nl + 1  # end of the last newline-terminated line (0 if none)
        for attempt in range(2):
            if end == 0:
                return Tail(size, 0, 0, "", "", 0)
            start = _rfind_newline(fd, end - 1) + 1
            parsed = parse_entry_head(os.pread(fd, end - start, start))
            if parsed is not None:
                seq, digest, kind = parsed
                return Tail(size, end, seq, digest, kind, _count_newlines(fd, end))
            if attempt == 0 and end == size:
                end = start  # the last complete line is unparseable: treat it as torn
                continue
            break
        raise ValueError(f"{path.name}: the line ending at byte {end} is not a valid entry")
    finally:
        os.close(fd)


def move_torn_bytes(path: Path, tail: Tail) -> str:
    """Copy the bytes after ``tail.good_end`` to ``torn-<segment>-<offset>.bin`` next to the
    segment (durably), then truncate the segment to ``good_end`` and fsync it. Returns the side
    file's name. Raises ``OSError``."""
    fd = os.open(path, os.O_RDWR)
    try:
        torn = os.pread(fd, tail.size - tail.good_end, tail.good_end)
        name = torn_name(path.name, tail.good_end)
        write_atomic(path.parent / name, torn, mode=0o600)
        os.ftruncate(fd, tail.good_end)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)
    return name


def last_line(path: Path, end: int | None = None) -> bytes | None:
    """The last newline-terminated line of ``path`` that ends at or before ``end`` (default:
    the file's size), newline included; None if there is none."""
    fd = os.open(path, os.O_RDONLY)
    try:
        stop = os.fstat(fd).st_size if end is None else end
        last_nl = _rfind_newline(fd, stop)
        if last_nl < 0:
            return None
        start = _rfind_newline(fd, last_nl) + 1
        return os.pread(fd, last_nl + 1 - start, start)
    finally:
        os.close(fd)
