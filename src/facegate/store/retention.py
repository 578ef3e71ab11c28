"""The retention sweep: faces whose legal deadline (``retain_until``) has passed are deleted,
users or not (a legal deadline outranks a user association), and each deletion is recorded in
``retention_deletions`` in the same transaction."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, insert, select

from facegate.store.db import StoreDatabase
from facegate.store.faces import FACE_COLUMNS, face_from_row
from facegate.store.indexes import FaceIndexes
from facegate.store.records import SweptFace
from facegate.store.schema import collections, faces, retention_deletions

_EXPIRED = (
    select(*FACE_COLUMNS)
    .where(faces.c.retain_until.is_not(None), faces.c.retain_until <= bindparam("now"))
    .order_by(faces.c.retain_until)
    .limit(bindparam("limit"))
)
_OWNER = select(collections.c.collection_id, collections.c.org_id).where(
    collections.c.uid == bindparam("uid")
)
_DELETE_FACE = delete(faces).where(faces.c.face_id == bindparam("id"))
_RECORD = insert(retention_deletions)


def sweep_retention(
    db: StoreDatabase, indexes: FaceIndexes, now: float, limit: int = 1000
) -> list[SweptFace]:
    """Delete up to ``limit`` faces whose retention deadline has passed (``retain_until <=
    now``), oldest deadline first, in one transaction; returns the deleted faces with their
    collection's id and owner. Their vectors or feed rows go in the same transaction, and they
    leave the in-memory indexes after it committed."""
    swept: list[SweptFace] = []
    with db.transaction() as conn:
        rows = conn.execute(_EXPIRED, {"now": now, "limit": limit}).fetchall()
        for face in (face_from_row(r) for r in rows):
            owner = conn.execute(_OWNER, {"uid": face.collection_uid}).fetchone()
            collection_id, org_id = (owner[0], owner[1]) if owner else ("", "")
            conn.execute(_DELETE_FACE, {"id": face.face_id})
            indexes.remove_in(conn, face.collection_uid, [face.face_id])
            conn.execute(
                _RECORD,
                {
                    "face_id": face.face_id,
                    "collection_id": collection_id,
                    "collection_uid": face.collection_uid,
                    "org_id": org_id,
                    "retain_until": face.retain_until,
                    "deleted_at": now,
                },
            )
            swept.append(SweptFace(face, collection_id, org_id))
    by_collection: dict[str, list[str]] = {}
    for item in swept:
        by_collection.setdefault(item.face.collection_uid, []).append(item.face.face_id)
    indexes.removed(by_collection)
    return swept
