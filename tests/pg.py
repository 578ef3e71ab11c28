"""PostgreSQL for tests: one server per test session, a fresh database per test.

The server is pgserver's (PostgreSQL binaries in a wheel, listening on a unix socket in its data
directory, no TCP port), started in a temporary directory on first use and stopped and deleted at
the end of the session. ``FACEGATE_TEST_POSTGRES_URL`` (a DSN with the right to CREATE DATABASE)
uses an existing server instead, e.g. in CI.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

EXTERNAL_URL_ENV = "FACEGATE_TEST_POSTGRES_URL"


def server_directory() -> Path:
    """A new directory for a pgserver data directory, outside pytest's temporary tree.

    Run as root, pgserver runs PostgreSQL as a ``pgserver`` user and opens the path's prefix to it
    (``chmod o+rx``). A pytest session starting meanwhile (another test run on the machine) resets
    ``/tmp/pytest-of-<user>`` to mode 0700; PostgreSQL then cannot reach its lock file and shuts
    itself down within a minute. A directory of its own under the system temporary directory
    avoids that; :meth:`PgCluster.stop` and :meth:`RestartablePg.close` delete it.
    """
    return Path(tempfile.mkdtemp(prefix="facegate-pg-")) / "data"


class PgCluster:
    """A PostgreSQL server for tests: :meth:`create` a database, :meth:`drop` it."""

    def __init__(self, admin_dsn: str, stop: Callable[[], None] | None = None) -> None:
        self.admin_dsn = admin_dsn
        self._stop = stop

    @classmethod
    def start(cls, directory: Path | None = None) -> PgCluster:
        """The server of ``FACEGATE_TEST_POSTGRES_URL`` if set, else a pgserver in
        ``directory`` (default: a new :func:`server_directory`; deleted by :meth:`stop`)."""
        external = os.environ.get(EXTERNAL_URL_ENV)
        if external:
            return cls(external)
        owned = directory is None
        directory = directory or server_directory()
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (pgserver reads it at import).
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

            server = get_server(directory, cleanup_mode="delete")

        def stop() -> None:
            server.cleanup()
            if owned:
                shutil.rmtree(directory.parent, ignore_errors=True)

        return cls(server.get_uri(), stop)

    def dsn(self, database: str) -> str:
        """The DSN of ``database`` on this server."""
        params = conninfo_to_dict(self.admin_dsn)
        params["dbname"] = database
        return make_conninfo("", **params)

    def create(self, template: str | None = None) -> str:
        """A new database with a unique name, empty or a copy of the database ``template``
        (which nobody may be connected to); returns its DSN."""
        name = "facegate_test_" + uuid.uuid4().hex[:12]
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(statement)
        return self.dsn(name)

    @staticmethod
    def database_of(dsn: str) -> str:
        """The database name in ``dsn``."""
        name = conninfo_to_dict(dsn)["dbname"]
        assert isinstance(name, str)
        return name

    def drop(self, dsn: str) -> None:
        """Drop the database of ``dsn`` (closing any connection still open to it)."""
        name = self.database_of(dsn)
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


class RestartablePg:
    """A pgserver of its own (in a new :func:`server_directory`) that a fault test may stop and
    start again (the session's :class:`PgCluster` is never disturbed). Always a local pgserver:
    a test that stops the server cannot use ``FACEGATE_TEST_POSTGRES_URL``'s."""

    def __init__(self) -> None:
        self._directory = server_directory()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs and XDG_RUNTIME_DIR, as above
            from pgserver.postgres_server import get_server

            self._server = get_server(self._directory, cleanup_mode="delete")
        self.cluster = PgCluster(self._server.get_uri())

    def stop(self, mode: str = "immediate") -> None:
        """Stop PostgreSQL with ``pg_ctl stop -m MODE``: ``immediate`` (the default) aborts every
        process without a checkpoint, as a crash would; the next start replays the WAL."""
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

        pg_ctl(
            ["-w", "-m", mode, "stop"], pgdata=self._server.pgdata, user=self._server.system_user
        )

    def start(self) -> None:
        """Start it again on the same data directory and socket (``-w``: ready on return)."""
        self._server.ensure_postgres_running()

    def close(self) -> None:
        """Stop it (if running) and delete its data directory."""
        self._server.cleanup()
        shutil.rmtree(self._directory.parent, ignore_errors=True)
