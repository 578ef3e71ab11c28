"""PostgreSQL for tests: one server per test session, a fresh database per test.

The server is pgserver's (PostgreSQL binaries in a wheel, listening on a unix socket in its data
directory, no TCP port), started in a temporary directory on first use and stopped and deleted at
the end of the session. ``FACEGATE_TEST_POSTGRES_URL`` (a DSN with the right to CREATE DATABASE)
uses an existing server instead, e.g. in CI.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

EXTERNAL_URL_ENV = "FACEGATE_TEST_POSTGRES_URL"


class PgCluster:
    """A PostgreSQL server for tests: :meth:`create` a database, :meth:`drop` it."""

    def __init__(self, admin_dsn: str, stop: Callable[[], None] | None = None) -> None:
        self.admin_dsn = admin_dsn
        self._stop = stop

    @classmethod
    def start(cls, directory: Path) -> PgCluster:
        """The server of ``FACEGATE_TEST_POSTGRES_URL`` if set, else a pgserver in
        ``directory`` (created; deleted by :meth:`stop`)."""
        external = os.environ.get(EXTERNAL_URL_ENV)
        if external:
            return cls(external)
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (pgserver reads it at import).
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

            server = get_server(directory, cleanup_mode="delete")
        return cls(server.get_uri(), server.cleanup)

    def dsn(self, database: str) -> str:
        """The DSN of ``database`` on this server."""
        params = conninfo_to_dict(self.admin_dsn)
        params["dbname"] = database
        return make_conninfo("", **params)

    def create(self) -> str:
        """A new empty database with a unique name; returns its DSN."""
        name = "facegate_test_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn(name)

    def drop(self, dsn: str) -> None:
        """Drop the database of ``dsn`` (closing any connection still open to it)."""
        name = conninfo_to_dict(dsn)["dbname"]
        assert isinstance(name, str)
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
