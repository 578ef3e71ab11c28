"""Brightness and sharpness respond the right way to darker and blurrier faces."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageEnhance, ImageFilter

from facegate.engine.core import FaceEngine
from facegate.engine.image import decode_image
from facegate.engine.quality import face_quality
from facegate.engine.types import BoxPx, Quality
from tests.imaging import as_array, open_rgb, to_jpeg


def _quality(engine: FaceEngine, img: Image.Image) -> Quality:
    faces = engine.detect(decode_image(to_jpeg(img)))
    assert faces
    return faces[0].quality


def test_blur_lowers_sharpness(engine: FaceEngine, samples: Path) -> None:
    img = open_rgb(samples / "obama.jpg")
    sharp = _quality(engine, img)
    blurred = _quality(engine, img.filter(ImageFilter.GaussianBlur(3)))
    assert sharp.sharpness_pct > 70
    assert blurred.sharpness_pct < 25
    assert abs(sharp.brightness_pct - blurred.brightness_pct) < 3


def test_darkening_lowers_brightness(engine: FaceEngine, samples: Path) -> None:
    img = open_rgb(samples / "obama.jpg")
    normal = _quality(engine, img)
    dark = _quality(engine, ImageEnhance.Brightness(img).enhance(0.4))
    assert 0 < dark.brightness_pct < normal.brightness_pct * 0.6
    assert 0 <= normal.brightness_pct <= 100


def test_box_outside_image_gives_zero(samples: Path) -> None:
    pixels = as_array(open_rgb(samples / "obama-240p.jpg"))
    assert face_quality(pixels, BoxPx(1000, 1000, 50, 50)) == Quality(0.0, 0.0)
    white = as_array(Image.new("RGB", (100, 100), (255, 255, 255)))
    q = face_quality(white, BoxPx(10, 10, 50, 50))
    assert q.brightness_pct == 100.0
    assert q.sharpness_pct == 0.0
