"""store/migrate.py on both backends: a new store is created by the Alembic baseline; a store
made by the legacy migrations (versions 10, 12, 13) opens with its rows and is stamped; a store
from a newer facegate is refused; the baseline and the legacy scripts build the same schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy

from facegate.store import migrate
from facegate.store.db import Database, StoreDatabase
from facegate.store.legacy_migrations import LEGACY_HEAD, MIGRATIONS, _statements, pg_migration
from facegate.store.orgs import OrganisationRepository
from facegate.store.pg import PostgresDatabase
from tests.conftest import BACKENDS


class Store:
    """One store location on a backend, openable by this facegate or written raw."""

    def __init__(self, backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.backend = backend
        self.path = tmp_path / "store.sqlite3"
        self.dsn: str = request.getfixturevalue("pg_dsn") if backend == "postgres" else ""

    def open(self) -> StoreDatabase:
        return PostgresDatabase(self.dsn) if self.backend == "postgres" else Database(self.path)

    def raw(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run ``sql`` outside facegate (autocommit); its rows."""
        if self.backend == "postgres":
            with psycopg.connect(self.dsn, autocommit=True) as pg:
                cursor = pg.execute(sql.replace("?", "%s").encode(), params)
                return cursor.fetchall() if cursor.description else []
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def legacy(self, version: int) -> None:
        """Create the store as a facegate before Alembic left it at ``version``."""
        if self.backend == "postgres":
            with psycopg.connect(self.dsn, autocommit=True) as pg, pg.transaction():
                pg.execute(
                    "CREATE TABLE facegate_schema (singleton BOOLEAN PRIMARY KEY DEFAULT TRUE "
                    "CHECK (singleton), version BIGINT NOT NULL)"
                )
                for script in MIGRATIONS[:version]:
                    for statement in pg_migration(script):
                        pg.execute(statement.encode())
                pg.execute("INSERT INTO facegate_schema VALUES (TRUE, %s)", (version,))
            return
        conn = sqlite3.connect(self.path, isolation_level=None)
        for script in MIGRATIONS[:version]:
            for statement in _statements(script):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
        conn.close()

    def marker(self) -> int:
        if self.backend == "postgres":
            return int(self.raw("SELECT version FROM facegate_schema")[0][0])
        return int(self.raw("PRAGMA user_version")[0][0])

    def engine(self) -> sqlalchemy.Engine:
        if self.backend == "postgres":
            dsn = self.dsn
            return sqlalchemy.create_engine(
                "postgresql+psycopg://", creator=lambda: psycopg.connect(dsn)
            )
        path = self.path
        return sqlalchemy.create_engine("sqlite://", creator=lambda: sqlite3.connect(path))


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return Store(request.param, tmp_path, request)


def _stamp(store: Store) -> list[str]:
    return [r[0] for r in store.raw("SELECT version_num FROM alembic_version")]


def test_a_new_store_is_created_by_the_baseline(store: Store) -> None:
    db = store.open()
    assert db.schema_version == LEGACY_HEAD == migrate.legacy_version(migrate.BASELINE)
    db.close()
    assert _stamp(store) == [migrate.head()]
    assert migrate.revisions()[0] == migrate.BASELINE
    assert store.raw("SELECT singleton, pruned_through FROM feed_floor") == [(1, 0)]
    again = store.open()  # up to date: opened without a migration
    assert again.schema_version == store.marker() == LEGACY_HEAD
    again.close()


@pytest.mark.parametrize("version", [10, 12, 13])
def test_a_legacy_store_opens_with_its_rows_and_is_stamped(store: Store, version: int) -> None:
    store.legacy(version)
    store.raw(
        "INSERT INTO organisations (org_id, name, sector, created_at) VALUES (?, ?, ?, ?)",
        "acme",
        "Acme",
        "ngo",
        1.5,
    )
    assert _has_no_stamp(store)
    db = store.open()
    try:
        acme = OrganisationRepository(db).get("acme")
        assert acme is not None
        assert (acme.name, acme.sector, acme.created_at) == (
            "Acme",
            "ngo",
            1.5,
        )
        assert db.schema_version == LEGACY_HEAD
    finally:
        db.close()
    assert _stamp(store) == [migrate.head()]
    assert store.marker() == migrate.legacy_version(migrate.head())


def _has_no_stamp(store: Store) -> bool:
    if store.backend == "postgres":
        return store.raw("SELECT to_regclass('alembic_version')") == [(None,)]
    return store.raw("SELECT name FROM sqlite_master WHERE name = 'alembic_version'") == []


def test_a_store_at_an_unknown_revision_is_refused(store: Store) -> None:
    store.open().close()
    store.raw("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    with pytest.raises(RuntimeError, match="0099_from_the_future is newer than this facegate"):
        store.open()
    assert _stamp(store) == ["0099_from_the_future"]  # refused, not touched


def test_a_legacy_store_newer_than_13_is_refused(store: Store) -> None:
    store.legacy(LEGACY_HEAD)
    if store.backend == "postgres":
        store.raw("UPDATE facegate_schema SET version = 14")
    else:
        store.raw("PRAGMA user_version = 14")
    with pytest.raises(RuntimeError, match="version 14 is newer than this facegate"):
        store.open()
    assert _has_no_stamp(store)


def _shape(engine: sqlalchemy.Engine) -> dict[str, Any]:
    """Tables, columns (name, nullability), primary keys, indexes and foreign keys."""
    inspector = sqlalchemy.inspect(engine)
    shape: dict[str, Any] = {}
    sqlite = engine.dialect.name == "sqlite"
    for name in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        key = inspector.get_pk_constraint(name)["constrained_columns"]
        shape[name] = (
            # SQLite lets a non-INTEGER primary key hold NULL unless it says NOT NULL (the
            # legacy scripts do not, the baseline does; the store never writes one)
            [
                (c["name"], c["nullable"] and not (sqlite and c["name"] in key))
                for c in inspector.get_columns(name)
            ],
            key,
            sorted(
                (i["name"], tuple(i["column_names"]), i["unique"])
                for i in inspector.get_indexes(name)
            ),
            sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in inspector.get_foreign_keys(name)
            ),
        )
    engine.dispose()
    return shape


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_baseline_builds_what_the_legacy_migrations_built(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    legacy = Store(backend, tmp_path / "legacy", request)
    (tmp_path / "legacy").mkdir()
    legacy.legacy(LEGACY_HEAD)
    baseline = Store(backend, tmp_path / "baseline", request)
    (tmp_path / "baseline").mkdir()
    if backend == "postgres":  # the fixture gives one database per test: a second one
        cluster = request.getfixturevalue("pg_cluster")
        baseline.dsn = cluster.create()
    baseline.open().close()
    assert _shape(baseline.engine()) == _shape(legacy.engine())
    if backend == "postgres":
        request.getfixturevalue("pg_cluster").drop(baseline.dsn)
