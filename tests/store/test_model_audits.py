"""Registered bias audits: stored, listed newest first, revoked once, and the active one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from facegate.store.db import Database, IntegrityError, StoreDatabase
from facegate.store.legacy_migrations import MIGRATIONS
from facegate.store.model_audits import ModelAuditRecord, ModelAuditRepository, new_audit_id


def audit(
    audit_id: str, at: float, model: str = "dlib-resnet-v1", sim: str = "sim-v0"
) -> ModelAuditRecord:
    return ModelAuditRecord(
        audit_id=audit_id,
        model_version=model,
        similarity_version=sim,
        report_sha256="0" * 64,
        summary_json="{}",
        dataset="lfw",
        registered_at=at,
        registered_by="cli",
        note="first audit",
    )


@pytest.fixture
def repo(database: StoreDatabase) -> ModelAuditRepository:
    return ModelAuditRepository(database)


def test_add_get_list(repo: ModelAuditRepository) -> None:
    repo.add(audit("ma-1", 10.0))
    repo.add(audit("ma-2", 20.0))
    got = repo.get("ma-1")
    assert got == audit("ma-1", 10.0)
    assert got is not None
    assert got.active
    assert repo.get("ma-missing") is None
    assert [r.audit_id for r in repo.list()] == ["ma-2", "ma-1"]
    with pytest.raises(IntegrityError):
        repo.add(audit("ma-1", 30.0))


def test_active_is_the_latest_unrevoked_of_those_versions(repo: ModelAuditRepository) -> None:
    assert repo.active("dlib-resnet-v1", "sim-v0") is None
    repo.add(audit("ma-old", 10.0))
    repo.add(audit("ma-new", 20.0))
    repo.add(audit("ma-flip", 30.0, model="dlib-resnet-v1+flip"))
    repo.add(audit("ma-sim1", 40.0, sim="sim-v1"))
    active = repo.active("dlib-resnet-v1", "sim-v0")
    assert active is not None
    assert active.audit_id == "ma-new"
    assert repo.revoke("ma-new", 50.0, "alice")
    active = repo.active("dlib-resnet-v1", "sim-v0")
    assert active is not None
    assert active.audit_id == "ma-old"
    assert repo.revoke("ma-old", 60.0, "bob")
    assert repo.active("dlib-resnet-v1", "sim-v0") is None
    flip = repo.active("dlib-resnet-v1+flip", "sim-v0")
    assert flip is not None
    assert flip.audit_id == "ma-flip"


def test_revoke_is_idempotent_and_keeps_the_first(repo: ModelAuditRepository) -> None:
    repo.add(audit("ma-1", 10.0))
    assert repo.revoke("ma-1", 20.0, "alice")
    assert repo.revoke("ma-1", 30.0, "bob")
    record = repo.get("ma-1")
    assert record is not None
    assert (record.revoked_at, record.revoked_by, record.active) == (20.0, "alice", False)
    assert not repo.revoke("ma-missing", 20.0, "alice")


def test_the_migration_adds_the_table_to_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:3]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    db = Database(path)
    assert db.schema_version == len(MIGRATIONS)
    ModelAuditRepository(db).add(audit("ma-1", 1.0))
    assert [r.audit_id for r in ModelAuditRepository(db).list()] == ["ma-1"]


def test_ids() -> None:
    first, second = new_audit_id(), new_audit_id()
    assert first.startswith("ma-")
    assert len(first) == 19
    assert first != second
