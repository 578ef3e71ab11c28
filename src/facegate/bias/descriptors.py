"""One face descriptor per manifest image, computed in engine worker processes and cached on disk.

For each image: the engine's configured detector chain (the server's default: MTCNN, then HOG,
then MTCNN on a padded image); when it finds no face and ``mmod_fallback`` is on, dlib's MMOD is
tried too (slow: seconds per image on pose-varied photos, and the server never runs it, so the
``facegate bias`` actions leave it off unless ``--mmod-fallback``); the largest face's
descriptor is kept and the detector that found it recorded.
An image where neither finds a face is recorded as ``no_face``; an image the engine cannot decode
as ``error`` (with the message). Both are cached like faces, so they are reported, not retried.

The cache (:class:`DescriptorCache`, SQLite) is keyed by the image file's SHA-256, the engine's
model version and a digest of the configuration that changes the result (detector parameters,
image limits, fallback, this module's format). A re-run reads every row from the cache and
starts no worker; a changed model or configuration misses and recomputes. Results are committed
every ``batch_size`` images, so an interrupted run keeps what it finished and the next run resumes.
Memory is bounded: at most ``window`` images are in flight and rows go to disk batch by batch.
"""

from __future__ import annotations

import hashlib
import sys
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from facegate.bias.datasets import Manifest
from facegate.bias.image_cache import ImageCache, default_path
from facegate.engine.core import EngineConfig
from facegate.engine.detect import detection_version
from facegate.engine.models import file_sha256
from facegate.engine.pool import EnginePool
from facegate.engine.types import Analysis, DetectorKind
from facegate.errors import EngineUnavailableError, FacegateError

CACHE_FORMAT = "bias-descriptors-v1"
FACE, NO_FACE, ERROR = "face", "no_face", "error"
DEFAULT_DIM = 128

FloatMatrix = npt.NDArray[np.float32]
_SELECT = "SELECT sha256, status, found_by, faces, vector, message FROM descriptors"


class AnalyzePool(Protocol):
    """What the descriptor pass needs from an engine pool (``EnginePool`` satisfies it)."""

    config: EngineConfig

    @property
    def model_version(self) -> str: ...

    def submit(
        self,
        data: bytes,
        *,
        descriptors: bool = True,
        detector: DetectorKind | None = None,
        max_faces: int | None = None,
        model: str | None = None,
    ) -> Future[Analysis]: ...


@dataclass(frozen=True)
class DescriptorRecord:
    """What is known about one image: ``status`` is ``face``, ``no_face`` or ``error``.

    ``found_by`` names the detector that found the face (``hog``/``mmod``), ``""`` otherwise;
    ``faces`` is how many faces that detector found (the largest is described).
    """

    status: str
    found_by: str
    faces: int
    descriptor: npt.NDArray[np.float32] | None
    message: str = ""


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/facegate/descriptors/descriptors.sqlite3`` (``~/.cache`` by default)."""
    return default_path("descriptors")


def config_key(config: EngineConfig, model_version: str, mmod_fallback: bool) -> str:
    """The cache key of everything but the image: model version + a digest of the settings."""
    parts = [
        CACHE_FORMAT,
        repr(config.detector),
        detection_version(config.effective_detector()),
        repr(config.limits),
        f"fallback={mmod_fallback}",
    ]
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    return f"{model_version}|{config.detector.kind}|{digest}"


class DescriptorCache(ImageCache):
    """A SQLite file of descriptor records keyed by (image SHA-256, :func:`config_key`)
    (:mod:`facegate.bias.image_cache`: shared between runs and data sets, one writer)."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(
            Path(path) if path is not None else default_cache_path(),
            "CREATE TABLE IF NOT EXISTS descriptors (sha256 TEXT NOT NULL, key TEXT NOT NULL,"
            " status TEXT NOT NULL, found_by TEXT NOT NULL, faces INTEGER NOT NULL,"
            " vector BLOB, message TEXT NOT NULL, PRIMARY KEY (sha256, key))",
        )

    def get_many(self, key: str, digests: Sequence[str]) -> dict[str, DescriptorRecord]:
        """The cached records among ``digests`` for ``key`` (absent digests are left out)."""
        out: dict[str, DescriptorRecord] = {}
        for sha, status, found_by, faces, blob, message in self._rows(_SELECT, key, digests):
            vector = None if blob is None else np.frombuffer(blob, dtype=np.float32).copy()
            out[sha] = DescriptorRecord(status, found_by, faces, vector, message)
        return out

    def put_many(self, key: str, records: Mapping[str, DescriptorRecord]) -> None:
        """Store records by image digest (one transaction)."""
        rows = [
            (
                sha,
                key,
                r.status,
                r.found_by,
                r.faces,
                None if r.descriptor is None else r.descriptor.astype(np.float32).tobytes(),
                r.message,
            )
            for sha, r in records.items()
        ]
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO descriptors VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def count(self, key: str | None = None) -> int:
        """Rows in the cache (for ``key`` only, when given)."""
        with self._connect() as db:
            if key is None:
                row = db.execute("SELECT COUNT(*) FROM descriptors").fetchone()
            else:
                row = db.execute("SELECT COUNT(*) FROM descriptors WHERE key = ?", [key]).fetchone()
        return int(row[0])


@dataclass(frozen=True)
class DescriptorSet:
    """Descriptors aligned with a manifest: row ``i`` belongs to ``manifest.samples[i]``.

    ``vectors`` has NaN rows where ``statuses[i]`` is not ``face``. ``computed`` counts images
    analysed in this run, ``from_cache`` those read from the cache.
    """

    model_version: str
    key: str
    vectors: FloatMatrix
    statuses: tuple[str, ...]
    found_by: tuple[str, ...]
    messages: Mapping[int, str]
    computed: int
    from_cache: int

    def indices(self, status: str) -> tuple[int, ...]:
        """Sample indices with this status (``face``, ``no_face`` or ``error``)."""
        return tuple(i for i, s in enumerate(self.statuses) if s == status)

    def summary(self) -> str:
        """One line for a report: images, faces by detector, no face, errors, cache use."""
        by = {k: self.found_by.count(k) for k in sorted(set(self.found_by)) if k}
        detectors = ", ".join(f"{k} {n}" for k, n in by.items()) or "none"
        return (
            f"{len(self.statuses)} images: faces {len(self.indices(FACE))} ({detectors}), "
            f"no face {len(self.indices(NO_FACE))}, errors {len(self.indices(ERROR))}; "
            f"computed {self.computed}, from cache {self.from_cache}"
        )


def _largest(analysis: Analysis, kind: DetectorKind) -> DescriptorRecord | None:
    if not analysis.faces or analysis.faces[0].descriptor is None:
        return None
    vector = np.asarray(analysis.faces[0].descriptor, dtype=np.float32)
    return DescriptorRecord(FACE, analysis.found_by or str(kind), len(analysis.faces), vector)


def _analyse(
    pool: AnalyzePool,
    future: Future[Analysis],
    data: bytes,
    mmod_fallback: bool,
    model: str | None = None,
) -> DescriptorRecord:
    """Turn one image's analysis into a record, running the MMOD fallback when it is due."""
    kind = pool.config.detector.kind
    try:
        record = _largest(future.result(), kind)
        if record is None and mmod_fallback and kind != DetectorKind.MMOD:
            extra: dict[str, Any] = {"model": model} if model is not None else {}
            fallback = pool.submit(data, detector=DetectorKind.MMOD, max_faces=1, **extra)
            record = _largest(fallback.result(), DetectorKind.MMOD)
    except EngineUnavailableError:
        raise
    except FacegateError as exc:  # undecodable or over-limit image: deterministic, so cached
        return DescriptorRecord(ERROR, "", 0, None, f"{type(exc).__name__}: {exc}")
    return record or DescriptorRecord(NO_FACE, "", 0, None)


def _run(
    pool: AnalyzePool,
    todo: Mapping[str, Path],
    mmod_fallback: bool,
    window: int,
    progress: bool,
    model: str | None = None,
) -> Iterator[tuple[str, DescriptorRecord]]:
    """(digest, record) for each image in ``todo``, in order, ``window`` images in flight."""
    extra: dict[str, Any] = {"model": model} if model is not None else {}
    pending: deque[tuple[str, bytes, Future[Analysis]]] = deque()
    bar = tqdm(
        total=len(todo), desc="descriptors", unit="img", file=sys.stderr, disable=not progress
    )
    try:
        for sha, path in todo.items():
            data = path.read_bytes()
            pending.append((sha, data, pool.submit(data, max_faces=1, **extra)))
            if len(pending) >= window:
                done_sha, done_data, future = pending.popleft()
                yield done_sha, _analyse(pool, future, done_data, mmod_fallback, model)
                bar.update()
        while pending:
            done_sha, done_data, future = pending.popleft()
            yield done_sha, _analyse(pool, future, done_data, mmod_fallback, model)
            bar.update()
    finally:
        for _, _, future in pending:
            future.cancel()
        bar.close()


def compute_descriptors(
    manifest: Manifest,
    *,
    cache: DescriptorCache | None = None,
    config: EngineConfig = EngineConfig(),
    pool: AnalyzePool | None = None,
    workers: int = 2,
    mmod_fallback: bool = True,
    batch_size: int = 200,
    window: int | None = None,
    progress: bool = True,
    model: str | None = None,
) -> DescriptorSet:
    """One descriptor per manifest image (its largest face), from the cache or computed.

    ``model``: the descriptor model's version (``engine.descriptors``; None: the engine's dlib
    model); it names the vectors and keys the cache.

    ``pool``: an engine pool to use (its ``config`` and ``model_version`` then define the cache
    key and ``config``/``workers`` are ignored); by default an :class:`EnginePool` of ``workers``
    processes is started with ``config`` only when some image is not cached, and closed after.
    ``batch_size``: records committed per transaction (the most an interruption can lose).
    ``window``: images in flight (default 4 per worker). Identical files are computed once.
    A file that cannot be read raises ``OSError`` before any engine work; a worker crash raises
    :class:`EngineUnavailableError` after committing what was done (re-run to resume).
    """
    cache = cache or DescriptorCache()
    digests = [file_sha256(s.path) for s in manifest.samples]
    engine_config = pool.config if pool is not None else config
    version = pool.model_version if pool is not None else EnginePool(config, 1).model_version
    version = model or version
    key = config_key(engine_config, version, mmod_fallback)
    records = cache.get_many(key, digests)
    todo = {sha: s.path for sha, s in zip(digests, manifest.samples, strict=True)}
    todo = {sha: path for sha, path in todo.items() if sha not in records}
    from_cache = sum(1 for sha in digests if sha in records and sha not in todo)
    if todo:
        owned = pool is None
        active: AnalyzePool = pool if pool is not None else EnginePool(config, workers)
        window = window or 4 * workers
        batch: dict[str, DescriptorRecord] = {}
        try:
            for sha, record in _run(active, todo, mmod_fallback, window, progress, model):
                batch[sha] = record
                records[sha] = record
                if len(batch) >= batch_size:
                    cache.put_many(key, batch)
                    batch = {}
        finally:
            cache.put_many(key, batch)
            if owned and isinstance(active, EnginePool):
                active.close()
    return _assemble(version, key, digests, records, len(todo), from_cache)


def _assemble(
    version: str,
    key: str,
    digests: Sequence[str],
    records: Mapping[str, DescriptorRecord],
    computed: int,
    from_cache: int,
) -> DescriptorSet:
    dims = {len(r.descriptor) for r in records.values() if r.descriptor is not None}
    dim = dims.pop() if len(dims) == 1 else DEFAULT_DIM
    vectors = np.full((len(digests), dim), np.nan, dtype=np.float32)
    statuses, found_by, messages = [], [], {}
    for i, sha in enumerate(digests):
        record = records[sha]
        statuses.append(record.status)
        found_by.append(record.found_by)
        if record.descriptor is not None:
            vectors[i] = record.descriptor
        if record.message:
            messages[i] = record.message
    return DescriptorSet(
        version, key, vectors, tuple(statuses), tuple(found_by), messages, computed, from_cache
    )
