"""Worker processes return exactly what the in-process engine returns (for the same runtime)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from facegate.engine.core import DescriptorRuntime, EngineConfig, FaceEngine
from facegate.engine.pool import EnginePool
from facegate.errors import EmptyImageError, TruncatedImageError

NAMES = ("obama.jpg", "two_people.jpg", "group_t1.jpg", "coffee.png")


@pytest.fixture(scope="module")
def pool() -> Iterator[EnginePool]:
    with EnginePool(EngineConfig(), workers=2) as p:
        p.warm_up()
        yield p


def test_pool_matches_in_process_bit_for_bit(
    pool: EnginePool, engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    for name in NAMES:
        local = engine.analyze(sample_bytes(name))
        remote = pool.analyze(sample_bytes(name))
        assert remote.sha256 == local.sha256
        assert [f.detected for f in remote.faces] == [f.detected for f in local.faces]
        for a, b in zip(remote.faces, local.faces, strict=True):
            assert a.descriptor is not None
            assert b.descriptor is not None
            assert np.array_equal(a.descriptor, b.descriptor)


def test_the_default_pool_runs_onnx_and_a_dlib_pool_matches_dlib_bit_for_bit(
    pool: EnginePool, engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    """Same runtime, same bits; the default (auto) pool's workers picked ONNX, as in process."""
    config = EngineConfig(descriptor_runtime=DescriptorRuntime.DLIB)
    slow = FaceEngine(config, models=engine.models)
    data = sample_bytes("two_people.jpg")
    with EnginePool(config, workers=1) as dlib_pool:
        remote = dlib_pool.analyze(data)
    local, default_remote = slow.analyze(data), pool.analyze(data)
    assert len(remote.faces) == len(local.faces) == len(default_remote.faces) == 2
    for a, b, c in zip(remote.faces, local.faces, default_remote.faces, strict=True):
        assert a.descriptor is not None
        assert b.descriptor is not None
        assert c.descriptor is not None
        assert np.array_equal(a.descriptor, b.descriptor)
        # ONNX differs from dlib in the last bits only (float32 rounding), never exactly here.
        assert not np.array_equal(c.descriptor, b.descriptor)
        assert np.abs(c.descriptor - b.descriptor).max() <= 1e-4


def test_map_analyze_keeps_order_and_returns_errors(
    pool: EnginePool, sample_bytes: Callable[[str], bytes]
) -> None:
    unreadable = OSError("cannot read")
    items: list[bytes | Exception] = [
        sample_bytes("group_t1.jpg"),
        sample_bytes("obama.jpg")[:4000],
        unreadable,
        sample_bytes("two_people.jpg"),
    ]
    results = list(pool.map_analyze(items, window=2))
    assert len(results) == 4
    first, second, third, fourth = results
    assert not isinstance(first, Exception)
    assert len(first.faces) == 6
    assert isinstance(second, TruncatedImageError)
    assert third is unreadable
    assert not isinstance(fourth, Exception)
    assert len(fourth.faces) == 2


def test_typed_errors_cross_the_process_boundary(pool: EnginePool) -> None:
    with pytest.raises(EmptyImageError, match="empty"):
        pool.analyze(b"")


def test_workers_are_separate_processes(
    pool: EnginePool, sample_bytes: Callable[[str], bytes]
) -> None:
    futures = [pool.submit(sample_bytes("obama-240p.jpg")) for _ in range(6)]
    assert all(len(f.result().faces) == 1 for f in futures)
    assert pool.workers == 2
