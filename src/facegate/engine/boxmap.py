"""Map MTCNN's boxes onto dlib's HOG box geometry, so faces from either detector describe alike.

The descriptor is computed on a chip aligned by dlib's 5-point shape predictor, and that
predictor starts from the detector's box: it was trained on boxes like dlib's HOG detector's
(square, eyebrows to lower lip). MTCNN's boxes are taller (forehead to chin) and placed
differently, which moves the predicted points and so the descriptor of the same face (median
distance 0.076 on held-out FairFace faces, ``bench/box_map.py``). This module predicts, from
MTCNN's box and its five landmarks, the box HOG would have drawn:

* the frame: the midpoint of the eyes ``E`` and the scale ``S = sqrt(D * V)`` with ``D`` the
  distance between the eyes and ``V`` from ``E`` to the midpoint of the mouth corners;
* :data:`FEATURES` in that frame (so the map is invariant to translation and scale);
* three least-squares linear targets: the HOG box's centre minus ``E`` (x, y) and its side, in
  units of ``S``.

The coefficients are fitted by ``bench/box_map.py`` on FairFace val faces both detectors find
(the fit half by a salted hash of the image name) and shipped in ``calibration/`` as JSON with
the held-out measurements. Mapped, the median descriptor distance to the HOG path is about that
between HOG on an image and HOG on the same image shifted by 3 px (see the JSON's ``fit``).
Where the landmarks are degenerate (eyes or mouth on one point) the box is kept as MTCNN gave it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

Rows = npt.NDArray[np.float64]
"""MTCNN rows: x1, y1, x2, y2, probability, then x1..x5 and y1..y5 of the five landmarks
(left eye, right eye, nose, left and right mouth corner)."""

FEATURES: tuple[str, ...] = (
    "1",
    "eye_distance/S",
    "(mouth-eyes).x/S",
    "(mouth-eyes).y/S",
    "(nose-eyes).x/S",
    "(nose-eyes).y/S",
    "box_width/S",
    "box_height/S",
    "(box_centre-eyes).x/S",
    "(box_centre-eyes).y/S",
)
"""The map's inputs, in the frame of the eyes' midpoint and ``S`` (see the module docstring)."""

TARGETS: tuple[str, ...] = ("(hog_centre-eyes).x/S", "(hog_centre-eyes).y/S", "hog_side/S")

BOX_MAP_FILE = "mtcnn-dlib-box.json"
"""The shipped map, in ``facegate/engine/calibration``."""

MIN_SCALE_PX = 1.0
"""Below this ``S`` (in pixels) the landmarks are taken as degenerate and the box kept."""


class BoxMapError(ValueError):
    """A box map file that cannot be used."""


@dataclass(frozen=True)
class _Frame:
    """The landmark geometry of each row: eye and mouth midpoints, eye distance, scale ``S``
    (1 where degenerate) and whether ``S`` is usable."""

    eyes_x: npt.NDArray[np.float64]
    eyes_y: npt.NDArray[np.float64]
    mouth_x: npt.NDArray[np.float64]
    mouth_y: npt.NDArray[np.float64]
    eye_distance: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    valid: npt.NDArray[np.bool_]


def _frame(rows: Rows) -> _Frame:
    lx, ly = rows[:, 5:10], rows[:, 10:15]
    ex, ey = (lx[:, 0] + lx[:, 1]) / 2, (ly[:, 0] + ly[:, 1]) / 2
    mx, my = (lx[:, 3] + lx[:, 4]) / 2, (ly[:, 3] + ly[:, 4]) / 2
    eyes = np.hypot(lx[:, 1] - lx[:, 0], ly[:, 1] - ly[:, 0])
    scale = np.sqrt(eyes * np.hypot(mx - ex, my - ey))
    valid = np.isfinite(scale) & (scale >= MIN_SCALE_PX)
    return _Frame(ex, ey, mx, my, eyes, np.where(valid, scale, 1.0), valid)


def frame(rows: Rows) -> tuple[npt.NDArray[np.float64], ...]:
    """(eyes_x, eyes_y, S, valid) for each row; ``valid`` is False where ``S`` is degenerate."""
    f = _frame(rows)
    return f.eyes_x, f.eyes_y, f.scale, f.valid.astype(np.float64)


def features(rows: Rows) -> npt.NDArray[np.float64]:
    """The (n, len(FEATURES)) design matrix of MTCNN rows."""
    f = _frame(rows)
    ex, ey, scale = f.eyes_x, f.eyes_y, f.scale
    x1, y1, x2, y2 = (rows[:, i] for i in range(4))
    return np.column_stack(
        [
            np.ones(rows.shape[0]),
            f.eye_distance / scale,
            (f.mouth_x - ex) / scale,
            (f.mouth_y - ey) / scale,
            (rows[:, 7] - ex) / scale,  # the nose: landmark 3 (x in column 7, y in 12)
            (rows[:, 12] - ey) / scale,
            (x2 - x1) / scale,
            (y2 - y1) / scale,
            ((x1 + x2) / 2 - ex) / scale,
            ((y1 + y2) / 2 - ey) / scale,
        ]
    )


def targets(rows: Rows, hog_ltwh: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The (n, 3) targets for MTCNN rows whose HOG boxes (left, top, width, height) are known."""
    ex, ey, scale, _ = frame(rows)
    left, top, width, height = (hog_ltwh[:, i] for i in range(4))
    return np.column_stack(
        [
            (left + width / 2 - ex) / scale,
            (top + height / 2 - ey) / scale,
            (width + height) / 2 / scale,
        ]
    )


@dataclass(frozen=True)
class BoxMap:
    """A fitted map: ``coefficients[f][t]`` for feature ``f`` and target ``t``. Picklable."""

    version: str
    coefficients: tuple[tuple[float, float, float], ...]

    def __post_init__(self) -> None:
        if len(self.coefficients) != len(FEATURES) or any(
            len(row) != len(TARGETS) or not all(np.isfinite(row)) for row in self.coefficients
        ):
            raise BoxMapError(
                f"a box map needs {len(FEATURES)} rows of {len(TARGETS)} finite coefficients"
            )

    def apply(self, rows: Rows) -> Rows:
        """(n, 4) boxes (x1, y1, x2, y2) in the rows' pixels: HOG's predicted square box, or
        MTCNN's own box where the landmarks are degenerate or the prediction is not usable."""
        if rows.shape[0] == 0:
            return np.empty((0, 4))
        ex, ey, scale, valid = frame(rows)
        predicted = features(rows) @ np.asarray(self.coefficients, dtype=np.float64)
        cx, cy = ex + predicted[:, 0] * scale, ey + predicted[:, 1] * scale
        side = predicted[:, 2] * scale
        mapped = np.column_stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
        usable = (valid > 0) & np.isfinite(mapped).all(axis=1) & (side >= 1.0)
        return np.where(usable[:, None], mapped, rows[:, :4])


def fit_box_map(
    rows: Rows, hog_ltwh: npt.NDArray[np.float64], name: str = "mtcnn-dlib-box"
) -> BoxMap:
    """Least-squares coefficients from MTCNN rows (or another detector's in their layout) and
    the HOG boxes of the same faces (rows with degenerate landmarks are left out). The version
    is ``name`` and the coefficients' hash."""
    _, _, _, valid = frame(rows)
    keep = valid > 0
    if int(keep.sum()) < 2 * len(FEATURES):
        raise BoxMapError(f"too few faces to fit a box map: {int(keep.sum())}")
    solution, *_ = np.linalg.lstsq(features(rows[keep]), targets(rows[keep], hog_ltwh[keep]))
    coefficients = tuple(
        (float(a), float(b), float(c)) for a, b, c in np.asarray(solution, dtype=np.float64)
    )
    digest = hashlib.sha256(json.dumps(coefficients).encode()).hexdigest()[:8]
    return BoxMap(version=f"{name}-{digest}", coefficients=coefficients)


def box_map_document(box_map: BoxMap, fit: dict[str, Any]) -> dict[str, Any]:
    """The JSON document shipped for ``box_map`` (``fit`` describes data and measurements)."""
    return {
        "version": box_map.version,
        "features": list(FEATURES),
        "targets": list(TARGETS),
        "coefficients": [list(row) for row in box_map.coefficients],
        "fit": fit,
    }


def parse_box_map(document: Any) -> BoxMap:
    """A :class:`BoxMap` from its JSON document; :class:`BoxMapError` if it does not fit."""
    try:
        if list(document["features"]) != list(FEATURES) or list(document["targets"]) != list(
            TARGETS
        ):
            raise BoxMapError("the box map's features or targets are not this version's")
        rows = tuple(tuple(float(v) for v in row) for row in document["coefficients"])
        return BoxMap(version=str(document["version"]), coefficients=rows)  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BoxMapError):
            raise
        raise BoxMapError(f"not a box map document: {exc}") from exc


@cache
def load_box_map(file: str = BOX_MAP_FILE) -> BoxMap:
    """A shipped map (default ``calibration/mtcnn-dlib-box.json``; BlazeFace's is
    ``blazeface-dlib-box.json``), read once per process."""
    text = resources.files("facegate.engine").joinpath("calibration", file).read_text()
    return parse_box_map(json.loads(text))
