"""Shared fixtures: the samples folder, one engine per test session (models load once), and the
store backends (SQLite; PostgreSQL from one server per session, a fresh database per test: empty
for ``pg_dsn``, a copy of a database this facegate migrated once per session for ``db_factory``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from facegate.engine.core import EngineConfig, FaceEngine
from facegate.store.db import Database, StoreDatabase
from tests.pg import PgCluster

BACKENDS = ("sqlite", "postgres")
DbFactory = Callable[[], StoreDatabase]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (PROJECT_ROOT / ".." / "shared" / "data").resolve()
SAMPLES = SHARED_DATA / "samples"


@pytest.fixture(scope="session")
def samples() -> Path:
    """../shared/data/samples (real photos; see its MANIFEST.md)."""
    if not SAMPLES.is_dir():
        pytest.fail(f"sample images not found at {SAMPLES}: tests need ../shared/data")
    return SAMPLES


@pytest.fixture(scope="session")
def engine() -> FaceEngine:
    """One in-process engine with the default configuration."""
    return FaceEngine(EngineConfig())


@pytest.fixture(scope="session")
def sample_bytes(samples: Path) -> Callable[[str], bytes]:
    """Read a sample file by its path relative to the samples folder."""

    def read(name: str) -> bytes:
        return (samples / name).read_bytes()

    return read


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One PostgreSQL server for the session (started on first use; see tests/pg.py)."""
    cluster = PgCluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_dsn(pg_cluster: PgCluster) -> Iterator[str]:
    """The DSN of a fresh, empty database, dropped after the test."""
    dsn = pg_cluster.create()
    yield dsn
    pg_cluster.drop(dsn)


@pytest.fixture(scope="session")
def pg_migrated(pg_cluster: PgCluster) -> Iterator[str]:
    """The name of a database that this facegate's own migrations brought to the head, once per
    session, with no connection left open: the template of :func:`db_factory`'s PostgreSQL
    stores (copying it takes a tenth of migrating a new database). The migrations themselves
    are tested on empty databases (``pg_dsn``: tests/store/test_migrate.py, test_pg.py)."""
    from facegate.store.pg import PostgresDatabase

    dsn = pg_cluster.create()
    PostgresDatabase(dsn).close()
    yield PgCluster.database_of(dsn)
    pg_cluster.drop(dsn)


@pytest.fixture
def pg_store_dsn(pg_cluster: PgCluster, pg_migrated: str) -> Iterator[str]:
    """The DSN of a fresh store database already at the schema's head, dropped after the test."""
    dsn = pg_cluster.create(template=pg_migrated)
    yield dsn
    pg_cluster.drop(dsn)


@pytest.fixture(params=BACKENDS)
def db_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DbFactory]:
    """Opens handles on one store per test, on each backend: every call is another connection
    to the same store (another server, as far as the store can tell); all closed afterwards."""
    opened: list[StoreDatabase] = []
    if request.param == "postgres":
        from facegate.store.pg import PostgresDatabase

        dsn: str = request.getfixturevalue("pg_store_dsn")

        def connect() -> StoreDatabase:
            return PostgresDatabase(dsn)
    else:

        def connect() -> StoreDatabase:
            return Database(tmp_path / "db.sqlite3")

    def factory() -> StoreDatabase:
        db = connect()
        opened.append(db)
        return db

    yield factory
    for db in opened:
        db.close()


@pytest.fixture
def database(db_factory: DbFactory) -> StoreDatabase:
    """A store database with the schema applied, on each backend."""
    return db_factory()
