"""ClientRequestToken idempotency: the first response to (operation, token) is replayed for the
same parameters; different parameters raise IdempotentParameterMismatchException."""

from __future__ import annotations

import time

from facegate.errors import IdempotentParameterMismatchException
from facegate.store.db import StoreDatabase


class IdempotencyRepository:
    """Remembers responses of idempotent operations by (operation, token)."""

    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    def recall(self, operation: str, token: str, params_sha256: str) -> str | None:
        """The stored response JSON for a repeat of the same request, else ``None``."""
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT params_sha256, response_json FROM idempotency "
                "WHERE operation = ? AND token = ?",
                (operation, token),
            ).fetchone()
        if row is None:
            return None
        if row["params_sha256"] != params_sha256:
            raise IdempotentParameterMismatchException(
                "ClientRequestToken was already used with different parameters."
            )
        return str(row["response_json"])

    def remember(self, operation: str, token: str, params_sha256: str, response: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO idempotency (operation, token, params_sha256, response_json, "
                "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (operation, token) DO NOTHING",
                (operation, token, params_sha256, response, time.time()),
            )
