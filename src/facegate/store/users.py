"""User rows: a collection's users and which of its faces each aggregates (at most
``StoreLimits.max_faces_per_user``). Every write is one transaction that first checks the
collection still exists with the identity and owner the caller resolved (else
``ResourceNotFoundException`` and nothing written)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, func, insert, select, update

from facegate.errors import ResourceNotFoundException, ServiceQuotaExceededException
from facegate.store.collections import require_collection
from facegate.store.db import IntegrityError, Row, StoreDatabase
from facegate.store.records import CollectionRecord, StoreLimits, UserRecord
from facegate.store.schema import faces, users

if TYPE_CHECKING:
    from facegate.store.indexes import FaceIndexes

_USER = (users.c.collection_uid == bindparam("uid"), users.c.user_id == bindparam("user"))
_FACES_OF_USER = (faces.c.collection_uid == bindparam("uid"), faces.c.user_id == bindparam("user"))
_INSERT = insert(users)
_GET = select(users).where(*_USER)
_EXISTS = select(1).select_from(users).where(*_USER)
_DELETE = delete(users).where(*_USER)
_DISASSOCIATE_ALL = update(faces).where(*_FACES_OF_USER).values(user_id=None)
_PAGE = (
    select(users.c.rowid.label("cursor"), users)
    .where(users.c.collection_uid == bindparam("uid"), users.c.rowid > bindparam("after"))
    .order_by(users.c.rowid)
    .limit(bindparam("limit"))
)
_FACE_IDS = select(faces.c.face_id).where(*_FACES_OF_USER).order_by(faces.c.seq)
_COUNT_FACES = select(func.count()).select_from(faces).where(*_FACES_OF_USER)


def user_from_row(row: Row) -> UserRecord:
    """A ``users`` row as a record."""
    return UserRecord(row["collection_uid"], row["user_id"], row["status"], row["created_at"])


class UserRepository:
    """Create, read, list and delete users; associate faces with them."""

    def __init__(self, db: StoreDatabase, limits: StoreLimits, indexes: FaceIndexes) -> None:
        """``indexes`` gives each write its scope (:meth:`FaceIndexes.scope`)."""
        self.db = db
        self.limits = limits
        self.indexes = indexes

    def create(self, collection: CollectionRecord, user_id: str) -> UserRecord | None:
        """Create a user; ``None`` if it already exists; ResourceNotFoundException, and nothing
        created, if the collection is gone."""
        record = UserRecord(collection.uid, user_id, "ACTIVE", time.time())
        try:
            with self.db.transaction(self.indexes.scope(collection)) as conn:
                require_collection(conn, collection)
                conn.execute(
                    _INSERT,
                    {
                        "collection_uid": collection.uid,
                        "user_id": user_id,
                        "status": record.status,
                        "created_at": record.created_at,
                    },
                )
        except IntegrityError:
            return None
        return record

    def get(self, collection: CollectionRecord, user_id: str) -> UserRecord | None:
        """The user, or None."""
        with self.db.read() as conn:
            row = conn.execute(_GET, {"uid": collection.uid, "user": user_id}).fetchone()
        return None if row is None else user_from_row(row)

    def delete(self, collection: CollectionRecord, user_id: str) -> bool:
        """Disassociate the user's faces and delete the user; False if it did not exist;
        ResourceNotFoundException, and nothing changed, if the collection is gone."""
        with self.db.transaction(self.indexes.scope(collection)) as conn:
            require_collection(conn, collection)
            conn.execute(_DISASSOCIATE_ALL, {"uid": collection.uid, "user": user_id})
            cur = conn.execute(_DELETE, {"uid": collection.uid, "user": user_id})
            return cur.rowcount > 0

    def page(
        self, collection: CollectionRecord, after: int, limit: int
    ) -> list[tuple[int, UserRecord]]:
        """(cursor, user) in creation order with cursor > ``after``. The cursor is a position
        among all users of the server: callers outside the store must not see it in the clear
        (ops.common.PageTokens encrypts it)."""
        with self.db.read() as conn:
            rows = conn.execute(
                _PAGE, {"uid": collection.uid, "after": after, "limit": limit}
            ).fetchall()
        return [(int(r["cursor"]), user_from_row(r)) for r in rows]

    def face_ids(self, collection: CollectionRecord, user_id: str) -> list[str]:
        """The ids of the user's faces, in indexing order."""
        with self.db.read() as conn:
            rows = conn.execute(_FACE_IDS, {"uid": collection.uid, "user": user_id}).fetchall()
        return [r["face_id"] for r in rows]

    def set_user_of_faces(
        self, collection: CollectionRecord, user_id: str | None, face_ids: Sequence[str]
    ) -> None:
        """Associate (``user_id``) or disassociate (``None``) faces in one transaction.
        ResourceNotFoundException, and nothing changed, if the collection is gone (or, when
        associating, if the user is)."""
        if not face_ids:
            return
        with self.db.transaction(self.indexes.scope(collection)) as conn:
            require_collection(conn, collection)
            if user_id is not None:
                user = conn.execute(_EXISTS, {"uid": collection.uid, "user": user_id}).fetchone()
                if user is None:
                    raise ResourceNotFoundException(
                        f"The user {user_id} does not exist in collection "
                        f"{collection.collection_id}."
                    )
                present = conn.execute(
                    _COUNT_FACES, {"uid": collection.uid, "user": user_id}
                ).fetchone()[0]
                if present + len(face_ids) > self.limits.max_faces_per_user:
                    raise ServiceQuotaExceededException(
                        f"A user can have at most {self.limits.max_faces_per_user} faces."
                    )
            # an expanding IN: compiled once, its ids rendered per call (store/core.py)
            conn.execute(
                update(faces)
                .where(faces.c.collection_uid == collection.uid, faces.c.face_id.in_(face_ids))
                .values(user_id=user_id)
            )
