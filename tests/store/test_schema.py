"""store/schema.py against the schema the migrations produce, on both backends: the declared
tables, columns, nullability, primary keys and named indexes must be what a freshly migrated
store holds (reflected with ``sqlalchemy.inspect`` over a separate connection)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy
from sqlalchemy import Engine, Table

from facegate.store import schema
from facegate.store.db import Database
from facegate.store.pg import PostgresDatabase
from tests.conftest import BACKENDS

PGVECTOR_TABLES = {"face_vectors", "face_vector_counts"}
"""Created at run time by store/pgvectors.py, outside the declared metadata (docs/store.md)."""
BOOKKEEPING = {"facegate_schema", "sqlite_sequence", "alembic_version"}
"""The PostgreSQL version marker and SQLite's AUTOINCREMENT counters: not the store's data."""


@pytest.fixture(params=BACKENDS)
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """(backend, an Engine over a store just migrated by today's code)."""
    if request.param == "postgres":
        dsn: str = request.getfixturevalue("pg_dsn")
        PostgresDatabase(dsn).close()
        engine = sqlalchemy.create_engine(
            "postgresql+psycopg://", creator=lambda: psycopg.connect(dsn)
        )
    else:
        path = tmp_path / "db.sqlite3"
        Database(path).close()
        engine = sqlalchemy.create_engine("sqlite://", creator=lambda: sqlite3.connect(path))
    yield request.param, engine
    engine.dispose()


def declared_columns(table: Table, backend: str) -> list[str]:
    """The columns the backend holds, in order: SQLite's rowid is implicit; PostgreSQL's is a
    real column, the first (pg_migration adds it at the top of CREATE TABLE)."""
    columns = [c.name for c in table.columns if not c.system]
    if backend == "postgres" and "rowid" in table.c:
        columns.insert(0, "rowid")
    return columns


def test_tables_match(migrated: tuple[str, Engine]) -> None:
    _, engine = migrated
    live = set(sqlalchemy.inspect(engine).get_table_names()) - BOOKKEEPING - PGVECTOR_TABLES
    assert live == set(schema.metadata.tables)
    assert len(live) == 20


def test_columns_nullability_and_keys_match(migrated: tuple[str, Engine]) -> None:
    backend, engine = migrated
    inspector = sqlalchemy.inspect(engine)
    for name, table in schema.metadata.tables.items():
        live = inspector.get_columns(name)
        assert [c["name"] for c in live] == declared_columns(table, backend), name
        primary_key = inspector.get_pk_constraint(name)["constrained_columns"]
        assert primary_key == [c.name for c in table.primary_key.columns], name
        for column in live:
            declared = table.c[column["name"]]
            if declared.primary_key and backend == "sqlite":
                # SQLite lets a non-INTEGER primary key hold NULL unless it says NOT NULL;
                # the store never writes one (every insert names the key).
                continue
            assert column["nullable"] == declared.nullable, (name, column["name"])


def test_indexes_match(migrated: tuple[str, Engine]) -> None:
    _, engine = migrated
    inspector = sqlalchemy.inspect(engine)
    for name, table in schema.metadata.tables.items():
        live: dict[str, tuple[tuple[Any, ...], bool]] = {
            str(index["name"]): (tuple(index["column_names"]), bool(index["unique"]))
            for index in inspector.get_indexes(name)
            if "duplicates_constraint" not in index
        }
        declared = {
            str(index.name): (tuple(c.name for c in index.columns), bool(index.unique))
            for index in table.indexes
        }
        assert live == declared, name


def test_foreign_keys_match(migrated: tuple[str, Engine]) -> None:
    _, engine = migrated
    inspector = sqlalchemy.inspect(engine)
    for name, table in schema.metadata.tables.items():
        live = sorted(
            (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
            for fk in inspector.get_foreign_keys(name)
        )
        declared = sorted(
            ((fk.parent.name,), fk.column.table.name, (fk.column.name,))
            for fk in table.foreign_keys
        )
        assert live == declared, name


def test_rowid_selectable_on_both_backends(migrated: tuple[str, Engine]) -> None:
    """Every table's declared rowid can be selected (SQLite's implicit one, PostgreSQL's
    identity column), so a pagination cursor is written once for both."""
    _, engine = migrated
    with engine.connect() as conn:
        for table in schema.metadata.tables.values():
            if "rowid" in table.c:
                conn.execute(sqlalchemy.select(table.c.rowid).limit(1)).fetchall()
