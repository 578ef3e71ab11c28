"""The descriptor pass on real sample images: computed, cached, invalidated, no-face recorded."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

from facegate.bias.datasets import Manifest, Sample
from facegate.bias.descriptors import (
    ERROR,
    FACE,
    NO_FACE,
    DescriptorCache,
    compute_descriptors,
    config_key,
)
from facegate.engine.attributes.types import FaceModels
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.detect import DetectorConfig
from facegate.engine.pool import EnginePool
from facegate.engine.types import Analysis, DetectorKind

NAMES = (
    "obama.jpg",
    "obama2.jpg",
    "biden.jpg",
    "two_people.jpg",
    "no_face_white.png",
    "coffee.png",
)


class CountingPool:
    """An ``EnginePool`` wrapper counting ``submit`` calls (by detector); can fail after N."""

    def __init__(self, pool: EnginePool, fail_after: int | None = None) -> None:
        self.pool = pool
        self.config = pool.config
        self.calls: list[DetectorKind | None] = []
        self.fail_after = fail_after

    @property
    def model_version(self) -> str:
        return self.pool.model_version

    def submit(
        self,
        data: bytes,
        *,
        descriptors: bool = True,
        detector: DetectorKind | None = None,
        max_faces: int | None = None,
        model: str | None = None,
    ) -> Future[Analysis]:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt
        self.calls.append(detector)
        return self.pool.submit(
            data, descriptors=descriptors, detector=detector, max_faces=max_faces, model=model
        )


@pytest.fixture(scope="module")
def pool() -> Iterator[EnginePool]:
    with EnginePool(EngineConfig(), workers=2) as engines:
        yield engines


@pytest.fixture
def manifest(samples: Path) -> Manifest:
    return Manifest(
        "samples", tuple(Sample(samples / n, n, {}, "samples/MANIFEST.md") for n in NAMES)
    )


@pytest.mark.slow
def test_computed_then_cached(
    pool: EnginePool, manifest: Manifest, tmp_path: Path, engine: FaceEngine
) -> None:
    cache = DescriptorCache(tmp_path / "cache.sqlite3")
    counting = CountingPool(pool)
    first = compute_descriptors(manifest, cache=cache, pool=counting, progress=False)
    assert first.statuses == (FACE, FACE, FACE, FACE, NO_FACE, NO_FACE)
    # probes (max_faces=1): BlazeFace first, which finds these four (engine.blazeface)
    assert first.found_by[:4] == ("blazeface",) * 4
    assert first.indices(NO_FACE) == (4, 5)
    assert (first.computed, first.from_cache) == (6, 0)
    # The chain found nothing in two images, so MMOD was tried on each: 6 + 2 calls.
    assert counting.calls.count(DetectorKind.MMOD) == 2
    assert len(counting.calls) == 8
    assert first.vectors.shape == (6, 128)
    assert np.isnan(first.vectors[4:]).all()
    assert not np.isnan(first.vectors[:4]).any()
    # The largest face, bit-identical to the in-process engine's probe.
    direct = engine.analyze(manifest.samples[3].path.read_bytes(), max_faces=1).faces[0].descriptor
    assert direct is not None
    assert np.array_equal(first.vectors[3], direct)
    assert "no face 2" in first.summary()

    second = CountingPool(pool, fail_after=0)  # any engine work would raise
    again = compute_descriptors(manifest, cache=cache, pool=second, progress=False)
    assert second.calls == []
    assert (again.computed, again.from_cache) == (0, 6)
    assert again.statuses == first.statuses
    assert again.found_by == first.found_by
    assert np.array_equal(again.vectors, first.vectors, equal_nan=True)


@pytest.mark.slow
def test_another_model_version_or_setting_misses(
    pool: EnginePool, manifest: Manifest, tmp_path: Path
) -> None:
    cache = DescriptorCache(tmp_path / "cache.sqlite3")
    few = Manifest("few", manifest.samples[:2])
    compute_descriptors(few, cache=cache, pool=CountingPool(pool), progress=False)
    flip = EngineConfig(flip_tta=True)
    with EnginePool(flip, workers=1) as flip_pool:
        counting = CountingPool(flip_pool)
        result = compute_descriptors(few, cache=cache, pool=counting, progress=False)
    assert result.model_version == "dlib-resnet-v1+flip"
    assert result.computed == 2
    assert len(counting.calls) == 2
    no_fallback = CountingPool(pool)
    compute_descriptors(few, cache=cache, pool=no_fallback, mmod_fallback=False, progress=False)
    assert len(no_fallback.calls) == 2
    assert cache.count() == 6


def test_the_key_names_the_probe_detector_that_runs(tmp_path: Path) -> None:
    """BlazeFace on, off, or on without its converted model (the engine then uses the chain):
    results of the chain are filed under the chain's key, never under BlazeFace's."""
    on = config_key(EngineConfig(), "dlib-resnet-v1", True)
    off = config_key(
        EngineConfig(detector=DetectorConfig(search_blazeface=False)), "dlib-resnet-v1", True
    )
    missing = config_key(
        EngineConfig(face_models=FaceModels(models_dir=tmp_path)), "dlib-resnet-v1", True
    )
    assert on != off
    assert missing == off


def test_interrupted_run_keeps_finished_batches(
    pool: EnginePool, manifest: Manifest, tmp_path: Path
) -> None:
    cache = DescriptorCache(tmp_path / "cache.sqlite3")
    faces = Manifest("faces", manifest.samples[:4])
    crashing = CountingPool(pool, fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        compute_descriptors(
            faces, cache=cache, pool=crashing, batch_size=1, window=2, progress=False
        )
    assert cache.count() >= 1
    resumed = compute_descriptors(faces, cache=cache, pool=CountingPool(pool), progress=False)
    assert resumed.from_cache == cache.count() - resumed.computed
    assert resumed.computed < 4
    assert resumed.statuses == (FACE,) * 4


def test_unreadable_image_is_an_error_record(
    pool: EnginePool, tmp_path: Path, samples: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    manifest = Manifest(
        "m", (Sample(broken, None, {}, "test"), Sample(samples / "obama.jpg", None, {}, "t"))
    )
    cache = DescriptorCache(tmp_path / "cache.sqlite3")
    result = compute_descriptors(manifest, cache=cache, pool=CountingPool(pool), progress=False)
    assert result.statuses == (ERROR, FACE)
    assert "broken" not in result.messages[0]
    assert result.messages[0]
    again = compute_descriptors(manifest, cache=cache, pool=CountingPool(pool, 0), progress=False)
    assert again.statuses == (ERROR, FACE)
    assert again.computed == 0


@pytest.mark.slow
def test_default_pool_is_started_only_when_needed(manifest: Manifest, tmp_path: Path) -> None:
    cache = DescriptorCache(tmp_path / "cache.sqlite3")
    one = Manifest("one", manifest.samples[2:3])
    result = compute_descriptors(one, cache=cache, workers=1, progress=False)
    assert result.statuses == (FACE,)
    assert result.computed == 1
    assert compute_descriptors(one, cache=cache, progress=False).from_cache == 1
