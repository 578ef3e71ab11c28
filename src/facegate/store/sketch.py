"""A cosine part's projection sketch: bounds on every row's cosine from a narrow read.

For unit vectors ``q`` and ``x`` and any matrix ``P`` (``d x r``) with orthonormal columns,
``q = P P^T q + q_perp`` and likewise ``x``, so ``q . x = (P^T q) . (P^T x) + q_perp . x_perp``
and, by Cauchy-Schwarz, ``|q_perp . x_perp| <= |q_perp| |x_perp|``, where
``|x_perp| = sqrt(1 - |P^T x|^2)``. Keeping, per row, the ``r`` values ``P^T x`` and the one
residual norm gives a lower and an upper bound on its cosine from ``r + 1`` values instead of
``d``: ``(P^T q).(P^T x) -/+ |q_perp| |x_perp|``. Any orthonormal ``P`` keeps the bounds valid;
a good one keeps them tight: the top ``r`` eigenvectors of the un-centred second moment of the
part's own unit rows (the directions that hold most of their length, so residuals are short).

Measured on faceres' 1,024 values with 256 directions (bench/fusion_prune.py,
docs/benchmarks.md): at 100,000 faces the fused model's read of a probe's 101 nearest reads
3.7% of the faces whole (its exact dlib part separates them); faceres alone, 17%.

Contract: :meth:`CosineSketch.fit` chooses the basis from rows given to it (deterministic for
the same rows); :meth:`CosineSketch.project` returns, for any rows, their ``P^T x / |x|`` in
float32 and their residual norms (a zero row: zeros and 0, so both bounds are the cosine 0 the
space gives a zero vector); :meth:`CosineSketch.query` does the same for one query. Rounding:
the projections are computed in float64 and stored in float32 (relative error 6e-8 per value);
callers allow a margin (``store.vectors``: 1e-3 of distance per unit of weight, the margin its
float32 screen already allows). Pure numpy, no state besides the basis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]

SAMPLE_ROWS = 4096
"""At most this many rows (evenly spaced) are read to fit a basis: a 1,024 x 1,024 moment and
its eigenvectors; the projection of every row costs more (``r`` x ``d`` per row)."""

RESIDUAL_PAD = 1e-4
"""Added to every squared residual norm: covers float32 rounding of the projection (whose
squared length is off by about 1e-5 at most), so a stored residual is never below the exact
one; it widens a typical residual (0.33) by 1.5e-4."""

_CHUNK = 8192
"""Rows projected at a time (bounds the float64 copy: 8,192 x 1,024 x 8 bytes = 64 MiB)."""


def unit_rows(rows: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``rows`` scaled to unit length in float64 (a zero row stays zero)."""
    x = np.asarray(rows, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: npt.NDArray[np.float64] = x / np.where(norms > 0.0, norms, 1.0)
    return out


@dataclass(frozen=True, eq=False)
class CosineSketch:
    """An orthonormal basis ``basis`` (``d x r``, float64) of one cosine part."""

    basis: npt.NDArray[np.float64]

    @property
    def dims(self) -> int:
        """``r``: how many values a row's projection holds."""
        return int(self.basis.shape[1])

    @classmethod
    def fit(cls, rows: npt.ArrayLike, dims: int) -> CosineSketch:
        """The top ``dims`` eigenvectors of the un-centred second moment of ``rows``' unit
        vectors (at most :data:`SAMPLE_ROWS` of them, evenly spaced; the moment summed in
        float32, its eigenvectors found in float64, so the basis is orthonormal to float64
        precision). ``ValueError`` unless ``1 <= dims < d`` and at least one row is given."""
        x = np.asarray(rows)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError("a sketch is fitted on at least one row")
        d = x.shape[1]
        if not 1 <= dims < d:
            raise ValueError(f"a sketch of a {d}-value part keeps 1 to {d - 1} values, not {dims}")
        if len(x) > SAMPLE_ROWS:
            x = x[np.linspace(0, len(x) - 1, SAMPLE_ROWS).astype(np.intp)]
        u = unit_rows(x).astype(np.float32)
        moment = (u.T @ u).astype(np.float64)
        _, vectors = np.linalg.eigh(moment)  # ascending eigenvalues, orthonormal columns
        basis = np.ascontiguousarray(vectors[:, ::-1][:, :dims])
        return cls(basis)

    def project(self, rows: npt.ArrayLike) -> tuple[Matrix, Matrix]:
        """(``P^T x / |x|``, float32, ``n x r``; each row's residual norm, float32, ``n``).

        The products run in float32 (a fused 100,000-face index: about a second, against
        several in float64); their rounding (about 1e-6 per value) is covered twice: the
        residual norm stored is ``sqrt(max(1 - |P^T x|^2, 0) + RESIDUAL_PAD)``, an upper bound
        on the exact one even where it is near 0, and the dot product's own error is far
        inside the caller's margin."""
        x = np.asarray(rows)
        n = len(x)
        basis = self.basis.astype(np.float32)
        proj = np.empty((n, self.dims), dtype=np.float32)
        resid = np.empty(n, dtype=np.float32)
        for start in range(0, n, _CHUNK):
            stop = min(n, start + _CHUNK)
            u = unit_rows(x[start:stop])
            p = u.astype(np.float32) @ basis
            proj[start:stop] = p
            resid[start:stop] = _residual(p.astype(np.float64), u)
        return proj, resid

    def query(self, q: npt.ArrayLike) -> tuple[Matrix, float]:
        """One query's (``P^T q / |q|`` as float32, computed in float64; its residual norm,
        padded as :meth:`project`'s)."""
        u = unit_rows(np.asarray(q).reshape(1, -1))
        p = u @ self.basis
        return p[0].astype(np.float32), float(_residual(p, u)[0])


def _residual(p: npt.NDArray[np.float64], u: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``sqrt(max(|u|^2 - |p|^2, 0) + RESIDUAL_PAD)`` per row (``|u|``: 1, or 0 for a zero
    row, whose residual is then 0 exactly: it is at cosine 0 from everything)."""
    length = np.einsum("ij,ij->i", u, u)
    kept = np.einsum("ij,ij->i", p, p)
    padded = np.sqrt(np.maximum(length - kept, 0.0) + RESIDUAL_PAD)
    out: npt.NDArray[np.float64] = np.where(length > 0.0, padded, 0.0)
    return out
