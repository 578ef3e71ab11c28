"""Governance rows: migration from version 1, organisations, decisions, reviews, retention; on
SQLite and PostgreSQL (the ``database`` fixture) except the SQLite file migration."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from facegate.errors import (
    ConflictException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from facegate.store.db import Database, StoreDatabase
from facegate.store.decisions import DecisionRecord, DecisionRepository
from facegate.store.legacy_migrations import MIGRATIONS
from facegate.store.operators import OperatorRecord, OperatorRepository
from facegate.store.orgs import OrganisationRecord, OrganisationRepository
from facegate.store.records import NewFace
from facegate.store.reviews import PENDING, ReviewRecord, ReviewRepository
from facegate.store.store import FaceStore
from tests.store.factory import new_face


def _org(org_id: str = "nypd", sector: str = "law_enforcement") -> OrganisationRecord:
    return OrganisationRecord(
        org_id, "Police", sector, "US", "US-NY", "new york", ("investigation",), 1.0
    )


def test_version_1_database_moves_keys_and_collections_to_local(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute(
        "INSERT INTO access_keys (access_key_id, secret_sealed, created_at) VALUES ('K', x'00', 1)"
    )
    conn.execute(
        "INSERT INTO collections (collection_id, arn, face_model_version, created_at) "
        "VALUES ('c', 'arn', 'm', 1)"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    db = Database(path)
    assert db.schema_version == len(MIGRATIONS)
    local = OrganisationRepository(db).get("local")
    assert local is not None
    assert local.sector == "research"
    assert local.use_cases == ("research",)
    with db.read() as c:
        assert tuple(c.execute("SELECT org_id, use_case FROM access_keys").fetchone()) == (
            "local",
            "research",
        )
        assert c.execute("SELECT org_id FROM collections").fetchone()[0] == "local"


def test_fresh_database_has_no_local_org(database: StoreDatabase) -> None:
    assert OrganisationRepository(database).list() == []


def test_organisations(database: StoreDatabase) -> None:
    repo = OrganisationRepository(database)
    repo.insert(_org())
    with pytest.raises(ResourceAlreadyExistsException):
        repo.insert(_org())
    got = repo.require("nypd")
    assert got.region == "US-NY"
    assert got.active
    assert repo.set_use_cases("nypd", ("missing_persons", "investigation")).use_cases == (
        "investigation",
        "missing_persons",
    )
    assert repo.disable("nypd", 5.0)
    assert not repo.require("nypd").active
    assert not repo.disable("nobody", 5.0)
    with pytest.raises(ResourceNotFoundException):
        repo.require("nobody")


def test_decisions_round_trip(database: StoreDatabase) -> None:
    repo = DecisionRepository(database)
    record = DecisionRecord(
        "dec-1", 2.0, "KEY", "nypd", "SearchFaces", "c", "investigation", False,
        ("amazon-moratorium",), ("police moratorium",), (), {"max_candidates": None},
    )  # fmt: skip
    repo.insert(record)
    repo.set_review("dec-1", "rev-1")
    got = repo.get("dec-1")
    assert got is not None
    assert got.review_id == "rev-1"
    assert got.policy_ids == record.policy_ids
    assert [d.decision_id for d in repo.recent(10, org_id="nypd")] == ["dec-1"]
    assert repo.recent(10, org_id="other") == []


def _review(repo: ReviewRepository, required: int, expires: float = 100.0) -> str:
    review_id = "rev-" + uuid.uuid4().hex[:20]
    repo.insert(
        ReviewRecord(
            review_id,
            "dec-1",
            "SearchFacesByImage",
            "KEY",
            "nypd",
            "sha",
            required,
            PENDING,
            '{"FaceMatches": [1]}',
            1,
            1.0,
            expires,
        )
    )
    return review_id


def _operators(db: StoreDatabase) -> None:
    ops = OperatorRepository(db)
    for name in ("alice", "bob"):
        ops.insert(OperatorRecord(name, name.title(), "reviewer", 1.0), token_sha256=name * 8)


def test_review_needs_distinct_reviewers(database: StoreDatabase) -> None:
    db = database
    _operators(db)
    repo = ReviewRepository(db)
    review_id = _review(repo, required=2)
    assert repo.vote(review_id, "alice", "confirm", "looks right", 2.0).status == PENDING
    with pytest.raises(ConflictException, match="different person"):
        repo.vote(review_id, "alice", "confirm", "again", 3.0)
    released = repo.vote(review_id, "bob", "confirm", "agree", 4.0)
    assert released.status == "released"
    assert [v.operator_id for v in released.votes] == [
        "alice",
        "bob",
    ]
    with pytest.raises(ConflictException, match="released"):
        repo.vote(review_id, "bob", "reject", "", 5.0)


def test_rejection_discards_the_held_results(database: StoreDatabase) -> None:
    db = database
    _operators(db)
    repo = ReviewRepository(db)
    review_id = _review(repo, required=2)
    rejected = repo.vote(review_id, "alice", "reject", "not the same person", 2.0)
    assert rejected.status == "rejected"
    assert rejected.held_response == ""


def test_reviews_expire(database: StoreDatabase) -> None:
    db = database
    _operators(db)
    repo = ReviewRepository(db)
    review_id = _review(repo, required=1, expires=10.0)
    record = repo.get(review_id)
    assert record is not None
    assert record.status_at(9.0) == PENDING
    assert record.status_at(10.0) == "expired"
    with pytest.raises(ConflictException, match="expired"):
        repo.vote(review_id, "alice", "confirm", "", 11.0)
    assert repo.expire(11.0) == (review_id,)
    expired = repo.get(review_id)
    assert expired is not None
    assert expired.status == "expired"
    assert expired.held_response == ""
    with pytest.raises(ResourceNotFoundException):
        repo.vote("rev-none", "alice", "confirm", "", 1.0)


def _new_face(cid: str, i: int, retain_until: float | None, user: str | None = None) -> NewFace:
    consent = "consent-7" if retain_until else None
    return new_face(cid, i, user=user, consent_ref=consent, retain_until=retain_until)


def test_retention_sweep_deletes_due_faces_and_records_them(database: StoreDatabase) -> None:
    db = database
    store = FaceStore(db)
    c = store.create_collection("c", "arn", "m", org_id="acme")
    store.add_faces(c, [_new_face("c", 0, 50.0), _new_face("c", 1, 500.0), _new_face("c", 2, None)])
    store.create_user(c, "u1")
    store.set_user_of_faces(c, "u1", [str(uuid.UUID(int=1))])
    assert store.sweep_retention(10.0) == []
    swept = store.sweep_retention(100.0)
    assert [s.face.face_id for s in swept] == [str(uuid.UUID(int=1))]
    assert (swept[0].collection_id, swept[0].org_id) == ("c", "acme")
    assert swept[0].face.consent_ref == "consent-7"
    assert store.face_count(c) == 2
    remaining = {f.face_id for _, f in store.list_faces(c, 0, 10)}
    assert remaining == {str(uuid.UUID(int=2)), str(uuid.UUID(int=3))}
    with db.read() as conn:
        rows = conn.execute(
            "SELECT face_id, org_id, deleted_at FROM retention_deletions"
        ).fetchall()
    assert [tuple(r) for r in rows] == [(str(uuid.UUID(int=1)), "acme", 100.0)]
    assert FaceStore(db).face_count(c) == 2  # rebuilt from disk: the deletion stuck


def test_listing_by_status_finds_old_pending_reviews(database: StoreDatabase) -> None:
    db = database
    _operators(db)
    repo = ReviewRepository(db)
    old = _review(repo, required=1, expires=1e12)
    for _ in range(10):
        repo.vote(_review(repo, required=1, expires=1e12), "alice", "confirm", "ok", 2.0)
    late = _review(repo, required=1, expires=5.0)
    assert [r.review_id for r in repo.list("pending", 2, now=10.0)] == [old]
    assert [r.review_id for r in repo.list("expired", 5, now=10.0)] == [late]
    assert len(repo.list("released", 100, now=10.0)) == 10
    assert len(repo.list(None, 100, now=10.0)) == 12


def test_operators_from_before_migration_11_are_controlled_by_nobody(tmp_path: Path) -> None:
    """Accounts made before creators were recorded have created_by '' (not known): no rule
    can name their creator, so they count as independent (docs/governance.md says so)."""
    from facegate.store.legacy_migrations import MIGRATIONS as ALL

    path = tmp_path / "v9.sqlite3"
    conn = sqlite3.connect(path)
    for script in ALL[:9]:
        conn.executescript(script)
    conn.execute(
        "INSERT INTO operators (operator_id, display_name, role, token_sha256, created_at, "
        "password_hash) VALUES ('old', 'Old', 'reviewer', 'x', 1, 'scrypt$...')"
    )
    conn.execute("PRAGMA user_version = 9")
    conn.commit()
    conn.close()
    repo = OperatorRepository(Database(path))
    record = repo.get("old")
    assert record is not None
    assert (record.created_by, record.token_set_by, record.password_set_by) == ("", "", "")
    assert repo.control("old", 2.0, 7 * 86400.0).controllers == frozenset()
