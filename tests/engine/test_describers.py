"""engine.describers: a fused model's parts computed concurrently give the vectors computed one
after the other, bit for bit, on real faces (and each part's own vectors)."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.engine.core import EngineConfig, FaceEngine, _in_pixels
from facegate.engine.describers import FaceItem, FusedDescriber
from facegate.engine.descriptors import DLIB_RESNET_V1, FACERES_V1, FUSED_DLIB_FACERES_V1
from facegate.engine.human_models import default_models_dir
from tests.conftest import SAMPLES, SHARED_DATA

needs_faceres = pytest.mark.skipif(
    not (default_models_dir() / "faceres.onnx").is_file(), reason="faceres is not converted"
)


@needs_faceres
def test_fused_parts_concurrently_equal_one_after_the_other() -> None:
    engine = FaceEngine(EngineConfig())
    fused = engine.describer(FUSED_DLIB_FACERES_V1)
    assert isinstance(fused, FusedDescriber)
    assert fused.concurrent
    one_by_one = FusedDescriber(FUSED_DLIB_FACERES_V1, fused.parts, concurrent=False)
    lfw = sorted((SHARED_DATA / "lfw" / "images").rglob("*.jpg"))[5::1499][:6]
    items: list[FaceItem] = []
    for path in [*lfw, SAMPLES / "two_people.jpg"]:
        image = engine.decode(path.read_bytes())
        items += [(image, _in_pixels(image, f)) for f in engine.detect(image)]
    assert len(items) >= 7
    for batch in (items[:1], items):  # a search probe's one face, and a batch
        together = fused.describe(batch)
        assert together.dtype == np.float32
        assert together.shape == (len(batch), 1152)
        assert np.array_equal(together, one_by_one.describe(batch))
        assert np.array_equal(together[:, :128], engine.describer(DLIB_RESNET_V1).describe(batch))
        assert np.array_equal(together[:, 128:], engine.describer(FACERES_V1).describe(batch))
    assert fused.describe([]).shape == (0, 1152)
