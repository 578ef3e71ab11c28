"""Descriptors of a second model (``faceres``) on the same faces as dlib's, cached like them.

The dlib pass (:mod:`facegate.bias.descriptors`) keeps one descriptor per image: the largest face
of the engine's detector chain, with the bias toolkit's MMOD fallback. A second model must
describe *that same face*, or a fused score would pair two different faces. So one engine pass
(:func:`detect_faces`) stores, per image, both dlib's record (under the key
:func:`facegate.bias.descriptors.compute_descriptors` uses, so that cache fills as a side
effect) and the face's geometry: its box and its five alignment points (eye centres, nose tip,
mouth corners; :mod:`facegate.engine.align5`) as ratios of the image. A second pass
(:func:`compute_model_descriptors`) decodes each image again, crops the face as the model wants
(``arcface224`` or ``hse-box``) and runs the model, one face per image.

Everything goes into the same SQLite file as dlib's descriptors (:class:`DescriptorCache`), keyed
by the image's SHA-256 and a key naming the detector configuration (geometry) or the model, its
ONNX file's SHA-256 and the crop (descriptors). Images with no face or an error keep that status
in every model, so the data sets' face counts agree across models. Vectors are L2-normalised
(the model's metric is cosine; Euclidean distance between unit vectors is its monotone
``sqrt(2 (1 - cos))``, so the bias toolkit's Euclidean code measures it unchanged).
"""

from __future__ import annotations

import hashlib
import sys
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from facegate.bias.datasets import Manifest
from facegate.bias.descriptors import (
    ERROR,
    FACE,
    NO_FACE,
    AnalyzePool,
    DescriptorCache,
    DescriptorRecord,
    DescriptorSet,
    FloatMatrix,
    _assemble,
    config_key,
)
from facegate.engine.align5 import ARCFACE_224, HSE_BOX, aligned_crop, box_crop
from facegate.engine.core import EngineConfig
from facegate.engine.human_models import LoadedModel, load_onnx_model, prepare_batch
from facegate.engine.image import RGBImage, decode_image
from facegate.engine.models import file_sha256
from facegate.engine.pool import EnginePool
from facegate.engine.types import Analysis, DetectorKind
from facegate.errors import EngineUnavailableError, FacegateError

GEOMETRY_FORMAT = "bias-geometry-v1"
GEOMETRY_DIM = 24
"""box (left, top, width, height), five alignment points, dlib's five points: ratios."""
FIVE_POINTS = ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")
"""The Rekognition landmarks used as the five alignment points, in ArcFace's order."""

FACERES = "faceres"
FACERES_VERSIONS = {ARCFACE_224: "faceres-v1", HSE_BOX: "faceres-hsebox-v1"}
"""Model version of faceres under each crop; ``faceres-v1`` is the shipped one (docs/models.md)."""


@dataclass(frozen=True)
class FaceGeometry:
    """Where one face is, as ratios of the image's width (x) and height (y)."""

    box: tuple[float, float, float, float]
    points5: tuple[tuple[float, float], ...]
    dlib5: tuple[tuple[float, float], ...]

    def to_vector(self) -> npt.NDArray[np.float32]:
        points = [v for p in (*self.points5, *self.dlib5) for v in p]
        flat = [*self.box, *points]
        return np.asarray(flat, dtype=np.float64).astype(np.float32)

    @classmethod
    def from_vector(cls, v: npt.ArrayLike) -> FaceGeometry:
        x = [float(t) for t in np.asarray(v, dtype=np.float64)]
        if len(x) != GEOMETRY_DIM:
            raise ValueError(f"a geometry has {GEOMETRY_DIM} values, got {len(x)}")
        box = (x[0], x[1], x[2], x[3])
        points = tuple((x[i], x[i + 1]) for i in range(4, 14, 2))
        dlib5 = tuple((x[i], x[i + 1]) for i in range(14, 24, 2))
        return cls(box, points, dlib5)

    def box_px(self, width: int, height: int) -> tuple[float, float, float, float]:
        left, top, w, h = self.box
        return (left * width, top * height, w * width, h * height)

    def points5_px(self, width: int, height: int) -> list[tuple[float, float]]:
        """The five alignment points in pixel indices of a ``width`` x ``height`` image."""
        return [(x * width, y * height) for x, y in self.points5]


def _geometry(analysis: Analysis) -> FaceGeometry:
    face = analysis.faces[0].detected
    names = {lm.name: lm for lm in face.landmarks}
    w, h = analysis.width_px, analysis.height_px
    return FaceGeometry(
        (face.box_ratio.left, face.box_ratio.top, face.box_ratio.width, face.box_ratio.height),
        tuple((names[n].x_ratio, names[n].y_ratio) for n in FIVE_POINTS),
        tuple((x / w, y / h) for x, y in face.points5_px),
    )


def geometry_key(dlib_key: str) -> str:
    """The cache key of face geometries found with the configuration of ``dlib_key``."""
    return f"geometry|{GEOMETRY_FORMAT}|{dlib_key}"


@dataclass(frozen=True)
class _Found:
    dlib: DescriptorRecord
    geometry: DescriptorRecord


def _found(analysis: Analysis, kind: str) -> _Found | None:
    if not analysis.faces or analysis.faces[0].descriptor is None:
        return None
    by = analysis.found_by or kind
    n = len(analysis.faces)
    vector = np.asarray(analysis.faces[0].descriptor, dtype=np.float32)
    return _Found(
        DescriptorRecord(FACE, by, n, vector),
        DescriptorRecord(FACE, by, n, _geometry(analysis).to_vector()),
    )


def _analyse(pool: AnalyzePool, future: Future[Analysis], data: bytes, fallback: bool) -> _Found:
    """As :func:`facegate.bias.descriptors._analyse`, keeping the face's geometry too."""
    kind = pool.config.detector.kind
    try:
        found = _found(future.result(), str(kind))
        if found is None and fallback and kind != DetectorKind.MMOD:
            mmod = pool.submit(data, detector=DetectorKind.MMOD, max_faces=1)
            found = _found(mmod.result(), str(DetectorKind.MMOD))
    except EngineUnavailableError:
        raise
    except FacegateError as exc:
        error = DescriptorRecord(ERROR, "", 0, None, f"{type(exc).__name__}: {exc}")
        return _Found(error, error)
    if found is None:
        none = DescriptorRecord(NO_FACE, "", 0, None)
        return _Found(none, none)
    return found


def detect_faces(
    manifest: Manifest,
    *,
    cache: DescriptorCache,
    config: EngineConfig = EngineConfig(),
    workers: int = 2,
    mmod_fallback: bool = True,
    batch_size: int = 200,
    progress: bool = True,
) -> tuple[DescriptorSet, DescriptorSet]:
    """(dlib's descriptors, the faces' geometries) for every manifest image, from the cache or
    computed in one engine pass (both stored). Same face, same statuses in both."""
    digests = [file_sha256(s.path) for s in manifest.samples]
    version = EnginePool(config, 1).model_version
    dkey = config_key(config, version, mmod_fallback)
    gkey = geometry_key(dkey)
    dlib = cache.get_many(dkey, digests)
    geom = cache.get_many(gkey, digests)
    samples = zip(digests, manifest.samples, strict=True)
    todo = {sha: s.path for sha, s in samples if sha not in geom}
    if todo:
        pool = EnginePool(config, workers)
        pending: deque[tuple[str, bytes, Future[Analysis]]] = deque()
        bar = tqdm(total=len(todo), desc="faces", unit="img", file=sys.stderr, disable=not progress)
        batch_d: dict[str, DescriptorRecord] = {}
        batch_g: dict[str, DescriptorRecord] = {}

        def take(sha: str, data: bytes, future: Future[Analysis]) -> None:
            found = _analyse(pool, future, data, mmod_fallback)
            dlib[sha], geom[sha] = batch_d[sha], batch_g[sha] = found.dlib, found.geometry
            bar.update()
            if len(batch_g) >= batch_size:
                cache.put_many(dkey, batch_d)
                cache.put_many(gkey, batch_g)
                batch_d.clear()
                batch_g.clear()

        try:
            for sha, path in todo.items():
                data = path.read_bytes()
                pending.append((sha, data, pool.submit(data, max_faces=1)))
                if len(pending) >= 4 * workers:
                    take(*pending.popleft())
            while pending:
                take(*pending.popleft())
        finally:
            for _, _, future in pending:
                future.cancel()
            cache.put_many(dkey, batch_d)
            cache.put_many(gkey, batch_g)
            bar.close()
            pool.close()
    n = len(todo)
    return (
        _assemble(version, dkey, digests, dlib, n, len(digests) - n),
        _assemble("geometry", gkey, digests, geom, n, len(digests) - n),
    )


class FaceDescriber(Protocol):
    """A second descriptor model: unit vectors for faces given by their geometry."""

    @property
    def model_version(self) -> str: ...

    @property
    def key(self) -> str:
        """Everything that changes the vectors: model file hash, crop, this module's format."""
        ...

    def describe(
        self, pixels: RGBImage, faces: Sequence[FaceGeometry]
    ) -> npt.NDArray[np.float32]: ...


def unit_rows(x: npt.ArrayLike) -> FloatMatrix:
    """Rows scaled to length 1 (float32; an all-zero row stays zero)."""
    v = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    out: FloatMatrix = (v / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    return out


class FaceresDescriber:
    """HSE FaceRes (``faceres``, 1,024-d) on ``arcface224`` or ``hse-box`` crops."""

    def __init__(
        self, crop: str = ARCFACE_224, models_dir: Path | None = None, threads: int = 1
    ) -> None:
        if crop not in FACERES_VERSIONS:
            raise ValueError(f"crop must be one of {', '.join(FACERES_VERSIONS)}, got {crop!r}")
        model = load_onnx_model(FACERES, models_dir, intra_op_threads=threads)
        if model is None:
            raise OSError(
                "the faceres model is not available (facegate models list says why; "
                "python3 tools/dev.py sets the models up)"
            )
        self.model: LoadedModel = model
        self.crop = crop

    @property
    def model_version(self) -> str:
        return FACERES_VERSIONS[self.crop]

    @property
    def key(self) -> str:
        digest = hashlib.sha256(f"{self.model.status.sha256}\0{self.crop}".encode()).hexdigest()
        return f"{self.model_version}|{self.crop}|{digest[:16]}"

    def crops(self, pixels: RGBImage, faces: Sequence[FaceGeometry]) -> list[RGBImage]:
        """The 224x224 RGB crops the model is fed."""
        h, w = pixels.shape[:2]
        if self.crop == ARCFACE_224:
            return [aligned_crop(pixels, f.points5_px(w, h), 224) for f in faces]
        return [box_crop(pixels, f.box_px(w, h), 224) for f in faces]

    def describe(self, pixels: RGBImage, faces: Sequence[FaceGeometry]) -> npt.NDArray[np.float32]:
        if not faces:
            return np.zeros((0, 1024), dtype=np.float32)
        batch = prepare_batch(self.model.spec.input, self.crops(pixels, faces))
        return unit_rows(self.model.run(batch)["descriptor"])


def _describe_all(
    describer: FaceDescriber,
    todo: Mapping[str, tuple[Path, DescriptorRecord]],
    config: EngineConfig,
    progress: bool,
) -> Iterator[tuple[str, DescriptorRecord]]:
    bar = tqdm(
        total=len(todo), desc=describer.model_version, unit="img", file=sys.stderr,
        disable=not progress,
    )  # fmt: skip
    try:
        for sha, (path, g) in todo.items():
            if g.status != FACE or g.descriptor is None:
                yield sha, DescriptorRecord(g.status, "", 0, None, g.message)
            else:
                pixels = decode_image(path.read_bytes(), config.limits).pixels
                vector = describer.describe(pixels, [FaceGeometry.from_vector(g.descriptor)])[0]
                yield sha, DescriptorRecord(FACE, g.found_by, g.faces, vector)
            bar.update()
    finally:
        bar.close()


def compute_model_descriptors(
    manifest: Manifest,
    describer: FaceDescriber,
    *,
    cache: DescriptorCache,
    config: EngineConfig = EngineConfig(),
    workers: int = 2,
    mmod_fallback: bool = True,
    batch_size: int = 200,
    progress: bool = True,
) -> DescriptorSet:
    """``describer``'s unit vectors of the face dlib describes in each manifest image (cached;
    the faces are found by :func:`detect_faces` when their geometry is not cached yet)."""
    _, geometry = detect_faces(
        manifest,
        cache=cache,
        config=config,
        workers=workers,
        mmod_fallback=mmod_fallback,
        progress=progress,
    )
    digests = [file_sha256(s.path) for s in manifest.samples]
    key = f"{describer.key}|{geometry.key}"
    records = cache.get_many(key, digests)
    todo: dict[str, tuple[Path, DescriptorRecord]] = {}
    for i, (sha, sample) in enumerate(zip(digests, manifest.samples, strict=True)):
        if sha in records or sha in todo:
            continue
        vector = None if geometry.statuses[i] != FACE else geometry.vectors[i]
        todo[sha] = (
            sample.path,
            DescriptorRecord(
                geometry.statuses[i],
                geometry.found_by[i],
                1,
                vector,
                geometry.messages.get(i, ""),
            ),
        )
    batch: dict[str, DescriptorRecord] = {}
    try:
        for sha, record in _describe_all(describer, todo, config, progress):
            records[sha] = batch[sha] = record
            if len(batch) >= batch_size:
                cache.put_many(key, batch)
                batch = {}
    finally:
        cache.put_many(key, batch)
    n = len(todo)
    return _assemble(describer.model_version, key, digests, records, n, len(digests) - n)
