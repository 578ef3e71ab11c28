"""verify: an intact log passes; each kind of tampering is found, named and located."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from facegate.audit.chain import canonical
from facegate.audit.checkpoint import Head, checkpoint_record
from facegate.audit.errors import AuditReadError
from facegate.audit.log import AuditLog
from facegate.audit.signing_key import key_id
from facegate.audit.verify import Problem, verify
from tests.audit.conftest import request_record
from tests.audit.edit import SEGMENT1, encode, entry, lines, rechain, write_lines


def check(audit_dir: Path, key: Ed25519PrivateKey) -> Problem:
    result = verify(audit_dir, key.public_key())
    assert result.problem is not None, "tampering not detected"
    return result.problem


def where(problem: Problem) -> tuple[str, str, int, int | None]:
    return problem.kind, problem.segment, problem.line, problem.seq


def test_an_intact_log_verifies(written_log: Path, key: Ed25519PrivateKey) -> None:
    result = verify(written_log, key.public_key())
    assert result.ok
    assert result.problem is None
    assert (result.entries, result.checkpoints, result.segments) == (33, 3, 1)
    assert result.kinds == {"request": 30, "checkpoint": 3}
    assert (result.last_seq, result.signed_seq, result.head_seq, result.unsigned_tail) == (
        33,
        32,
        33,
        0,
    )
    assert result.first_at == 1_750_000_000.0
    assert result.last_at is not None
    assert result.last_at > 1_750_000_029.0
    assert result.warnings == ()
    assert result.key_id == key_id(key.public_key())
    doc = result.to_json()
    assert doc["ok"] is True
    assert doc["problem"] is None
    assert doc["entries"] == 33


def test_unsigned_tail_is_a_warning(
    open_log: Callable[..., AuditLog], audit_dir: Path, key: Ed25519PrivateKey
) -> None:
    log = open_log(checkpoint_every=5)
    for i in range(7):
        log.append(request_record(i))
    result = verify(audit_dir, key.public_key())
    assert result.ok
    assert result.unsigned_tail == 2
    assert any("2 entries after the last checkpoint (seq 7..8)" in w for w in result.warnings)


def test_changed_byte_in_a_record(written_log: Path, key: Ed25519PrivateKey) -> None:
    content = lines(written_log / SEGMENT1)
    content[4] = content[4].replace(b"req-000004", b"req-000009")
    write_lines(written_log / SEGMENT1, content)
    problem = check(written_log, key)
    assert where(problem) == ("hash mismatch", SEGMENT1, 5, 5)
    assert str(problem).startswith("hash mismatch at segment-000001.jsonl line 5, seq 5: ")


@pytest.mark.parametrize("offset", [0, 9, 40, 80, 200, -3, -2])
def test_any_changed_byte_is_found_on_its_line(
    written_log: Path, key: Ed25519PrivateKey, offset: int
) -> None:
    content = lines(written_log / SEGMENT1)
    raw = bytearray(content[6])
    raw[offset] = ord("7") if raw[offset] != ord("7") else ord("8")
    content[6] = bytes(raw)
    write_lines(written_log / SEGMENT1, content)
    problem = check(written_log, key)
    assert problem.kind in {"hash mismatch", "bad json", "bad entry"}
    assert (problem.segment, problem.line) == (SEGMENT1, 7)


def test_removed_record(written_log: Path, key: Ed25519PrivateKey) -> None:
    content = lines(written_log / SEGMENT1)
    del content[4]
    write_lines(written_log / SEGMENT1, content)
    problem = check(written_log, key)
    assert where(problem) == ("sequence gap", SEGMENT1, 5, 6)
    assert "seq 5 missing" in problem.detail


def test_removed_records(written_log: Path, key: Ed25519PrivateKey) -> None:
    content = lines(written_log / SEGMENT1)
    del content[4:8]
    write_lines(written_log / SEGMENT1, content)
    assert "seq 5..8 missing" in check(written_log, key).detail


def test_reordered_pair(written_log: Path, key: Ed25519PrivateKey) -> None:
    content = lines(written_log / SEGMENT1)
    content[4], content[5] = content[5], content[4]
    write_lines(written_log / SEGMENT1, content)
    problem = check(written_log, key)
    assert where(problem) == ("order", SEGMENT1, 5, 6)
    assert "reordered pair, lines 5 and 6" in problem.detail


def test_duplicated_line(written_log: Path, key: Ed25519PrivateKey) -> None:
    content = lines(written_log / SEGMENT1)
    content.insert(5, content[4])
    write_lines(written_log / SEGMENT1, content)
    assert where(check(written_log, key)) == ("duplicate", SEGMENT1, 6, 5)


def test_truncated_before_the_last_checkpoint(written_log: Path, key: Ed25519PrivateKey) -> None:
    write_lines(written_log / SEGMENT1, lines(written_log / SEGMENT1)[:25])
    problem = check(written_log, key)
    assert where(problem) == ("truncated", SEGMENT1, 26, 26)
    assert problem.detail == "the log ends at seq 25 but HEAD says 33"


def test_truncation_with_a_forged_head(written_log: Path, key: Ed25519PrivateKey) -> None:
    """The attacker cuts the log and writes a HEAD for the new end, signed with their own key
    but claiming the real key id."""
    content = lines(written_log / SEGMENT1)[:25]
    last = entry(content[-1])
    forged = checkpoint_record(
        Ed25519PrivateKey.generate(), key_id(key.public_key()), 25, last["hash"], 1.0
    )
    digest, line = encode(26, last["hash"], forged)
    write_lines(written_log / SEGMENT1, [*content, line])
    (written_log / "HEAD.json").write_bytes(Head(26, digest, SEGMENT1, forged).to_bytes())
    problem = check(written_log, key)
    assert where(problem) == ("bad signature", "HEAD.json", 1, 26)


def test_head_signed_by_another_key(written_log: Path, key: Ed25519PrivateKey) -> None:
    head = Head.parse((written_log / "HEAD.json").read_bytes())
    other = Ed25519PrivateKey.generate()
    record = checkpoint_record(
        other, key_id(other.public_key()), 32, head.checkpoint["signed_hash"], 1.0
    )
    (written_log / "HEAD.json").write_bytes(Head(33, head.hash, SEGMENT1, record).to_bytes())
    assert check(written_log, key).kind == "key mismatch"


def test_head_naming_another_entry(written_log: Path, key: Ed25519PrivateKey) -> None:
    head = Head.parse((written_log / "HEAD.json").read_bytes())
    (written_log / "HEAD.json").write_bytes(
        Head(head.seq, "f" * 64, head.segment, head.checkpoint).to_bytes()
    )
    assert where(check(written_log, key)) == ("HEAD mismatch", SEGMENT1, 33, 33)


def test_head_removed(written_log: Path, key: Ed25519PrivateKey) -> None:
    (written_log / "HEAD.json").unlink()
    assert check(written_log, key).kind == "HEAD missing"


def test_head_garbled(written_log: Path, key: Ed25519PrivateKey) -> None:
    (written_log / "HEAD.json").write_bytes(b'{"format": "x"}')
    assert where(check(written_log, key))[:3] == ("bad HEAD", "HEAD.json", 1)


def test_edit_with_recomputed_hash_is_caught_by_the_next_prev(
    written_log: Path, key: Ed25519PrivateKey
) -> None:
    content = lines(written_log / SEGMENT1)
    old = entry(content[4])
    record = {**old["record"], "decision": "allow", "case_ref": "nothing-to-see"}
    content[4] = encode(5, old["prev"], record)[1]
    write_lines(written_log / SEGMENT1, content)
    problem = check(written_log, key)
    assert where(problem) == ("prev mismatch", SEGMENT1, 6, 6)


def test_edit_with_the_rest_of_the_chain_recomputed_is_caught_by_the_checkpoint(
    written_log: Path, key: Ed25519PrivateKey
) -> None:
    content = lines(written_log / SEGMENT1)
    record = {**entry(content[4])["record"], "decision": "error"}
    write_lines(written_log / SEGMENT1, rechain(content, 4, {4: record}))
    problem = check(written_log, key)
    assert where(problem) == ("checkpoint mismatch", SEGMENT1, 11, 11)


def test_edit_with_checkpoints_re_signed_by_another_key(
    written_log: Path, key: Ed25519PrivateKey
) -> None:
    """The attacker recomputes everything, including the checkpoints' signed hash, but cannot
    sign with the real key."""
    content = lines(written_log / SEGMENT1)
    record = {**entry(content[4])["record"], "decision": "error"}
    rewritten = rechain(content, 4, {4: record})
    forger = Ed25519PrivateKey.generate()
    signed = entry(rewritten[9])
    forged = checkpoint_record(forger, key_id(key.public_key()), 10, signed["hash"], 1.0)
    rewritten = rechain(rewritten, 10, {10: forged})
    write_lines(written_log / SEGMENT1, rewritten)
    assert where(check(written_log, key)) == ("bad signature", SEGMENT1, 11, 11)


def test_verifying_with_the_wrong_public_key(written_log: Path) -> None:
    problem = check(written_log, Ed25519PrivateKey.generate())
    assert (problem.kind, problem.segment) == ("key mismatch", "HEAD.json")


def test_not_canonical_although_the_hash_matches(written_log: Path, key: Ed25519PrivateKey) -> None:
    content = lines(written_log / SEGMENT1)
    old = entry(content[2])
    body = json.dumps(
        {"prev": old["prev"], "record": old["record"], "seq": 3},
        sort_keys=True,
        separators=(", ", ": "),
    ).encode()
    digest = hashlib.sha256(body).hexdigest()
    content[2] = b'{"hash":"' + digest.encode() + b'",' + body[1:] + b"\n"
    write_lines(written_log / SEGMENT1, content)
    assert where(check(written_log, key)) == ("not canonical", SEGMENT1, 3, 3)


def test_torn_tail(written_log: Path, key: Ed25519PrivateKey) -> None:
    with (written_log / SEGMENT1).open("ab") as fh:
        fh.write(b'{"hash":"0123')
    problem = check(written_log, key)
    assert where(problem) == ("torn tail", SEGMENT1, 34, 34)


def test_a_line_being_written_by_a_live_server_is_only_a_warning(
    open_log: Callable[..., AuditLog], audit_dir: Path, key: Ed25519PrivateKey
) -> None:
    log = open_log()
    log.append(request_record(0))
    with (audit_dir / SEGMENT1).open("ab") as fh:
        fh.write(b'{"hash":"0123')
    result = verify(audit_dir, key.public_key())
    assert result.ok
    assert any("a line is being written" in w for w in result.warnings)


def test_tampering_in_a_later_segment_is_located_there(
    open_log: Callable[..., AuditLog], audit_dir: Path, key: Ed25519PrivateKey
) -> None:
    log = open_log(segment_max_bytes=4000)
    for i in range(30):
        log.append(request_record(i))
    log.close()
    third = audit_dir / "segment-000003.jsonl"
    content = lines(third)
    seq = entry(content[1])["seq"]
    content[1] = content[1].replace(b'"operation":"Search', b'"operation":"Xearch')
    write_lines(third, content)
    assert where(check(audit_dir, key)) == ("hash mismatch", third.name, 2, seq)


def test_missing_segment(
    open_log: Callable[..., AuditLog], audit_dir: Path, key: Ed25519PrivateKey
) -> None:
    log = open_log(segment_max_bytes=4000)
    for i in range(30):
        log.append(request_record(i))
    log.close()
    (audit_dir / "segment-000002.jsonl").unlink()
    problem = check(audit_dir, key)
    assert (problem.kind, problem.segment, problem.line) == (
        "missing segment",
        "segment-000002.jsonl",
        0,
    )


def test_garbage_lines(written_log: Path, key: Ed25519PrivateKey) -> None:
    content = lines(written_log / SEGMENT1)
    content[3] = b"not json at all\n"
    write_lines(written_log / SEGMENT1, content)
    assert where(check(written_log, key)) == ("bad json", SEGMENT1, 4, None)
    content[3] = canonical({"seq": 4, "hash": "x"}) + b"\n"
    write_lines(written_log / SEGMENT1, content)
    assert where(check(written_log, key))[:3] == ("bad entry", SEGMENT1, 4)


def test_empty_and_missing_directories(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    (tmp_path / "audit").mkdir()
    result = verify(tmp_path / "audit", key.public_key())
    assert result.ok
    assert result.entries == 0
    assert "the log is empty" in result.warnings
    with pytest.raises(AuditReadError, match="no audit log"):
        verify(tmp_path / "nowhere", key.public_key())


def test_problem_json(written_log: Path, key: Ed25519PrivateKey) -> None:
    write_lines(written_log / SEGMENT1, lines(written_log / SEGMENT1)[:20])
    doc: dict[str, Any] = verify(written_log, key.public_key()).to_json()
    assert doc["ok"] is False
    assert doc["problem"] == {
        "kind": "truncated",
        "segment": SEGMENT1,
        "line": 21,
        "seq": 21,
        "detail": "the log ends at seq 20 but HEAD says 33",
    }
