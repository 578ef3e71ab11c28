"""MTCNN (engine.mtcnn) on real photos: the face HOG finds, group counts, no false faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.detect import DetectorConfig, make_detector
from facegate.engine.image import RGBImage
from facegate.engine.mtcnn import MtcnnConfig, MtcnnDetector, MtcnnModelError, nms
from facegate.engine.types import DetectorKind
from tests.imaging import as_array, iou, open_rgb


@pytest.fixture(scope="module")
def mtcnn() -> MtcnnDetector:
    return MtcnnDetector()


def _pixels(samples: Path, name: str, width: int | None = None) -> RGBImage:
    img = open_rgb(samples / name)
    if width is not None:
        img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
    return as_array(img)


@pytest.mark.parametrize("name", ["obama.jpg", "biden.jpg", "astronaut.png"])
def test_single_face_matches_hog(
    mtcnn: MtcnnDetector, engine: FaceEngine, samples: Path, name: str
) -> None:
    pixels = _pixels(samples, name)
    hog = make_detector(engine.models, DetectorConfig()).detect(pixels)
    assert len(hog) == 1
    found = [d for d in mtcnn.detect(pixels) if d.score >= 0.99]
    assert len(found) == 1
    a, b = found[0].box_px, hog[0].box_px
    assert iou((a.left, a.top, a.width, a.height), (b.left, b.top, b.width, b.height)) >= 0.5
    assert 0.99 <= found[0].score <= 1.0


@pytest.mark.parametrize(
    ("name", "count"),
    [("group_t1.jpg", 6), ("bbt/group_bbt1.jpg", 4), ("two_people.jpg", 2)],
)
def test_group_photos_at_640_px(mtcnn: MtcnnDetector, samples: Path, name: str, count: int) -> None:
    # As a search probe would be: 640 px wide, faces of about 45-90 px.
    assert len(mtcnn.detect(_pixels(samples, name, 640))) == count


@pytest.mark.parametrize("name", ["coffee.png", "dlib_voc/dogs.jpg", "no_face_white.png"])
def test_no_face(mtcnn: MtcnnDetector, samples: Path, name: str) -> None:
    assert mtcnn.detect(_pixels(samples, name)) == []


def test_finds_the_rotated_face_hog_misses(mtcnn: MtcnnDetector, samples: Path) -> None:
    # camera.png: a tilted, low-contrast face that HOG misses (see test_detect) and MMOD finds.
    assert len(mtcnn.detect(_pixels(samples, "camera.png"))) == 1


def test_larger_min_face_uses_fewer_pyramid_levels() -> None:
    small, large = MtcnnDetector(MtcnnConfig(min_face_px=20)), MtcnnConfig(min_face_px=40)
    assert len(small.scales(640, 480)) > len(MtcnnDetector(large).scales(640, 480)) >= 1
    assert small.scales(640, 480)[0] == pytest.approx(12 / 20)


def test_boxes_map_back_from_downscaled_detection(samples: Path) -> None:
    pixels = _pixels(samples, "two_people.jpg", 640)
    full = MtcnnDetector().detect(pixels)
    halved = MtcnnDetector(MtcnnConfig(detect_max_side_px=320)).detect(pixels)
    assert len(full) == len(halved) == 2
    for a in full:
        b = max(halved, key=lambda d: iou(_ltwh(a.box_px), _ltwh(d.box_px)))
        assert iou(_ltwh(a.box_px), _ltwh(b.box_px)) >= 0.6


def _ltwh(box: object) -> tuple[float, float, float, float]:
    return (box.left, box.top, box.width, box.height)  # type: ignore[attr-defined]


def test_engine_option(samples: Path, engine: FaceEngine) -> None:
    # DetectorKind.MTCNN through the engine: boxes get dlib landmarks like any detector's.
    mtcnn_engine = FaceEngine(EngineConfig().with_detector(DetectorKind.MTCNN), engine.models)
    data = (samples / "two_people.jpg").read_bytes()
    faces = mtcnn_engine.analyze(data, descriptors=False).faces
    assert len(faces) == 2
    assert all(f.detected.confidence_pct > 95.0 for f in faces)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array(
        [[0, 0, 10, 10, 0.9], [1, 1, 11, 11, 0.95], [50, 50, 60, 60, 0.5]], dtype=np.float64
    )
    assert nms(boxes, 0.5).tolist() == [1, 2]
    assert nms(np.empty((0, 5)), 0.5).size == 0


def test_rejects_wrong_model_files(tmp_path: Path) -> None:
    for name in ("pnet", "rnet", "onet"):
        (tmp_path / f"{name}.onnx").write_bytes(b"not a model")
    with pytest.raises(MtcnnModelError, match="sha256"):
        MtcnnDetector(model_dir=tmp_path)


@pytest.mark.parametrize(
    "config",
    [MtcnnConfig(scale_factor=1.0), MtcnnConfig(min_face_px=0), MtcnnConfig(pad_ratio=-0.1)],
)
def test_rejects_invalid_configuration(config: MtcnnConfig) -> None:
    with pytest.raises(ValueError, match="invalid MTCNN"):
        MtcnnDetector(config)


def test_padding_maps_boxes_back(samples: Path) -> None:
    pixels = _pixels(samples, "two_people.jpg", 640)
    plain = MtcnnDetector().detect(pixels)
    padded = MtcnnDetector(MtcnnConfig(pad_ratio=0.25)).detect(pixels)
    assert len(plain) == len(padded) == 2
    for a in plain:
        assert max(iou(_ltwh(a.box_px), _ltwh(b.box_px)) for b in padded) >= 0.8


def test_padding_finds_a_face_that_fills_the_frame(samples: Path) -> None:
    # obama.jpg cut to the middle of its face box: forehead and chin leave the frame.
    pixels = _pixels(samples, "obama.jpg")
    face = max(MtcnnDetector().detect(pixels), key=lambda d: d.score).box_px
    inset_x, inset_y = face.width // 5, face.height // 4
    crop = np.ascontiguousarray(
        pixels[
            face.top + inset_y : face.top + face.height - inset_y,
            face.left + inset_x : face.left + face.width - inset_x,
        ]
    )
    assert MtcnnDetector().detect(crop) == []
    assert len(MtcnnDetector(MtcnnConfig(pad_ratio=0.25)).detect(crop)) == 1


# --- the search probe's coarse-first cascade (MtcnnConfig.coarse_skip) -------------------------


@pytest.fixture(scope="module")
def coarse() -> MtcnnDetector:
    return MtcnnDetector(MtcnnConfig(min_face_px=40, coarse_skip=2))


def test_without_largest_only_the_coarse_setting_changes_nothing(
    coarse: MtcnnDetector, samples: Path
) -> None:
    full = MtcnnDetector(MtcnnConfig(min_face_px=40))
    for name, width in (("group_t1.jpg", 640), ("obama.jpg", None), ("two_people.jpg", 640)):
        pixels = _pixels(samples, name, width)
        assert np.array_equal(coarse.detect_boxes(pixels), full.detect_boxes(pixels))


def test_a_large_face_is_found_from_the_coarse_levels(
    coarse: MtcnnDetector, samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pixels = _pixels(samples, "obama.jpg", 640)  # a face of about 180 px
    levels: list[float] = []
    real = MtcnnDetector._level

    def level(self: MtcnnDetector, pyramid: Image.Image, scale: float) -> object:
        levels.append(scale)
        return real(self, pyramid, scale)

    monkeypatch.setattr(MtcnnDetector, "_level", level)
    found = coarse.detect_largest(pixels)
    scales = coarse.scales(pixels.shape[1], pixels.shape[0])
    assert levels == scales[2:]  # the two finest levels never ran
    full = [d for d in MtcnnDetector(MtcnnConfig(min_face_px=40)).detect(pixels) if d.score > 0.9]
    assert len(found) == len(full) == 1
    a, b = found[0].box_px, full[0].box_px
    assert iou((a.left, a.top, a.width, a.height), (b.left, b.top, b.width, b.height)) >= 0.9


def test_small_faces_fall_back_to_every_level_bit_for_bit(
    coarse: MtcnnDetector, samples: Path
) -> None:
    """Nothing found on the coarse levels (faces of about 30 px, or none): the cascade runs on
    every level (the coarse ones reused) and answers exactly as without largest_only."""
    for name, width in (("group_t1.jpg", 320), ("group_t1.jpg", 400), ("coffee.png", None)):
        pixels = _pixels(samples, name, width)
        assert coarse._cascade(pixels, coarse._candidates(_coarse_levels(coarse, pixels))).size == 0
        assert np.array_equal(
            coarse.detect_boxes(pixels, largest_only=True), coarse.detect_boxes(pixels)
        )


def _coarse_levels(detector: MtcnnDetector, pixels: RGBImage) -> list[np.ndarray]:
    pyramid = Image.fromarray(pixels)
    scales = detector.scales(pixels.shape[1], pixels.shape[0])
    return [detector._level(pyramid, s) for s in scales[detector.config.coarse_skip :]]


def test_the_engine_uses_it_for_the_largest_face_only(engine: FaceEngine, samples: Path) -> None:
    """analyze(max_faces=1) (a search probe) looks for large faces first; without max_faces
    every face is found as before. Off (coarse skip 0), the probe's face is the largest face of
    a full analysis, bit for bit."""
    data = (samples / "group_t1.jpg").read_bytes()
    every = engine.analyze(data)
    assert len(every.faces) == 6
    one = engine.analyze(data, max_faces=1)
    assert len(one.faces) == 1
    config = DetectorConfig(mtcnn_coarse_skip=0, search_blazeface=False)
    off = FaceEngine(EngineConfig(detector=config), engine.models)
    probe = off.analyze(data, max_faces=1)
    assert probe.faces[0].detected == every.faces[0].detected
    assert probe.faces[0].descriptor is not None
    assert every.faces[0].descriptor is not None
    assert np.array_equal(probe.faces[0].descriptor, every.faces[0].descriptor)
