"""Rekognition's QualityFilter (NONE, AUTO, LOW, MEDIUM, HIGH) on facegate's quality signals.

Rekognition does not publish its bars; facegate's are explicit. A face fails a level when any
signal is outside the level's bounds, and the reasons say which (Rekognition's reason names):

| level  | min box side px | min confidence | min sharpness | brightness | max abs yaw / pitch |
|--------|-----------------|----------------|---------------|------------|---------------------|
| LOW    | 20              | 90             | 5             | 5 - 98     | 75 / 60             |
| MEDIUM | 40              | 95             | 15            | 10 - 95    | 55 / 45             |
| HIGH   | 60              | 98             | 30            | 20 - 90    | 40 / 35             |

AUTO is LOW: it removes only faces that would give useless descriptors, so IndexFaces on an
ordinary group photo keeps every visible face. Pitch from a generic head is the least reliable
signal (see engine.pose), hence its wider bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

from facegate.engine.types import DetectedFace


@dataclass(frozen=True)
class QualityBar:
    min_side_px: int
    min_confidence_pct: float
    min_sharpness_pct: float
    min_brightness_pct: float
    max_brightness_pct: float
    max_yaw_deg: float
    max_pitch_deg: float


_LOW = QualityBar(20, 90.0, 5.0, 5.0, 98.0, 75.0, 60.0)
BARS: dict[str, QualityBar | None] = {
    "NONE": None,
    "AUTO": _LOW,
    "LOW": _LOW,
    "MEDIUM": QualityBar(40, 95.0, 15.0, 10.0, 95.0, 55.0, 45.0),
    "HIGH": QualityBar(60, 98.0, 30.0, 20.0, 90.0, 40.0, 35.0),
}


def quality_reasons(face: DetectedFace, level: str) -> list[str]:
    """Why ``face`` fails the bar of ``level`` (empty when it passes or the level is NONE)."""
    bar = BARS.get(level)
    if bar is None:
        return []
    reasons = []
    if abs(face.pose.yaw_deg) > bar.max_yaw_deg or abs(face.pose.pitch_deg) > bar.max_pitch_deg:
        reasons.append("EXTREME_POSE")
    if face.quality.brightness_pct < bar.min_brightness_pct:
        reasons.append("LOW_BRIGHTNESS")
    if face.quality.sharpness_pct < bar.min_sharpness_pct:
        reasons.append("LOW_SHARPNESS")
    if face.confidence_pct < bar.min_confidence_pct:
        reasons.append("LOW_CONFIDENCE")
    if min(face.box_px.width, face.box_px.height) < bar.min_side_px:
        reasons.append("SMALL_BOUNDING_BOX")
    if face.quality.brightness_pct > bar.max_brightness_pct:
        reasons.append("LOW_FACE_QUALITY")
    return reasons


def quality_score(face: DetectedFace) -> float:
    """A single 0-100 score to rank faces when IndexFaces must drop some (MaxFaces)."""
    pose_penalty = min(1.0, (abs(face.pose.yaw_deg) + abs(face.pose.pitch_deg)) / 90.0)
    return (
        0.5 * face.quality.sharpness_pct
        + 0.3 * face.confidence_pct
        + 20.0 * (1.0 - pose_penalty)
        - 0.2 * abs(face.quality.brightness_pct - 55.0)
    )
