"""Crash safety of the store: SIGKILL in the middle of writes loses nothing acknowledged.

A child process (tests/store/crash_writer.py) runs random writes against the real SQLite store
and prints each operation before calling it and an acknowledgement after it returned. The parent
kills it with SIGKILL at a random moment, reopens the store (the start-up path: WAL recovery,
index rebuild) and compares what is stored with a model built by replaying the acknowledged
operations. Only the one operation in flight at the kill may or may not have happened, and then
entirely or not at all. Several rounds run on the same database, so each round also starts from
a store that was recovered after a kill.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from facegate.store.db import Database
from facegate.store.records import FaceRecord
from facegate.store.store import FaceStore
from facegate.store.vectors import DIM
from tests.store.crash_writer import decode_face, new_face

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COLLECTION = "crash"
ROUNDS = 5


@dataclass
class State:
    """What the store holds for one collection: face records, descriptor bytes, user ids."""

    faces: dict[str, FaceRecord] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    users: set[str] = field(default_factory=set)

    def copy(self) -> State:
        return State(dict(self.faces), dict(self.blobs), set(self.users))


def apply(state: State, op: dict[str, Any]) -> tuple[State, dict[str, Any]]:
    """The state after ``op`` (the store's documented semantics) and the result it must report."""
    after = state.copy()
    kind = op["kind"]
    if kind == "index":
        for data in op["faces"]:
            record, blob = decode_face(data)
            after.faces[record.face_id] = record
            after.blobs[record.face_id] = blob
        return after, {}
    if kind == "delete":
        # Faces associated to a user are refused; unknown ids are ignored.
        gone = {f for f in op["face_ids"] if f in after.faces and after.faces[f].user_id is None}
        for face_id in gone:
            del after.faces[face_id], after.blobs[face_id]
        return after, {"deleted": gone}
    if kind == "create_user":
        after.users.add(op["user_id"])
        return after, {"created": op["user_id"] not in state.users}
    if kind in ("associate", "disassociate"):
        user_id = op.get("user_id")
        for face_id in op["face_ids"]:
            after.faces[face_id] = replace(after.faces[face_id], user_id=user_id)
        return after, {}
    if kind == "delete_user":
        user_id = op["user_id"]
        for face_id, record in state.faces.items():
            if record.user_id == user_id:
                after.faces[face_id] = replace(record, user_id=None)
        after.users.discard(user_id)
        return after, {"existed": user_id in state.users}
    raise AssertionError(f"unknown operation {kind!r}")


@dataclass
class Replay:
    """The child's output replayed on a model: the acknowledged state and the op in flight."""

    acked: State
    in_flight: dict[str, Any] | None
    acks: dict[str, int]


def replay(start: State, output: bytes) -> Replay:
    """Apply every acknowledged operation of ``output`` to ``start``.

    Only complete lines count: a line cut by the kill was never fully announced (a cut ``begin``
    means the call had not started; a cut ``ack`` means it was not acknowledged).
    """
    lines = output.split(b"\n")[:-1]
    assert lines, "the writer printed nothing"
    assert lines[0] == b"ready", output[:200]
    state: State = start
    pending: dict[str, Any] | None = None
    acks: dict[str, int] = {}
    for line in lines[1:]:
        tag, _, payload = line.decode().partition(" ")
        data = json.loads(payload)
        if tag == "begin":
            assert pending is None, "two operations in flight"
            pending = data
        else:
            assert tag == "ack", line
            assert pending is not None, "an acknowledgement without an operation"
            assert data["kind"] == pending["kind"], (pending, data)
            state, expected = apply(state, pending)
            reported = {k: set(v) if isinstance(v, list) else v for k, v in data.items()}
            assert reported == {"kind": data["kind"], **expected}, (pending, data)
            acks[data["kind"]] = acks.get(data["kind"], 0) + 1
            pending = None
    return Replay(state, pending, acks)


def snapshot(store: FaceStore) -> State:
    """Everything the store holds for the collection, read through its public methods."""
    collection = store.get_collection("", COLLECTION)
    records = {r.face_id: r for _, r in store.list_faces(collection, 0, 10_000_000)}
    blobs = {
        face_id: vector.tobytes()
        for face_id, vector in store.descriptors(collection, list(records)).items()
    }
    users = {u.user_id for _, u in store.list_users(collection, 0, 10_000_000)}
    return State(records, blobs, users)


def describe_difference(observed: State, expected: State) -> str:
    lost = expected.faces.keys() - observed.faces.keys()
    extra = observed.faces.keys() - expected.faces.keys()
    changed = [
        f
        for f in expected.faces.keys() & observed.faces.keys()
        if expected.faces[f] != observed.faces[f] or expected.blobs[f] != observed.blobs[f]
    ]
    return (
        f"lost faces {sorted(lost)[:5]} ({len(lost)}), unexpected faces {sorted(extra)[:5]} "
        f"({len(extra)}), changed faces {changed[:5]} ({len(changed)}), lost users "
        f"{sorted(expected.users - observed.users)}, unexpected users "
        f"{sorted(observed.users - expected.users)}"
    )


def check_consistent(db: Database, store: FaceStore, state: State) -> None:
    """Invariants of a reopened store whose content equals ``state``."""
    collection = store.get_collection("", COLLECTION)
    with db.read() as conn:
        assert [tuple(r) for r in conn.execute("PRAGMA integrity_check")] == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = conn.execute(
            "SELECT COUNT(*) FROM faces WHERE collection_uid = :uid", {"uid": collection.uid}
        ).fetchone()[0]
        dangling = conn.execute(
            "SELECT COUNT(*) FROM faces f WHERE user_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM users u WHERE u.collection_uid = f.collection_uid "
            "AND u.user_id = f.user_id)"
        ).fetchone()[0]
    assert dangling == 0, "a face is associated to a user that does not exist"
    assert (
        store.counts(collection) == (rows, len(state.users)) == (len(state.faces), len(state.users))
    )
    # The index rebuilt at start-up holds exactly the stored faces, each with its own vector.
    index = store.index(collection)
    assert len(index) == len(state.faces)
    everything = index.search(np.zeros(DIM, dtype=np.float32), len(state.faces) + 10, math.inf)
    assert {h.face_id for h in everything} == state.faces.keys()
    assert len(everything) == len(state.faces)
    for face_id, blob in state.blobs.items():
        hits = index.search(np.frombuffer(blob, dtype=np.float32), 1, 1e-6)
        assert [h.face_id for h in hits] == [face_id]


@contextmanager
def opened(path: Path) -> Iterator[tuple[Database, FaceStore]]:
    db = Database(path)
    try:
        yield db, FaceStore(db)
    finally:
        db.close()


def run_and_kill(
    db_path: Path, seed: int, delay_s: float, jitter_s: float, log: IO[bytes]
) -> bytes:
    """Start the writer, SIGKILL it; its stdout.

    The kill comes ``jitter_s`` after the first operation the writer announces once it has run
    for ``delay_s``: a random moment biased towards the inside of a call (a kill between two
    calls proves less).
    """
    chunks: list[bytes] = []
    ready, armed, announced = threading.Event(), threading.Event(), threading.Event()
    with subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_writer", str(db_path), COLLECTION, str(seed)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
    ) as child:
        assert child.stdout is not None
        fd = child.stdout.fileno()

        def read() -> None:  # drain continuously, so the child never blocks on a full pipe
            tail = b""
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
                lines = (tail + chunk).split(b"\n")
                tail = lines.pop()
                for line in lines:
                    if line == b"ready":
                        ready.set()
                    elif line.startswith(b"begin ") and armed.is_set():
                        announced.set()
            ready.set()
            announced.set()

        reader = threading.Thread(target=read)
        reader.start()
        try:
            assert ready.wait(60), "the writer did not start"
            time.sleep(delay_s)
            armed.set()
            assert announced.wait(30), "the writer stopped announcing operations"
            time.sleep(jitter_s)
            assert child.poll() is None, "the writer died before it was killed"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            reader.join()
    assert child.returncode == -signal.SIGKILL
    return b"".join(chunks)


def test_sigkill_during_writes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """Over several SIGKILLs at random moments of a stream of store writes:

    * the database passes ``PRAGMA integrity_check`` and ``foreign_key_check``;
    * its content (every face's record and exact descriptor bytes, every user and every
      face-user association) equals the replay of all acknowledged operations, or that plus the
      single operation in flight, applied entirely: nothing acknowledged is lost, no deletion
      that was acknowledged comes back, nothing half-done or unannounced appears;
    * the face count equals the number of face rows, no face points at a missing user;
    * the vector index rebuilt at start-up holds exactly the stored faces with their vectors;
    * a new write after recovery succeeds and is visible after the next reopen.
    """
    db_path = tmp_path / "facegate.sqlite3"
    with opened(db_path) as (_, store):
        store.create_collection(COLLECTION, f"arn:aws:rekognition:::collection/{COLLECTION}", "m")
    rng = random.Random(20200608)
    model = State()
    killed_in_flight = 0
    acks: dict[str, int] = {}
    with (tmp_path / "writer.stderr").open("wb") as stderr:
        for round_no in range(ROUNDS):
            output = run_and_kill(
                db_path, 1000 + round_no, rng.uniform(0.1, 0.8), rng.uniform(0, 0.003), stderr
            )
            result = replay(model, output)
            for kind, n in result.acks.items():
                acks[kind] = acks.get(kind, 0) + n
            with opened(db_path) as (db, store):
                observed = snapshot(store)
                candidates = [result.acked]
                if result.in_flight is not None:
                    killed_in_flight += 1
                    candidates.append(apply(result.acked, result.in_flight)[0])
                assert observed in candidates, describe_difference(observed, result.acked)
                check_consistent(db, store, observed)
                # A new write after recovery: one face added, one unassociated face deleted.
                collection = store.get_collection("", COLLECTION)
                face = new_face(
                    random.Random(round_no), collection.uid, str(uuid.uuid4()), "0" * 64
                )
                store.add_faces(collection, [face])
                free = [f for f, r in observed.faces.items() if r.user_id is None][:1]
                assert store.delete_faces(collection, free) == free
                model = snapshot(store)
                assert face.record.face_id in model.faces
                assert model.faces.keys() == (observed.faces.keys() | {face.record.face_id}) - set(
                    free
                )
            with opened(db_path) as (db, store):
                assert snapshot(store) == model
                check_consistent(db, store, model)
    # The rounds did real work, and the kill hit an operation in flight at least once.
    assert acks.get("index", 0) >= ROUNDS, acks
    assert acks.get("delete", 0) >= ROUNDS, acks
    assert killed_in_flight >= 1
