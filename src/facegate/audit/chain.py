"""The hash chain: canonical JSON, entry hashes and the exact bytes of a log line.

Format (version ``facegate-audit-v1``; readers in other languages can rely on it):

* canonical JSON is ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
  allow_nan=False)`` encoded as ASCII: keys sorted at every level, no whitespace, non-ASCII as
  ``\\uXXXX`` escapes, floats as Python's shortest round-tripping ``repr``, NaN and infinities
  refused. Object keys must be strings.
* an entry is ``{"seq": n, "prev": P, "hash": H, "record": {...}}``: ``seq`` counts from 1 and
  grows by one per line across all segments; ``P`` is the previous entry's ``H`` (64 zeros for
  seq 1); ``H = sha256(canonical({"seq": n, "prev": P, "record": record})).hexdigest()``.
* a line is ``canonical(entry) + "\\n"``. Because ``"hash"`` sorts first, a line is exactly
  ``{"hash":"<H>",`` followed by the hashed body without its opening brace, so
  :func:`encode_entry` serialises the record once and a verifier can hash the raw bytes
  (:func:`hashed_body`) before parsing anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FORMAT = "facegate-audit-v1"
GENESIS = "0" * 64
"""The ``prev`` of the first entry."""

ENTRY_KEYS = frozenset({"seq", "prev", "hash", "record"})
LINE_PREFIX = b'{"hash":"'
BODY_OFFSET = len(LINE_PREFIX) + 64 + 2
"""Where the hashed body (minus its ``{``) starts in a line: after ``{"hash":"<64 hex>",``."""


@dataclass(frozen=True)
class Entry:
    """One line of the log: its place in the chain, the record, and where it was read.

    ``segment`` is the segment's file name (``segment-000001.jsonl``) and ``line`` the 1-based
    line number within it (both empty/0 for an entry not read from disk)."""

    seq: int
    prev: str
    hash: str
    record: dict[str, Any]
    segment: str = ""
    line: int = 0


def canonical(obj: Any) -> bytes:
    """The canonical JSON bytes of ``obj`` (see the module docstring).

    Raises ``ValueError`` for NaN/infinite floats and ``TypeError`` for values JSON cannot
    represent; call :func:`check_keys` first if ``obj`` might hold non-string keys."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def check_keys(obj: Any) -> None:
    """Raise ``TypeError`` if any mapping inside ``obj`` has a key that is not a string.

    ``json.dumps`` would turn ``1`` or ``True`` into ``"1"``/``"true"`` and sort the original
    keys, so the stored bytes would not be canonical for what a reader parses back."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for key, value in item.items():
                if not isinstance(key, str):
                    raise TypeError(f"record keys must be strings, not {type(key).__name__}")
                if isinstance(value, Mapping | list | tuple):
                    stack.append(value)
        elif isinstance(item, list | tuple):
            stack.extend(v for v in item if isinstance(v, Mapping | list | tuple))


def body_bytes(seq: int, prev: str, record_json: bytes) -> bytes:
    """``canonical({"seq": seq, "prev": prev, "record": record})`` given the record's
    canonical bytes (``prev`` must be 64 lowercase hex digits)."""
    return b'{"prev":"%s","record":%s,"seq":%d}' % (prev.encode("ascii"), record_json, seq)


def entry_hash(seq: int, prev: str, record: Mapping[str, Any]) -> str:
    """The hash of an entry, from its definition."""
    return hashlib.sha256(canonical({"seq": seq, "prev": prev, "record": record})).hexdigest()


def encode_entry(seq: int, prev: str, record: Mapping[str, Any]) -> tuple[str, bytes]:
    """``(hash, line)`` for a new entry; ``line`` ends with ``\\n``.

    Raises ``TypeError``/``ValueError`` if ``record`` cannot be serialised canonically."""
    check_keys(record)
    body = body_bytes(seq, prev, canonical(record))
    digest = hashlib.sha256(body).hexdigest()
    return digest, LINE_PREFIX + digest.encode("ascii") + b'",' + body[1:] + b"\n"


def hashed_body(line: bytes) -> bytes:
    """The bytes a line's hash covers, taken from the raw line (with or without its newline):
    ``{`` + everything after ``{"hash":"<64 hex>",``. Meaningful only if the line starts with
    that prefix."""
    end = len(line) - 1 if line.endswith(b"\n") else len(line)
    return b"{" + line[BODY_OFFSET:end]
