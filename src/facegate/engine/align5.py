"""Face crops for the second descriptor (``faceres``): a 5-point similarity alignment, or HSE's
loose box crop.

Two geometries, both measured on LFW, FairFace and Congress (docs/models.md, "faceres and
fusion: measured"):

* ``arcface224``: the standard ArcFace/InsightFace 5-point template for 112x112 chips (left eye,
  right eye, nose tip, left and right mouth corner, image left first), scaled to 224x224. The
  similarity transform (rotation, uniform scale, translation; no reflection) that best maps the
  face's five points onto the template in the least-squares sense (Umeyama 1991) warps the
  image, bilinear, black outside it.
* ``hse-box``: what HSE's own code feeds the network (``facial_analysis.py``): the detector's
  box widened by a margin on every side (HSE: 10 px around MTCNN boxes of faces about 100 px
  wide; here 10% of the box's size), clipped to the image, stretched to 224x224, not rotated.

The five points are facegate's own: the centres of the 68-point model's eye contours (Rekognition
``eyeLeft``/``eyeRight``), the nose tip (point 30, ``nose``) and the mouth corners (48 and 54,
``mouthLeft``/``mouthRight``), in pixels of the decoded image.

Self-contained on purpose (numpy and Pillow only): the model-slot work (issue 19) may move the
alignment next to ``engine/align.py``; the geometry and its tests move with it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image

from facegate.engine.image import RGBImage

ARCFACE_112: tuple[tuple[float, float], ...] = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)
"""InsightFace's ``arcface_dst``: the five points of a 112x112 ArcFace chip (pixel indices)."""

ARCFACE_224 = "arcface224"
HSE_BOX = "hse-box"
ALIGNMENTS = (ARCFACE_224, HSE_BOX)
HSE_MARGIN = 0.10
"""``hse-box``'s margin on each side, as a fraction of the box's width and height."""

Matrix = npt.NDArray[np.float64]


def similarity_transform(src: npt.ArrayLike, dst: npt.ArrayLike) -> Matrix:
    """The 2x3 matrix ``M`` of the similarity (no reflection) minimising
    ``sum |M [s; 1] - d|^2`` over the point pairs (Umeyama's closed form).

    Raises ``ValueError`` for fewer than two points, mismatched shapes or coincident points.
    """
    s = np.asarray(src, dtype=np.float64)
    d = np.asarray(dst, dtype=np.float64)
    if s.shape != d.shape or s.ndim != 2 or s.shape[1] != 2 or len(s) < 2:
        raise ValueError(f"need two matching (n, 2) point sets, n >= 2; got {s.shape}, {d.shape}")
    mu_s, mu_d = s.mean(axis=0), d.mean(axis=0)
    sc, dc = s - mu_s, d - mu_d
    var_s = float((sc**2).sum() / len(s))
    if var_s <= 1e-12:
        raise ValueError("the source points coincide")
    cov = dc.T @ sc / len(s)
    u, sigma, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection: flip the weakest axis
        fix[1, 1] = -1.0
    rotation = u @ fix @ vt
    scale = float(np.trace(np.diag(sigma) @ fix)) / var_s
    out = np.zeros((2, 3))
    out[:, :2] = scale * rotation
    out[:, 2] = mu_d - scale * rotation @ mu_s
    return out


def warp(pixels: RGBImage, matrix: Matrix, size_px: int) -> RGBImage:
    """The ``size_px`` square image whose pixel ``(x, y)`` is ``pixels`` at ``M^-1 (x, y)``
    (``matrix`` maps image pixel indices to output pixel indices, as OpenCV's ``warpAffine``),
    bilinear, black outside the image."""
    a = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(a)
    # Pillow samples at pixel centres (index + 0.5); shift into and out of index coordinates
    shift = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    unshift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    m = unshift @ inverse @ shift
    coeffs = (m[0, 0], m[0, 1], m[0, 2], m[1, 0], m[1, 1], m[1, 2])
    image = Image.fromarray(np.ascontiguousarray(pixels[:, :, :3]))
    out = image.transform(
        (size_px, size_px), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR
    )
    return np.ascontiguousarray(np.asarray(out, dtype=np.uint8))


def arcface_template(size_px: int = 224) -> Matrix:
    """The ArcFace 112x112 template scaled to ``size_px`` (a (5, 2) array)."""
    return np.asarray(ARCFACE_112, dtype=np.float64) * (size_px / 112.0)


def aligned_crop(
    pixels: RGBImage, points5_px: Sequence[tuple[float, float]], size_px: int = 224
) -> RGBImage:
    """``arcface224``: the face warped so its five points (see the module docstring, in that
    order) land on the ArcFace template scaled to ``size_px``."""
    matrix = similarity_transform(points5_px, arcface_template(size_px))
    return warp(pixels, matrix, size_px)


def box_crop(
    pixels: RGBImage,
    box_px: tuple[float, float, float, float],
    size_px: int = 224,
    margin: float = HSE_MARGIN,
) -> RGBImage:
    """``hse-box``: ``box_px`` (left, top, width, height) widened by ``margin`` of its size on
    each side, clipped to the image, resized (bilinear) to ``size_px`` x ``size_px``."""
    left, top, width, height = box_px
    h_img, w_img = pixels.shape[:2]
    x0 = max(0, round(left - margin * width))
    y0 = max(0, round(top - margin * height))
    x1 = min(w_img, round(left + width * (1.0 + margin)))
    y1 = min(h_img, round(top + height * (1.0 + margin)))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"the box {box_px} lies outside the {w_img}x{h_img} image")
    crop = Image.fromarray(np.ascontiguousarray(pixels[y0:y1, x0:x1, :3]))
    out = crop.resize((size_px, size_px), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(out, dtype=np.uint8))
