"""Alignment: a face chip as dlib's descriptor network expects it.

dlib's ResNet descriptor was trained on 150x150 chips aligned with the 5-point landmarks and a
padding of 0.25 (``dlib.get_face_chip``'s defaults); any other geometry changes the descriptors.
"""

from __future__ import annotations

from collections.abc import Sequence

import dlib
import numpy as np

from facegate.engine.image import RGBImage
from facegate.engine.types import BoxPx

CHIP_SIZE_PX = 150
CHIP_PADDING = 0.25


def face_chip(pixels: RGBImage, box: BoxPx, points5_px: Sequence[tuple[float, float]]) -> RGBImage:
    """The aligned 150x150 RGB chip for a face from its box and dlib's 5 landmark points.

    dlib's points are integers, so rebuilding its shape object from ``points5_px`` is exact.
    """
    r = dlib.rectangle(box.left, box.top, box.left + box.width - 1, box.top + box.height - 1)
    parts = [dlib.point(round(x), round(y)) for x, y in points5_px]
    shape = dlib.full_object_detection(r, parts)
    chip = dlib.get_face_chip(pixels, shape, size=CHIP_SIZE_PX, padding=CHIP_PADDING)
    return np.ascontiguousarray(chip, dtype=np.uint8)
