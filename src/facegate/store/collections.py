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

from sqlalchemy import bindparam, delete, func, insert, select

from facegate.errors import (
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from facegate.store.db import Connection, IntegrityError, Row, StoreDatabase
from facegate.store.records import CollectionRecord, StoreLimits
from facegate.store.schema import collections, faces, retention_deletions, tags, users
from facegate.store.vectors import make_index
from facegate.vectorspace import DLIB_SPACE, VectorSpace, parse_space

if TYPE_CHECKING:  # facegate.store.indexes loads collections with this module's helpers
    from facegate.store.indexes import FaceIndexes

_COLUMNS = (
    collections.c.uid,
    collections.c.collection_id,
    collections.c.arn,
    collections.c.face_model_version,
    collections.c.index_kind,
    collections.c.created_at,
    collections.c.org_id,
    collections.c.descriptor_space,
)
COLLECTION_ROWS = select(*_COLUMNS)
"""Every collection, as rows for :func:`collection_from_row` (add a ``where`` to narrow)."""

_OWNED = (collections.c.uid == bindparam("uid"), collections.c.org_id == bindparam("org"))
_REQUIRE = select(1).select_from(collections).where(*_OWNED)
_BY_UID = COLLECTION_ROWS.where(collections.c.uid == bindparam("uid"))
_INSERT = insert(collections)
_INSERT_TAG = insert(tags)
_FIND = COLLECTION_ROWS.where(
    collections.c.org_id == bindparam("org"), collections.c.collection_id == bindparam("id")
)
_PAGE = (
    select(collections.c.rowid.label("cursor"), *_COLUMNS)
    .where(collections.c.rowid > bindparam("after"))
    .order_by(collections.c.rowid)
    .limit(bindparam("limit"))
)
_PAGE_OF_ORG = _PAGE.where(collections.c.org_id == bindparam("org"))
_DELETE = delete(collections).where(*_OWNED)
_COUNT_FACES = (
    select(func.count()).select_from(faces).where(faces.c.collection_uid == bindparam("uid"))
)
_COUNT_USERS = (
    select(func.count()).select_from(users).where(users.c.collection_uid == bindparam("uid"))
)


_FACES_OF_C = faces.c.collection_uid == collections.c.uid
_STATS = (
    select(
        collections.c.collection_id,
        collections.c.org_id,
        collections.c.face_model_version,
        collections.c.created_at,
        select(func.count()).where(_FACES_OF_C).scalar_subquery().label("faces"),
        select(func.count())
        .where(users.c.collection_uid == collections.c.uid)
        .scalar_subquery()
        .label("users"),
        select(func.count())
        .where(_FACES_OF_C, faces.c.consent_ref.is_not(None))
        .scalar_subquery()
        .label("with_consent"),
        select(func.count())
        .where(_FACES_OF_C, faces.c.retain_until.is_not(None))
        .scalar_subquery()
        .label("with_deadline"),
        select(func.min(faces.c.retain_until))
        .where(_FACES_OF_C)
        .scalar_subquery()
        .label("next_deadline"),
        select(func.count())
        .where(retention_deletions.c.collection_uid == collections.c.uid)
        .scalar_subquery()
        .label("deleted"),
    )
    .order_by(collections.c.rowid)
    .limit(bindparam("limit"))
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
    """A row of :data:`COLLECTION_ROWS` as a record."""
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
    row = conn.execute(_REQUIRE, {"uid": collection.uid, "org": collection.org_id}).fetchone()
    if row is None:
        raise collection_not_found(collection.collection_id)


def collection_by_uid(db: StoreDatabase, uid: str, collection_id: str) -> CollectionRecord:
    """The collection with identity ``uid`` (ResourceNotFoundException naming
    ``collection_id`` if there is none)."""
    with db.read() as conn:
        row = conn.execute(_BY_UID, {"uid": uid}).fetchone()
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
                    _INSERT,
                    {
                        "uid": record.uid,
                        "collection_id": collection_id,
                        "arn": arn,
                        "face_model_version": face_model_version,
                        "index_kind": index_kind,
                        "created_at": record.created_at,
                        "org_id": org_id,
                        "descriptor_space": record.descriptor_space,
                    },
                )
                conn.executemany(
                    _INSERT_TAG,
                    [
                        {"collection_uid": record.uid, "tag_key": k, "tag_value": v}
                        for k, v in tags.items()
                    ],
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
            row = conn.execute(_FIND, {"org": org_id, "id": collection_id}).fetchone()
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
                rows = conn.execute(_PAGE, {"after": after, "limit": limit}).fetchall()
            else:
                rows = conn.execute(
                    _PAGE_OF_ORG, {"after": after, "org": org_id, "limit": limit}
                ).fetchall()
        return [(int(r["cursor"]), collection_from_row(r)) for r in rows]

    def delete(self, collection: CollectionRecord) -> None:
        """Delete the collection with this identity and owner, its faces, users and tags
        (ResourceNotFoundException if it is gone already)."""
        with self.db.transaction() as conn:
            cur = conn.execute(_DELETE, {"uid": collection.uid, "org": collection.org_id})
            if cur.rowcount == 0:
                raise collection_not_found(collection.collection_id)
            self.indexes.drop_in(conn, collection.uid)
        self.indexes.dropped(collection.uid)

    def counts(self, collection: CollectionRecord) -> tuple[int, int]:
        """(faces, users) in a collection."""
        with self.db.read() as conn:
            face_count = conn.execute(_COUNT_FACES, {"uid": collection.uid}).fetchone()[0]
            user_count = conn.execute(_COUNT_USERS, {"uid": collection.uid}).fetchone()[0]
        return int(face_count), int(user_count)

    def stats(self, limit: int = 1000) -> list[CollectionStats]:
        """Metadata of up to ``limit`` collections in creation order, for operators: faces,
        users, faces with a consent record and with a retention deadline, the next deadline and
        the faces deleted by retention so far. Counts only; no vectors, no images."""
        with self.db.read() as conn:
            rows = conn.execute(_STATS, {"limit": limit}).fetchall()
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
