"""Two ``facegate serve`` processes sharing one PostgreSQL store (FACEGATE_DATABASE_URL), through
boto3: keys, collections and faces written through one server are seen through the other, and
each server's in-memory vector index follows the other's writes (the face change feed)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet

from facegate.cli import main
from tests.e2e.server import LiveServer

Image = Callable[[str], dict[str, bytes]]


@pytest.fixture
def pair(tmp_path: Path, pg_dsn: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two servers on one database; the same master key, so either can check the other's keys."""
    env = {"FACEGATE_DATABASE_URL": pg_dsn, "FACEGATE_MASTER_KEY": Fernet.generate_key().decode()}
    first = LiveServer(tmp_path / "a", workers=1, env=env)
    second = LiveServer(tmp_path / "b", workers=1, env=env)
    first.start()  # migrates the database and creates the bootstrap key
    try:
        second.start()
        yield first, second
    finally:
        second.stop()
        first.stop()


@pytest.mark.slow
def test_a_face_indexed_through_one_server_is_found_through_the_other(
    pair: tuple[LiveServer, LiveServer], image: Image
) -> None:
    first, second = pair
    assert not (second.data_dir / "credentials").exists()  # the first server's key serves both
    creds = first.credentials()
    a, b = first.client(creds), second.client(creds)
    cid = f"shared-{uuid.uuid4().hex[:12]}"
    a.create_collection(CollectionId=cid)
    assert cid in b.list_collections()["CollectionIds"]
    # b's index of the collection is loaded now, before the face exists: the feed must bring it
    assert b.search_faces_by_image(CollectionId=cid, Image=image("obama3.jpg"))["FaceMatches"] == []
    indexed = a.index_faces(CollectionId=cid, Image=image("obama.jpg"), ExternalImageId="o1")
    face_id = indexed["FaceRecords"][0]["Face"]["FaceId"]
    found = b.search_faces_by_image(CollectionId=cid, Image=image("obama3.jpg"))
    assert [m["Face"]["FaceId"] for m in found["FaceMatches"]] == [face_id]
    assert b.describe_collection(CollectionId=cid)["FaceCount"] == 1
    assert b.delete_faces(CollectionId=cid, FaceIds=[face_id])["DeletedFaces"] == [face_id]
    assert a.search_faces_by_image(CollectionId=cid, Image=image("obama3.jpg"))["FaceMatches"] == []
    assert a.describe_collection(CollectionId=cid)["FaceCount"] == 0
    b.delete_collection(CollectionId=cid)
    with pytest.raises(a.exceptions.ResourceNotFoundException):
        a.search_faces_by_image(CollectionId=cid, Image=image("obama3.jpg"))


@pytest.mark.slow
def test_with_pgvector_a_face_is_found_through_the_other_server_without_a_feed(
    tmp_path: Path, pg_dsn: str, image: Image
) -> None:
    """The first server enables pgvector (FACEGATE_VECTOR_INDEX=pgvector); the second, started
    without the setting, uses it too (store-wide). Faces written through one are found through
    the other at once, and no change feed row is written."""
    env = {"FACEGATE_DATABASE_URL": pg_dsn, "FACEGATE_MASTER_KEY": Fernet.generate_key().decode()}
    first = LiveServer(tmp_path / "a", workers=1, env={**env, "FACEGATE_VECTOR_INDEX": "pgvector"})
    second = LiveServer(tmp_path / "b", workers=1, env=env)
    first.start()
    try:
        second.start()
        creds = first.credentials()
        a, b = first.client(creds), second.client(creds)
        cid = f"pgv-{uuid.uuid4().hex[:12]}"
        a.create_collection(CollectionId=cid)
        assert (
            b.search_faces_by_image(CollectionId=cid, Image=image("obama3.jpg"))["FaceMatches"]
            == []
        )
        indexed = b.index_faces(CollectionId=cid, Image=image("obama.jpg"), ExternalImageId="o")
        face_id = indexed["FaceRecords"][0]["Face"]["FaceId"]
        found = a.search_faces_by_image(CollectionId=cid, Image=image("obama3.jpg"))
        assert [m["Face"]["FaceId"] for m in found["FaceMatches"]] == [face_id]
        assert a.describe_collection(CollectionId=cid)["FaceCount"] == 1
        with psycopg.connect(pg_dsn) as conn:
            assert conn.execute("SELECT COUNT(*) FROM face_changes").fetchone() == (0,)
            assert conn.execute("SELECT face_id FROM face_vectors").fetchall() == [(face_id,)]
        assert a.delete_faces(CollectionId=cid, FaceIds=[face_id])["DeletedFaces"] == [face_id]
        gone = b.search_faces_by_image(CollectionId=cid, Image=image("obama3.jpg"))
        assert gone["FaceMatches"] == []
        assert b.describe_collection(CollectionId=cid)["FaceCount"] == 0
    finally:
        second.stop()
        first.stop()


def _verify_anchors(first: LiveServer, second: LiveServer) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    argv = ["audit", "verify", "--anchors", "--format", "json"]
    argv += ["--data-dir", str(first.data_dir), "--data-dir", str(second.data_dir)]
    with first.environment():  # FACEGATE_DATABASE_URL: the anchors are in the shared store
        code = main(argv, out)
    doc: dict[str, Any] = json.loads(out.getvalue())
    return code, doc


@pytest.mark.slow
def test_both_servers_chains_are_anchored_in_one_verifiable_chain(
    pair: tuple[LiveServer, LiveServer],
) -> None:
    first, second = pair
    creds = first.credentials()
    a, b = first.client(creds), second.client(creds)
    for n in range(3):
        a.create_collection(CollectionId=f"anchor-a-{n}")
        b.create_collection(CollectionId=f"anchor-b-{n}")
        b.list_collections()
    second.stop()  # each server's final checkpoint is anchored as it shuts down
    first.stop()
    code, doc = _verify_anchors(first, second)
    assert code == 0, doc
    assert doc["ok"]
    assert [c["ok"] for c in doc["chains"]] == [True, True]
    assert len(doc["per_server"]) == 2
    assert all(n >= 1 for n in doc["per_server"].values())
    # Cut the second server's chain back to its first entries: broken, and the anchors say so.
    segment = second.data_dir / "audit" / "segment-000001.jsonl"
    segment.write_bytes(b"".join(segment.read_bytes().splitlines(keepends=True)[:2]))
    code, doc = _verify_anchors(first, second)
    assert code == 1
    assert not doc["ok"]
    assert [c["ok"] for c in doc["chains"]] == [True, False]
    assert "checkpoint missing" in {p["kind"] for p in doc["problems"]}
