"""Tag rows: a collection's tags (at most ``StoreLimits.max_tags``). Writes check, in their
transaction, that the collection still exists (else ``ResourceNotFoundException`` and nothing
written)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, select

from facegate.errors import ServiceQuotaExceededException
from facegate.store.collections import require_collection
from facegate.store.core import insert_for
from facegate.store.db import StoreDatabase
from facegate.store.records import CollectionRecord, StoreLimits
from facegate.store.schema import tags as tags_table

if TYPE_CHECKING:
    from facegate.store.indexes import FaceIndexes

_OF_COLLECTION = tags_table.c.collection_uid == bindparam("uid")
_GET = (
    select(tags_table.c.tag_key, tags_table.c.tag_value)
    .where(_OF_COLLECTION)
    .order_by(tags_table.c.tag_key)
)
_KEYS = select(tags_table.c.tag_key).where(_OF_COLLECTION)
_DELETE = delete(tags_table).where(_OF_COLLECTION, tags_table.c.tag_key == bindparam("key"))


def _upsert(dialect: str) -> Any:
    """Insert a tag or replace its value (parameters: the three columns)."""
    insert = insert_for(dialect, tags_table)
    return insert.on_conflict_do_update(
        index_elements=[tags_table.c.collection_uid, tags_table.c.tag_key],
        set_={"tag_value": insert.excluded.tag_value},
    )


_UPSERT = {dialect: _upsert(dialect) for dialect in ("sqlite", "postgresql")}


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
            rows = conn.execute(_GET, {"uid": collection.uid}).fetchall()
        return {r["tag_key"]: r["tag_value"] for r in rows}

    def tag(self, collection: CollectionRecord, tags: dict[str, str]) -> None:
        """Add or replace tags (ResourceNotFoundException, and nothing written, if the
        collection is gone)."""
        with self.db.transaction(self.indexes.scope(collection)) as conn:
            require_collection(conn, collection)
            existing = {r[0] for r in conn.execute(_KEYS, {"uid": collection.uid})}
            if len(existing | set(tags)) > self.limits.max_tags:
                raise ServiceQuotaExceededException(
                    f"A resource can have at most {self.limits.max_tags} tags."
                )
            conn.executemany(
                _UPSERT[self.db.dialect],
                [
                    {"collection_uid": collection.uid, "tag_key": k, "tag_value": v}
                    for k, v in tags.items()
                ],
            )

    def untag(self, collection: CollectionRecord, keys: Sequence[str]) -> None:
        """Remove tags (ResourceNotFoundException if the collection is gone)."""
        with self.db.transaction(self.indexes.scope(collection)) as conn:
            require_collection(conn, collection)
            conn.executemany(_DELETE, [{"uid": collection.uid, "key": k} for k in keys])
