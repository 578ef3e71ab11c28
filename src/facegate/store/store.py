"""The face store: collections, faces, users and tags in the database (SQLite or PostgreSQL),
vectors in memory.

Contract:
* every mutating method is one transaction; the in-memory index is updated only after the
  transaction committed, so a crash between the two is healed by the rebuild at start-up;
* collections are named per organisation: :meth:`FaceStore.get_collection` resolves an
  organisation's id to a :class:`CollectionRecord` carrying the collection's identity
  (``uid``); every other method takes that record, and every write checks, inside its own
  transaction, that a collection with that identity and owner still exists (else
  ``ResourceNotFoundException`` and nothing written). Identities are never reused, so a write
  resolved before a collection was deleted can never land in a collection created afterwards
  under the same id, by the same organisation or another;
* reads of a missing collection raise ``ResourceNotFoundException``, whose message names the id
  the caller gave (never the internal uid, never another organisation);
* limits raise ``ServiceQuotaExceededException`` before anything is written.

Several servers on one store (PostgreSQL): each face insert and delete, and each collection
deletion, appends a row to ``face_changes`` in its own transaction. Before a search (and before
counting a collection's faces) a store reads the rows after the last ``seq`` it has applied (one
indexed query; normally none or only its own, which it already holds) and applies them to its
indexes; a collection another server created is loaded on first use. The feed has no gaps that
fill later: writers are serialised (SQLite's single writer, the PostgreSQL backend's writer lock),
so rows become visible in ``seq`` order. Applying a change twice is harmless (index adds skip
present ids, removes ignore absent ones), which is what makes catching up after a rebuild safe.
Indexes and feed rows are keyed by the collection's uid.

Vectors in PostgreSQL (pgvector, :mod:`facegate.store.pgvectors`): when the store is PostgreSQL
and its vectors were enabled there (``FACEGATE_VECTOR_INDEX=pgvector``,
``PostgresDatabase.enable_vectors``: store-wide), a collection's index is its partition of
``face_vectors``, written in the same transactions as its faces and searched in SQL. Nothing is
loaded at start-up, no feed is written or read, every search sees every committed write of every
server, and writes confined to one collection take that collection's lock (the store-wide lock
shared), so writes to different collections proceed side by side.

The feed is pruned (:meth:`FaceStore.prune_feed`, run by the server's sweeper): rows older than a
retention window are deleted and the highest deleted ``seq`` (the floor) is stored with them. A
store whose last-seen ``seq`` is below the floor (a server stalled or cut off for longer than the
window) cannot know what it missed: :meth:`FaceStore.catch_up` then drops its indexes, which
reload from the ``faces`` table on next use, and continues from the feed's head.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from facegate.errors import (
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from facegate.store import pgvectors
from facegate.store.db import Connection, IntegrityError, Row, StoreDatabase
from facegate.store.feed import FeedPrune, feed_head, prune_changes, read_floor
from facegate.store.records import (
    CollectionRecord,
    FaceRecord,
    NewFace,
    SweptFace,
    UserRecord,
)
from facegate.store.vectors import Hit, Matrix, VectorIndex, make_index
from facegate.vectorspace import DLIB_SPACE, VectorSpace, parse_space

REKOGNITION_MAX_FACES_PER_COLLECTION = 20_000_000
REKOGNITION_MAX_FACES_PER_USER = 100
REKOGNITION_MAX_TAGS = 200
_FEED_PAGE = 10_000
log = logging.getLogger("facegate.store")


@dataclass(frozen=True)
class CollectionStats:
    """A collection's metadata as operators see it (:meth:`FaceStore.collection_stats`)."""

    collection_id: str
    org_id: str
    face_model_version: str
    created_at: float
    faces: int
    users: int
    faces_with_consent: int
    faces_with_deadline: int
    next_deadline: float | None
    retention_deleted: int


_FACE_COLUMNS = (
    "face_id, collection_uid, image_id, image_sha256, external_image_id, box_left, box_top, "
    "box_width, box_height, confidence, model_version, user_id, indexed_at, consent_ref, "
    "retain_until"
)
_COLLECTION_COLUMNS = (
    "uid, collection_id, arn, face_model_version, index_kind, created_at, org_id, descriptor_space"
)


@dataclass(frozen=True)
class StoreLimits:
    """Quotas; Rekognition's by default. Tests lower them to exercise the errors."""

    max_faces_per_collection: int = REKOGNITION_MAX_FACES_PER_COLLECTION
    max_faces_per_user: int = REKOGNITION_MAX_FACES_PER_USER
    max_tags: int = REKOGNITION_MAX_TAGS


def new_uid() -> str:
    """A new collection identity: 128 random bits, so never one used before."""
    return "col-" + secrets.token_hex(16)


def _face(row: Row) -> FaceRecord:
    return FaceRecord(
        face_id=row["face_id"],
        collection_uid=row["collection_uid"],
        image_id=row["image_id"],
        image_sha256=row["image_sha256"],
        external_image_id=row["external_image_id"],
        box_left_ratio=row["box_left"],
        box_top_ratio=row["box_top"],
        box_width_ratio=row["box_width"],
        box_height_ratio=row["box_height"],
        confidence_pct=row["confidence"],
        model_version=row["model_version"],
        user_id=row["user_id"],
        indexed_at=row["indexed_at"],
        consent_ref=row["consent_ref"],
        retain_until=row["retain_until"],
    )


def _user(row: Row) -> UserRecord:
    return UserRecord(row["collection_uid"], row["user_id"], row["status"], row["created_at"])


def _collection(row: Row) -> CollectionRecord:
    return CollectionRecord(
        collection_id=row["collection_id"],
        arn=row["arn"],
        face_model_version=row["face_model_version"],
        index_kind=row["index_kind"],
        created_at=row["created_at"],
        org_id=row["org_id"],
        uid=row["uid"],
        descriptor_space=row["descriptor_space"],
    )


def _space(collection: CollectionRecord) -> VectorSpace:
    return parse_space(collection.descriptor_space)


def _require(conn: Connection, collection: CollectionRecord) -> None:
    """Inside a write transaction: the collection with this identity and owner still exists
    (else ResourceNotFoundException, and the caller's transaction writes nothing)."""
    row = conn.execute(
        "SELECT 1 FROM collections WHERE uid = ? AND org_id = ?",
        (collection.uid, collection.org_id),
    ).fetchone()
    if row is None:
        raise collection_not_found(collection.collection_id)


class FaceStore:
    """Collections, faces, users and tags over a :class:`StoreDatabase`, with vector indexes."""

    def __init__(
        self,
        db: StoreDatabase,
        limits: StoreLimits = StoreLimits(),
        vectors_in_db: bool | None = None,
        ef_search: int = pgvectors.DEFAULT_EF_SEARCH,
    ) -> None:
        """``vectors_in_db``: search the vectors in PostgreSQL (pgvector) rather than in memory;
        None (the default): whenever the store keeps them there (``enable_vectors`` ran).
        False on such a store keeps in-memory indexes (the benchmark's baseline); the feed is
        then not written by this store's writes, so do not mix the two on one store.
        ``ef_search``: pgvector's first candidate list (1 to 1,000; recall against time,
        :mod:`facegate.store.pgvectors`)."""
        if not 1 <= ef_search <= pgvectors.EF_MAX:
            raise ValueError(f"ef_search must be between 1 and {pgvectors.EF_MAX}, got {ef_search}")
        self.db = db
        self.limits = limits
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
            self._rebuild_indexes()

    # --- indexes ------------------------------------------------------------------------------

    def _rebuild_indexes(self) -> None:
        """Load every collection's vectors from the database (start-up). The feed position is
        read first: changes committed while loading are applied again by the next catch-up."""
        with self.db.read() as conn:
            self._seen = feed_head(conn)
            rows = conn.execute(f"SELECT {_COLLECTION_COLUMNS} FROM collections").fetchall()
        for row in rows:
            collection = _collection(row)
            self._indexes[collection.uid] = self._load_index(collection)

    def _load_index(self, collection: CollectionRecord) -> VectorIndex:
        """A collection's index, built from its stored descriptors."""
        space = _space(collection)
        index = make_index(collection.index_kind, space)
        after = 0
        while True:
            with self.db.read() as conn:
                rows = conn.execute(
                    "SELECT seq, face_id, descriptor FROM faces WHERE collection_uid = ? "
                    "AND seq > ? ORDER BY seq LIMIT 50000",
                    (collection.uid, after),
                ).fetchall()
            if not rows:
                return index
            vectors = np.frombuffer(b"".join(r["descriptor"] for r in rows), dtype=np.float32)
            index.add([r["face_id"] for r in rows], vectors.reshape(-1, space.dim))
            after = rows[-1]["seq"]

    def index(self, collection: CollectionRecord) -> VectorIndex:
        """The vector index of a collection (ResourceNotFoundException if it no longer
        exists). A collection created by another server sharing the store is loaded on first
        use. On pgvector: the collection's partition (nothing loaded)."""
        if self.vectors_in_db:
            with self.db.read() as conn:
                if pgvectors.face_count(conn, collection.uid) is None:
                    raise collection_not_found(collection.collection_id)
            db = cast(pgvectors.VectorDatabase, self.db)  # vectors_in_db: PostgreSQL only
            return pgvectors.PgVectorIndex(
                db, collection.uid, _space(collection), collection.collection_id, self.ef_search
            )
        return self._index(collection.uid, collection.collection_id)

    def _scope(self, collection: CollectionRecord) -> str | None:
        """The write scope of a transaction confined to ``collection`` (pgvector only: with the
        in-memory indexes the feed needs one writer at a time, so rows appear in ``seq``
        order)."""
        return collection.uid if self.vectors_in_db else None

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
            loaded = self._load_index(self._by_uid(uid, collection_id))
            with self._index_lock:
                if generation == self._generation:
                    return self._indexes.setdefault(uid, loaded)

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
                        "SELECT seq, collection_uid, face_id, op FROM face_changes "
                        "WHERE seq > ? ORDER BY seq LIMIT ?",
                        (seen, _FEED_PAGE),
                    ).fetchall()
                    floor = read_floor(conn)
                if floor > seen:
                    self._drop_indexes(seen, floor)
                    continue
                if rows:
                    self._apply_changes(
                        [(r["collection_uid"], r["face_id"], r["op"]) for r in rows]
                    )
                    self._seen = int(rows[-1]["seq"])
                    read += len(rows)
                if len(rows) < _FEED_PAGE:
                    return read

    def _drop_indexes(self, seen: int, floor: int) -> None:
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

    def prune_feed(self, before: float) -> FeedPrune:
        """Delete the face change rows made before ``before`` (epoch s) and raise the feed's
        floor in the same transactions (:func:`facegate.store.feed.prune_changes`). Safe while
        other servers read the feed: one that falls below the floor reloads its indexes. This
        store catches up first, so pruning never puts it behind its own floor."""
        self.catch_up()
        return prune_changes(self.db, before)

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
        vectors = {uid: self._descriptors(uid, ids) for uid, ids in wanted.items()}
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

    def _index_or_none(self, uid: str) -> VectorIndex | None:
        """The index of the collection ``uid``, or None if it no longer exists."""
        try:
            return self._index(uid, uid)
        except ResourceNotFoundException:
            return None

    # --- collections --------------------------------------------------------------------------

    def create_collection(
        self,
        collection_id: str,
        arn: str,
        face_model_version: str,
        index_kind: str = "exact",
        tags: dict[str, str] | None = None,
        org_id: str = "",
        space: VectorSpace = DLIB_SPACE,
    ) -> CollectionRecord:
        """A new collection owned by ``org_id``, with a new identity, pinned to the descriptor
        model ``face_model_version`` whose vectors lie in ``space``; ids are unique within an
        organisation (ResourceAlreadyExistsException if ``org_id`` holds one already, whatever
        other organisations hold). ``ValueError`` for an index kind that cannot hold ``space``
        (HNSW and a space of several parts)."""
        record = CollectionRecord(
            collection_id,
            arn,
            face_model_version,
            index_kind,
            time.time(),
            org_id,
            new_uid(),
            str(space),
        )
        tags = tags or {}
        if len(tags) > self.limits.max_tags:
            raise ServiceQuotaExceededException(f"At most {self.limits.max_tags} tags.")
        index = make_index(index_kind, space)
        try:
            with self.db.transaction() as conn:
                if self.vectors_in_db:
                    pgvectors.create_partition(conn, record.uid, space)
                conn.execute(
                    "INSERT INTO collections (uid, collection_id, arn, face_model_version, "
                    "index_kind, created_at, org_id, descriptor_space) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.uid,
                        collection_id,
                        arn,
                        face_model_version,
                        index_kind,
                        record.created_at,
                        org_id,
                        record.descriptor_space,
                    ),
                )
                conn.executemany(
                    "INSERT INTO tags (collection_uid, tag_key, tag_value) VALUES (?, ?, ?)",
                    [(record.uid, k, v) for k, v in tags.items()],
                )
        except IntegrityError as exc:
            raise ResourceAlreadyExistsException(
                f"The collection id: {collection_id} already exists"
            ) from exc
        if not self.vectors_in_db:
            with self._index_lock:
                self._indexes[record.uid] = index
        return record

    def find_collection(self, org_id: str, collection_id: str) -> CollectionRecord | None:
        """The collection ``org_id`` holds under ``collection_id`` now, or None. Another
        organisation's collection of the same id is not consulted at all (the same query, the
        same work, whether one exists or not)."""
        with self.db.read() as conn:
            row = conn.execute(
                f"SELECT {_COLLECTION_COLUMNS} FROM collections "
                "WHERE org_id = ? AND collection_id = ?",
                (org_id, collection_id),
            ).fetchone()
        return None if row is None else _collection(row)

    def get_collection(self, org_id: str, collection_id: str) -> CollectionRecord:
        """:meth:`find_collection`, or ResourceNotFoundException."""
        record = self.find_collection(org_id, collection_id)
        if record is None:
            raise collection_not_found(collection_id)
        return record

    def refresh(self, collection: CollectionRecord) -> CollectionRecord:
        """The collection again, by its identity and owner: ResourceNotFoundException if it was
        deleted since it was resolved (even if its id now names another collection)."""
        record = self._by_uid(collection.uid, collection.collection_id)
        if record.org_id != collection.org_id:
            raise collection_not_found(collection.collection_id)
        return record

    def _by_uid(self, uid: str, collection_id: str) -> CollectionRecord:
        with self.db.read() as conn:
            row = conn.execute(
                f"SELECT {_COLLECTION_COLUMNS} FROM collections WHERE uid = ?", (uid,)
            ).fetchone()
        if row is None:
            raise collection_not_found(collection_id)
        return _collection(row)

    def list_collections(
        self, after: int, limit: int, org_id: str | None = None
    ) -> list[tuple[int, CollectionRecord]]:
        """(cursor, collection) in creation order with cursor > ``after``, at most ``limit``;
        only ``org_id``'s collections unless it is None (operators). The cursor is a position
        among all collections of the server: callers outside the store must not see it in the
        clear (ops.common.PageTokens encrypts it)."""
        with self.db.read() as conn:
            if org_id is None:
                rows = conn.execute(
                    f"SELECT rowid AS cursor, {_COLLECTION_COLUMNS} FROM collections "
                    "WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (after, limit),
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT rowid AS cursor, {_COLLECTION_COLUMNS} FROM collections "
                    "WHERE rowid > ? AND org_id = ? ORDER BY rowid LIMIT ?",
                    (after, org_id, limit),
                ).fetchall()
        return [(int(r["cursor"]), _collection(r)) for r in rows]

    def delete_collection(self, collection: CollectionRecord) -> None:
        """Delete the collection with this identity and owner, its faces, users and tags
        (ResourceNotFoundException if it is gone already)."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM collections WHERE uid = ? AND org_id = ?",
                (collection.uid, collection.org_id),
            )
            if cur.rowcount == 0:
                raise collection_not_found(collection.collection_id)
            if self.vectors_in_db:
                pgvectors.drop_partition(conn, collection.uid)
            else:
                self._feed_only(conn)
                _record_changes(conn, collection.uid, [""], "drop")
        with self._index_lock:
            self._indexes.pop(collection.uid, None)

    def counts(self, collection: CollectionRecord) -> tuple[int, int]:
        """(faces, users) in a collection."""
        with self.db.read() as conn:
            faces = conn.execute(
                "SELECT COUNT(*) FROM faces WHERE collection_uid = ?", (collection.uid,)
            ).fetchone()[0]
            users = conn.execute(
                "SELECT COUNT(*) FROM users WHERE collection_uid = ?", (collection.uid,)
            ).fetchone()[0]
        return int(faces), int(users)

    # --- faces --------------------------------------------------------------------------------

    def add_faces(self, collection: CollectionRecord, faces: Sequence[NewFace]) -> None:
        """Store faces atomically in this collection (whatever collection their records name),
        then add their vectors to the index. ResourceNotFoundException, and nothing stored, if
        the collection was deleted meanwhile. ``ValueError``, and nothing stored, for a vector
        whose length is not the collection's space's (the operations describe every face with
        the collection's own model, ``ops/faces.py``)."""
        index = self.index(collection)
        if not faces:
            return
        space = _space(collection)
        params = [_face_params(collection.uid, f, space.dim) for f in faces]
        ids = [f.record.face_id for f in faces]
        vectors = np.stack([f.descriptor for f in faces])
        with self.db.transaction(self._scope(collection)) as conn:
            _require(conn, collection)
            if self.vectors_in_db:
                present = pgvectors.face_count(conn, collection.uid) or 0
            else:
                present = conn.execute(
                    "SELECT COUNT(*) FROM faces WHERE collection_uid = ?", (collection.uid,)
                ).fetchone()[0]
            if present + len(faces) > self.limits.max_faces_per_collection:
                raise ServiceQuotaExceededException(
                    f"The collection {collection.collection_id} would exceed "
                    f"{self.limits.max_faces_per_collection} faces."
                )
            conn.executemany(
                f"INSERT INTO faces ({_FACE_COLUMNS}, descriptor) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params,
            )
            if self.vectors_in_db:
                pgvectors.insert_vectors(conn, collection.uid, space, ids, vectors)
            else:
                self._feed_only(conn)
                _record_changes(conn, collection.uid, ids, "add")
        index.add(ids, vectors)

    def faces_of_image(
        self, collection: CollectionRecord, image_sha256: str, external_image_id: str | None
    ) -> list[FaceRecord]:
        """Faces already indexed from the same image bytes with the same ExternalImageId."""
        sql = f"SELECT {_FACE_COLUMNS} FROM faces WHERE collection_uid = ? AND image_sha256 = ? "
        args: list[object] = [collection.uid, image_sha256]
        if external_image_id is None:  # "IS ?" is SQLite's; PostgreSQL has no such operator
            sql += "AND external_image_id IS NULL ORDER BY seq"
        else:
            sql += "AND external_image_id = ? ORDER BY seq"
            args.append(external_image_id)
        with self.db.read() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [_face(r) for r in rows]

    def list_faces(
        self,
        collection: CollectionRecord,
        after: int,
        limit: int,
        user_id: str | None = None,
        face_ids: Sequence[str] | None = None,
    ) -> list[tuple[int, FaceRecord]]:
        """(cursor, face) in indexing order with cursor > ``after``, optionally filtered. The
        cursor is a position among all faces of the server: see :meth:`list_collections`."""
        sql = f"SELECT seq, {_FACE_COLUMNS} FROM faces WHERE collection_uid = ? AND seq > ?"
        args: list[object] = [collection.uid, after]
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        if face_ids is not None:
            sql += f" AND face_id IN ({','.join('?' * len(face_ids))})"
            args.extend(face_ids)
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit)
        with self.db.read() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [(int(r["seq"]), _face(r)) for r in rows]

    def _rows_by_face_id(self, uid: str, face_ids: Sequence[str], columns: str) -> list[Row]:
        """Rows of the faces among ``face_ids`` (queried 500 ids at a time)."""
        rows: list[Row] = []
        for start in range(0, len(face_ids), 500):
            chunk = list(face_ids[start : start + 500])
            with self.db.read() as conn:
                rows += conn.execute(
                    f"SELECT {columns} FROM faces WHERE collection_uid = ? "
                    f"AND face_id IN ({','.join('?' * len(chunk))})",
                    [uid, *chunk],
                ).fetchall()
        return rows

    def get_faces(
        self, collection: CollectionRecord, face_ids: Sequence[str]
    ) -> dict[str, FaceRecord]:
        """The faces among ``face_ids`` that exist in the collection."""
        rows = self._rows_by_face_id(collection.uid, face_ids, _FACE_COLUMNS)
        return {r["face_id"]: _face(r) for r in rows}

    def descriptor(self, collection: CollectionRecord, face_id: str) -> Matrix | None:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT descriptor FROM faces WHERE collection_uid = ? AND face_id = ?",
                (collection.uid, face_id),
            ).fetchone()
        if row is None:
            return None
        return np.frombuffer(row["descriptor"], dtype=np.float32).copy()

    def descriptors(
        self, collection: CollectionRecord, face_ids: Sequence[str]
    ) -> dict[str, Matrix]:
        """Descriptors of the faces among ``face_ids`` that exist, by face id."""
        return self._descriptors(collection.uid, face_ids)

    def _descriptors(self, uid: str, face_ids: Sequence[str]) -> dict[str, Matrix]:
        rows = self._rows_by_face_id(uid, face_ids, "face_id, descriptor")
        return {r["face_id"]: np.frombuffer(r["descriptor"], dtype=np.float32).copy() for r in rows}

    def delete_faces(self, collection: CollectionRecord, face_ids: Sequence[str]) -> list[str]:
        """Delete the given faces (those that exist and have no user); returns the deleted ids.
        ResourceNotFoundException, and nothing deleted, if the collection is gone."""
        index = self.index(collection)
        deleted: list[str] = []
        with self.db.transaction(self._scope(collection)) as conn:
            _require(conn, collection)
            for start in range(0, len(face_ids), 500):
                chunk = list(face_ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT face_id FROM faces WHERE collection_uid = ? AND user_id IS NULL "
                    f"AND face_id IN ({marks})",
                    [collection.uid, *chunk],
                ).fetchall()
                ids = [r["face_id"] for r in rows]
                if ids:
                    conn.execute(
                        f"DELETE FROM faces WHERE collection_uid = ? AND face_id IN "
                        f"({','.join('?' * len(ids))})",
                        [collection.uid, *ids],
                    )
                    self._record_removal(conn, collection.uid, ids)
                deleted.extend(ids)
        index.remove(deleted)
        return deleted

    def collection_stats(self, limit: int = 1000) -> list[CollectionStats]:
        """Metadata of up to ``limit`` collections in creation order, for operators: faces,
        users, faces with a consent record and with a retention deadline, the next deadline and
        the faces deleted by retention so far. Counts only; no vectors, no images."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT c.collection_id, c.org_id, c.face_model_version, c.created_at, "
                "(SELECT COUNT(*) FROM faces f WHERE f.collection_uid = c.uid) AS faces, "
                "(SELECT COUNT(*) FROM users u WHERE u.collection_uid = c.uid) AS users, "
                "(SELECT COUNT(*) FROM faces f WHERE f.collection_uid = c.uid "
                "AND f.consent_ref IS NOT NULL) AS with_consent, "
                "(SELECT COUNT(*) FROM faces f WHERE f.collection_uid = c.uid "
                "AND f.retain_until IS NOT NULL) AS with_deadline, "
                "(SELECT MIN(retain_until) FROM faces f WHERE f.collection_uid = c.uid) "
                "AS next_deadline, "
                "(SELECT COUNT(*) FROM retention_deletions d "
                "WHERE d.collection_uid = c.uid) AS deleted "
                "FROM collections c ORDER BY c.rowid LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            CollectionStats(
                collection_id=r["collection_id"],
                org_id=r["org_id"],
                face_model_version=r["face_model_version"],
                created_at=r["created_at"],
                faces=r["faces"],
                users=r["users"],
                faces_with_consent=r["with_consent"],
                faces_with_deadline=r["with_deadline"],
                next_deadline=r["next_deadline"],
                retention_deleted=r["deleted"],
            )
            for r in rows
        ]

    def sweep_retention(self, now: float, limit: int = 1000) -> list[SweptFace]:
        """Delete up to ``limit`` faces whose retention deadline has passed (``retain_until <=
        now``), users or not: a legal deadline outranks a user association. Each deletion is
        recorded in ``retention_deletions`` in the same transaction; returns the deleted faces
        with their collection's id and owner."""
        swept: list[SweptFace] = []
        with self.db.transaction() as conn:
            rows = conn.execute(
                f"SELECT {_FACE_COLUMNS} FROM faces WHERE retain_until IS NOT NULL "
                "AND retain_until <= ? ORDER BY retain_until LIMIT ?",
                (now, limit),
            ).fetchall()
            for face in (_face(r) for r in rows):
                owner = conn.execute(
                    "SELECT collection_id, org_id FROM collections WHERE uid = ?",
                    (face.collection_uid,),
                ).fetchone()
                collection_id, org_id = (owner[0], owner[1]) if owner else ("", "")
                conn.execute("DELETE FROM faces WHERE face_id = ?", (face.face_id,))
                self._record_removal(conn, face.collection_uid, [face.face_id])
                conn.execute(
                    "INSERT INTO retention_deletions (face_id, collection_id, collection_uid, "
                    "org_id, retain_until, deleted_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        face.face_id,
                        collection_id,
                        face.collection_uid,
                        org_id,
                        face.retain_until,
                        now,
                    ),
                )
                swept.append(SweptFace(face, collection_id, org_id))
        by_collection: dict[str, list[str]] = {}
        for item in swept:
            by_collection.setdefault(item.face.collection_uid, []).append(item.face.face_id)
        with self._index_lock:
            for uid, ids in by_collection.items():
                index = self._indexes.get(uid)
                if index is not None:
                    index.remove(ids)
        return swept

    def _feed_only(self, conn: Connection) -> None:
        """Inside a face write of a store keeping its vectors in memory, on PostgreSQL: refuse
        (RuntimeError, the transaction rolled back) if another server moved the store's vectors
        to pgvector since this one started, since this write would leave them out. The check
        runs under the writer lock that ``enable_vectors`` takes, so it cannot be overtaken."""
        if self._may_gain_vectors:
            row = conn.execute("SELECT to_regclass('face_vectors')").fetchone()
            if row is not None and row[0] is not None:
                raise RuntimeError(
                    "this store's face vectors were moved to pgvector by another server "
                    "(FACEGATE_VECTOR_INDEX=pgvector): restart this server to use them"
                )

    def _record_removal(self, conn: Connection, uid: str, face_ids: Sequence[str]) -> None:
        """Inside the transaction deleting faces: their vectors (pgvector) or feed rows."""
        if self.vectors_in_db:
            pgvectors.delete_vectors(conn, uid, face_ids)
        else:
            self._feed_only(conn)
            _record_changes(conn, uid, face_ids, "remove")

    def nearest(
        self,
        collection: CollectionRecord,
        query: Matrix,
        k: int,
        max_distance: float,
        weights: Sequence[float] | None = None,
    ) -> list[Hit]:
        """The index's nearest faces (ids and distances in the collection's space, its parts
        weighted by ``weights``) within ``max_distance``, after catching up with other servers'
        changes; no database read beyond the catch-up (pgvector: one search in SQL)."""
        self.catch_up()
        hits: list[Hit] = self.index(collection).search(query, k, max_distance, weights)
        return hits

    def indexed_count(self, collection: CollectionRecord) -> int:
        """How many faces the collection's in-memory index holds (after catching up)."""
        self.catch_up()
        return len(self.index(collection))

    def indexed_vectors(
        self, collection: CollectionRecord, face_ids: Sequence[str]
    ) -> tuple[list[str], Matrix]:
        """The faces among ``face_ids`` in the collection's in-memory index, in order, and their
        descriptors (the stored ones, without a database read), one row each; a face deleted
        meanwhile is absent."""
        return self.index(collection).vectors(face_ids)

    def search(
        self, collection: CollectionRecord, query: Matrix, k: int, max_distance: float
    ) -> list[tuple[FaceRecord, float]]:
        """Nearest stored faces (records and distances) within ``max_distance``, after catching
        up with other servers' changes."""
        hits = self.nearest(collection, query, k, max_distance)
        records = self.get_faces(collection, [h.face_id for h in hits])
        # A face deleted between the index search and the lookup is simply skipped.
        return [(records[h.face_id], h.distance) for h in hits if h.face_id in records]

    # --- users --------------------------------------------------------------------------------

    def create_user(self, collection: CollectionRecord, user_id: str) -> UserRecord | None:
        """Create a user; ``None`` if it already exists; ResourceNotFoundException, and nothing
        created, if the collection is gone."""
        record = UserRecord(collection.uid, user_id, "ACTIVE", time.time())
        try:
            with self.db.transaction(self._scope(collection)) as conn:
                _require(conn, collection)
                conn.execute(
                    "INSERT INTO users (collection_uid, user_id, status, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (collection.uid, user_id, record.status, record.created_at),
                )
        except IntegrityError:
            return None
        return record

    def get_user(self, collection: CollectionRecord, user_id: str) -> UserRecord | None:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT * FROM users WHERE collection_uid = ? AND user_id = ?",
                (collection.uid, user_id),
            ).fetchone()
        return None if row is None else _user(row)

    def delete_user(self, collection: CollectionRecord, user_id: str) -> bool:
        """Disassociate the user's faces and delete the user; False if it did not exist;
        ResourceNotFoundException, and nothing changed, if the collection is gone."""
        with self.db.transaction(self._scope(collection)) as conn:
            _require(conn, collection)
            conn.execute(
                "UPDATE faces SET user_id = NULL WHERE collection_uid = ? AND user_id = ?",
                (collection.uid, user_id),
            )
            cur = conn.execute(
                "DELETE FROM users WHERE collection_uid = ? AND user_id = ?",
                (collection.uid, user_id),
            )
            return cur.rowcount > 0

    def list_users(
        self, collection: CollectionRecord, after: int, limit: int
    ) -> list[tuple[int, UserRecord]]:
        """(cursor, user) in creation order with cursor > ``after``. The cursor is a position
        among all users of the server: see :meth:`list_collections`."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT rowid AS cursor, * FROM users WHERE collection_uid = ? AND rowid > ? "
                "ORDER BY rowid LIMIT ?",
                (collection.uid, after, limit),
            ).fetchall()
        return [(int(r["cursor"]), _user(r)) for r in rows]

    def user_face_ids(self, collection: CollectionRecord, user_id: str) -> list[str]:
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT face_id FROM faces WHERE collection_uid = ? AND user_id = ? ORDER BY seq",
                (collection.uid, user_id),
            ).fetchall()
        return [r["face_id"] for r in rows]

    def set_user_of_faces(
        self, collection: CollectionRecord, user_id: str | None, face_ids: Sequence[str]
    ) -> None:
        """Associate (``user_id``) or disassociate (``None``) faces in one transaction.
        ResourceNotFoundException, and nothing changed, if the collection is gone (or, when
        associating, if the user is)."""
        if not face_ids:
            return
        with self.db.transaction(self._scope(collection)) as conn:
            _require(conn, collection)
            if user_id is not None:
                user = conn.execute(
                    "SELECT 1 FROM users WHERE collection_uid = ? AND user_id = ?",
                    (collection.uid, user_id),
                ).fetchone()
                if user is None:
                    raise ResourceNotFoundException(
                        f"The user {user_id} does not exist in collection "
                        f"{collection.collection_id}."
                    )
                present = conn.execute(
                    "SELECT COUNT(*) FROM faces WHERE collection_uid = ? AND user_id = ?",
                    (collection.uid, user_id),
                ).fetchone()[0]
                if present + len(face_ids) > self.limits.max_faces_per_user:
                    raise ServiceQuotaExceededException(
                        f"A user can have at most {self.limits.max_faces_per_user} faces."
                    )
            conn.execute(
                f"UPDATE faces SET user_id = ? WHERE collection_uid = ? AND face_id IN "
                f"({','.join('?' * len(face_ids))})",
                [user_id, collection.uid, *face_ids],
            )

    # --- tags ---------------------------------------------------------------------------------

    def tags(self, collection: CollectionRecord) -> dict[str, str]:
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT tag_key, tag_value FROM tags WHERE collection_uid = ? ORDER BY tag_key",
                (collection.uid,),
            ).fetchall()
        return {r["tag_key"]: r["tag_value"] for r in rows}

    def tag(self, collection: CollectionRecord, tags: dict[str, str]) -> None:
        """Add or replace tags (ResourceNotFoundException, and nothing written, if the
        collection is gone)."""
        with self.db.transaction(self._scope(collection)) as conn:
            _require(conn, collection)
            existing = {
                r[0]
                for r in conn.execute(
                    "SELECT tag_key FROM tags WHERE collection_uid = ?", (collection.uid,)
                )
            }
            if len(existing | set(tags)) > self.limits.max_tags:
                raise ServiceQuotaExceededException(
                    f"A resource can have at most {self.limits.max_tags} tags."
                )
            conn.executemany(
                "INSERT INTO tags (collection_uid, tag_key, tag_value) VALUES (?, ?, ?) "
                "ON CONFLICT (collection_uid, tag_key) DO UPDATE "
                "SET tag_value = excluded.tag_value",
                [(collection.uid, k, v) for k, v in tags.items()],
            )

    def untag(self, collection: CollectionRecord, keys: Sequence[str]) -> None:
        """Remove tags (ResourceNotFoundException if the collection is gone)."""
        with self.db.transaction(self._scope(collection)) as conn:
            _require(conn, collection)
            conn.executemany(
                "DELETE FROM tags WHERE collection_uid = ? AND tag_key = ?",
                [(collection.uid, k) for k in keys],
            )


def _record_changes(conn: Connection, uid: str, face_ids: Sequence[str], op: str) -> None:
    """Append feed rows (inside the transaction that made the change), stamped with the time."""
    now = time.time()
    conn.executemany(
        "INSERT INTO face_changes (collection_uid, face_id, op, created_at) VALUES (?, ?, ?, ?)",
        [(uid, face_id, op, now) for face_id in face_ids],
    )


def _face_params(uid: str, face: NewFace, dim: int) -> tuple[object, ...]:
    r = face.record
    vector = np.ascontiguousarray(face.descriptor, dtype=np.float32)
    if vector.size != dim:
        raise ValueError(f"a descriptor of {vector.size} values for a collection of {dim}")
    blob = vector.reshape(dim).tobytes()
    return (
        r.face_id,
        uid,
        r.image_id,
        r.image_sha256,
        r.external_image_id,
        r.box_left_ratio,
        r.box_top_ratio,
        r.box_width_ratio,
        r.box_height_ratio,
        r.confidence_pct,
        r.model_version,
        r.user_id,
        r.indexed_at,
        r.consent_ref,
        r.retain_until,
        blob,
    )


def collection_not_found(collection_id: str) -> ResourceNotFoundException:
    """The one answer for a collection the caller does not hold (missing, deleted, or another
    organisation's: all alike), naming only the id the caller gave."""
    return ResourceNotFoundException(f"The collection id: {collection_id} does not exist")
