"""A store writer meant to be killed: the child process of tests/store/test_crash.py.

Run as ``python -m tests.store.crash_writer DB_PATH COLLECTION_ID SEED`` from the project root.
It opens the real SQLite store (which rebuilds its indexes, the start-up path), prints ``ready``
and then loops forever over random store writes: index faces (random 128-d descriptors), delete
faces (some associated to a user, some unknown, sometimes more than one 500-id chunk), create and
delete users, associate and disassociate faces. Every operation is announced on stdout before it
is called (``begin <json>``) and acknowledged after it returned (``ack <json>``), each line
flushed, so the parent knows exactly which writes were acknowledged and which one was in flight
when it sent SIGKILL.

The JSON encoding of operations lives here and is shared with the test, which replays the
acknowledged operations on a model of the store.
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from facegate.store.db import Database
from facegate.store.records import FaceRecord, NewFace
from facegate.store.store import FaceStore
from facegate.store.vectors import DIM

MODEL_VERSION = "dlib-resnet-v1"
MAX_FACES = 600  # beyond this the writer favours deletions, so the store stays small


def new_face(rng: random.Random, collection_uid: str, image_id: str, sha256: str) -> NewFace:
    """A face with random metadata and a random float32 descriptor."""
    left, top = rng.random() * 0.5, rng.random() * 0.5
    nprng = np.random.default_rng(rng.getrandbits(64))
    return NewFace(
        record=FaceRecord(
            face_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            collection_uid=collection_uid,
            image_id=image_id,
            image_sha256=sha256,
            external_image_id=rng.choice([None, f"img-{rng.getrandbits(32):08x}"]),
            box_left_ratio=left,
            box_top_ratio=top,
            box_width_ratio=rng.random() * (1 - left),
            box_height_ratio=rng.random() * (1 - top),
            confidence_pct=90 + 10 * rng.random(),
            model_version=MODEL_VERSION,
            user_id=None,
            indexed_at=time.time(),
        ),
        descriptor=nprng.normal(0.0, 0.1, DIM).astype(np.float32),
    )


def encode_face(face: NewFace) -> dict[str, Any]:
    """A face as JSON: the record's fields and the descriptor's bytes in hex (exact)."""
    return {**asdict(face.record), "descriptor": face.descriptor.astype(np.float32).tobytes().hex()}


def decode_face(data: dict[str, Any]) -> tuple[FaceRecord, bytes]:
    """Inverse of :func:`encode_face`: the record and the descriptor's bytes."""
    fields = dict(data)
    blob = bytes.fromhex(fields.pop("descriptor"))
    return FaceRecord(**fields), blob


class Writer:
    """Chooses and performs random writes, tracking what it believes is stored."""

    def __init__(self, store: FaceStore, collection_id: str, rng: random.Random) -> None:
        self.store = store
        self.cid = store.get_collection("", collection_id)
        self.rng = rng
        # Start from what the (recovered) store holds: this process may follow an earlier kill.
        self.faces: dict[str, str | None] = {
            r.face_id: r.user_id for _, r in store.list_faces(self.cid, 0, 1_000_000)
        }
        self.users: set[str] = {u.user_id for _, u in store.list_users(self.cid, 0, 10_000)}

    def step(self) -> None:
        """Announce, perform and acknowledge one random write."""
        roll = self.rng.random()
        if len(self.faces) > MAX_FACES:
            roll = 0.5  # a deletion
        if roll < 0.45:
            self._index()
        elif roll < 0.75 and self.faces:
            self._delete()
        elif roll < 0.82 or not self.users:
            self._create_user()
        elif roll < 0.90:
            self._associate()
        elif roll < 0.96:
            self._disassociate()
        else:
            self._delete_user()

    def _index(self) -> None:
        count = self.rng.choice([1, 1, 2, 3, 5, 8, 20, 40, 150])
        image_id, sha = str(uuid.uuid4()), f"{self.rng.getrandbits(256):064x}"
        faces = [new_face(self.rng, self.cid.uid, image_id, sha) for _ in range(count)]
        announce("begin", {"kind": "index", "faces": [encode_face(f) for f in faces]})
        self.store.add_faces(self.cid, faces)
        announce("ack", {"kind": "index"})
        self.faces.update((f.record.face_id, None) for f in faces)

    def _delete(self) -> None:
        known = list(self.faces)
        ids = self.rng.sample(known, min(len(known), self.rng.choice([1, 2, 5, 20, 80])))
        if self.rng.random() < 0.2:
            ids.append(str(uuid.uuid4()))  # FACE_NOT_FOUND
        if self.rng.random() < 0.05:
            # More ids than one 500-id chunk: the deletion must still be one transaction.
            ids = [str(uuid.uuid4()) for _ in range(520)] + ids
            self.rng.shuffle(ids)
        announce("begin", {"kind": "delete", "face_ids": ids})
        deleted = self.store.delete_faces(self.cid, ids)
        announce("ack", {"kind": "delete", "deleted": deleted})
        for face_id in deleted:
            del self.faces[face_id]

    def _create_user(self) -> None:
        user_id = f"user-{self.rng.getrandbits(32):08x}"
        announce("begin", {"kind": "create_user", "user_id": user_id})
        created = self.store.create_user(self.cid, user_id) is not None
        announce("ack", {"kind": "create_user", "created": created})
        self.users.add(user_id)

    def _associate(self) -> None:
        free = [f for f, u in self.faces.items() if u is None]
        if not free or not self.users:
            return self._create_user()
        user_id = self.rng.choice(sorted(self.users))
        ids = self.rng.sample(free, min(len(free), self.rng.choice([1, 2, 4])))
        if sum(u == user_id for u in self.faces.values()) + len(ids) > 100:
            return self._delete_user()
        announce("begin", {"kind": "associate", "user_id": user_id, "face_ids": ids})
        self.store.set_user_of_faces(self.cid, user_id, ids)
        announce("ack", {"kind": "associate"})
        self.faces.update((f, user_id) for f in ids)
        return None

    def _disassociate(self) -> None:
        owned = [f for f, u in self.faces.items() if u is not None]
        if not owned:
            return self._associate()
        ids = self.rng.sample(owned, min(len(owned), self.rng.choice([1, 3])))
        announce("begin", {"kind": "disassociate", "face_ids": ids})
        self.store.set_user_of_faces(self.cid, None, ids)
        announce("ack", {"kind": "disassociate"})
        self.faces.update((f, None) for f in ids)
        return None

    def _delete_user(self) -> None:
        user_id = self.rng.choice(sorted(self.users))
        announce("begin", {"kind": "delete_user", "user_id": user_id})
        existed = self.store.delete_user(self.cid, user_id)
        announce("ack", {"kind": "delete_user", "existed": existed})
        self.users.discard(user_id)
        self.faces.update({f: None for f, u in self.faces.items() if u == user_id})


def announce(tag: str, payload: dict[str, Any] | None = None) -> None:
    """One line on stdout, flushed before returning."""
    line = tag if payload is None else f"{tag} {json.dumps(payload, separators=(',', ':'))}"
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    db_path, collection_id, seed = Path(argv[0]), argv[1], int(argv[2])
    writer = Writer(FaceStore(Database(db_path)), collection_id, random.Random(seed))
    announce("ready")
    while True:  # until killed
        writer.step()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
