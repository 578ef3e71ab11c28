"""Signed checkpoints and ``HEAD.json``.

A checkpoint is an ordinary entry of the chain whose record is::

    {"kind": "checkpoint", "at": <epoch s>, "signed_seq": n, "signed_hash": <hash of entry n>,
     "key_id": <16 hex>, "signature": <base64 Ed25519 signature>}

where entry ``n`` is the one just before the checkpoint and the signature covers the ASCII bytes
``facegate-audit-v1:{n}:{signed_hash}``. Since every hash commits to everything before it, one
valid signature vouches for the whole log up to ``n``: a rewrite of any earlier entry needs the
private key to produce a matching checkpoint.

``HEAD.json`` repeats the latest checkpoint together with the checkpoint entry's own ``seq`` and
``hash``; it is replaced atomically after that entry is durable, so a log cut short before its
last checkpoint no longer reaches HEAD's ``seq`` and verification says so.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from facegate.audit.chain import FORMAT, canonical

CHECKPOINT = "checkpoint"
RECOVERY = "recovery"
RESERVED_KINDS = frozenset({CHECKPOINT, RECOVERY})
"""Kinds only the log itself writes; ``AuditLog.append`` refuses them from callers."""

CHECKPOINT_KEYS = frozenset({"kind", "at", "signed_seq", "signed_hash", "key_id", "signature"})
_HEX64 = re.compile(r"[0-9a-f]{64}")


def signed_message(signed_seq: int, signed_hash: str) -> bytes:
    """The bytes a checkpoint signature covers."""
    return f"{FORMAT}:{signed_seq}:{signed_hash}".encode("ascii")


def checkpoint_record(
    key: Ed25519PrivateKey, kid: str, signed_seq: int, signed_hash: str, at: float
) -> dict[str, Any]:
    """A checkpoint record signing entry ``signed_seq`` whose hash is ``signed_hash``."""
    signature = key.sign(signed_message(signed_seq, signed_hash))
    return {
        "kind": CHECKPOINT,
        "at": at,
        "signed_seq": signed_seq,
        "signed_hash": signed_hash,
        "key_id": kid,
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def checkpoint_problem(
    record: dict[str, Any], public_key: Ed25519PublicKey, kid: str
) -> tuple[str, str] | None:
    """``(kind, detail)`` if ``record`` is not a well-formed checkpoint validly signed by
    ``public_key`` (whose key id is ``kid``), else None. Does not check which entry it signs."""
    if set(record) != CHECKPOINT_KEYS:
        return "bad checkpoint", f"fields {sorted(record)} (expected {sorted(CHECKPOINT_KEYS)})"
    seq, digest = record["signed_seq"], record["signed_hash"]
    if type(seq) is not int or not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        return "bad checkpoint", "signed_seq must be an integer and signed_hash 64 hex digits"
    if record["key_id"] != kid:
        return (
            "key mismatch",
            f"signed by key id {record['key_id']!r}, verifying with key id {kid!r}",
        )
    try:
        signature = base64.b64decode(str(record["signature"]), validate=True)
        public_key.verify(signature, signed_message(seq, digest))
    except (binascii.Error, ValueError, InvalidSignature):
        return "bad signature", f"the signature over seq {seq} does not verify with key {kid}"
    return None


@dataclass(frozen=True)
class Head:
    """The content of ``HEAD.json``: the checkpoint entry's ``seq``/``hash``/``segment`` and its
    record."""

    seq: int
    hash: str
    segment: str
    checkpoint: dict[str, Any]

    def to_bytes(self) -> bytes:
        return (
            canonical(
                {
                    "format": FORMAT,
                    "seq": self.seq,
                    "hash": self.hash,
                    "segment": self.segment,
                    "checkpoint": self.checkpoint,
                }
            )
            + b"\n"
        )

    @classmethod
    def parse(cls, data: bytes) -> Head:
        """Raises ``ValueError`` if ``data`` is not a HEAD document of this format."""
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} HEAD document")
        seq, digest, segment, record = (
            doc.get("seq"),
            doc.get("hash"),
            doc.get("segment"),
            doc.get("checkpoint"),
        )
        if type(seq) is not int or seq < 1:
            raise ValueError("seq must be a positive integer")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise ValueError("hash must be 64 hex digits")
        if not isinstance(segment, str) or not isinstance(record, dict):
            raise ValueError("segment must be a string and checkpoint an object")
        return cls(seq, digest, segment, record)
