"""Five-point similarity alignment, ArcFace style, for ONNX descriptor models.

The five points are facegate's own: the centres of the two eye contours, the nose tip and the
two mouth corners of dlib's 68-point landmarks (Rekognition's ``eyeLeft``, ``eyeRight``,
``nose``, ``mouthLeft``, ``mouthRight``, :mod:`facegate.engine.landmarks`). The similarity
transform (rotation, uniform scale, translation; no reflection) that maps them onto ArcFace's
112 px template (insightface's ``arcface_src``) scaled to the model's input size is the least
squares one (Umeyama, 1991), and the face is resampled bilinearly through it (Pillow), black
outside the image. Pixel coordinates are indices (a pixel's centre is at its index, as in
OpenCV's ``warpAffine``, which insightface uses).

faceres measures LFW 97.5% with this alignment on facegate's detections (docs/models.md). A model
trained on another crop (a margin, another template) needs ``dlib-chip`` or its own alignment.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image

from facegate.engine.image import RGBImage
from facegate.engine.types import Landmark

ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
"""Left eye, right eye (viewer's), nose tip, left and right mouth corners on 112x112."""

FIVE_POINT_NAMES = ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")


def five_points(
    landmarks: Sequence[Landmark], width_px: int, height_px: int
) -> npt.NDArray[np.float64]:
    """The five alignment points (pixels of an image ``width_px`` x ``height_px``) from a
    face's named landmarks (ratios); ``KeyError`` if one is missing."""
    by_name = {lm.name: lm for lm in landmarks}
    return np.array(
        [[by_name[n].x_ratio * width_px, by_name[n].y_ratio * height_px] for n in FIVE_POINT_NAMES],
        dtype=np.float64,
    )


def similarity_transform(source: npt.ArrayLike, target: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The 2x3 matrix of the similarity transform taking ``source`` points nearest (least
    squares) to ``target`` points (Umeyama's method, reflection excluded)."""
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = float((s0**2).sum() / len(src))
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    scale = float((sig * sign).sum() / var_s) if var_s > 0 else 1.0
    matrix = np.zeros((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mu_d - scale * rotation @ mu_s
    return matrix


def aligned_face(pixels: RGBImage, points: npt.ArrayLike, size_px: int) -> npt.NDArray[np.uint8]:
    """The face warped onto ArcFace's template at ``size_px`` x ``size_px`` (RGB uint8)."""
    template = ARCFACE_TEMPLATE_112 * (size_px / 112.0)
    forward = similarity_transform(points, template)
    # Pillow wants the inverse map, output -> input, in continuous coordinates (a pixel's
    # centre at index + 0.5); the matrix maps index coordinates.
    a = forward[:, :2]
    inverse = np.linalg.inv(a)
    shift = -inverse @ forward[:, 2]
    # only the part of the image the output reads is handed to Pillow (a margin of 2 pixels
    # for the bilinear filter): the same pixels, without copying the whole image per face
    corners = np.array([[0, 0], [size_px, 0], [0, size_px], [size_px, size_px]], dtype=float)
    reach = corners @ inverse.T + shift
    height, width = pixels.shape[:2]
    x0, y0 = (max(0, int(np.floor(v)) - 2) for v in reach.min(axis=0))
    x1 = min(width, int(np.ceil(reach[:, 0].max())) + 3)
    y1 = min(height, int(np.ceil(reach[:, 1].max())) + 3)
    if x1 <= x0 or y1 <= y0:  # the face lies outside the image
        return np.zeros((size_px, size_px, 3), dtype=np.uint8)
    offset = shift - inverse @ np.array([0.5, 0.5]) + 0.5 - np.array([x0, y0])
    data = (
        inverse[0, 0],
        inverse[0, 1],
        offset[0],
        inverse[1, 0],
        inverse[1, 1],
        offset[1],
    )
    image = Image.fromarray(np.ascontiguousarray(pixels[y0:y1, x0:x1, :3], dtype=np.uint8))
    warped = image.transform(
        (size_px, size_px), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR
    )
    return np.asarray(warped, dtype=np.uint8)
