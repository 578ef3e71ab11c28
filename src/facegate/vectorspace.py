"""The geometry of stored descriptors: how long they are and how two of them are compared.

A descriptor model (``engine/descriptors.py``) writes vectors of one :class:`VectorSpace`; the
store (``store/vectors.py``) keeps each collection's vectors in its model's space, and the
matcher (``engine/matching.py``) turns distances in that space into Similarity. Both use this
module, so the index and the matcher compute the same distance. It imports nothing of facegate.

A space is one or more *parts* laid end to end in one float32 vector: ``euclidean:128`` (dlib's
ResNet), ``cosine:1024`` (faceres), ``euclidean:128+cosine:1024`` (a fused model storing both
descriptors of a face). The distance of a part is

* ``euclidean``: ``|a - b|``;
* ``cosine``: ``1 - a.b / (|a| |b|)`` (0 for the same direction, 2 for opposite ones; a zero
  vector is at distance 1 from everything);

and the distance of a space is the weighted sum of its parts' distances, ``sum_i w_i d_i``, with
weights from the model's calibration (all 1 unless it says otherwise). Every distance is
non-negative and 0 for identical vectors, so one calibration format (knots from distance 0 up)
serves every space.

The text form (``str(space)``, :func:`parse_space`) is what the store records per collection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

EUCLIDEAN = "euclidean"
COSINE = "cosine"
METRICS = (EUCLIDEAN, COSINE)

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SpacePart:
    """One part of a space: its metric and its length."""

    metric: str
    dim: int

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if not 1 <= self.dim <= 65536:
            raise ValueError(f"a descriptor part has 1 to 65536 dimensions, got {self.dim}")

    def __str__(self) -> str:
        return f"{self.metric}:{self.dim}"


@dataclass(frozen=True)
class VectorSpace:
    """Parts laid end to end (see the module docstring)."""

    parts: tuple[SpacePart, ...]

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("a vector space has at least one part")

    @classmethod
    def single(cls, metric: str, dim: int) -> VectorSpace:
        return cls((SpacePart(metric, dim),))

    @property
    def dim(self) -> int:
        """The stored vector's length (the parts' sum)."""
        return sum(p.dim for p in self.parts)

    @property
    def simple(self) -> bool:
        """One part only."""
        return len(self.parts) == 1

    @property
    def euclidean(self) -> bool:
        """One Euclidean part: the distance is the plain ``|a - b|`` (dlib's)."""
        return self.simple and self.parts[0].metric == EUCLIDEAN

    def slices(self) -> tuple[slice, ...]:
        """Where each part lies in the stored vector."""
        out, start = [], 0
        for part in self.parts:
            out.append(slice(start, start + part.dim))
            start += part.dim
        return tuple(out)

    def weights_or_ones(self, weights: Sequence[float] | None) -> tuple[float, ...]:
        """``weights`` checked against the parts (one positive, finite weight each), or ones."""
        if weights is None:
            return (1.0,) * len(self.parts)
        out = tuple(float(w) for w in weights)
        if len(out) != len(self.parts) or not all(math.isfinite(w) and w > 0 for w in out):
            raise ValueError(
                f"{self} needs {len(self.parts)} positive weights, got {list(weights)}"
            )
        return out

    def __str__(self) -> str:
        return "+".join(str(p) for p in self.parts)

    def distances(
        self,
        query: npt.ArrayLike,
        matrix: npt.ArrayLike,
        weights: Sequence[float] | None = None,
    ) -> Floats:
        """The distance of ``query`` to each row of ``matrix``, in float64 (exact, not the
        screening arithmetic of an index)."""
        m = np.asarray(matrix, dtype=np.float64).reshape(-1, self.dim)
        return self.distances_by_part(query, [m[:, cut] for cut in self.slices()], weights)

    def distances_by_part(
        self,
        query: npt.ArrayLike,
        blocks: Sequence[npt.ArrayLike],
        weights: Sequence[float] | None = None,
    ) -> Floats:
        """:meth:`distances` of rows given as one matrix per part (``blocks[j]``: the rows'
        values of part ``j``, as an index keeps them), the same numbers: contiguous blocks
        only spare the strided reads of one wide matrix."""
        q = np.asarray(query, dtype=np.float64).reshape(-1)
        if q.shape[0] != self.dim:
            raise ValueError(f"a {self} query has {self.dim} values, got {q.shape[0]}")
        if len(blocks) != len(self.parts):
            raise ValueError(f"{self} has {len(self.parts)} parts, got {len(blocks)} blocks")
        rows = len(np.asarray(blocks[0]))
        total = np.zeros(rows, dtype=np.float64)
        for part, cut, w, block in zip(
            self.parts, self.slices(), self.weights_or_ones(weights), blocks, strict=True
        ):
            m = np.asarray(block, dtype=np.float64).reshape(rows, part.dim)
            total += w * part_distances(part.metric, q[cut], m)
        return total

    def distance(
        self, a: npt.ArrayLike, b: npt.ArrayLike, weights: Sequence[float] | None = None
    ) -> float:
        """The distance of one pair."""
        return float(self.distances(a, np.asarray(b).reshape(1, -1), weights)[0])

    def pairwise(
        self, a: npt.ArrayLike, b: npt.ArrayLike, weights: Sequence[float] | None = None
    ) -> Floats:
        """``(len(a), len(b))``: the distance of every row of ``a`` to every row of ``b``
        (float64, by the dot-product expansions: for bulk measurement, not exact to the last
        bit like :meth:`distances`)."""
        x = np.asarray(a, dtype=np.float64).reshape(-1, self.dim)
        y = np.asarray(b, dtype=np.float64).reshape(-1, self.dim)
        total = np.zeros((len(x), len(y)), dtype=np.float64)
        for part, cut, w in zip(
            self.parts, self.slices(), self.weights_or_ones(weights), strict=True
        ):
            xa, yb = x[:, cut], y[:, cut]
            dots = xa @ yb.T
            xx, yy = np.einsum("ij,ij->i", xa, xa), np.einsum("ij,ij->i", yb, yb)
            if part.metric == EUCLIDEAN:
                total += w * np.sqrt(np.maximum(xx[:, None] + yy[None, :] - 2.0 * dots, 0.0))
            else:
                norms = np.sqrt(xx)[:, None] * np.sqrt(yy)[None, :]
                cos = np.where(norms > 0.0, dots / np.where(norms > 0.0, norms, 1.0), 0.0)
                total += w * np.maximum(1.0 - np.clip(cos, -1.0, 1.0), 0.0)
        return total

    def paired(
        self, a: npt.ArrayLike, b: npt.ArrayLike, weights: Sequence[float] | None = None
    ) -> Floats:
        """The distance of row ``i`` of ``a`` to row ``i`` of ``b`` (float64)."""
        x = np.asarray(a, dtype=np.float64).reshape(-1, self.dim)
        y = np.asarray(b, dtype=np.float64).reshape(-1, self.dim)
        if len(x) != len(y):
            raise ValueError(f"paired rows: {len(x)} against {len(y)}")
        total = np.zeros(len(x), dtype=np.float64)
        for part, cut, w in zip(
            self.parts, self.slices(), self.weights_or_ones(weights), strict=True
        ):
            xa, yb = x[:, cut], y[:, cut]
            if part.metric == EUCLIDEAN:
                diff = xa - yb
                total += w * np.sqrt(np.einsum("ij,ij->i", diff, diff))
            else:
                norms = np.linalg.norm(xa, axis=1) * np.linalg.norm(yb, axis=1)
                dots = np.einsum("ij,ij->i", xa, yb)
                cos = np.where(norms > 0.0, dots / np.where(norms > 0.0, norms, 1.0), 0.0)
                total += w * np.maximum(1.0 - np.clip(cos, -1.0, 1.0), 0.0)
        return total


def part_distances(metric: str, query: Floats, matrix: Floats) -> Floats:
    """One part's distances of ``query`` to the rows of ``matrix`` (float64; each row's the
    same whatever other rows ``matrix`` holds)."""
    if metric == EUCLIDEAN:
        out: Floats = np.linalg.norm(matrix - query, axis=1)
        return out
    norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(query))
    # einsum, not BLAS: a row's dot product is then the same whatever rows it is computed with
    # (BLAS's differs in the last bits with the matrix's shape), so an index's exact distances
    # do not depend on which rows its screen kept
    dots = np.einsum("ij,j->i", matrix, query)
    safe = np.where(norms > 0.0, norms, 1.0)
    cos = np.where(norms > 0.0, dots / safe, 0.0)
    cosine: Floats = np.maximum(1.0 - np.clip(cos, -1.0, 1.0), 0.0)
    return cosine


def parse_space(text: str) -> VectorSpace:
    """The space of its text form (``euclidean:128``, ``euclidean:128+cosine:1024``);
    ``ValueError`` for anything else."""
    parts = []
    for item in text.strip().split("+"):
        metric, sep, dim = item.strip().partition(":")
        if not sep or not dim.isdigit():
            raise ValueError(f"not a vector space: {text!r} (e.g. euclidean:128)")
        parts.append(SpacePart(metric, int(dim)))
    return VectorSpace(tuple(parts))


DLIB_SPACE = VectorSpace.single(EUCLIDEAN, 128)
"""dlib's ResNet: 128 values, Euclidean; every collection made before models were pluggable."""
