"""Head pose (roll, yaw, pitch) from 2D landmarks and a generic 3D face.

Method: fit a scaled-orthographic camera (weak perspective) that maps six points of an average
adult head (nose tip, chin, outer eye corners, mouth corners; millimetres, y up, z towards the
viewer) onto the matching dlib landmarks by least squares, project the fitted 2x3 matrix onto the
nearest rotation (SVD), and read Euler angles from it (R = Rz(roll) Ry(yaw) Rx(pitch)).

Accuracy: a generic head and weak perspective give a few degrees of error, more for extreme
poses; good enough for Rekognition-style quality filters (EXTREME_POSE) and capture guidance
(|yaw| < 45). Sign conventions are those of :class:`facegate.engine.types.Pose`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from facegate.engine.types import Pose

# Indices into the 68-point iBUG layout and matching 3D positions (mm) of a generic adult head.
_POSE_POINTS: tuple[int, ...] = (30, 8, 36, 45, 48, 54)
_MODEL_3D: npt.NDArray[np.float64] = np.array(
    [
        (0.0, 0.0, 0.0),  # nose tip
        (0.0, -63.6, -12.5),  # chin
        (-43.3, 32.7, -26.0),  # outer corner of the eye on the image's left
        (43.3, 32.7, -26.0),  # outer corner of the eye on the image's right
        (-28.9, -28.9, -24.1),  # mouth corner, image left
        (28.9, -28.9, -24.1),  # mouth corner, image right
    ],
    dtype=np.float64,
)


def _wrap(deg: float) -> float:
    """Wrap an angle into -180..180."""
    return (deg + 180.0) % 360.0 - 180.0


def estimate_pose(points68: npt.NDArray[np.float64]) -> Pose:
    """Pose from the 68 dlib landmarks (pixels). Degenerate input gives a zero pose."""
    image_pts = points68[list(_POSE_POINTS)].astype(np.float64)
    image_pts[:, 1] = -image_pts[:, 1]  # image y points down; the model's points up
    model = _MODEL_3D - _MODEL_3D.mean(axis=0)
    target = image_pts - image_pts.mean(axis=0)
    affine, *_ = np.linalg.lstsq(model, target, rcond=None)  # (3, 2): model @ affine ~ target
    rows = affine.T  # (2, 3)
    norms = np.linalg.norm(rows, axis=1)
    if not np.all(np.isfinite(rows)) or float(norms.min()) < 1e-9:
        return Pose(roll_deg=0.0, yaw_deg=0.0, pitch_deg=0.0)
    r1, r2 = rows[0] / norms[0], rows[1] / norms[1]
    approx = np.vstack([r1, r2, np.cross(r1, r2)])
    u, _, vt = np.linalg.svd(approx)
    rot = u @ vt
    if np.linalg.det(rot) < 0:  # keep a proper rotation
        u[:, -1] = -u[:, -1]
        rot = u @ vt
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -float(rot[2, 0])))))
    pitch_about_x = math.degrees(math.atan2(float(rot[2, 1]), float(rot[2, 2])))
    roll_ccw = math.degrees(math.atan2(float(rot[1, 0]), float(rot[0, 0])))
    # Rx(+a) turns the nose down and Rz(+g) turns the face counter-clockwise as seen by the
    # viewer; Pose reports pitch up and roll clockwise as positive.
    return Pose(roll_deg=_wrap(-roll_ccw), yaw_deg=_wrap(yaw), pitch_deg=_wrap(-pitch_about_x))
