"""Face vectors inside PostgreSQL (pgvector): the vector index of a store on PostgreSQL.

When the store is PostgreSQL and its vectors were enabled there (``FACEGATE_VECTOR_INDEX=pgvector``:
``pg.PostgresDatabase.enable_vectors`` creates the ``vector`` extension, which the ``pgserver``
wheel ships as pgvector 0.6.2, store-wide), descriptors are searched in SQL and a server
holds no vectors in memory: nothing is loaded at start-up and no change feed is needed, since
every search reads the committed state.

Layout (created by :func:`create_partition` in the collection's creating transaction):

* ``face_vectors (collection_uid, face_id, ann vector)``, declaratively partitioned by
  ``LIST (collection_uid)``: one partition per collection, so a search touches only its
  collection, each collection has an HNSW graph of its own (a graph over every collection with a
  ``WHERE collection_uid = ...`` filter would lose recall: HNSW returns ``ef_search`` candidates
  before the filter), and deleting a collection drops its partition;
* ``ann`` holds the *shortlist key* of a face: the whole descriptor for a space of one part
  (dlib's ``euclidean:128``, faceres' ``cosine:1024``), and the largest part for a fused space
  (:func:`ann_part`). The HNSW index is an expression index on ``ann::vector(d)`` with the part's
  operator class (``vector_l2_ops`` / ``vector_cosine_ops``); pgvector 0.6 indexes at most 2,000
  dimensions, so a longer part is searched by a sequential scan (exact, slower);
* ``face_vector_counts (collection_uid, faces)``: the number of faces per collection, kept in the
  write transactions, so the face count policy reads is one row, not a ``COUNT(*)``.

Why one part of a fused space rather than the parts' weighted concatenation: the weighted sum of
a Euclidean and a cosine distance is not any pgvector metric of a concatenation, so either key
is only a shortlist; one part's distance gives an exact stopping rule (below), a concatenation
does not without a looser bound. The shortlist is then re-ranked exactly anyway.

Search contract (:meth:`PgVectorIndex.search`): the answer is the exact answer of
:class:`~facegate.store.vectors.ExactIndex` restricted to the faces the shortlist found. The
shortlist is read from the HNSW graph nearest first by the key distance; every candidate's
distance is recomputed in float64 from its stored descriptor (``faces.descriptor``, the bytes the
in-memory index would hold) with the space's weights, and only then is the threshold applied. A
face within ``max_distance`` of the query in the weighted space has a key-part distance of at
most ``max_distance / w_j`` (all distances are non-negative; :func:`key_bound`), so only the
candidates within that key bound are re-ranked (their descriptors alone are read), and the list's
tail beyond the bound says how far the graph search reached past the faces that can match.

The candidate list (first ``ef_search`` long, the index's setting:
``FACEGATE_PGVECTOR_EF_SEARCH``) is widened (x4, then to pgvector's largest list,
:data:`EF_MAX` = 1,000) until at least half of it (:data:`BEYOND_SHARE`) lies beyond the key
bound: the faces that can match are then the first half of a graph search that went on as far
again past them (a graph search misses faces near the end of its list, rarely near its start).
It also stops when ``k`` faces within ``max_distance`` are found in a space of one part (the key
order is then the exact order), or when the list holds the whole partition. Only a list of
1,000 still mostly within the bound (or a graph that returns fewer rows than asked while the
partition holds more) is followed by a sequential scan of the partition, exact and slow (1.4 s
at 1M faces). What HNSW misses is its recall, measured against the exact index in
``bench/pgvector_scale.py``; :meth:`PgVectorIndex.search_traced` says which lists a search read.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import psycopg
from sqlalchemy import bindparam, select, text

from facegate.store import schema
from facegate.store.collections import collection_not_found
from facegate.store.db import Connection
from facegate.store.vectors import Hit, Matrix
from facegate.vectorspace import COSINE, VectorSpace


class VectorDatabase(Protocol):
    """What the index needs of the store's database (``pg.PostgresDatabase``)."""

    def read(self) -> AbstractContextManager[Connection]: ...

    def fetch_script(self, script: str) -> list[tuple[Any, ...]]: ...


PARENT = "face_vectors"
COUNTS = "face_vector_counts"
ANN_MAX_DIM = 2000
"""pgvector 0.6's largest indexable ``vector``: a longer key is searched without an index."""
EF_MAX = 1000
"""pgvector 0.6's largest ``hnsw.ef_search``: an HNSW scan returns at most this many rows."""
BEYOND_SHARE = 0.5
"""A threshold search widens its candidate list until this share of it (its tail) lies beyond the
key bound. 0.75 until issue 23's 1M run: at Similarity 80 about 290 of a million faces lie within
the bound, so a list of 1,000 (710 beyond) still fell short and every such search scanned."""
DEFAULT_EF_SEARCH = 400
"""The first candidate list of a search, and the smallest HNSW list explored: recall against
time, measured in bench/pgvector_scale.py (docs/scaling.md)."""
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 128
"""Each collection's graph: twice pgvector's defaults (16, 64). On dlib descriptors at 100k faces
this raised the hit recall at Similarity 80 from 97.2% to 99.7% at ef_search 100 (and from 99.2%
to 99.97% at 400); the graph is 98 MiB instead of 79 (bench/pgvector_scale.py, docs/scaling.md)."""
_UID = re.compile(r"^[A-Za-z0-9_.:\-]{1,255}$")

DDL = (
    f"""
    CREATE TABLE {PARENT} (
        collection_uid     TEXT NOT NULL,
        face_id            TEXT NOT NULL,
        ann                vector NOT NULL,
        PRIMARY KEY (collection_uid, face_id)
    ) PARTITION BY LIST (collection_uid)
    """,
    f"""
    CREATE TABLE {COUNTS} (
        collection_uid     TEXT PRIMARY KEY,
        faces              BIGINT NOT NULL
    )
    """,
)
"""The tables ``enable_vectors`` creates (after ``CREATE EXTENSION vector``)."""

# The statements: ``text()`` with named parameters (SQLAlchemy has no construct for partitions,
# ``USING hnsw`` or pgvector's operators), those over a collection's partition formatted with
# its name (a digest, see partition_name); the face reads are Core over the schema.
_INSERT_COUNT = text(
    f"INSERT INTO {COUNTS} (collection_uid, faces) VALUES (:uid, 0) "
    "ON CONFLICT (collection_uid) DO NOTHING"
)
_DELETE_COUNT = text(f"DELETE FROM {COUNTS} WHERE collection_uid = :uid")
_ADD_COUNT = text(f"UPDATE {COUNTS} SET faces = faces + :delta WHERE collection_uid = :uid")
_COUNT = text(f"SELECT faces FROM {COUNTS} WHERE collection_uid = :uid")
_DESCRIPTORS = select(schema.faces.c.face_id, schema.faces.c.descriptor).where(
    schema.faces.c.collection_uid == bindparam("uid"),
    schema.faces.c.face_id.in_(bindparam("ids", expanding=True)),
)


def partition_name(uid: str) -> str:
    """The partition of collection ``uid``: a fixed prefix and 96 bits of the uid's SHA-256 (a
    valid identifier whatever the uid; collision-free in practice)."""
    return f"{PARENT}_{hashlib.sha256(uid.encode()).hexdigest()[:24]}"


def ann_part(space: VectorSpace) -> int:
    """The part of ``space`` whose values form the shortlist key: the longest (the first of
    equals). A space of one part: that part."""
    dims = [p.dim for p in space.parts]
    return dims.index(max(dims))


def _operator(space: VectorSpace) -> tuple[str, str]:
    """(distance operator, operator class) of the key part's metric."""
    if space.parts[ann_part(space)].metric == COSINE:
        return "<=>", "vector_cosine_ops"
    return "<->", "vector_l2_ops"


def vector_text(values: Sequence[float] | Matrix) -> str:
    """pgvector's text form of a vector. Python's shortest repr of each float32 (as a double)
    parses back to the same float32, so the stored key is the descriptor bit for bit."""
    return "[" + ",".join(repr(float(v)) for v in np.asarray(values, dtype=np.float32)) + "]"


def ann_keys(space: VectorSpace, vectors: Matrix) -> list[str]:
    """The shortlist key of each row of ``vectors`` (descriptors of ``space``), as text."""
    cut = space.slices()[ann_part(space)]
    matrix = np.asarray(vectors, dtype=np.float32).reshape(-1, space.dim)
    return [vector_text(row[cut]) for row in matrix]


def _quoted_uid(uid: str) -> str:
    """``uid`` as a SQL literal inside ``text()`` (a colon escaped, so it is not a parameter)."""
    if not _UID.match(uid):  # uids are "col-" + hex, or an old collection id (the API's pattern)
        raise ValueError(f"not a collection uid: {uid!r}")
    return "'" + uid.replace(":", "\\:") + "'"


def create_partition(conn: Connection, uid: str, space: VectorSpace, index: bool = True) -> None:
    """Inside a write transaction: the collection's partition, its HNSW index (unless ``index``
    is False or the key is longer than :data:`ANN_MAX_DIM`) and its count row (0)."""
    name = partition_name(uid)
    conn.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {PARENT} "
            f"FOR VALUES IN ({_quoted_uid(uid)})"
        )
    )
    if index:
        build_index(conn, uid, space)
    conn.execute(_INSERT_COUNT, {"uid": uid})


def build_index(conn: Connection, uid: str, space: VectorSpace) -> None:
    """The HNSW index of the collection's partition (nothing if present, or if the key is too
    long to index). Building after a bulk load is much faster than inserting into a graph."""
    dim = space.parts[ann_part(space)].dim
    if dim > ANN_MAX_DIM:
        return
    name = partition_name(uid)
    _, opclass = _operator(space)
    conn.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {name}_hnsw ON {name} USING hnsw "
            f"((ann::vector({dim})) {opclass}) "
            f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
        )
    )


def drop_index(conn: Connection, uid: str) -> None:
    """Drop the collection's HNSW index (before a bulk load; :func:`build_index` after it)."""
    conn.execute(text(f"DROP INDEX IF EXISTS {partition_name(uid)}_hnsw"))


def drop_partition(conn: Connection, uid: str) -> None:
    """Inside the transaction deleting the collection: its partition and count row."""
    conn.execute(text(f"DROP TABLE IF EXISTS {partition_name(uid)}"))
    conn.execute(_DELETE_COUNT, {"uid": uid})


def insert_vectors(
    conn: Connection, uid: str, space: VectorSpace, face_ids: Sequence[str], vectors: Matrix
) -> None:
    """Inside the write transaction storing the faces: their keys, and the count raised."""
    keys = ann_keys(space, vectors)
    conn.executemany(
        text(
            f"INSERT INTO {partition_name(uid)} (collection_uid, face_id, ann) "
            "VALUES (:uid, :face_id, :ann)"
        ),
        [{"uid": uid, "face_id": f, "ann": key} for f, key in zip(face_ids, keys, strict=True)],
    )
    add_count(conn, uid, len(face_ids))


def delete_vectors(conn: Connection, uid: str, face_ids: Sequence[str]) -> None:
    """Inside the write transaction deleting the faces (all present): their keys, and the
    count lowered."""
    delete = text(f"DELETE FROM {partition_name(uid)} WHERE face_id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    for start in range(0, len(face_ids), 500):
        conn.execute(delete, {"ids": list(face_ids[start : start + 500])})
    add_count(conn, uid, -len(face_ids))


def add_count(conn: Connection, uid: str, delta: int) -> None:
    if delta:
        conn.execute(_ADD_COUNT, {"delta": delta, "uid": uid})


def face_count(conn: Connection, uid: str) -> int | None:
    """The collection's face count (None: no such collection)."""
    row = conn.execute(_COUNT, {"uid": uid}).fetchone()
    return None if row is None else int(row[0])


def key_bound(space: VectorSpace, max_distance: float, weights: Sequence[float]) -> float:
    """The largest key distance a face within ``max_distance`` (weighted space distance) can
    have: ``max_distance / w_j`` for the key part ``j``, plus a margin for pgvector's float32
    arithmetic."""
    if not math.isfinite(max_distance):
        return math.inf
    return max_distance / weights[ann_part(space)] + 1e-3


@dataclass(frozen=True)
class SearchPass:
    """One candidate list a search read: from the HNSW graph (``asked``: its length asked, the
    ``hnsw.ef_search`` and ``LIMIT``) or a sequential scan (``asked`` 0); ``listed``: the
    candidates it held (a scan lists only those within the key bound); ``within``: those within
    the key bound, the ones re-ranked."""

    kind: Literal["graph", "scan"]
    asked: int
    listed: int
    within: int


class PgVectorIndex:
    """The vector index of one collection on PostgreSQL (see the module docstring).

    A search is one round trip (:meth:`VectorDatabase.fetch_script`: ``SET LOCAL`` of the
    search's settings, then the query). Faces are written by the store's own write transactions
    (:func:`insert_vectors`, :func:`delete_vectors`); :meth:`add` and :meth:`remove` therefore
    do nothing: the database is the index. A search of a collection deleted meanwhile raises
    ``ResourceNotFoundException`` naming ``collection_id``."""

    kind = "pgvector"

    def __init__(
        self,
        db: VectorDatabase,
        uid: str,
        space: VectorSpace,
        collection_id: str = "",
        ef_search: int = DEFAULT_EF_SEARCH,
    ) -> None:
        self._read = db.read
        self._fetch = db.fetch_script
        self.collection_id = collection_id or uid
        self.uid = uid
        self.space = space
        if not 1 <= ef_search <= EF_MAX:
            raise ValueError(f"ef_search must be between 1 and {EF_MAX}, got {ef_search}")
        self.ef_search = ef_search
        self._table = partition_name(uid)
        self._key_dim = space.parts[ann_part(space)].dim
        self._op, _ = _operator(space)
        self._indexed = self._key_dim <= ANN_MAX_DIM
        self._has_face = text(f"SELECT 1 FROM {self._table} WHERE face_id = :face_id")

    def add(self, face_ids: Sequence[str], vectors: Matrix) -> None:
        """Nothing: the store's write transaction stored the faces' keys."""

    def remove(self, face_ids: Sequence[str]) -> None:
        """Nothing: the store's write transaction deleted the faces' keys."""

    def __len__(self) -> int:
        with self._read() as conn:
            return face_count(conn, self.uid) or 0

    def __contains__(self, face_id: object) -> bool:
        with self._read() as conn:
            row = conn.execute(self._has_face, {"face_id": str(face_id)}).fetchone()
        return row is not None

    def vectors(self, face_ids: Sequence[str]) -> tuple[list[str], Matrix]:
        found: dict[str, bytes] = {}
        with self._read() as conn:
            for start in range(0, len(face_ids), 500):
                chunk = list(face_ids[start : start + 500])
                rows = conn.execute(_DESCRIPTORS, {"uid": self.uid, "ids": chunk}).fetchall()
                found.update({r[0]: bytes(r[1]) for r in rows})
        present = [f for f in face_ids if f in found]
        data = b"".join(found[f] for f in present)
        matrix = np.frombuffer(data, dtype=np.float32).reshape(-1, self.space.dim).copy()
        return present, matrix

    def search(
        self,
        query: Matrix,
        k: int,
        max_distance: float,
        weights: Sequence[float] | None = None,
    ) -> list[Hit]:
        """At most ``k`` faces within ``max_distance``, nearest first, distances exact (see the
        module docstring for what the shortlist may miss)."""
        return self.search_traced(query, k, max_distance, weights)[0]

    def search_traced(
        self,
        query: Matrix,
        k: int,
        max_distance: float,
        weights: Sequence[float] | None = None,
    ) -> tuple[list[Hit], list[SearchPass]]:
        """:meth:`search`'s answer and the candidate lists it read, in order: graph lists of
        growing length, at most one scan, last. The widening rule is the module docstring's."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.size != self.space.dim:
            raise ValueError(f"a {self.space} query has {self.space.dim} values, got {q.size}")
        w = self.space.weights_or_ones(weights)
        if k <= 0:
            return [], []
        bound = key_bound(self.space, max_distance, w)
        key = vector_text(q[self.space.slices()[ann_part(self.space)]])
        passes: list[SearchPass] = []
        want = self.ef_search
        while self._indexed:
            ids, blobs, listed = self._graph_list(key, want, bound)
            hits = self._rerank(q, ids, blobs, max_distance, w)
            passes.append(SearchPass("graph", want, listed, len(ids)))
            if listed < want and listed < len(self):
                break  # the graph ran dry before the partition did: scan it
            if (
                listed < want  # the whole partition
                or listed - len(ids) >= BEYOND_SHARE * listed  # the tail lies beyond the bound
                or (self.space.simple and len(hits) >= k)  # key order is the exact order
            ):
                return hits[:k], passes
            if want >= EF_MAX:
                break  # the graph's longest list is still mostly within the bound
            want = min(EF_MAX, want * 4)
        ids, blobs = self._scan(key, bound)
        passes.append(SearchPass("scan", 0, len(ids), len(ids)))
        return self._rerank(q, ids, blobs, max_distance, w)[:k], passes

    def _distance_sql(self, key: str) -> str:
        # Every value in a script is formatted here from numbers (the key from floats, the table
        # name from a digest), so the script carries no caller text.
        return f"ann::vector({self._key_dim}) {self._op} '{key}'::vector({self._key_dim})"

    def _graph_list(self, key: str, want: int, bound: float) -> tuple[list[str], list[bytes], int]:
        """The ``want`` nearest candidates the HNSW graph offers (ef_search ``want``, at least
        the index's): (ids and stored descriptors of those within the key ``bound``, the list's
        length). Descriptors beyond the bound are not read: no such face can be a hit."""
        d = self._distance_sql(key)
        within = "" if math.isinf(bound) else f"WHERE s.d <= {float(bound)!r}"
        rows = self._run(
            f"SET LOCAL hnsw.ef_search = {min(EF_MAX, max(self.ef_search, want))}; "
            f"WITH s AS MATERIALIZED (SELECT face_id, {d} AS d FROM {self._table} "
            f"ORDER BY {d} LIMIT {int(want)}) "
            "SELECT s.face_id, s.d, f.descriptor FROM s JOIN faces f ON f.face_id = s.face_id "
            f"{within} UNION ALL SELECT NULL, NULL, NULL FROM s"
        )
        found = _nearest_first([r for r in rows if r[0] is not None])
        return [r[0] for r in found], [bytes(r[2]) for r in found], len(rows) - len(found)

    def _scan(self, key: str, bound: float) -> tuple[list[str], list[bytes]]:
        """Every face within the key ``bound`` and its stored descriptor, by a sequential scan
        of the partition (exact)."""
        d = self._distance_sql(key)
        where = "" if math.isinf(bound) else f"WHERE {d} <= {float(bound)!r}"
        rows = self._run(
            "SET LOCAL enable_indexscan = off; "
            f"SELECT s.face_id, s.d, f.descriptor FROM (SELECT face_id, {d} AS d "
            f"FROM {self._table} {where}) s JOIN faces f ON f.face_id = s.face_id"
        )
        found = _nearest_first(rows)
        return [r[0] for r in found], [bytes(r[2]) for r in found]

    def _run(self, script: str) -> list[tuple[Any, ...]]:
        try:
            return self._fetch(script)
        except psycopg.errors.UndefinedTable:
            raise collection_not_found(self.collection_id) from None

    def _rerank(
        self,
        q: Matrix,
        ids: list[str],
        blobs: list[bytes],
        max_distance: float,
        weights: Sequence[float],
    ) -> list[Hit]:
        """The candidates within ``max_distance`` by their exact (float64) distance, nearest
        first, as :class:`~facegate.store.vectors.ExactIndex` computes it."""
        if not ids:
            return []
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(-1, self.space.dim)
        exact = self.space.distances(q, matrix, weights)
        order = np.argsort(exact, kind="stable")
        return [Hit(ids[i], float(exact[i])) for i in order if exact[i] <= max_distance]


def _nearest_first(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Candidate rows (face_id, key distance, descriptor) by key distance, then face id: the
    order exact ties keep after re-ranking."""
    return sorted(rows, key=lambda r: (float(r[1]), r[0]))
