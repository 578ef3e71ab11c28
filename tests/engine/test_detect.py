"""Detection on real photos: counts, no false faces, ordering, caps, recall against ground truth."""

from __future__ import annotations

import logging
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegate.engine.core import DescriptorRuntime, EngineConfig, FaceEngine
from facegate.engine.detect import RawDetection, confidence_pct, largest_first
from facegate.engine.image import decode_image
from facegate.engine.mtcnn import MtcnnConfig, MtcnnDetector
from facegate.engine.types import BoxPx, DetectorKind
from tests.imaging import iou, open_rgb, to_jpeg, to_png


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("obama.jpg", 1),
        ("biden.jpg", 1),
        ("astronaut.png", 1),
        ("two_people.jpg", 2),
        ("group_t1.jpg", 6),
        ("bbt/group_bbt1.jpg", 4),
        ("no_face_white.png", 0),
        ("coffee.png", 0),
        ("dlib_voc/dogs.jpg", 0),
    ],
)
def test_face_counts(
    engine: FaceEngine, sample_bytes: Callable[[str], bytes], name: str, count: int
) -> None:
    faces = engine.detect(engine.decode(sample_bytes(name)))
    assert len(faces) == count


def test_small_faces_in_a_640x480_group_photo(engine: FaceEngine, samples: Path) -> None:
    # group_t1 scaled to 640 px wide (640x443): six faces of about 53 px.
    img = open_rgb(samples / "group_t1.jpg")
    small = img.resize((640, round(img.height * 640 / img.width)), Image.Resampling.LANCZOS)
    faces = engine.detect(decode_image(to_jpeg(small)))
    assert len(faces) == 6
    assert max(f.box_px.width for f in faces) < 70  # these really are small faces


def test_faces_sorted_largest_first_with_ratios(
    engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    image = engine.decode(sample_bytes("group_t1.jpg"))
    faces = engine.detect(image)
    areas = [f.box_px.area for f in faces]  # every face is inside the frame here
    assert areas == sorted(areas, reverse=True)
    for f in faces:
        assert f.box_ratio.left == pytest.approx(f.box_px.left / image.width_px)
        assert f.box_ratio.height == pytest.approx(f.box_px.height / image.height_px)
        assert 95.0 < f.confidence_pct <= 100.0


def test_max_faces_cap(sample_bytes: Callable[[str], bytes]) -> None:
    base = EngineConfig()
    capped = FaceEngine(replace(base, detector=replace(base.detector, max_faces=3)))
    faces = capped.detect(capped.decode(sample_bytes("group_t1.jpg")))
    full = FaceEngine(base, models=capped.models).detect(
        capped.decode(sample_bytes("group_t1.jpg"))
    )
    assert [f.box_px for f in faces] == [f.box_px for f in full[:3]]


def test_a_face_cut_by_the_frame_does_not_outrank_the_whole_face(
    engine: FaceEngine, samples: Path
) -> None:
    # LFW's Joseph_Biden_0002: MTCNN also finds a neighbour's face cut by the left edge, whose
    # whole box (112 px) is larger than Biden's (108 px); only 73 px of its width are visible.
    path = samples.parent / "lfw" / "images" / "Joseph_Biden" / "Joseph_Biden_0002.jpg"
    image = engine.decode(path.read_bytes())
    faces = engine.detect(image)
    assert len(faces) == 2
    first, second = (f.box_px for f in faces)
    assert first.left >= 0  # Biden, in the middle
    assert second.left < 0
    assert second.area > first.area


def test_largest_first_orders_by_the_area_inside_the_image() -> None:
    def raw(left: int, top: int, side: int, score: float = 1.0) -> RawDetection:
        return RawDetection(BoxPx(left=left, top=top, width=side, height=side), score)

    inside, cut, small = raw(70, 80, 100), raw(-50, 80, 120), raw(10, 10, 40)
    assert largest_first([cut, small, inside], 3, 250, 250) == [inside, cut, small]
    assert largest_first([cut, small, inside], 1, 250, 250) == [inside]
    tie_low, tie_high = raw(0, 0, 50, 0.5), raw(100, 100, 50, 0.9)
    assert largest_first([tie_low, tie_high], 2, 250, 250) == [tie_high, tie_low]


def test_large_images_are_downscaled_for_detection_only(engine: FaceEngine, samples: Path) -> None:
    img = open_rgb(samples / "obama-1080p.jpg")
    big = img.resize((3840, 2160), Image.Resampling.BICUBIC)
    image = decode_image(to_jpeg(big))
    faces = engine.detect(image)
    # The face first (largest first). MTCNN, first in the default chain, also reports a second,
    # small box at O-Net probability 0.87 on this 2x-upscaled frame: a false detection that its
    # published 0.7 threshold lets through (0.9 would drop it, at a cost of FairFace failure to
    # detect 1.68% -> 2.50%), so the count is not asserted.
    assert faces
    assert faces[0].box_px.width > 400
    reference = engine.detect(decode_image(to_jpeg(img)))[0].box_px
    box = faces[0].box_px
    # Boxes come back in full-resolution pixels: twice the 1080p box, within a few pixels.
    assert (
        iou(
            (box.left / 2, box.top / 2, box.width / 2, box.height / 2),
            (reference.left, reference.top, reference.width, reference.height),
        )
        > 0.8
    )


def test_confidence_mapping_is_monotone() -> None:
    scores = [-1.0, 0.0, 0.2, 1.0, 2.0]
    values = [confidence_pct(s) for s in scores]
    assert values == sorted(values)
    assert confidence_pct(0.2) == pytest.approx(97.3, abs=0.05)
    assert 0.0 < values[0] < values[-1] < 100.0


def _ground_truth(folder: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    boxes: dict[str, list[tuple[float, float, float, float]]] = {}
    for xml in ("training.xml", "testing.xml"):
        root = ET.parse(folder / xml).getroot()
        for image in root.iter("image"):
            name = image.attrib["file"]
            if (folder / name).is_file():
                boxes.setdefault(name, []).extend(
                    (
                        float(b.attrib["left"]),
                        float(b.attrib["top"]),
                        float(b.attrib["width"]),
                        float(b.attrib["height"]),
                    )
                    for b in image.iter("box")
                )
    return boxes


def test_recall_on_dlib_voc_ground_truth(engine: FaceEngine, samples: Path) -> None:
    truth = _ground_truth(samples / "dlib_voc")
    assert sum(len(v) for v in truth.values()) >= 8  # the images present in the folder
    found = total = false_positives = 0
    for name, boxes in truth.items():
        faces = engine.detect(engine.decode((samples / "dlib_voc" / name).read_bytes()))
        dets = [(f.box_px.left, f.box_px.top, f.box_px.width, f.box_px.height) for f in faces]
        total += len(boxes)
        found += sum(1 for b in boxes if any(iou(b, d) >= 0.4 for d in dets))
        false_positives += sum(1 for d in dets if all(iou(b, d) < 0.4 for b in boxes))
    assert found / total >= 0.95, f"recall {found}/{total}"
    assert false_positives == 0


@pytest.mark.slow
def test_mmod_finds_the_face_hog_misses(engine: FaceEngine, samples: Path) -> None:
    # camera.png: a man looking through a camera, a face HOG's frontal model does not fire on.
    data = (samples / "camera.png").read_bytes()
    image = engine.decode(data)
    assert engine.detect(image, detector=DetectorKind.HOG) == ()
    faces = engine.detect(image, detector=DetectorKind.MMOD)
    assert len(faces) == 1
    assert 150 < faces[0].box_px.left + faces[0].box_px.width / 2 < 300


def test_the_default_chain_leads_with_mtcnn_and_stops_at_the_first_that_finds_a_face(
    engine: FaceEngine, samples: Path
) -> None:
    assert engine.detector_chain == (
        DetectorKind.MTCNN,
        DetectorKind.HOG,
        DetectorKind.MTCNN_PADDED,
    )
    camera = engine.decode((samples / "camera.png").read_bytes())
    faces = engine.detect(camera)  # HOG finds nothing here; MTCNN, first, finds the man
    assert len(faces) == 1
    assert engine.last_found_by is DetectorKind.MTCNN
    assert 150 < faces[0].box_px.left + faces[0].box_px.width / 2 < 300
    nothing = engine.analyze((samples / "coffee.png").read_bytes())
    assert nothing.faces == ()
    assert nothing.found_by == ""
    assert engine.last_found_by is None


def test_mtcnn_boxes_are_mapped_to_hogs_geometry(engine: FaceEngine, samples: Path) -> None:
    # The box map (engine.boxmap) turns MTCNN's tall forehead-to-chin box into the square box
    # HOG draws, so the shape predictor starts where it was trained to and the descriptor
    # stays in HOG's neighbourhood.
    image = engine.decode((samples / "obama.jpg").read_bytes())
    hog = engine.detect(image, detector=DetectorKind.HOG)[0]
    mapped = engine.detect(image)[0]
    raw = MtcnnDetector(MtcnnConfig(min_face_px=40)).detect(image.pixels)[0].box_px
    assert mapped.box_px.width == mapped.box_px.height

    def ltwh(b: BoxPx) -> tuple[float, float, float, float]:
        return (b.left, b.top, b.width, b.height)

    assert iou(ltwh(mapped.box_px), ltwh(hog.box_px)) > iou(ltwh(raw), ltwh(hog.box_px))
    assert iou(ltwh(mapped.box_px), ltwh(hog.box_px)) > 0.8
    (a,), (b,) = engine.describe(image, (hog,)), engine.describe(image, (mapped,))
    assert a.descriptor is not None
    assert b.descriptor is not None
    assert float(np.linalg.norm(a.descriptor - b.descriptor)) < 0.1


def test_without_onnxruntime_the_chain_falls_back_to_hog_with_a_warning(
    engine: FaceEngine,
    samples: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # importing it now raises
    with caplog.at_level(logging.WARNING, logger="facegate.engine"):
        hog_only = FaceEngine(
            EngineConfig(descriptor_runtime=DescriptorRuntime.DLIB), models=engine.models
        )
    assert hog_only.detector_chain == (DetectorKind.HOG,)
    warnings = [r.getMessage() for r in caplog.records if r.name == "facegate.engine"]
    assert [w.split(" is unavailable")[0] for w in warnings] == [
        "detection: mtcnn",
        "detection: mtcnn-padded",
    ]
    faces = hog_only.detect(hog_only.decode((samples / "obama.jpg").read_bytes()))
    assert len(faces) == 1
    assert hog_only.last_found_by is DetectorKind.HOG


@pytest.mark.slow
def test_mmod_gives_no_face_on_objects(engine: FaceEngine, samples: Path) -> None:
    img = open_rgb(samples / "coffee.png").resize((300, 200))
    assert engine.detect(decode_image(to_png(img)), detector=DetectorKind.MMOD) == ()
