"""faceres descriptors of the same faces dlib describes, cached beside dlib's (bias/model_descriptors.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facegate.bias.datasets import Manifest, Sample
from facegate.bias.descriptors import FACE, NO_FACE, DescriptorCache, compute_descriptors
from facegate.bias.fusion_fit import joint_set
from facegate.bias.model_descriptors import (
    FACERES,
    FaceGeometry,
    FaceresDescriber,
    compute_model_descriptors,
    detect_faces,
)
from facegate.engine.align5 import ARCFACE_224, HSE_BOX
from facegate.engine.fusion import DLIB_DIM, FUSED_VERSION
from facegate.engine.human_models import model_status

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "samples"
NAMES = ("obama.jpg", "obama2.jpg", "biden.jpg", "no_face_white.png")

needs_faceres = pytest.mark.skipif(
    not model_status(FACERES).available,
    reason="the converted face models are not set up (python3 tools/dev.py; docs/models.md)",
)


def _manifest() -> Manifest:
    return Manifest("samples", tuple(Sample(SAMPLES / n, None, {}, "samples/MANIFEST.md") for n in NAMES))


def test_geometry_round_trips_through_its_vector() -> None:
    g = FaceGeometry(
        (0.1, 0.2, 0.3, 0.4),
        tuple((0.1 * i, 0.2 * i) for i in range(5)),
        tuple((0.3 * i, 0.05 * i) for i in range(5)),
    )
    back = FaceGeometry.from_vector(g.to_vector())
    assert np.allclose(back.box, g.box) and np.allclose(back.points5, g.points5)
    assert np.allclose(back.dlib5, g.dlib5)
    assert back.points5_px(200, 100)[4] == pytest.approx((80.0, 80.0))
    with pytest.raises(ValueError, match="24 values"):
        FaceGeometry.from_vector(np.zeros(3))


@needs_faceres
@pytest.mark.slow
def test_faceres_describes_dlibs_face_and_is_cached(tmp_path: Path) -> None:
    cache = DescriptorCache(tmp_path / "d.sqlite3")
    manifest = _manifest()
    dlib, geometry = detect_faces(manifest, cache=cache, workers=1, progress=False)
    assert dlib.statuses == (FACE, FACE, FACE, NO_FACE) == geometry.statuses
    # the dlib records went into the key compute_descriptors uses: nothing left to compute
    again = compute_descriptors(manifest, cache=cache, workers=1, progress=False)
    assert again.computed == 0 and np.array_equal(again.vectors, dlib.vectors, equal_nan=True)
    sets = {}
    for crop in (ARCFACE_224, HSE_BOX):
        describer = FaceresDescriber(crop)
        first = compute_model_descriptors(manifest, describer, cache=cache, progress=False)
        second = compute_model_descriptors(manifest, describer, cache=cache, progress=False)
        assert first.computed == 4 and second.computed == 0
        assert np.array_equal(first.vectors, second.vectors, equal_nan=True)
        assert first.statuses == dlib.statuses
        assert np.allclose(np.linalg.norm(first.vectors[:3], axis=1), 1.0, atol=1e-5)
        sets[crop] = first
    assert sets[ARCFACE_224].model_version == "faceres-v1"
    assert sets[ARCFACE_224].key != sets[HSE_BOX].key
    v = sets[ARCFACE_224].vectors
    # the same person is closer than another person
    assert np.linalg.norm(v[0] - v[1]) < np.linalg.norm(v[0] - v[2])
    fused = joint_set(dlib, sets[ARCFACE_224])
    assert fused.model_version == FUSED_VERSION
    assert np.array_equal(fused.vectors[:3, :DLIB_DIM], dlib.vectors[:3])
    assert np.isnan(fused.vectors[3]).all()
