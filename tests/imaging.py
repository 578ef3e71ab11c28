"""Helpers for tests: encoding images, opening samples, box overlap."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from facegate.engine.image import RGBImage


def to_png(pixels: RGBImage | Image.Image) -> bytes:
    """Encode pixels (array or Pillow image) as PNG bytes."""
    img = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def to_jpeg(img: Image.Image, quality: int = 95) -> bytes:
    """Encode a Pillow image as JPEG bytes."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def open_rgb(path: Path) -> Image.Image:
    """A sample as an upright RGB Pillow image."""
    with Image.open(path) as img:
        return img.convert("RGB")


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (left, top, width, height) boxes."""
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def as_array(img: Image.Image) -> RGBImage:
    """A Pillow image as a contiguous uint8 RGB array."""
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))
