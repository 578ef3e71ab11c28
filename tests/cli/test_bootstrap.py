"""First start: several servers bootstrapping one empty store at the same moment create exactly
one ``local`` organisation and one bootstrap key, without an error; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from facegate.admin.service import AdminService
from facegate.cli.serve import CREDENTIALS_FILE, bootstrap_key
from facegate.config import Settings
from facegate.store.db import StoreDatabase, open_database
from facegate.store.keys import KeyRecord
from tests.conftest import BACKENDS

SERVERS = 4


@pytest.fixture(params=BACKENDS)
def server_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[int], Settings]:
    """Settings of server ``i`` of several sharing one store. SQLite: one data directory (the
    store is its file; the master key is created on first start). PostgreSQL: a data directory
    each and one master key given to all, as docs/scaling.md asks."""
    if request.param == "postgres":
        dsn: str = request.getfixturevalue("pg_dsn")
        master = Fernet.generate_key().decode("ascii")

        def settings(i: int) -> Settings:
            data_dir = tmp_path / f"server-{i}"
            data_dir.mkdir(exist_ok=True)  # as `facegate serve` does before bootstrapping
            return Settings(data_dir=data_dir, database_url=dsn, master_key=master)

        return settings
    return lambda i: Settings(data_dir=tmp_path / "shared")


@pytest.fixture
def lockstep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold every server after it found the store without keys until all have: the worst
    interleaving of simultaneous first starts, made certain rather than left to the scheduler."""
    seen_empty = threading.Barrier(SERVERS, timeout=30)
    keys = AdminService.keys

    def keys_in_lockstep(self: AdminService, org_id: str | None = None) -> list[KeyRecord]:
        found = keys(self, org_id)
        if not found:
            seen_empty.wait()
        return found

    monkeypatch.setattr(AdminService, "keys", keys_in_lockstep)


def _bootstrap_together(settings: Callable[[int], Settings]) -> list[Path | None]:
    results: list[Path | None] = [None] * SERVERS
    errors: list[BaseException] = []
    start = threading.Barrier(SERVERS, timeout=30)

    def server(i: int) -> None:
        try:
            start.wait()
            results[i] = bootstrap_key(settings(i))
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=server, args=(i,)) for i in range(SERVERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not [t for t in threads if t.is_alive()]
    assert [repr(e) for e in errors] == []
    return results


def _check_one_bootstrap(settings: Settings, results: list[Path | None]) -> None:
    written = [path for path in results if path is not None]
    assert len(written) == 1, results  # one server created the key; the others saw it
    db: StoreDatabase = open_database(settings.database_path, settings.database_url)
    try:
        with db.read() as conn:
            orgs = conn.execute("SELECT org_id, sector FROM organisations").fetchall()
            keys = conn.execute(
                "SELECT access_key_id, org_id, use_case FROM access_keys"
            ).fetchall()
            events = conn.execute("SELECT record_json FROM audit_outbox").fetchall()
    finally:
        db.close()
    assert [tuple(r) for r in orgs] == [("local", "research")]
    assert len(keys) == 1
    key_id = keys[0][0]
    assert tuple(keys[0])[1:] == ("local", "research")
    credentials = written[0].read_text()
    assert f"aws_access_key_id = {key_id}\n" in credentials
    actions = sorted(json.loads(r[0])["action"] for r in events)
    assert actions == ["key.create", "org.create"]  # recorded once, by the server that won


def test_simultaneous_first_starts_create_one_org_and_one_key(
    server_settings: Callable[[int], Settings], lockstep: None
) -> None:
    results = _bootstrap_together(server_settings)
    _check_one_bootstrap(server_settings(0), results)
    written = next(path for path in results if path is not None)
    assert written.name == CREDENTIALS_FILE
    # A later start finds the key and creates nothing.
    assert bootstrap_key(server_settings(SERVERS)) is None
    _check_one_bootstrap(server_settings(0), results)


def test_simultaneous_first_starts_without_forced_interleaving(
    server_settings: Callable[[int], Settings],
) -> None:
    _check_one_bootstrap(server_settings(0), _bootstrap_together(server_settings))
