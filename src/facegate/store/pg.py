"""The PostgreSQL store backend: several ``facegate serve`` processes sharing one store.

:class:`PostgresDatabase` has the surface of :class:`facegate.store.db.Database` and runs the
repositories' statements: Core statements (``sqlalchemy.text()`` included, named parameters)
compiled for PostgreSQL (:mod:`facegate.store.core`); rows read by column name and by index
like ``sqlite3.Row``, and a
constraint violation raises :class:`facegate.store.db.IntegrityError` (psycopg's error its cause).

Schema: the Alembic revisions of :mod:`facegate.store.migrate` (a store from before Alembic is
first brought to version 13 by :mod:`facegate.store.legacy_migrations`). SQLite gives every table
an implicit ``rowid`` (insertion order, which the repositories use as a pagination cursor); here
every table without an integer key has an explicit identity column named ``rowid``. Migrations
run in one transaction under the store's advisory lock, on a connection of their own, so two
servers starting together do not race, and a schema newer than this facegate is refused. The
one-row table ``facegate_schema`` keeps the legacy version marker in step (13 at the baseline),
so a facegate from before Alembic refuses a store a later revision changed.

Writers: ``transaction()`` takes a transaction-scoped advisory lock (one key for the whole store)
before its first statement, so write transactions are serialised across every server exactly as
SQLite serialises them on one file. ``transaction(scope=uid)`` (a write confined to one collection,
used when the collection's vectors live in pgvector, :mod:`facegate.store.pgvectors`) takes that
store-wide key *shared* and an exclusive key of the collection: writes to different collections
run side by side, writes to one collection are serialised, and a store-wide writer still excludes
them all. The repositories were written for that model: they check and
then write (quotas, "already exists", review votes) inside one transaction and rely on no other
writer slipping in between; under PostgreSQL's default READ COMMITTED isolation, without the lock,
two servers could both pass a quota check. Correctness first: a single writer at a time costs
little next to the engine's work per request (tens of milliseconds per face).

Face vectors in pgvector are opt-in, store-wide and one-way
(:meth:`PostgresDatabase.enable_vectors`, run at start by a server with
``FACEGATE_VECTOR_INDEX=pgvector``): it creates the ``vector``
extension and the partitioned ``face_vectors`` table, then copies every existing face's
descriptor into it (one partition and HNSW index per collection), in one transaction under the
store's writer lock. From then on every server on the store keeps its vectors there, whatever
its own setting (:attr:`PostgresDatabase.has_vectors`), so servers sharing a store always agree.
Migration 13 marks the schema that may hold them, so an older facegate refuses such a store.

Reads: autocommit statements (each sees the latest committed state). Durability:
``synchronous_commit`` on (PostgreSQL's default, set explicitly), so a committed transaction is
on disk before ``transaction()`` returns. Bounded: ``statement_timeout`` (30 s by default) on the
connection, including the wait for the writer lock.

Concurrency inside one process: one connection guarded by a lock, as with SQLite; a broken
connection (server restart) is replaced before the next use.

The DSN may hold a password: it is never logged or put in an error message; use
:func:`redact_dsn` to show one.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
import sqlalchemy
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy import bindparam, select
from sqlalchemy.pool import NullPool

from facegate.store import legacy_migrations, migrate, pgvectors, schema
from facegate.store.core import POSTGRESQL, Statement
from facegate.store.db import (
    IntegrityError,
    Parameters,
    _named,
    as_statement,
    run_before_write,
)
from facegate.vectorspace import parse_space

# One advisory-lock key for the whole store ("facegate" in ASCII, as a signed 64-bit integer):
# held by every write transaction and by the migration.
STORE_LOCK_KEY = 0x6661636567617465
DEFAULT_STATEMENT_TIMEOUT_S = 30.0
log = logging.getLogger("facegate.store")


def scope_lock_key(scope: str) -> int:
    """The advisory-lock key of a write scope (a collection uid): 63 bits of its SHA-256."""
    return int.from_bytes(hashlib.sha256(b"facegate-scope:" + scope.encode()).digest()[:8]) >> 1


_SCHEMA_TABLE = """
CREATE TABLE IF NOT EXISTS facegate_schema (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    version   BIGINT NOT NULL
)
"""


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***`` (for logs and messages)."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable PostgreSQL DSN>"
    if "password" in params:
        params["password"] = "***"  # noqa: S105 (the mask, not a password)
    return make_conninfo("", **params)


def _scrub(message: str, dsn: str) -> str:
    """``message`` without the DSN's password (or the DSN itself, if it cannot be parsed)."""
    message = message.replace(dsn, redact_dsn(dsn))
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        password = None
    if password:
        message = message.replace(str(password), "***")
    return message


class PgRow:
    """A row readable like ``sqlite3.Row``: by column name (the first of duplicates) or index."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = tuple(values)

    def __getitem__(self, key: int | str, /) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Any:
    index: dict[str, int] = {}
    for position, column in enumerate(cursor.description or ()):
        index.setdefault(column.name, position)

    def make(values: Sequence[Any]) -> PgRow:
        return PgRow(index, values)

    return make


class PgCursor:
    """The part of a ``sqlite3.Cursor`` the repositories use."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall() if self._cursor.description else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class PgConnection:
    """A psycopg connection running the repositories' Core statements (compiled by
    :data:`facegate.store.core.POSTGRESQL`; a ``str`` is ``sqlalchemy.text()``, as
    :class:`facegate.store.db.Connection` says)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str | Statement, parameters: Parameters | None = None, /) -> PgCursor:
        cursor = self._conn.cursor(row_factory=_row_factory)
        query, values = POSTGRESQL.one(as_statement(sql), _named(parameters))
        try:
            cursor.execute(query, values)
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        return PgCursor(cursor)

    def executemany(self, sql: str | Statement, parameters: Iterable[Parameters], /) -> PgCursor:
        cursor = self._conn.cursor(row_factory=_row_factory)
        query, rows = POSTGRESQL.many(as_statement(sql), (_named(p) for p in parameters))
        if rows:
            try:
                cursor.executemany(query, rows)
            except psycopg.errors.IntegrityError as exc:
                raise IntegrityError(str(exc)) from exc
        return PgCursor(cursor)


class PostgresDatabase:
    """A PostgreSQL database (``dsn``: a ``postgresql://`` URL or key=value conninfo) with the
    facegate schema applied; the surface of :class:`facegate.store.db.Database`."""

    dialect = "postgresql"

    def __init__(self, dsn: str, statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S) -> None:
        self._dsn = dsn
        self._statement_timeout_ms = round(statement_timeout_s * 1000)
        self._lock = threading.RLock()
        self._closed = False
        self._conn = self._connect()
        try:
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresDatabase({redact_dsn(self._dsn)!r})"

    def _connect(self, autocommit: bool = True) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self._dsn, autocommit=autocommit, connect_timeout=10)
        except psycopg.Error as exc:
            # libpq may echo the connection string in its message (a malformed one, for
            # example): the message is scrubbed and the original error not chained.
            raise psycopg.OperationalError(
                f"cannot connect to PostgreSQL at {redact_dsn(self._dsn)}: "
                f"{_scrub(str(exc).strip(), self._dsn)}"
            ) from None
        conn.execute(f"SET statement_timeout = {self._statement_timeout_ms}")
        conn.execute("SET synchronous_commit = on")
        if not autocommit:
            conn.commit()  # the settings above are the session's, not a transaction's
        return conn

    def _connection(self) -> psycopg.Connection[Any]:
        """The connection, replaced first if it broke (called with the lock held)."""
        if self._closed:
            raise RuntimeError("the database is closed")
        if self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        return self._conn

    def _migrate(self) -> None:
        """Bring the schema to this facegate's head (:func:`facegate.store.migrate.upgrade`)
        in one transaction under the store's advisory lock, on a connection of its own: servers
        starting together apply each revision once, a failure leaves nothing. An up-to-date
        store is only read."""
        with self._lock:
            if self._up_to_date(self._connection()):
                return
        engine = sqlalchemy.create_engine(
            "postgresql+psycopg://",
            creator=lambda: self._connect(autocommit=False),
            poolclass=NullPool,
        )
        try:
            with engine.begin() as conn:
                raw = conn.connection.driver_connection
                assert isinstance(raw, psycopg.Connection)
                raw.execute("SELECT pg_advisory_xact_lock(%s)", (STORE_LOCK_KEY,))
                raw.execute(_SCHEMA_TABLE)
                raw.execute(
                    "INSERT INTO facegate_schema (singleton, version) VALUES (TRUE, 0) "
                    "ON CONFLICT (singleton) DO NOTHING"
                )
                version = self._version(raw)
                marker = migrate.upgrade(
                    conn, version, lambda v: legacy_migrations.pg_to_13(raw, v)
                )
                raw.execute("UPDATE facegate_schema SET version = %s", (marker,))
        finally:
            engine.dispose()

    @staticmethod
    def _up_to_date(conn: psycopg.Connection[Any]) -> bool:
        """Whether the store is stamped with this facegate's head revision (and its legacy
        marker says the same)."""
        row = conn.execute("SELECT to_regclass('alembic_version')").fetchone()
        if row is None or row[0] is None:
            return False
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        head = migrate.head()
        if [r[0] for r in rows] != [head]:
            return False
        marker = conn.execute("SELECT version FROM facegate_schema").fetchone()
        return marker is not None and int(marker[0]) == migrate.legacy_version(head)

    @staticmethod
    def _version(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT version FROM facegate_schema").fetchone()
        return 0 if row is None else int(row[0])

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._version(self._connection())

    @property
    def has_vectors(self) -> bool:
        """Whether the store keeps face vectors in pgvector (:meth:`enable_vectors` ran)."""
        with self._lock:
            row = self._connection().execute("SELECT to_regclass('face_vectors')").fetchone()
        return row is not None and row[0] is not None

    def enable_vectors(self) -> bool:
        """Keep this store's face vectors in pgvector from now on (see the module docstring);
        True if this call enabled them, False if they already were. Raises RuntimeError, and
        changes nothing, if PostgreSQL has no pgvector. Every server sharing the store then
        uses them; enable them while no server without this version writes to the store."""
        run_before_write()
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (STORE_LOCK_KEY,))
                exists = conn.execute("SELECT to_regclass('face_vectors')").fetchone()
                if exists is not None and exists[0] is not None:
                    return False
                try:
                    with conn.transaction():  # a savepoint: the error is ours to report
                        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                except psycopg.Error as exc:
                    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "error"
                    raise RuntimeError(
                        "FACEGATE_VECTOR_INDEX=pgvector: this PostgreSQL has no pgvector "
                        f"({reason})"
                    ) from None
                _fill_vectors(PgConnection(conn))
        log.info("face vectors are kept in pgvector from now on (store-wide)")
        return True

    @contextmanager
    def transaction(self, scope: str | None = None) -> Iterator[PgConnection]:
        """A write transaction holding the store's writer lock (``scope``: the store-wide lock
        shared and ``scope``'s own exclusively; see the module docstring); rolled back on any
        exception. The :data:`facegate.store.db.before_write` hook runs first."""
        run_before_write()
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                if scope is None:
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (STORE_LOCK_KEY,))
                else:
                    conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (STORE_LOCK_KEY,))
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (scope_lock_key(scope),))
                yield PgConnection(conn)

    def fetch_script(self, script: str) -> list[tuple[Any, ...]]:
        """The rows of the last statement of ``script``, several statements without parameters
        sent in one round trip (PostgreSQL runs them as one implicit transaction, so ``SET
        LOCAL`` in it applies to its own statements only). Callers build ``script`` from values
        they formatted themselves (numbers, identifiers of their own), never from user text."""
        with self._lock:
            cursor = self._connection().execute(script.encode())
            while cursor.nextset():
                pass
            return cursor.fetchall() if cursor.description else []

    @contextmanager
    def read(self) -> Iterator[PgConnection]:
        """The connection for reads (autocommit: each statement sees committed data)."""
        with self._lock:
            yield PgConnection(self._connection())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._conn.close()


_FACES_AFTER = (
    select(schema.faces.c.seq, schema.faces.c.face_id, schema.faces.c.descriptor)
    .where(
        schema.faces.c.collection_uid == bindparam("uid"), schema.faces.c.seq > bindparam("after")
    )
    .order_by(schema.faces.c.seq)
    .limit(10_000)
)


def _fill_vectors(conn: PgConnection) -> None:
    """Inside :meth:`PostgresDatabase.enable_vectors`' transaction: ``face_vectors`` and one
    partition per collection, filled from the stored descriptors, each with its HNSW graph
    built after the copy (faster than inserting into a graph)."""
    for statement in pgvectors.DDL:
        conn.execute(statement)
    collections = conn.execute(
        select(schema.collections.c.uid, schema.collections.c.descriptor_space)
    ).fetchall()
    for uid, space_text in collections:
        space = parse_space(space_text)
        pgvectors.create_partition(conn, uid, space, index=False)
        after = 0
        while True:
            rows = conn.execute(_FACES_AFTER, {"uid": uid, "after": after}).fetchall()
            if not rows:
                break
            vectors = np.frombuffer(b"".join(bytes(r[2]) for r in rows), dtype=np.float32)
            pgvectors.insert_vectors(
                conn, uid, space, [r[1] for r in rows], vectors.reshape(-1, space.dim)
            )
            after = rows[-1][0]
        pgvectors.build_index(conn, uid, space)
