"""The face engine: image bytes in, faces with landmarks, pose, quality and descriptors out.

``FaceEngine`` runs in one process and one thread (dlib is single-threaded; the ONNX descriptor
runtime uses ``descriptor_threads``, 1 by default); ``engine.pool`` runs several of them in worker
processes. Both give bit-identical results for the same input and configuration.

Stages, each timed in :class:`StageTimes` for the benchmarks:
decode -> detect -> landmarks (68 + 5 points, pose, quality) -> align + descriptor.

:meth:`FaceEngine.analyze_many` runs the same stages for several images with one descriptor call
for all their faces (the pool's batches); each image's result is the same as ``analyze``'s.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from facegate.engine.align import face_chip
from facegate.engine.attributes.registry import AttributeRegistry, build_registry
from facegate.engine.attributes.types import FaceInput, FaceModels
from facegate.engine.blazeface import BlazeFaceDetector, BlazeFaceUnavailable
from facegate.engine.describers import (
    ChipDescriber,
    DescriptorModelUnavailable,
    FaceDescriber,
    make_describer,
)
from facegate.engine.descriptors import DLIB, DescriptorRegistry
from facegate.engine.detect import (
    Detector,
    DetectorConfig,
    RawDetection,
    detect_faces,
    largest_first,
    make_detector,
)
from facegate.engine.detect import confidence_pct as detector_confidence
from facegate.engine.embed import Embedder
from facegate.engine.image import DecodedImage, ImageLimits, decode_image
from facegate.engine.landmarks import named_landmarks, shape_points
from facegate.engine.matching import Matcher, default_matcher
from facegate.engine.models import LoadedModels, ModelFiles, load_models
from facegate.engine.mtcnn import MtcnnModelError
from facegate.engine.pose import estimate_pose
from facegate.engine.quality import face_quality
from facegate.engine.runtime import DescriptorRuntime as DescriptorRuntime
from facegate.engine.runtime import choose_embedder
from facegate.engine.types import Analysis, BoxPx, DetectedFace, DetectorKind, Face

log = logging.getLogger("facegate.engine")


@dataclass(frozen=True)
class EngineConfig:
    """Everything that changes what the engine returns. Picklable (sent to worker processes).

    ``descriptor_runtime`` picks where the descriptor network runs (``engine.runtime``): by
    default ``AUTO``, the ONNX export when it starts and passes its self-check, else dlib; the
    vectors and the model version are the same either way. ``descriptor_threads`` is the ONNX
    runtime's intra-op thread count (dlib is single-threaded); keep 1 in a pool of one worker
    process per core (the default), see ``engine.runtime`` for why.
    """

    limits: ImageLimits = ImageLimits()
    detector: DetectorConfig = DetectorConfig()
    flip_tta: bool = False
    matcher: Matcher = field(default_factory=default_matcher)
    model_files: ModelFiles | None = None
    descriptor_runtime: DescriptorRuntime = DescriptorRuntime.AUTO
    descriptor_threads: int = 1
    attributes: frozenset[str] | None = None
    """The facial attributes this engine may estimate (Rekognition names); None: every one
    whose estimator can start (``engine.attributes.registry``)."""
    face_models: FaceModels = FaceModels()
    """The converted face models attribute estimators may run (none by default:
    ``FACEGATE_ATTRIBUTE_MODELS``), loaded once per engine."""
    descriptors: DescriptorRegistry | None = None
    """The descriptor models this engine may describe faces with (``engine.descriptors``);
    None: the built-in ones and the operator's under ``face_models.models_dir``. Each is
    loaded on its first use, once per engine."""

    def registry(self) -> DescriptorRegistry:
        """:attr:`descriptors`, or the models discovered in the models folder."""
        if self.descriptors is not None:
            return self.descriptors
        from facegate.engine.human_models import default_models_dir

        folder = self.face_models.models_dir or default_models_dir()
        return DescriptorRegistry.discover(folder, flip_tta=self.flip_tta)

    def effective_detector(self) -> DetectorConfig:
        """:attr:`detector` as an engine made from this configuration runs it:
        ``search_blazeface`` off where BlazeFace's converted model is not available in
        ``face_models.models_dir`` (the engine then warns and sends probes to the chain).
        Caches of engine results key on this, so results of the chain are never filed as
        BlazeFace's. Reads and hashes the model file (about half a megabyte)."""
        if not self.detector.search_blazeface:
            return self.detector
        from facegate.engine.blazeface import MODEL_NAME
        from facegate.engine.human_models import model_status

        status = model_status(
            MODEL_NAME, self.face_models.models_dir, allow_unpinned=self.face_models.allow_unpinned
        )
        return self.detector if status.available else replace(self.detector, search_blazeface=False)

    def with_detector(self, kind: DetectorKind) -> EngineConfig:
        """The same configuration with another detector."""
        return replace(self, detector=replace(self.detector, kind=kind))


@dataclass(frozen=True)
class AnalyzeItem:
    """One image and the options of one ``analyze`` call (picklable: pool batches carry them)."""

    data: bytes
    descriptors: bool = True
    detector: DetectorKind | None = None
    max_faces: int | None = None
    attributes: frozenset[str] = frozenset()
    model: str | None = None
    """The descriptor model's version (None: the engine's dlib model)."""


@dataclass
class StageTimes:
    """Wall-clock seconds spent per stage (accumulated over calls)."""

    decode_s: float = 0.0
    detect_s: float = 0.0
    landmarks_s: float = 0.0
    attributes_s: float = 0.0
    descriptor_s: float = 0.0
    faces: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class FaceEngine:
    """Loads dlib's models once and analyses images. Not thread-safe: one per thread/process."""

    def __init__(self, config: EngineConfig = EngineConfig(), models: LoadedModels | None = None):
        self.config = config
        self.models = models or load_models(config.model_files)
        self._detectors: dict[DetectorKind, Detector] = {}
        self.detector_chain = self._usable_chain(config.detector)
        self.probe_detector = self._probe_detector(config)
        # descriptor_runtime is the runtime in use, DLIB or ONNX (AUTO resolved here, once).
        self.embedder: Embedder
        self.descriptor_runtime: DescriptorRuntime
        self.embedder, self.descriptor_runtime = choose_embedder(
            config.descriptor_runtime,
            self.models,
            threads=config.descriptor_threads,
            flip_tta=config.flip_tta,
        )
        # descriptor models other than dlib's, each made on first use (once per worker)
        self.descriptors = config.registry()
        self._describers: dict[str, FaceDescriber] = {}
        # the attribute estimators, made once per engine (so once per worker process)
        self.attributes: AttributeRegistry = build_registry(
            enabled=config.attributes, models=config.face_models
        )
        self.times = StageTimes()
        # The detector that found the faces of the last ``detect`` (None: no face found).
        self.last_found_by: DetectorKind | None = None

    @property
    def model_version(self) -> str:
        """Identifies the vector space: descriptor model (+ augmentation). Stored with faces."""
        return self.embedder.version

    def describer(self, model: str | None = None) -> FaceDescriber:
        """The describer of descriptor model ``model`` (None: the engine's dlib model), made
        on first use. ``DescriptorModelUnavailable`` when its weights cannot be loaded;
        ``UnknownModelError`` for a version not registered."""
        version = model or self.model_version
        found = self._describers.get(version)
        if found is None:
            if version == self.model_version:
                found = ChipDescriber(self.embedder)
            else:
                if version not in self.descriptors:
                    raise DescriptorModelUnavailable(f"this engine has no face model {version}")
                spec = self.descriptors.get(version)
                if spec.kind == DLIB:  # dlib's model of another configuration (flip)
                    raise DescriptorModelUnavailable(
                        f"this engine computes {self.model_version}, not {version}"
                    )
                found = make_describer(
                    spec,
                    self.descriptors,
                    lambda: ChipDescriber(self.embedder),
                    threads=self.config.descriptor_threads,
                    allow_unpinned=self.config.face_models.allow_unpinned,
                )
            self._describers[version] = found
        return found

    def _usable_chain(self, config: DetectorConfig) -> tuple[DetectorKind, ...]:
        """The configured chain (``kind``, then ``fallback``), each detector made now, without
        those that cannot start (MTCNN without onnxruntime or its model files): one warning each,
        so the engine still runs, on HOG, as before MTCNN led the chain. Raises if none can."""
        chain: list[DetectorKind] = []
        for kind in dict.fromkeys((config.kind, *config.fallback)):
            try:
                self._detector(kind)
            except (ImportError, MtcnnModelError) as exc:
                log.warning(
                    "detection: %s is unavailable (%s: %s); the chain goes on without it",
                    kind.value,
                    type(exc).__name__,
                    exc,
                )
                continue
            chain.append(kind)
        if not chain:
            raise MtcnnModelError(
                f"no detector of the chain can start: {config.kind}, {config.fallback}"
            )
        return tuple(chain)

    @staticmethod
    def _probe_detector(config: EngineConfig) -> BlazeFaceDetector | None:
        """BlazeFace for search probes (``DetectorConfig.search_blazeface``), or None: off, or
        its converted model is not in the models folder (one warning; probes then go straight
        to the chain, as before BlazeFace)."""
        if not config.detector.search_blazeface:
            return None
        from facegate.engine.blazeface import default_config

        try:
            return BlazeFaceDetector(
                default_config(config.face_models.models_dir, config.face_models.allow_unpinned)
            )
        except (ImportError, BlazeFaceUnavailable) as exc:
            log.warning(
                "detection: BlazeFace for search probes is unavailable (%s); probes use the "
                "detector chain",
                exc,
            )
            return None

    def _detector(self, kind: DetectorKind | None) -> Detector:
        kind = kind or self.config.detector.kind
        if kind not in self._detectors:
            cfg = replace(self.config.detector, kind=kind)
            self._detectors[kind] = make_detector(self.models, cfg)
        return self._detectors[kind]

    def decode(self, data: bytes) -> DecodedImage:
        """Decode with the configured limits (typed errors, see ``engine.image``)."""
        t0 = time.perf_counter()
        image = decode_image(data, self.config.limits)
        self.times.decode_s += time.perf_counter() - t0
        return image

    def detect(
        self,
        image: DecodedImage,
        *,
        detector: DetectorKind | None = None,
        attributes: frozenset[str] = frozenset(),
    ) -> tuple[DetectedFace, ...]:
        """Every face (largest first, at most ``max_faces``) with landmarks, pose and quality.

        ``detector``: that detector alone. By default the configured one, then each of
        ``DetectorConfig.fallback`` in turn while none has found a face (only a face-less image
        pays for the fallbacks); :attr:`last_found_by` names the one that found the faces.

        Boxes and points are in the image's own pixels, also when ``image`` was decoded reduced
        (``engine.image``): the work ran on the reduced pixels and its boxes and points are
        scaled back; ratios (box, landmarks) are the same at either size.

        ``attributes``: the facial attributes to estimate for each face (Rekognition names);
        those this engine does not estimate are left out (``DetectedFace.attributes``).
        """
        found = self._detect_in_pixels(image, detector, attributes)
        return tuple(_in_source(image, f) for f in found)

    def _detect_in_pixels(
        self,
        image: DecodedImage,
        detector: DetectorKind | None,
        attributes: frozenset[str] = frozenset(),
        max_faces: int | None = None,
    ) -> tuple[DetectedFace, ...]:
        """:meth:`detect` in the coordinates of ``image.pixels``. ``max_faces``: only the
        largest N faces are kept, so only those get landmarks; for 1 (a search probe) without
        a ``detector`` named, BlazeFace looks first (:attr:`probe_detector`), and the chain,
        looking for the largest face only (``detect.detect_faces``), where it finds none."""
        t0 = time.perf_counter()
        chain = (detector,) if detector else self.detector_chain
        raw: list[RawDetection] = []
        if max_faces == 1 and detector is None and self.probe_detector is not None:
            raw = self.probe_detector.detect(image.pixels)
            self.last_found_by = DetectorKind.BLAZEFACE if raw else None
            chain = () if raw else chain
        for kind in chain:
            raw = detect_faces(self._detector(kind), image.pixels, largest_only=max_faces == 1)
            self.last_found_by = kind if raw else None
            if raw:
                break
        limit = self.config.detector.max_faces
        if max_faces is not None and max_faces > 0:
            limit = min(limit, max_faces)
        raw = largest_first(raw, limit, image.width_px, image.height_px)
        t1 = time.perf_counter()
        faces = tuple(self._describe_geometry(image, r, attributes) for r in raw)
        t2 = time.perf_counter()
        self.times.detect_s += t1 - t0
        self.times.landmarks_s += t2 - t1
        return faces

    def _describe_geometry(
        self, image: DecodedImage, raw: RawDetection, attributes: frozenset[str]
    ) -> DetectedFace:
        pixels, width, height = image.pixels, image.width_px, image.height_px
        _, pts68 = shape_points(self.models.shape_68, pixels, raw.box_px)
        _, pts5 = shape_points(self.models.shape_5, pixels, raw.box_px)
        pose = estimate_pose(pts68)
        points5 = tuple((float(x), float(y)) for x, y in pts5)
        estimated = None
        if attributes:
            t0 = time.perf_counter()
            chip = functools.cache(lambda: face_chip(pixels, raw.box_px, points5))
            face = FaceInput(
                pixels=pixels,
                box_px=raw.box_px,
                points68_px=pts68,
                pose=pose,
                chip=chip,
                descriptor=functools.cache(lambda: self.embedder.embed([chip()])[0]),
            )
            estimated = self.attributes.estimate(face, attributes)
            self.times.attributes_s += time.perf_counter() - t0
        return DetectedFace(
            box_px=raw.box_px,
            box_ratio=raw.box_px.to_ratio(width, height),
            confidence_pct=detector_confidence(raw.score),
            detector_score=raw.score,
            landmarks=named_landmarks(pts68, width, height),
            pose=pose,
            quality=face_quality(pixels, raw.box_px),
            points5_px=points5,
            attributes=estimated,
        )

    def unavailable(self, attributes: frozenset[str]) -> frozenset[str]:
        """The attributes of ``attributes`` this engine does not estimate."""
        return attributes - {a.value for a in self.attributes.available}

    def describe(
        self, image: DecodedImage, faces: Sequence[DetectedFace], model: str | None = None
    ) -> tuple[Face, ...]:
        """Attach a descriptor of ``model`` (None: the engine's dlib model) to each face of
        :meth:`detect` (one batched call to the embedder)."""
        work = [_in_pixels(image, f) for f in faces]
        (described,) = self._describe_all([(image, work)], model)
        return tuple(
            Face(detected=f, descriptor=d.descriptor) for f, d in zip(faces, described, strict=True)
        )

    def _describe_all(
        self,
        images: Sequence[tuple[DecodedImage, Sequence[DetectedFace]]],
        model: str | None = None,
    ) -> list[tuple[Face, ...]]:
        """The faces of each image with their descriptors of ``model``, from ONE describer
        call for the faces of all (aligning the chips counts as descriptor time)."""
        describer = self.describer(model)
        t0 = time.perf_counter()
        vectors = describer.describe([(image, f) for image, faces in images for f in faces])
        self.times.descriptor_s += time.perf_counter() - t0
        described: list[tuple[Face, ...]] = []
        start = 0
        for _, faces in images:
            mine: npt.NDArray[np.float32] = vectors[start : start + len(faces)]
            start += len(faces)
            self.times.faces += len(faces)
            described.append(
                tuple(Face(detected=f, descriptor=v) for f, v in zip(faces, mine, strict=True))
            )
        return described

    def analyze(
        self,
        data: bytes,
        *,
        descriptors: bool = True,
        detector: DetectorKind | None = None,
        max_faces: int | None = None,
        attributes: frozenset[str] = frozenset(),
        model: str | None = None,
    ) -> Analysis:
        """Decode, detect and (optionally) describe every face, largest first.

        ``max_faces`` keeps and describes only the largest N faces (landmarks too are found for
        those only); use 1 for a search probe, which Rekognition takes from the largest face
        only: detection then looks for large faces first (BlazeFace, ``engine.blazeface``; where
        it finds none, MTCNN's coarse pyramid levels, then every level; ``engine.mtcnn``), so a
        face smaller than about 80 px is looked for only in an image without a larger one.
        ``attributes``: the facial attributes to estimate for each face (:meth:`detect`).
        ``model``: the descriptor model's version (None: the engine's dlib model; a
        collection's model for its faces). Raises the engine's typed errors
        (:meth:`analyze_many` of this one image, its error raised).
        """
        item = AnalyzeItem(data, descriptors, detector, max_faces, attributes, model)
        (outcome,) = self.analyze_many([item])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def analyze_many(self, items: Sequence[AnalyzeItem]) -> list[Analysis | Exception]:
        """``analyze`` for each item, in order, with ONE embedder call for the faces of all.

        Each item's options are its own. The outcome of an item is its :class:`Analysis` or the
        exception ``analyze`` would have raised for it (returned, not raised): a bad image never
        fails the others. The results equal those of one item at a time bit for bit: both
        embedders (dlib, and the ONNX export on one intra-op thread, the pool's setting) describe
        a chip identically alone or in a batch (all 41 faces found in the 29 sample images,
        batches of 1 to 41: max abs difference 0.0; tests/engine/test_pool.py checks both
        runtimes). An exception from the embedder call itself fails every item that wanted
        descriptors.
        """
        outcomes: list[Analysis | Exception] = []
        staged: list[tuple[int, DecodedImage, tuple[DetectedFace, ...], str]] = []
        models: dict[str | None, list[int]] = {}  # staged positions by descriptor model
        for index, item in enumerate(items):
            try:
                image = self.decode(item.data)
                # in the coordinates of image.pixels until _analysis maps them to the image's own
                detected = self._detect_in_pixels(
                    image, item.detector, item.attributes, max_faces=item.max_faces
                )
                found_by = str(self.last_found_by)
                if item.max_faces is not None:
                    detected = detected[: item.max_faces]
                if item.descriptors and detected:
                    models.setdefault(item.model, []).append(len(staged))
                    staged.append((index, image, detected, found_by))
                faces = tuple(Face(detected=f, descriptor=None) for f in detected)
                unavailable = self.unavailable(item.attributes)
                outcomes.append(_analysis(image, faces, found_by, unavailable))
            except Exception as exc:  # this image's typed error, returned in its place
                outcomes.append(exc)
        # one describer call per descriptor model (one in all for a batch of one model)
        for model, positions in models.items():
            group = [staged[p] for p in positions]
            try:
                described = self._describe_all(
                    [(image, detected) for _, image, detected, _ in group], model
                )
            except Exception as exc:
                for index, *_ in group:
                    outcomes[index] = exc
                continue
            for (index, image, _, found_by), faces in zip(group, described, strict=True):
                unavailable = self.unavailable(items[index].attributes)
                outcomes[index] = _analysis(image, faces, found_by, unavailable)
        return outcomes


def _analysis(
    image: DecodedImage,
    faces: tuple[Face, ...],
    found_by: str,
    unavailable: frozenset[str] = frozenset(),
) -> Analysis:
    """The analysis of ``image`` (``faces`` in the coordinates of its pixels, reported in the
    image's own); ``found_by`` is kept only when there are faces."""
    return Analysis(
        width_px=image.full_width_px,
        height_px=image.full_height_px,
        image_format=image.image_format,
        sha256=image.sha256,
        faces=tuple(replace(f, detected=_in_source(image, f.detected)) for f in faces),
        found_by=found_by if faces else "",
        attributes_unavailable=unavailable,
    )


def _in_source(image: DecodedImage, face: DetectedFace) -> DetectedFace:
    """A face found in ``image.pixels`` with its box and points in the image's own pixels
    (the same face when the image was not reduced). Ratios, pose and quality stay."""
    return _scaled(face, lambda x: x * image.scale_x, lambda y: y * image.scale_y, image.reduced)


def _in_pixels(image: DecodedImage, face: DetectedFace) -> DetectedFace:
    """The inverse of :func:`_in_source` (dlib's integer points come back exactly; the box to
    within a pixel, and the face chip uses the points)."""
    return _scaled(face, lambda x: x / image.scale_x, lambda y: y / image.scale_y, image.reduced)


def _scaled(
    face: DetectedFace, fx: Callable[[float], float], fy: Callable[[float], float], reduced: bool
) -> DetectedFace:
    """``face`` with its pixel box and five points mapped by ``fx``, ``fy`` (unchanged when the
    image was not ``reduced``)."""
    if not reduced:
        return face
    box = face.box_px
    return replace(
        face,
        box_px=BoxPx(
            left=round(fx(box.left)),
            top=round(fy(box.top)),
            width=round(fx(box.width)),
            height=round(fy(box.height)),
        ),
        points5_px=tuple((fx(x), fy(y)) for x, y in face.points5_px),
    )
