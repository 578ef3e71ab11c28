"""The store: transactions, limits, pagination cursors, persistence and rebuild; on SQLite and
PostgreSQL (the ``database`` / ``db_factory`` fixtures) unless a test is about SQLite files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facegate.errors import (
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from facegate.store.db import Database, IntegrityError, StoreDatabase
from facegate.store.legacy_migrations import MIGRATIONS
from facegate.store.records import FaceRecord, NewFace, StoreLimits
from facegate.store.store import FaceStore
from tests.conftest import DbFactory
from tests.store.factory import new_face


def _face(cid: str, i: int, user: str | None = None) -> NewFace:
    return new_face(cid, i, user=user)


@pytest.fixture
def store(database: StoreDatabase) -> FaceStore:
    return FaceStore(database, StoreLimits(max_faces_per_collection=50))


def test_schema_and_wal(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.sqlite3")
    assert db.schema_version == len(MIGRATIONS)
    with db.read() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    Database(tmp_path / "db.sqlite3").close()  # reopening migrates nothing and succeeds


def test_collections(store: FaceStore) -> None:
    a = store.create_collection("a", "arn-a", "m")
    with pytest.raises(ResourceAlreadyExistsException):
        store.create_collection("a", "arn-a", "m")
    store.create_collection("b", "arn-b", "m")
    assert [c.collection_id for _, c in store.list_collections(0, 10)] == ["a", "b"]
    cursor = store.list_collections(0, 1)[0][0]
    assert [c.collection_id for _, c in store.list_collections(cursor, 10)] == ["b"]
    assert store.get_collection("", "a") == a
    store.delete_collection(a)
    with pytest.raises(ResourceNotFoundException):
        store.get_collection("", "a")
    with pytest.raises(ResourceNotFoundException):
        store.index(a)
    with pytest.raises(ResourceNotFoundException):
        store.delete_collection(a)


def test_faces_round_trip_and_search(store: FaceStore) -> None:
    c = store.create_collection("c", "arn", "m")
    faces = [_face("c", i) for i in range(20)]
    store.add_faces(c, faces)
    assert store.counts(c) == (20, 0)
    hits = store.search(c, faces[4].descriptor, 1, 10.0)
    assert hits[0][0].face_id == faces[4].record.face_id
    assert hits[0][1] == pytest.approx(0.0, abs=1e-5)
    stored = store.descriptor(c, faces[4].record.face_id)
    assert stored is not None
    assert np.array_equal(stored, faces[4].descriptor)
    page = store.list_faces(c, 0, 7)
    rest = store.list_faces(c, page[-1][0], 100)
    assert [f.face_id for _, f in page + rest] == [f.record.face_id for f in faces]


def test_quota_is_checked_before_writing(store: FaceStore) -> None:
    c = store.create_collection("c", "arn", "m")
    store.add_faces(c, [_face("c", i) for i in range(45)])
    with pytest.raises(ServiceQuotaExceededException):
        store.add_faces(c, [_face("c", 100 + i) for i in range(6)])
    assert store.counts(c) == (45, 0)
    assert len(store.index(c)) == 45


def test_failed_transaction_leaves_nothing(store: FaceStore) -> None:
    c = store.create_collection("c", "arn", "m")
    batch = [_face("c", 1), _face("c", 1)]  # duplicate FaceId: the second insert fails
    with pytest.raises(IntegrityError):
        store.add_faces(c, batch)
    assert store.counts(c) == (0, 0)
    assert len(store.index(c)) == 0


def test_delete_refuses_faces_with_users(store: FaceStore) -> None:
    c = store.create_collection("c", "arn", "m")
    faces = [_face("c", i) for i in range(3)]
    store.add_faces(c, faces)
    store.create_user(c, "u")
    store.set_user_of_faces(c, "u", [faces[0].record.face_id])
    deleted = store.delete_faces(c, [f.record.face_id for f in faces])
    assert sorted(deleted) == sorted(f.record.face_id for f in faces[1:])
    assert len(store.index(c)) == 1


def test_vectors_rebuilt_from_disk(db_factory: DbFactory) -> None:
    first = FaceStore(db_factory())
    c = first.create_collection("c", "arn", "m", index_kind="hnsw")
    faces = [_face("c", i) for i in range(30)]
    first.add_faces(c, faces)
    first.delete_faces(c, [faces[0].record.face_id])
    first.db.close()
    second = FaceStore(db_factory())
    assert len(second.index(c)) == 29
    assert second.index(c).kind == "hnsw"
    hit = second.search(c, faces[7].descriptor, 1, 10.0)
    assert hit[0][0].face_id == faces[7].record.face_id


def test_user_face_limit(database: StoreDatabase) -> None:
    store = FaceStore(database, StoreLimits(max_faces_per_user=2))
    c = store.create_collection("c", "arn", "m")
    faces = [_face("c", i) for i in range(3)]
    store.add_faces(c, faces)
    assert store.create_user(c, "u") is not None
    assert store.create_user(c, "u") is None
    with pytest.raises(ServiceQuotaExceededException):
        store.set_user_of_faces(c, "u", [f.record.face_id for f in faces])
    assert store.user_face_ids(c, "u") == []


def test_faces_of_image_matches_the_external_image_id_or_its_absence(store: FaceStore) -> None:
    c = store.create_collection("c", "arn", "m")
    with_id, without_id = _face("c", 1), _face("c", 2)
    bare = NewFace(replace(without_id.record, external_image_id=None), without_id.descriptor)
    store.add_faces(c, [with_id, bare])
    sha1, sha2 = with_id.record.image_sha256, bare.record.image_sha256
    assert [f.face_id for f in store.faces_of_image(c, sha1, "img-1")] == [with_id.record.face_id]
    assert store.faces_of_image(c, sha1, None) == []
    assert [f.face_id for f in store.faces_of_image(c, sha2, None)] == [bare.record.face_id]
    assert store.faces_of_image(c, sha2, "img-2") == []


def test_tags_upsert_and_users_page(store: FaceStore) -> None:
    c = store.create_collection("c", "arn", "m", tags={"a": "1"})
    store.tag(c, {"a": "2", "b": "3"})
    assert store.tags(c) == {"a": "2", "b": "3"}
    store.untag(c, ["a"])
    assert store.tags(c) == {"b": "3"}
    for name in ("u1", "u2", "u3"):
        store.create_user(c, name)
    first = store.list_users(c, 0, 2)
    rest = store.list_users(c, first[-1][0], 10)
    assert [u.user_id for _, u in first + rest] == ["u1", "u2", "u3"]
    assert store.delete_user(c, "u2")
    assert not store.delete_user(c, "u2")
    stats = store.collection_stats()
    assert [(s.collection_id, s.faces, s.users) for s in stats] == [("c", 0, 2)]


def _ids(hits: list[tuple[FaceRecord, float]]) -> list[str]:
    return [face.face_id for face, _ in hits]


def test_two_stores_on_one_database_see_each_other_s_faces(db_factory: DbFactory) -> None:
    # Two servers sharing one store: each keeps its own in-memory index, fed by face_changes.
    a, b = FaceStore(db_factory()), FaceStore(db_factory())
    c = a.create_collection("c", "arn", "m")
    faces = [_face("c", i) for i in range(6)]
    a.add_faces(c, faces[:4])
    assert _ids(b.search(c, faces[2].descriptor, 1, 0.01)) == [faces[2].record.face_id]
    assert b.face_count(c) == 4
    a.add_faces(c, faces[4:])  # b holds the collection already: the feed brings these
    assert _ids(b.search(c, faces[5].descriptor, 1, 0.01)) == [faces[5].record.face_id]
    assert b.face_count(c) == 6
    assert b.delete_faces(c, [faces[1].record.face_id]) == [faces[1].record.face_id]
    a.catch_up()
    assert faces[1].record.face_id not in a.index(c)
    assert a.face_count(c) == 5
    assert a.search(c, faces[1].descriptor, 1, 0.01) == []
    a.delete_collection(c)
    assert b.face_count(c) == 0
    with pytest.raises(ResourceNotFoundException):
        b.search(c, faces[0].descriptor, 1, 0.01)


def test_retention_deletions_reach_the_other_store(db_factory: DbFactory) -> None:
    a, b = FaceStore(db_factory()), FaceStore(db_factory())
    c = a.create_collection("c", "arn", "m")
    due = new_face("c", 1, retain_until=10.0)
    a.add_faces(c, [due, _face("c", 2)])
    assert b.face_count(c) == 2
    assert [s.face.face_id for s in b.sweep_retention(now=20.0)] == [due.record.face_id]
    assert a.face_count(c) == 1
    assert due.record.face_id not in a.index(c)


def test_the_feed_is_written_in_the_face_transaction(store: FaceStore) -> None:
    c = store.create_collection("c", "arn", "m")
    with pytest.raises(IntegrityError):
        store.add_faces(c, [_face("c", 1), _face("c", 1)])
    store.add_faces(c, [_face("c", 2)])
    store.delete_faces(c, [_face("c", 2).record.face_id])
    with store.db.read() as conn:
        rows = conn.execute("SELECT face_id, op FROM face_changes ORDER BY seq").fetchall()
    assert [tuple(r) for r in rows] == [(_face("c", 2).record.face_id, "add")] * 1 + [
        (_face("c", 2).record.face_id, "remove")
    ]
    assert store.catch_up() == 2  # its own changes: read, already applied
    assert store.catch_up() == 0
