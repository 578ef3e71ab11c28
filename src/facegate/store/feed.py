"""The face change feed (``face_changes``): appending rows, pruning them, and its floor.

Servers sharing a store keep their in-memory indexes fresh by reading the feed rows after the
last ``seq`` they applied (:meth:`facegate.store.indexes.FaceIndexes.catch_up`); each face write
appends its rows in its own transaction (:func:`record_changes`). Without pruning the
feed grows by one row per face ever indexed or deleted.

Contract of :func:`prune_changes`:

* it deletes every row with ``seq <= floor``, where the new floor is the highest ``seq`` among the
  rows made before ``before`` (epoch s), and stores that floor in ``feed_floor`` in the same write
  transaction (the store's writer lock), so a committed floor always means "every row up to here
  is gone, every row after it is still there";
* rows are deleted oldest first, at most ``batch`` rows (plus any rows between them whose clocks
  ran behind) per transaction, so one prune never holds the writer lock for long;
* the floor never goes down.

A server whose last-seen ``seq`` is below the floor may have missed changes: it must not read the
feed, but rebuild its indexes from the ``faces`` table and continue from :func:`feed_head`.
Choosing the window: longer than any pause a healthy server can have (a stalled process, a
network partition), since a server behind the floor pays a full reload; a day (the default
``FACEGATE_FEED_RETENTION_S``) keeps the feed at one day of face writes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from facegate.store.db import Connection, StoreDatabase

PRUNE_BATCH = 10_000
"""Feed rows deleted per transaction."""


@dataclass(frozen=True)
class FeedPrune:
    """What :func:`prune_changes` did: rows deleted, and the floor after it (0: never pruned)."""

    deleted: int
    floor: int


def record_changes(conn: Connection, uid: str, face_ids: Sequence[str], op: str) -> None:
    """Append feed rows (inside the transaction that made the change), stamped with the time:
    ``op`` is ``add`` or ``remove`` (one row per face) or ``drop`` (the collection ``uid``
    deleted; one row with an empty face id)."""
    now = time.time()
    conn.executemany(
        "INSERT INTO face_changes (collection_uid, face_id, op, created_at) VALUES (?, ?, ?, ?)",
        [(uid, face_id, op, now) for face_id in face_ids],
    )


def read_floor(conn: Connection) -> int:
    """The highest ``seq`` pruned so far (0 if none)."""
    row = conn.execute("SELECT pruned_through FROM feed_floor WHERE singleton = 1").fetchone()
    return 0 if row is None else int(row[0])


def feed_head(conn: Connection) -> int:
    """The position a server that has seen everything stands at: the latest ``seq``, or the
    floor when every row has been pruned."""
    latest = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM face_changes").fetchone()[0])
    return max(latest, read_floor(conn))


def prune_changes(db: StoreDatabase, before: float, batch: int = PRUNE_BATCH) -> FeedPrune:
    """Delete the feed rows made before ``before`` (epoch s), oldest first, in transactions of
    about ``batch`` rows, raising the floor in each (see the module docstring)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    deleted = 0
    while True:
        with db.transaction() as conn:
            floor = read_floor(conn)
            row = conn.execute(
                "SELECT MAX(seq) FROM (SELECT seq FROM face_changes WHERE created_at < ? "
                "ORDER BY seq LIMIT ?) AS oldest",
                (before, batch),
            ).fetchone()
            target = None if row is None or row[0] is None else int(row[0])
            if target is None or target <= floor:
                return FeedPrune(deleted, floor)
            cur = conn.execute("DELETE FROM face_changes WHERE seq <= ?", (target,))
            conn.execute(
                "UPDATE feed_floor SET pruned_through = ? WHERE singleton = 1 "
                "AND pruned_through < ?",
                (target, target),
            )
            taken = max(cur.rowcount, 0)
        deleted += taken
        if taken < batch:
            return FeedPrune(deleted, target)
