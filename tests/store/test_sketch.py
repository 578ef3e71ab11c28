"""store.sketch: the basis is orthonormal and the bounds hold on real faceres descriptors."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.store.sketch import RESIDUAL_PAD, CosineSketch, unit_rows
from tests.store.real_vectors import fused_gallery, needs_faceres


def test_fit_refuses_what_it_cannot_fit() -> None:
    rows = np.ones((4, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="1 to 7"):
        CosineSketch.fit(rows, 8)
    with pytest.raises(ValueError, match="1 to 7"):
        CosineSketch.fit(rows, 0)
    with pytest.raises(ValueError, match="at least one row"):
        CosineSketch.fit(np.zeros((0, 8), dtype=np.float32), 2)


def test_a_zero_row_is_at_cosine_zero_from_everything() -> None:
    rng = np.random.default_rng(0)
    sketch = CosineSketch.fit(rng.normal(size=(50, 16)), 4)
    proj, resid = sketch.project(np.zeros((1, 16), dtype=np.float32))
    assert not proj.any()
    assert resid[0] == 0.0
    pq, residual = sketch.query(np.zeros(16, dtype=np.float32))
    assert not pq.any()
    assert residual == 0.0


@needs_faceres
def test_bounds_hold_and_the_basis_is_orthonormal_on_real_descriptors() -> None:
    """Fitted on one half of real faceres vectors, bounding the cosines of the other half's
    pairs: every exact cosine lies within its bounds (the margin store.vectors allows, 1e-3,
    is not needed), and the fitted basis bounds them much tighter than a random one."""
    faceres = fused_gallery()[:, 128:]
    fit_rows, rows = faceres[::2], faceres[1::2]
    sketch = CosineSketch.fit(fit_rows, 64)
    basis = sketch.basis
    assert np.allclose(basis.T @ basis, np.eye(64), atol=1e-12)
    proj, resid = sketch.project(rows)
    u = unit_rows(rows)
    assert np.all(resid**2 >= 1.0 - np.einsum("ij,ij->i", u @ basis, u @ basis) - 1e-7)
    assert np.all(resid <= np.sqrt(1.0 + RESIDUAL_PAD))
    exact = u @ u.T
    widths = []
    for i in range(0, len(rows), 7):
        pq, residual = sketch.query(rows[i])
        dots = proj.astype(np.float64) @ pq.astype(np.float64)
        slack = residual * resid.astype(np.float64)
        assert np.all(exact[i] >= dots - slack - 1e-6)
        assert np.all(exact[i] <= dots + slack + 1e-6)
        widths.append(float(np.median(2 * slack)))
    random = CosineSketch(np.linalg.qr(np.random.default_rng(1).normal(size=(1024, 64)))[0])
    _, random_resid = random.project(rows)
    assert np.median(widths) < 0.6 * 2 * float(np.median(random_resid)) ** 2
