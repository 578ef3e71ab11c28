"""Pruning the face change feed, and servers that fell behind it; on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import pytest

from facegate.errors import ResourceNotFoundException
from facegate.store.db import Database, StoreDatabase
from facegate.store.feed import FeedPrune, feed_head, prune_changes, read_floor
from facegate.store.legacy_migrations import MIGRATIONS, _statements
from facegate.store.records import CollectionRecord
from facegate.store.store import FaceStore
from facegate.store.vectors import VectorIndex
from tests.conftest import DbFactory
from tests.store.factory import face_id, new_face

FUTURE = 4_000_000_000.0  # a cutoff after every row: prune the whole feed


def _feed(db: StoreDatabase) -> list[tuple[int, str, str]]:
    with db.read() as conn:
        rows = conn.execute("SELECT seq, face_id, op FROM face_changes ORDER BY seq").fetchall()
    return [(int(r[0]), r[1], r[2]) for r in rows]


def _backdate(db: StoreDatabase, through_seq: int, at: float) -> None:
    """Pretend the feed rows up to ``through_seq`` were made at ``at``."""
    with db.transaction() as conn:
        conn.execute(
            "UPDATE face_changes SET created_at = :at WHERE seq <= :seq",
            {"at": at, "seq": through_seq},
        )


def _held(index: VectorIndex) -> set[str]:
    """The ids in an index (of the faces numbered 0-29 these tests use), checking its size."""
    held = {face_id(i) for i in range(30) if face_id(i) in index}
    assert len(held) == len(index)
    return held


def _ids(store: FaceStore, collection: CollectionRecord) -> set[str]:
    return {face.face_id for _, face in store.list_faces(collection, 0, 1000)}


def test_pruning_deletes_only_rows_older_than_the_window(database: StoreDatabase) -> None:
    store = FaceStore(database)
    c = store.create_collection("c", "arn", "m")
    store.add_faces(c, [new_face("c", i) for i in range(3)])
    store.delete_faces(c, [face_id(0)])
    store.add_faces(c, [new_face("c", i) for i in range(3, 5)])
    feed = _feed(database)
    assert len(feed) == 6
    with database.read() as conn:
        assert read_floor(conn) == 0
        assert all(
            r[0] > time.time() - 60 for r in conn.execute("SELECT created_at FROM face_changes")
        )
    old = feed[3][0]  # the first three adds and the delete are a week old
    _backdate(database, old, time.time() - 7 * 86400)
    held = store.index(c)

    pruned = store.prune_feed(time.time() - 86400)

    assert pruned == FeedPrune(deleted=4, floor=old)
    assert _feed(database) == feed[4:]
    with database.read() as conn:
        assert read_floor(conn) == old
        assert feed_head(conn) == feed[-1][0]
    assert store.prune_feed(time.time() - 86400) == FeedPrune(0, old)  # nothing else is old
    assert store.catch_up() == 0
    assert store.index(c) is held  # the pruning store caught up first: nothing to reload
    assert _feed(database) == feed[4:]


def test_pruning_in_batches_raises_the_floor_each_time(database: StoreDatabase) -> None:
    store = FaceStore(database)
    c = store.create_collection("c", "arn", "m")
    store.add_faces(c, [new_face("c", i) for i in range(5)])
    last = _feed(database)[-1][0]
    assert prune_changes(database, FUTURE, batch=2) == FeedPrune(deleted=5, floor=last)
    assert _feed(database) == []
    with database.read() as conn:
        assert feed_head(conn) == last  # the head survives an empty feed
    store.add_faces(c, [new_face("c", 5)])
    assert [r[0] > last for r in _feed(database)] == [True]  # seq is never reused
    with pytest.raises(ValueError, match="batch"):
        prune_changes(database, FUTURE, batch=0)


def test_a_store_that_kept_up_keeps_working_after_pruning(db_factory: DbFactory) -> None:
    a, b = FaceStore(db_factory()), FaceStore(db_factory())
    c = a.create_collection("c", "arn", "m")
    a.add_faces(c, [new_face("c", i) for i in range(4)])
    assert b.face_count(c) == 4
    held = b.index(c)
    assert a.prune_feed(FUTURE).deleted == 5 - 1  # the collection's creation is not a change
    assert b.catch_up() == 0
    assert b.index(c) is held  # not dropped: b had seen everything pruned
    a.add_faces(c, [new_face("c", 4)])
    a.delete_faces(c, [face_id(1)])
    assert b.catch_up() == 2
    assert b.index(c) is held
    assert _held(held) == _ids(a, c) == {face_id(i) for i in (0, 2, 3, 4)}


def test_a_store_behind_the_floor_reloads_and_sees_exactly_the_right_faces(
    db_factory: DbFactory, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = FaceStore(db_factory()), FaceStore(db_factory())
    c = a.create_collection("c", "arn", "m")
    gone = a.create_collection("gone", "arn", "m")
    a.add_faces(c, [new_face("c", i) for i in range(4)])
    a.add_faces(gone, [new_face("gone", 10)])
    assert (b.face_count(c), b.face_count(gone)) == (4, 1)
    stale = b.index(c)
    # b stalls; meanwhile a adds and deletes faces, creates and drops collections ...
    a.add_faces(c, [new_face("c", i) for i in range(4, 7)])
    a.delete_faces(c, [face_id(0), face_id(5)])
    new = a.create_collection("new", "arn", "m")
    a.add_faces(new, [new_face("new", 20), new_face("new", 21)])
    a.delete_faces(new, [face_id(21)])
    a.delete_collection(gone)
    # ... and the feed is pruned past b's position.
    floor = a.prune_feed(FUTURE).floor
    a.add_faces(c, [new_face("c", 7)])  # one change after the floor
    assert floor > 0

    with caplog.at_level(logging.INFO, logger="facegate.store"):
        b.catch_up()
    lines = [r.getMessage() for r in caplog.records if r.name == "facegate.store"]
    assert len(lines) == 1
    assert "pruned past this server's position" in lines[0]

    expected_c = {face_id(i) for i in (1, 2, 3, 4, 6, 7)}
    assert b.index(c) is not stale
    assert _held(b.index(c)) == expected_c == _ids(a, c)
    assert b.face_count(c) == 6
    assert _held(b.index(new)) == {face_id(20)}
    assert b.face_count(gone) == 0
    with pytest.raises(ResourceNotFoundException):
        b.index(gone)
    hits = b.search(c, new_face("c", 5).descriptor, 1, 0.01)
    assert hits == []  # deleted while b was stalled
    hits = b.search(c, new_face("c", 6).descriptor, 1, 0.01)
    assert [face.face_id for face, _ in hits] == [face_id(6)]
    # Back on the feed: later changes arrive as usual, with no second reload.
    caplog.clear()
    a.delete_faces(c, [face_id(7)])
    with caplog.at_level(logging.INFO, logger="facegate.store"):
        assert b.catch_up() == 1
    assert face_id(7) not in b.index(c)
    assert not [r for r in caplog.records if r.name == "facegate.store"]


def test_a_new_store_on_a_fully_pruned_feed_does_not_reload(database: StoreDatabase) -> None:
    a = FaceStore(database)
    c = a.create_collection("c", "arn", "m")
    a.add_faces(c, [new_face("c", 1)])
    a.prune_feed(FUTURE)
    b = FaceStore(database)  # starts at the head, which is the floor
    held = b.index(c)
    assert b.catch_up() == 0
    assert b.index(c) is held


def test_migration_9_stamps_existing_feed_rows(tmp_path: Path) -> None:
    """A store from before feed pruning: its rows count from the migration, none is lost."""
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    for version, script in enumerate(MIGRATIONS[:8]):
        for statement in _statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version + 1}")
    conn.execute("INSERT INTO face_changes (collection_id, face_id, op) VALUES ('c', 'f', 'add')")
    conn.close()
    before = time.time() - 1
    db = Database(path)
    try:
        assert _feed(db) == [(1, "f", "add")]
        with db.read() as read:
            assert read.execute("SELECT created_at FROM face_changes").fetchone()[0] >= before
            assert read_floor(read) == 0
        assert prune_changes(db, before) == FeedPrune(0, 0)
    finally:
        db.close()
