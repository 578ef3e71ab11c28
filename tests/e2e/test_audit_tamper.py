"""Issue 18 item 16 end to end: a live server no longer starts, without a word, on a log whose
tail was tampered with; told to continue, it records the suspicion and /healthz reports it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from facegate.audit.log import iter_entries
from tests.e2e.server import LiveServer

pytestmark = pytest.mark.slow  # servers started on tampered audit logs


def test_a_tampered_tail_stops_the_server_unless_accepted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    live = LiveServer(data, workers=1)
    live.start()
    live.client().create_collection(CollectionId="evidence")
    live.stop()
    segment = data / "audit" / "segment-000001.jsonl"
    tampered = segment.read_bytes().replace(b'"evidence"', b'"innocent"')
    segment.write_bytes(tampered)
    with pytest.raises(RuntimeError, match="server exited"):
        live.start(timeout_s=60)
    log = live.log_path.read_text()
    assert "the audit log's tail fails verification" in log
    assert "FACEGATE_AUDIT_ACCEPT_DAMAGE=1" in log
    assert segment.read_bytes() == tampered  # nothing appended on top
    accepting = LiveServer(data, workers=1, env={"FACEGATE_AUDIT_ACCEPT_DAMAGE": "1"})
    accepting.start()
    try:
        health = httpx.get(f"{accepting.endpoint}/healthz", timeout=10)
        assert health.status_code == 200
        doc = health.json()
        assert doc["status"] == "degraded"
        assert doc["audit"]["tamper_suspected"]["kind"] == "hash mismatch"
        accepting.client().list_collections()
    finally:
        accepting.stop()
    assert "AUDIT LOG TAMPER SUSPECTED" in accepting.log_path.read_text()
    suspected = [
        e.record
        for e in iter_entries(data / "audit")
        if e.record.get("action") == "audit.tamper_suspected"
    ]
    assert len(suspected) == 1
    live.start()  # accepted once, recorded: the next start needs no flag
    live.stop()
