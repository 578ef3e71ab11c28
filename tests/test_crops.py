"""The probe's face crop: the box with its margin, upright (EXIF), downscaled, JPEG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from facegate.crops import PROBES, CropError, face_box, face_crop


def _jpeg(pixels: np.ndarray, orientation: int | None = None) -> bytes:
    img = Image.fromarray(pixels)
    out = io.BytesIO()
    if orientation is None:
        img.save(out, format="JPEG", quality=95)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.save(out, format="JPEG", quality=95, exif=exif)
    return out.getvalue()


def _scene(width: int = 800, height: int = 600) -> np.ndarray:
    """Grey, with a red square (the "face") at x 300-500, y 200-400."""
    pixels = np.full((height, width, 3), 128, dtype=np.uint8)
    pixels[200:400, 300:500] = (220, 30, 30)
    return pixels


BOX = {"Left": 300 / 800, "Top": 200 / 600, "Width": 200 / 800, "Height": 200 / 600}


def test_the_crop_is_the_box_with_a_margin() -> None:
    crop = Image.open(io.BytesIO(face_crop(_jpeg(_scene()), BOX)))
    assert crop.format == "JPEG"
    assert crop.size == (256, 256)  # 200 px + 2 x 20% = 280 px, downscaled to 256
    pixels = np.asarray(crop.convert("RGB"), dtype=np.int16)
    assert abs(pixels[128, 128] - (220, 30, 30)).max() < 20  # the face in the middle
    assert abs(pixels[5, 5] - (128, 128, 128)).max() < 20  # the margin around it


def test_a_small_face_is_not_upscaled_and_the_margin_is_clipped() -> None:
    box = {"Left": 0.0, "Top": 0.0, "Width": 0.1, "Height": 0.1}
    crop = Image.open(io.BytesIO(face_crop(_jpeg(_scene()), box)))
    assert crop.size == (96, 72)  # 80 x 60 plus 20% on the right and bottom only


def test_exif_orientation_is_applied_as_the_engine_does() -> None:
    # stored rotated: orientation 6 means "rotate 90 degrees clockwise to view"
    stored = np.ascontiguousarray(np.rot90(_scene(), k=1))
    crop = Image.open(io.BytesIO(face_crop(_jpeg(stored, orientation=6), BOX)))
    pixels = np.asarray(crop.convert("RGB"), dtype=np.int16)
    assert crop.size == (256, 256)
    assert abs(pixels[128, 128] - (220, 30, 30)).max() < 20


def test_the_box_comes_from_the_response() -> None:
    wire = {"SearchedFace": {"FaceDetail": {"BoundingBox": BOX}}}
    assert face_box(PROBES["SearchUsersByImage"], wire) == BOX
    with pytest.raises(CropError):
        face_box(PROBES["SearchFacesByImage"], wire)
    assert "SearchFaces" not in PROBES  # by FaceId: no probe image, no crop


def test_a_box_outside_the_image_is_refused() -> None:
    with pytest.raises(CropError):
        face_crop(_jpeg(_scene()), {"Left": 1.5, "Top": 0.0, "Width": 0.1, "Height": 0.1})
