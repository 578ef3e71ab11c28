"""AuditLog's ``on_checkpoint``: called once per durable checkpoint, in order, off the log's lock
and off the writing thread; a failing callback never fails the log."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from facegate.audit.chain import Entry
from facegate.audit.checkpoint import Head
from facegate.audit.layout import HEAD_NAME
from facegate.audit.log import AuditLog, iter_entries
from facegate.audit.verify import verify
from tests.audit.conftest import event_record, request_record

OpenLog = Callable[..., AuditLog]


def test_called_after_every_checkpoint_in_order(open_log: OpenLog, audit_dir: Path) -> None:
    seen: list[Entry] = []
    heads: list[int] = []

    def record(entry: Entry) -> None:
        heads.append(Head.parse((audit_dir / HEAD_NAME).read_bytes()).seq)  # already durable
        seen.append(entry)

    log = open_log(checkpoint_every=3, checkpoint_s=0.2, on_checkpoint=record)
    for i in range(7):  # checkpoints after records 3 and 6 (by count)
        log.append(request_record(i))
    log.checkpoint()  # explicit
    log.append(request_record(7))
    deadline = time.monotonic() + 5
    while len(seen) < 4 and time.monotonic() < deadline:  # the timer's checkpoint
        time.sleep(0.02)
    log.append(request_record(8))
    log.close()  # the final checkpoint, delivered before close returns
    written = [e for e in iter_entries(audit_dir) if e.record["kind"] == "checkpoint"]
    assert len(written) >= 5  # more if the machine is slow enough for the timer to fire twice
    assert [(e.seq, e.hash, e.segment) for e in seen] == [
        (e.seq, e.hash, e.segment) for e in written
    ]
    assert all(head >= e.seq for head, e in zip(heads, seen, strict=True))


def test_a_callback_taking_a_lock_the_writer_holds_does_not_deadlock(
    open_log: OpenLog, audit_dir: Path
) -> None:
    # drain_outbox holds the store's writer lock while it appends; the anchor callback takes
    # the same lock. A callback run in the writing thread would deadlock here.
    store_lock = threading.Lock()
    seen: list[int] = []

    def anchor(entry: Entry) -> None:
        if store_lock.acquire(timeout=5):  # a callback run under the lock would give up here
            seen.append(entry.seq)
            store_lock.release()

    log = open_log(checkpoint_every=2, on_checkpoint=anchor)
    with store_lock:
        log.append(event_record(0))
        log.append(event_record(1))  # writes a checkpoint while the "store lock" is held
    log.close()
    assert seen == [3]


def test_the_callback_may_use_the_log(open_log: OpenLog, audit_dir: Path) -> None:
    log: AuditLog | None = None
    appended: list[int] = []

    def note(entry: Entry) -> None:
        assert log is not None
        if not appended:  # not called with the log's lock held: this would deadlock
            appended.append(log.append(event_record(entry.seq)).seq)

    log = open_log(checkpoint_every=1, on_checkpoint=note)
    log.append(request_record(0))  # seq 1, checkpoint seq 2
    deadline = time.monotonic() + 5
    while not appended and time.monotonic() < deadline:
        time.sleep(0.01)
    log.close()
    assert appended == [3]


def test_a_raising_callback_does_not_break_appends(
    open_log: OpenLog,
    audit_dir: Path,
    caplog: pytest.LogCaptureFixture,
    key: Ed25519PrivateKey,
) -> None:
    calls: list[int] = []

    def down(entry: Entry) -> None:
        calls.append(entry.seq)
        raise ConnectionError("postgresql://user:secret@db/facegate is down")

    log = open_log(checkpoint_every=2, on_checkpoint=down)
    with caplog.at_level(logging.WARNING, logger="facegate.audit"):
        for i in range(6):
            log.append(request_record(i))
        log.close()
    assert calls == [3, 6, 9]
    assert log.callback_failures == 3
    messages = [r.getMessage() for r in caplog.records if r.name == "facegate.audit"]
    assert len(messages) == 3
    assert all("ConnectionError" in m and "secret" not in m for m in messages)
    assert verify(audit_dir, key.public_key()).ok


def test_without_a_callback_no_thread_is_started(open_log: OpenLog) -> None:
    before = {t.name for t in threading.enumerate()}
    log = open_log()
    assert "facegate-audit-anchor" not in {t.name for t in threading.enumerate()} - before
    log.close()
