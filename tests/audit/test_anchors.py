"""The anchor chain's checks (facegate.audit.anchors): two servers' chains anchored in one
chain, then every kind of tampering with the anchors or the chains that it must catch."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from facegate.audit.anchors import GENESIS, anchor_hash, verify_anchors
from facegate.audit.chain import Entry
from facegate.audit.checkpoint import Head
from facegate.audit.layout import HEAD_NAME
from facegate.audit.log import AuditLog, CheckpointCallback, iter_entries
from facegate.audit.signing_key import key_id
from tests.audit.conftest import request_record
from tests.audit.edit import SEGMENT1, lines, write_lines


class Anchors:
    """An in-memory anchor chain, appended to as the store's repository does (one lock for the
    read of the latest row and the insert)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def callback(self, kid: str) -> CheckpointCallback:
        def anchor(entry: Entry) -> None:
            with self.lock:
                self._append(kid, entry)

        return anchor

    def _append(self, kid: str, entry: Entry) -> None:
        prev = self.rows[-1]["anchor_hash"] if self.rows else GENESIS
        row: dict[str, Any] = {
            "anchor_seq": len(self.rows) + 1,
            "key_id": kid,
            "segment": entry.segment,
            "checkpoint_seq": entry.seq,
            "checkpoint_hash": entry.hash,
            "created_at": 1_750_000_000.5 + len(self.rows),
            "prev_hash": prev,
        }
        row["anchor_hash"] = anchor_hash(row)
        self.rows.append(row)


def rehash(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Renumber and relink the whole chain, as someone with write access to the store can."""
    out: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        new = {**row, "anchor_seq": index + 1}
        new["prev_hash"] = out[-1]["anchor_hash"] if out else GENESIS
        new["anchor_hash"] = anchor_hash(new)
        out.append(new)
    return out


@dataclass
class Deployment:
    a: Path
    b: Path
    key_a: Ed25519PrivateKey
    key_b: Ed25519PrivateKey
    rows: list[dict[str, Any]]

    @property
    def servers(self) -> list[tuple[Path, Any]]:
        return [(self.a, self.key_a.public_key()), (self.b, self.key_b.public_key())]

    def check(self, rows: list[dict[str, Any]] | None = None) -> Any:
        return verify_anchors(self.rows if rows is None else rows, self.servers)


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    """Servers a and b writing in turns, a checkpoint every 5 entries, each anchored in one
    shared chain (a: 3 checkpoints + close's, b: 3, interleaved)."""
    anchors = Anchors()
    key_a, key_b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    a, b = tmp_path / "a" / "audit", tmp_path / "b" / "audit"
    logs = [
        AuditLog.open(a, key_a, checkpoint_every=5, on_checkpoint=anchors.callback(_kid(key_a))),
        AuditLog.open(b, key_b, checkpoint_every=5, on_checkpoint=anchors.callback(_kid(key_b))),
    ]
    for i in range(32):
        logs[i % 2].append(request_record(i))
    for log in logs:
        log.close()  # delivers the pending callbacks
    return Deployment(a, b, key_a, key_b, anchors.rows)


def _kid(key: Ed25519PrivateKey) -> str:
    return key_id(key.public_key())


def _kinds(result: Any) -> list[str]:
    return [p.kind for p in result.problems]


def test_an_untouched_deployment_verifies(deployment: Deployment) -> None:
    result = deployment.check()
    assert result.ok, result.problems
    assert result.anchors == len(deployment.rows) == 8
    assert set(result.per_server.values()) == {4}
    assert {r["key_id"] for r in deployment.rows} == {
        _kid(deployment.key_a),
        _kid(deployment.key_b),
    }
    assert result.head_seq == 8
    assert result.head_hash == deployment.rows[-1]["anchor_hash"]
    assert result.warnings == ()
    assert all(chain.ok for chain in result.chains)


def test_a_deleted_anchor_is_detected(deployment: Deployment) -> None:
    rows = deployment.rows[:3] + deployment.rows[4:]
    result = deployment.check(rows)
    assert not result.ok
    assert _kinds(result) == ["anchor gap", "anchor link"]
    assert result.problems[0].anchor_seq == 5


def test_reordered_anchors_are_detected(deployment: Deployment) -> None:
    rows = list(deployment.rows)
    rows[2], rows[3] = rows[3], rows[2]
    result = deployment.check(rows)
    assert "anchor order" in _kinds(result)
    assert "anchor link" in _kinds(result)


def test_reordered_and_rehashed_anchors_of_one_server_break_its_order(
    deployment: Deployment,
) -> None:
    rows = list(deployment.rows)
    first, second = [i for i, r in enumerate(rows) if r["key_id"] == rows[0]["key_id"]][:2]
    rows[first], rows[second] = rows[second], rows[first]
    result = deployment.check(rehash(rows))
    assert _kinds(result) == ["server order"]


def test_an_altered_anchor_is_detected(deployment: Deployment) -> None:
    rows = [dict(r) for r in deployment.rows]
    rows[4]["created_at"] += 1.0
    assert _kinds(deployment.check(rows)) == ["anchor hash"]
    rows[4]["anchor_hash"] = anchor_hash(rows[4])  # recomputed: the next anchor's link breaks
    result = deployment.check(rows)
    assert _kinds(result) == ["anchor link"]
    assert result.problems[0].anchor_seq == 6


def test_an_anchor_naming_another_checkpoint_hash_is_detected(deployment: Deployment) -> None:
    rows = [dict(r) for r in deployment.rows]
    rows[2]["checkpoint_hash"] = "ab" * 32
    result = deployment.check(rehash(rows))  # the whole anchor chain made consistent again
    assert _kinds(result) == ["checkpoint mismatch"]
    assert result.problems[0].anchor_seq == 3


def test_a_chain_truncated_before_its_last_anchor_is_detected(deployment: Deployment) -> None:
    # Cut server a's chain back to its second checkpoint and rewrite HEAD.json to match, so
    # the chain verifies on its own: only the anchors can tell.
    entries = list(iter_entries(deployment.a))
    checkpoints = [e for e in entries if e.record["kind"] == "checkpoint"]
    keep = checkpoints[1]
    path = deployment.a / SEGMENT1
    write_lines(path, lines(path)[: keep.line])
    head = Head(keep.seq, keep.hash, keep.segment, keep.record)
    (deployment.a / HEAD_NAME).write_bytes(head.to_bytes())
    result = deployment.check()
    assert result.chains[0].ok  # the truncated chain alone looks fine
    assert not result.ok
    assert _kinds(result) == ["checkpoint missing", "checkpoint missing"]
    assert {p.key_id for p in result.problems} == {_kid(deployment.key_a)}


def test_a_chain_rewritten_after_an_anchor_is_broken(deployment: Deployment) -> None:
    path = deployment.b / SEGMENT1
    content = lines(path)
    content[1] = content[1].replace(b"req-0000", b"req-9999")
    write_lines(path, content)
    result = deployment.check()
    assert not result.ok
    assert not result.chains[1].ok


def test_anchors_of_a_server_not_given_are_reported(deployment: Deployment) -> None:
    result = verify_anchors(deployment.rows, deployment.servers[:1])
    assert _kinds(result) == ["unknown server"]  # reported once per server
    assert result.problems[0].key_id == _kid(deployment.key_b)


def test_checkpoints_after_the_last_anchor_are_a_warning(deployment: Deployment) -> None:
    rows = [r for r in deployment.rows if r["anchor_seq"] <= 6]  # the store lost the last two
    result = deployment.check(rows)
    assert result.ok
    assert any("not anchored" in w for w in result.warnings)


def test_the_same_key_twice_is_refused(deployment: Deployment) -> None:
    with pytest.raises(ValueError, match="given twice"):
        verify_anchors(deployment.rows, [deployment.servers[0], deployment.servers[0]])


def test_the_hash_covers_every_field() -> None:
    row: dict[str, Any] = {
        "anchor_seq": 1,
        "key_id": "0" * 16,
        "segment": SEGMENT1,
        "checkpoint_seq": 11,
        "checkpoint_hash": "a" * 64,
        "created_at": 1.5,
        "prev_hash": GENESIS,
    }
    digest = anchor_hash(row)
    assert digest == anchor_hash({**row, "anchor_hash": "ignored"})
    for name, value in [
        ("anchor_seq", 2),
        ("key_id", "1" * 16),
        ("segment", "segment-000002.jsonl"),
        ("checkpoint_seq", 12),
        ("checkpoint_hash", "b" * 64),
        ("created_at", 1.25),
        ("prev_hash", "f" * 64),
    ]:
        assert anchor_hash({**row, name: value}) != digest, name
