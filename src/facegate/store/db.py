"""The SQLite database: one file under the data directory, WAL mode, Alembic migrations
(:mod:`facegate.store.migrate`).

Durability contract: every public write happens in one transaction (``Database.transaction``);
``synchronous=FULL`` in WAL mode makes a committed transaction survive a process kill and a power
cut, and an interrupted one leaves no trace. Callers acknowledge a request only after its
transaction has committed.

Concurrency: one connection, guarded by a lock (SQLite serialises writers anyway; the server calls
the store from a thread pool, so the event loop never waits on disk). Readers take the same lock;
each call is short (indexed lookups), bulk reads are paged.

Write hook: :data:`before_write` is called before every write transaction begins, in the context
(thread or task, see :mod:`contextvars`) that starts it. The request path sets it so that an
allowed request's intent record is in the audit chain before the store first changes
(:mod:`facegate.intent`); if the hook raises, the transaction never begins. Outside a request
(the CLI, the sweeper, the console) it is unset.

Files: the SQLite file is created with mode 0600 before SQLite opens it (SQLite gives its -wal
and -shm files the database file's mode), and its directory, if created here, with 0700,
whatever the process umask.

Backends: :class:`Database` (SQLite, the default) and :class:`facegate.store.pg.PostgresDatabase`
(several servers sharing one store) both satisfy :class:`StoreDatabase`; :func:`open_database`
picks one. Repositories run SQLAlchemy Core statements over :mod:`facegate.store.schema`
(compiled for the backend by :mod:`facegate.store.core`), or ``sqlalchemy.text()`` SQL with
named ``:name`` parameters where Core has no construct (pgvector's DDL and operators,
:mod:`facegate.store.pgvectors`), and read rows by column name or index; a constraint violation
raises facegate's :class:`IntegrityError` on either backend (each connection translates its
driver's error).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy
from sqlalchemy import text
from sqlalchemy.pool import StaticPool

from facegate.store import legacy_migrations, migrate
from facegate.store.core import SQLITE, Statement, StatementCompiler

DB_FILE_MODE = 0o600
DB_DIR_MODE = 0o700

before_write: ContextVar[Callable[[], None] | None] = ContextVar(
    "facegate_store_before_write", default=None
)
"""Called before each write transaction begins (see the module docstring)."""


def run_before_write() -> None:
    """Call the :data:`before_write` hook of the current context, if any (raises what it
    raises: the write must not begin)."""
    hook = before_write.get()
    if hook is not None:
        hook()


class IntegrityError(Exception):
    """A constraint violation (a duplicate key, a foreign key, NOT NULL, CHECK) on either backend:
    facegate's own class, raised by the statement that violated the constraint. Each backend's
    connection translates its driver's error (``sqlite3.IntegrityError``, psycopg's
    ``IntegrityError``), which is kept as ``__cause__``; this class subclasses neither, so code
    above the store depends on no driver. The transaction is rolled back when the error leaves
    it; PostgreSQL cannot go on with it anyway, so catch it around the transaction, not inside."""


class Row(Protocol):
    """A result row, read by column name or by index (``sqlite3.Row`` and the PostgreSQL rows)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    """What repositories use of a cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


Parameters = Mapping[str, Any]
"""The values of a statement's named parameters (``bindparam`` names, or ``:name`` in text)."""


class Connection(Protocol):
    """What repositories use of a connection: a Core statement (:mod:`facegate.store.core`),
    including ``sqlalchemy.text()``, with named parameters if any. A ``str`` is taken as
    ``text(sql)``: SQL both backends accept, parameters written ``:name`` (no ``?``
    placeholders, no positional values: :class:`TypeError`)."""

    def execute(self, sql: str | Statement, parameters: Parameters | None = ..., /) -> Cursor: ...

    def executemany(self, sql: str | Statement, parameters: Iterable[Parameters], /) -> Cursor: ...


class StoreDatabase(Protocol):
    """A store backend: :class:`Database` (SQLite) or ``pg.PostgresDatabase``.

    ``transaction()`` is a write transaction, serialised with every other writer of the store
    (also in other processes) and rolled back on any exception; ``read()`` gives a connection
    whose statements each see a consistent committed snapshot.
    """

    dialect: str

    @property
    def schema_version(self) -> int: ...

    def transaction(self, scope: str | None = None) -> AbstractContextManager[Connection]:
        """``scope``: a collection uid the transaction writes only within (a backend may let
        writes to different scopes run side by side; SQLite ignores it)."""
        ...

    def read(self) -> AbstractContextManager[Connection]: ...

    def close(self) -> None: ...


def open_database(database_path: Path | str, database_url: str | None = None) -> StoreDatabase:
    """The store named by ``database_url`` (``postgresql://...``: PostgreSQL, for several servers
    sharing one store) or else the SQLite file at ``database_path`` (the default)."""
    if database_url:
        from facegate.store.pg import PostgresDatabase  # psycopg only when asked for

        return PostgresDatabase(database_url)
    return Database(database_path)


class SqliteConnection:
    """The SQLite connection as the repositories see it (:class:`Connection`): ``sqlite3``'s,
    Core statements compiled by ``compiler``, a constraint violation raised as
    :class:`IntegrityError`."""

    def __init__(self, conn: sqlite3.Connection, compiler: StatementCompiler = SQLITE) -> None:
        self._conn = conn
        self._compiler = compiler

    def execute(
        self, sql: str | Statement, parameters: Parameters | None = None, /
    ) -> sqlite3.Cursor:
        query, values = self._compiler.one(as_statement(sql), _named(parameters))
        try:
            return self._conn.execute(query, values)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    def executemany(
        self, sql: str | Statement, parameters: Iterable[Parameters], /
    ) -> sqlite3.Cursor:
        query, rows = self._compiler.many(as_statement(sql), (_named(p) for p in parameters))
        if not rows:
            return self._conn.cursor()
        try:
            return self._conn.executemany(query, rows)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc


def as_statement(sql: str | Statement) -> Statement:
    """``sql`` as a statement: a ``str`` becomes ``sqlalchemy.text(sql)`` (``:name``
    parameters; a literal colon before a word is written ``\\:``)."""
    return text(sql) if isinstance(sql, str) else sql


def _named(parameters: object) -> Mapping[str, Any]:
    """A statement's parameters: named (a mapping) or none; positional values (the ``?`` style
    of the SQL text the store no longer has) raise :class:`TypeError`."""
    if parameters is None:
        return {}
    if isinstance(parameters, Mapping):
        return parameters
    raise TypeError(
        "store statements take named parameters (a mapping; ':name' in SQL text), "
        f"not {type(parameters).__name__}"
    )


class Database:
    """A SQLite database file with the facegate schema applied."""

    dialect = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        if self.path is not None:
            self.path.parent.mkdir(mode=DB_DIR_MODE, parents=True, exist_ok=True)
            _create_private(self.path)
        self._conn = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA foreign_keys = ON")
        if self.path is not None:
            _enable_wal(self._conn)
        self._conn.execute("PRAGMA synchronous = FULL")
        self._store_conn = SqliteConnection(self._conn)
        self._migrate()

    def _migrate(self) -> None:
        """Bring the schema to this facegate's head (:func:`facegate.store.migrate.upgrade`)
        in one write transaction (``BEGIN IMMEDIATE``): processes opening a file at the same
        moment apply each revision once (the others find it applied); a failure is rolled
        back. An up-to-date file is only read."""
        with self._lock:
            if self._up_to_date():
                return
            engine = sqlalchemy.create_engine(
                "sqlite://",
                creator=lambda: self._conn,
                poolclass=StaticPool,
                pool_reset_on_return=None,
            )
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                # SQLAlchemy's pysqlite dialect begins nothing itself: its transaction is the
                # BEGIN IMMEDIATE above, committed (or rolled back) as the block ends.
                with engine.begin() as conn:
                    version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
                    marker = migrate.upgrade(
                        conn, version, lambda v: legacy_migrations.sqlite_to_13(self._conn, v)
                    )
                    self._conn.execute(f"PRAGMA user_version = {marker}")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def _up_to_date(self) -> bool:
        """Whether the file is stamped with this facegate's head revision (and its legacy
        marker says the same)."""
        if not self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone():
            return False
        rows = self._conn.execute("SELECT version_num FROM alembic_version").fetchall()
        marker = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        head = migrate.head()
        return [r[0] for r in rows] == [head] and marker == migrate.legacy_version(head)

    @property
    def schema_version(self) -> int:
        """The legacy version marker (13 at the Alembic baseline, one more per later
        revision: :func:`facegate.store.migrate.legacy_version`)."""
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self, scope: str | None = None) -> Iterator[SqliteConnection]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT); rolled back on any exception.
        ``scope`` is ignored: SQLite has one writer."""
        run_before_write()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._store_conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[SqliteConnection]:
        """The connection for reads (a consistent snapshot per statement)."""
        with self._lock:
            yield self._store_conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (SQLite would create it 0644 less
    the umask, and its -wal and -shm files with the same mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DB_FILE_MODE))


def _enable_wal(conn: sqlite3.Connection, timeout_s: float = 30.0) -> None:
    """Switch the file to WAL mode. On a new file opened by several processes at once SQLite may
    refuse the switch with "database is locked" at once, without waiting (the busy timeout does
    not cover it): retried every few milliseconds for up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
