"""Head pose: near zero for a frontal portrait, sign conventions under flips and rotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from facegate.engine.core import FaceEngine
from facegate.engine.image import decode_image
from facegate.engine.pose import estimate_pose
from facegate.engine.types import Pose
from tests.imaging import open_rgb, to_jpeg


def _pose(engine: FaceEngine, img: Image.Image) -> Pose:
    faces = engine.detect(decode_image(to_jpeg(img)))
    assert faces, "no face detected"
    return faces[0].pose


def test_frontal_portrait_is_near_zero(engine: FaceEngine, samples: Path) -> None:
    pose = _pose(engine, open_rgb(samples / "obama.jpg"))
    assert abs(pose.roll_deg) < 5
    assert abs(pose.yaw_deg) < 10
    assert abs(pose.pitch_deg) < 20


def test_mirror_negates_yaw_and_roll(engine: FaceEngine, samples: Path) -> None:
    img = open_rgb(samples / "obama2.jpg")  # a face turned well to one side
    pose = _pose(engine, img)
    mirrored = _pose(engine, ImageOps.mirror(img))
    assert abs(pose.yaw_deg) > 15
    assert mirrored.yaw_deg == pytest.approx(-pose.yaw_deg, abs=5)
    assert mirrored.roll_deg == pytest.approx(-pose.roll_deg, abs=3)


@pytest.mark.parametrize("angle", [-20, 15])
def test_in_plane_rotation_changes_roll(engine: FaceEngine, samples: Path, angle: int) -> None:
    img = open_rgb(samples / "obama.jpg")
    base = _pose(engine, img)
    # Pillow rotates counter-clockwise for positive angles; roll is positive clockwise.
    rotated = _pose(engine, img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True))
    assert rotated.roll_deg - base.roll_deg == pytest.approx(-angle, abs=4)


def test_degenerate_points_give_zero_pose() -> None:
    assert estimate_pose(np.zeros((68, 2))) == Pose(0.0, 0.0, 0.0)
