"""Brightness and sharpness of a face region on Rekognition's 0-100 scale.

* Brightness: mean luma (ITU-R BT.601) of the face box, as a percentage of full white.
* Sharpness: the face box is resampled to ``SHARPNESS_SIDE_PX`` square (so the measure reflects
  detail per face, not image size: a tiny, upscaled face is blurry), the variance of its 4-neighbour
  Laplacian is taken, and mapped to 0-100 by ``100 (1 - exp(-var / SHARPNESS_SCALE))``. The scale
  puts a typical in-focus portrait (samples/obama.jpg) near 85 and a strongly blurred one (Gaussian
  sigma 3) below 25; the tests check that ordering.

Both are heuristics with documented formulas, not Rekognition's (unpublished) models.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from facegate.engine.image import RGBImage
from facegate.engine.types import BoxPx, Quality

SHARPNESS_SIDE_PX = 112
SHARPNESS_SCALE = 150.0


def _crop(pixels: RGBImage, box: BoxPx) -> RGBImage:
    height, width = pixels.shape[:2]
    left, top = max(0, box.left), max(0, box.top)
    right, bottom = min(width, box.left + box.width), min(height, box.top + box.height)
    if right <= left or bottom <= top:
        return pixels[0:0, 0:0]
    return pixels[top:bottom, left:right]


def face_quality(pixels: RGBImage, box: BoxPx) -> Quality:
    """Brightness and sharpness of the part of ``box`` inside the image (0 for an empty crop)."""
    crop = _crop(pixels, box)
    if crop.size == 0:
        return Quality(brightness_pct=0.0, sharpness_pct=0.0)
    luma = crop[..., 0] * 0.299 + crop[..., 1] * 0.587 + crop[..., 2] * 0.114
    brightness = float(luma.mean()) / 255.0 * 100.0
    side = SHARPNESS_SIDE_PX
    resized = Image.fromarray(luma.astype(np.uint8)).resize((side, side), Image.Resampling.BILINEAR)
    g = np.asarray(resized, dtype=np.float64)
    lap = -4.0 * g[1:-1, 1:-1] + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    variance = float(lap.var())
    sharpness = 100.0 * (1.0 - math.exp(-variance / SHARPNESS_SCALE))
    return Quality(brightness_pct=brightness, sharpness_pct=sharpness)
