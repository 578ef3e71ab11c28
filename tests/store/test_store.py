"""The store: transactions, limits, pagination cursors, persistence and rebuild."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from facegate.errors import (
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from facegate.store.db import MIGRATIONS, Database
from facegate.store.records import NewFace
from facegate.store.store import FaceStore, StoreLimits
from tests.store.factory import new_face


def _face(cid: str, i: int, user: str | None = None) -> NewFace:
    return new_face(cid, i, user=user)


@pytest.fixture
def store(tmp_path: Path) -> FaceStore:
    return FaceStore(Database(tmp_path / "db.sqlite3"), StoreLimits(max_faces_per_collection=50))


def test_schema_and_wal(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.sqlite3")
    assert db.schema_version == len(MIGRATIONS)
    with db.read() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    Database(tmp_path / "db.sqlite3").close()  # reopening migrates nothing and succeeds


def test_collections(store: FaceStore) -> None:
    store.create_collection("a", "arn-a", "m")
    with pytest.raises(ResourceAlreadyExistsException):
        store.create_collection("a", "arn-a", "m")
    store.create_collection("b", "arn-b", "m")
    assert [c.collection_id for _, c in store.list_collections(0, 10)] == ["a", "b"]
    cursor = store.list_collections(0, 1)[0][0]
    assert [c.collection_id for _, c in store.list_collections(cursor, 10)] == ["b"]
    store.delete_collection("a")
    with pytest.raises(ResourceNotFoundException):
        store.get_collection("a")
    with pytest.raises(ResourceNotFoundException):
        store.index("a")


def test_faces_round_trip_and_search(store: FaceStore) -> None:
    store.create_collection("c", "arn", "m")
    faces = [_face("c", i) for i in range(20)]
    store.add_faces("c", faces)
    assert store.counts("c") == (20, 0)
    hits = store.search("c", faces[4].descriptor, 1, 10.0)
    assert hits[0][0].face_id == faces[4].record.face_id
    assert hits[0][1] == pytest.approx(0.0, abs=1e-5)
    stored = store.descriptor("c", faces[4].record.face_id)
    assert stored is not None
    assert np.array_equal(stored, faces[4].descriptor)
    page = store.list_faces("c", 0, 7)
    rest = store.list_faces("c", page[-1][0], 100)
    assert [f.face_id for _, f in page + rest] == [f.record.face_id for f in faces]


def test_quota_is_checked_before_writing(store: FaceStore) -> None:
    store.create_collection("c", "arn", "m")
    store.add_faces("c", [_face("c", i) for i in range(45)])
    with pytest.raises(ServiceQuotaExceededException):
        store.add_faces("c", [_face("c", 100 + i) for i in range(6)])
    assert store.counts("c") == (45, 0)
    assert len(store.index("c")) == 45


def test_failed_transaction_leaves_nothing(store: FaceStore) -> None:
    store.create_collection("c", "arn", "m")
    batch = [_face("c", 1), _face("c", 1)]  # duplicate FaceId: the second insert fails
    with pytest.raises(sqlite3.IntegrityError):
        store.add_faces("c", batch)
    assert store.counts("c") == (0, 0)
    assert len(store.index("c")) == 0


def test_delete_refuses_faces_with_users(store: FaceStore) -> None:
    store.create_collection("c", "arn", "m")
    faces = [_face("c", i) for i in range(3)]
    store.add_faces("c", faces)
    store.create_user("c", "u")
    store.set_user_of_faces("c", "u", [faces[0].record.face_id])
    deleted = store.delete_faces("c", [f.record.face_id for f in faces])
    assert sorted(deleted) == sorted(f.record.face_id for f in faces[1:])
    assert len(store.index("c")) == 1


def test_vectors_rebuilt_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    first = FaceStore(Database(path))
    first.create_collection("c", "arn", "m", index_kind="hnsw")
    faces = [_face("c", i) for i in range(30)]
    first.add_faces("c", faces)
    first.delete_faces("c", [faces[0].record.face_id])
    first.db.close()
    second = FaceStore(Database(path))
    assert len(second.index("c")) == 29
    assert second.index("c").kind == "hnsw"
    hit = second.search("c", faces[7].descriptor, 1, 10.0)
    assert hit[0][0].face_id == faces[7].record.face_id


def test_user_face_limit(tmp_path: Path) -> None:
    store = FaceStore(Database(tmp_path / "db.sqlite3"), StoreLimits(max_faces_per_user=2))
    store.create_collection("c", "arn", "m")
    faces = [_face("c", i) for i in range(3)]
    store.add_faces("c", faces)
    assert store.create_user("c", "u") is not None
    assert store.create_user("c", "u") is None
    with pytest.raises(ServiceQuotaExceededException):
        store.set_user_of_faces("c", "u", [f.record.face_id for f in faces])
    assert store.user_face_ids("c", "u") == []
