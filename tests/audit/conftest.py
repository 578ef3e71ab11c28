"""Fixtures for the audit tests: a signing key, an audit directory and realistic records."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from facegate.audit.log import AuditLog
from facegate.audit.record import EventRecord, RequestRecord, ResultSummary


def request_record(i: int) -> dict[str, Any]:
    """A realistic request record (the server's shape), distinct per ``i``."""
    return RequestRecord(
        at=1_750_000_000.0 + i,
        request_id=f"req-{i:06d}",
        operation="SearchFacesByImage",
        decision="allow" if i % 3 else "deny",
        latency_ms=12.5 + i % 7,
        org_id="org-missing-persons",
        sector="ngo",
        access_key_id="AKIAFACEGATE0000001",
        use_case="missing_persons",
        collection_id="missing",
        purpose="missing_person_search",
        case_ref=f"case-{i % 5}",
        policy_ids=("base.permit-registered", "amazon.ngo-exemption"),
        obligations={"min_similarity_pct": 99.0, "max_candidates": 5},
        input_sha256=("ab" * 32,),
        result=ResultSummary(faces_detected=1, candidates=i % 4, top_similarity_pct=99.3),
    ).to_json()


def event_record(i: int) -> dict[str, Any]:
    return EventRecord(
        at=1_750_000_000.0 + i, kind="registry", action="key.create", actor="cli", subject=f"k{i}"
    ).to_json()


def segment_bytes(key: Ed25519PrivateKey, records: float) -> int:
    """A ``segment_max_bytes`` that a fresh log's first segment reaches at about ``records``
    request records of :func:`request_record` (measured on a scratch log with ``key``, so tests
    that rotate segments do not depend on a record's size, which grows with its fields)."""
    with tempfile.TemporaryDirectory() as scratch:
        log = AuditLog.open(Path(scratch), key, retry_s=0)
        try:
            segment = Path(scratch) / "segment-000001.jsonl"
            log.append(request_record(0))
            first = segment.stat().st_size
            log.append(request_record(1))
            line = segment.stat().st_size - first
        finally:
            log.close()
    return int(first - line + records * line)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def audit_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "audit"


@pytest.fixture
def open_log(audit_dir: Path, key: Ed25519PrivateKey) -> Iterator[Callable[..., AuditLog]]:
    """Open logs on ``audit_dir`` (closed at the end of the test if still open)."""
    opened: list[AuditLog] = []

    def make(**options: Any) -> AuditLog:
        log = AuditLog.open(audit_dir, key, **options)
        opened.append(log)
        return log

    yield make
    for log in opened:
        with contextlib.suppress(Exception):
            log.close()


@pytest.fixture
def written_log(open_log: Callable[..., AuditLog], audit_dir: Path) -> Path:
    """A closed log of 30 request records with a checkpoint every 10 entries:
    seq 1-10 records, 11 checkpoint, 12-21 records, 22 checkpoint, 23-32 records,
    33 checkpoint (HEAD)."""
    log = open_log(checkpoint_every=10)
    for i in range(30):
        log.append(request_record(i))
    log.close()
    return audit_dir
