"""Issue 18 item 10: after a full disk, work happened with no audit record.

In process, on both store backends, with the audit log's file writes failing with ENOSPC for a
while (deterministic; a real full disk is in tests/e2e/test_disk_full.py): while the log
refuses, nothing is stored and /healthz answers 503; once there is space again the log repairs
itself (a ``recovery`` record) without a restart, requests succeed, and every stored face and
collection has its audit record. If the log fails between the intent and the outcome, the
intent is on record and verify and the report count it.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from facegate.app import create_app
from facegate.audit.log import iter_entries
from facegate.audit.report import build_report
from facegate.audit.signing_key import read_public_key
from facegate.audit.verify import verify
from facegate.config import Settings
from facegate.pipeline import RawResponse, handle
from facegate.services import Services
from facegate.wire.keys import NewKey
from tests.conftest import BACKENDS
from tests.signed import signed_request


@pytest.fixture(params=BACKENDS)
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    url = request.getfixturevalue("pg_dsn") if request.param == "postgres" else None
    graph = Services.open(
        Settings(data_dir=tmp_path / "data", engine_workers=1, database_url=url),
        start_engine=False,
    )
    yield graph
    graph.close()


@pytest.fixture
def key(services: Services) -> NewKey:
    services.registry.ensure_local_org()
    return services.registry.create_key("local", "research")


def call(services: Services, key: NewKey, operation: str, body: dict[str, Any]) -> RawResponse:
    raw = signed_request(key, operation, body, client_address="127.0.0.1")
    return asyncio.run(handle(services, raw))


class DiskFull:
    """The audit log's file writes raise ENOSPC while ``full``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import facegate.audit.log as log_module
        from facegate.atomicfile import write_all as real

        self.full = True

        def write_all(fd: int, data: bytes) -> None:
            if self.full:
                raise OSError(errno.ENOSPC, "No space left on device")
            real(fd, data)

        monkeypatch.setattr(log_module, "write_all", write_all)


def index_body(collection: str, image: bytes, external: str) -> dict[str, Any]:
    return {
        "CollectionId": collection,
        "Image": {"Bytes": base64.b64encode(image).decode()},
        "ExternalImageId": external,
    }


def records(services: Services) -> list[dict[str, Any]]:
    return [e.record for e in iter_entries(services.settings.audit_dir)]


def health(services: Services) -> tuple[int, dict[str, Any]]:
    """``GET /healthz`` of the app over ``services`` (status, JSON)."""

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://facegate") as client:
            return await client.get("/healthz")

    response = asyncio.run(get())
    return response.status_code, response.json()


def wait_healthy(services: Services, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while services.audit.failed is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert services.audit.failed is None


def test_nothing_is_stored_without_its_audit_record(
    services: Services,
    key: NewKey,
    monkeypatch: pytest.MonkeyPatch,
    sample_bytes: Any,
) -> None:
    obama = sample_bytes("obama.jpg")
    assert call(services, key, "CreateCollection", {"CollectionId": "kept"}).status == 200
    assert health(services)[0] == 200
    disk = DiskFull(monkeypatch)
    # while full: every write fails before anything is stored
    assert call(services, key, "CreateCollection", {"CollectionId": "c-full"}).status == 500
    for n in range(3):
        response = call(services, key, "IndexFaces", index_body("kept", obama, f"full-{n}"))
        assert response.status == 500
        assert json.loads(response.body)["__type"] == "InternalServerError"
    assert call(services, key, "CreateUser", {"CollectionId": "kept", "UserId": "u1"}).status == 500
    kept = services.store.get_collection("local", "kept")
    assert not services.store.list_faces(kept, 0, 100)
    assert "c-full" not in {c.collection_id for _, c in services.store.list_collections(0, 100)}
    status, doc = health(services)
    assert status == 503
    assert doc["status"] == "unavailable"
    assert doc["audit"]["ok"] is False
    assert "ENOSPC" in doc["audit"]["reason"]
    assert any("audit log refuses appends" in r for r in doc["reasons"])
    # space again: no restart, the log repairs itself and the same calls succeed
    disk.full = False
    wait_healthy(services)
    assert health(services)[0] == 200
    assert call(services, key, "CreateCollection", {"CollectionId": "c-full"}).status == 200
    acknowledged = []
    for n in range(3):
        response = call(services, key, "IndexFaces", index_body("kept", obama, f"after-{n}"))
        assert response.status == 200, response.body
        acknowledged += [r["Face"]["FaceId"] for r in json.loads(response.body)["FaceRecords"]]
    stored = {f.face_id for _, f in services.store.list_faces(kept, 0, 100)}
    assert stored == set(acknowledged)
    log = records(services)
    recorded = {
        face_id
        for r in log
        if r["kind"] == "request" and r["operation"] == "IndexFaces" and r["error_code"] == ""
        for face_id in r["result"]["face_ids"]
    }
    assert stored <= recorded  # every stored face has its (successful) request record
    created = [
        r["collection_id"]
        for r in log
        if r["kind"] == "request" and r["operation"] == "CreateCollection" and not r["error_code"]
    ]
    assert created == ["kept", "c-full"]
    recovery = [r for r in log if r["kind"] == "recovery"]
    assert len(recovery) == 1
    assert recovery[0]["cause"] == "write_failed"
    services.audit.checkpoint()
    audit_dir = services.settings.audit_dir
    result = verify(audit_dir, read_public_key(audit_dir / "public.key"))
    assert result.ok, result.problem
    assert result.open_intents == 0
    assert result.kinds["intent"] == 5  # two CreateCollection, three IndexFaces that wrote


def test_an_outcome_that_cannot_be_recorded_leaves_its_intent(
    services: Services, key: NewKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills between the intent and the outcome: the request fails, the collection
    exists, and the log says a change was attempted whose outcome is not on record."""
    real = services.audit.append

    def outcome_fails(record: Any) -> Any:
        if record["kind"] == "request":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(record)

    monkeypatch.setattr(services.audit, "append", outcome_fails)
    response = call(services, key, "CreateCollection", {"CollectionId": "half"})
    monkeypatch.undo()
    assert response.status == 500
    intents = [r["request"] for r in records(services) if r["kind"] == "intent"]
    assert len(intents) == 1
    assert intents[0]["operation"] == "CreateCollection"
    assert intents[0]["collection_id"] == "half"
    assert intents[0]["request_id"] == response.headers["x-amzn-RequestId"]
    audit_dir = services.settings.audit_dir
    result = verify(audit_dir, read_public_key(audit_dir / "public.key"))
    assert result.ok
    assert result.open_intents == 1
    assert result.open_intent_ids == (response.headers["x-amzn-RequestId"],)
    assert any("without their request record" in w for w in result.warnings)
    report = build_report(records(services))
    assert report.integrity.writes_without_outcome == 1


def test_reads_and_denials_write_no_intent(services: Services, key: NewKey) -> None:
    assert call(services, key, "ListCollections", {}).status == 200
    assert call(services, key, "DescribeCollection", {"CollectionId": "nope"}).status == 400
    assert not [r for r in records(services) if r["kind"] == "intent"]
