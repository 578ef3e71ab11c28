"""The store's schema migrations: Alembic revisions (``store/migrations/versions/``), run at open
inside the store's writer lock, with a bridge for stores created before Alembic.

:func:`upgrade` is called by each backend (``db.Database``, ``pg.PostgresDatabase``) inside one
write transaction that holds the store's writer lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL the
store's advisory lock), on a SQLAlchemy connection over that transaction, so servers opening
one store together apply each revision once and a failure leaves nothing. Three cases:

* a new store (no ``alembic_version`` table, legacy version 0): Alembic upgrades it to the head,
  the baseline revision ``0013_baseline`` creating the tables;
* a store created before Alembic (legacy version 1-13 in ``PRAGMA user_version`` /
  ``facegate_schema``): :mod:`facegate.store.legacy_migrations` brings it to 13, it is stamped
  ``0013_baseline``, then upgraded to the head; its rows are kept;
* a stamped store: upgraded to the head.

A store this facegate cannot know is refused (``RuntimeError`` "database schema version ... is
newer than this facegate"): an Alembic revision not among this facegate's scripts, or a legacy
marker above the one that stands for the store's revision (above 13 without a stamp).

The legacy marker is kept in step: the backend writes :func:`legacy_version` of the head
(13 at the baseline, one more per later revision) back to ``user_version`` /
``facegate_schema``, so a facegate from before Alembic refuses a store that a later revision
changed, with the error it always gave. Facegate reads no ``alembic.ini`` and fetches nothing.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from facegate.store.legacy_migrations import LEGACY_HEAD

SCRIPTS = Path(__file__).parent / "migrations"
"""The Alembic script directory, shipped inside the package."""
BASELINE = "0013_baseline"
"""The revision that creates the schema of legacy version 13."""
_ALEMBIC = threading.RLock()
"""Alembic's ``context`` and ``op`` are process-wide proxies, and its script loading imports
modules by name: one migration (or load) at a time in a process. Taken only after the store's
own writer lock, never before, so it cannot deadlock with it."""


def config(connection: sqlalchemy.Connection | None = None) -> Config:
    """An Alembic configuration over :data:`SCRIPTS` (no file), running on ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def _revisions() -> tuple[str, ...]:
    return tuple(
        reversed([s.revision for s in ScriptDirectory.from_config(config()).walk_revisions()])
    )


def revisions() -> tuple[str, ...]:
    """This facegate's revisions, oldest first (read once per process)."""
    with _ALEMBIC:
        return _revisions()


def head() -> str:
    return revisions()[-1]


def legacy_version(revision: str) -> int:
    """The legacy version number that stands for ``revision`` (13 for the baseline)."""
    return LEGACY_HEAD + revisions().index(revision)


def current(connection: sqlalchemy.Connection) -> str | None:
    """The store's Alembic revision (None: not stamped)."""
    return MigrationContext.configure(connection).get_current_revision()


def _newer(found: object) -> RuntimeError:
    return RuntimeError(
        f"database schema version {found} is newer than this facegate ({head()}); upgrade facegate"
    )


def upgrade(connection: sqlalchemy.Connection, legacy: int, to_13: Callable[[int], None]) -> int:
    """Bring the store to the head inside the caller's transaction (see the module docstring);
    ``legacy``: the store's legacy version (0 for a new store), ``to_13``: the backend's legacy
    migrations from a version to 13. Returns the legacy marker to write back."""
    with _ALEMBIC:
        return _upgrade(connection, legacy, to_13)


def _upgrade(connection: sqlalchemy.Connection, legacy: int, to_13: Callable[[int], None]) -> int:
    revision = current(connection)
    if revision is None:
        if legacy > LEGACY_HEAD:
            raise _newer(legacy)
        if legacy > 0:
            to_13(legacy)
            command.stamp(config(connection), BASELINE)
    elif revision not in revisions():
        raise _newer(revision)
    elif legacy > legacy_version(revision):  # the marker says a later facegate was here
        raise _newer(legacy)
    if current(connection) != head():
        command.upgrade(config(connection), "head")
    return legacy_version(head())
