"""Issue 18 item 10 end to end: the data directory on a 20 MiB file system that fills up.

A live server whose data directory is a small tmpfs (mounting needs root: skipped otherwise;
tests/test_pipeline_disk_full.py is the deterministic in-process version). The disk is filled
with a file; every call then fails cleanly and nothing is stored, and /healthz answers 503 once
the audit log refuses. The file is removed: without a restart, /healthz turns 200 again, the
same calls succeed, every stored face was acknowledged and has its audit record, and the chain
verifies (with a recovery record saying what happened). On both store backends: with
PostgreSQL only the audit log (and keys) are on the small disk.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from facegate.audit.log import iter_entries
from facegate.cli import main
from tests.conftest import BACKENDS
from tests.e2e.server import LiveServer
from tests.pg import PgCluster

pytestmark = pytest.mark.slow  # a server on a small file system filled up, on each backend

SIZE = "20m"


@pytest.fixture
def small_disk() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    base = Path(tempfile.mkdtemp(prefix="facegate-full-"))
    mount = base / "data"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(base)
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
def full_server(request: pytest.FixtureRequest, small_disk: Path) -> Iterator[LiveServer]:
    env = {"FACEGATE_RATE_LIMIT_RPS": "0"}
    dsn = None
    if request.param == "postgres":
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        dsn = cluster.create()
        env["FACEGATE_DATABASE_URL"] = dsn
    live = LiveServer(small_disk, workers=1, env=env)
    live.start()
    try:
        yield live
    finally:
        live.stop()
        if dsn is not None:
            request.getfixturevalue("pg_cluster").drop(dsn)


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` with one file; returns it."""
    filler = directory / "filler.bin"
    chunk = b"\0" * (256 * 1024)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk = chunk[: len(chunk) // 2]
                if len(chunk) < 64:
                    break
    finally:
        os.close(fd)
    return filler


def healthz(server: LiveServer) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{server.endpoint}/healthz", timeout=10)
    return response.status_code, response.json()


def code(error: ClientError) -> str:
    return str(error.response["Error"]["Code"])


def test_a_full_disk_stores_nothing_unrecorded_and_recovers_without_a_restart(
    full_server: LiveServer, samples: Path
) -> None:
    server = full_server
    image = (samples / "obama.jpg").read_bytes()
    rek = server.client(retries={"mode": "standard", "total_max_attempts": 1})
    rek.create_collection(CollectionId="disk")
    filler = fill(server.data_dir)
    status, doc = healthz(server)
    assert status == 503, doc
    assert doc["disk"]["ok"] is False
    # Writes go on while the audit log's reserve holds their outcomes (PostgreSQL store; the
    # SQLite store is on the full disk and fails at once), then are refused before storing.
    created = []
    refused = ""
    for n in range(3000):
        try:
            rek.create_collection(CollectionId=f"full-{n}")
        except ClientError as error:
            refused = code(error)
            break
        created.append(f"full-{n}")
    assert refused == "InternalServerError", "writes never failed on a full disk"
    for n in range(3):
        with pytest.raises(ClientError) as info:
            rek.index_faces(CollectionId="disk", Image={"Bytes": image}, ExternalImageId=f"f{n}")
        assert code(info.value) == "InternalServerError"
    filler.unlink()  # space again: no restart
    deadline = time.monotonic() + 30
    while healthz(server)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    status, doc = healthz(server)
    assert status == 200, doc
    acknowledged: list[str] = []
    for n in range(3):
        indexed = rek.index_faces(
            CollectionId="disk", Image={"Bytes": image}, ExternalImageId=f"a{n}"
        )
        acknowledged += [r["Face"]["FaceId"] for r in indexed["FaceRecords"]]
    stored = [f["FaceId"] for f in rek.list_faces(CollectionId="disk", MaxResults=100)["Faces"]]
    assert sorted(stored) == sorted(acknowledged)
    collections = set()
    pages = rek.get_paginator("list_collections").paginate()
    for page in pages:
        collections.update(page["CollectionIds"])
    assert collections == {"disk", *created}
    server.stop()
    records = [e.record for e in iter_entries(server.data_dir / "audit")]
    recorded_faces = {
        face_id
        for r in records
        if r["kind"] == "request" and r["operation"] == "IndexFaces" and not r["error_code"]
        for face_id in r["result"]["face_ids"]
    }
    assert set(stored) <= recorded_faces
    recorded_collections = {
        r["collection_id"]
        for r in records
        if r["kind"] == "request" and r["operation"] == "CreateCollection" and not r["error_code"]
    }
    assert collections <= recorded_collections
    out = _verify_json(server)
    assert out["ok"], out["problem"]
    assert out["open_intents"] == 0


def _verify_json(server: LiveServer) -> dict[str, Any]:
    import io

    buffer = io.StringIO()
    with server.environment(), contextlib.redirect_stderr(io.StringIO()):
        main(
            ["audit", "verify", "--data-dir", str(server.data_dir), "--format", "json"],
            out=buffer,
        )
    doc: dict[str, Any] = json.loads(buffer.getvalue())
    return doc
