"""Face vectors in pgvector (issue 23) on the tests' PostgreSQL (pgserver ships pgvector 0.6.2):
servers share every face at once with no feed, searches answer exactly what the in-memory exact
index answers on real descriptors, and writes to different collections do not wait for each
other. Small collections only (the scale is measured in bench/pgvector_scale.py)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import psycopg
import pytest

from facegate.engine.core import FaceEngine
from facegate.engine.similarity import default_similarity
from facegate.errors import ResourceNotFoundException
from facegate.store import pgvectors
from facegate.store.pg import PostgresDatabase
from facegate.store.records import CollectionRecord, NewFace
from facegate.store.store import FaceStore
from facegate.store.vectors import ExactIndex
from facegate.vectorspace import DLIB_SPACE, VectorSpace, parse_space
from tests.conftest import SHARED_DATA
from tests.store.factory import face_id, new_face

LFW = SHARED_DATA / "lfw" / "images"
PEOPLE = 16
STRANGERS = 300
Matrix = npt.NDArray[np.float32]


@pytest.fixture(scope="module")
def lfw_descriptors(engine: FaceEngine) -> tuple[Matrix, Matrix]:
    """(enrolled, probes): the engine's descriptors of the first and the last photo of the first
    :data:`PEOPLE` LFW people (by name) with two or more photos in which it finds a face."""
    enrolled, probes = [], []
    for person in sorted(LFW.iterdir()):
        photos = sorted(person.glob("*.jpg"))
        if len(photos) < 2:
            continue
        pair = [_descriptor(engine, p) for p in (photos[0], photos[-1])]
        if pair[0] is not None and pair[1] is not None:
            enrolled.append(pair[0])
            probes.append(pair[1])
        if len(enrolled) == PEOPLE:
            break
    return np.stack(enrolled), np.stack(probes)


def _descriptor(engine: FaceEngine, path: Path) -> Matrix | None:
    faces = engine.analyze(path.read_bytes(), max_faces=1).faces
    if not faces or faces[0].descriptor is None:
        return None
    return np.asarray(faces[0].descriptor, dtype=np.float32)


@pytest.fixture
def two_servers(pg_dsn: str) -> Iterator[tuple[FaceStore, FaceStore]]:
    """Two stores on one PostgreSQL database with its vectors in pgvector, as two servers would
    open it (the first enabled them, ``FACEGATE_VECTOR_INDEX=pgvector``; the second did not ask)."""
    a, b = PostgresDatabase(pg_dsn), PostgresDatabase(pg_dsn)
    assert a.enable_vectors()
    yield FaceStore(a), FaceStore(b)
    a.close()
    b.close()


def test_vectors_are_opt_in_store_wide_and_copied_when_enabled(pg_dsn: str) -> None:
    """A PostgreSQL store keeps its vectors in memory until a server enables pgvector; enabling
    copies every stored face (the HNSW graph built after), is done once, and from then on every
    store opened on the database uses pgvector, whatever it asked for."""
    db = PostgresDatabase(pg_dsn)
    try:
        before = FaceStore(db)
        assert not before.vectors_in_db
        assert not db.has_vectors
        c = before.create_collection("c", "arn", "m")
        empty = before.create_collection("empty", "arn", "m")
        faces = [new_face("c", i) for i in range(7)]
        before.add_faces(c, faces)
        with pytest.raises(ValueError, match="no pgvector tables"):
            FaceStore(db, vectors_in_db=True)
        assert db.enable_vectors() is True
        assert db.enable_vectors() is False  # already: nothing done twice
        after = FaceStore(db)
        assert after.vectors_in_db
        assert after.indexes.held() == frozenset()
        assert after.face_count(c) == 7
        assert after.face_count(empty) == 0
        assert len(after.index(c)) == 7
        for face in faces:
            [hit] = after.nearest(c, face.descriptor, 1, 0.1)
            assert hit.face_id == face.record.face_id
        with db.read() as conn:
            indexes = conn.execute(
                "SELECT COUNT(*) FROM pg_indexes WHERE indexdef LIKE '%USING hnsw%'"
            ).fetchone()
        assert indexes[0] == 2  # one graph per collection, the empty one's too
    finally:
        db.close()


def _with_vector(face: NewFace, vector: Matrix) -> NewFace:
    return replace(face, descriptor=np.asarray(vector, dtype=np.float32))


def test_the_extension_and_the_partitioned_table_exist(two_servers: tuple[FaceStore, ...]) -> None:
    a, _ = two_servers
    assert a.vectors_in_db
    with a.db.read() as conn:
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert version.fetchone() is not None
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'face_vectors'")
        assert kind.fetchone()[0] == "p"  # partitioned


def test_a_server_in_memory_refuses_face_writes_once_another_enabled_pgvector(
    pg_dsn: str,
) -> None:
    """A server started before the switch would write faces without their vectors: its face
    writes fail, and write nothing, until it restarts (and then uses pgvector)."""
    a, b = PostgresDatabase(pg_dsn), PostgresDatabase(pg_dsn)
    try:
        old = FaceStore(a)
        c = old.create_collection("c", "arn", "m")
        old.add_faces(c, [new_face("c", 0)])
        assert b.enable_vectors()
        moved = "face vectors were moved to pgvector by another server"
        with pytest.raises(RuntimeError, match=moved):
            old.add_faces(c, [new_face("c", 1)])
        with pytest.raises(RuntimeError, match=moved):
            old.delete_faces(c, [face_id(0)])
        with pytest.raises(RuntimeError, match=moved):
            old.delete_collection(c)
        restarted = FaceStore(a)
        assert restarted.vectors_in_db
        assert restarted.face_count(c) == 1
        assert [h.face_id for h in restarted.nearest(c, new_face("c", 0).descriptor, 9, 0.1)] == [
            face_id(0)
        ]
    finally:
        a.close()
        b.close()


def test_two_servers_find_each_others_faces_at_once_without_a_feed(
    two_servers: tuple[FaceStore, FaceStore],
) -> None:
    a, b = two_servers
    c = a.create_collection("c", "arn", "dlib-resnet-v1", org_id="o")
    faces = [new_face("c", i) for i in range(12)]
    a.add_faces(c, faces[:6])
    b.add_faces(c, faces[6:])
    for store in (a, b):
        for face in (faces[1], faces[9]):
            [hit] = store.nearest(c, face.descriptor, 1, 0.1)
            assert (hit.face_id, hit.distance) == (face.record.face_id, 0.0)
        assert store.face_count(c) == 12
        assert len(store.index(c)) == 12
    b.delete_faces(c, [faces[1].record.face_id])
    assert a.nearest(c, faces[1].descriptor, 1, 0.1) == []
    assert a.face_count(c) == 11
    assert faces[1].record.face_id not in a.index(c)
    with a.db.read() as conn:  # no change feed was written: nothing to catch up with
        assert conn.execute("SELECT COUNT(*) FROM face_changes").fetchone()[0] == 0
    assert a.catch_up() == b.catch_up() == 0
    # a collection deleted by one server is gone for the other at once (its partition dropped)
    b.delete_collection(c)
    with pytest.raises(ResourceNotFoundException, match="The collection id: c does not exist"):
        a.nearest(c, faces[2].descriptor, 1, 0.1)
    with pytest.raises(ResourceNotFoundException):
        a.add_faces(c, [new_face("c", 50)])
    assert a.face_count(c) == 0


def test_a_server_starting_loads_no_vectors(two_servers: tuple[FaceStore, FaceStore]) -> None:
    a, b = two_servers
    c = a.create_collection("c", "arn", "dlib-resnet-v1")
    a.add_faces(c, [new_face("c", i) for i in range(5)])
    late = FaceStore(b.db)
    assert late.indexes.held() == frozenset()
    assert late.nearest(c, new_face("c", 3).descriptor, 1, 0.1)[0].face_id == face_id(3)
    assert late.indexes.held() == frozenset()


def _collection_of(
    store: FaceStore, vectors: Matrix, space: VectorSpace = DLIB_SPACE, name: str = "c"
) -> tuple[CollectionRecord, ExactIndex, list[str]]:
    c = store.create_collection(name, "arn", "m", space=space)
    ids = [face_id(i) for i in range(len(vectors))]
    faces = [_with_vector(new_face(name, i), v) for i, v in enumerate(vectors)]
    for start in range(0, len(faces), 100):
        store.add_faces(c, faces[start : start + 100])
    exact = ExactIndex(space)
    exact.add(ids, vectors)
    return c, exact, ids


def test_answers_equal_the_exact_index_on_real_descriptors(
    two_servers: tuple[FaceStore, FaceStore], lfw_descriptors: tuple[Matrix, Matrix]
) -> None:
    """Real LFW people (each probe's mate is in the collection) among strangers drawn around
    them; at Similarity 80 and 99 and at several MaxFaces, the same faces, distances and order
    as the in-memory exact index, and the mates found."""
    a, _ = two_servers
    enrolled, probes = lfw_descriptors
    rng = np.random.default_rng(23)
    spread = enrolled.std(axis=0)
    strangers = enrolled.mean(axis=0) + rng.standard_normal((STRANGERS, 128)) * spread
    vectors = np.vstack([enrolled, strangers]).astype(np.float32)
    c, exact, _ = _collection_of(a, vectors)
    similarity = default_similarity()
    mates = 0
    for i, probe in enumerate(probes):
        for pct in (80.0, 99.0):
            bound = similarity.distance_for(pct)
            for k in (1, 3, 4096):
                want = exact.search(probe, k, bound)
                got = a.nearest(c, probe, k, bound)
                assert got == want, (i, pct, k)
        mates += face_id(i) in {h.face_id for h in a.nearest(c, probe, 4096, 0.6)}
    assert mates >= PEOPLE * 3 // 4  # dlib finds most LFW mates at its 0.6 rule


def test_wide_searches_widen_until_the_list_holds_the_partition(
    two_servers: tuple[FaceStore, ...],
) -> None:
    """Every face within reach: the candidate list widens past the first pass (ef_search 40:
    then 160, 640), and a list shorter than asked that holds every face of the partition ends
    the search without a scan; still the exact answer. The default first pass (400) holds the
    whole partition."""
    a, _ = two_servers
    vectors = np.random.default_rng(5).normal(0, 0.1, (STRANGERS, 128)).astype(np.float32)
    c, exact, _ = _collection_of(a, vectors)
    narrow = FaceStore(a.db, ef_search=40)
    probe = vectors[7] + 0.01
    for store in (a, narrow):
        for k in (100, 4096):
            assert store.nearest(c, probe, k, 10.0) == exact.search(probe, k, 10.0)
        assert len(store.nearest(c, probe, 4096, float("inf"))) == STRANGERS
    index = narrow.index(c)
    assert isinstance(index, pgvectors.PgVectorIndex)
    _, passes = index.search_traced(probe, 4096, 10.0)
    assert [(p.kind, p.asked, p.listed) for p in passes] == [
        ("graph", 40, 40), ("graph", 160, 160), ("graph", 640, STRANGERS)
    ]  # fmt: skip
    # a search that needs few candidates stops at the first pass and still answers exactly
    bound = exact.search(probe, 2, 10.0)[-1].distance
    assert narrow.nearest(c, probe, 4096, bound) == exact.search(probe, 4096, bound)


WIDE = 1500
"""Faces of the widening tests: more than pgvector's longest list (1,000)."""


@pytest.fixture
def wide_collection(
    two_servers: tuple[FaceStore, FaceStore], lfw_descriptors: tuple[Matrix, Matrix]
) -> tuple[pgvectors.PgVectorIndex, ExactIndex, Matrix]:
    """(the pgvector index at first list 40, the exact index, probes) of a collection of
    :data:`WIDE` faces: the real LFW people and strangers drawn with their spread."""
    a, _ = two_servers
    enrolled, probes = lfw_descriptors
    rng = np.random.default_rng(1000)
    strangers = enrolled.mean(axis=0) + rng.standard_normal((WIDE - PEOPLE, 128)) * enrolled.std(
        axis=0
    )
    c, exact, _ = _collection_of(a, np.vstack([enrolled, strangers]).astype(np.float32))
    index = FaceStore(a.db, ef_search=40).index(c)
    assert isinstance(index, pgvectors.PgVectorIndex)
    return index, exact, probes


def _bound_holding(exact: ExactIndex, probe: Matrix, faces: int) -> float:
    """A distance with exactly ``faces`` faces of ``exact`` within it (midway to the next)."""
    d = [h.distance for h in exact.search(probe, faces + 1, float("inf"))]
    return (d[faces - 1] + d[faces]) / 2


def test_a_wide_search_reads_pgvectors_longest_list_before_any_scan(
    wide_collection: tuple[pgvectors.PgVectorIndex, ExactIndex, Matrix],
) -> None:
    """About 400 of 1,500 faces within the bound: the lists of 40, 160 and 640 lie mostly
    within it, so the search widens to pgvector's longest list (1,000, not 4 x 640: that would
    be a scan), whose tail (more than half) lies beyond it, and stops there: no scan. Every
    face returned is exact; the graph, searched this wide, misses almost nothing."""
    index, exact, probes = wide_collection
    for probe in probes[:3]:
        bound = _bound_holding(exact, probe, 400)
        want = {h.face_id: h.distance for h in exact.search(probe, 4096, bound)}
        hits, passes = index.search_traced(probe, 4096, bound)
        assert [(p.kind, p.asked) for p in passes] == [
            ("graph", 40), ("graph", 160), ("graph", 640), ("graph", pgvectors.EF_MAX)
        ]  # fmt: skip
        assert passes[-1].listed == pgvectors.EF_MAX
        assert passes[-1].within < (1 - pgvectors.BEYOND_SHARE) * pgvectors.EF_MAX
        assert passes[-2].within > (1 - pgvectors.BEYOND_SHARE) * 640
        assert all(want[h.face_id] == h.distance for h in hits)  # exact, and no face beyond
        assert len(hits) >= 0.99 * len(want) == 0.99 * 400
        assert [h.distance for h in hits] == sorted(h.distance for h in hits)


def test_a_list_within_the_bound_to_its_end_is_followed_by_an_exact_scan(
    wide_collection: tuple[pgvectors.PgVectorIndex, ExactIndex, Matrix],
) -> None:
    """1,200 of 1,500 faces within the bound (or every face: no bound): even pgvector's longest
    list lies mostly (without a bound, wholly) within it, so the search scans the partition, and
    answers exactly what the exact index answers."""
    index, exact, probes = wide_collection
    probe = probes[0]
    for bound in (_bound_holding(exact, probe, 1200), float("inf")):
        hits, passes = index.search_traced(probe, 4096, bound)
        assert [(p.kind, p.asked) for p in passes] == [
            ("graph", 40), ("graph", 160), ("graph", 640), ("graph", 1000), ("scan", 0)
        ]  # fmt: skip
        longest = passes[-2]
        assert longest.listed == 1000
        assert longest.within > (1 - pgvectors.BEYOND_SHARE) * 1000
        if math.isinf(bound):  # every face listed is within no bound
            assert longest.within == 1000
        assert hits == exact.search(probe, 4096, bound)
        assert len(hits) == (WIDE if math.isinf(bound) else 1200)
        assert index.search(probe, 7, bound) == exact.search(probe, 7, bound)


def test_a_list_whose_tail_lies_beyond_the_bound_stops_at_the_first_pass(
    wide_collection: tuple[pgvectors.PgVectorIndex, ExactIndex, Matrix],
) -> None:
    """Ten faces within the bound: the first list (40) reaches well past them and is the only
    one read; the answer is the exact one. Twenty-five within: more than half of the first list,
    so it widens once (160) and stops."""
    index, exact, probes = wide_collection
    for probe in probes[:3]:
        for faces, asked in ((10, [40]), (25, [40, 160])):
            bound = _bound_holding(exact, probe, faces)
            hits, passes = index.search_traced(probe, 4096, bound)
            assert [p.asked for p in passes] == asked
            assert {p.kind for p in passes} == {"graph"}
            assert hits == exact.search(probe, 4096, bound)


def test_ef_search_is_bounded(two_servers: tuple[FaceStore, ...]) -> None:
    a, _ = two_servers
    for bad in (0, 1001):
        with pytest.raises(ValueError, match="ef_search must be between 1 and 1000"):
            FaceStore(a.db, ef_search=bad)
    c = a.create_collection("c", "arn", "m")
    with pytest.raises(ValueError, match="ef_search must be between 1 and 1000"):
        pgvectors.PgVectorIndex(a.db, c.uid, DLIB_SPACE, ef_search=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("space_text", ["cosine:1024", "euclidean:128+cosine:1024"])
def test_other_spaces_and_weights_answer_exactly(
    two_servers: tuple[FaceStore, ...], space_text: str
) -> None:
    """faceres' cosine space (the HNSW index on cosine) and a fused space (the longest part is
    the shortlist key; the weighted sum is re-ranked exactly) with and without weights."""
    a, _ = two_servers
    space = parse_space(space_text)
    base = np.random.default_rng(9).normal(0, 1, (60, space.dim)).astype(np.float32)
    c, exact, _ = _collection_of(a, base, space)
    weights = None if space.simple else (0.7, 1.6)
    for i in (0, 17, 42):
        probe = base[i] + np.random.default_rng(i).normal(0, 0.3, space.dim).astype(np.float32)
        nearest = exact.search(probe, 3, float("inf"), weights)
        bound = nearest[-1].distance  # three faces within reach
        for k in (1, 2, 4096):
            got = a.nearest(c, probe, k, bound * (1 + 1e-12), weights=weights)
            want = exact.search(probe, k, bound * (1 + 1e-12), weights)
            # the same faces in the same order; a cosine distance is a dot product, which BLAS
            # may round differently (1 ulp) for a different number of candidate rows
            assert [h.face_id for h in got] == [h.face_id for h in want], (i, k)
            assert [h.distance for h in got] == pytest.approx([h.distance for h in want], 1e-12)
        assert len(a.nearest(c, probe, 4096, bound * (1 + 1e-12), weights=weights)) == 3


def test_the_index_is_an_hnsw_graph_on_the_collections_partition(
    two_servers: tuple[FaceStore, ...],
) -> None:
    a, _ = two_servers
    c = a.create_collection("c", "arn", "m")
    partition = pgvectors.partition_name(c.uid)
    with a.db.read() as conn:
        definition = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = :t", {"t": partition}
        ).fetchall()
    assert any("USING hnsw" in r[0] and "vector_l2_ops" in r[0] for r in definition)
    assert any("m='32', ef_construction='128'" in r[0] for r in definition), definition


def test_writes_to_different_collections_do_not_wait_for_each_other(pg_dsn: str) -> None:
    """A write transaction scoped to one collection holds that collection's lock and the
    store-wide lock shared: another collection's write goes ahead, the same collection's and a
    store-wide write wait until it commits."""
    holder, other = PostgresDatabase(pg_dsn), PostgresDatabase(pg_dsn, statement_timeout_s=5)
    # opened first: opening a store checks its schema under the store-wide lock
    dbs = [PostgresDatabase(pg_dsn), PostgresDatabase(pg_dsn)]
    try:
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with holder.transaction(scope="col-a"):
                held.set()
                release.wait(10)

        thread = threading.Thread(target=hold)
        thread.start()
        assert held.wait(10)
        t0 = time.monotonic()
        with other.transaction(scope="col-b"):
            pass
        assert time.monotonic() - t0 < 2.0  # not blocked by col-a
        waited: dict[str, float] = {}

        def write(name: str, db: PostgresDatabase, scope: str | None) -> None:
            start = time.monotonic()
            with db.transaction(scope=scope):
                waited[name] = time.monotonic() - start

        writers = [
            threading.Thread(target=write, args=("same", dbs[0], "col-a")),
            threading.Thread(target=write, args=("store-wide", dbs[1], None)),
        ]
        for w in writers:
            w.start()
        time.sleep(0.8)
        assert waited == {}  # both still waiting for col-a's transaction
        release.set()
        thread.join(10)
        for w in writers:
            w.join(10)
        assert set(waited) == {"same", "store-wide"}
        assert min(waited.values()) >= 0.7
    finally:
        for db in (holder, other, *dbs):
            db.close()


def test_a_search_script_holds_no_caller_text(two_servers: tuple[FaceStore, ...]) -> None:
    """Partition names come from a digest; a uid outside the API's pattern is refused."""
    a, _ = two_servers
    assert pgvectors.partition_name("x'; DROP TABLE faces; --").startswith("face_vectors_")
    with a.db.read() as conn, pytest.raises(ValueError, match="not a collection uid"):
        pgvectors.create_partition(conn, "x'; DROP TABLE faces; --", DLIB_SPACE)
    with pytest.raises(psycopg.Error):  # a malformed script is PostgreSQL's error, not ours
        a.db.fetch_script("SELECT FROM nowhere_at_all")  # type: ignore[attr-defined]
