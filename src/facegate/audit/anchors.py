"""The anchor chain: one hash chain across the audit chains of several servers, and its checks.

Several servers sharing one store each write their own audit chain (:mod:`facegate.audit.log`).
After every signed checkpoint a server inserts one *anchor* into the store's ``audit_anchors``
table (``facegate.store.anchors``): the checkpoint's place in its chain (the signing key's id,
segment file, the checkpoint entry's ``seq`` and ``hash``), the time, the previous anchor's
hash and its own hash. The insert runs under the store's writer lock, so the anchors form one
linear chain in the order checkpoints were committed; the anchor chain's last hash pins the
whole deployment's history.

An anchor's hash (:func:`anchor_hash`) is the SHA-256, in lowercase hex, of the canonical JSON
(:func:`facegate.audit.chain.canonical`) of::

    {"format": "facegate-anchor-v1", "anchor_seq": n, "key_id": "<16 hex>",
     "segment": "segment-000001.jsonl", "checkpoint_seq": s, "checkpoint_hash": "<64 hex>",
     "created_at": <epoch s, float>, "prev_hash": "<64 hex>"}

The first anchor (``anchor_seq`` 1) has ``prev_hash`` :data:`GENESIS` (64 zeros); anchor ``n``
has the hash of anchor ``n - 1``.

:func:`verify_anchors` takes the anchor rows as plain mappings (the store's columns) and the
server chains' directories with their public keys, and checks:

* the anchor chain: ``anchor_seq`` runs 1, 2, 3... without gaps (``anchor gap``/``anchor
  order``), each ``prev_hash`` is the previous anchor's hash (``anchor link``), and each stored
  hash is the recomputed one (``anchor hash``);
* every server chain on its own (:func:`facegate.audit.verify.verify`);
* every anchor names a server whose chain was supplied (``unknown server``) and a checkpoint of
  that chain with the same seq, entry hash and segment (``checkpoint missing``: the chain was
  truncated or rewritten before it; ``checkpoint mismatch``). The checkpoint's signature is
  checked by the chain's own verification;
* each server's anchors name strictly increasing checkpoint seqs (``server order``).

Deleting or reordering anchors, and truncating or rewriting a server's chain before its last
anchor, are therefore detected. Not detected: anchors removed from the end of the anchor chain,
or the whole anchor chain recomputed after an edit (anchors are not signed): compare the anchor
head with a copy kept elsewhere. Checkpoints after a server's last anchor (a store outage, or
the last moments before a crash) are reported as a warning: a later anchor of that server would
cover them, since a checkpoint vouches for everything before it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from facegate.audit.chain import GENESIS, canonical
from facegate.audit.checkpoint import CHECKPOINT
from facegate.audit.errors import AuditReadError
from facegate.audit.log import iter_entries
from facegate.audit.signing_key import key_id
from facegate.audit.verify import VerifyResult, verify

ANCHOR_FORMAT = "facegate-anchor-v1"
ANCHOR_FIELDS = (
    "anchor_seq",
    "key_id",
    "segment",
    "checkpoint_seq",
    "checkpoint_hash",
    "created_at",
    "prev_hash",
)
"""The fields an anchor's hash covers (every column but ``anchor_hash``)."""

__all__ = [
    "ANCHOR_FIELDS",
    "GENESIS",
    "Anchor",
    "AnchorProblem",
    "AnchorsResult",
    "anchor_hash",
    "verify_anchors",
]


def anchor_hash(fields: Mapping[str, Any]) -> str:
    """The hash of an anchor whose :data:`ANCHOR_FIELDS` are in ``fields`` (extra keys, such as
    a stored ``anchor_hash``, are ignored). Raises ``KeyError`` if a field is missing."""
    doc: dict[str, Any] = {name: fields[name] for name in ANCHOR_FIELDS}
    doc["anchor_seq"] = int(doc["anchor_seq"])
    doc["checkpoint_seq"] = int(doc["checkpoint_seq"])
    doc["created_at"] = float(doc["created_at"])
    doc["format"] = ANCHOR_FORMAT
    return hashlib.sha256(canonical(doc)).hexdigest()


@dataclass(frozen=True)
class Anchor:
    """One row of ``audit_anchors``."""

    anchor_seq: int
    key_id: str
    segment: str
    checkpoint_seq: int
    checkpoint_hash: str
    created_at: float
    prev_hash: str
    anchor_hash: str

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> Anchor:
        """An anchor from a row read by column name (raises ``KeyError``/``ValueError``)."""
        return cls(
            anchor_seq=int(row["anchor_seq"]),
            key_id=str(row["key_id"]),
            segment=str(row["segment"]),
            checkpoint_seq=int(row["checkpoint_seq"]),
            checkpoint_hash=str(row["checkpoint_hash"]),
            created_at=float(row["created_at"]),
            prev_hash=str(row["prev_hash"]),
            anchor_hash=str(row["anchor_hash"]),
        )

    def fields(self) -> dict[str, Any]:
        """The fields its hash covers (:data:`ANCHOR_FIELDS`)."""
        return {name: getattr(self, name) for name in ANCHOR_FIELDS}


@dataclass(frozen=True)
class AnchorProblem:
    """A problem with one anchor (``anchor_seq``; None for a whole server chain) or chain."""

    kind: str
    anchor_seq: int | None
    key_id: str | None
    detail: str

    def __str__(self) -> str:
        where = f"anchor {self.anchor_seq}" if self.anchor_seq is not None else "server"
        who = f" (server key {self.key_id})" if self.key_id else ""
        return f"{self.kind} at {where}{who}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "anchor_seq": self.anchor_seq,
            "key_id": self.key_id,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AnchorsResult:
    """What :func:`verify_anchors` found: every problem (not only the first), the server chains'
    own results (in the order given), anchors per server key id, and the anchor chain's head
    (``head_seq``/``head_hash``: the values to pin elsewhere)."""

    anchors: int
    head_seq: int
    head_hash: str
    chains: tuple[VerifyResult, ...]
    per_server: dict[str, int]
    problems: tuple[AnchorProblem, ...]
    warnings: tuple[str, ...] = ()
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and all(chain.ok for chain in self.chains)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "anchors": self.anchors,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "per_server": dict(sorted(self.per_server.items())),
            "problems": [p.to_json() for p in self.problems],
            "warnings": list(self.warnings),
            "chains": [chain.to_json() for chain in self.chains],
            "elapsed_s": round(self.elapsed_s, 6),
        }


@dataclass
class _Chain:
    """A verified server chain and its checkpoints (seq -> (hash, segment)) up to the last
    entry its verification vouched for."""

    result: VerifyResult
    checkpoints: dict[int, tuple[str, str]] = field(default_factory=dict)
    last_anchored: int = 0


def _load_chain(audit_dir: Path, public_key: Ed25519PublicKey) -> _Chain:
    result = verify(audit_dir, public_key)
    chain = _Chain(result)
    try:
        for entry in iter_entries(audit_dir):
            if entry.seq > result.last_seq:
                break  # beyond what verification vouched for
            if entry.record.get("kind") == CHECKPOINT:
                chain.checkpoints[entry.seq] = (entry.hash, entry.segment)
    except AuditReadError:
        pass  # the chain's own result reports the damage
    return chain


def verify_anchors(
    rows: Iterable[Mapping[str, Any]],
    servers: Sequence[tuple[Path, Ed25519PublicKey]],
) -> AnchorsResult:
    """Check the anchor chain ``rows`` (in ``anchor_seq`` order, as the store returns them)
    against the audit chains ``servers`` (audit directory, public key), as the module docstring
    describes. Never raises for damage: it is in ``problems`` or a chain's ``problem``. Raises
    :class:`AuditReadError` if an audit directory is missing or unreadable, ``ValueError`` if two
    servers have the same key id."""
    started = time.perf_counter()
    chains: dict[str, _Chain] = {}
    for audit_dir, public_key in servers:
        kid = key_id(public_key)
        if kid in chains:
            raise ValueError(f"{audit_dir}: key id {kid} is given twice (one chain per server)")
        chains[kid] = _load_chain(audit_dir, public_key)
    problems: list[AnchorProblem] = []
    per_server: dict[str, int] = {}
    count, prev, seq = 0, GENESIS, 0
    unknown: set[str] = set()
    for row in rows:
        try:
            anchor = Anchor.from_mapping(row)
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(AnchorProblem("bad anchor", None, None, f"unreadable row: {exc}"))
            continue
        count += 1
        problems.extend(_link_problems(anchor, seq, prev))
        seq, prev = anchor.anchor_seq, anchor.anchor_hash
        per_server[anchor.key_id] = per_server.get(anchor.key_id, 0) + 1
        chain = chains.get(anchor.key_id)
        if chain is None:
            if anchor.key_id not in unknown:
                unknown.add(anchor.key_id)
                problems.append(
                    AnchorProblem(
                        "unknown server",
                        anchor.anchor_seq,
                        anchor.key_id,
                        "no audit chain with this key id was given (pass its --data-dir)",
                    )
                )
            continue
        problems.extend(_checkpoint_problems(anchor, chain))
    warnings = [w for w in (_unanchored(kid, chain) for kid, chain in chains.items()) if w]
    if not count:
        warnings.append("the anchor chain is empty")
    return AnchorsResult(
        anchors=count,
        head_seq=seq,
        head_hash=prev,
        chains=tuple(chain.result for chain in chains.values()),
        per_server=per_server,
        problems=tuple(problems),
        warnings=tuple(warnings),
        elapsed_s=time.perf_counter() - started,
    )


def _link_problems(anchor: Anchor, seq: int, prev: str) -> list[AnchorProblem]:
    """The anchor chain's own checks: numbering, link to the previous anchor, own hash."""
    found = []
    n, kid = anchor.anchor_seq, anchor.key_id
    if n > seq + 1:
        missing = f"anchor {seq + 1}" if n == seq + 2 else f"anchors {seq + 1}..{n - 1}"
        found.append(AnchorProblem("anchor gap", n, kid, f"{missing} missing (deleted?)"))
    elif n <= seq:
        found.append(AnchorProblem("anchor order", n, kid, f"comes after anchor {seq}"))
    if anchor.prev_hash != prev:
        found.append(
            AnchorProblem(
                "anchor link",
                n,
                kid,
                f"prev_hash is {anchor.prev_hash[:16]}..., the anchor before it has hash "
                f"{prev[:16]}... (an anchor was deleted, reordered or edited)",
            )
        )
    if anchor_hash(anchor.fields()) != anchor.anchor_hash:
        found.append(
            AnchorProblem("anchor hash", n, kid, "the stored hash is not the anchor's (edited)")
        )
    return found


def _checkpoint_problems(anchor: Anchor, chain: _Chain) -> list[AnchorProblem]:
    """The anchor against its server's chain: the checkpoint exists, is identical, in order."""
    found = []
    n, kid, cp = anchor.anchor_seq, anchor.key_id, anchor.checkpoint_seq
    if cp <= chain.last_anchored:
        found.append(
            AnchorProblem(
                "server order",
                n,
                kid,
                f"names checkpoint seq {cp}, but an earlier anchor of this server named seq "
                f"{chain.last_anchored}",
            )
        )
    chain.last_anchored = max(chain.last_anchored, cp)
    have = chain.checkpoints.get(cp)
    if have is None:
        found.append(
            AnchorProblem(
                "checkpoint missing",
                n,
                kid,
                f"names checkpoint seq {cp} in {anchor.segment}, which the chain in "
                f"{chain.result.audit_dir} does not have (verified up to seq "
                f"{chain.result.last_seq}): truncated or rewritten",
            )
        )
    elif have != (anchor.checkpoint_hash, anchor.segment):
        found.append(
            AnchorProblem(
                "checkpoint mismatch",
                n,
                kid,
                f"names seq {cp} with hash {anchor.checkpoint_hash[:16]}... in "
                f"{anchor.segment}; the chain has {have[0][:16]}... in {have[1]} (rewritten)",
            )
        )
    return found


def _unanchored(kid: str, chain: _Chain) -> str:
    later = sorted(seq for seq in chain.checkpoints if seq > chain.last_anchored)
    if not later:
        return ""
    return (
        f"server key {kid}: {len(later)} checkpoint(s) after its last anchor (seq "
        f"{later[0]}..{later[-1]}) are not anchored: a truncation back to its last anchor "
        "would not be detected"
    )
