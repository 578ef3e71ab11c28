"""Collection rows: create, resolve, list and delete collections, and operators' statistics.

Contract (the store's, :mod:`facegate.store.store`):

* collections are named per organisation: :meth:`CollectionRepository.get` resolves an
  organisation's id to a :class:`CollectionRecord` carrying the collection's identity (``uid``);
  every other method of the store takes that record, and every write checks, inside its own
  transaction, that a collection with that identity and owner still exists
  (:func:`require_collection`: else ``ResourceNotFoundException`` and nothing written).
  Identities are never reused (:func:`new_uid`), so a write resolved before a collection was
  deleted can never land in a collection created afterwards under the same id, by the same
  organisation or another;
* a missing collection is reported by :func:`collection_not_found`, whose message names the id
  the caller gave (never the internal uid, never another organisation);
* creating a collection registers its vector index (:mod:`facegate.store.indexes`) after the
  transaction committed; deleting one drops it (its pgvector partition, or a ``drop`` feed row
  for the other servers' in-memory indexes) in the same transaction.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facegate.errors import (
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from facegate.store.db import Connection, IntegrityError, Row, StoreDatabase
from facegate.store.records import CollectionRecord, StoreLimits
from facegate.store.vectors import make_index
from facegate.vectorspace import DLIB_SPACE, VectorSpace, parse_space

if TYPE_CHECKING:  # facegate.store.indexes loads collections with this module's helpers
    from facegate.store.indexes import FaceIndexes

COLLECTION_COLUMNS = (
    "uid, collection_id, arn, face_model_version, index_kind, created_at, org_id, descriptor_space"
)


@dataclass(frozen=True)
class CollectionStats:
    """A collection's metadata as operators see it (:meth:`CollectionRepository.stats`)."""

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


def new_uid() -> str:
    """A new collection identity: 128 random bits, so never one used before."""
    return "col-" + secrets.token_hex(16)


def collection_from_row(row: Row) -> CollectionRecord:
    """A row of :data:`COLLECTION_COLUMNS` as a record."""
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


def space_of(collection: CollectionRecord) -> VectorSpace:
    """The descriptor space the collection's vectors lie in."""
    return parse_space(collection.descriptor_space)


def collection_not_found(collection_id: str) -> ResourceNotFoundException:
    """The one answer for a collection the caller does not hold (missing, deleted, or another
    organisation's: all alike), naming only the id the caller gave."""
    return ResourceNotFoundException(f"The collection id: {collection_id} does not exist")


def require_collection(conn: Connection, collection: CollectionRecord) -> None:
    """Inside a write transaction: the collection with this identity and owner still exists
    (else ResourceNotFoundException, and the caller's transaction writes nothing)."""
    row = conn.execute(
        "SELECT 1 FROM collections WHERE uid = ? AND org_id = ?",
        (collection.uid, collection.org_id),
    ).fetchone()
    if row is None:
        raise collection_not_found(collection.collection_id)


def collection_by_uid(db: StoreDatabase, uid: str, collection_id: str) -> CollectionRecord:
    """The collection with identity ``uid`` (ResourceNotFoundException naming
    ``collection_id`` if there is none)."""
    with db.read() as conn:
        row = conn.execute(
            f"SELECT {COLLECTION_COLUMNS} FROM collections WHERE uid = ?", (uid,)
        ).fetchone()
    if row is None:
        raise collection_not_found(collection_id)
    return collection_from_row(row)


class CollectionRepository:
    """Create, resolve, list and delete collections; their vector indexes follow."""

    def __init__(self, db: StoreDatabase, limits: StoreLimits, indexes: FaceIndexes) -> None:
        self.db = db
        self.limits = limits
        self.indexes = indexes

    def create(
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
                self.indexes.create_in(conn, record.uid, space)
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
        self.indexes.created(record.uid, index)
        return record

    def find(self, org_id: str, collection_id: str) -> CollectionRecord | None:
        """The collection ``org_id`` holds under ``collection_id`` now, or None. Another
        organisation's collection of the same id is not consulted at all (the same query, the
        same work, whether one exists or not)."""
        with self.db.read() as conn:
            row = conn.execute(
                f"SELECT {COLLECTION_COLUMNS} FROM collections "
                "WHERE org_id = ? AND collection_id = ?",
                (org_id, collection_id),
            ).fetchone()
        return None if row is None else collection_from_row(row)

    def get(self, org_id: str, collection_id: str) -> CollectionRecord:
        """:meth:`find`, or ResourceNotFoundException."""
        record = self.find(org_id, collection_id)
        if record is None:
            raise collection_not_found(collection_id)
        return record

    def refresh(self, collection: CollectionRecord) -> CollectionRecord:
        """The collection again, by its identity and owner: ResourceNotFoundException if it was
        deleted since it was resolved (even if its id now names another collection)."""
        record = collection_by_uid(self.db, collection.uid, collection.collection_id)
        if record.org_id != collection.org_id:
            raise collection_not_found(collection.collection_id)
        return record

    def page(
        self, after: int, limit: int, org_id: str | None = None
    ) -> list[tuple[int, CollectionRecord]]:
        """(cursor, collection) in creation order with cursor > ``after``, at most ``limit``;
        only ``org_id``'s collections unless it is None (operators). The cursor is a position
        among all collections of the server: callers outside the store must not see it in the
        clear (ops.common.PageTokens encrypts it)."""
        with self.db.read() as conn:
            if org_id is None:
                rows = conn.execute(
                    f"SELECT rowid AS cursor, {COLLECTION_COLUMNS} FROM collections "
                    "WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (after, limit),
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT rowid AS cursor, {COLLECTION_COLUMNS} FROM collections "
                    "WHERE rowid > ? AND org_id = ? ORDER BY rowid LIMIT ?",
                    (after, org_id, limit),
                ).fetchall()
        return [(int(r["cursor"]), collection_from_row(r)) for r in rows]

    def delete(self, collection: CollectionRecord) -> None:
        """Delete the collection with this identity and owner, its faces, users and tags
        (ResourceNotFoundException if it is gone already)."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM collections WHERE uid = ? AND org_id = ?",
                (collection.uid, collection.org_id),
            )
            if cur.rowcount == 0:
                raise collection_not_found(collection.collection_id)
            self.indexes.drop_in(conn, collection.uid)
        self.indexes.dropped(collection.uid)

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

    def stats(self, limit: int = 1000) -> list[CollectionStats]:
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
