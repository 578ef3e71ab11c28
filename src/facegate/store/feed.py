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

from sqlalchemy import bindparam, delete, func, insert, select, update

from facegate.store.db import Connection, StoreDatabase
from facegate.store.schema import face_changes, feed_floor

PRUNE_BATCH = 10_000
"""Feed rows deleted per transaction."""

_RECORD = insert(face_changes)
_FLOOR = select(feed_floor.c.pruned_through).where(feed_floor.c.singleton == 1)
_LATEST = select(func.coalesce(func.max(face_changes.c.seq), 0))
_OLDEST = (
    select(face_changes.c.seq)
    .where(face_changes.c.created_at < bindparam("before"))
    .order_by(face_changes.c.seq)
    .limit(bindparam("batch"))
    .subquery("oldest")
)
_PRUNE_TARGET = select(func.max(_OLDEST.c.seq))
_DELETE_THROUGH = delete(face_changes).where(face_changes.c.seq <= bindparam("target"))
_RAISE_FLOOR = (
    update(feed_floor)
    .where(feed_floor.c.singleton == 1, feed_floor.c.pruned_through < bindparam("target"))
    .values(pruned_through=bindparam("target"))
)


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
        _RECORD,
        [
            {"collection_uid": uid, "face_id": face_id, "op": op, "created_at": now}
            for face_id in face_ids
        ],
    )


def read_floor(conn: Connection) -> int:
    """The highest ``seq`` pruned so far (0 if none)."""
    row = conn.execute(_FLOOR).fetchone()
    return 0 if row is None else int(row[0])


def feed_head(conn: Connection) -> int:
    """The position a server that has seen everything stands at: the latest ``seq``, or the
    floor when every row has been pruned."""
    latest = int(conn.execute(_LATEST).fetchone()[0])
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
            row = conn.execute(_PRUNE_TARGET, {"before": before, "batch": batch}).fetchone()
            target = None if row is None or row[0] is None else int(row[0])
            if target is None or target <= floor:
                return FeedPrune(deleted, floor)
            cur = conn.execute(_DELETE_THROUGH, {"target": target})
            conn.execute(_RAISE_FLOOR, {"target": target})
            taken = max(cur.rowcount, 0)
        deleted += taken
        if taken < batch:
            return FeedPrune(deleted, target)
