"""Tag rows: a collection's tags (at most ``StoreLimits.max_tags``). Writes check, in their
transaction, that the collection still exists (else ``ResourceNotFoundException`` and nothing
written)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from facegate.errors import ServiceQuotaExceededException
from facegate.store.collections import require_collection
from facegate.store.db import StoreDatabase
from facegate.store.records import CollectionRecord, StoreLimits

if TYPE_CHECKING:
    from facegate.store.indexes import FaceIndexes


class TagRepository:
    """Read, add or replace, and remove a collection's tags."""

    def __init__(self, db: StoreDatabase, limits: StoreLimits, indexes: FaceIndexes) -> None:
        """``indexes`` gives each write its scope (:meth:`FaceIndexes.scope`)."""
        self.db = db
        self.limits = limits
        self.indexes = indexes

    def get(self, collection: CollectionRecord) -> dict[str, str]:
        """The collection's tags, by key."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT tag_key, tag_value FROM tags WHERE collection_uid = ? ORDER BY tag_key",
                (collection.uid,),
            ).fetchall()
        return {r["tag_key"]: r["tag_value"] for r in rows}

    def tag(self, collection: CollectionRecord, tags: dict[str, str]) -> None:
        """Add or replace tags (ResourceNotFoundException, and nothing written, if the
        collection is gone)."""
        with self.db.transaction(self.indexes.scope(collection)) as conn:
            require_collection(conn, collection)
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
        with self.db.transaction(self.indexes.scope(collection)) as conn:
            require_collection(conn, collection)
            conn.executemany(
                "DELETE FROM tags WHERE collection_uid = ? AND tag_key = ?",
                [(collection.uid, k) for k in keys],
            )
