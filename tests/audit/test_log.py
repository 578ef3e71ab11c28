"""AuditLog: round trip, checkpoints, HEAD, rotation, threads, refusals and failing closed."""

from __future__ import annotations

import base64
import errno
import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from facegate.audit.checkpoint import Head, signed_message
from facegate.audit.errors import AuditKeyError, AuditWriteError
from facegate.audit.log import AuditLog, iter_entries
from facegate.audit.signing_key import key_id
from facegate.audit.verify import verify
from tests.audit.conftest import event_record, request_record, segment_bytes

OpenLog = Callable[..., AuditLog]


def _json(value: dict[str, Any]) -> Any:
    return json.loads(json.dumps(value))


def test_round_trip(open_log: OpenLog, audit_dir: Path, key: Ed25519PrivateKey) -> None:
    log = open_log()
    written = [log.append(request_record(0)), log.append(event_record(1))]
    written.append(log.append(request_record(2)))
    assert log.last_seq == 3
    log.close()
    entries = list(iter_entries(audit_dir))
    assert entries[:3] == written
    assert [e.record for e in entries[:3]] == [
        _json(request_record(0)),
        _json(event_record(1)),
        _json(request_record(2)),
    ]
    assert [(e.seq, e.segment, e.line) for e in entries] == [
        (1, "segment-000001.jsonl", 1),
        (2, "segment-000001.jsonl", 2),
        (3, "segment-000001.jsonl", 3),
        (4, "segment-000001.jsonl", 4),
    ]
    assert entries[0].prev == "0" * 64
    assert all(b.prev == a.hash for a, b in itertools.pairwise(entries))
    assert entries[3].record["kind"] == "checkpoint"  # close() signs the tail
    assert verify(audit_dir, key.public_key()).ok


def test_reopen_continues_the_chain(open_log: OpenLog, audit_dir: Path, key: Any) -> None:
    log = open_log()
    log.append(request_record(0))
    log.close()
    log = open_log()
    assert log.last_seq == 2
    entry = log.append(request_record(1))
    assert entry.seq == 3
    log.close()
    result = verify(audit_dir, key.public_key())
    assert result.ok, result.problem
    assert result.kinds == {"request": 2, "checkpoint": 2}
    assert result.unsigned_tail == 0


def test_checkpoint_every_n_entries_and_head(
    open_log: OpenLog, audit_dir: Path, key: Ed25519PrivateKey
) -> None:
    log = open_log(checkpoint_every=5)
    for i in range(12):
        log.append(request_record(i))
    kinds = [e.record["kind"] for e in iter_entries(audit_dir)]
    assert [i + 1 for i, k in enumerate(kinds) if k == "checkpoint"] == [6, 12]
    head = Head.parse((audit_dir / "HEAD.json").read_bytes())
    assert (head.seq, head.segment) == (12, "segment-000001.jsonl")
    cp = head.checkpoint
    entries = list(iter_entries(audit_dir))
    assert head.hash == entries[11].hash
    assert cp == entries[11].record
    assert cp["signed_seq"] == 11
    assert cp["signed_hash"] == entries[10].hash
    assert cp["key_id"] == key_id(key.public_key())
    key.public_key().verify(base64.b64decode(cp["signature"]), signed_message(11, entries[10].hash))
    assert set(cp) == {"kind", "at", "signed_seq", "signed_hash", "key_id", "signature"}
    log.close()
    assert Head.parse((audit_dir / "HEAD.json").read_bytes()).seq == 15


def test_explicit_checkpoint(open_log: OpenLog, audit_dir: Path, key: Any) -> None:
    log = open_log()
    first = log.checkpoint()  # an empty log can be checkpointed: it signs seq 0
    assert (first.seq, first.record["signed_seq"], first.record["signed_hash"]) == (1, 0, "0" * 64)
    log.append(request_record(0))
    second = log.checkpoint()
    assert second.record["signed_seq"] == 2
    log.close()
    assert [e.record["kind"] for e in iter_entries(audit_dir)] == [
        "checkpoint",
        "request",
        "checkpoint",
    ]
    assert verify(audit_dir, key.public_key()).ok


def test_timer_checkpoints_after_checkpoint_s_only_if_something_was_appended(
    open_log: OpenLog, audit_dir: Path
) -> None:
    log = open_log(checkpoint_s=0.2)
    log.append(request_record(0))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and log.last_seq < 2:
        time.sleep(0.02)
    kinds = [e.record["kind"] for e in iter_entries(audit_dir)]
    assert kinds == ["request", "checkpoint"]
    time.sleep(0.6)  # idle: no further checkpoints
    assert log.last_seq == 2
    log.close()
    assert log.last_seq == 2  # the last entry is already a checkpoint


def test_append_checkpoints_itself_when_the_interval_passed(
    open_log: OpenLog, audit_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(checkpoint_s=30.0)
    log.append(request_record(0))
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 31.0)
    log.append(request_record(1))
    monkeypatch.setattr(time, "monotonic", real)
    assert [e.record["kind"] for e in iter_entries(audit_dir)][-1] == "checkpoint"


def test_rotation_keeps_the_chain(open_log: OpenLog, audit_dir: Path, key: Any) -> None:
    log = open_log(segment_max_bytes=4000)
    for i in range(40):
        log.append(request_record(i))
    log.close()
    names = sorted(p.name for p in audit_dir.glob("segment-*.jsonl"))
    assert len(names) >= 5
    entries = list(iter_entries(audit_dir))
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    for name in names[:-1]:  # every closed segment ends with a checkpoint
        last = [e for e in entries if e.segment == name][-1]
        assert last.record["kind"] == "checkpoint"
        assert (audit_dir / name).stat().st_size >= 4000
    assert entries[-1].segment == names[-1]
    result = verify(audit_dir, key.public_key())
    assert result.ok, result.problem
    assert result.segments == len(names)
    log = open_log(segment_max_bytes=4000)  # reopening continues in the last segment
    assert log.append(request_record(99)).segment in (names[-1], _next(names[-1]))
    log.close()
    assert verify(audit_dir, key.public_key()).ok


def _next(name: str) -> str:
    return f"segment-{int(name[8:14]) + 1:06d}.jsonl"


def test_concurrent_appends_form_one_chain(open_log: OpenLog, audit_dir: Path, key: Any) -> None:
    log = open_log(checkpoint_every=50)
    seqs: list[int] = []
    lock = threading.Lock()

    def worker(base: int) -> None:
        for i in range(100):
            entry = log.append(request_record(base + i))
            with lock:
                seqs.append(entry.seq)

    threads = [threading.Thread(target=worker, args=(n * 1000,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert len(set(seqs)) == 800
    result = verify(audit_dir, key.public_key())
    assert result.ok, result.problem
    assert result.kinds["request"] == 800


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"at": 1.0}, "kind"),
        ({"kind": ""}, "kind"),
        ({"kind": "checkpoint", "at": 1.0}, "written by the log itself"),
        ({"kind": "recovery", "at": 1.0}, "written by the log itself"),
        ({"kind": "request", "latency_ms": float("nan")}, "serialised"),
        ({"kind": "request", "x": {1: 2}}, "serialised"),
        ({"kind": "request", "x": object()}, "serialised"),
    ],
)
def test_bad_records_are_refused_without_closing_the_log(
    open_log: OpenLog, record: dict[str, Any], message: str
) -> None:
    log = open_log()
    with pytest.raises(AuditWriteError, match=message) as info:
        log.append(record)
    assert info.value.code == "InternalServerError"
    assert info.value.http_status == 500
    assert log.failed is None
    assert log.append(request_record(0)).seq == 1


def test_append_after_close_fails(open_log: OpenLog) -> None:
    log = open_log()
    log.close()
    log.close()  # idempotent
    with pytest.raises(AuditWriteError, match="closed"):
        log.append(request_record(0))


def test_one_writer_at_a_time(open_log: OpenLog) -> None:
    open_log()
    with pytest.raises(AuditWriteError, match="another process"):
        open_log()


def test_a_different_signing_key_is_refused(open_log: OpenLog, audit_dir: Path) -> None:
    open_log().close()
    with pytest.raises(AuditKeyError, match="restore the signing key"):
        AuditLog.open(audit_dir, Ed25519PrivateKey.generate())


def test_a_log_behind_head_is_refused(open_log: OpenLog, written_log: Path) -> None:
    segment = written_log / "segment-000001.jsonl"
    segment.write_bytes(b"".join(segment.read_bytes().splitlines(keepends=True)[:25]))
    with pytest.raises(AuditWriteError, match=r"ends at seq 25 but HEAD\.json says 33"):
        open_log()


def test_open_removes_stale_temporary_files(open_log: OpenLog, audit_dir: Path) -> None:
    open_log().close()
    stale = audit_dir / ".HEAD.json.0123.tmp"
    stale.write_bytes(b"{")
    open_log().close()
    assert not stale.exists()


# --- failing closed -------------------------------------------------------------------------


def _enospc(*args: Any) -> int:
    raise OSError(errno.ENOSPC, "No space left on device")


class _DiskFull:
    """``os.write``/``os.fsync`` raising ENOSPC while ``full`` (the disk of issue 18 item 10:
    full for a while, then space again)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, calls: tuple[str, ...]) -> None:
        self.full = True
        for name in calls:
            real = getattr(os, name)

            def patched(*args: Any, _real: Any = real) -> Any:
                if self.full:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return _real(*args)

            monkeypatch.setattr(os, name, patched)


def test_disk_full_refuses_while_full_then_recovers_and_records_it(
    open_log: OpenLog, audit_dir: Path, key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(retry_s=0)
    log.append(request_record(0))
    size = (audit_dir / "segment-000001.jsonl").stat().st_size
    disk = _DiskFull(monkeypatch, calls=("write",))
    for i in (1, 2, 3):  # refused while full, every retry finds the disk still full
        with pytest.raises(AuditWriteError, match="No space left on device") as info:
            log.append(request_record(i))
        assert info.value.code == "InternalServerError"
        assert log.failed is not None
        assert "ENOSPC" in log.failed
        assert log.health()["ok"] is False
    assert (audit_dir / "segment-000001.jsonl").stat().st_size == size  # nothing half-written
    disk.full = False  # space again: the log repairs itself, records it, and goes on
    entry = log.append(request_record(4))
    assert log.failed is None
    assert log.health()["ok"] is True
    log.close()
    records = [e.record for e in iter_entries(audit_dir)]
    assert [r["kind"] for r in records] == [
        "request", "recovery", "checkpoint", "request", "checkpoint",
    ]  # fmt: skip
    recovery = records[1]
    assert recovery["cause"] == "write_failed"
    assert "ENOSPC" in recovery["error"]
    assert recovery["refused_appends"] == 2  # the two appends after the first failure
    assert recovery["torn_bytes"] == 0
    assert entry.seq == 4
    assert [r["request_id"] for r in records if r["kind"] == "request"] == [
        "req-000000", "req-000004",
    ]  # fmt: skip
    result = verify(audit_dir, key.public_key())
    assert result.ok, result.problem


def test_refusal_lasts_at_least_retry_s(open_log: OpenLog, monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log(retry_s=60)
    disk = _DiskFull(monkeypatch, calls=("write",))
    with pytest.raises(AuditWriteError):
        log.append(request_record(0))
    disk.full = False
    with pytest.raises(AuditWriteError, match="refuses appends after a write failure"):
        log.append(request_record(1))  # not retried yet: no I/O per refused request


def test_a_quiet_log_recovers_by_itself(
    open_log: OpenLog, audit_dir: Path, key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No append needed: the checkpoint thread retries, so health turns ok without traffic."""
    log = open_log(retry_s=0.05)
    log.append(request_record(0))
    disk = _DiskFull(monkeypatch, calls=("write", "fsync"))
    with pytest.raises(AuditWriteError):
        log.append(request_record(1))
    time.sleep(0.2)
    assert log.failed is not None  # still full
    disk.full = False
    deadline = time.monotonic() + 10
    while log.failed is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert log.failed is None
    log.close()
    assert verify(audit_dir, key.public_key()).ok


def test_a_line_whose_fsync_failed_is_moved_aside_on_repair(
    open_log: OpenLog, audit_dir: Path, key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a failed fsync the page cache says nothing about the disk: the line is taken
    back (kept in a torn file), never trusted."""
    log = open_log(retry_s=0)
    log.append(request_record(0))
    size = (audit_dir / "segment-000001.jsonl").stat().st_size
    disk = _DiskFull(monkeypatch, calls=("fsync",))
    with pytest.raises(AuditWriteError):
        log.append(request_record(1))
    assert (audit_dir / "segment-000001.jsonl").stat().st_size > size  # the line is there
    disk.full = False
    log.append(request_record(2))
    log.close()
    records = [e.record for e in iter_entries(audit_dir)]
    assert [r.get("request_id") for r in records if r["kind"] == "request"] == [
        "req-000000", "req-000002",
    ]  # fmt: skip
    recovery = next(r for r in records if r["kind"] == "recovery")
    assert recovery["torn_bytes"] > 0
    torn = audit_dir / f"torn-segment-000001-{size}.bin"
    assert b"req-000001" in torn.read_bytes()
    assert verify(audit_dir, key.public_key()).ok


def test_a_segment_that_cannot_be_created_is_a_soft_limit(
    open_log: OpenLog, audit_dir: Path, key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No room for a new segment file: records go on in the current segment (still sealed
    before the rotation that follows), while an intent is refused with the log usable."""
    log = open_log(retry_s=0, segment_max_bytes=segment_bytes(key, 2.5))
    for i in range(3):
        log.append(request_record(i))  # the third fills and seals segment 1
    real_open = os.open
    full = True

    def no_new_files(path: Any, flags: int, *args: Any) -> int:
        if full and flags & os.O_CREAT and "segment-000002" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", no_new_files)
    with pytest.raises(AuditWriteError, match="new audit segment"):
        log.append(event_record(0), reserve=True)
    log.append(request_record(3))  # written on in segment 1
    assert log.health()["ok"] is True
    assert not (audit_dir / "segment-000002.jsonl").exists()
    full = False
    log.append(request_record(4))  # seals segment 1 again, then starts segment 2
    log.close()
    assert sorted(p.name for p in audit_dir.glob("segment-*")) == [
        "segment-000001.jsonl", "segment-000002.jsonl",
    ]  # fmt: skip
    result = verify(audit_dir, key.public_key())
    assert result.ok, result.problem
    assert [e.record["kind"] for e in iter_entries(audit_dir)][-4:] == [
        "request", "checkpoint", "request", "checkpoint",
    ]  # fmt: skip
    reopened = open_log()  # the tail check finds segment 1 sealed
    reopened.close()


def test_a_segment_cut_under_a_failed_log_keeps_it_refused(
    open_log: OpenLog, audit_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repair only takes back what this log wrote after its last durable line; a file
    shorter than that was changed by someone else: refused until reopened (and verified)."""
    log = open_log(retry_s=3600)  # no repair by itself: the test says when
    log.append(request_record(0))
    log.append(request_record(1))
    disk = _DiskFull(monkeypatch, calls=("write",))
    with pytest.raises(AuditWriteError):
        log.append(request_record(2))
    disk.full = False
    segment = audit_dir / "segment-000001.jsonl"
    segment.write_bytes(b"".join(segment.read_bytes().splitlines(keepends=True)[:-1]))
    assert log.repair() is False
    with pytest.raises(AuditWriteError, match="cut short by someone else"):
        log.append(request_record(3))
    for _ in range(3):  # no more repairs, the reason stays as it was
        with pytest.raises(AuditWriteError, match="reopen the log") as info:
            log.append(request_record(3))
    assert str(info.value).count("cut short") == 1
    assert log.health()["ok"] is False


def test_a_partly_written_line_is_taken_back(
    open_log: OpenLog, audit_dir: Path, key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log()
    log.append(request_record(0))
    segment = audit_dir / "segment-000001.jsonl"
    size = segment.stat().st_size
    real_write = os.write
    calls = 0

    def half_then_fail(fd: int, data: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            return real_write(fd, bytes(data[:100]))
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "write", half_then_fail)
    with pytest.raises(AuditWriteError, match="Input/output error"):
        log.append(request_record(1))
    monkeypatch.undo()
    assert calls == 2
    assert segment.stat().st_size == size
    log.close()
    assert verify(audit_dir, key.public_key()).ok


def test_fsync_failure_fails_closed(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch, audit_dir: Path, key: Any
) -> None:
    log = open_log()
    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(AuditWriteError):
        log.append(request_record(0))
    monkeypatch.undo()
    with pytest.raises(AuditWriteError, match="refuses"):
        log.append(request_record(1))
    log.close()
    log = open_log()  # the record whose fsync failed may be there; the chain is intact
    log.close()
    assert verify(audit_dir, key.public_key()).ok


def test_a_head_write_failure_leaves_head_behind_and_the_log_usable(
    open_log: OpenLog, audit_dir: Path, key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk cannot hold a new HEAD.json, but the checkpoint line is durable: HEAD lags
    (as after a crash between the two) and the next checkpoint catches up."""
    log = open_log(checkpoint_every=2)
    log.append(request_record(0))
    log.append(request_record(1))  # checkpoint seq 3, in HEAD
    monkeypatch.setattr(os, "replace", _enospc)
    log.append(request_record(2))
    log.append(request_record(3))  # its checkpoint (seq 6) cannot update HEAD
    assert log.health()["ok"] is True
    assert "ENOSPC" in log.health()["head_stale"]
    assert not list(audit_dir.glob(".*.tmp"))
    assert Head.parse((audit_dir / "HEAD.json").read_bytes()).seq == 3
    assert verify(audit_dir, key.public_key()).ok  # HEAD older than the log is fine
    monkeypatch.undo()
    log.append(request_record(4))
    log.append(request_record(5))  # checkpoint seq 9 writes HEAD again
    assert "head_stale" not in log.health()
    log.close()
    assert Head.parse((audit_dir / "HEAD.json").read_bytes()).seq == 9
    assert verify(audit_dir, key.public_key()).ok


def test_a_read_only_directory_is_refused_at_open(tmp_path: Path, key: Any) -> None:
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "segment-000001.jsonl").mkdir()  # the segment cannot be opened for writing
    with pytest.raises(AuditWriteError, match="cannot open the audit log"):
        AuditLog.open(audit, key)


def test_a_log_behind_head_is_left_untouched(open_log: OpenLog, written_log: Path) -> None:
    segment = written_log / "segment-000001.jsonl"
    cut = b"".join(segment.read_bytes().splitlines(keepends=True)[:25]) + b'{"torn'
    segment.write_bytes(cut)
    with pytest.raises(AuditWriteError, match="HEAD"):
        open_log()
    assert segment.read_bytes() == cut
    assert not list(written_log.glob("torn-*"))
