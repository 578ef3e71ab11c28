"""Issue 18 item 16: rollback of the audit log passed ``audit verify``, and the server started
and appended on a tampered log without a word.

* verify without a trusted head says plainly what it cannot establish; ``audit head --export``
  pins a head and ``verify --trusted-head`` finds the rollback (and a rewrite after the pin);
* ``AuditLog.open`` verifies the tail it continues from (HEAD, the seal of the segment before
  the last, every line of the last segment, pins such as the store's anchor) and refuses a
  damaged one, unless told to accept it: then the suspicion is recorded in the chain, the next
  start verifies a clean segment, and verify still reports the damage;
* ``Services.open`` pins the store's latest anchor of this chain (both backends), so the
  reported rollback (log cut after an earlier checkpoint, HEAD rebuilt from it) stops the
  server; crash repair of a torn last line keeps working (tests/audit/test_recovery.py).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from facegate.audit.checkpoint import Head, checkpoint_record
from facegate.audit.errors import AuditWriteError
from facegate.audit.head import HeadStatement
from facegate.audit.log import TAMPER_SUSPECTED, AuditLog, Pin, iter_entries
from facegate.audit.signing_key import key_id, load_signing_key
from facegate.audit.verify import verify, verify_tail
from facegate.cli.audit import register
from facegate.config import Settings
from facegate.services import Services
from tests.audit.conftest import request_record, segment_bytes
from tests.audit.edit import SEGMENT1, encode, entry, lines, write_lines
from tests.conftest import BACKENDS

OpenLog = Callable[..., AuditLog]


def run(*argv: str) -> tuple[int, str]:
    root = argparse.ArgumentParser(prog="facegate")
    register(root.add_subparsers(dest="command", required=True))
    args = root.parse_args(["audit", *argv])
    out = io.StringIO()
    code: int = args.func(args, out)
    return code, out.getvalue()


def write_log(data: Path, records: range, **options: Any) -> None:
    log = AuditLog.open(data / "audit", load_signing_key(data, None), **options)
    for i in records:
        log.append(request_record(i))
    log.close()


def roll_back(audit_dir: Path, keep: int) -> None:
    """The attack of issue 18: cut the log after an earlier checkpoint (line ``keep``) and
    rebuild HEAD.json from it, as anyone holding the data directory can."""
    segment = audit_dir / SEGMENT1
    content = lines(segment)[:keep]
    checkpoint = entry(content[-1])
    assert checkpoint["record"]["kind"] == "checkpoint"
    write_lines(segment, content)
    head = Head(checkpoint["seq"], checkpoint["hash"], SEGMENT1, checkpoint["record"])
    (audit_dir / "HEAD.json").write_bytes(head.to_bytes())


# --- verify and trusted heads --------------------------------------------------------------------


def test_a_rollback_verifies_without_a_trusted_head_and_verify_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_log(data, range(25), checkpoint_every=10)  # checkpoints at 11, 22, 28 (close)
    pin = tmp_path / "pinned-head.json"
    code, text = run("head", "--data-dir", str(data), "--export", str(pin))
    assert code == 0, text
    statement = HeadStatement.parse(pin.read_bytes())
    assert (statement.seq, statement.checkpoint_seq) == (27, 28)
    write_log(data, range(25, 40), checkpoint_every=10)
    roll_back(data / "audit", keep=22)
    code, text = run("verify", "--data-dir", str(data))
    assert code == 0  # consistent: verify cannot tell, and says so
    verdict = text.splitlines()[-1]
    assert verdict.startswith("OK           22 entries: hashes, links, 2 signatures")
    assert "up to seq 22" in verdict
    assert "a rollback to an earlier signed state cannot be detected without a trusted head" in (
        verdict
    )
    assert "facegate audit head --export FILE" in verdict
    assert "trusted head none given" in text
    code, text = run("verify", "--data-dir", str(data), "--format", "json")
    doc = json.loads(text)
    assert doc["ok"] is True
    assert doc["rollback_checked"] is False
    assert "cannot be detected without a trusted head" in doc["summary"]
    code, text = run("verify", "--data-dir", str(data), "--trusted-head", str(pin))
    assert code == 1
    assert text.splitlines()[-1].startswith(
        "BROKEN       rollback at trusted head line 0, seq 27: the log ends at seq 22, before "
        "the trusted head seq 27"
    )


def test_a_trusted_head_the_log_still_holds(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_log(data, range(25), checkpoint_every=10)
    pin = tmp_path / "pin.json"
    assert run("head", "--data-dir", str(data), "--export", str(pin))[0] == 0
    write_log(data, range(25, 40), checkpoint_every=10)
    code, text = run("verify", "--data-dir", str(data), "--trusted-head", str(pin))
    assert code == 0, text
    assert "the log holds the trusted head at seq 27: no rollback to before it" in text
    code, text = run(
        "verify", "--data-dir", str(data), "--trusted-head", str(pin), "--format", "json"
    )
    assert json.loads(text)["rollback_checked"] is True


def test_a_rewrite_after_the_pin_is_a_trusted_head_mismatch(tmp_path: Path) -> None:
    """With the key (it is in the data directory) an attacker re-signs a rewritten log; a
    pinned head still names the old hashes."""
    data = tmp_path / "data"
    write_log(data, range(25), checkpoint_every=10)
    pin = tmp_path / "pin.json"
    assert run("head", "--data-dir", str(data), "--export", str(pin))[0] == 0
    key = load_signing_key(data, None)
    audit_dir = data / "audit"
    content = lines(audit_dir / SEGMENT1)
    out, prev = [], "0" * 64
    for raw in content:
        old = entry(raw)
        record = old["record"]
        if old["seq"] == 5:
            record = {**record, "org_id": "someone-else"}
        if record["kind"] == "checkpoint":
            record = checkpoint_record(key, key_id(key.public_key()), old["seq"] - 1, prev, 1.0)
        prev, line = encode(old["seq"], prev, record)
        out.append(line)
    write_lines(audit_dir / SEGMENT1, out)
    last = entry(out[-1])
    (audit_dir / "HEAD.json").write_bytes(
        Head(last["seq"], last["hash"], SEGMENT1, last["record"]).to_bytes()
    )
    assert run("verify", "--data-dir", str(data))[0] == 0  # re-signed: consistent
    code, text = run("verify", "--data-dir", str(data), "--trusted-head", str(pin))
    assert code == 1
    assert "BROKEN       trusted head mismatch" in text


def test_a_trusted_head_of_another_key_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_log(data, range(5))
    other = Ed25519PrivateKey.generate()
    result = verify(data / "audit", load_signing_key(data, None).public_key())
    statement = result.head_statement()
    assert statement is not None
    forged = HeadStatement.from_checkpoint(
        statement.checkpoint_seq,
        statement.checkpoint_hash,
        checkpoint_record(other, key_id(other.public_key()), statement.seq, statement.hash, 1.0),
    )
    pin = tmp_path / "forged.json"
    pin.write_bytes(forged.to_bytes())
    code, text = run("verify", "--data-dir", str(data), "--trusted-head", str(pin))
    assert code == 1
    assert "bad trusted head" in text


def test_head_statements_refuse_what_they_are_not(tmp_path: Path) -> None:
    for bad in (b"{", b"[]", b'{"format": "x"}', b'{"format": "facegate-audit-head-v1"}'):
        with pytest.raises(ValueError, match=r"JSON|statement|seq"):
            HeadStatement.parse(bad)
    (tmp_path / "x.json").write_text("{")
    data = tmp_path / "data"
    write_log(data, range(3))
    code, _ = run("verify", "--data-dir", str(data), "--trusted-head", str(tmp_path / "x.json"))
    assert code == 3


def test_audit_head_needs_a_verified_log_with_a_checkpoint(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_log(data, range(3))
    code, text = run("head", "--data-dir", str(data), "--export")
    assert code == 0
    assert HeadStatement.parse(text.encode()).checkpoint_seq == 4
    segment = data / "audit" / SEGMENT1
    segment.write_bytes(segment.read_bytes().replace(b"req-000001", b"req-000009"))
    assert run("head", "--data-dir", str(data))[0] == 1


# --- opening a damaged log -----------------------------------------------------------------------


def test_open_refuses_a_tail_that_fails_verification(written_log: Path, open_log: OpenLog) -> None:
    segment = written_log / SEGMENT1
    damaged = segment.read_bytes().replace(b"req-000027", b"req-000099")
    segment.write_bytes(damaged)
    with pytest.raises(AuditWriteError, match=r"tail fails verification.*hash mismatch") as info:
        open_log()
    assert "FACEGATE_AUDIT_ACCEPT_DAMAGE=1" in str(info.value)
    assert segment.read_bytes() == damaged  # nothing appended on top


def test_open_refuses_an_edited_unsigned_tail(open_log: OpenLog, audit_dir: Path) -> None:
    log = open_log()
    for i in range(3):
        log.append(request_record(i))
    log._release()  # a crash: entries after the last checkpoint
    segment = audit_dir / SEGMENT1
    segment.write_bytes(segment.read_bytes().replace(b"req-000002", b"req-000007"))
    with pytest.raises(AuditWriteError, match="hash mismatch"):
        open_log()


def test_accepting_damage_records_it_and_starts_a_clean_segment(
    written_log: Path, open_log: OpenLog, key: Ed25519PrivateKey
) -> None:
    segment = written_log / SEGMENT1
    segment.write_bytes(segment.read_bytes().replace(b"req-000027", b"req-000099"))
    log = open_log(accept_damage=True)
    suspected = log.tamper_suspected
    assert suspected is not None
    assert suspected["kind"] == "hash mismatch"
    assert log.health()["tamper_suspected"]["seq"] == 30
    log.append(request_record(100))
    log.close()
    records = [e.record for e in iter_entries(written_log)]
    (tamper,) = [r for r in records if r["kind"] == "integrity"]
    assert tamper["action"] == TAMPER_SUSPECTED
    assert tamper["details"]["kind"] == "hash mismatch"
    assert tamper["details"]["seq"] == 30
    assert sorted(p.name for p in written_log.glob("segment-*")) == [
        SEGMENT1, "segment-000002.jsonl",
    ]  # fmt: skip
    result = verify(written_log, key.public_key())
    assert result.problem is not None  # the damage stays visible
    assert result.problem.kind == "hash mismatch"
    reopened = open_log()  # the tail it continues from now verifies: no flag needed
    assert reopened.tamper_suspected is None
    reopened.close()


def test_open_checks_the_seal_of_the_segment_before_the_last(
    open_log: OpenLog, audit_dir: Path, key: Any
) -> None:
    """Entries removed from the end of a sealed segment (its seal with them) are found even
    though that segment is not walked line by line at open."""
    log = open_log(segment_max_bytes=segment_bytes(key, 3.5))
    for i in range(5):
        log.append(request_record(i))
    log.close()
    assert (audit_dir / "segment-000002.jsonl").exists()
    segment = audit_dir / SEGMENT1
    write_lines(segment, lines(segment)[:-1])  # the seal goes
    problem = verify_tail(audit_dir, _public(audit_dir))
    assert problem is not None
    assert problem.kind == "unsealed segment"
    with pytest.raises(AuditWriteError, match="fails verification"):
        open_log()


def _public(audit_dir: Path) -> Any:
    from facegate.audit.signing_key import read_public_key

    return read_public_key(audit_dir / "public.key")


def test_open_refuses_a_log_that_lacks_a_pinned_entry(written_log: Path, open_log: OpenLog) -> None:
    last = list(iter_entries(written_log))[-1]
    with pytest.raises(AuditWriteError, match=r"rollback.*ends at seq 33 but the store's anchor"):
        open_log(pins=(Pin(40, "ab" * 32, SEGMENT1, "the store's anchor 9"),))
    with pytest.raises(AuditWriteError, match="trusted head mismatch"):
        open_log(pins=(Pin(last.seq, "ab" * 32, SEGMENT1, "the store's anchor 9"),))
    open_log(pins=(Pin(last.seq, last.hash, SEGMENT1, "the store's anchor 9"),)).close()


def test_a_torn_last_line_is_still_repaired_not_refused(
    written_log: Path, open_log: OpenLog, key: Ed25519PrivateKey
) -> None:
    with (written_log / SEGMENT1).open("ab") as fh:
        fh.write(b'{"hash":"5e1f')
    log = open_log()
    assert log.tamper_suspected is None
    log.close()
    assert verify(written_log, key.public_key()).ok


# --- the server: the store's anchors pin the chain ------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_server_refuses_a_log_rolled_back_behind_its_anchor(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_dsn") if backend == "postgres" else None
    settings = Settings(data_dir=tmp_path / "data", engine_workers=1, database_url=url)
    for round_ in range(2):  # two closes: two anchored checkpoints
        services = Services.open(settings, start_engine=False)
        for i in range(3):
            services.audit.append(request_record(10 * round_ + i))
        services.close()
    audit_dir = settings.audit_dir
    checkpoints = [i for i, raw in enumerate(lines(audit_dir / SEGMENT1), 1)
                   if entry(raw)["record"]["kind"] == "checkpoint"]  # fmt: skip
    roll_back(audit_dir, keep=checkpoints[0])
    assert verify(audit_dir, _public(audit_dir)).ok  # verify alone cannot tell
    with pytest.raises(AuditWriteError, match=r"rollback.*the store's anchor"):
        Services.open(settings, start_engine=False)
    accepted = Services.open(
        Settings(
            data_dir=settings.data_dir,
            engine_workers=1,
            database_url=url,
            audit_accept_damage=True,
        ),
        start_engine=False,
    )
    try:
        from facegate.health import HealthCheck

        status, doc = asyncio.run(HealthCheck(accepted).check())
        assert status == 200
        assert doc["status"] == "degraded"
        assert "audit.tamper_suspected" in doc["warnings"][0]
        assert doc["audit"]["tamper_suspected"]["kind"] == "rollback"
    finally:
        accepted.close()
    tamper = [e.record for e in iter_entries(audit_dir) if e.record["kind"] == "integrity"]
    assert [t["action"] for t in tamper] == [TAMPER_SUSPECTED]
    Services.open(settings, start_engine=False).close()  # accepted once: starts again
