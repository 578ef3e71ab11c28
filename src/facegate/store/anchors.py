"""The audit anchor chain's table: one row per signed checkpoint of any server's audit chain.

:meth:`AnchorRepository.append` reads the latest row, numbers the new one after it, links it to
the latest row's hash (the first row links to 64 zeros), hashes it and inserts it, all in ONE
write transaction. The store's writer lock (SQLite's single writer, PostgreSQL's advisory lock)
is held from the read to the commit, so two servers anchoring at once are serialised: each row's
``prev_hash`` is the row before it and the chain never forks (the primary key on ``anchor_seq``
would refuse a fork anyway). See :mod:`facegate.audit.anchors` for the hash and the checks.

The store does not compute the hash itself (it does not import the audit package): the caller
passes the hash function, ``facegate.audit.anchors.anchor_hash`` in the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sqlalchemy import bindparam, insert, select

from facegate.store.db import StoreDatabase
from facegate.store.schema import audit_anchors

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first anchor."""

COLUMNS = (
    "anchor_seq",
    "key_id",
    "segment",
    "checkpoint_seq",
    "checkpoint_hash",
    "created_at",
    "prev_hash",
    "anchor_hash",
)

HashAnchor = Callable[[Mapping[str, Any]], str]
"""Maps an anchor's fields (every column but ``anchor_hash``) to its hash."""

PAGE = 1000
"""Rows read per query by :meth:`AnchorRepository.iter_all`."""

_ROWS = select(*(audit_anchors.c[c] for c in COLUMNS))
_NEWEST_FIRST = audit_anchors.c.anchor_seq.desc()
_HEAD = (
    select(audit_anchors.c.anchor_seq, audit_anchors.c.anchor_hash).order_by(_NEWEST_FIRST).limit(1)
)
_LATEST = _ROWS.order_by(_NEWEST_FIRST).limit(1)
_LATEST_OF_KEY = (
    _ROWS.where(audit_anchors.c.key_id == bindparam("key_id")).order_by(_NEWEST_FIRST).limit(1)
)
_PAGE = (
    _ROWS.where(audit_anchors.c.anchor_seq > bindparam("after"))
    .order_by(audit_anchors.c.anchor_seq)
    .limit(bindparam("limit"))
)
_INSERT = insert(audit_anchors)


class AnchorRepository:
    """Appends to and reads the ``audit_anchors`` chain of one store."""

    def __init__(self, db: StoreDatabase, hash_anchor: HashAnchor) -> None:
        self.db = db
        self._hash = hash_anchor

    def append(
        self,
        key_id: str,
        segment: str,
        checkpoint_seq: int,
        checkpoint_hash: str,
        created_at: float,
    ) -> dict[str, Any]:
        """Insert the anchor of one checkpoint (the checkpoint entry's own seq and hash, in
        ``segment`` of the chain signed by ``key_id``) after the latest anchor; returns the row
        as inserted. Raises what the store raises (the transaction is rolled back: nothing was
        inserted)."""
        with self.db.transaction() as conn:  # holds the writer lock from the read to the commit
            latest = conn.execute(_HEAD).fetchone()
            seq, prev = (1, GENESIS_HASH) if latest is None else (int(latest[0]) + 1, latest[1])
            row: dict[str, Any] = {
                "anchor_seq": seq,
                "key_id": key_id,
                "segment": segment,
                "checkpoint_seq": checkpoint_seq,
                "checkpoint_hash": checkpoint_hash,
                "created_at": float(created_at),
                "prev_hash": str(prev),
            }
            row["anchor_hash"] = self._hash(row)
            conn.execute(_INSERT, {c: row[c] for c in COLUMNS})
        return row

    def iter_all(self) -> Iterator[dict[str, Any]]:
        """Every anchor in ``anchor_seq`` order, as a dict of its columns, read a page at a
        time (each page a consistent snapshot; rows appended meanwhile may appear at the end)."""
        after = 0
        while True:
            with self.db.read() as conn:
                rows = conn.execute(_PAGE, {"after": after, "limit": PAGE}).fetchall()
            for r in rows:
                yield {c: r[c] for c in COLUMNS}
            if len(rows) < PAGE:
                return
            after = int(rows[-1]["anchor_seq"])

    def all(self) -> list[dict[str, Any]]:
        """Every anchor in ``anchor_seq`` order (see :meth:`iter_all`)."""
        return list(self.iter_all())

    def latest_of(self, key_id: str) -> dict[str, Any] | None:
        """The last anchor of the chain signed by ``key_id`` (None: none): the newest
        checkpoint of that chain the store knows of, which a server checks its own log still
        holds when it starts (a rolled-back log does not)."""
        with self.db.read() as conn:
            r = conn.execute(_LATEST_OF_KEY, {"key_id": key_id}).fetchone()
        return None if r is None else {c: r[c] for c in COLUMNS}

    def latest(self) -> dict[str, Any] | None:
        """The last anchor (the chain's head), or None if there is none."""
        with self.db.read() as conn:
            r = conn.execute(_LATEST).fetchone()
        return None if r is None else {c: r[c] for c in COLUMNS}
