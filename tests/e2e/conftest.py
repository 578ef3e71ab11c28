"""Live servers for the end-to-end tests: one per store backend and test session (models load
once per server).

``FACEGATE_TEST_BACKEND`` (``sqlite``, the default, or ``postgres``) chooses the store of the
session ``server`` and of the module servers built with ``store_env``; PostgreSQL means a fresh
database on the session's PostgreSQL server (``pg_cluster``, see tests/pg.py) passed to the
server as ``FACEGATE_DATABASE_URL``. The core boto3 suites (:data:`BOTH_BACKENDS`) run against
both backends whatever the switch says, so the default test command covers PostgreSQL too;
tests that read the SQLite file themselves build their own SQLite server.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS
from tests.e2e.server import LiveServer
from tests.pg import PgCluster

BACKEND_ENV = "FACEGATE_TEST_BACKEND"
# Modules (by file name) whose `server` tests run on every backend.
BOTH_BACKENDS = frozenset(
    {"test_collections_faces", "test_users_tags", "test_errors", "test_governance"}
)
StoreEnv = Callable[[], dict[str, str]]


def selected_backend() -> str:
    """The backend ``FACEGATE_TEST_BACKEND`` selects (``sqlite`` when unset)."""
    backend = os.environ.get(BACKEND_ENV, "sqlite").strip() or "sqlite"
    if backend not in BACKENDS:
        raise pytest.UsageError(f"{BACKEND_ENV}={backend!r}: expected one of {BACKENDS}")
    return backend


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise the session ``server`` by backend: both for the core suites, else the one
    ``FACEGATE_TEST_BACKEND`` selects (pytest groups the tests of each server together)."""
    if "server" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    backends = BACKENDS if module in BOTH_BACKENDS else (selected_backend(),)
    metafunc.parametrize("server", backends, indirect=True, scope="session")


def _store_env(
    request: pytest.FixtureRequest, backend: str
) -> Generator[dict[str, str], None, None]:
    """The server environment of a fresh store on ``backend`` (a PostgreSQL database is dropped
    when the generator is closed)."""
    if backend != "postgres":
        yield {}
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    dsn = cluster.create()
    try:
        yield {"FACEGATE_DATABASE_URL": dsn}
    finally:
        cluster.drop(dsn)


@pytest.fixture(scope="session")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    backend: str = getattr(request, "param", "sqlite")
    stores = _store_env(request, backend)
    live = LiveServer(tmp_path_factory.mktemp(f"e2e-{backend}") / "data", env=next(stores))
    live.start()
    try:
        yield live
    finally:
        live.stop()
        stores.close()


@pytest.fixture(scope="session")
def store_env(request: pytest.FixtureRequest) -> Iterator[StoreEnv]:
    """Call for the environment of a fresh store on the selected backend (for servers that
    modules build themselves); PostgreSQL databases are dropped at the end of the session."""
    backend = selected_backend()
    opened: list[Generator[dict[str, str], None, None]] = []

    def make() -> dict[str, str]:
        stores = _store_env(request, backend)
        opened.append(stores)
        return next(stores)

    yield make
    for stores in opened:
        stores.close()


@pytest.fixture
def rek(server: LiveServer) -> Any:
    """A boto3 Rekognition client signed with the server's bootstrap key."""
    return server.client()


@pytest.fixture
def image(samples: Path) -> Any:
    def read(name: str) -> dict[str, bytes]:
        return {"Bytes": (samples / name).read_bytes()}

    return read
