"""Facial landmarks: dlib's 68-point model mapped to Rekognition's 30 named points, and the
5-point model used for alignment.

The 68 points follow the iBUG 300-W numbering (0-16 jaw, 17-21 and 22-26 brows, 27-35 nose,
36-41 and 42-47 eyes, 48-67 mouth). Rekognition names "left" and "right" from the viewer's side
(``eyeLeft`` has the smaller X), which is also the side of the iBUG points 36-41, so no swap is
needed. Pupils are not modelled by dlib: ``leftPupil`` / ``rightPupil`` are the centres of the eye
contours, a close estimate for a frontal gaze.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from facegate.engine.image import RGBImage
from facegate.engine.models import rect
from facegate.engine.types import BoxPx, Landmark

Points = npt.NDArray[np.float64]
"""An (n, 2) array of (x, y) pixel coordinates."""

# Rekognition LandmarkType -> indices of the 68 iBUG points averaged to produce it.
REKOGNITION_LANDMARKS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("eyeLeft", (36, 37, 38, 39, 40, 41)),
    ("eyeRight", (42, 43, 44, 45, 46, 47)),
    ("nose", (30,)),
    ("mouthLeft", (48,)),
    ("mouthRight", (54,)),
    ("leftEyeBrowLeft", (17,)),
    ("leftEyeBrowRight", (21,)),
    ("leftEyeBrowUp", (19,)),
    ("rightEyeBrowLeft", (22,)),
    ("rightEyeBrowRight", (26,)),
    ("rightEyeBrowUp", (24,)),
    ("leftEyeLeft", (36,)),
    ("leftEyeRight", (39,)),
    ("leftEyeUp", (37, 38)),
    ("leftEyeDown", (40, 41)),
    ("rightEyeLeft", (42,)),
    ("rightEyeRight", (45,)),
    ("rightEyeUp", (43, 44)),
    ("rightEyeDown", (46, 47)),
    ("noseLeft", (31,)),
    ("noseRight", (35,)),
    ("mouthUp", (51,)),
    ("mouthDown", (57,)),
    ("leftPupil", (36, 37, 38, 39, 40, 41)),
    ("rightPupil", (42, 43, 44, 45, 46, 47)),
    ("upperJawlineLeft", (0,)),
    ("midJawlineLeft", (4,)),
    ("chinBottom", (8,)),
    ("midJawlineRight", (12,)),
    ("upperJawlineRight", (16,)),
)


def _dlib_rect(box: BoxPx) -> Any:
    return rect(box.left, box.top, box.left + box.width - 1, box.top + box.height - 1)


def shape_points(predictor: Any, pixels: RGBImage, box: BoxPx) -> tuple[Any, Points]:
    """Run a dlib shape predictor in ``box``; returns dlib's shape object and its points."""
    shape = predictor(pixels, _dlib_rect(box))
    pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
    return shape, pts


def named_landmarks(points68: Points, width_px: int, height_px: int) -> tuple[Landmark, ...]:
    """Rekognition's 30 named landmarks from the 68 points, as ratios of the image size."""
    out = []
    for name, idx in REKOGNITION_LANDMARKS:
        x, y = points68[list(idx)].mean(axis=0)
        out.append(Landmark(name=name, x_ratio=float(x) / width_px, y_ratio=float(y) / height_px))
    return tuple(out)
