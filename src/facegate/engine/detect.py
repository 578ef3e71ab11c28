"""Face detectors behind one Protocol: MTCNN (first by default, ``engine.mtcnn``), dlib's HOG, and
dlib's MMOD CNN ("accurate").

Choosing parameters (measured on ../shared/data/samples with dlib-bin 20.0, see tests/engine):

* HOG's sliding window is 80x80 px, so at its native scale it misses faces smaller than about
  70 px. Upsampling the image once halves that (about 40 px faces) at roughly 4x the time. We
  upsample once when the image has at most ``upsample_max_pixels`` (default 1,000,000: a 640x480
  photo is upsampled and its ~50 px faces found; a 1080p frame is not).
* ``score_threshold`` 0.2 on dlib's HOG score: true faces in the samples score 0.29 or more with
  upsampling (group_t1 at 640 px wide), while upsampling produces false detections up to 0.12
  (astronaut.png's shoulder patch) and the coffee, dogs and blank images score below 0.
* Images whose longer side exceeds ``detect_max_side_px`` (default 2048) are downscaled for
  detection only; boxes are mapped back to full resolution.
* MMOD (a CNN) finds rotated, profile and low-contrast faces that HOG misses (camera.png) but
  takes seconds per image on two cores: use it for enrolment of difficult images, not for search.
* MTCNN (``DetectorKind.MTCNN``, ``engine.mtcnn``) with a 40 px minimum face: the same recall as HOG
  upsample 1 on the dlib_voc boxes and the 640 px group photos, no false detection on the no-face
  images, in about a third of the time at 640x480 (bench/detect_options.py), and it misses 4.9% of
  FairFace val crops where HOG misses 31.6% (bench/detect_failures_options.py); 2.3% with the crop
  padded by 25% (``MtcnnConfig.pad_ratio``). Its own boxes are taller than dlib's (forehead to
  chin), which would move the descriptor of the same face; hence the box map below.
* Box geometry: MTCNN's boxes are mapped to the box HOG would have drawn (``engine.boxmap``,
  ``DetectorConfig.mtcnn_dlib_boxes``), from MTCNN's box and landmarks. On held-out FairFace
  faces the descriptor then lies a median 0.040 from HOG's (p99 0.23), no further than HOG's own
  from HOG on the same crop shifted by 3 px (median 0.053, p99 0.20; bench/box_map.py); unmapped
  it is 0.074 (p99 0.32).
* The default chain (``DetectorConfig.kind`` then ``fallback``): MTCNN (mapped boxes), then HOG,
  then MTCNN on the image padded by 25% (``MTCNN_PADDED``), each only where the previous found no
  face. MTCNN first is the fast path (about a third of HOG upsample 1's time at 640x480, the
  same recall on the sample ground truth); HOG still rescues some faces MTCNN misses, so
  failure to detect on FairFace val is the same 1.68% as with HOG first (computed from the
  per-image outcomes of bench/detect_failures_options.py), and a face-less image pays for all
  three detectors.

* A search probe (``analyze(max_faces=1)``: only the largest face is kept) looks for large faces
  first (``mtcnn_coarse_skip``: MTCNN's coarse pyramid levels, then every level where they find
  nothing; ``engine.mtcnn``, :func:`detect_faces`): about half the detection time for a face of
  80 px or more, the same failure to detect on FairFace val (1.68%) and the same LFW accuracy
  (bench/search_detector.py). 0 turns it off (the full pyramid for every request).

``confidence_pct`` is the detector score mapped monotonically to 0-100 by
``100 / (1 + exp(-3 (score + 1)))``: a heuristic ordering (score 0.2 -> 97.3, 1 -> 99.75), not a
calibrated probability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from facegate.engine.image import RGBImage
from facegate.engine.models import LoadedModels, load_mmod
from facegate.engine.types import BoxPx, DetectorKind

REKOGNITION_MAX_FACES = 100
"""DetectFaces returns at most the 100 largest faces."""


@dataclass(frozen=True)
class DetectorConfig:
    """Tunable detection parameters (see the module docstring for how the defaults were chosen)."""

    kind: DetectorKind = DetectorKind.MTCNN
    fallback: tuple[DetectorKind, ...] = (DetectorKind.HOG, DetectorKind.MTCNN_PADDED)
    score_threshold: float = 0.2
    upsample_max_pixels: int = 1_000_000
    detect_max_side_px: int = 2048
    mmod_score_threshold: float = 0.3
    mmod_upsample_max_pixels: int = 250_000
    max_faces: int = REKOGNITION_MAX_FACES
    mtcnn_dlib_boxes: bool = True
    mtcnn_coarse_skip: int = 2
    search_blazeface: bool = field(default=True, repr=False)
    """Search probes (``max_faces=1``) try BlazeFace first (``engine.blazeface``), the chain
    only where it finds no face. Left out of ``repr`` on purpose: caches key on ``repr`` and
    :func:`detection_version`, which names BlazeFace when it is on, so results cached with it
    off stay valid."""


HOG_FIRST = DetectorConfig(
    kind=DetectorKind.HOG, fallback=(DetectorKind.MTCNN, DetectorKind.MTCNN_PADDED)
)
"""HOG first, then MTCNN and padded MTCNN where it finds nothing: the chain before MTCNN led."""

DETECTOR_CHAINS: dict[str, DetectorConfig] = {"mtcnn": DetectorConfig(), "hog": HOG_FIRST}
"""``FACEGATE_DETECTOR`` values: which detector leads the chain."""


def detector_named(name: str) -> DetectorConfig:
    """The detector chain of a ``FACEGATE_DETECTOR`` value; ``ValueError`` for others."""
    try:
        return DETECTOR_CHAINS[name.strip().lower()]
    except KeyError:
        choices = ", ".join(DETECTOR_CHAINS)
        raise ValueError(f"FACEGATE_DETECTOR must be one of {choices}, got {name!r}") from None


@dataclass(frozen=True)
class RawDetection:
    """A detector's box (full-resolution pixels) and raw score."""

    box_px: BoxPx
    score: float


class Detector(Protocol):
    """Finds faces in an RGB image. Returns boxes in the image's own pixel coordinates."""

    def detect(self, pixels: RGBImage) -> list[RawDetection]: ...


@runtime_checkable
class LargestFaceDetector(Protocol):
    """A detector with a cheaper way to find the largest face when only that one is kept."""

    def detect_largest(self, pixels: RGBImage) -> list[RawDetection]: ...


def detect_faces(detector: Detector, pixels: RGBImage, *, largest_only: bool) -> list[RawDetection]:
    """``detector``'s faces; with ``largest_only`` (the caller keeps only the largest face,
    e.g. a search probe) through its ``detect_largest`` where it has one (MTCNN's coarse
    pyramid first, ``engine.mtcnn``), which may leave out faces smaller than the largest."""
    if largest_only and isinstance(detector, LargestFaceDetector):
        return detector.detect_largest(pixels)
    return detector.detect(pixels)


def confidence_pct(score: float) -> float:
    """Map a detector score to 0-100, monotone increasing (a heuristic, not a probability)."""
    return 100.0 / (1.0 + math.exp(-3.0 * (score + 1.0)))


def _downscale(pixels: RGBImage, max_side: int) -> tuple[RGBImage, float]:
    """Shrink so the longer side is at most ``max_side``; returns (image, scale) with scale <= 1."""
    height, width = pixels.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return pixels, 1.0
    from PIL import Image  # local: only large images pay for the conversion

    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(small, dtype=np.uint8)), scale


def _box_from_rect(r: Any, scale: float) -> BoxPx:
    left, top = r.left() / scale, r.top() / scale
    right, bottom = (r.right() + 1) / scale, (r.bottom() + 1) / scale
    return BoxPx(
        left=round(left), top=round(top), width=round(right - left), height=round(bottom - top)
    )


class HogDetector:
    """dlib's frontal-face HOG detector with size-dependent upsampling and a score threshold."""

    def __init__(self, models: LoadedModels, config: DetectorConfig) -> None:
        self._hog = models.hog
        self._config = config

    def detect(self, pixels: RGBImage) -> list[RawDetection]:
        cfg = self._config
        small, scale = _downscale(pixels, cfg.detect_max_side_px)
        height, width = small.shape[:2]
        upsample = 1 if width * height <= cfg.upsample_max_pixels else 0
        rects, scores, _ = self._hog.run(small, upsample, cfg.score_threshold)
        return [
            RawDetection(box_px=_box_from_rect(r, scale), score=float(s))
            for r, s in zip(rects, scores, strict=True)
            if float(s) >= cfg.score_threshold
        ]


class MmodDetector:
    """dlib's MMOD CNN detector (loaded on first use; seconds per image on a CPU)."""

    def __init__(self, models: LoadedModels, config: DetectorConfig) -> None:
        self._files = models.files
        self._config = config
        self._net: Any = None

    def detect(self, pixels: RGBImage) -> list[RawDetection]:
        cfg = self._config
        if self._net is None:
            self._net = load_mmod(self._files)
        small, scale = _downscale(pixels, cfg.detect_max_side_px)
        height, width = small.shape[:2]
        upsample = 1 if width * height <= cfg.mmod_upsample_max_pixels else 0
        found = self._net(small, upsample)
        return [
            RawDetection(box_px=_box_from_rect(d.rect, scale), score=float(d.confidence))
            for d in found
            if float(d.confidence) >= cfg.mmod_score_threshold
        ]


PADDED_MTCNN_RATIO = 0.25
"""The border ``DetectorKind.MTCNN_PADDED`` adds (fraction of the longer side, edge-replicated)."""


def make_detector(models: LoadedModels, config: DetectorConfig) -> Detector:
    """The detector selected by ``config.kind``. MTCNN uses ``engine.mtcnn``'s documented
    defaults (``MtcnnConfig``) but a 40 px minimum face (about HOG upsample 1's reach, at about
    half the cost of 20 px), this configuration's ``detect_max_side_px`` and, with
    ``mtcnn_dlib_boxes``, the shipped box map (``engine.boxmap``)."""
    if config.kind is DetectorKind.BLAZEFACE:
        raise ValueError("BlazeFace is the search probes' first detector, not a chain's")
    if config.kind is DetectorKind.MMOD:
        return MmodDetector(models, config)
    if config.kind in (DetectorKind.MTCNN, DetectorKind.MTCNN_PADDED):
        # Local import: engine.mtcnn imports RawDetection from this module.
        from facegate.engine.boxmap import load_box_map
        from facegate.engine.mtcnn import MtcnnConfig, MtcnnDetector

        mtcnn = MtcnnConfig(
            min_face_px=40,
            detect_max_side_px=config.detect_max_side_px,
            pad_ratio=PADDED_MTCNN_RATIO if config.kind is DetectorKind.MTCNN_PADDED else 0.0,
            box_map=load_box_map() if config.mtcnn_dlib_boxes else None,
            coarse_skip=config.mtcnn_coarse_skip if config.kind is DetectorKind.MTCNN else 0,
        )
        return MtcnnDetector(mtcnn)
    return HogDetector(models, config)


FACE_ORDER = "visible-area"
"""How faces are ranked (:func:`largest_first`); part of :func:`detection_version`."""


def detection_version(config: DetectorConfig) -> str:
    """What, beyond ``config`` itself, decides which faces and boxes detection returns: the face
    order and, when MTCNN's boxes are mapped, the shipped box map's version. Caches of engine
    results (the bias toolkit's descriptor cache) key on it with ``repr(config)``. With
    ``search_blazeface``, the probes' detector, its settings and its box map are named too."""
    from facegate.engine.boxmap import load_box_map  # local: as in make_detector

    version = f"order={FACE_ORDER}"
    if config.mtcnn_dlib_boxes:
        version += f";box-map={load_box_map().version}"
    if config.search_blazeface:
        from facegate.engine.blazeface import probe_detector_version

        version += f";probe={probe_detector_version()}"
    return version


def visible_area(box: BoxPx, width: int, height: int) -> int:
    """The area of the part of ``box`` inside a ``width`` x ``height`` image (pixels)."""
    w = max(0, min(box.left + box.width, width) - max(box.left, 0))
    h = max(0, min(box.top + box.height, height) - max(box.top, 0))
    return w * h


def largest_first(
    detections: list[RawDetection], max_faces: int, width: int, height: int
) -> list[RawDetection]:
    """Sort by the box's area inside the image (largest first, then higher score) and keep at
    most ``max_faces``. Inside the image: a face cut by the frame (MTCNN finds many; its box
    extends past the edge) must not outrank the whole face in the middle of the photo. On LFW
    View 2, ordering MTCNN's faces by their whole box picked such a face in 105 of 7,701 images
    and cost 0.43 points of accuracy (98.35% -> 97.92%); by the visible part, 98.33%."""
    ordered = sorted(detections, key=lambda d: (-visible_area(d.box_px, width, height), -d.score))
    return ordered[:max_faces]
