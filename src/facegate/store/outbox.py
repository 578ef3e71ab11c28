"""The audit outbox: event records waiting to enter the audit chain.

Only the server appends to the audit chain (one writer). Commands run beside it (``facegate org``,
``keys``, ``operators``, ``review``) put their event records here; the server moves them into the
chain in order, each carrying its ``outbox_id``, and deletes them only after the append returned.
A crash between the two appends a record twice at worst (recognisable by the same ``outbox_id``),
never loses one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from facegate.store.db import StoreDatabase


class AuditOutbox:
    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    def put(self, record: Mapping[str, Any], at: float) -> int:
        """Queue one record (JSON-serialisable); returns its outbox id."""
        text = json.dumps(dict(record), sort_keys=True, allow_nan=False)
        with self.db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO audit_outbox (record_json, created_at) VALUES (?, ?) "
                "RETURNING outbox_id",
                (text, at),
            ).fetchone()
            return int(row[0])

    def take(self, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        """The oldest ``limit`` queued records with their ids (not removed)."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT outbox_id, record_json FROM audit_outbox ORDER BY outbox_id LIMIT ?",
                (limit,),
            ).fetchall()
        return [(int(r[0]), json.loads(r[1])) for r in rows]

    def remove(self, outbox_ids: list[int]) -> None:
        if not outbox_ids:
            return
        with self.db.transaction() as conn:
            conn.executemany(
                "DELETE FROM audit_outbox WHERE outbox_id = ?", [(i,) for i in outbox_ids]
            )
