"""The SQLite database: one file under the data directory, WAL mode, versioned migrations.

Durability contract: every public write happens in one transaction (``Database.transaction``);
``synchronous=FULL`` in WAL mode makes a committed transaction survive a process kill and a power
cut, and an interrupted one leaves no trace. Callers acknowledge a request only after its
transaction has committed.

Concurrency: one connection, guarded by a lock (SQLite serialises writers anyway; the server calls
the store from a thread pool, so the event loop never waits on disk). Readers take the same lock;
each call is short (indexed lookups), bulk reads are paged.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Each entry migrates the schema from version i to i + 1 (PRAGMA user_version). Never edit a
# released entry: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE collections (
        collection_id      TEXT PRIMARY KEY,
        arn                TEXT NOT NULL,
        face_model_version TEXT NOT NULL,
        index_kind         TEXT NOT NULL DEFAULT 'exact',
        created_at         REAL NOT NULL
    );
    CREATE TABLE faces (
        seq                INTEGER PRIMARY KEY AUTOINCREMENT,
        face_id            TEXT NOT NULL UNIQUE,
        collection_id      TEXT NOT NULL REFERENCES collections(collection_id) ON DELETE CASCADE,
        image_id           TEXT NOT NULL,
        image_sha256       TEXT NOT NULL,
        external_image_id  TEXT,
        box_left           REAL NOT NULL,
        box_top            REAL NOT NULL,
        box_width          REAL NOT NULL,
        box_height         REAL NOT NULL,
        confidence         REAL NOT NULL,
        model_version      TEXT NOT NULL,
        descriptor         BLOB NOT NULL,
        user_id            TEXT,
        indexed_at         REAL NOT NULL
    );
    CREATE INDEX faces_by_collection ON faces(collection_id, face_id);
    CREATE INDEX faces_by_image ON faces(collection_id, image_sha256);
    CREATE INDEX faces_by_user ON faces(collection_id, user_id);
    CREATE TABLE users (
        collection_id      TEXT NOT NULL REFERENCES collections(collection_id) ON DELETE CASCADE,
        user_id            TEXT NOT NULL,
        status             TEXT NOT NULL,
        created_at         REAL NOT NULL,
        PRIMARY KEY (collection_id, user_id)
    );
    CREATE TABLE tags (
        collection_id      TEXT NOT NULL REFERENCES collections(collection_id) ON DELETE CASCADE,
        tag_key            TEXT NOT NULL,
        tag_value          TEXT NOT NULL,
        PRIMARY KEY (collection_id, tag_key)
    );
    CREATE TABLE idempotency (
        operation          TEXT NOT NULL,
        token              TEXT NOT NULL,
        params_sha256      TEXT NOT NULL,
        response_json      TEXT NOT NULL,
        created_at         REAL NOT NULL,
        PRIMARY KEY (operation, token)
    );
    CREATE TABLE access_keys (
        access_key_id      TEXT PRIMARY KEY,
        secret_sealed      BLOB NOT NULL,
        description        TEXT NOT NULL DEFAULT '',
        created_at         REAL NOT NULL,
        expires_at         REAL,
        revoked_at         REAL
    );
    """,
)


class Database:
    """A SQLite database file with the facegate schema applied."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA foreign_keys = ON")
        if self.path is not None:
            self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"database schema version {version} is newer than this facegate "
                    f"({len(MIGRATIONS)}); upgrade facegate"
                )
            for index in range(version, len(MIGRATIONS)):
                self._conn.execute("BEGIN IMMEDIATE")
                for statement in _statements(MIGRATIONS[index]):
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {index + 1}")
                self._conn.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT); rolled back on any exception."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads (a consistent snapshot per statement)."""
        with self._lock:
            yield self._conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (no semicolons inside our DDL strings)."""
    return [s.strip() for s in script.split(";") if s.strip()]
