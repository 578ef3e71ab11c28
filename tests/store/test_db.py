"""The database boundary (store/db.py) on both backends: a constraint violation raises facegate's
own IntegrityError from the statement, subclassing no driver's error, with the driver's error as
its cause, and the transaction it ran in writes nothing."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from facegate.store.db import Database, IntegrityError, StoreDatabase


def _insert_org(conn_db: StoreDatabase, org_id: str) -> None:
    with conn_db.transaction() as conn:
        conn.execute(
            "INSERT INTO organisations (org_id, name, sector, created_at) VALUES (:o, :n, :s, :t)",
            {"o": org_id, "n": org_id.title(), "s": "ngo", "t": 1.0},
        )


def _org_ids(db: StoreDatabase) -> list[str]:
    with db.read() as conn:
        return [r["org_id"] for r in conn.execute("SELECT org_id FROM organisations ORDER BY 1")]


def test_a_duplicate_key_raises_facegate_s_integrity_error(database: StoreDatabase) -> None:
    _insert_org(database, "one")
    after_the_duplicate: list[bool] = []

    def write() -> None:
        with database.transaction() as conn:
            conn.execute(
                "INSERT INTO organisations (org_id, name, sector, created_at) "
                "VALUES (:o, :n, :s, :t)",
                {"o": "two", "n": "Two", "s": "ngo", "t": 1.0},
            )
            conn.execute(
                "INSERT INTO organisations (org_id, name, sector, created_at) "
                "VALUES (:o, :n, :s, :t)",
                {"o": "one", "n": "One", "s": "ngo", "t": 1.0},
            )
            after_the_duplicate.append(True)

    with pytest.raises(IntegrityError) as caught:
        write()
    assert after_the_duplicate == []  # raised by the statement, not at the commit
    assert not isinstance(caught.value, sqlite3.Error | psycopg.Error)
    driver = sqlite3.IntegrityError if isinstance(database, Database) else psycopg.IntegrityError
    assert isinstance(caught.value.__cause__, driver)
    assert _org_ids(database) == ["one"]  # "two" was rolled back with the transaction


def test_executemany_and_a_foreign_key_too(database: StoreDatabase) -> None:
    def write() -> None:
        with database.transaction() as conn:
            conn.executemany(  # operator_credentials.operator_id references operators
                "INSERT INTO operator_credentials (operator_id, credential, set_by, set_at) "
                "VALUES (:o, :c, :b, :t)",
                [{"o": "nobody", "c": "token", "b": "cli", "t": 1.0}],
            )

    with pytest.raises(IntegrityError):
        write()
    with database.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM operator_credentials").fetchone()[0] == 0


def test_the_error_is_caught_around_the_transaction(database: StoreDatabase) -> None:
    """What the repositories do: catch it outside the ``with`` and go on with the store."""
    _insert_org(database, "one")
    try:
        _insert_org(database, "one")
    except IntegrityError:
        pass
    else:
        pytest.fail("the duplicate was accepted")
    _insert_org(database, "two")
    assert _org_ids(database) == ["one", "two"]
