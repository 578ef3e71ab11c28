"""A PostgreSQL outage under a live server (FACEGATE_DATABASE_URL), through boto3.

PostgreSQL (a pgserver cluster of the test's own, so the session's cluster is not disturbed) is
stopped in ``immediate`` mode (every PostgreSQL process aborted without a checkpoint, as a crash
would) after faces were indexed. While it is down every call fails promptly with the modelled
``InternalServerError`` (no hang: one attempt per call and a read timeout), and each failure is
still recorded in the audit log. When it is back, the same server process recovers (its broken
connection is replaced on the next request), every face acknowledged before the outage is
found, new writes succeed, and the audit chain verifies.

The kill -9 of a server under PostgreSQL is ``test_crash.py``'s test, run on both backends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from facegate.audit.log import iter_entries
from facegate.cli import main
from tests.e2e.server import LiveServer
from tests.pg import RestartablePg

COLLECTION = "outage"
PHOTOS = ("obama.jpg", "biden.jpg", "two_people.jpg")
# A failing call must answer well within this (the server's connect attempt to a stopped
# PostgreSQL on a unix socket fails at once; its connect_timeout is 10 s).
PROMPT_S = 12.0


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[tuple[RestartablePg, LiveServer]]:
    """A pgserver of its own and a server (one engine worker) on a fresh database of it."""
    pg = RestartablePg()
    live: LiveServer | None = None
    try:
        dsn = pg.cluster.create()
        live = LiveServer(tmp_path / "data", workers=1, env={"FACEGATE_DATABASE_URL": dsn})
        live.start()
        yield pg, live
    finally:
        if live is not None:
            live.stop()
        pg.close()


def _client(live: LiveServer) -> Any:
    """One attempt per call, and a read timeout, so a hang fails the test instead of stalling."""
    return live.client(
        retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30
    )


def _list_faces(rek: Any) -> dict[str, str]:
    pages = rek.get_paginator("list_faces").paginate(
        CollectionId=COLLECTION, PaginationConfig={"PageSize": 2}
    )
    return {f["FaceId"]: f.get("ExternalImageId", "") for p in pages for f in p["Faces"]}


@pytest.mark.slow
def test_a_postgres_restart_fails_calls_cleanly_and_loses_nothing_acknowledged(
    outage: tuple[RestartablePg, LiveServer], samples: Path
) -> None:
    pg, live = outage
    rek = _client(live)
    rek.create_collection(CollectionId=COLLECTION)
    acked: dict[str, str] = {}
    for photo in PHOTOS:
        out = rek.index_faces(
            CollectionId=COLLECTION,
            Image={"Bytes": (samples / photo).read_bytes()},
            ExternalImageId=photo,
        )
        acked.update((r["Face"]["FaceId"], photo) for r in out["FaceRecords"])
    assert len(acked) >= len(PHOTOS)

    pg.stop()  # immediate: PostgreSQL's processes are aborted, the server's connection breaks
    image = {"Bytes": (samples / "obama2.jpg").read_bytes()}
    calls: dict[str, Callable[[], Any]] = {
        "ListCollections": lambda: rek.list_collections(),
        "DescribeCollection": lambda: rek.describe_collection(CollectionId=COLLECTION),
        "IndexFaces": lambda: rek.index_faces(
            CollectionId=COLLECTION, Image=image, ExternalImageId="during-the-outage"
        ),
        "SearchFacesByImage": lambda: rek.search_faces_by_image(
            CollectionId=COLLECTION, Image=image
        ),
        "ListFaces": lambda: rek.list_faces(CollectionId=COLLECTION),
        "DeleteFaces": lambda: rek.delete_faces(CollectionId=COLLECTION, FaceIds=list(acked)),
    }
    failed_ids: list[str] = []
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(ClientError) as info:
            call()
        elapsed = time.monotonic() - started
        error = info.value.response["Error"]
        assert error["Code"] == "InternalServerError", (name, error)
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500, name
        assert "postgres" not in error["Message"].lower(), (name, error)  # no internals
        assert elapsed < PROMPT_S, (name, elapsed)
        headers = info.value.response["ResponseMetadata"]["HTTPHeaders"]
        if "x-facegate-decision-id" in headers:
            failed_ids.append(headers["x-facegate-decision-id"])
    assert live.process is not None
    assert live.process.poll() is None  # still serving

    pg.start()
    # The same server process: its first call after the restart succeeds (the connection that
    # broke is replaced), and nothing acknowledged before the outage was lost.
    listed = _list_faces(rek)
    assert acked.items() <= listed.items()
    assert "during-the-outage" not in listed.values()  # the failed IndexFaces wrote nothing
    assert len(listed) == len(acked)
    assert rek.describe_collection(CollectionId=COLLECTION)["FaceCount"] == len(acked)
    found = rek.search_faces_by_image(CollectionId=COLLECTION, Image=image)
    matched = {m["Face"]["FaceId"] for m in found["FaceMatches"]}
    assert matched <= acked.keys()
    assert "obama.jpg" in {acked[f] for f in matched}
    out = rek.index_faces(CollectionId=COLLECTION, Image=image, ExternalImageId="after")
    assert len(out["FaceRecords"]) == 1
    assert len(_list_faces(rek)) == len(acked) + 1

    # Every failed call has its audit record (the log is a file, not in PostgreSQL), and the
    # chain verifies.
    records = [e.record for e in iter_entries(live.data_dir / "audit")]
    errors = [r for r in records if r.get("error_code") == "InternalServerError"]
    assert len(errors) >= len(calls)
    by_id = {r.get("decision_id") for r in records}
    assert set(failed_ids) <= by_id
    with live.environment():
        assert main(["audit", "verify", "--data-dir", str(live.data_dir)]) == 0
