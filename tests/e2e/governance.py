"""Registering organisations and keys on a live server's data directory, and boto3 hooks that
send the X-Facegate-* headers (signed, as they must be, or deliberately unsigned)."""

from __future__ import annotations

import os
from typing import Any

from facegate.governance import Registry
from facegate.store.db import Database
from facegate.store.keys import KeyRepository
from facegate.store.orgs import OrganisationRepository
from facegate.wire.keys import KeyService, load_master_key
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
    """Register an organisation on the server's database (SQLite is shared safely with the
    running server) and issue one key per use case."""
    db = Database(server.data_dir / "facegate.sqlite3")
    try:
        master = load_master_key(server.data_dir, os.environ.get("FACEGATE_MASTER_KEY"))
        registry = Registry(OrganisationRepository(db), KeyService(KeyRepository(db), master))
        registry.create_org(
            org_id,
            name=org_id.replace("-", " ").title(),
            sector=sector,
            use_cases=use_cases,
            country=country,
            region=region,
        )
        keys = {}
        for use_case in use_cases:
            key = registry.create_key(org_id, use_case, f"e2e {use_case}")
            keys[use_case] = Credentials(key.access_key_id, key.secret_access_key)
        return keys
    finally:
        db.close()


def send_headers(client: Any, headers: dict[str, str], *, signed: bool = True) -> Any:
    """Add ``headers`` to every request of ``client``: before signing (the README's way; they
    are covered by the signature) or, with ``signed=False``, after it."""

    def add(request: Any, **_: Any) -> None:
        for name, value in headers.items():
            request.headers[name] = value

    event = "before-sign.rekognition.*" if signed else "before-send.rekognition.*"
    client.meta.events.register(event, add)
    return client
