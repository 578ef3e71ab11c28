"""Helpers for end-to-end tests of the admin API against a live server (tests/e2e)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.server import Credentials, LiveServer


def unique(prefix: str) -> str:
    """An id no other test of the session uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_operator(server: LiveServer, operator_id: str, role: str) -> str:
    """Create an operator with ``facegate operators create`` on the server's data directory
    (the way the first admin is made); returns their token."""
    out = server.facegate("operators", "create", operator_id, "--name", operator_id, "--role", role)
    match = re.search(r"token:\s+(fgop_[A-Za-z0-9_-]{40})", out)
    assert match is not None, out
    return match.group(1)


class AdminApi:
    """``/admin`` of a live server as one operator (httpx; JSON in and out)."""

    def __init__(self, server: LiveServer, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=server.endpoint + "/admin", headers=headers, timeout=30)

    def __enter__(self) -> AdminApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.http.get(path, params=params)

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.http.post(path, json=body) if body is not None else self.http.post(path)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    def create_org(self, org_id: str, **fields: Any) -> dict[str, Any]:
        body = {"org_id": org_id, "name": org_id.title(), **fields}
        doc: dict[str, Any] = self.ok(self.post("/orgs", body), 201)
        return doc

    def create_key(self, org_id: str, use_case: str | None = None) -> Credentials:
        body = {"org_id": org_id, "description": "e2e"}
        if use_case is not None:
            body["use_case"] = use_case
        doc = self.ok(self.post("/keys", body), 201)
        return Credentials(doc["access_key_id"], doc["secret_access_key"])


def error_of(response: httpx.Response, status: int) -> str:
    """The error message of an admin API error response with ``status``."""
    assert response.status_code == status, response.text
    doc = response.json()
    assert set(doc) == {"error", "code"}, doc
    message: str = doc["error"]
    return message


def with_header(client: Any, operation: str, name: str, value: str) -> Callable[..., None]:
    """Add header ``name`` to every ``operation`` call of the boto3 ``client`` before it is
    signed (so the signature covers it); returns the handler (to unregister)."""

    def add(request: Any, **_: Any) -> None:
        request.headers[name] = value

    client.meta.events.register(f"before-sign.rekognition.{operation}", add)
    return add
