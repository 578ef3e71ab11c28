"""Registering organisations and keys on a live server's data directory, and boto3 hooks that
send the X-Facegate-* headers (signed, as they must be, or deliberately unsigned)."""

from __future__ import annotations

import os
from typing import Any

from facegate.cli.admin import admin_for
from facegate.config import Settings
from tests.e2e.server import Credentials, LiveServer


def register(
    server: LiveServer,
    org_id: str,
    sector: str,
    use_cases: list[str],
    *,
    country: str = "",
    region: str = "",
) -> dict[str, Credentials]:
    """Register an organisation on the server's database as ``facegate org create`` and
    ``facegate keys create`` do (on the server's store: its SQLite file or its
    FACEGATE_DATABASE_URL; SQLite is shared safely with the running server; the audit
    events go through the outbox), and issue one key per use case."""
    with admin_for(
        Settings.from_env({**os.environ, **server.env}, data_dir=server.data_dir)
    ) as admin:
        admin.create_org(
            org_id,
            name=org_id.replace("-", " ").title(),
            sector=sector,
            use_cases=tuple(use_cases),
            country=country,
            region=region,
        )
        keys = {}
        for use_case in use_cases:
            key = admin.create_key(org_id, use_case, f"e2e {use_case}")
            keys[use_case] = Credentials(key.access_key_id, key.secret_access_key)
        return keys


def send_headers(client: Any, headers: dict[str, str], *, signed: bool = True) -> Any:
    """Add ``headers`` to every request of ``client``: before signing (the README's way; they
    are covered by the signature) or, with ``signed=False``, after it."""

    def add(request: Any, **_: Any) -> None:
        for name, value in headers.items():
            request.headers[name] = value

    event = "before-sign.rekognition.*" if signed else "before-send.rekognition.*"
    client.meta.events.register(event, add)
    return client
