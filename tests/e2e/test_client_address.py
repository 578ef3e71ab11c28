"""The client address is the TCP peer unless that peer is a trusted proxy (issue 18, item 13).

``facegate serve`` used to run uvicorn with its defaults, which believe ``X-Forwarded-For`` from
127.0.0.1: any local client chose the address written to the audit trail and counted by the
console's per-address sign-in throttle. Against a live server (the bug was in how ``serve``
runs uvicorn): a forged header from loopback changes nothing; with
``FACEGATE_TRUSTED_PROXIES=127.0.0.1`` the proxy's header is believed, read from the right."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from facegate.audit.log import iter_entries
from tests.e2e.server import LiveServer

pytestmark = pytest.mark.slow  # live servers behind and without a trusted proxy

FORGED = "203.0.113.9"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("peers") / "data", workers=1)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _records(server: LiveServer, kind: str, timeout_s: float = 10.0, **match: str) -> list[Any]:
    """The audit records of ``kind`` whose fields equal ``match`` (waits for the appends)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [
            e.record
            for e in iter_entries(server.data_dir / "audit")
            if e.record.get("kind") == kind
            and all(
                e.record.get(k) == v or e.record.get("details", {}).get(k) == v
                for k, v in match.items()
            )
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _rekognition_with(server: LiveServer, forwarded_for: str) -> str:
    """ListCollections with an (unsigned) X-Forwarded-For header; returns the request id."""
    client = server.client()

    def add(request: Any, **_: Any) -> None:
        request.headers["X-Forwarded-For"] = forwarded_for

    client.meta.events.register("before-send.rekognition.ListCollections", add)
    reply = client.list_collections()
    return str(reply["ResponseMetadata"]["RequestId"])


def _sign_in(http: httpx.Client, operator_id: str, forwarded_for: str) -> int:
    """One console sign-in with a wrong password; the status."""
    form = http.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    response = http.post(
        "/console/login",
        data={"csrf_token": token.group(1), "operator_id": operator_id,
              "password": "not the password at all"},
        headers={"X-Forwarded-For": forwarded_for},
    )  # fmt: skip
    return response.status_code


def test_forged_forwarded_for_from_loopback_is_ignored(live: LiveServer) -> None:
    request_id = _rekognition_with(live, FORGED)
    (record,) = _records(live, "request", request_id=request_id)
    assert record["client_address"] == "127.0.0.1"

    operator_id = "nobody-" + uuid.uuid4().hex[:6]
    with httpx.Client(base_url=live.endpoint, timeout=30) as http:
        assert _sign_in(http, operator_id, FORGED) == 401
        (event,) = _records(live, "console", action="console.sign_in_failed", subject=operator_id)
        assert event["details"]["client"] == "127.0.0.1"
        # the per-address throttle counts the peer, whatever address each attempt claims: 20
        # failures (different accounts, different forged addresses), then refused
        statuses = [_sign_in(http, f"{operator_id}-{i}", f"198.51.100.{i}") for i in range(1, 21)]
    assert statuses == [401] * 19 + [429]


def test_a_trusted_proxy_is_believed(live: LiveServer) -> None:
    live.stop()
    live.env = {**live.env, "FACEGATE_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"}
    live.start()
    # right-most address that is not a trusted proxy: a value the client put first is skipped
    request_id = _rekognition_with(live, f"192.0.2.7, {FORGED}, 10.1.2.3")
    (record,) = _records(live, "request", request_id=request_id)
    assert record["client_address"] == FORGED

    operator_id = "nobody-" + uuid.uuid4().hex[:6]
    with httpx.Client(base_url=live.endpoint, timeout=30) as http:
        assert _sign_in(http, operator_id, FORGED) == 401
        (event,) = _records(live, "console", action="console.sign_in_failed", subject=operator_id)
        assert event["details"]["client"] == FORGED
