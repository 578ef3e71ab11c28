"""Helpers that tamper with a log on disk the way an attacker (or a crash) would."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from facegate.audit.chain import canonical

SEGMENT1 = "segment-000001.jsonl"


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, content: list[bytes]) -> None:
    path.write_bytes(b"".join(content))


def entry(raw: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(raw)
    return obj


def encode(seq: int, prev: str, record: dict[str, Any]) -> tuple[str, bytes]:
    """A well-formed line, as anyone who knows the format (but not the key) can make."""
    digest = hashlib.sha256(canonical({"seq": seq, "prev": prev, "record": record})).hexdigest()
    full = {"seq": seq, "prev": prev, "hash": digest, "record": record}
    return digest, canonical(full) + b"\n"


def rechain(content: list[bytes], start: int, edits: dict[int, dict[str, Any]]) -> list[bytes]:
    """Rewrite lines from index ``start`` on with consistent hashes and links, applying the
    record replacements in ``edits`` (line index -> record). Checkpoint records are kept as
    they are (the attacker has no key)."""
    out = list(content[:start])
    prev = entry(content[start - 1])["hash"] if start else "0" * 64
    for index in range(start, len(content)):
        old = entry(content[index])
        record = edits.get(index, old["record"])
        prev, line = encode(old["seq"], prev, record)
        out.append(line)
    return out
