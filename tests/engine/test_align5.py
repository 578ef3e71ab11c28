"""The 5-point similarity alignment and HSE's box crop for faceres (engine/align5.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facegate.engine.align5 import (
    aligned_crop,
    arcface_template,
    box_crop,
    similarity_transform,
    warp,
)


def _similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


def test_similarity_transform_recovers_a_known_similarity() -> None:
    src = np.array([[10.0, 20.0], [50.0, 22.0], [30.0, 40.0], [15.0, 60.0], [48.0, 61.0]])
    m = _similarity(1.7, 0.3, 12.0, -4.0)
    dst = src @ m[:, :2].T + m[:, 2]
    assert np.allclose(similarity_transform(src, dst), m, atol=1e-9)


def test_similarity_transform_never_reflects() -> None:
    src = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    mirrored = src * np.array([-1.0, 1.0])
    m = similarity_transform(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0  # a rotation and scale, never a mirror


def test_similarity_transform_refuses_bad_points() -> None:
    with pytest.raises(ValueError, match="coincide"):
        similarity_transform([[1.0, 1.0], [1.0, 1.0]], [[0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="matching"):
        similarity_transform([[1.0, 1.0]], [[0.0, 0.0]])


def test_aligned_crop_puts_the_points_on_the_arcface_template() -> None:
    # a grey image with five white dots at known places, rotated and scaled
    image = np.full((300, 300, 3), 40, dtype=np.uint8)
    template = arcface_template(224)
    m = _similarity(0.6, -0.25, 70.0, 90.0)
    points = template @ m[:, :2].T + m[:, 2]
    for x, y in points:
        image[round(y) - 1 : round(y) + 2, round(x) - 1 : round(x) + 2] = 255
    crop = aligned_crop(image, [(float(x), float(y)) for x, y in points], 224)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    for x, y in template:  # each dot lands within 2 px of its template point
        window = crop[round(y) - 4 : round(y) + 5, round(x) - 4 : round(x) + 5, 0]
        iy, ix = np.unravel_index(int(np.argmax(window)), window.shape)
        assert window.max() > 150
        assert abs(iy - 4) <= 2 and abs(ix - 4) <= 2


def test_warp_is_black_outside_the_image() -> None:
    image = np.full((10, 10, 3), 200, dtype=np.uint8)
    out = warp(image, np.array([[1.0, 0.0, 50.0], [0.0, 1.0, 50.0]]), 100)
    assert out[0, 0].tolist() == [0, 0, 0]
    assert out[55, 55].tolist() == [200, 200, 200]


def test_box_crop_widens_clips_and_resizes() -> None:
    image = np.zeros((100, 120, 3), dtype=np.uint8)
    image[:, :60] = 255  # left half white
    crop = box_crop(image, (40.0, 20.0, 40.0, 40.0), 224, margin=0.1)
    assert crop.shape == (224, 224, 3)
    # box 40..80 widened by 4 px: 36..84, the white/black edge at x=60 lands mid-crop
    assert crop[112, 100, 0] == 255 and crop[112, 124, 0] == 0
    edge = box_crop(image, (-30.0, -30.0, 50.0, 50.0), 32)  # clipped at the image corner
    assert edge.shape == (32, 32, 3) and edge.min() == 255
    with pytest.raises(ValueError, match="outside"):
        box_crop(image, (500.0, 500.0, 10.0, 10.0))
