"""In-memory vector indexes behind one Protocol: exact (default) and approximate (faiss HNSW).

The database is the source of truth; an index is rebuilt from it at start-up and updated after
each committed write. An index holds the vectors of one :class:`~facegate.vectorspace.VectorSpace`
(its collection's descriptor model's: ``euclidean:128`` for dlib, ``cosine:1024`` for faceres,
both parts end to end for a fused model) and returns that space's distances, nearest first; a
search may weight the parts of a space of several (the model's calibration says how).

* ``ExactIndex``: a contiguous float32 matrix per part of the space (one for dlib's) with
  squared norms; a query is one matrix-vector product per part (``|x|^2 - 2 x.q + |q|^2``) and
  a partial sort. Deletion moves the last row into the hole (O(1)). At 1M x 128 it holds
  512 MB and answers in tens of milliseconds on two cores (bench/search_scale.py). A wide
  cosine part beside another (the fused model's faceres part) is screened through a projection
  sketch (``store/sketch.py``) so only rows its bounds cannot rule out are read whole; the
  answers are the same (bench/fusion_prune.py).
* ``HnswIndex``: faiss ``IndexHNSWFlat`` (M=32). HNSW cannot delete, so deleted ids are
  tombstoned and filtered from results, and the graph is rebuilt once tombstones exceed a quarter
  of it. Recall is measured against exact search in bench/search_scale.py; ``ef_search`` trades
  recall for speed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from facegate.store.sketch import CosineSketch
from facegate.vectorspace import COSINE, DLIB_SPACE, EUCLIDEAN, VectorSpace

DIM = DLIB_SPACE.dim
"""dlib's descriptor length, the space of every collection made before models were pluggable."""
Matrix = npt.NDArray[np.float32]

PRUNE_DIMS = 256
"""Values a sketched cosine part keeps per row (:class:`ExactIndex`; measured against 128 and
192 in bench/fusion_prune.py: docs/benchmarks.md)."""

PRUNE_MIN_ROWS = 4096
"""Rows an index holds before its cosine parts are sketched (below it a full read is cheap)."""

FULL_READ_SHARE = 0.08
"""When more than this share of the rows survive a sketch's bounds, the search reads every row
in full instead (rows gathered one by one cost several times a row read in order: measured in
bench/fusion_prune.py, 3.7% of the rows gathered took 0.61x the full read's time, 16% 1.1-1.8x)."""

SCREEN_MARGIN = 1e-3
"""Distance allowed per unit of weight for float32 rounding in a screen (:class:`ExactIndex`)."""


@dataclass(frozen=True)
class Hit:
    """A search result: the face id and its distance to the query (in the index's space)."""

    face_id: str
    distance: float


class VectorIndex(Protocol):
    """What the store needs from an index. Implementations are thread-safe."""

    kind: str
    space: VectorSpace

    def add(self, face_ids: Sequence[str], vectors: Matrix) -> None:
        """Add faces; ids already present are skipped (adding is idempotent)."""
        ...

    def remove(self, face_ids: Sequence[str]) -> None:
        """Remove faces; ids not present are ignored."""
        ...

    def __contains__(self, face_id: object) -> bool: ...

    def search(
        self,
        query: Matrix,
        k: int,
        max_distance: float,
        weights: Sequence[float] | None = None,
    ) -> list[Hit]:
        """At most ``k`` hits with distance <= ``max_distance``, nearest first (``weights``:
        one per part of the space, all 1 by default)."""
        ...

    def vectors(self, face_ids: Sequence[str]) -> tuple[list[str], Matrix]:
        """The faces among ``face_ids`` that are present (in the given order) and a copy of
        their stored vectors, one row each."""
        ...

    def __len__(self) -> int: ...


def _as_matrix(vectors: Matrix | Sequence[Matrix], dim: int = DIM) -> Matrix:
    flat = np.asarray(vectors, dtype=np.float32)
    if flat.size % dim:
        raise ValueError(f"vectors of {dim} values expected, got shape {flat.shape}")
    m = np.ascontiguousarray(flat).reshape(-1, dim)
    return m


class ExactIndex:
    """Brute-force search over a growable float32 matrix.

    In dlib's space (one Euclidean part) a query is the expansion described in the module
    docstring, exactly as before models were pluggable. In any other space a search returns
    the ``k`` rows nearest by their exact distance (:meth:`VectorSpace.distances_by_part`, float64,
    the same for a row whatever rows it is computed with), ties in the index's row order, among
    those within the bound. Every part is screened in float32 (Euclidean: the same expansion;
    cosine: the dot product over the two norms) with a margin for rounding (1e-3 of distance per
    unit of weight), and only rows the screen cannot rule out are scored exactly.

    A cosine part of at least ``2 * prune_dims`` values beside another part (faceres' 1,024 in
    the fused model's space; not faceres alone, where the bounds rule out too few rows) is
    screened, once the
    index holds ``prune_min_rows`` rows, from its :class:`~facegate.store.sketch.CosineSketch`:
    each row's ``prune_dims`` projected values and residual norm give a lower bound on its
    distance from a quarter of the read (``prune_dims`` 256 of 1,024), so rows whose lower bound
    is past the threshold, or past the ``k``-th smallest distance among the rows the projection
    ranks first (a ``k``-nearest read such as the tail estimate's), are dropped before their
    full vectors are read. The bound holds for any orthonormal basis, so the answer is the same
    with or without the sketch (tests/store/test_vectors.py); the basis only decides how many
    rows survive; when more than ``full_read_share`` of the rows survive (a wide threshold), the
    search reads every row in full instead. The basis is fitted once, on the index's rows when it
    first holds ``prune_min_rows`` (at start-up: the first page loaded, 50,000 rows), and every
    row added later is projected on it: a refit would re-project every row under the index's
    lock (31-45 s per 100,000 faces at load 9-11), and a stale basis only loosens the bounds.
    Memory: ``4 * (prune_dims + 1)`` bytes more per face and sketched part (1,028 for faceres'
    part at 256).

    Each part's columns are kept in a contiguous matrix of their own: a fused model's
    ``128 + 1024`` values as two matrices, not one of 1,152 columns read in strided slices
    (slower, docs/benchmarks.md); the products, and so every result, are the same."""

    kind = "exact"

    def __init__(
        self,
        space: VectorSpace = DLIB_SPACE,
        prune_dims: int = PRUNE_DIMS,
        prune_min_rows: int = PRUNE_MIN_ROWS,
        full_read_share: float = FULL_READ_SHARE,
    ) -> None:
        if prune_dims < 0 or prune_min_rows < 1 or not 0.0 <= full_read_share <= 1.0:
            raise ValueError(
                "prune_dims must be >= 0 (0: no sketch), prune_min_rows >= 1 and "
                "full_read_share in [0, 1]"
            )
        self.space = space
        self._dim = space.dim
        self._lock = threading.RLock()
        self._cuts = space.slices()
        # each part's columns, contiguous (dlib's space: one block of 128)
        self._blocks: list[Matrix] = [np.zeros((0, p.dim), dtype=np.float32) for p in space.parts]
        self._norms: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        # squared norm of each part of each row (only used outside dlib's space)
        self._part_norms: Matrix = np.zeros((0, len(space.parts)), dtype=np.float32)
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        self._size = 0
        # the cosine parts wide enough to sketch, and (once fitted) each one's sketch, its
        # rows' projections and residual norms
        self.prune_dims, self.prune_min_rows = prune_dims, prune_min_rows
        self.full_read_share = full_read_share
        # only beside another part (a fused model's): alone (faceres), 17% of the rows survive
        # a 101-nearest read and the search falls back to a full read after paying for the
        # bounds (bench/fusion_prune.py: 1.45x the full read's time)
        self._sketchable = [
            j
            for j, p in enumerate(space.parts)
            if prune_dims
            and len(space.parts) > 1
            and p.metric == COSINE
            and p.dim >= 2 * prune_dims
        ]
        self._sketches: dict[int, CosineSketch] = {}
        self._proj: dict[int, Matrix] = {}
        self._resid: dict[int, Matrix] = {}
        self._fitted_rows = 0

    def __len__(self) -> int:
        return self._size

    def __contains__(self, face_id: object) -> bool:
        with self._lock:
            return face_id in self._row

    @property
    def sketched(self) -> bool:
        """Whether searches are screened through a sketch (see the class docstring)."""
        return bool(self._sketches)

    def _reserve(self, extra: int) -> None:
        needed = self._size + extra
        if needed <= len(self._norms):
            return
        capacity = max(needed, 2 * len(self._norms), 1024)
        blocks = []
        for block in self._blocks:
            grown = np.zeros((capacity, block.shape[1]), dtype=np.float32)
            grown[: self._size] = block[: self._size]
            blocks.append(grown)
        norms = np.zeros(capacity, dtype=np.float32)
        norms[: self._size] = self._norms[: self._size]
        parts = np.zeros((capacity, len(self.space.parts)), dtype=np.float32)
        parts[: self._size] = self._part_norms[: self._size]
        self._blocks, self._norms, self._part_norms = blocks, norms, parts
        for j, proj in self._proj.items():
            grown = np.zeros((capacity, proj.shape[1]), dtype=np.float32)
            grown[: self._size] = proj[: self._size]
            self._proj[j] = grown
            resid = np.zeros(capacity, dtype=np.float32)
            resid[: self._size] = self._resid[j][: self._size]
            self._resid[j] = resid

    def add(self, face_ids: Sequence[str], vectors: Matrix) -> None:
        matrix = _as_matrix(vectors, self._dim)
        if len(face_ids) != matrix.shape[0]:
            raise ValueError("face_ids and vectors differ in length")
        with self._lock:
            seen: set[str] = set()
            fresh = []
            for i, face_id in enumerate(face_ids):
                if face_id not in self._row and face_id not in seen:
                    seen.add(face_id)
                    fresh.append(i)
            if not fresh:
                return
            self._reserve(len(fresh))
            start, stop = self._size, self._size + len(fresh)
            block = matrix[fresh]
            for target, cut in zip(self._blocks, self._cuts, strict=True):
                target[start:stop] = block[:, cut]
            self._norms[start:stop] = np.einsum("ij,ij->i", block, block)
            if not self.space.euclidean:
                for j, cut in enumerate(self.space.slices()):
                    part = block[:, cut]
                    self._part_norms[start:stop, j] = np.einsum("ij,ij->i", part, part)
            for j, sketch in self._sketches.items():
                proj, resid = sketch.project(self._blocks[j][start:stop])
                self._proj[j][start:stop], self._resid[j][start:stop] = proj, resid
            for offset, i in enumerate(fresh):
                self._ids.append(face_ids[i])
                self._row[face_ids[i]] = start + offset
            self._size = stop
            if self._sketchable and not self._sketches and stop >= self.prune_min_rows:
                self._fit_sketches()

    def _fit_sketches(self) -> None:
        """Fit each sketchable part's basis on its rows and project every row."""
        n = self._size
        for j in self._sketchable:
            sketch = CosineSketch.fit(self._blocks[j][:n], self.prune_dims)
            capacity = len(self._norms)
            self._proj[j] = np.zeros((capacity, sketch.dims), dtype=np.float32)
            self._resid[j] = np.zeros(capacity, dtype=np.float32)
            self._proj[j][:n], self._resid[j][:n] = sketch.project(self._blocks[j][:n])
            self._sketches[j] = sketch
        self._fitted_rows = n

    def remove(self, face_ids: Sequence[str]) -> None:
        with self._lock:
            for face_id in face_ids:
                row = self._row.pop(face_id, None)
                if row is None:
                    continue
                last = self._size - 1
                if row != last:
                    moved = self._ids[last]
                    for block in self._blocks:
                        block[row] = block[last]
                    self._norms[row] = self._norms[last]
                    self._part_norms[row] = self._part_norms[last]
                    for j in self._sketches:
                        self._proj[j][row] = self._proj[j][last]
                        self._resid[j][row] = self._resid[j][last]
                    self._ids[row] = moved
                    self._row[moved] = row
                self._ids.pop()
                self._size -= 1

    def vectors(self, face_ids: Sequence[str]) -> tuple[list[str], Matrix]:
        with self._lock:
            present = [f for f in face_ids if f in self._row]
            rows = np.fromiter((self._row[f] for f in present), dtype=np.intp, count=len(present))
            return present, self._rows(rows)

    def _rows(self, rows: npt.NDArray[np.intp]) -> Matrix:
        """The whole vectors of ``rows`` (a copy: fancy indexing copies)."""
        if len(self._blocks) == 1:
            return self._blocks[0][rows]
        return np.hstack([block[rows] for block in self._blocks])

    def search(
        self,
        query: Matrix,
        k: int,
        max_distance: float,
        weights: Sequence[float] | None = None,
    ) -> list[Hit]:
        if not self.space.euclidean:
            return self._search_space(query, k, max_distance, weights)
        q = _as_matrix(query, self._dim)[0]
        with self._lock:
            n = self._size
            if n == 0 or k <= 0:
                return []
            # Screen with the float32 expansion (one matrix-vector product): keep rows whose
            # approximate distance is within the threshold plus a margin for float32 rounding,
            # then the k nearest of those; recompute their distances exactly in float64.
            qq = float(np.dot(q.astype(np.float64), q.astype(np.float64)))
            vectors = self._blocks[0]  # dlib's space: one part
            partial = self._norms[:n] - 2.0 * (vectors[:n] @ q)
            bound = (max_distance + 1e-3) ** 2 - qq if math.isfinite(max_distance) else math.inf
            rows = np.flatnonzero(partial <= bound) if math.isfinite(bound) else np.arange(n)
            if len(rows) > k:
                rows = rows[np.argpartition(partial[rows], k - 1)[:k]]
            exact = np.linalg.norm(vectors[rows].astype(np.float64) - q.astype(np.float64), axis=1)
            ids = [self._ids[i] for i in rows]
        order = np.argsort(exact, kind="stable")
        return [
            Hit(face_id=ids[i], distance=float(exact[i])) for i in order if exact[i] <= max_distance
        ]

    def _search_space(
        self, query: Matrix, k: int, max_distance: float, weights: Sequence[float] | None
    ) -> list[Hit]:
        """:meth:`search` in a space other than dlib's (see the class docstring).

        Why the answer is exact: every screened value is within ``margin`` of the row's exact
        distance (lower bounds: at most ``margin`` above it), so a row among the ``k`` nearest
        within the bound is never dropped; see :func:`_screen` for the ``k``-nearest cut."""
        q = _as_matrix(query, self._dim)[0]
        w = self.space.weights_or_ones(weights)
        margin = SCREEN_MARGIN * sum(w)
        limit = max_distance + margin if math.isfinite(max_distance) else math.inf
        with self._lock:
            n = self._size
            if n == 0 or k <= 0:
                return []
            if self._sketches:
                lower, middle = self._bounds(q, w, n)
                rows = np.flatnonzero(lower <= limit) if math.isfinite(limit) else np.arange(n)
                if len(rows) > 2 * k and 2 * k <= self.full_read_share * n:
                    # the k-th smallest screened distance among the 2k rows the projection
                    # ranks first is at least the k-th smallest overall: no row whose lower
                    # bound is past it (with both margins) can be among the k nearest
                    first = rows[np.argpartition(middle[rows], 2 * k - 1)[: 2 * k]]
                    kth = _kth_within(self._approx(q, w, first), limit, k)
                    if math.isfinite(kth):
                        rows = rows[lower[rows] <= kth + 2.0 * margin]
            if self._sketches and len(rows) <= self.full_read_share * n:
                approx = self._approx(q, w, rows)
            else:  # no sketch, or too many rows left to gather them one by one
                rows, approx = np.arange(n), self._approx(q, w, None)
            rows = _screen(rows, approx, limit, k, margin)
            exact = self.space.distances_by_part(q, [block[rows] for block in self._blocks], w)
            keep = exact <= max_distance
            rows, exact = rows[keep], exact[keep]
            order = np.lexsort((rows, exact))[:k]  # by distance, ties in row order
            ids = [self._ids[rows[i]] for i in order]
        return [Hit(face_id=f, distance=float(exact[i])) for f, i in zip(ids, order, strict=True)]

    def _approx(
        self, q: Matrix, w: Sequence[float], rows: npt.NDArray[np.intp] | None
    ) -> npt.NDArray[np.float32]:
        """The float32 screen of ``rows`` (None: every row), within ``margin`` of exact. Every
        row: one BLAS product per part (memory-bound; BLAS's threads share the read); a few
        rows: gathered and multiplied by einsum in this thread (measured: BLAS's threads make
        a small product 2x slower when the other core is busy, docs/benchmarks.md)."""
        n = self._size
        if rows is None:
            return self._approx_all(q, w, n)
        approx: npt.NDArray[np.float32] = np.zeros(len(rows), np.float32)
        for j, (part, cut) in enumerate(zip(self.space.parts, self._cuts, strict=True)):
            qp = q[cut]
            sq = self._part_norms[rows, j]
            dots = np.einsum("ij,j->i", self._blocks[j][rows], qp)
            qq = float(np.dot(qp.astype(np.float64), qp.astype(np.float64)))
            if part.metric == EUCLIDEAN:
                d = np.sqrt(np.maximum(sq - 2.0 * dots + np.float32(qq), 0.0))
            else:
                norms = np.sqrt(sq) * np.float32(np.sqrt(qq))
                cos = np.where(norms > 0, dots / np.where(norms > 0, norms, 1), 0)
                d = 1.0 - cos
            approx += np.float32(w[j]) * d.astype(np.float32)
        return approx

    def _approx_all(self, q: Matrix, w: Sequence[float], n: int) -> npt.NDArray[np.float32]:
        """:meth:`_approx` of every row."""
        approx = np.zeros(n, dtype=np.float32)
        for j, (part, cut) in enumerate(zip(self.space.parts, self._cuts, strict=True)):
            approx += np.float32(w[j]) * self._part_approx(j, part.metric, q[cut], n)
        return approx

    def _bounds(
        self, q: Matrix, w: Sequence[float], n: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Every row's lower bound on its distance (within ``margin``) and a middle estimate:
        sketched parts from their projections, the others from their float32 screen. The
        products run in this thread (einsum): a narrow read gains nothing from BLAS's second
        thread, and loses much when the other core is busy (bench/fusion_prune.py)."""
        lower = np.zeros(n, dtype=np.float32)
        middle = np.zeros(n, dtype=np.float32)
        for j, (part, cut) in enumerate(zip(self.space.parts, self._cuts, strict=True)):
            wj = np.float32(w[j])
            sketch = self._sketches.get(j)
            if sketch is None:
                d = self._part_approx(j, part.metric, q[cut], n, blas=False)
                lower += wj * d
                middle += wj * d
                continue
            pq, residual = sketch.query(q[cut])
            near = 1.0 - np.einsum("ij,j->i", self._proj[j][:n], pq)  # 1 - (P q).(P x)
            lower += wj * (near - np.float32(residual) * self._resid[j][:n])
            middle += wj * near
        return lower, middle

    def _part_approx(
        self, j: int, metric: str, qp: Matrix, n: int, blas: bool = True
    ) -> npt.NDArray[np.float32]:
        """One part's float32 screen over every row (the product by BLAS, or einsum)."""
        block = self._blocks[j][:n]
        dots = block @ qp if blas else np.einsum("ij,j->i", block, qp)
        qq = float(np.dot(qp.astype(np.float64), qp.astype(np.float64)))
        sq = self._part_norms[:n, j]
        if metric == EUCLIDEAN:
            d: npt.NDArray[np.float32] = np.sqrt(np.maximum(sq - 2.0 * dots + np.float32(qq), 0))
            return d.astype(np.float32)
        norms = np.sqrt(sq) * np.float32(np.sqrt(qq))
        cos = np.where(norms > 0, dots / np.where(norms > 0, norms, 1), 0)
        out: npt.NDArray[np.float32] = (1.0 - cos).astype(np.float32)
        return out


def _kth_within(approx: npt.NDArray[np.float32], limit: float, k: int) -> float:
    """The ``k``-th smallest of the screened values within ``limit`` (inf if fewer)."""
    within = approx[approx <= limit] if math.isfinite(limit) else approx
    if len(within) < k:
        return math.inf
    return float(np.partition(within, k - 1)[k - 1])


def _screen(
    rows: npt.NDArray[np.intp],
    approx: npt.NDArray[np.float32],
    limit: float,
    k: int,
    margin: float,
) -> npt.NDArray[np.intp]:
    """The rows that may be among the ``k`` nearest within the bound, from their screened
    values (each within ``margin`` of exact; ``limit``: the bound plus ``margin``): those within
    ``limit`` and, when more than ``k`` are, within ``2 * margin`` of the ``k``-th smallest.

    Why none of the answer is lost: the ``k`` rows screened nearest are exactly at most ``D +
    margin`` (``D``: the ``k``-th smallest). If all of them are within the bound, the ``k``-th
    nearest exact distance is at most ``D + margin`` and every answer screens at most ``D + 2
    margin``; if not, the bound itself is below ``D + margin`` and so is every answer."""
    if math.isfinite(limit):
        inside = approx <= limit
        rows, approx = rows[inside], approx[inside]
    if len(rows) > k:
        kth = float(np.partition(approx, k - 1)[k - 1])
        rows = rows[approx <= kth + 2.0 * margin]
    return rows


_FIRST_PASS = 64
"""HNSW's first candidate list for a threshold search (widened while all are hits)."""


class HnswIndex:
    """Approximate search with faiss HNSW; deletions are tombstones until a rebuild."""

    kind = "hnsw"

    def __init__(
        self,
        m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        space: VectorSpace = DLIB_SPACE,
    ) -> None:
        if not space.simple:
            raise ValueError(f"HNSW indexes a space of one part, not {space}")
        import faiss  # local: only collections that ask for HNSW load faiss

        self.space = space
        self._dim = space.dim
        # cosine: unit vectors in an L2 graph, |a - b|^2 = 2 (1 - cos): the order is the same
        self._cosine = space.parts[0].metric == COSINE

        self._faiss: Any = faiss
        self._m, self._efc = m, ef_construction
        self.ef_search = ef_search
        """The smallest candidate list a search explores (faiss efSearch); may be changed."""
        self._lock = threading.RLock()
        self._ids: list[str] = []  # faiss label -> face id
        self._vectors: list[Matrix] = []
        self._label: dict[str, int] = {}
        self._dead: set[int] = set()
        self._index: Any = self._new_index()

    def _new_index(self) -> Any:
        index = self._faiss.IndexHNSWFlat(self._dim, self._m)
        index.hnsw.efConstruction = self._efc
        index.hnsw.efSearch = self.ef_search
        return index

    def __len__(self) -> int:
        return len(self._label)

    def __contains__(self, face_id: object) -> bool:
        with self._lock:
            return face_id in self._label

    def _graph_rows(self, matrix: Matrix) -> Matrix:
        """What the L2 graph holds for ``matrix``: the rows, or (cosine) the unit rows."""
        if not self._cosine:
            return matrix
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        unit: Matrix = np.ascontiguousarray(matrix / np.where(norms > 0, norms, 1), np.float32)
        return unit

    def add(self, face_ids: Sequence[str], vectors: Matrix) -> None:
        matrix = _as_matrix(vectors, self._dim)
        if len(face_ids) != matrix.shape[0]:
            raise ValueError("face_ids and vectors differ in length")
        with self._lock:
            keep = [i for i, f in enumerate(face_ids) if f not in self._label]
            if not keep:
                return
            for i in keep:
                self._label[face_ids[i]] = len(self._ids)
                self._ids.append(face_ids[i])
                self._vectors.append(matrix[i])
            self._index.add(self._graph_rows(matrix[keep]))

    def remove(self, face_ids: Sequence[str]) -> None:
        with self._lock:
            for face_id in face_ids:
                label = self._label.pop(face_id, None)
                if label is not None:
                    self._dead.add(label)
            if self._dead and len(self._dead) * 4 > len(self._ids):
                self._rebuild()

    def vectors(self, face_ids: Sequence[str]) -> tuple[list[str], Matrix]:
        with self._lock:
            present = [f for f in face_ids if f in self._label]
            rows = [self._vectors[self._label[f]] for f in present]
            return present, np.array(rows, dtype=np.float32).reshape(-1, self._dim)

    def _distance(self, squared_l2: np.float32) -> float:
        """The space's distance of a graph distance (squared L2 of rows or unit rows; the
        Euclidean one computed as before models were pluggable, in float32)."""
        if self._cosine:
            return max(float(squared_l2), 0.0) / 2.0
        return float(np.sqrt(np.maximum(squared_l2, 0)))

    def _rebuild(self) -> None:
        alive = [i for i in range(len(self._ids)) if i not in self._dead]
        ids = [self._ids[i] for i in alive]
        vecs = [self._vectors[i] for i in alive]
        self._ids, self._vectors, self._dead = [], [], set()
        self._label = {}
        self._index = self._new_index()
        if ids:
            self.add(ids, np.stack(vecs))

    def search(
        self,
        query: Matrix,
        k: int,
        max_distance: float,
        weights: Sequence[float] | None = None,
    ) -> list[Hit]:
        """The (approximately) nearest ``k`` live faces within ``max_distance``, nearest first.

        A threshold search rarely has many hits, so it starts with a small candidate list and
        widens it (x4) only while every candidate found is still within the threshold and fewer
        than ``k`` were found: a search at MaxFaces 4096 costs what its hits cost, not 4096.
        """
        q = self._graph_rows(_as_matrix(query, self._dim))
        (weight,) = self.space.weights_or_ones(weights)
        bound = max_distance / weight
        with self._lock:
            if not self._label or k <= 0:
                return []
            total = len(self._ids)
            limit = 2.0 * bound if self._cosine else bound * bound
            want = min(total, min(k, _FIRST_PASS) + len(self._dead))
            while True:
                self._index.hnsw.efSearch = max(self.ef_search, want)
                sq, labels = self._index.search(q, want)
                hits: list[Hit] = []
                beyond = False
                for d, label in zip(sq[0], labels[0], strict=True):
                    if label < 0:
                        continue
                    if d > limit:
                        beyond = True
                        break
                    if int(label) in self._dead:
                        continue
                    hits.append(Hit(self._ids[int(label)], weight * self._distance(d)))
                    if len(hits) == k:
                        break
                if beyond or len(hits) >= k or want >= total:
                    return hits
                want = min(total, want * 4)


def make_index(kind: str, space: VectorSpace = DLIB_SPACE) -> VectorIndex:
    """An empty index of ``kind`` ("exact" or "hnsw") for vectors of ``space`` (HNSW: one part
    only, ``ValueError`` otherwise)."""
    if kind == "hnsw":
        return HnswIndex(space=space)
    if kind == "exact":
        return ExactIndex(space)
    raise ValueError(f"unknown index kind {kind!r}")
