"""Trusted heads: a small signed statement of how far the log reached, kept outside it.

Verification alone cannot tell a log from a copy of itself rolled back to an earlier signed state:
whoever holds the data directory (and with it the signing key) can cut the log after an earlier
checkpoint and put that checkpoint back in ``HEAD.json``; every hash, link and signature still
verifies. Only a record of the head kept where that person cannot reach it catches the rollback.

A head statement is one line of canonical JSON::

    {"format": "facegate-audit-head-v1", "seq": n, "hash": <hash of entry n>,
     "checkpoint_seq": n + 1, "checkpoint_hash": <hash of the checkpoint entry>,
     "at": <the checkpoint's time>, "key_id": <16 hex>, "signature": <base64>}

It is taken from a checkpoint of the log (``facegate audit head --export``): ``signature`` is
that checkpoint's Ed25519 signature over ``seq``/``hash`` (the message of
:func:`facegate.audit.checkpoint.signed_message`), so a statement shows it was made from a log
signed by that key, and making one needs no private key. ``verify --trusted-head FILE`` then
fails unless the log holds entry ``seq`` with ``hash`` and entry ``checkpoint_seq`` with
``checkpoint_hash``: a log that ends before them was cut short or rolled back, a log with other
hashes there was rewritten. Everything up to ``seq`` is then fixed by the chain; entries after
the statement are covered by the next statement an operator pins.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from facegate.audit.chain import canonical
from facegate.audit.checkpoint import CHECKPOINT, signed_message
from facegate.audit.signing_key import key_id

HEAD_FORMAT = "facegate-audit-head-v1"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX16 = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class HeadStatement:
    """A trusted head (see the module docstring)."""

    seq: int
    hash: str
    checkpoint_seq: int
    checkpoint_hash: str
    at: float
    key_id: str
    signature: str

    @classmethod
    def from_checkpoint(
        cls, checkpoint_seq: int, checkpoint_hash: str, record: dict[str, Any]
    ) -> HeadStatement:
        """The statement of the checkpoint entry ``checkpoint_seq`` (hash ``checkpoint_hash``,
        record ``record``). Raises ``ValueError`` if ``record`` is not a checkpoint."""
        if record.get("kind") != CHECKPOINT:
            raise ValueError(f"seq {checkpoint_seq} is not a checkpoint")
        at = record.get("at")
        return cls(
            seq=int(record["signed_seq"]),
            hash=str(record["signed_hash"]),
            checkpoint_seq=checkpoint_seq,
            checkpoint_hash=checkpoint_hash,
            at=float(at) if isinstance(at, int | float) else 0.0,
            key_id=str(record["key_id"]),
            signature=str(record["signature"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": HEAD_FORMAT,
            "seq": self.seq,
            "hash": self.hash,
            "checkpoint_seq": self.checkpoint_seq,
            "checkpoint_hash": self.checkpoint_hash,
            "at": self.at,
            "key_id": self.key_id,
            "signature": self.signature,
        }

    def to_bytes(self) -> bytes:
        """The statement as written to a file: canonical JSON and a newline."""
        return canonical(self.to_json()) + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> HeadStatement:
        """Raises ``ValueError`` (saying what is wrong) if ``data`` is not a head statement."""
        try:
            doc = json.loads(data)
        except ValueError:
            raise ValueError("not JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != HEAD_FORMAT:
            raise ValueError(f"not a {HEAD_FORMAT} statement (facegate audit head --export)")
        seq, cp_seq, at = doc.get("seq"), doc.get("checkpoint_seq"), doc.get("at")
        if type(seq) is not int or seq < 0 or type(cp_seq) is not int or cp_seq != seq + 1:
            raise ValueError("seq must be an integer and checkpoint_seq the next one")
        for name in ("hash", "checkpoint_hash"):
            if not isinstance(doc.get(name), str) or not _HEX64.fullmatch(doc[name]):
                raise ValueError(f"{name} must be 64 hex digits")
        if not isinstance(doc.get("key_id"), str) or not _HEX16.fullmatch(doc["key_id"]):
            raise ValueError("key_id must be 16 hex digits")
        if not isinstance(doc.get("signature"), str):
            raise ValueError("signature must be a string")
        if not isinstance(at, int | float) or isinstance(at, bool):
            raise ValueError("at must be a number")
        return cls(
            seq, doc["hash"], cp_seq, doc["checkpoint_hash"], float(at), doc["key_id"],
            doc["signature"],
        )  # fmt: skip

    def problem(self, public_key: Ed25519PublicKey) -> str | None:
        """Why the statement is not signed by ``public_key``, or None."""
        kid = key_id(public_key)
        if self.key_id != kid:
            return f"signed by key id {self.key_id}, verifying with key id {kid}"
        try:
            signature = base64.b64decode(self.signature, validate=True)
            public_key.verify(signature, signed_message(self.seq, self.hash))
        except (binascii.Error, ValueError, InvalidSignature):
            return f"the signature over seq {self.seq} does not verify with key {kid}"
        return None

    def describe(self) -> str:
        return f"seq {self.seq} (hash {self.hash[:16]}..., checkpoint seq {self.checkpoint_seq})"
