"""Crash recovery: torn last lines are moved aside and recorded; kill -9 loses nothing acked."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from facegate.audit.errors import AuditWriteError
from facegate.audit.log import AuditLog, iter_entries
from facegate.audit.signing_key import load_signing_key
from facegate.audit.verify import verify
from tests.audit.conftest import request_record
from tests.audit.edit import SEGMENT1, lines, write_lines

OpenLog = Callable[..., AuditLog]
TORN = b'{"hash":"5e1f0a","prev":"00'


def test_torn_tail_is_moved_aside_and_recorded(
    written_log: Path, open_log: OpenLog, key: Ed25519PrivateKey
) -> None:
    segment = written_log / SEGMENT1
    good = segment.stat().st_size
    with segment.open("ab") as fh:
        fh.write(TORN)
    assert verify(written_log, key.public_key()).problem is not None
    log = open_log()
    assert log.last_seq == 35  # 33 + recovery + checkpoint
    log.close()
    torn = written_log / f"torn-segment-000001-{good}.bin"
    assert torn.read_bytes() == TORN
    entries = list(iter_entries(written_log))
    recovery = entries[33]
    assert recovery.seq == 34
    assert {k: v for k, v in recovery.record.items() if k != "at"} == {
        "kind": "recovery",
        "torn_bytes": len(TORN),
        "segment": SEGMENT1,
        "offset": good,
    }
    assert entries[34].record["kind"] == "checkpoint"
    result = verify(written_log, key.public_key())
    assert result.ok, result.problem
    assert result.kinds["recovery"] == 1
    assert any(torn.name in w for w in result.warnings)


def test_an_unparseable_last_line_counts_as_torn(
    written_log: Path, open_log: OpenLog, key: Ed25519PrivateKey
) -> None:
    """A file system may extend the file before the data lands: zeros and a newline."""
    with (written_log / SEGMENT1).open("ab") as fh:
        fh.write(b"\x00" * 300 + b"\n")
    open_log().close()
    result = verify(written_log, key.public_key())
    assert result.ok, result.problem
    assert [e.record["torn_bytes"] for e in iter_entries(written_log) if e.seq == 34] == [301]


def test_damage_beyond_the_last_line_is_not_repaired(written_log: Path, open_log: OpenLog) -> None:
    content = lines(written_log / SEGMENT1)
    content[-1] = b"garbage\n"
    write_lines(written_log / SEGMENT1, [*content, b"{torn"])
    with pytest.raises(AuditWriteError, match="not a valid entry"):
        open_log()


def test_torn_first_line_of_a_new_segment(
    open_log: OpenLog, audit_dir: Path, key: Ed25519PrivateKey
) -> None:
    log = open_log(segment_max_bytes=4000)
    for i in range(12):
        log.append(request_record(i))
    log.close()
    names = sorted(p.name for p in audit_dir.glob("segment-*.jsonl"))
    last_seq = list(iter_entries(audit_dir))[-1].seq
    crashed = audit_dir / f"segment-{len(names) + 1:06d}.jsonl"
    crashed.write_bytes(TORN)
    log = open_log(segment_max_bytes=4000)
    assert log.last_seq == last_seq + 2
    log.close()
    assert crashed.stat().st_size > 0  # the recovery entry continues there
    result = verify(audit_dir, key.public_key())
    assert result.ok, result.problem


def test_unsigned_entries_left_by_a_crash_are_signed_on_open(
    audit_dir: Path, key: Ed25519PrivateKey, open_log: OpenLog
) -> None:
    log = AuditLog.open(audit_dir, key)
    for i in range(3):
        log.append(request_record(i))
    log._release()  # simulate a crash: no final checkpoint
    assert verify(audit_dir, key.public_key()).unsigned_tail == 3
    open_log().close()
    result = verify(audit_dir, key.public_key())
    assert result.ok
    assert result.unsigned_tail == 0
    assert result.signed_seq == 3


CHILD = r"""
import os, sys, time
from pathlib import Path
from facegate.audit.signing_key import load_signing_key
from facegate.audit.log import AuditLog

data, pad, short = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "short"
if short:
    # Short writes (POSIX allows them; write_all loops) with a pause between them, so that a
    # kill lands between two of them and tears the line (even on a loaded machine), and no
    # fsync (a kill, unlike a power cut, never loses what reached the page cache).
    write = os.write
    os.write = lambda fd, data: (time.sleep(0.0005), write(fd, data[:61]))[1]
    os.fsync = lambda fd: None
log = AuditLog.open(data / "audit", load_signing_key(data, None), checkpoint_every=25,
                    segment_max_bytes=3_000_000)
acks = os.open(data / "acks", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
print("ready", flush=True)
i = 0
while True:
    entry = log.append({"kind": "request", "at": time.time(), "i": i, "pad": "x" * pad})
    os.write(acks, b"%d\n" % entry.seq)
    i += 1
"""


def _last_ack(path: Path) -> int:
    done = [line for line in path.read_bytes().split(b"\n")[:-1] if line]
    return int(done[-1]) if done else 0


@pytest.mark.slow
def test_kill_9_during_heavy_appending(tmp_path: Path) -> None:
    """SIGKILL at random moments, several rounds on one directory: each time open() repairs
    the tail and verify passes with every acknowledged record present."""
    rng = random.Random(5)
    data = tmp_path / "data"
    audit = data / "audit"
    # realistic records first, then big ones written in short pieces (to tear lines)
    rounds = [(0, "whole")] * 3 + [(100_000, "short")] * 4
    recoveries = 0
    for pad, writes in rounds:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(data), str(pad), writes],
            stdout=subprocess.PIPE,
        )
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.05, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        acked = _last_ack(data / "acks")
        key = load_signing_key(data, None)
        before = verify(audit, key.public_key())
        assert before.problem is None or before.problem.kind == "torn tail", before.problem
        torn = before.problem is not None
        log = AuditLog.open(audit, key)
        log.close()
        result = verify(audit, key.public_key())
        assert result.ok, result.problem
        assert result.last_seq >= acked
        entries = list(iter_entries(audit))
        assert any(e.seq == acked and e.record["kind"] == "request" for e in entries)
        if torn:
            recoveries += 1
            assert entries[-2].record["kind"] == "recovery"
        assert result.kinds.get("recovery", 0) == recoveries
    assert recoveries >= 1, "no round tore a line: the recovery path was not exercised"
