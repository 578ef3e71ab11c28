"""Collections of several descriptor models in one store (issue 19), on SQLite and PostgreSQL:
migration 12 keeps every older collection in dlib's space, each collection keeps and indexes its
own model's vectors (length, metric), and a vector of the wrong length is refused."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import psycopg
import pytest

from facegate.store.db import Database, StoreDatabase
from facegate.store.legacy_migrations import MIGRATIONS, _statements, pg_migration
from facegate.store.pg import PostgresDatabase
from facegate.store.records import NewFace
from facegate.store.store import FaceStore
from facegate.store.vectors import ExactIndex, HnswIndex
from facegate.vectorspace import COSINE, VectorSpace, parse_space
from tests.conftest import BACKENDS
from tests.store.factory import face_id, new_face

FACERES = VectorSpace.single(COSINE, 1024)
FUSED = parse_space("euclidean:128+cosine:1024")


def _face(i: int, space: VectorSpace, model: str) -> NewFace:
    face = new_face("ignored", i)
    vector = np.random.default_rng(i).normal(0, 1, space.dim).astype(np.float32)
    return replace(face, record=replace(face.record, model_version=model), descriptor=vector)


def _version_11(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> StoreDatabase:
    """A store at version 11 with one collection and one face, opened by this facegate."""
    rows = [
        "INSERT INTO collections (uid, collection_id, arn, face_model_version, index_kind, "
        "created_at, org_id) VALUES ('col-old', 'old', 'arn', 'dlib-resnet-v1', 'exact', 1, "
        "'local')",
    ]
    face = new_face("col-old", 3)
    blob = face.descriptor.tobytes().hex()
    rows.append(
        "INSERT INTO faces (face_id, collection_uid, image_id, image_sha256, box_left, box_top, "
        "box_width, box_height, confidence, model_version, descriptor, indexed_at) VALUES "
        f"('{face_id(3)}', 'col-old', 'i', 's', 0, 0, 1, 1, 99, 'dlib-resnet-v1', X'{blob}', 1)"
    )
    if backend == "sqlite":
        path = tmp_path / "old.sqlite3"
        conn = sqlite3.connect(path, isolation_level=None)
        for version, script in enumerate(MIGRATIONS[:11]):
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        for statement in rows:
            conn.execute(statement)
        conn.close()
        return Database(path)
    dsn: str = request.getfixturevalue("pg_dsn")
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.execute(
            "CREATE TABLE facegate_schema (singleton BOOLEAN PRIMARY KEY DEFAULT TRUE "
            "CHECK (singleton), version BIGINT NOT NULL)"
        )
        for script in MIGRATIONS[:11]:
            for statement in pg_migration(script):
                pg.execute(statement.encode())
        pg.execute("INSERT INTO facegate_schema (singleton, version) VALUES (TRUE, 11)")
        for statement in rows:
            pg.execute(statement.replace("X'", "'\\x").encode())
    return PostgresDatabase(dsn)


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_12_keeps_older_collections_in_dlibs_space(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db = _version_11(backend, tmp_path, request)
    try:
        assert db.schema_version == len(MIGRATIONS) >= 12
        store = FaceStore(db)
        old = store.get_collection("local", "old")
        assert (old.face_model_version, old.descriptor_space) == ("dlib-resnet-v1", "euclidean:128")
        probe = new_face("x", 3).descriptor
        [hit] = store.nearest(old, probe, 5, 0.1)
        assert (hit.face_id, hit.distance) == (face_id(3), 0.0)
        # a faceres collection beside it, in its own space
        new = store.create_collection("new", "arn", "faceres-v1", org_id="local", space=FACERES)
        assert store.refresh(new).descriptor_space == "cosine:1024"
        store.add_faces(new, [_face(i, FACERES, "faceres-v1") for i in range(10, 15)])
        assert len(store.index(new)) == 5
        assert len(store.index(old)) == 1
    finally:
        db.close()


def test_each_collection_keeps_its_models_space(database: StoreDatabase) -> None:
    store = FaceStore(database)
    dlib = store.create_collection("d", "arn", "dlib-resnet-v1", org_id="o")
    faceres = store.create_collection("f", "arn", "faceres-v1", org_id="o", space=FACERES)
    fused = store.create_collection("u", "arn", "fused", org_id="o", space=FUSED)
    store.add_faces(dlib, [new_face("x", i) for i in range(3)])
    store.add_faces(faceres, [_face(i, FACERES, "faceres-v1") for i in range(10, 14)])
    store.add_faces(fused, [_face(i, FUSED, "fused") for i in range(20, 26)])
    # a vector of another model's length is refused before anything is written
    with pytest.raises(ValueError, match="a descriptor of 128 values for a collection of 1024"):
        store.add_faces(faceres, [new_face("x", 30)])
    assert store.counts(faceres) == (4, 0)
    # a second store (another server) loads each index in its own space
    again = FaceStore(database)
    for collection, space, count in ((dlib, "euclidean:128", 3), (faceres, "cosine:1024", 4)):
        index = again.index(collection)
        assert (str(index.space), len(index)) == (space, count)
    probe = _face(12, FACERES, "faceres-v1").descriptor
    [hit, *_] = again.nearest(faceres, probe, 2, 2.0)
    assert hit.face_id == face_id(12)
    assert hit.distance == pytest.approx(0.0, abs=1e-6)
    # the fused space's distance is the weighted sum of its parts'
    probe = _face(25, FUSED, "fused").descriptor * 1.5  # cosine part unchanged by scale
    hits = again.nearest(fused, probe, 6, np.inf, weights=(2.0, 1.0))
    assert len(hits) == 6
    top = hits[0]
    assert top.face_id == face_id(25)
    expected = 2.0 * float(np.linalg.norm(probe[:128] / 1.5 * 0.5))
    assert top.distance == pytest.approx(expected, rel=1e-6)
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)


def test_hnsw_cannot_hold_a_space_of_several_parts(database: StoreDatabase) -> None:
    store = FaceStore(database)
    with pytest.raises(ValueError, match="HNSW indexes a space of one part"):
        store.create_collection("u", "arn", "fused", "hnsw", org_id="o", space=FUSED)
    assert store.find_collection("o", "u") is None


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_cosine_search_agrees_with_the_exact_distances(kind: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(0, 1, (300, 64)).astype(np.float32)
    ids = [str(uuid.UUID(int=i)) for i in range(300)]
    space = VectorSpace.single(COSINE, 64)
    index = ExactIndex(space) if kind == "exact" else HnswIndex(space=space)
    index.add(ids, vectors)
    query = vectors[7] + rng.normal(0, 0.3, 64).astype(np.float32)
    exact = space.distances(query, vectors)
    bound = float(np.sort(exact)[10])
    hits = index.search(query, 50, bound)
    want = [ids[i] for i in np.argsort(exact) if exact[i] <= bound]
    assert [h.face_id for h in hits] == want
    for hit in hits:
        assert hit.distance == pytest.approx(exact[ids.index(hit.face_id)], abs=1e-5)
