"""Face rows: store, list, read and delete a collection's faces, and search its vector index.

Contract: every write is one transaction that first checks the collection still exists with the
identity and owner the caller resolved (:func:`facegate.store.collections.require_collection`:
else ``ResourceNotFoundException`` and nothing written); its vectors (pgvector) or feed rows are
written in the same transaction, and the in-memory index is updated only after it committed
(:mod:`facegate.store.indexes`). Limits raise ``ServiceQuotaExceededException`` before anything is
written. A descriptor's length must be the collection's space's (``ValueError``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import BindParameter, Column, Select, bindparam, delete, insert, select

from facegate.errors import ServiceQuotaExceededException
from facegate.store.collections import require_collection, space_of
from facegate.store.db import Row, StoreDatabase
from facegate.store.records import CollectionRecord, FaceRecord, NewFace, StoreLimits
from facegate.store.schema import faces as faces_table
from facegate.store.vectors import Hit, Matrix

if TYPE_CHECKING:  # facegate.store.indexes reads descriptors with this module's helpers
    from facegate.store.indexes import FaceIndexes

FACE_COLUMNS: tuple[Column[Any], ...] = tuple(
    faces_table.c[name]
    for name in (
        "face_id",
        "collection_uid",
        "image_id",
        "image_sha256",
        "external_image_id",
        "box_left",
        "box_top",
        "box_width",
        "box_height",
        "confidence",
        "model_version",
        "user_id",
        "indexed_at",
        "consent_ref",
        "retain_until",
    )
)
"""The columns of a :class:`FaceRecord` (everything but ``seq`` and the descriptor)."""
_CHUNK = 500  # face ids per IN (...) list

_IN_COLLECTION = faces_table.c.collection_uid == bindparam("uid")
_INSERT = insert(faces_table)
_DESCRIPTOR = select(faces_table.c.descriptor).where(
    _IN_COLLECTION, faces_table.c.face_id == bindparam("id")
)
_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_UNASSOCIATED = select(faces_table.c.face_id).where(
    _IN_COLLECTION, faces_table.c.user_id.is_(None), faces_table.c.face_id.in_(_IDS)
)
_DELETE = delete(faces_table).where(_IN_COLLECTION, faces_table.c.face_id.in_(_IDS))


def face_from_row(row: Row) -> FaceRecord:
    """A row with the :data:`FACE_COLUMNS` as a record."""
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


def _face_params(uid: str, face: NewFace, dim: int) -> dict[str, object]:
    """The values of an insert of :data:`FACE_COLUMNS` and the descriptor (``ValueError`` for a
    descriptor of another length than ``dim``)."""
    r = face.record
    vector = np.ascontiguousarray(face.descriptor, dtype=np.float32)
    if vector.size != dim:
        raise ValueError(f"a descriptor of {vector.size} values for a collection of {dim}")
    blob = vector.reshape(dim).tobytes()
    return {
        "face_id": r.face_id,
        "collection_uid": uid,
        "image_id": r.image_id,
        "image_sha256": r.image_sha256,
        "external_image_id": r.external_image_id,
        "box_left": r.box_left_ratio,
        "box_top": r.box_top_ratio,
        "box_width": r.box_width_ratio,
        "box_height": r.box_height_ratio,
        "confidence": r.confidence_pct,
        "model_version": r.model_version,
        "user_id": r.user_id,
        "indexed_at": r.indexed_at,
        "consent_ref": r.consent_ref,
        "retain_until": r.retain_until,
        "descriptor": blob,
    }


@functools.cache
def _rows_by_ids(names: tuple[str, ...]) -> Select[Any]:
    """The select of ``names`` for faces by ids (built once per column list: building the
    expanding ``IN`` costs about 50 µs)."""
    columns = [faces_table.c[name] for name in names]
    return select(*columns).where(_IN_COLLECTION, faces_table.c.face_id.in_(_IDS))


def rows_by_face_id(
    db: StoreDatabase, uid: str, face_ids: Sequence[str], columns: Sequence[Column[Any]]
) -> list[Row]:
    """Rows (``columns``) of the faces among ``face_ids`` in the collection ``uid`` (queried 500
    ids at a time)."""
    statement = _rows_by_ids(tuple(c.name for c in columns))
    rows: list[Row] = []
    for start in range(0, len(face_ids), _CHUNK):
        chunk = list(face_ids[start : start + _CHUNK])
        with db.read() as conn:
            rows += conn.execute(statement, {"uid": uid, "ids": chunk}).fetchall()
    return rows


def read_descriptors(db: StoreDatabase, uid: str, face_ids: Sequence[str]) -> dict[str, Matrix]:
    """Stored descriptors of the faces among ``face_ids`` that exist, by face id."""
    rows = rows_by_face_id(db, uid, face_ids, (faces_table.c.face_id, faces_table.c.descriptor))
    return {r["face_id"]: np.frombuffer(r["descriptor"], dtype=np.float32).copy() for r in rows}


class FaceRepository:
    """A collection's faces: rows in the database, vectors in its index."""

    def __init__(self, db: StoreDatabase, limits: StoreLimits, indexes: FaceIndexes) -> None:
        self.db = db
        self.limits = limits
        self.indexes = indexes

    def add(self, collection: CollectionRecord, faces: Sequence[NewFace]) -> None:
        """Store faces atomically in this collection (whatever collection their records name),
        then add their vectors to the index. ResourceNotFoundException, and nothing stored, if
        the collection was deleted meanwhile. ``ValueError``, and nothing stored, for a vector
        whose length is not the collection's space's (the operations describe every face with
        the collection's own model, ``ops/faces.py``)."""
        index = self.indexes.get(collection)
        if not faces:
            return
        space = space_of(collection)
        params = [_face_params(collection.uid, f, space.dim) for f in faces]
        ids = [f.record.face_id for f in faces]
        vectors = np.stack([f.descriptor for f in faces])
        with self.db.transaction(self.indexes.scope(collection)) as conn:
            require_collection(conn, collection)
            present = self.indexes.stored_count(conn, collection)
            if present + len(faces) > self.limits.max_faces_per_collection:
                raise ServiceQuotaExceededException(
                    f"The collection {collection.collection_id} would exceed "
                    f"{self.limits.max_faces_per_collection} faces."
                )
            conn.executemany(_INSERT, params)
            self.indexes.add_in(conn, collection.uid, space, ids, vectors)
        index.add(ids, vectors)

    def of_image(
        self, collection: CollectionRecord, image_sha256: str, external_image_id: str | None
    ) -> list[FaceRecord]:
        """Faces already indexed from the same image bytes with the same ExternalImageId."""
        external = faces_table.c.external_image_id
        query = select(*FACE_COLUMNS).where(
            faces_table.c.collection_uid == collection.uid,
            faces_table.c.image_sha256 == image_sha256,
            external.is_(None) if external_image_id is None else external == external_image_id,
        )
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(faces_table.c.seq)).fetchall()
        return [face_from_row(r) for r in rows]

    def page(
        self,
        collection: CollectionRecord,
        after: int,
        limit: int,
        user_id: str | None = None,
        face_ids: Sequence[str] | None = None,
    ) -> list[tuple[int, FaceRecord]]:
        """(cursor, face) in indexing order with cursor > ``after``, optionally filtered. The
        cursor is a position among all faces of the server: callers outside the store must not
        see it in the clear (ops.common.PageTokens encrypts it)."""
        query = select(faces_table.c.seq, *FACE_COLUMNS).where(
            faces_table.c.collection_uid == collection.uid, faces_table.c.seq > after
        )
        if user_id is not None:
            query = query.where(faces_table.c.user_id == user_id)
        if face_ids is not None:
            query = query.where(faces_table.c.face_id.in_(list(face_ids)))
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(faces_table.c.seq).limit(limit)).fetchall()
        return [(int(r["seq"]), face_from_row(r)) for r in rows]

    def get(self, collection: CollectionRecord, face_ids: Sequence[str]) -> dict[str, FaceRecord]:
        """The faces among ``face_ids`` that exist in the collection."""
        rows = rows_by_face_id(self.db, collection.uid, face_ids, FACE_COLUMNS)
        return {r["face_id"]: face_from_row(r) for r in rows}

    def descriptor(self, collection: CollectionRecord, face_id: str) -> Matrix | None:
        """A face's stored descriptor, or None if the face does not exist."""
        with self.db.read() as conn:
            row = conn.execute(_DESCRIPTOR, {"uid": collection.uid, "id": face_id}).fetchone()
        if row is None:
            return None
        return np.frombuffer(row["descriptor"], dtype=np.float32).copy()

    def descriptors(
        self, collection: CollectionRecord, face_ids: Sequence[str]
    ) -> dict[str, Matrix]:
        """Descriptors of the faces among ``face_ids`` that exist, by face id."""
        return read_descriptors(self.db, collection.uid, face_ids)

    def delete(self, collection: CollectionRecord, face_ids: Sequence[str]) -> list[str]:
        """Delete the given faces (those that exist and have no user); returns the deleted ids.
        ResourceNotFoundException, and nothing deleted, if the collection is gone."""
        index = self.indexes.get(collection)
        deleted: list[str] = []
        with self.db.transaction(self.indexes.scope(collection)) as conn:
            require_collection(conn, collection)
            for start in range(0, len(face_ids), _CHUNK):
                chunk = list(face_ids[start : start + _CHUNK])
                rows = conn.execute(_UNASSOCIATED, {"uid": collection.uid, "ids": chunk}).fetchall()
                ids = [r["face_id"] for r in rows]
                if ids:
                    conn.execute(_DELETE, {"uid": collection.uid, "ids": ids})
                    self.indexes.remove_in(conn, collection.uid, ids)
                deleted.extend(ids)
        index.remove(deleted)
        return deleted

    # --- search ------------------------------------------------------------------------------

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
        self.indexes.catch_up()
        hits: list[Hit] = self.indexes.get(collection).search(query, k, max_distance, weights)
        return hits

    def search(
        self, collection: CollectionRecord, query: Matrix, k: int, max_distance: float
    ) -> list[tuple[FaceRecord, float]]:
        """Nearest stored faces (records and distances) within ``max_distance``, after catching
        up with other servers' changes."""
        hits = self.nearest(collection, query, k, max_distance)
        records = self.get(collection, [h.face_id for h in hits])
        # A face deleted between the index search and the lookup is simply skipped.
        return [(records[h.face_id], h.distance) for h in hits if h.face_id in records]

    def indexed_count(self, collection: CollectionRecord) -> int:
        """How many faces the collection's in-memory index holds (after catching up)."""
        self.indexes.catch_up()
        return len(self.indexes.get(collection))

    def indexed_vectors(
        self, collection: CollectionRecord, face_ids: Sequence[str]
    ) -> tuple[list[str], Matrix]:
        """The faces among ``face_ids`` in the collection's in-memory index, in order, and their
        descriptors (the stored ones, without a database read), one row each; a face deleted
        meanwhile is absent."""
        return self.indexes.get(collection).vectors(face_ids)
