"""Crash safety end to end: kill -9 of a live server under IndexFaces/DeleteFaces traffic, on
each store backend (a SQLite file; PostgreSQL, which keeps running while the server is killed).

boto3 threads index real photos (each call with its own ExternalImageId, so every stored face can
be traced to the call that made it) and delete some of the acknowledged faces, while the test
SIGKILLs the server's whole process group (server and engine workers) at a random moment, then
restarts it on the same data directory and checks what the API reports. This happens twice, so
the second crash hits a server that itself recovered from one.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError

from tests.conftest import BACKENDS
from tests.e2e.server import LiveServer

pytestmark = pytest.mark.slow  # kills a server under load and restarts it, on each backend

COLLECTION = "crash"
# Photos to index: single faces, two faces (two_people), six faces (group_t1), so a call that is
# cut short could leave part of an image's faces behind if writes were not atomic.
PHOTOS = (
    "obama.jpg",
    "obama2.jpg",
    "biden.jpg",
    "two_people.jpg",
    "group_t1.jpg",
    "astronaut.png",
    "bbt/amy1.png",
    "bbt/sheldon1.png",
)
# Faces of these photos are never deleted, so a search for Obama has something to find.
KEPT = "obama.jpg"
OBAMA = ("obama.jpg", "obama2.jpg")
INDEXERS = 2


def external_id_of(call: int, photo: str) -> str:
    """The ExternalImageId of one IndexFaces call: ``<call number>_<photo, "/" as "-">``."""
    return f"{call:05d}_{photo.replace('/', '-')}"


def photo_of(external_image_id: str) -> str:
    """The sample a face came from (inverse of :func:`external_id_of`)."""
    return external_image_id.split("_", 1)[1].replace("-", "/")


@dataclass
class Traffic:
    """What the clients sent and what the server acknowledged (shared by the client threads)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    started: set[str] = field(default_factory=set)  # ExternalImageIds of IndexFaces calls sent
    acked: dict[str, str] = field(default_factory=dict)  # FaceId -> ExternalImageId
    acked_calls: set[str] = field(default_factory=set)  # ExternalImageIds acknowledged
    delete_attempted: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)  # FaceIds whose deletion was acknowledged
    in_flight: int = 0
    errors: list[tuple[bool, BaseException]] = field(default_factory=list)
    killed: threading.Event = field(default_factory=threading.Event)
    armed: threading.Event = field(default_factory=threading.Event)  # the kill may come now
    deleting: threading.Event = field(default_factory=threading.Event)  # a DeleteFaces is sent
    calls: int = 0


def indexer(rek: Any, samples: Path, traffic: Traffic, seed: int, first_call: int) -> None:
    """IndexFaces calls, one ExternalImageId each, until the server is killed."""
    rng = random.Random(seed)
    call = first_call
    while not traffic.killed.is_set():
        photo = rng.choice(PHOTOS)
        external_id = external_id_of(call, photo)
        call += INDEXERS
        with traffic.lock:
            traffic.started.add(external_id)
            traffic.in_flight += 1
        try:
            out = rek.index_faces(
                CollectionId=COLLECTION,
                Image={"Bytes": (samples / photo).read_bytes()},
                ExternalImageId=external_id,
            )
        except Exception as exc:
            traffic.errors.append((traffic.killed.is_set(), exc))
            return
        finally:
            with traffic.lock:
                traffic.in_flight -= 1
        with traffic.lock:
            traffic.acked.update((r["Face"]["FaceId"], external_id) for r in out["FaceRecords"])
            traffic.acked_calls.add(external_id)
            traffic.calls += 1


def deleter(rek: Any, traffic: Traffic, seed: int) -> None:
    """DeleteFaces of about half of the acknowledged faces (never those of ``KEPT``)."""
    rng = random.Random(seed)
    while not traffic.killed.is_set():
        with traffic.lock:
            candidates = sorted(
                f
                for f, external_id in traffic.acked.items()
                if f not in traffic.delete_attempted and photo_of(external_id) != KEPT
            )
        if len(candidates) < 2:
            time.sleep(0.05)
            continue
        chosen = rng.sample(candidates, rng.randint(1, len(candidates) // 2))
        with traffic.lock:
            traffic.delete_attempted.update(chosen)
            traffic.in_flight += 1
        if traffic.armed.is_set():
            traffic.deleting.set()
        try:
            out = rek.delete_faces(CollectionId=COLLECTION, FaceIds=chosen)
        except Exception as exc:
            traffic.errors.append((traffic.killed.is_set(), exc))
            return
        finally:
            with traffic.lock:
                traffic.in_flight -= 1
        if out["UnsuccessfulFaceDeletions"]:  # each face is acknowledged and deleted only once
            traffic.errors.append((False, AssertionError(out["UnsuccessfulFaceDeletions"])))
            return
        with traffic.lock:
            traffic.deleted.update(out["DeletedFaces"])
        time.sleep(rng.uniform(0.05, 0.3))


def crash_under_traffic(
    live: LiveServer, samples: Path, traffic: Traffic, rng: random.Random, first_call: int
) -> None:
    """Run the client threads, SIGKILL the server's process group at a random moment, join."""
    threads = [
        threading.Thread(
            target=indexer, args=(live.client(), samples, traffic, rng.random(), first_call + i)
        )
        for i in range(INDEXERS)
    ]
    threads.append(threading.Thread(target=deleter, args=(live.client(), traffic, rng.random())))
    for thread in threads:
        thread.start()
    enough = traffic.calls + rng.randint(6, 12)
    try:
        deadline = time.monotonic() + 40
        while traffic.calls < enough and not traffic.errors and time.monotonic() < deadline:
            time.sleep(0.02)
        # The kill comes a few milliseconds after the next DeleteFaces is sent: before, during or
        # after its transaction, while the IndexFaces calls are somewhere in their own work.
        traffic.armed.set()
        traffic.deleting.wait(timeout=10)
        time.sleep(rng.uniform(0.0, 0.012))
    finally:
        traffic.killed.set()
        in_flight = traffic.in_flight
        live.kill()
        for thread in threads:
            thread.join(timeout=60)
    assert traffic.calls >= enough, "the clients did not get through"
    assert in_flight >= 1, "the kill came while no request was in flight"
    before_kill = [exc for during_kill, exc in traffic.errors if not during_kill]
    assert not before_kill, before_kill
    assert all(isinstance(exc, BotoCoreError) for _, exc in traffic.errors), traffic.errors


def list_all_faces(rek: Any) -> list[dict[str, Any]]:
    """ListFaces, walking every page (small pages, so pagination is exercised)."""
    pages = rek.get_paginator("list_faces").paginate(
        CollectionId=COLLECTION, PaginationConfig={"PageSize": 7}
    )
    return [face for page in pages for face in page["Faces"]]


def check_recovered(rek: Any, traffic: Traffic, confirmed: dict[str, str], samples: Path) -> None:
    """The server's view after a restart, against what was acknowledged (see the test)."""
    faces = list_all_faces(rek)
    listed = {f["FaceId"]: f.get("ExternalImageId", "") for f in faces}
    assert len(listed) == len(faces), "ListFaces returned a face twice"
    known = {**confirmed, **traffic.acked}
    lost = (known.keys() - traffic.delete_attempted) - listed.keys()
    assert not lost, f"acknowledged faces lost: {sorted(known[f] for f in lost)}"
    back = traffic.deleted & listed.keys()
    assert not back, f"acknowledged deletions came back: {sorted(back)}"
    # A face nobody acknowledged can only come from a call that was in flight at the kill.
    unacknowledged_calls = traffic.started - traffic.acked_calls
    for face_id, external_id in listed.items():
        if face_id not in known:
            assert external_id in unacknowledged_calls, f"unexpected face {face_id} {external_id}"
    # A call in flight stored all of its image's faces or none (as many as an acknowledged call
    # of the same photo stored: the engine is deterministic).
    per_call = Counter(known.values())
    per_photo = {photo_of(external_id): n for external_id, n in per_call.items()}
    in_flight_stored = Counter(e for f, e in listed.items() if f not in known)
    for external_id, count in in_flight_stored.items():
        assert count == per_photo.get(photo_of(external_id), count), (external_id, count)
    assert rek.describe_collection(CollectionId=COLLECTION)["FaceCount"] == len(listed)
    # The rebuilt vector index: every stored Obama face is found, no deleted face is.
    found = rek.search_faces_by_image(
        CollectionId=COLLECTION,
        Image={"Bytes": (samples / "obama3.jpg").read_bytes()},
        MaxFaces=4096,
    )
    matched = {m["Face"]["FaceId"] for m in found["FaceMatches"]}
    obama = {f for f, external_id in listed.items() if photo_of(external_id) in OBAMA}
    assert any(f in known and photo_of(listed[f]) == KEPT for f in obama), "no acked Obama face"
    assert obama <= matched
    assert matched <= listed.keys()
    assert not matched & traffic.deleted
    confirmed.clear()
    confirmed.update(listed)


@pytest.fixture(params=BACKENDS)
def crashable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """A server of its own (its own data directory and process group), killed at the end; its
    store is a SQLite file or a fresh database on the session's PostgreSQL server."""
    env: dict[str, str] = {}
    if request.param == "postgres":
        env["FACEGATE_DATABASE_URL"] = request.getfixturevalue("pg_dsn")
    live = LiveServer(tmp_path / "data", env=env, own_process_group=True)
    try:
        live.start()
        yield live
    finally:
        live.kill()


def test_kill_9_under_index_and_delete_loses_nothing_acknowledged(
    crashable: LiveServer, samples: Path
) -> None:
    """Twice: traffic, kill -9 of the server's process group, restart on the same data. Then:

    * every face whose IndexFaces was acknowledged (or that was seen after an earlier restart)
      is listed by ListFaces, unless a DeleteFaces for it was sent;
    * no face whose DeleteFaces was acknowledged comes back;
    * every listed face was acknowledged, or comes from the one IndexFaces call of its
      ExternalImageId that was in flight at the kill, with all of that image's faces;
    * DescribeCollection's FaceCount equals the number of faces ListFaces walks;
    * SearchFacesByImage (the vector index rebuilt at start-up) finds every stored Obama face,
      including acknowledged ones that were never deleted, and only listed faces;
    * a new IndexFaces after the recovery is stored and counted.
    """
    rng = random.Random(1945)
    rek = crashable.client()
    rek.create_collection(CollectionId=COLLECTION)
    traffic = Traffic()
    # One acknowledged Obama face before the traffic, so there is always one to search for.
    first = external_id_of(0, KEPT)
    out = rek.index_faces(
        CollectionId=COLLECTION,
        Image={"Bytes": (samples / KEPT).read_bytes()},
        ExternalImageId=first,
    )
    traffic.started.add(first)
    traffic.acked_calls.add(first)
    traffic.acked.update((r["Face"]["FaceId"], first) for r in out["FaceRecords"])
    confirmed: dict[str, str] = {}
    for round_no in range(2):
        crash_under_traffic(crashable, samples, traffic, rng, first_call=1 + 1000 * round_no)
        crashable.start()
        check_recovered(crashable.client(), traffic, confirmed, samples)
        traffic.killed.clear()
        traffic.armed.clear()
        traffic.deleting.clear()
        traffic.errors.clear()
    rek = crashable.client()
    out = rek.index_faces(
        CollectionId=COLLECTION,
        Image={"Bytes": (samples / "obama.jpg").read_bytes()},
        ExternalImageId="after-the-crashes",
    )
    new_id = out["FaceRecords"][0]["Face"]["FaceId"]
    faces = list_all_faces(rek)
    assert new_id in {f["FaceId"] for f in faces}
    assert rek.describe_collection(CollectionId=COLLECTION)["FaceCount"] == len(confirmed) + 1
    # The audit trail survived both kills: every acknowledged IndexFaces has its record, and the
    # chain (repaired at each start if a line was torn) verifies.
    from facegate.audit.log import iter_entries
    from facegate.cli import main

    indexed = {
        face_id
        for e in iter_entries(crashable.data_dir / "audit")
        if e.record.get("operation") == "IndexFaces" and e.record.get("decision") == "allow"
        for face_id in e.record["result"]["face_ids"]
    }
    assert set(traffic.acked) <= indexed
    with crashable.environment():
        assert main(["audit", "verify", "--data-dir", str(crashable.data_dir)]) == 0
