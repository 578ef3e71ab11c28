"""A fused model's descriptors on real sample images, and its parts' filed from the same pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facegate.bias.datasets import Manifest, Sample
from facegate.bias.descriptors import FACE, NO_FACE, DescriptorCache, compute_descriptors
from facegate.bias.model_descriptors import compute_fused_descriptors, fill_parts
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.descriptors import DLIB_RESNET_V1, FACERES_V1, FUSED_DLIB_FACERES_V1
from facegate.engine.human_models import default_models_dir

NAMES = ("obama.jpg", "obama2.jpg", "biden.jpg", "no_face_white.png")
pytestmark = pytest.mark.skipif(
    not (default_models_dir() / "faceres.onnx").is_file(), reason="faceres is not converted"
)


def test_one_fused_pass_gives_each_part_on_the_same_faces(
    samples: Path, tmp_path: Path, engine: FaceEngine
) -> None:
    manifest = Manifest(
        "samples", tuple(Sample(samples / n, n, {}, "samples/MANIFEST.md") for n in NAMES)
    )
    cache = DescriptorCache(tmp_path / "cache.sqlite3")
    (fused,), (fills,) = compute_fused_descriptors(
        [manifest], FUSED_DLIB_FACERES_V1, cache=cache, workers=1, progress=False
    )
    assert fused.statuses == (FACE, FACE, FACE, NO_FACE)
    assert fused.vectors.shape == (4, 128 + 1024)
    assert [(f.version, f.written, f.already) for f in fills] == [
        (DLIB_RESNET_V1, 4, 0),
        (FACERES_V1, 4, 0),
    ]
    # each part's own pass now reads its slice from the cache: no engine work
    dlib = compute_descriptors(manifest, cache=cache, workers=1, progress=False)
    faceres = compute_descriptors(
        manifest, cache=cache, workers=1, progress=False, model=FACERES_V1
    )
    assert (dlib.computed, faceres.computed) == (0, 0)
    assert dlib.statuses == faceres.statuses == fused.statuses
    # ... and the slices are what the engine computes for each model on its own, bit for bit
    for i, name in enumerate(NAMES[:3]):
        data = (samples / name).read_bytes()
        alone = engine.analyze(data, max_faces=1).faces[0].descriptor
        theirs = engine.analyze(data, max_faces=1, model=FACERES_V1).faces[0].descriptor
        assert alone is not None
        assert theirs is not None
        assert np.array_equal(dlib.vectors[i], alone)
        assert np.array_equal(faceres.vectors[i], theirs)
    assert np.linalg.norm(faceres.vectors[0]) == pytest.approx(1.0, abs=1e-6)  # cosine: unit
    # filing again keeps what is cached and says it agrees
    again = fill_parts(
        manifest,
        fused,
        EngineConfig().registry(),
        cache=cache,
        config=EngineConfig(),
        mmod_fallback=True,
    )
    assert [(f.written, f.already, f.same_vector, f.compared) for f in again] == [
        (0, 4, 3, 3),
        (0, 4, 3, 3),
    ]
    with pytest.raises(ValueError, match="not a fused model"):
        fill_parts(
            manifest,
            dlib,
            EngineConfig().registry(),
            cache=cache,
            config=EngineConfig(),
            mmod_fallback=True,
        )
