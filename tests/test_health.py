"""``GET /healthz``: 503 with the reasons while requests would fail (issue 18 item 10: it
answered 200 while the audit log refused every append), 200 otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from facegate.app import create_app
from facegate.audit.errors import AuditWriteError
from facegate.config import Settings
from facegate.health import HealthCheck
from facegate.services import Services


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    graph = Services.open(
        Settings(data_dir=tmp_path / "data", engine_workers=1), start_engine=False
    )
    yield graph
    graph.close()


def get(services: Services) -> tuple[int, dict[str, Any]]:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://facegate") as client:
            return await client.get("/healthz")

    response = asyncio.run(call())
    return response.status_code, response.json()


def test_healthy(services: Services) -> None:
    status, doc = get(services)
    assert status == 200
    assert doc["status"] == "ok"
    assert doc["audit"]["ok"] is True
    assert doc["store"] == {"ok": True}
    assert doc["disk"]["ok"] is True
    assert "engine_workers" in doc


def test_an_audit_log_that_refuses_appends(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import facegate.audit.log as log_module

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(log_module, "write_all", full)
    with pytest.raises(AuditWriteError):
        services.audit.append({"kind": "console", "at": 1.0})
    status, doc = get(services)
    assert status == 503
    assert doc["status"] == "unavailable"
    assert doc["audit"]["ok"] is False
    assert "No space left on device" in doc["audit"]["reason"]
    assert doc["reasons"] == [f"the audit log refuses appends: {doc['audit']['reason']}"]


def test_a_store_that_fails(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    @contextlib.contextmanager
    def broken() -> Iterator[Any]:
        raise ConnectionError("server closed the connection unexpectedly (host db.internal)")
        yield

    monkeypatch.setattr(services.db, "read", broken)
    status, doc = get(services)
    assert status == 503
    assert doc["store"] == {"ok": False, "reason": "the store failed a read (ConnectionError)"}
    assert "db.internal" not in str(doc)  # a driver's message is not shown


def test_a_store_that_hangs_is_probed_once_at_a_time(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    probes = 0

    @contextlib.contextmanager
    def stuck() -> Iterator[Any]:
        nonlocal probes
        probes += 1
        release.wait(10)
        yield None

    monkeypatch.setattr(services.db, "read", stuck)
    check = HealthCheck(services, store_timeout_s=0.2)

    async def twice() -> tuple[Any, Any]:
        try:
            return await check.check(), await check.check()
        finally:
            release.set()

    first, second = asyncio.run(twice())
    assert first[0] == second[0] == 503
    assert first[1]["store"]["reason"] == "no answer within 0.2 s"
    assert second[1]["store"]["reason"] == "the previous store probe has not returned"
    assert probes == 1


def test_a_full_disk(services: Services) -> None:
    status, doc = asyncio.run(HealthCheck(services, min_free_bytes=2**62).check())
    assert status == 503
    assert doc["disk"]["ok"] is False
    assert any("file system is full" in r for r in doc["reasons"])
