"""The retention sweep: faces whose legal deadline (``retain_until``) has passed are deleted,
users or not (a legal deadline outranks a user association), and each deletion is recorded in
``retention_deletions`` in the same transaction."""

from __future__ import annotations

from facegate.store.db import StoreDatabase
from facegate.store.faces import FACE_COLUMNS, face_from_row
from facegate.store.indexes import FaceIndexes
from facegate.store.records import SweptFace


def sweep_retention(
    db: StoreDatabase, indexes: FaceIndexes, now: float, limit: int = 1000
) -> list[SweptFace]:
    """Delete up to ``limit`` faces whose retention deadline has passed (``retain_until <=
    now``), oldest deadline first, in one transaction; returns the deleted faces with their
    collection's id and owner. Their vectors or feed rows go in the same transaction, and they
    leave the in-memory indexes after it committed."""
    swept: list[SweptFace] = []
    with db.transaction() as conn:
        rows = conn.execute(
            f"SELECT {FACE_COLUMNS} FROM faces WHERE retain_until IS NOT NULL "
            "AND retain_until <= ? ORDER BY retain_until LIMIT ?",
            (now, limit),
        ).fetchall()
        for face in (face_from_row(r) for r in rows):
            owner = conn.execute(
                "SELECT collection_id, org_id FROM collections WHERE uid = ?",
                (face.collection_uid,),
            ).fetchone()
            collection_id, org_id = (owner[0], owner[1]) if owner else ("", "")
            conn.execute("DELETE FROM faces WHERE face_id = ?", (face.face_id,))
            indexes.remove_in(conn, face.collection_uid, [face.face_id])
            conn.execute(
                "INSERT INTO retention_deletions (face_id, collection_id, collection_uid, "
                "org_id, retain_until, deleted_at) VALUES (?, ?, ?, ?, ?, ?)",
                (face.face_id, collection_id, face.collection_uid, org_id, face.retain_until, now),
            )
            swept.append(SweptFace(face, collection_id, org_id))
    by_collection: dict[str, list[str]] = {}
    for item in swept:
        by_collection.setdefault(item.face.collection_uid, []).append(item.face.face_id)
    indexes.removed(by_collection)
    return swept
