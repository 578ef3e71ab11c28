"""The probe's face crop kept with a held review (store: ``store.reviews``, encrypted).

When a search by image is held for human review, the reviewers see whom the search was about:
the searched face cut from the probe image (the response's bounding box, in ratios of the upright
image), with a margin, downscaled and re-encoded as a small JPEG. The probe is decoded by the
engine's own decoder (``engine.image.decode_image``), so EXIF orientation is applied exactly as
it was when the face was found.

Which operations keep a crop, and where their probe and its face box are, is each row's
``probe`` in :mod:`facegate.operations`: SearchFacesByImage and SearchUsersByImage (the searched
face), CompareFaces (the source face). SearchFaces (by FaceId) and SearchUsers (by FaceId or
UserId) have no probe image: their reviews have no crop.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from PIL import Image

from facegate.engine.image import ImageLimits, decode_image
from facegate.operations import OPERATIONS, Probe

MARGIN = 0.2
MAX_SIDE_PX = 256
JPEG_QUALITY = 85


__all__ = ["PROBES", "CropError", "Probe", "face_box", "face_crop"]

PROBES: Mapping[str, Probe] = MappingProxyType(
    {name: op.probe for name, op in OPERATIONS.items() if op.probe is not None}
)
"""Operation name -> its probe (the rows of :mod:`facegate.operations` that have one)."""


class CropError(ValueError):
    """The response has no usable face box for the probe."""


def face_box(probe: Probe, wire: Mapping[str, Any]) -> Mapping[str, float]:
    """The probe's face box (ratios) in a wire response; raises CropError if absent."""
    node: Any = wire
    for key in probe.box_path:
        if not isinstance(node, Mapping) or key not in node:
            raise CropError(f"the response has no {'.'.join(probe.box_path)}")
        node = node[key]
    if not isinstance(node, Mapping) or not {"Left", "Top", "Width", "Height"} <= node.keys():
        raise CropError(f"the response's {'.'.join(probe.box_path)} is incomplete")
    return node


def face_crop(
    image: bytes,
    box: Mapping[str, float],
    limits: ImageLimits = ImageLimits(),
    margin: float = MARGIN,
    max_side_px: int = MAX_SIDE_PX,
    quality: int = JPEG_QUALITY,
) -> bytes:
    """The face in ``box`` (ratios of the upright image) with ``margin`` of the box's size on
    every side (clipped to the image), at most ``max_side_px`` on its long side, as JPEG."""
    decoded = decode_image(image, limits)
    width, height = decoded.width_px, decoded.height_px
    left, top = float(box["Left"]) * width, float(box["Top"]) * height
    box_w, box_h = float(box["Width"]) * width, float(box["Height"]) * height
    x0 = max(0, math.floor(left - margin * box_w))
    y0 = max(0, math.floor(top - margin * box_h))
    x1 = min(width, math.ceil(left + box_w + margin * box_w))
    y1 = min(height, math.ceil(top + box_h + margin * box_h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise CropError("the face box lies outside the image")
    crop = Image.fromarray(decoded.pixels[y0:y1, x0:x1])
    crop.thumbnail((max_side_px, max_side_px), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    crop.save(out, format="JPEG", quality=quality)
    return out.getvalue()
