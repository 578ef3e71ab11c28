"""EyeDirection: where the eyes look relative to the head, from the ``iris`` model (opt-in).

Rekognition's ``EyeDirection`` gives the eyes' yaw and pitch in degrees "independent of the head
pose": the rotation of the eyes in the head, not the head's own direction. facegate estimates it
in three steps, each stated here and measured in docs/attributes.md.

1. **Iris centres.** Each eye is cut out as human cuts it for MediaPipe Iris
   (``engine.human_models.eye_square``: the square around the eye's two corners enlarged 2.3x,
   dlib's 68 points 36/39 and 42/45), the eye on the image's right mirrored (the model takes
   the other eye's orientation: its first contour point lands on the outer corner only then,
   measured on Congress portraits by ``bench/attribute_eye_direction.py``). Point 71 of its 76
   is the iris centre, mapped back to image pixels.
2. **Offset in the eye's frame.** For each eye, the iris centre's offset from the midpoint of
   its two corners, along the corner line (``u``, towards the image's right) and across it
   (``v``, towards the image's top), over the corner distance. Roll, size and position drop out.
3. **Eyeball model** (constants from anatomy, fixed before any measurement):

   * the seen (entrance) pupil turns on a circle of radius :data:`PUPIL_RADIUS_MM` 10.5 mm about
     the eye's centre of rotation (the centre about 13.5 mm behind the cornea's apex, a
     textbook value; the entrance pupil about 3 mm behind it, Gullstrand's schematic eye);
   * the eye is :data:`EYE_WIDTH_MM` 30 mm from corner to corner (adults' palpebral fissure; it
     varies by person, so angles carry that person's ratio as a scale error);
   * the corners' midpoint lies ``D`` in front of the centre of rotation;
   * the head is seen in scaled orthographic projection, its yaw ``H`` and pitch ``P`` from
     ``engine.pose``; the corner distance in the image is the eye width times ``cos H``.

   For an eye rotated by yaw ``y`` in the head, the iris centre projects ``R sin(y + H) - D sin H``
   from the corners' midpoint (``R``: the radius), so
   ``sin(y + H) = ((u - u0) W cos H + D sin H) / R`` and likewise for the pitch with ``v``,
   ``P`` and ``v0``. Fitted (``engine/calibration/attributes-eye-direction.json``, on one half of
   the Congress portraits, measured on the other): ``u0`` and ``v0``, where the iris sits with
   the eyes looking straight out of the head, and ``D``, separately for yaw and pitch (anatomy
   puts it at a few millimetres; for pitch the fit also absorbs the head pitch's own error,
   which ``D sin P`` would otherwise pass on). The two eyes' angles are averaged.

``Confidence`` is how well the two eyes agree: 100 when both give the same direction, falling
linearly to 0 at :data:`DISAGREEMENT_ZERO_DEG` between them (two eyes looking at anything but
the nearest objects look the same way). It is a consistency check, not a probability; how error
grows as it falls is measured in docs/attributes.md.

No estimate (the member is left out) for a face turned more than :data:`MAX_YAW_DEG` (its far
eye is foreshortened or hidden), an eye whose corners coincide, or eyes the EyesOpen rule calls
closed (no iris to see).

Signs follow facegate's ``Pose``: yaw > 0 when the eyes turn towards the image's right, pitch > 0
when they look up. What this is not: where a person is looking in the scene (that needs the
camera and the scene), nor a measurement of attention.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from facegate.engine.attributes.geometry import geometric
from facegate.engine.attributes.types import (
    Attribute,
    EyeDirection,
    FaceInput,
    ModelSource,
    Points68,
)
from facegate.engine.human_models import LoadedModel, Square, eye_square, prepare_batch

IRIS = "iris"

PUPIL_RADIUS_MM = 10.5
"""Distance of the seen pupil centre from the eye's centre of rotation (module docstring)."""
EYE_WIDTH_MM = 30.0
"""Corner-to-corner width of an adult's eye (module docstring)."""
MAX_YAW_DEG = 45.0
"""Beyond this head yaw no EyeDirection is estimated."""
DISAGREEMENT_ZERO_DEG = 30.0
"""Angle between the two eyes' directions at which Confidence reaches 0."""

IRIS_CENTRE = 71
"""Index of the iris centre among the model's 76 points (71 contour points come first)."""
EYES: tuple[tuple[int, int, bool], ...] = ((36, 39, False), (42, 45, True))
"""Each eye as (left corner, right corner in the image, mirror the crop): dlib's 36-39 is the
eye on the image's left, 42-45 the one on its right, whose crop is mirrored for the model."""

CALIBRATION_FILE = "attributes-eye-direction.json"


@dataclass(frozen=True)
class EyeballModel:
    """The constants of step 3 (module docstring) and the fitted numbers: the rest offsets
    ``u0``, ``v0`` and the corners' depth for yaw and for pitch."""

    pupil_radius_mm: float = PUPIL_RADIUS_MM
    eye_width_mm: float = EYE_WIDTH_MM
    corner_depth_yaw_mm: float = 0.0
    corner_depth_pitch_mm: float = 0.0
    rest_u: float = 0.0
    rest_v: float = 0.0


@dataclass(frozen=True)
class EyeOffset:
    """One eye's iris centre relative to its corners (step 2): ``u`` along the corner line
    towards the image's right, ``v`` across it towards the image's top, both over the corner
    distance."""

    u: float
    v: float


def iris_centres(
    model: LoadedModel, pixels: npt.NDArray[np.uint8], points: Points68
) -> list[tuple[float, float]]:
    """The iris centre of each eye of :data:`EYES`, in image pixels (one model run, batch 2)."""
    squares: list[Square] = []
    crops = []
    for left, right, mirror in EYES:
        square = eye_square(
            (float(points[left][0]), float(points[left][1])),
            (float(points[right][0]), float(points[right][1])),
        )
        squares.append(square)
        crops.append(square.crop(pixels, mirror=mirror))
    out = model.run(prepare_batch(model.spec.input, crops))["landmarks"]
    size = float(model.spec.input.width_px)
    centres = []
    for i, ((_, _, mirror), square) in enumerate(zip(EYES, squares, strict=True)):
        x, y = (float(c) for c in out[i].reshape(-1, 3)[IRIS_CENTRE][:2])
        if mirror:
            x = size - x
        side = round(square.side_px)  # the crop's own size (Square.crop rounds it)
        left_px = round(square.centre_x_px - square.side_px / 2)
        top_px = round(square.centre_y_px - square.side_px / 2)
        centres.append((left_px + x * side / size, top_px + y * side / size))
    return centres


def eye_offset(
    corner_left: npt.ArrayLike, corner_right: npt.ArrayLike, iris: npt.ArrayLike
) -> EyeOffset | None:
    """Step 2 for one eye (pixels in); None when its corners coincide."""
    a = np.asarray(corner_left, dtype=np.float64)
    b = np.asarray(corner_right, dtype=np.float64)
    c = np.asarray(iris, dtype=np.float64)
    axis = b - a
    width = float(np.hypot(axis[0], axis[1]))
    if not math.isfinite(width) or width < 1e-6 or not np.all(np.isfinite(c)):
        return None
    along = axis / width
    up = np.array([along[1], -along[0]])  # the corner line turned a quarter towards the top
    d = c - (a + b) / 2.0
    return EyeOffset(float(d @ along) / width, float(d @ up) / width)


def _angle(
    offset: float, head_deg: float, scale_cos_deg: float, depth_mm: float, model: EyeballModel
) -> float:
    head = math.radians(head_deg)
    s = (
        offset * model.eye_width_mm * math.cos(math.radians(scale_cos_deg))
        + depth_mm * math.sin(head)
    ) / model.pupil_radius_mm
    return math.degrees(math.asin(max(-1.0, min(1.0, s)))) - head_deg


def eye_angles(
    offset: EyeOffset, head_yaw_deg: float, head_pitch_deg: float, model: EyeballModel
) -> tuple[float, float]:
    """Step 3 for one eye: its (yaw, pitch) in the head, degrees."""
    yaw = _angle(
        offset.u - model.rest_u, head_yaw_deg, head_yaw_deg, model.corner_depth_yaw_mm, model
    )
    pitch = _angle(
        offset.v - model.rest_v, head_pitch_deg, head_yaw_deg, model.corner_depth_pitch_mm, model
    )
    return yaw, pitch


def combine(
    angles: list[tuple[float, float]], zero_deg: float = DISAGREEMENT_ZERO_DEG
) -> EyeDirection:
    """The two eyes' mean (yaw, pitch) with the agreement as Confidence (module docstring)."""
    yaw = float(np.mean([a[0] for a in angles]))
    pitch = float(np.mean([a[1] for a in angles]))
    if len(angles) < 2:
        confidence = 0.0
    else:
        gap = math.hypot(angles[0][0] - angles[1][0], angles[0][1] - angles[1][1])
        confidence = 100.0 * max(0.0, 1.0 - gap / zero_deg)
    return EyeDirection(max(-180.0, min(180.0, yaw)), max(-180.0, min(180.0, pitch)), confidence)


@functools.cache
def calibration_document() -> Mapping[str, Any]:
    """The shipped rest offsets and their measurement (read once per process). Raises
    ``OSError`` / ``ValueError`` when absent or malformed: EyeDirection is then unavailable."""
    path = resources.files("facegate.engine").joinpath(f"calibration/{CALIBRATION_FILE}")
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    rest = doc.get("rest") if isinstance(doc, dict) else None
    depth = doc.get("corner_depth_mm") if isinstance(doc, dict) else None
    if (
        not isinstance(rest, dict)
        or not isinstance(depth, dict)
        or not isinstance(doc.get("version"), str)
    ):
        raise ValueError(f"{CALIBRATION_FILE} is not an eye direction calibration")
    return doc


def shipped_model() -> tuple[EyeballModel, str, Mapping[str, Any]]:
    """The eyeball model with the shipped fitted numbers, the calibration's version and its
    measurement."""
    doc = calibration_document()
    depth = doc["corner_depth_mm"]
    model = EyeballModel(
        corner_depth_yaw_mm=float(depth["yaw"]),
        corner_depth_pitch_mm=float(depth["pitch"]),
        rest_u=float(doc["rest"]["u"]),
        rest_v=float(doc["rest"]["v"]),
    )
    return model, str(doc["version"]), dict(doc.get("measured", {}))


def _short(model: LoadedModel) -> str:
    return f"{model.spec.name}-{(model.status.sha256 or 'unknown')[:8]}"


@dataclass(frozen=True)
class EyeDirectionEstimator:
    """EyeDirection from the ``iris`` model and the eyeball model (module docstring)."""

    model: LoadedModel
    eyeball: EyeballModel
    calibration_version: str
    eyes_open: Any = None
    """The EyesOpen estimator whose "closed" withholds the estimate (None: not checked)."""
    attribute: Attribute = Attribute.EYE_DIRECTION
    measured: Mapping[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return f"{_short(self.model)}.eyeball-r10.5-w30.{self.calibration_version}"

    def offsets(self, face: FaceInput) -> list[EyeOffset] | None:
        """Both eyes' offsets (step 2), or None when the face allows no estimate."""
        if abs(face.pose.yaw_deg) > MAX_YAW_DEG:
            return None
        if self.eyes_open is not None:
            is_open = self.eyes_open.estimate(face)
            if is_open is not None and not is_open.value:
                return None
        points = face.points68_px
        centres = iris_centres(self.model, face.pixels, points)
        offsets = []
        for (left, right, _), centre in zip(EYES, centres, strict=True):
            offset = eye_offset(points[left], points[right], centre)
            if offset is None:
                return None
            offsets.append(offset)
        return offsets

    def estimate(self, face: FaceInput) -> EyeDirection | None:
        offsets = self.offsets(face)
        if offsets is None:
            return None
        angles = [
            eye_angles(o, face.pose.yaw_deg, face.pose.pitch_deg, self.eyeball) for o in offsets
        ]
        return combine(angles)


def make_eye_direction(models: ModelSource) -> EyeDirectionEstimator:
    """The EyeDirection estimator (``OSError`` when ``iris`` is not enabled or available,
    ``ValueError`` when the calibration is missing)."""
    eyeball, version, measured = shipped_model()
    return EyeDirectionEstimator(
        models.load(IRIS), eyeball, version, geometric(Attribute.EYES_OPEN), measured=measured
    )
