"""User rows: a collection's users and which of its faces each aggregates (at most
``StoreLimits.max_faces_per_user``). Every write is one transaction that first checks the
collection still exists with the identity and owner the caller resolved (else
``ResourceNotFoundException`` and nothing written)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from facegate.errors import ResourceNotFoundException, ServiceQuotaExceededException
from facegate.store.collections import require_collection
from facegate.store.db import IntegrityError, Row, StoreDatabase
from facegate.store.records import CollectionRecord, StoreLimits, UserRecord

if TYPE_CHECKING:
    from facegate.store.indexes import FaceIndexes


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
                    "INSERT INTO users (collection_uid, user_id, status, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (collection.uid, user_id, record.status, record.created_at),
                )
        except IntegrityError:
            return None
        return record

    def get(self, collection: CollectionRecord, user_id: str) -> UserRecord | None:
        """The user, or None."""
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT * FROM users WHERE collection_uid = ? AND user_id = ?",
                (collection.uid, user_id),
            ).fetchone()
        return None if row is None else user_from_row(row)

    def delete(self, collection: CollectionRecord, user_id: str) -> bool:
        """Disassociate the user's faces and delete the user; False if it did not exist;
        ResourceNotFoundException, and nothing changed, if the collection is gone."""
        with self.db.transaction(self.indexes.scope(collection)) as conn:
            require_collection(conn, collection)
            conn.execute(
                "UPDATE faces SET user_id = NULL WHERE collection_uid = ? AND user_id = ?",
                (collection.uid, user_id),
            )
            cur = conn.execute(
                "DELETE FROM users WHERE collection_uid = ? AND user_id = ?",
                (collection.uid, user_id),
            )
            return cur.rowcount > 0

    def page(
        self, collection: CollectionRecord, after: int, limit: int
    ) -> list[tuple[int, UserRecord]]:
        """(cursor, user) in creation order with cursor > ``after``. The cursor is a position
        among all users of the server: callers outside the store must not see it in the clear
        (ops.common.PageTokens encrypts it)."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT rowid AS cursor, * FROM users WHERE collection_uid = ? AND rowid > ? "
                "ORDER BY rowid LIMIT ?",
                (collection.uid, after, limit),
            ).fetchall()
        return [(int(r["cursor"]), user_from_row(r)) for r in rows]

    def face_ids(self, collection: CollectionRecord, user_id: str) -> list[str]:
        """The ids of the user's faces, in indexing order."""
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
        with self.db.transaction(self.indexes.scope(collection)) as conn:
            require_collection(conn, collection)
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
