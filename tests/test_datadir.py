"""Issue 18 item 14: the database, its WAL and the audit log were world-readable.

With a permissive umask (022), everything facegate creates under its data directory is 0600
and every directory 0700 (in process here, on both store backends; through a live server in
tests/e2e/test_datadir.py); a data directory left open by an older version is made private at
start, the fix logged and recorded in the audit chain; a secret readable by others, or a path
that cannot be fixed, stops the start with a clear message.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facegate.audit.log import iter_entries
from facegate.config import Settings
from facegate.datadir import DataDirError, secure_data_dir
from facegate.pipeline import RawRequest, handle
from facegate.services import Services
from tests.conftest import BACKENDS
from tests.signed import local_key, signed_request


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def modes(data_dir: Path) -> dict[str, int]:
    """Every path under ``data_dir`` (itself as ``.``) and its permission bits."""
    found = {".": stat.S_IMODE(data_dir.stat().st_mode)}
    for root, dirs, files in os.walk(data_dir):
        for name in [*dirs, *files]:
            path = Path(root) / name
            found[path.relative_to(data_dir).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(data_dir: Path) -> dict[str, int]:
    found = modes(data_dir)
    dirs = {p for p in found if p == "." or (data_dir / p).is_dir()}
    wrong = {
        p: oct(m)
        for p, m in found.items()
        if (p in dirs and m != 0o700) or (p not in dirs and m != 0o600)
    }
    assert not wrong, wrong
    return found


def signed(services: Services, operation: str, body: dict[str, Any]) -> RawRequest:
    return signed_request(local_key(services), operation, body)


@pytest.mark.parametrize("backend", BACKENDS)
def test_everything_created_is_private_under_a_permissive_umask(
    backend: str, tmp_path: Path, umask_022: None, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_dsn") if backend == "postgres" else None
    data = tmp_path / "data"
    services = Services.open(
        Settings(data_dir=data, engine_workers=1, database_url=url), start_engine=False
    )
    try:
        response = asyncio.run(
            handle(services, signed(services, "CreateCollection", {"CollectionId": "c1"}))
        )
        assert response.status == 200
        services.audit.checkpoint()
        found = assert_private(data)  # while running: -wal and -shm exist
        expected = {"audit", "audit/HEAD.json", "audit/LOCK", "audit/public.key",
                    "audit/segment-000001.jsonl", "audit-signing.key", "master.key"}  # fmt: skip
        if backend == "sqlite":
            expected |= {"facegate.sqlite3", "facegate.sqlite3-wal", "facegate.sqlite3-shm"}
        assert expected <= set(found), sorted(found)
    finally:
        services.close()
    assert_private(data)
    integrity = [e for e in iter_entries(data / "audit") if e.record["kind"] == "integrity"]
    assert integrity == []  # nothing needed fixing


def test_an_open_data_directory_is_fixed_logged_and_recorded(
    tmp_path: Path, umask_022: None, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    Services.open(Settings(data_dir=data, engine_workers=1), start_engine=False).close()
    # what an older facegate left: 0755 directories, 0644 files
    for path in [data, data / "audit"]:
        path.chmod(0o755)
    for path in [data / "facegate.sqlite3", *(data / "audit").iterdir()]:
        path.chmod(0o644)
    services = Services.open(Settings(data_dir=data, engine_workers=1), start_engine=False)
    try:
        assert_private(data)
    finally:
        services.close()
    assert "data directory: facegate.sqlite3 was mode 644" in caplog.text
    (record,) = [e.record for e in iter_entries(data / "audit") if e.record["kind"] == "integrity"]
    assert record["action"] == "datadir.permissions_fixed"
    assert {".", "audit", "facegate.sqlite3", "audit/public.key"} <= set(record["details"]["paths"])
    assert record["details"]["count"] == len(record["details"]["paths"])


@pytest.mark.parametrize("secret", ["master.key", "audit-signing.key", "credentials"])
def test_a_secret_readable_by_others_stops_the_start(
    tmp_path: Path, secret: str, umask_022: None
) -> None:
    data = tmp_path / "data"
    Services.open(Settings(data_dir=data, engine_workers=1), start_engine=False).close()
    (data / "credentials").write_text("[facegate]\n")
    (data / "credentials").chmod(0o600)
    (data / secret).chmod(0o640)
    with pytest.raises(DataDirError, match=rf"{secret}: holds a secret.*mode 640.*chmod 600"):
        Services.open(Settings(data_dir=data, engine_workers=1), start_engine=False)
    assert stat.S_IMODE((data / secret).stat().st_mode) == 0o640  # not silently "fixed"


def test_a_path_that_cannot_be_fixed_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "notes.txt").write_text("x")
    (data / "notes.txt").chmod(0o644)

    def refuse(path: Any, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chmod", refuse)
    with pytest.raises(DataDirError, match=r"notes.txt: mode 644 .* cannot be changed"):
        secure_data_dir(data)


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    outside.chmod(0o644)
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "link").symlink_to(outside)
    assert secure_data_dir(data) == ()
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
