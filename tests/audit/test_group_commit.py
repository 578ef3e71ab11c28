"""Group commit: appends from several threads share one write and one fsync, none returns before
its own line is fsynced, and a failed fsync fails every record of its group (nothing of it is
trusted: the repair moves it aside, as for a single append)."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from facegate.audit.errors import AuditWriteError
from facegate.audit.log import AuditLog, iter_entries
from facegate.audit.verify import verify
from tests.audit.conftest import request_record

OpenLog = Callable[..., AuditLog]


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_concurrent_appends_share_fsyncs_and_return_only_once_durable(
    open_log: OpenLog, audit_dir: Path, key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log()
    real = os.fsync
    durable_upto = [0]  # the last seq known fsynced (the log's head when an fsync returned)

    def slow_fsync(fd: int) -> None:
        head = log.last_seq  # called under the log's lock: everything written so far
        time.sleep(0.01)  # a slow disk, so that appends pile up behind the lock
        real(fd)
        durable_upto[0] = max(durable_upto[0], head)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    before = log.fsyncs
    threads, per_thread = 8, 10
    returned: list[tuple[int, int]] = []  # (seq, durable seq seen on return)
    lock = threading.Lock()

    def appender(t: int) -> None:
        for i in range(per_thread):
            entry = log.append(request_record(t * per_thread + i))
            with lock:
                returned.append((entry.seq, durable_upto[0]))

    workers = [threading.Thread(target=appender, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert all(seq <= durable for seq, durable in returned)  # none returned before its fsync
    seqs = sorted(seq for seq, _ in returned)
    assert seqs == list(range(1, threads * per_thread + 1))  # one entry each, no gaps
    fsyncs = log.fsyncs - before
    assert fsyncs < threads * per_thread / 2  # shared: far fewer fsyncs than appends
    monkeypatch.setattr(os, "fsync", real)
    log.close()
    records = [e.record for e in iter_entries(audit_dir) if e.record["kind"] == "request"]
    assert sorted(r["request_id"] for r in records) == sorted(
        f"req-{i:06d}" for i in range(threads * per_thread)
    )
    result = verify(audit_dir, key.public_key())
    assert result.ok, result.problem


def test_a_failed_fsync_fails_every_record_of_its_group(
    open_log: OpenLog, audit_dir: Path, key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(retry_s=60)  # repaired below, by hand: no retry by the timer meanwhile
    real = os.fsync
    calls = [0]
    release = threading.Event()

    def fsync(fd: int) -> None:
        calls[0] += 1
        if calls[0] == 1:  # the first append's own fsync: hold it while others queue
            assert release.wait(10)
            real(fd)
        elif calls[0] == 2:  # the group's one fsync
            raise OSError(errno.ENOSPC, "No space left on device")
        else:
            real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    outcomes: dict[int, Any] = {}

    def append(i: int) -> None:
        try:
            outcomes[i] = log.append(request_record(i)).seq
        except AuditWriteError as exc:
            outcomes[i] = exc

    first = threading.Thread(target=append, args=(0,))
    first.start()
    _wait_for(lambda: calls[0] == 1)  # the first append holds the lock, in its fsync
    group = [threading.Thread(target=append, args=(i,)) for i in (1, 2, 3)]
    for t in group:
        t.start()
    _wait_for(lambda: len(log._pending) == 3)  # all three queued behind it
    release.set()
    for t in (first, *group):
        t.join()
    assert outcomes[0] == 1
    for i in (1, 2, 3):  # written together, fsynced together, failed together
        assert isinstance(outcomes[i], AuditWriteError), outcomes
    assert calls[0] == 2  # one fsync for the group of three
    assert log.failed is not None
    assert log.repair()  # the disk is fine again
    entry = log.append(request_record(4))
    assert log.failed is None
    monkeypatch.setattr(os, "fsync", real)
    log.close()
    records = [e.record for e in iter_entries(audit_dir)]
    requests = [r["request_id"] for r in records if r["kind"] == "request"]
    assert requests == ["req-000000", "req-000004"]  # nothing of the failed group is trusted
    recovery = next(r for r in records if r["kind"] == "recovery")
    assert recovery["torn_bytes"] > 0
    torn = b"".join(p.read_bytes() for p in audit_dir.glob("torn-*.bin"))
    assert all(f"req-00000{i}".encode() in torn for i in (1, 2, 3))
    assert records[entry.seq - 1]["request_id"] == "req-000004"
    result = verify(audit_dir, key.public_key())
    assert result.ok, result.problem


def test_a_refused_intent_in_a_group_leaves_the_others_written(
    open_log: OpenLog, audit_dir: Path, key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An intent refused for want of disk reserve writes nothing and fails alone."""
    log = open_log(reserve_bytes=4096)
    real = os.fsync
    release = threading.Event()
    calls = [0]

    def fsync(fd: int) -> None:
        calls[0] += 1
        if calls[0] == 1:
            assert release.wait(10)
        real(fd)

    def no_room(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)
    outcomes: dict[str, Any] = {}

    def append(name: str, record: dict[str, Any]) -> None:
        try:
            outcomes[name] = log.append(record)
        except AuditWriteError as exc:
            outcomes[name] = exc

    first = threading.Thread(target=append, args=("first", request_record(0)))
    first.start()
    _wait_for(lambda: calls[0] == 1)
    monkeypatch.setattr("facegate.audit.log.allocate", no_room)
    # use up the reserve, so that the intent needs a top-up that fails
    log._reserved_end = log._size + 10
    intent = {**request_record(1), "kind": "intent"}
    group = [
        threading.Thread(target=append, args=("intent", intent)),
        threading.Thread(target=append, args=("after", request_record(2))),
    ]
    group[0].start()
    _wait_for(lambda: len(log._pending) == 1)
    group[1].start()
    _wait_for(lambda: len(log._pending) == 2)
    release.set()
    for t in (first, *group):
        t.join()
    assert isinstance(outcomes["intent"], AuditWriteError)
    assert "reserve" in str(outcomes["intent"])
    assert not isinstance(outcomes["after"], Exception)
    assert log.failed is None
    monkeypatch.setattr(os, "fsync", real)
    log.close()
    kinds = [e.record["kind"] for e in iter_entries(audit_dir)]
    assert "intent" not in kinds
    assert kinds.count("request") == 2
    assert verify(audit_dir, key.public_key()).ok
