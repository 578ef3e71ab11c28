"""Rendering engine results for people (tables) and programs (JSON), and progress bars."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm import tqdm

from facegate.engine.types import Analysis, DetectedFace

T = TypeVar("T")


def progress(items: Iterable[T], total: int, label: str) -> Iterator[T]:
    """A progress bar on stderr, shown only when stderr is a terminal and the run is long."""
    show = sys.stderr.isatty() and total > 1
    yield from tqdm(items, total=total, desc=label, unit="img", disable=not show, file=sys.stderr)


def face_json(face: DetectedFace) -> dict[str, Any]:
    """A face as plain JSON types (snake_case, units in names)."""
    return {
        "box_px": vars(face.box_px),
        "box_ratio": {k: round(v, 6) for k, v in vars(face.box_ratio).items()},
        "confidence_pct": round(face.confidence_pct, 4),
        "landmarks": [
            {"name": lm.name, "x_ratio": round(lm.x_ratio, 6), "y_ratio": round(lm.y_ratio, 6)}
            for lm in face.landmarks
        ],
        "pose": {k: round(v, 3) for k, v in vars(face.pose).items()},
        "quality": {k: round(v, 3) for k, v in vars(face.quality).items()},
    }


def analysis_json(analysis: Analysis) -> dict[str, Any]:
    """An analysis as plain JSON types (no descriptors: facegate never prints vectors)."""
    return {
        "width_px": analysis.width_px,
        "height_px": analysis.height_px,
        "format": analysis.image_format,
        "sha256": analysis.sha256,
        "faces": [face_json(f.detected) for f in analysis.faces],
    }


def analysis_table(name: str, analysis: Analysis) -> str:
    """A readable block: one line per face with box, confidence, pose and quality."""
    lines = [
        f"{name}: {analysis.width_px}x{analysis.height_px} {analysis.image_format}, "
        f"{len(analysis.faces)} face(s)"
    ]
    if analysis.faces:
        lines.append(
            "   #  box (left,top widthxheight px)  conf%   roll   yaw  pitch  bright  sharp"
        )
    for i, face in enumerate(analysis.faces, 1):
        d = face.detected
        b = d.box_px
        box = f"{b.left},{b.top} {b.width}x{b.height}"
        lines.append(
            f"  {i:2d}  {box:<31} {d.confidence_pct:5.1f} {d.pose.roll_deg:6.1f} "
            f"{d.pose.yaw_deg:5.1f} {d.pose.pitch_deg:6.1f} {d.quality.brightness_pct:7.1f} "
            f"{d.quality.sharpness_pct:6.1f}"
        )
    return "\n".join(lines) + "\n"
