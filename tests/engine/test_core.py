"""End to end through the engine: identity, determinism, EXIF, flip augmentation, errors."""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.similarity import LOGISTIC_V0, euclidean
from facegate.engine.types import Face, Vector
from facegate.errors import TruncatedImageError
from tests.imaging import iou, open_rgb, to_jpeg

OBAMAS = ("obama.jpg", "obama2.jpg", "obama3.jpg")


def _vector(face: Face) -> Vector:
    assert face.descriptor is not None
    return face.descriptor


def _largest(engine: FaceEngine, data: bytes) -> Vector:
    analysis = engine.analyze(data, max_faces=1)
    assert len(analysis.faces) == 1
    return _vector(analysis.faces[0])


def test_obama_photos_match_each_other_and_not_biden(
    engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    vectors = {n: _largest(engine, sample_bytes(n)) for n in (*OBAMAS, "biden.jpg")}
    for a, b in combinations(OBAMAS, 2):
        d = euclidean(vectors[a], vectors[b])
        assert d < 0.5, (a, b, d)
        assert LOGISTIC_V0.similarity_pct(d) > 95.0
    for name in OBAMAS:
        d = euclidean(vectors[name], vectors["biden.jpg"])
        assert d > 0.7, (name, d)
        assert LOGISTIC_V0.similarity_pct(d) < 50.0


def test_two_people_contains_obama_and_biden(
    engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    faces = engine.analyze(sample_bytes("two_people.jpg")).faces
    assert len(faces) == 2
    obama, biden = (
        _largest(engine, sample_bytes("obama.jpg")),
        _largest(engine, sample_bytes("biden.jpg")),
    )
    best_obama = min(euclidean(obama, _vector(f)) for f in faces)
    best_biden = min(euclidean(biden, _vector(f)) for f in faces)
    assert best_obama < 0.5
    assert best_biden < 0.5


def test_descriptors_are_deterministic(
    engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    data = sample_bytes("obama2.jpg")
    first = _largest(engine, data)
    second = _largest(FaceEngine(EngineConfig(), models=engine.models), data)
    assert first.dtype == np.float32
    assert first.shape == (128,)
    assert np.array_equal(first, second)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_photo_gives_the_same_face(
    engine: FaceEngine, sample_bytes: Callable[[str], bytes], orientation: int
) -> None:
    upright = engine.analyze(sample_bytes("obama.jpg")).faces
    rotated = engine.analyze(sample_bytes(f"rotated/obama_exif_orient{orientation}.jpg")).faces
    assert len(rotated) == len(upright) == 1
    a, b = upright[0].detected.box_px, rotated[0].detected.box_px
    assert abs(a.left - b.left) <= 4
    assert abs(a.top - b.top) <= 4
    assert abs(a.width - b.width) <= 4
    # Only JPEG re-encoding separates them: far closer than any two different photos.
    assert euclidean(_vector(upright[0]), _vector(rotated[0])) < 0.15


def test_flip_augmentation_is_close_to_plain(
    engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    flip = FaceEngine(EngineConfig(flip_tta=True), models=engine.models)
    assert flip.model_version == "dlib-resnet-v1+flip"
    assert engine.model_version == "dlib-resnet-v1"
    data = sample_bytes("obama.jpg")
    plain, averaged = _largest(engine, data), _largest(flip, data)
    assert 0.0 < euclidean(plain, averaged) < 0.15


def test_no_face_gives_empty_analysis(
    engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    analysis = engine.analyze(sample_bytes("coffee.png"))
    assert analysis.faces == ()
    assert (analysis.width_px, analysis.height_px, analysis.image_format) == (600, 400, "PNG")


def test_descriptors_optional_and_stage_times(
    sample_bytes: Callable[[str], bytes], engine: FaceEngine
) -> None:
    local = FaceEngine(EngineConfig(), models=engine.models)
    analysis = local.analyze(sample_bytes("two_people.jpg"), descriptors=False)
    assert [f.descriptor for f in analysis.faces] == [None, None]
    assert local.times.faces == 0
    local.analyze(sample_bytes("two_people.jpg"))
    assert local.times.faces == 2
    assert local.times.descriptor_s > 0
    assert local.times.detect_s > 0
    assert local.times.decode_s > 0


def test_bad_bytes_raise_typed_errors(
    engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    with pytest.raises(TruncatedImageError):
        engine.analyze(sample_bytes("obama.jpg")[:5000])


def test_a_large_photo_is_analysed_reduced_and_reported_in_its_own_pixels(
    engine: FaceEngine, samples: Path
) -> None:
    """Above work_pixels the engine works on the reduced image (engine.image); boxes and points
    come back in the image's own pixels, ratios and descriptors as at the photo's own size."""
    photo = samples / "two_people.jpg"  # 1126 x 661
    big = open_rgb(photo).resize((3378, 1983), Image.Resampling.LANCZOS)  # x3: 6.7 MP
    data = to_jpeg(big)
    image = engine.decode(data)
    assert image.reduced
    assert image.width_px * image.height_px <= EngineConfig().limits.work_pixels
    large = engine.analyze(data)
    small = engine.analyze(photo.read_bytes())
    assert (large.width_px, large.height_px) == (3378, 1983)
    assert len(large.faces) == len(small.faces) == 2
    for face in small.faces:
        b = face.detected.box_ratio
        twin = max(
            large.faces,
            key=lambda f: iou(
                (f.detected.box_ratio.left, f.detected.box_ratio.top, f.detected.box_ratio.width,
                 f.detected.box_ratio.height),
                (b.left, b.top, b.width, b.height),
            ),
        )  # fmt: skip
        got, want = twin.detected, face.detected
        ratios = [
            (got.box_ratio.left, want.box_ratio.left),
            (got.box_ratio.top, want.box_ratio.top),
            (got.box_ratio.width, want.box_ratio.width),
            *((p.x_ratio, q.x_ratio) for p, q in zip(got.landmarks, want.landmarks, strict=True)),
            *((p.y_ratio, q.y_ratio) for p, q in zip(got.landmarks, want.landmarks, strict=True)),
        ]
        assert max(abs(a - b) for a, b in ratios) < 0.02
        # pixels of the 3x image: three times those of the photo (detector jitter aside)
        assert got.box_px.width == pytest.approx(3 * want.box_px.width, rel=0.1)
        assert got.box_px.left == pytest.approx(3 * want.box_px.left, abs=0.03 * 3378)
        for (x, y), (u, v) in zip(got.points5_px, want.points5_px, strict=True):
            assert (x, y) == pytest.approx((3 * u, 3 * v), abs=0.01 * 3378)
        assert euclidean(_vector(twin), _vector(face)) < 0.15  # measured 0.04-0.05
    # detect + describe (the public steps) give what analyze gives, bit for bit
    faces = engine.detect(image)
    assert faces == tuple(f.detected for f in large.faces)
    for mine, theirs in zip(engine.describe(image, faces), large.faces, strict=True):
        assert np.array_equal(_vector(mine), _vector(theirs))
