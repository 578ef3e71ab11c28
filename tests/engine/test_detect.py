"""Detection on real photos: counts, no false faces, ordering, caps, recall against ground truth."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.detect import confidence_pct
from facegate.engine.image import decode_image
from facegate.engine.types import DetectorKind
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
    areas = [f.box_px.area for f in faces]
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


def test_large_images_are_downscaled_for_detection_only(engine: FaceEngine, samples: Path) -> None:
    img = open_rgb(samples / "obama-1080p.jpg")
    big = img.resize((3840, 2160), Image.Resampling.BICUBIC)
    image = decode_image(to_jpeg(big))
    faces = engine.detect(image)
    assert len(faces) == 1
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


def test_the_default_chain_falls_back_to_mtcnn_where_hog_finds_nothing(
    engine: FaceEngine, samples: Path
) -> None:
    camera = engine.decode((samples / "camera.png").read_bytes())
    faces = engine.detect(camera)  # HOG finds nothing; MTCNN, the first fallback, finds the man
    assert len(faces) == 1
    assert engine.last_found_by is DetectorKind.MTCNN
    assert 150 < faces[0].box_px.left + faces[0].box_px.width / 2 < 300
    obama = engine.analyze((samples / "obama.jpg").read_bytes())
    assert obama.found_by == "hog"  # a face HOG finds never reaches the fallbacks
    nothing = engine.analyze((samples / "coffee.png").read_bytes())
    assert nothing.faces == ()
    assert nothing.found_by == ""
    assert engine.last_found_by is None


@pytest.mark.slow
def test_mmod_gives_no_face_on_objects(engine: FaceEngine, samples: Path) -> None:
    img = open_rgb(samples / "coffee.png").resize((300, 200))
    assert engine.detect(decode_image(to_png(img)), detector=DetectorKind.MMOD) == ()
