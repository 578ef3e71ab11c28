"""The store's vector indexes: in memory (kept fresh from the face change feed) or in
PostgreSQL (pgvector).

Several servers on one store (PostgreSQL): each face insert and delete, and each collection
deletion, appends a row to ``face_changes`` in its own transaction (:meth:`FaceIndexes.add_in`,
:meth:`FaceIndexes.remove_in`, :meth:`FaceIndexes.drop_in`). Before a search (and before counting
a collection's faces) a store reads the rows after the last ``seq`` it has applied (one indexed
query; normally none or only its own, which it already holds) and applies them to its indexes; a
collection another server created is loaded on first use. The feed has no gaps that fill later:
writers are serialised (SQLite's single writer, the PostgreSQL backend's writer lock), so rows
become visible in ``seq`` order. Applying a change twice is harmless (index adds skip present
ids, removes ignore absent ones), which is what makes catching up after a rebuild safe. Indexes
and feed rows are keyed by the collection's uid.

Vectors in PostgreSQL (pgvector, :mod:`facegate.store.pgvectors`): when the store is PostgreSQL
and its vectors were enabled there (``FACEGATE_VECTOR_INDEX=pgvector``,
``PostgresDatabase.enable_vectors``: store-wide), a collection's index is its partition of
``face_vectors``, written in the same transactions as its faces and searched in SQL. Nothing is
loaded at start-up, no feed is written or read, every search sees every committed write of every
server, and writes confined to one collection take that collection's lock (the store-wide lock
shared, :meth:`FaceIndexes.scope`), so writes to different collections proceed side by side.

The feed is pruned (:meth:`FaceIndexes.prune_feed`, run by the server's sweeper): rows older than
a retention window are deleted and the highest deleted ``seq`` (the floor) is stored with them. A
store whose last-seen ``seq`` is below the floor (a server stalled or cut off for longer than the
window) cannot know what it missed: :meth:`FaceIndexes.catch_up` then drops its indexes, which
reload from the ``faces`` table on next use, and continues from the feed's head.

The ``*_in`` methods run inside the caller's write transaction; the in-memory indexes are updated
only after it committed (:meth:`created`, :meth:`dropped`, :meth:`removed`, or the caller adding
to the index it holds), so a crash between the two is healed by the rebuild at start-up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np
from sqlalchemy import bindparam, func, select

from facegate.errors import ResourceNotFoundException
from facegate.store import pgvectors
from facegate.store.collections import (
    COLLECTION_ROWS,
    collection_by_uid,
    collection_from_row,
    collection_not_found,
    space_of,
)
from facegate.store.db import Connection, StoreDatabase
from facegate.store.faces import read_descriptors
from facegate.store.feed import FeedPrune, feed_head, prune_changes, read_floor, record_changes
from facegate.store.records import CollectionRecord
from facegate.store.schema import face_changes, faces
from facegate.store.vectors import Matrix, VectorIndex, make_index
from facegate.vectorspace import VectorSpace

_FEED_PAGE = 10_000
_LOAD_PAGE = 50_000

_COUNT_FACES = (
    select(func.count()).select_from(faces).where(faces.c.collection_uid == bindparam("uid"))
)
_VECTORS_TABLE = select(func.to_regclass("face_vectors"))
_CHANGES_AFTER = (
    select(
        face_changes.c.seq, face_changes.c.collection_uid, face_changes.c.face_id, face_changes.c.op
    )
    .where(face_changes.c.seq > bindparam("seen"))
    .order_by(face_changes.c.seq)
    .limit(bindparam("limit"))
)
_DESCRIPTORS_AFTER = (
    select(faces.c.seq, faces.c.face_id, faces.c.descriptor)
    .where(faces.c.collection_uid == bindparam("uid"), faces.c.seq > bindparam("after"))
    .order_by(faces.c.seq)
    .limit(bindparam("limit"))
)
log = logging.getLogger("facegate.store")


class FaceIndexes:
    """Every collection's vector index over a :class:`StoreDatabase`, and the feed that keeps the
    in-memory ones in step with other servers."""

    def __init__(
        self,
        db: StoreDatabase,
        vectors_in_db: bool | None = None,
        ef_search: int = pgvectors.DEFAULT_EF_SEARCH,
    ) -> None:
        """``vectors_in_db``: search the vectors in PostgreSQL (pgvector) rather than in memory;
        None (the default): whenever the store keeps them there (``enable_vectors`` ran).
        False on such a store keeps in-memory indexes (the benchmark's baseline); the feed is
        then not written by this store's writes, so do not mix the two on one store.
        ``ef_search``: pgvector's first candidate list (1 to 1,000; recall against time,
        :mod:`facegate.store.pgvectors`). In memory, every collection is loaded now."""
        if not 1 <= ef_search <= pgvectors.EF_MAX:
            raise ValueError(f"ef_search must be between 1 and {pgvectors.EF_MAX}, got {ef_search}")
        self.db = db
        self.ef_search = ef_search
        has_vectors = bool(getattr(db, "has_vectors", False))
        if vectors_in_db and not has_vectors:
            raise ValueError("this store has no pgvector tables (PostgreSQL with pgvector only)")
        self.vectors_in_db = has_vectors if vectors_in_db is None else vectors_in_db
        # in memory on PostgreSQL: another server may enable pgvector (checked in each face write)
        self._may_gain_vectors = not self.vectors_in_db and hasattr(db, "enable_vectors")
        self._indexes: dict[str, VectorIndex] = {}  # by collection uid
        self._index_lock = threading.Lock()
        self._feed_lock = threading.Lock()
        self._seen = 0  # the last face_changes.seq applied to the indexes
        self._generation = 0  # bumped when the indexes are dropped (a load in flight is stale)
        if not self.vectors_in_db:
            self._rebuild()

    # --- reading -----------------------------------------------------------------------------

    def held(self) -> frozenset[str]:
        """The uids of the collections whose index is in memory now (none on pgvector)."""
        with self._index_lock:
            return frozenset(self._indexes)

    def get(self, collection: CollectionRecord) -> VectorIndex:
        """The vector index of a collection (ResourceNotFoundException if it no longer
        exists). A collection created by another server sharing the store is loaded on first
        use. On pgvector: the collection's partition (nothing loaded)."""
        if self.vectors_in_db:
            with self.db.read() as conn:
                if pgvectors.face_count(conn, collection.uid) is None:
                    raise collection_not_found(collection.collection_id)
            db = cast(pgvectors.VectorDatabase, self.db)  # vectors_in_db: PostgreSQL only
            return pgvectors.PgVectorIndex(
                db, collection.uid, space_of(collection), collection.collection_id, self.ef_search
            )
        return self._index(collection.uid, collection.collection_id)

    def scope(self, collection: CollectionRecord) -> str | None:
        """The write scope of a transaction confined to ``collection`` (pgvector only: with the
        in-memory indexes the feed needs one writer at a time, so rows appear in ``seq``
        order)."""
        return collection.uid if self.vectors_in_db else None

    def face_count(self, collection: CollectionRecord) -> int:
        """The number of faces in a collection's in-memory index (0 if the collection no longer
        exists), after catching up with other servers' changes (one indexed query). An index not
        in memory (created by another server, or dropped by :meth:`catch_up`) is loaded first:
        policy reads this count, so it must never be 0 merely because nothing was loaded yet.
        On pgvector: the collection's count row (kept by the write transactions)."""
        if self.vectors_in_db:
            with self.db.read() as conn:
                return pgvectors.face_count(conn, collection.uid) or 0
        self.catch_up()
        index = self._index_or_none(collection.uid)
        return 0 if index is None else len(index)

    def stored_count(self, conn: Connection, collection: CollectionRecord) -> int:
        """Inside a write transaction: the faces the collection holds (its pgvector count row,
        else a count of its ``faces`` rows)."""
        if self.vectors_in_db:
            return pgvectors.face_count(conn, collection.uid) or 0
        return int(conn.execute(_COUNT_FACES, {"uid": collection.uid}).fetchone()[0])

    # --- writes: inside the caller's transaction, then after it committed --------------------

    def create_in(self, conn: Connection, uid: str, space: VectorSpace) -> None:
        """A new collection: its pgvector partition (nothing in memory)."""
        if self.vectors_in_db:
            pgvectors.create_partition(conn, uid, space)

    def created(self, uid: str, index: VectorIndex) -> None:
        """After the collection's creation committed: hold its (empty) in-memory index."""
        if not self.vectors_in_db:
            with self._index_lock:
                self._indexes[uid] = index

    def add_in(
        self,
        conn: Connection,
        uid: str,
        space: VectorSpace,
        face_ids: Sequence[str],
        vectors: Matrix,
    ) -> None:
        """Faces inserted: their vectors (pgvector) or feed rows."""
        if self.vectors_in_db:
            pgvectors.insert_vectors(conn, uid, space, face_ids, vectors)
        else:
            self._feed_only(conn)
            record_changes(conn, uid, face_ids, "add")

    def remove_in(self, conn: Connection, uid: str, face_ids: Sequence[str]) -> None:
        """Faces deleted: their vectors (pgvector) or feed rows."""
        if self.vectors_in_db:
            pgvectors.delete_vectors(conn, uid, face_ids)
        else:
            self._feed_only(conn)
            record_changes(conn, uid, face_ids, "remove")

    def removed(self, face_ids: Mapping[str, Sequence[str]]) -> None:
        """After deletions committed: remove the faces (ids by collection uid) from the indexes
        held in memory."""
        with self._index_lock:
            for uid, ids in face_ids.items():
                index = self._indexes.get(uid)
                if index is not None:
                    index.remove(ids)

    def drop_in(self, conn: Connection, uid: str) -> None:
        """A collection deleted: its pgvector partition, or a ``drop`` feed row."""
        if self.vectors_in_db:
            pgvectors.drop_partition(conn, uid)
        else:
            self._feed_only(conn)
            record_changes(conn, uid, [""], "drop")

    def dropped(self, uid: str) -> None:
        """After a collection's deletion committed: forget its index."""
        with self._index_lock:
            self._indexes.pop(uid, None)

    def _feed_only(self, conn: Connection) -> None:
        """Inside a face write of a store keeping its vectors in memory, on PostgreSQL: refuse
        (RuntimeError, the transaction rolled back) if another server moved the store's vectors
        to pgvector since this one started, since this write would leave them out. The check
        runs under the writer lock that ``enable_vectors`` takes, so it cannot be overtaken."""
        if self._may_gain_vectors:
            row = conn.execute(_VECTORS_TABLE).fetchone()
            if row is not None and row[0] is not None:
                raise RuntimeError(
                    "this store's face vectors were moved to pgvector by another server "
                    "(FACEGATE_VECTOR_INDEX=pgvector): restart this server to use them"
                )

    # --- the feed ----------------------------------------------------------------------------

    def catch_up(self) -> int:
        """Apply the face changes committed since the last call (by this store or another server
        sharing the database) to the in-memory indexes; returns how many changes were read.

        If the feed was pruned past this store's position (the floor is above the last ``seq``
        it applied), the changes in between are gone: the indexes are dropped (each reloads from
        the ``faces`` table on next use) and the position jumps to the feed's head. The floor is
        read after the page of rows, so a prune committed before that read is always noticed."""
        read = 0
        if self.vectors_in_db:
            return read  # every search reads the database: nothing to catch up with
        with self._feed_lock:
            while True:
                seen = self._seen
                with self.db.read() as conn:
                    rows = conn.execute(
                        _CHANGES_AFTER, {"seen": seen, "limit": _FEED_PAGE}
                    ).fetchall()
                    floor = read_floor(conn)
                if floor > seen:
                    self._drop_all(seen, floor)
                    continue
                if rows:
                    self._apply_changes(
                        [(r["collection_uid"], r["face_id"], r["op"]) for r in rows]
                    )
                    self._seen = int(rows[-1]["seq"])
                    read += len(rows)
                if len(rows) < _FEED_PAGE:
                    return read

    def prune_feed(self, before: float) -> FeedPrune:
        """Delete the face change rows made before ``before`` (epoch s) and raise the feed's
        floor in the same transactions (:func:`facegate.store.feed.prune_changes`). Safe while
        other servers read the feed: one that falls below the floor reloads its indexes. This
        store catches up first, so pruning never puts it behind its own floor."""
        self.catch_up()
        return prune_changes(self.db, before)

    def _drop_all(self, seen: int, floor: int) -> None:
        """Fell behind the feed's floor: jump to the head, then drop every index (called with the
        feed lock held). The head is read first, so each index loaded afterwards from ``faces``
        holds every change up to it; later changes come from the feed."""
        with self.db.read() as conn:
            head = feed_head(conn)
        with self._index_lock:
            dropped = len(self._indexes)
            self._indexes.clear()
            self._generation += 1
        self._seen = head
        log.info(
            f"face change feed pruned past this server's position (seen {seen}, floor {floor}): "
            f"dropped {dropped} in-memory index(es), reloading from the faces table; "
            f"continuing at {head}"
        )

    def _apply_changes(self, changes: list[tuple[str, str, str]]) -> None:
        """Apply feed rows (collection uid, face id, op) in order; descriptors are read only for
        faces not yet indexed."""
        with self._index_lock:
            known = dict(self._indexes)
        wanted: dict[str, list[str]] = {}
        for uid, face_id, op in changes:
            index = known.get(uid)
            if op == "add" and (index is None or face_id not in index):
                wanted.setdefault(uid, []).append(face_id)
        vectors = {uid: read_descriptors(self.db, uid, ids) for uid, ids in wanted.items()}
        pending: dict[str, list[str]] = {}  # adds not applied yet, by collection, in order

        def flush(uid: str) -> None:
            ids = pending.pop(uid, [])
            if ids:
                index = self._index_or_none(uid)
                if index is not None:
                    index.add(ids, np.stack([vectors[uid][i] for i in ids]))

        for uid, face_id, op in changes:
            if op == "add":
                if face_id in vectors.get(uid, {}):  # else indexed already, or gone
                    pending.setdefault(uid, []).append(face_id)
                continue
            flush(uid)
            if op == "drop":
                with self._index_lock:
                    self._indexes.pop(uid, None)
            elif op == "remove" and (index := self._index_or_none(uid)) is not None:
                index.remove([face_id])
        for uid in list(pending):
            flush(uid)

    # --- loading -----------------------------------------------------------------------------

    def _rebuild(self) -> None:
        """Load every collection's vectors from the database (start-up). The feed position is
        read first: changes committed while loading are applied again by the next catch-up."""
        with self.db.read() as conn:
            self._seen = feed_head(conn)
            rows = conn.execute(COLLECTION_ROWS).fetchall()
        for row in rows:
            collection = collection_from_row(row)
            self._indexes[collection.uid] = self._load(collection)

    def _load(self, collection: CollectionRecord) -> VectorIndex:
        """A collection's index, built from its stored descriptors."""
        space = space_of(collection)
        index = make_index(collection.index_kind, space)
        after = 0
        while True:
            with self.db.read() as conn:
                rows = conn.execute(
                    _DESCRIPTORS_AFTER,
                    {"uid": collection.uid, "after": after, "limit": _LOAD_PAGE},
                ).fetchall()
            if not rows:
                return index
            vectors = np.frombuffer(b"".join(r["descriptor"] for r in rows), dtype=np.float32)
            index.add([r["face_id"] for r in rows], vectors.reshape(-1, space.dim))
            after = rows[-1]["seq"]

    def _index(self, uid: str, collection_id: str) -> VectorIndex:
        """The index of the collection ``uid`` (named ``collection_id`` in errors). A load that
        overlaps :meth:`catch_up` dropping the indexes is discarded and done again (it may
        predate changes the dropped position no longer covers)."""
        while True:
            with self._index_lock:
                index = self._indexes.get(uid)
                generation = self._generation
            if index is not None:
                return index
            loaded = self._load(collection_by_uid(self.db, uid, collection_id))
            with self._index_lock:
                if generation == self._generation:
                    return self._indexes.setdefault(uid, loaded)

    def _index_or_none(self, uid: str) -> VectorIndex | None:
        """The index of the collection ``uid``, or None if it no longer exists."""
        try:
            return self._index(uid, uid)
        except ResourceNotFoundException:
            return None
