"""The audit outbox: event records waiting to enter the audit chain.

Only the server appends to the audit chain (one writer). Commands run beside it (``facegate org``,
``keys``, ``operators``, ``review``) put their event records here; the server moves them into the
chain in order, each carrying its ``outbox_id`` (:meth:`AuditOutbox.drain_into`).

Each batch is moved inside one write transaction: the rows are read, appended to the chain one by
one, deleted, and the deletions committed. The store's writer lock (SQLite's single writer, or
PostgreSQL's advisory lock) keeps a second server sharing the store out until the commit, and it
then finds the rows gone: every record enters exactly one server's chain. A crash or a failed
append before the commit rolls the deletions back, so the records are appended again later
(twice at worst, recognisable by the same ``outbox_id``), never lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import bindparam, delete, insert, select

from facegate.store.db import StoreDatabase
from facegate.store.schema import audit_outbox

DRAIN_BATCH = 50
"""Records moved per transaction: the writer lock is held for about that many fsynced appends."""

_PUT = insert(audit_outbox).returning(audit_outbox.c.outbox_id)
_OLDEST = (
    select(audit_outbox.c.outbox_id, audit_outbox.c.record_json)
    .order_by(audit_outbox.c.outbox_id)
    .limit(bindparam("limit"))
)
_DELETE = delete(audit_outbox).where(audit_outbox.c.outbox_id == bindparam("outbox_id"))


class AuditOutbox:
    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    def put(self, record: Mapping[str, Any], at: float) -> int:
        """Queue one record (JSON-serialisable); returns its outbox id."""
        text = json.dumps(dict(record), sort_keys=True, allow_nan=False)
        with self.db.transaction() as conn:
            row = conn.execute(_PUT, {"record_json": text, "created_at": at}).fetchone()
            return int(row[0])

    def take(self, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        """The oldest ``limit`` queued records with their ids (not removed)."""
        with self.db.read() as conn:
            rows = conn.execute(_OLDEST, {"limit": limit}).fetchall()
        return [(int(r[0]), json.loads(r[1])) for r in rows]

    def drain_into(
        self, append: Callable[[int, dict[str, Any]], object], batch: int = DRAIN_BATCH
    ) -> int:
        """Move every queued record, oldest first, through ``append(outbox_id, record)``;
        returns how many moved. ``append`` must not use this store (it runs inside the
        transaction that holds the writer lock). Raises what ``append`` raises (the batch's rows
        stay queued)."""
        moved = 0
        while True:
            with self.db.transaction() as conn:
                rows = conn.execute(_OLDEST, {"limit": batch}).fetchall()
                for row in rows:
                    append(int(row[0]), json.loads(row[1]))
                    conn.execute(_DELETE, {"outbox_id": int(row[0])})
            moved += len(rows)
            if len(rows) < batch:
                return moved
