"""The request path fails closed on the audit trail: a request whose record cannot be written
answers InternalServerError (the log itself then refuses later appends: tests/audit); a
working log gets one record per request. In process, with a SigV4-signed request, no engine."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facegate.audit.errors import AuditWriteError
from facegate.audit.log import iter_entries
from facegate.config import Settings
from facegate.pipeline import RawRequest, handle
from facegate.services import Services
from tests.signed import local_key, signed_request


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    graph = Services.open(
        Settings(data_dir=tmp_path / "data", engine_workers=1), start_engine=False
    )
    yield graph
    graph.close()


def _request(services: Services, operation: str, body: dict[str, Any]) -> RawRequest:
    return signed_request(local_key(services), operation, body)


def test_one_record_per_request(services: Services) -> None:
    response = asyncio.run(handle(services, _request(services, "ListCollections", {})))
    assert response.status == 200
    requests = [
        e.record for e in iter_entries(services.settings.audit_dir) if e.record["kind"] == "request"
    ]
    assert len(requests) == 1
    assert requests[0]["operation"] == "ListCollections"
    assert requests[0]["decision"] == "allow"
    assert requests[0]["request_id"] == response.headers["x-amzn-RequestId"]


def test_a_failing_audit_log_fails_the_request(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(record: Any) -> Any:
        raise AuditWriteError("The audit log cannot be written: No space left on device.")

    monkeypatch.setattr(services.audit, "append", broken)
    response = asyncio.run(
        handle(services, _request(services, "CreateCollection", {"CollectionId": "c1"}))
    )
    assert response.status == 500
    assert json.loads(response.body)["__type"] == "InternalServerError"
    assert "x-facegate-decision-id" not in response.headers
