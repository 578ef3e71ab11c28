"""Tenancy in the store, on SQLite and PostgreSQL: collection ids per organisation, writes bound
to a collection's identity (never to its id), ClientRequestToken records scoped and expiring,
and migration 10 keeping what a store held before it."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from facegate.errors import (
    IdempotentParameterMismatchException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from facegate.store.db import Database, StoreDatabase
from facegate.store.idempotency import DEFAULT_TTL_S, IdempotencyRepository, TokenScope
from facegate.store.legacy_migrations import MIGRATIONS, _statements, pg_migration
from facegate.store.pg import PostgresDatabase
from facegate.store.records import CollectionRecord
from facegate.store.store import FaceStore
from tests.conftest import BACKENDS
from tests.store.factory import face_id, new_face


def _store(database: StoreDatabase) -> FaceStore:
    return FaceStore(database)


def test_collection_ids_are_per_organisation(database: StoreDatabase) -> None:
    store = _store(database)
    a = store.create_collection("x", "arn:x", "m", org_id="org-a")
    b = store.create_collection("x", "arn:x", "m", org_id="org-b")  # not "already exists"
    assert a.uid != b.uid
    assert a.uid.startswith("col-")
    assert len(a.uid) == 36
    with pytest.raises(ResourceAlreadyExistsException, match="The collection id: x already"):
        store.create_collection("x", "arn:x", "m", org_id="org-a")
    assert store.get_collection("org-a", "x") == a
    assert store.get_collection("org-b", "x") == b
    assert store.find_collection("org-c", "x") is None
    with pytest.raises(ResourceNotFoundException, match=r"^The collection id: x does not exist$"):
        store.get_collection("org-c", "x")
    store.add_faces(a, [new_face("ignored", 1)])
    assert (store.counts(a), store.counts(b)) == ((1, 0), (0, 0))
    assert store.face_count(b) == 0
    assert [c.uid for _, c in store.list_collections(0, 10, "org-b")] == [b.uid]
    store.delete_collection(a)
    assert store.get_collection("org-b", "x") == b


def _writes(store: FaceStore, c: CollectionRecord) -> dict[str, Callable[[], Any]]:
    """Every write of the store on collection ``c``."""
    return {
        "add_faces": lambda: store.add_faces(c, [new_face("ignored", 50)]),
        "delete_faces": lambda: store.delete_faces(c, [face_id(2)]),
        "create_user": lambda: store.create_user(c, "u-new"),
        "delete_user": lambda: store.delete_user(c, "u1"),
        "associate": lambda: store.set_user_of_faces(c, "u1", [face_id(3)]),
        "disassociate": lambda: store.set_user_of_faces(c, None, [face_id(1)]),
        "tag": lambda: store.tag(c, {"k": "stale"}),
        "untag": lambda: store.untag(c, ["k"]),
        "delete_collection": lambda: store.delete_collection(c),
    }


def _populate(store: FaceStore, c: CollectionRecord) -> None:
    store.add_faces(c, [new_face("ignored", i) for i in range(1, 4)])
    store.create_user(c, "u1")
    store.set_user_of_faces(c, "u1", [face_id(1)])
    store.tag(c, {"k": "v"})


def _content(store: FaceStore, c: CollectionRecord) -> tuple[Any, ...]:
    faces = sorted((f.face_id, f.user_id) for _, f in store.list_faces(c, 0, 100))
    users = [u.user_id for _, u in store.list_users(c, 0, 100)]
    return faces, users, store.tags(c), len(store.index(c))


@pytest.mark.parametrize("successor_org", ["org-a", "org-b"])
def test_writes_resolved_before_a_deletion_never_reach_the_successor(
    db_factory: Callable[[], StoreDatabase], successor_org: str
) -> None:
    # Two servers on one store: the stale record is used on the server that did not delete.
    first, second = _store(db_factory()), _store(db_factory())
    stale = first.create_collection("x", "arn:x", "m", org_id="org-a")
    first.delete_collection(stale)
    successor = first.create_collection("x", "arn:x", "m", org_id=successor_org)
    _populate(first, successor)
    before = _content(second, successor)
    for name, write in _writes(second, stale).items():
        with pytest.raises(ResourceNotFoundException) as info:
            write()
        assert str(info.value) == "The collection id: x does not exist", name
        assert _content(second, successor) == before, name
    with pytest.raises(ResourceNotFoundException):
        second.refresh(stale)
    with pytest.raises(ResourceNotFoundException):
        second.index(stale)
    assert second.face_count(stale) == 0


def test_a_record_claiming_another_owner_is_refused(database: StoreDatabase) -> None:
    store = _store(database)
    real = store.create_collection("x", "arn:x", "m", org_id="org-b")
    _populate(store, real)
    before = _content(store, real)
    forged = replace(real, org_id="org-a")
    for name, write in _writes(store, forged).items():
        with pytest.raises(ResourceNotFoundException):
            write()
        assert _content(store, real) == before, name
    with pytest.raises(ResourceNotFoundException):
        store.refresh(forged)


def test_tokens_are_scoped_by_organisation_and_collection(database: StoreDatabase) -> None:
    repo = IdempotencyRepository(database)
    a_x, b_x = TokenScope("org-a", "col-1"), TokenScope("org-b", "col-2")
    a_new_x = TokenScope("org-a", "col-3")  # "x" deleted and created again
    repo.remember(a_x, "DeleteUser", "t", "digest-1", '{"answer": 1}', 100.0)
    assert repo.recall(a_x, "DeleteUser", "t", "digest-1", 101.0) == '{"answer": 1}'
    with pytest.raises(IdempotentParameterMismatchException):
        repo.recall(a_x, "DeleteUser", "t", "digest-2", 101.0)
    for scope in (b_x, a_new_x, TokenScope("org-b", "col-1")):
        assert repo.recall(scope, "DeleteUser", "t", "digest-2", 101.0) is None
        assert repo.recall(scope, "DeleteUser", "t", "digest-1", 101.0) is None
    assert repo.recall(a_x, "CreateUser", "t", "digest-1", 101.0) is None
    repo.remember(b_x, "DeleteUser", "t", "digest-9", '{"answer": 9}', 102.0)
    assert repo.recall(b_x, "DeleteUser", "t", "digest-9", 103.0) == '{"answer": 9}'
    assert repo.recall(a_x, "DeleteUser", "t", "digest-1", 103.0) == '{"answer": 1}'
    repo.remember(a_x, "DeleteUser", "t", "digest-5", '{"answer": 5}', 104.0)  # first one wins
    assert repo.recall(a_x, "DeleteUser", "t", "digest-1", 105.0) == '{"answer": 1}'


def test_tokens_expire_after_their_window_and_are_pruned(database: StoreDatabase) -> None:
    repo = IdempotencyRepository(database)
    assert repo.ttl_s == DEFAULT_TTL_S == 8 * 3600.0
    scope = TokenScope("org-a", "col-1")
    t0 = 1_000_000.0
    repo.remember(scope, "CreateUser", "t", "d1", "{}", t0)
    repo.remember(scope, "CreateUser", "old", "d1", "{}", t0 - DEFAULT_TTL_S)
    assert repo.recall(scope, "CreateUser", "t", "d1", t0 + DEFAULT_TTL_S - 1) == "{}"
    with pytest.raises(IdempotentParameterMismatchException):
        repo.recall(scope, "CreateUser", "t", "d2", t0 + DEFAULT_TTL_S - 1)
    # Expired: a new request, whose answer replaces the old record for a new window.
    later = t0 + DEFAULT_TTL_S
    assert repo.recall(scope, "CreateUser", "t", "d2", later) is None
    repo.remember(scope, "CreateUser", "t", "d2", '{"new": true}', later)
    assert repo.recall(scope, "CreateUser", "t", "d2", later + 1) == '{"new": true}'
    assert repo.prune(later) == 1  # "old" only
    assert repo.prune(later) == 0
    assert repo.prune(later + DEFAULT_TTL_S) == 1
    with database.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0] == 0
    with pytest.raises(ValueError, match="ttl_s"):
        IdempotencyRepository(database, ttl_s=0)


def _legacy_rows() -> list[str]:
    """A store as version 9 left it: a collection of organisation "local" with faces, a user, a
    tag, a feed row and a global ClientRequestToken record."""
    blob = "X'" + "00" * 512 + "'"
    face = str(uuid.UUID(int=7))
    return [
        "INSERT INTO organisations (org_id, name, sector, use_cases, created_at) "
        "VALUES ('local', 'Local', 'research', '[\"research\"]', 1)",
        "INSERT INTO collections (collection_id, arn, face_model_version, created_at, org_id) "
        "VALUES ('legacy', 'aws:rekognition:us-east-1:000000000000:collection/legacy', 'm', 1, "
        "'local')",
        "INSERT INTO faces (face_id, collection_id, image_id, image_sha256, box_left, box_top, "
        "box_width, box_height, confidence, model_version, descriptor, user_id, indexed_at) "
        f"VALUES ('{face}', 'legacy', 'i', 's', 0, 0, 1, 1, 99, 'm', {blob}, 'u1', 1)",
        "INSERT INTO users (collection_id, user_id, status, created_at) "
        "VALUES ('legacy', 'u1', 'ACTIVE', 1)",
        "INSERT INTO tags (collection_id, tag_key, tag_value) VALUES ('legacy', 'k', 'v')",
        "INSERT INTO face_changes (collection_id, face_id, op, created_at) "
        f"VALUES ('legacy', '{face}', 'add', 1)",
        "INSERT INTO idempotency (operation, token, params_sha256, response_json, created_at) "
        "VALUES ('CreateUser', 't', 'd', '{}', 1)",
        "INSERT INTO retention_deletions (face_id, collection_id, org_id, retain_until, "
        "deleted_at) VALUES ('f0', 'legacy', 'local', 1, 2)",
    ]


def _version_9(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> StoreDatabase:
    """A store migrated to version 9 holding :func:`_legacy_rows`, opened (and so migrated) by
    this facegate."""
    if backend == "sqlite":
        path = tmp_path / "old.sqlite3"
        conn = sqlite3.connect(path, isolation_level=None)
        for version, script in enumerate(MIGRATIONS[:9]):
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        for statement in _legacy_rows():
            conn.execute(statement)
        conn.close()
        return Database(path)
    dsn: str = request.getfixturevalue("pg_dsn")
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.execute(
            "CREATE TABLE facegate_schema (singleton BOOLEAN PRIMARY KEY DEFAULT TRUE "
            "CHECK (singleton), version BIGINT NOT NULL)"
        )
        for script in MIGRATIONS[:9]:
            for statement in pg_migration(script):
                pg.execute(statement.encode())
        pg.execute("INSERT INTO facegate_schema (singleton, version) VALUES (TRUE, 9)")
        for statement in _legacy_rows():
            pg.execute(statement.replace("X'", "'\\x").encode())
    return PostgresDatabase(dsn)


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_10_keeps_existing_collections(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db = _version_9(backend, tmp_path, request)
    try:
        assert db.schema_version == len(MIGRATIONS) >= 11
        store = FaceStore(db)
        legacy = store.get_collection("local", "legacy")
        assert (legacy.uid, legacy.org_id) == ("legacy", "local")  # its id is its identity
        assert store.counts(legacy) == (1, 1)
        assert store.tags(legacy) == {"k": "v"}
        assert len(store.index(legacy)) == 1
        assert store.user_face_ids(legacy, "u1") == [str(uuid.UUID(int=7))]
        with db.read() as conn:
            assert conn.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0] == 0
            deletion = conn.execute(
                "SELECT collection_id, collection_uid FROM retention_deletions"
            ).fetchone()
        assert tuple(deletion) == ("legacy", "legacy")
        [stats] = store.collection_stats()
        assert (stats.collection_id, stats.faces, stats.retention_deleted) == ("legacy", 1, 1)
        # Another organisation may now hold "legacy" too; a successor gets a new identity.
        other = store.create_collection("legacy", "arn", "m", org_id="org-b")
        assert other.uid != "legacy"
        store.delete_collection(legacy)
        again = store.create_collection("legacy", "arn", "m", org_id="local")
        assert again.uid not in ("legacy", other.uid)
        assert store.counts(again) == (0, 0)
    finally:
        db.close()
