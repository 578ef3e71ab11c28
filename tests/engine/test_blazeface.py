"""BlazeFace for search probes: anchors, decoding, the letterbox, real images, the engine's use.

The model is the converted ``blazeface-front`` in the models folder that ``tools/dev.py`` sets
up (``.venv/share/facegate/models``): these tests fail, never skip, without it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from facegate.engine.attributes.types import FaceModels
from facegate.engine.blazeface import (
    BlazeFaceConfig,
    BlazeFaceDetector,
    BlazeFaceUnavailable,
    anchor_centres,
    as_five_points,
    decode,
    default_config,
    letterbox,
)
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.detect import DetectorConfig, HogDetector, detection_version
from facegate.engine.image import ImageLimits, decode_image
from facegate.engine.types import DetectorKind

NO_FACE = ("coffee.png", "no_face_white.png", "dlib_voc/dogs.jpg")


@pytest.fixture(scope="module")
def detector() -> BlazeFaceDetector:
    return BlazeFaceDetector(default_config())


def pixels_of(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes(), ImageLimits()).pixels


def test_anchors_follow_the_outputs_order() -> None:
    anchors = anchor_centres()
    assert anchors.shape == (896, 2)
    # 16x16 cells of stride 8, two anchors each, row by row; then 8x8 of stride 16, six each
    assert anchors[0].tolist() == anchors[1].tolist() == [4.0, 4.0]
    assert anchors[2].tolist() == [12.0, 4.0]
    assert anchors[32].tolist() == [4.0, 12.0]
    assert anchors[511].tolist() == [124.0, 124.0]
    assert anchors[512].tolist() == anchors[517].tolist() == [8.0, 8.0]
    assert anchors[518].tolist() == [24.0, 8.0]
    assert anchors[895].tolist() == [120.0, 120.0]


def test_decoding_puts_boxes_and_keypoints_around_the_anchor() -> None:
    logits = np.full(896, -50.0, dtype=np.float32)
    regressions = np.zeros((896, 16), dtype=np.float32)
    logits[518] = 2.0
    regressions[518, :4] = [1.5, -2.0, 30.0, 40.0]  # centre offset, width, height
    regressions[518, 4:6] = [-6.0, -5.0]  # the first keypoint's offset
    rows = decode(logits, regressions)
    assert rows.shape == (896, 17)
    x1, y1, x2, y2, score = rows[518, :5]
    assert (x1, y1, x2, y2) == (24.0 + 1.5 - 15.0, 8.0 - 2.0 - 20.0, 40.5, 26.0)
    assert score == pytest.approx(1.0 / (1.0 + np.exp(-2.0)))
    assert (rows[518, 5], rows[518, 11]) == (18.0, 3.0)  # the anchor (24, 8) plus the offset
    assert rows[0, 4] < 1e-20
    five = as_five_points(rows[518:519])
    assert five.shape == (1, 15)
    assert five[0, 5] == 18.0
    assert five[0, 10] == 3.0


def test_letterbox_keeps_the_aspect_ratio() -> None:
    image = np.full((480, 640, 3), 255, dtype=np.uint8)
    batch, placed = letterbox(image)
    assert batch.shape == (1, 128, 128, 3)
    assert batch.dtype == np.float32
    assert placed.scale == pytest.approx(0.2)
    assert (placed.pad_x, placed.pad_y) == (0, 16)
    assert np.all(batch[0, :16] == 0.0)
    assert np.all(batch[0, 112:] == 0.0)
    assert np.allclose(batch[0, 16:112], 1.0)  # white is 1.0 on the -1..1 scale


def test_finds_the_face_where_hog_does(detector: BlazeFaceDetector, samples: Path) -> None:
    """The mapped box lands near HOG's box for the same face (the geometry dlib expects; on
    LFW the median IoU is 0.75, bench/blazeface_box_map.py: what matters is the descriptor,
    which moves no more than HOG's own 3 px jitter)."""
    engine = FaceEngine(EngineConfig(detector=DetectorConfig(search_blazeface=False)))
    hog = HogDetector(engine.models, DetectorConfig())
    for name in ("obama.jpg", "biden.jpg", "bbt/leonard1.png"):
        pixels = pixels_of(samples / name)
        found = detector.detect(pixels)
        assert len(found) == 1, name
        assert 0.75 <= found[0].score <= 1.0
        (reference,) = hog.detect(pixels)
        a, b = found[0].box_px, reference.box_px
        inter_w = min(a.left + a.width, b.left + b.width) - max(a.left, b.left)
        inter_h = min(a.top + a.height, b.top + b.height) - max(a.top, b.top)
        inter = max(0, inter_w) * max(0, inter_h)
        iou = inter / (a.width * a.height + b.width * b.height - inter)
        assert iou > 0.6, (name, a, b)


def test_boxes_come_back_in_the_image_frame(detector: BlazeFaceDetector, samples: Path) -> None:
    pixels = pixels_of(samples / "obama.jpg")
    border = 40
    padded = np.ascontiguousarray(
        np.pad(pixels, ((border, border), (border, 0), (0, 0)), mode="edge")
    )
    (a,) = detector.detect_rows(pixels)
    (b,) = detector.detect_rows(padded)
    shift = np.array([border, border, border, border])
    assert np.abs(b[:4] - shift - a[:4]).max() < 0.06 * (a[2] - a[0])


@pytest.mark.parametrize("name", NO_FACE)
def test_no_face_in_face_less_images(detector: BlazeFaceDetector, samples: Path, name: str) -> None:
    assert detector.detect(pixels_of(samples / name)) == []


def test_small_faces_are_left_to_the_chain(detector: BlazeFaceDetector, samples: Path) -> None:
    """The group photos' faces are a few percent of the image's width: below the short-range
    model's reach, so a probe of them goes to MTCNN (test_the_engine_uses_it_for_probes_only)."""
    for name in ("group_t1.jpg", "bbt/group_bbt1.jpg"):
        pixels = pixels_of(samples / name)
        assert pixels.shape[1] >= 1280
        assert detector.detect(pixels) == []


def test_the_engine_uses_it_for_probes_only(engine: FaceEngine, samples: Path) -> None:
    data = (samples / "obama.jpg").read_bytes()
    assert engine.probe_detector is not None
    probe = engine.analyze(data, max_faces=1)
    assert probe.found_by == DetectorKind.BLAZEFACE
    every = engine.analyze(data)
    assert every.found_by == DetectorKind.MTCNN  # DetectFaces, IndexFaces: the chain
    assert len(probe.faces) == len(every.faces) == 1
    a, b = probe.faces[0].descriptor, every.faces[0].descriptor
    assert a is not None
    assert b is not None
    assert 0.0 < float(np.linalg.norm(a - b)) < 0.1  # the same face, another box
    # a face BlazeFace does not see goes to the chain
    group = engine.analyze((samples / "group_t1.jpg").read_bytes(), max_faces=1)
    assert group.found_by == DetectorKind.MTCNN
    assert len(group.faces) == 1
    # a detector named explicitly is used alone
    named = engine.analyze(data, max_faces=1, detector=DetectorKind.HOG)
    assert named.found_by == DetectorKind.HOG


def test_it_can_be_turned_off(engine: FaceEngine, samples: Path) -> None:
    off = FaceEngine(EngineConfig(detector=DetectorConfig(search_blazeface=False)), engine.models)
    assert off.probe_detector is None
    probe = off.analyze((samples / "obama.jpg").read_bytes(), max_faces=1)
    assert probe.found_by == DetectorKind.MTCNN
    # caches of results with it off stay valid: repr is unchanged, the version names it when on
    assert repr(DetectorConfig(search_blazeface=False)) == repr(DetectorConfig())
    assert "probe=blazeface-front" in detection_version(DetectorConfig())
    assert "probe=" not in detection_version(DetectorConfig(search_blazeface=False))


def test_without_the_model_probes_use_the_chain(
    engine: FaceEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(BlazeFaceUnavailable, match="no converted models"):
        BlazeFaceDetector(BlazeFaceConfig(models_dir=tmp_path))
    config = EngineConfig(face_models=FaceModels(models_dir=tmp_path))
    with caplog.at_level(logging.WARNING, logger="facegate.engine"):
        degraded = FaceEngine(config, engine.models)
    assert degraded.probe_detector is None
    assert "BlazeFace for search probes is unavailable" in caplog.text
    # what caches key on: the detector as this engine runs it
    assert config.effective_detector().search_blazeface is False
    assert EngineConfig().effective_detector().search_blazeface is True
    assert config.effective_detector() == DetectorConfig(search_blazeface=False)


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid BlazeFace configuration"):
        BlazeFaceDetector(BlazeFaceConfig(score_threshold=1.5))
