"""SQLAlchemy Core statements on the store's own connections.

Repositories build statements over :mod:`facegate.store.schema` (``select``, ``insert``,
``update``, ``delete``) and run them through the connection they already hold
(``conn.execute(statement)``, ``conn.executemany(statement, rows)``): transactions, the writer
lock, ``before_write`` and error translation stay where they are (:mod:`facegate.store.db`,
:mod:`facegate.store.pg`). This module turns a statement into the backend's SQL text and
parameters; rows come back from the driver as before (``sqlite3.Row`` / ``pg.PgRow``, read by
column name or index). No SQLAlchemy ``Engine`` is involved.

Compilation is cached per statement *shape*: SQLAlchemy's cache key of a statement leaves out
its literal values, so ``select(tags).where(tags.c.collection_uid == uid)`` compiles once per
dialect whatever ``uid`` is, and later calls only extract the values. The cost that remains per
call is building the statement and its key (tens of microseconds); a statement built once at
module level with named :func:`sqlalchemy.bindparam`\\ s (values given at execute time) skips
that too (its key is memoised on the object). ``bench/store_core.py`` measures both.

Contract and limits:

* Values are passed to the driver as they are: the column types' Python-side processors are not
  applied (the schema uses none that need one: ``Text``, ``Double``, ``BigInteger``,
  ``LargeBinary``), and result values are the driver's.
* An expanding ``IN`` (``column.in_(values)``) is cached like any other shape; its values are
  rendered into the SQL text per call as SQLAlchemy's own execution does
  (``Compiled._process_parameters_for_postcompile``, an internal method of SQLAlchemy 2.x that
  ``tests/store/test_core.py`` exercises on both backends). In ``executemany`` every row must
  expand to the same SQL (``ValueError`` otherwise).
* ``upsert``: ``INSERT ... ON CONFLICT`` is dialect-specific in SQLAlchemy;
  :func:`insert_for` returns the backend's ``insert`` (both have ``on_conflict_do_update`` /
  ``on_conflict_do_nothing`` and ``.excluded``).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.compiler import Compiled
from sqlalchemy.sql.elements import ClauseElement

Statement = ClauseElement
"""A Core statement (``Select``, ``Insert``, ``Update``, ``Delete``, ``TextClause``...)."""

CACHE_SIZE = 1000
"""Compiled shapes kept per dialect; the cache is emptied when full (the store has about 150
statement shapes, so it never is unless statements embed varying structure)."""


def sqlite_dialect() -> Dialect:
    """SQLite with named parameters (``:name``), which ``sqlite3`` accepts with a dict."""
    return sqlite.dialect(paramstyle="named")


def postgresql_dialect() -> Dialect:
    """PostgreSQL as SQLAlchemy's psycopg 3 dialect compiles it (``%(name)s``)."""
    return pg_psycopg.dialect()  # type: ignore[no-untyped-call]


def insert_for(dialect: str, table: Table) -> sqlite.Insert | postgresql.Insert:
    """The ``INSERT`` of ``table`` for a store's ``dialect`` (``StoreDatabase.dialect``), with
    the backend's ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unknown store dialect {dialect!r}")


class StatementCompiler:
    """Compiles statements for one dialect into (SQL text, parameters), caching each shape.
    Thread-safe (a lock around the cache; compiling happens outside it)."""

    def __init__(self, dialect: Dialect, capacity: int = CACHE_SIZE) -> None:
        self.dialect = dialect
        self.capacity = capacity
        self._cache: dict[Hashable, tuple[Compiled, bool]] = {}
        self._lock = threading.Lock()
        self.compilations = 0
        """How many times a statement was compiled (a cache miss): for tests and benchmarks."""

    def _compiled(
        self, statement: Statement, column_keys: tuple[str, ...] | None
    ) -> tuple[Any, Any, bool]:
        """(compiled form, the statement's extracted values or None, whether it has an
        expanding ``IN`` to render per call)."""
        key = statement._generate_cache_key()
        if key is None:  # not cacheable (SQLAlchemy says so): compiled every time
            compiled = self._compile(statement, column_keys, None)
            return compiled, None, "POSTCOMPILE" in compiled.string
        slot = (key.key, column_keys)
        entry = self._cache.get(slot)
        if entry is None:
            compiled = self._compile(statement, column_keys, key)
            entry = (compiled, "POSTCOMPILE" in compiled.string)
            with self._lock:
                if len(self._cache) >= self.capacity:
                    self._cache.clear()
                self._cache[slot] = entry
        return entry[0], key.bindparams, entry[1]

    def _compile(
        self, statement: Statement, column_keys: tuple[str, ...] | None, key: Any
    ) -> Compiled:
        self.compilations += 1
        return statement.compile(
            dialect=self.dialect,
            column_keys=list(column_keys) if column_keys is not None else None,
            cache_key=key,
        )

    @staticmethod
    def _bound(
        compiled: Any, extracted: Any, expanding: bool, parameters: Mapping[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        """The SQL text and parameters of one execution of ``compiled``."""
        params = compiled.construct_params(
            params=dict(parameters) if parameters else None, extracted_parameters=extracted
        )
        if not expanding:
            return str(compiled.string), params
        expanded = compiled._process_parameters_for_postcompile(params)
        return str(expanded.statement), dict(expanded.parameters)

    def one(
        self, statement: Statement, parameters: Mapping[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """The SQL text and parameters of one execution; ``parameters`` give the values of the
        statement's named ``bindparam``\\ s (and of an ``INSERT``'s columns, if it names
        none itself)."""
        column_keys = tuple(parameters) if parameters else None
        compiled, extracted, expanding = self._compiled(statement, column_keys)
        return self._bound(compiled, extracted, expanding, parameters)

    def many(
        self, statement: Statement, rows: Iterable[Mapping[str, Any]]
    ) -> tuple[str, list[dict[str, Any]]]:
        """The SQL text and one parameter dict per row for an ``executemany``; every row has
        the same keys. No rows: ``("", [])`` (the connection then runs nothing)."""
        rows = list(rows)
        if not rows:
            return "", []
        column_keys = tuple(rows[0])
        compiled, extracted, expanding = self._compiled(statement, column_keys)
        bound = [self._bound(compiled, extracted, expanding, row) for row in rows]
        sql = bound[0][0]
        if expanding and any(text != sql for text, _ in bound):
            raise ValueError("executemany: the rows expand an IN list to different lengths")
        return sql, [params for _, params in bound]


SQLITE = StatementCompiler(sqlite_dialect())
"""The compiler (and cache) of every SQLite store in the process."""
POSTGRESQL = StatementCompiler(postgresql_dialect())
"""The compiler (and cache) of every PostgreSQL store in the process."""
