"""facegate's own facial attributes per manifest image, computed in engine workers and cached.

For each image the engine runs as the server does for ``DetectFaces`` with ``Attributes``: the
configured detector chain (no MMOD fallback: the server has none), then every attribute estimator
the configuration makes available, on the largest face. The record keeps what the server would
answer for that face (AgeRange, Gender, Emotions, Smile, EyesOpen, MouthOpen), not the models'
raw outputs: an audit measures the answers.

The cache (:class:`AttributeCache`, SQLite) is keyed by the image file's SHA-256 and
:func:`cache_key`: every estimator's version (a changed model, rule or calibration misses) and a
digest of the detection settings. A re-run reads every row and starts no worker. Images with no
face and images the engine refuses are cached too (``no_face``, ``error``), so they are reported,
not retried. Results are committed every ``batch_size`` images: an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from facegate.bias.datasets import Manifest
from facegate.bias.image_cache import ImageCache, default_path
from facegate.engine.attributes.registry import build_registry
from facegate.engine.attributes.types import FaceAttributes
from facegate.engine.core import EngineConfig
from facegate.engine.detect import detection_version
from facegate.engine.models import file_sha256
from facegate.engine.pool import EnginePool
from facegate.engine.types import Analysis
from facegate.errors import EngineUnavailableError, FacegateError

CACHE_FORMAT = "bias-attributes-v1"
FACE, NO_FACE, ERROR = "face", "no_face", "error"
_SELECT = "SELECT sha256, record FROM attributes"


@dataclass(frozen=True)
class AttributeRecord:
    """What the engine answered for one image's largest face.

    ``status`` is ``face``, ``no_face`` or ``error`` (``message`` says why); ``faces`` is how
    many faces were found; each attribute is None when it was not estimated for that face."""

    status: str
    faces: int = 0
    found_by: str = ""
    age_range: tuple[int, int] | None = None
    gender: tuple[str, float] | None = None
    emotions: tuple[tuple[str, float], ...] | None = None
    smile: tuple[bool, float] | None = None
    eyes_open: tuple[bool, float] | None = None
    mouth_open: tuple[bool, float] | None = None
    message: str = ""

    @property
    def top_emotion(self) -> str | None:
        """The most confident expression (Rekognition's ``Emotions[0]['Type']``)."""
        return self.emotions[0][0] if self.emotions else None

    def to_json(self) -> str:
        return json.dumps(
            {
                "status": self.status,
                "faces": self.faces,
                "found_by": self.found_by,
                "age_range": self.age_range,
                "gender": self.gender,
                "emotions": self.emotions,
                "smile": self.smile,
                "eyes_open": self.eyes_open,
                "mouth_open": self.mouth_open,
                "message": self.message,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> AttributeRecord:
        d = json.loads(text)

        def pair(v: Any) -> Any:
            return None if v is None else (v[0], v[1])

        return cls(
            status=str(d["status"]),
            faces=int(d["faces"]),
            found_by=str(d["found_by"]),
            age_range=None if d["age_range"] is None else (int(d["age_range"][0]),
                                                           int(d["age_range"][1])),
            gender=pair(d["gender"]),
            emotions=None if d["emotions"] is None else tuple((e[0], e[1]) for e in d["emotions"]),
            smile=pair(d["smile"]),
            eyes_open=pair(d["eyes_open"]),
            mouth_open=pair(d["mouth_open"]),
            message=str(d.get("message", "")),
        )  # fmt: skip


def record_of(attributes: FaceAttributes | None, faces: int, found_by: str) -> AttributeRecord:
    """The record of one analysed face's attributes."""
    a = attributes or FaceAttributes()

    def flag(f: Any) -> tuple[bool, float] | None:
        return None if f is None else (bool(f.value), float(f.confidence_pct))

    return AttributeRecord(
        status=FACE,
        faces=faces,
        found_by=found_by,
        age_range=None if a.age_range is None else (a.age_range.low_years, a.age_range.high_years),
        gender=None if a.gender is None else (a.gender.value, float(a.gender.confidence_pct)),
        emotions=None
        if a.emotions is None
        else tuple((e.type_name, float(e.confidence_pct)) for e in a.emotions),
        smile=flag(a.smile),
        eyes_open=flag(a.eyes_open),
        mouth_open=flag(a.mouth_open),
    )


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/facegate/attributes/attributes.sqlite3`` (``~/.cache`` by default)."""
    return default_path("attributes")


def estimator_versions(config: EngineConfig) -> dict[str, str]:
    """Attribute -> estimator version of what ``config`` makes available (made once here, in
    the calling process, as each worker will)."""
    registry = build_registry(enabled=config.attributes, models=config.face_models)
    return {a.value: v.version for a, v in sorted(registry.available.items())}


def cache_key(config: EngineConfig, versions: Mapping[str, str]) -> str:
    """Everything but the image that decides a record: the estimators and the detection."""
    parts = [
        CACHE_FORMAT,
        *(f"{k}={v}" for k, v in sorted(versions.items())),
        repr(config.detector),
        detection_version(config.effective_detector()),
        repr(config.limits),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


class AttributeCache(ImageCache):
    """A SQLite file of :class:`AttributeRecord` keyed by (image SHA-256, :func:`cache_key`)
    (:mod:`facegate.bias.image_cache`: shared between runs and data sets, one writer)."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(
            Path(path) if path is not None else default_cache_path(),
            "CREATE TABLE IF NOT EXISTS attributes (sha256 TEXT NOT NULL, key TEXT NOT NULL,"
            " record TEXT NOT NULL, PRIMARY KEY (sha256, key))",
        )

    def get_many(self, key: str, digests: Sequence[str]) -> dict[str, AttributeRecord]:
        """The cached records among ``digests`` for ``key`` (absent digests are left out)."""
        return {
            sha: AttributeRecord.from_json(text) for sha, text in self._rows(_SELECT, key, digests)
        }

    def put_many(self, key: str, records: Mapping[str, AttributeRecord]) -> None:
        rows = [(sha, key, r.to_json()) for sha, r in records.items()]
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO attributes VALUES (?, ?, ?)", rows)


@dataclass(frozen=True)
class AttributeSet:
    """Records aligned with a manifest: ``records[i]`` belongs to ``manifest.samples[i]``."""

    versions: Mapping[str, str]
    key: str
    records: tuple[AttributeRecord, ...]
    computed: int
    from_cache: int

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r.status == status)

    def summary(self) -> str:
        return (
            f"{len(self.records)} images: faces {self.count(FACE)}, no face "
            f"{self.count(NO_FACE)}, errors {self.count(ERROR)}; computed {self.computed}, "
            f"from cache {self.from_cache}"
        )


def _record(future: Future[Analysis]) -> AttributeRecord:
    try:
        analysis = future.result()
    except EngineUnavailableError:
        raise
    except FacegateError as exc:  # undecodable or over-limit image: deterministic, so cached
        return AttributeRecord(ERROR, message=f"{type(exc).__name__}: {exc}")
    if not analysis.faces:
        return AttributeRecord(NO_FACE)
    largest = analysis.faces[0].detected
    return record_of(largest.attributes, len(analysis.faces), analysis.found_by)


def _run(
    pool: EnginePool, todo: Mapping[str, Path], wanted: frozenset[str], window: int, progress: bool
) -> Iterator[tuple[str, AttributeRecord]]:
    pending: deque[tuple[str, Future[Analysis]]] = deque()
    bar = tqdm(
        total=len(todo), desc="attributes", unit="img", file=sys.stderr, disable=not progress
    )
    try:
        for sha, path in todo.items():
            data = path.read_bytes()
            pending.append((sha, pool.submit(data, descriptors=False, attributes=wanted)))
            if len(pending) >= window:
                done, future = pending.popleft()
                yield done, _record(future)
                bar.update()
        while pending:
            done, future = pending.popleft()
            yield done, _record(future)
            bar.update()
    finally:
        for _, future in pending:
            future.cancel()
        bar.close()


def compute_attributes(
    manifest: Manifest,
    config: EngineConfig,
    *,
    cache: AttributeCache | None = None,
    workers: int = 2,
    batch_size: int = 200,
    progress: bool = True,
) -> AttributeSet:
    """Every available attribute of each manifest image's largest face, cached or computed in
    an :class:`EnginePool` of ``workers`` processes with ``config`` (started only when some
    image is not cached). A file that cannot be read raises ``OSError``; a worker crash raises
    :class:`EngineUnavailableError` after committing what was done (re-run to resume)."""
    cache = cache or AttributeCache()
    versions = estimator_versions(config)
    key = cache_key(config, versions)
    digests = [file_sha256(s.path) for s in manifest.samples]
    records = cache.get_many(key, digests)
    todo = {sha: s.path for sha, s in zip(digests, manifest.samples, strict=True)}
    todo = {sha: path for sha, path in todo.items() if sha not in records}
    from_cache = sum(1 for sha in digests if sha in records)
    if todo:
        pool = EnginePool(config, workers)
        batch: dict[str, AttributeRecord] = {}
        try:
            for sha, record in _run(pool, todo, frozenset(versions), 4 * workers, progress):
                batch[sha] = record
                records[sha] = record
                if len(batch) >= batch_size:
                    cache.put_many(key, batch)
                    batch = {}
        finally:
            cache.put_many(key, batch)
            pool.close()
    return AttributeSet(
        versions, key, tuple(records[sha] for sha in digests), len(todo), from_cache
    )
