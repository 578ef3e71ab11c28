"""Plain data produced by the engine: boxes, landmarks, pose, quality, faces.

Units are in the names: ``*_px`` are pixels of the decoded, orientation-corrected image;
``*_ratio`` are fractions of that image's width (x, left, width) or height (y, top, height), as in
Rekognition's ``BoundingBox`` and ``Landmarks``; ``*_pct`` are on a 0-100 scale; ``*_deg`` are
degrees. All types are frozen and picklable (they cross process boundaries in the worker pool).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # engine.attributes.types imports this module
    from facegate.engine.attributes.types import FaceAttributes

Vector = npt.NDArray[np.float32]
"""A face descriptor: float32, shape (dim,) of its descriptor model's vector space
(``facegate.vectorspace``): (128,) Euclidean for dlib's model, (1024,) cosine for faceres."""


class DetectorKind(StrEnum):
    """Which detector finds faces. HOG is fast; MMOD (a CNN) finds more faces, much more slowly;
    MTCNN (a cascade of small CNNs on onnxruntime, ``engine.mtcnn``) finds most faces HOG
    misses, in about a third of HOG's time at 640x480, and ``MTCNN_PADDED`` (MTCNN on the image
    with a 25% border) most of the rest: the engine's default chain is MTCNN, then HOG, then
    padded MTCNN (``DetectorConfig.kind`` and ``fallback``)."""

    HOG = "hog"
    MMOD = "mmod"
    MTCNN = "mtcnn"
    MTCNN_PADDED = "mtcnn-padded"
    BLAZEFACE = "blazeface"
    """Search probes' first detector (``engine.blazeface``); never in a chain."""


@dataclass(frozen=True)
class BoxPx:
    """An axis-aligned box in pixels; may extend past the image edge (as dlib reports it)."""

    left: int
    top: int
    width: int
    height: int

    @property
    def area(self) -> int:
        return self.width * self.height

    def to_ratio(self, image_width: int, image_height: int) -> BoxRatio:
        """The box as fractions of the image size (Rekognition's BoundingBox)."""
        return BoxRatio(
            left=self.left / image_width,
            top=self.top / image_height,
            width=self.width / image_width,
            height=self.height / image_height,
        )


@dataclass(frozen=True)
class BoxRatio:
    """A box as fractions of the image width and height. Values may fall outside 0-1 when the
    face is cut by the image edge, as Rekognition's BoundingBox does."""

    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class Landmark:
    """A named landmark (one of Rekognition's 30 ``LandmarkType`` names) as image ratios."""

    name: str
    x_ratio: float
    y_ratio: float


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees, each in -180..180.

    Conventions (viewer's perspective, image y pointing down):
    ``roll_deg`` > 0 when the face is rotated clockwise in the image; ``yaw_deg`` > 0 when the face
    turns towards the image's right side; ``pitch_deg`` > 0 when the face tilts up.
    """

    roll_deg: float
    yaw_deg: float
    pitch_deg: float


@dataclass(frozen=True)
class Quality:
    """Image quality of the face region on 0-100 (higher is better lit / sharper)."""

    brightness_pct: float
    sharpness_pct: float


@dataclass(frozen=True)
class DetectedFace:
    """One face found in an image, with everything but its descriptor.

    ``confidence_pct`` is the detector's score mapped to 0-100 (see ``engine.detect``);
    ``landmarks`` has Rekognition's 30 named points; ``points5_px`` are dlib's 5 alignment points
    (pixels), kept so the descriptor can be computed without detecting again. ``attributes``:
    the facial attributes the request asked for and the engine estimates
    (``engine.attributes``; None when none were asked for), computed for this request only.
    """

    box_px: BoxPx
    box_ratio: BoxRatio
    confidence_pct: float
    detector_score: float
    landmarks: tuple[Landmark, ...]
    pose: Pose
    quality: Quality
    points5_px: tuple[tuple[float, float], ...]
    attributes: FaceAttributes | None = None


@dataclass(frozen=True)
class Face:
    """A detected face with its descriptor (``None`` when descriptors were not requested)."""

    detected: DetectedFace
    descriptor: Vector | None


@dataclass(frozen=True)
class Analysis:
    """The result of running the engine on one image."""

    width_px: int
    height_px: int
    image_format: str
    sha256: str
    faces: tuple[Face, ...]
    found_by: str = ""
    """The detector that found the faces (``hog``, ``mtcnn`` ...); empty when there are none."""
    attributes_unavailable: frozenset[str] = frozenset()
    """Attributes the request asked for that this engine does not estimate (left out of every
    face)."""
