"""Worker processes return exactly what the in-process engine returns (for the same runtime),
alone or in the pool's batches."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

from facegate.engine.core import AnalyzeItem, DescriptorRuntime, EngineConfig, FaceEngine
from facegate.engine.pool import EnginePool, PoolStats
from facegate.engine.types import Analysis, DetectorKind
from facegate.errors import EmptyImageError, EngineUnavailableError, TruncatedImageError

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


# Batching. A pool of ONE worker makes batches deterministic: the first request goes at once and
# everything submitted while it runs (microseconds apart, against tens of milliseconds of work)
# waits, then goes as one task of up to max_batch requests.


def _items(read: Callable[[str], bytes]) -> list[AnalyzeItem]:
    """Nine requests with varied options (each must be honoured inside a batch)."""
    return [
        AnalyzeItem(read("group_t1.jpg")),
        AnalyzeItem(read("two_people.jpg"), max_faces=1),
        AnalyzeItem(read("obama.jpg"), descriptors=False),
        AnalyzeItem(read("coffee.png"), detector=DetectorKind.HOG),
        AnalyzeItem(read("group_t1.jpg"), max_faces=2),
        AnalyzeItem(read("two_people.jpg")),
        AnalyzeItem(read("obama.jpg"), detector=DetectorKind.MTCNN),
        AnalyzeItem(read("group_t1.jpg"), descriptors=False),
        AnalyzeItem(read("obama-240p.jpg")),
    ]


def _submit(pool: EnginePool, item: AnalyzeItem) -> Future[Analysis]:
    return pool.submit(
        item.data, descriptors=item.descriptors, detector=item.detector, max_faces=item.max_faces
    )


def _delta(before: PoolStats, after: PoolStats) -> tuple[int, int, int]:
    return (
        after.batches - before.batches,
        after.items - before.items,
        after.queued - before.queued,
    )


def _assert_same(remote: Analysis, local: Analysis) -> None:
    assert remote.sha256 == local.sha256
    assert remote.found_by == local.found_by
    assert [f.detected for f in remote.faces] == [f.detected for f in local.faces]
    for a, b in zip(remote.faces, local.faces, strict=True):
        if b.descriptor is None:
            assert a.descriptor is None
        else:
            assert a.descriptor is not None
            assert np.array_equal(a.descriptor, b.descriptor)  # bit-identical, not close


@pytest.fixture
def single() -> Iterator[EnginePool]:
    with EnginePool(EngineConfig(), workers=1) as p:
        p.warm_up()
        yield p


def test_requests_that_arrive_together_share_one_task_and_equal_one_at_a_time(
    single: EnginePool, engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    items = _items(sample_bytes)
    before = single.stats
    futures = [_submit(single, item) for item in items]
    results = [f.result() for f in futures]
    after = single.stats
    # The first went at once, the eight others waited and then went together.
    assert _delta(before, after) == (2, 9, 8)
    assert after.largest_batch == 8
    faces = [len(r.faces) for r in results]
    assert faces == [6, 1, 1, 0, 2, 2, 1, 6, 1]  # max_faces honoured
    described = [all(f.descriptor is not None for f in r.faces) for r in results]
    assert described == [True, True, False, True, True, True, True, False, True]
    assert results[6].found_by == "mtcnn"  # the detector asked for
    for item, remote in zip(items, results, strict=True):
        local = engine.analyze(
            item.data,
            descriptors=item.descriptors,
            detector=item.detector,
            max_faces=item.max_faces,
        )
        _assert_same(remote, local)


def test_analyze_many_equals_analyze_in_process(
    engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    items = [*_items(sample_bytes), AnalyzeItem(b"")]
    outcomes = engine.analyze_many(items)
    assert isinstance(outcomes[-1], EmptyImageError)
    for item, outcome in zip(items[:-1], outcomes[:-1], strict=True):
        assert isinstance(outcome, Analysis)
        local = engine.analyze(
            item.data,
            descriptors=item.descriptors,
            detector=item.detector,
            max_faces=item.max_faces,
        )
        _assert_same(outcome, local)


def test_analyze_many_equals_analyze_bit_for_bit_on_dlib_too(
    engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    slow = FaceEngine(EngineConfig(descriptor_runtime=DescriptorRuntime.DLIB), models=engine.models)
    items = [AnalyzeItem(sample_bytes(n)) for n in ("two_people.jpg", "group_t1.jpg", "obama.jpg")]
    outcomes = slow.analyze_many(items)
    assert [len(o.faces) for o in outcomes if isinstance(o, Analysis)] == [2, 6, 1]
    for item, outcome in zip(items, outcomes, strict=True):
        assert isinstance(outcome, Analysis)
        _assert_same(outcome, slow.analyze(item.data))


def test_a_bad_image_in_a_batch_fails_alone(
    single: EnginePool, sample_bytes: Callable[[str], bytes]
) -> None:
    good = sample_bytes("two_people.jpg")
    before = single.stats
    first = single.submit(sample_bytes("group_t1.jpg"))
    batch = [
        single.submit(good),
        single.submit(sample_bytes("obama.jpg")[:4000]),
        single.submit(b""),
        single.submit(good, max_faces=1),
    ]
    assert len(first.result().faces) == 6
    assert len(batch[0].result().faces) == 2
    with pytest.raises(TruncatedImageError):
        batch[1].result()
    with pytest.raises(EmptyImageError, match="empty"):
        batch[2].result()
    assert len(batch[3].result().faces) == 1
    assert _delta(before, single.stats) == (2, 5, 4)


def test_a_lone_request_is_sent_at_once(
    single: EnginePool, sample_bytes: Callable[[str], bytes]
) -> None:
    data = sample_bytes("obama-240p.jpg")
    for _ in range(3):
        before = single.stats
        assert len(single.analyze(data).faces) == 1
        # One task of one request that never waited in the queue.
        assert _delta(before, single.stats) == (1, 1, 0)


def test_submits_from_many_threads_all_complete_in_fewer_tasks(
    pool: EnginePool, engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    data = sample_bytes("two_people.jpg")
    local = engine.analyze(data)
    before = pool.stats
    with ThreadPoolExecutor(4) as threads:
        futures = list(threads.map(lambda _: pool.submit(data), range(24)))
    for future in futures:
        _assert_same(future.result(), local)
    batches, items, queued = _delta(before, pool.stats)
    assert items == 24
    assert queued >= 20  # two workers: at most a few found a free one
    assert batches < items


def test_max_batch_1_sends_every_request_alone(sample_bytes: Callable[[str], bytes]) -> None:
    with EnginePool(EngineConfig(), workers=1, max_batch=1) as alone:
        futures = [alone.submit(sample_bytes("obama-240p.jpg")) for _ in range(4)]
        assert all(len(f.result().faces) == 1 for f in futures)
        stats = alone.stats
    assert (stats.batches, stats.items, stats.queued, stats.largest_batch) == (4, 4, 3, 1)
    with pytest.raises(ValueError, match="max_batch must be between 1 and 64, got 0"):
        EnginePool(EngineConfig(), workers=1, max_batch=0)


def test_a_worker_death_fails_every_request_of_its_batch_then_the_pool_recovers(
    single: EnginePool, sample_bytes: Callable[[str], bytes]
) -> None:
    data = sample_bytes("group_t1.jpg")
    before = single.stats
    first = single.submit(data)
    batch = [single.submit(data) for _ in range(4)]
    assert len(first.result().faces) == 6
    deadline = time.monotonic() + 10
    while single.stats.batches - before.batches < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert _delta(before, single.stats) == (2, 5, 4)  # the four are now one running task
    executor = single._executor
    assert executor is not None
    for pid in list(executor._processes):
        os.kill(pid, signal.SIGKILL)
    for future in batch:
        with pytest.raises(EngineUnavailableError, match="worker process died"):
            future.result(timeout=30)
    assert single._executor is not executor  # replaced: the next call gets new workers
    assert len(single.analyze(sample_bytes("obama-240p.jpg")).faces) == 1


def test_a_request_cancelled_while_waiting_is_never_sent(
    single: EnginePool, sample_bytes: Callable[[str], bytes]
) -> None:
    data = sample_bytes("group_t1.jpg")
    before = single.stats
    first = single.submit(data)
    waiting = [single.submit(data) for _ in range(3)]
    assert waiting[1].cancel()
    assert len(single._pending) == 2  # it left the queue at once
    assert len(first.result().faces) == 6
    assert [len(f.result().faces) for f in (waiting[0], waiting[2])] == [6, 6]
    assert _delta(before, single.stats) == (2, 3, 3)  # three waited, two were sent


def test_close_cancels_requests_still_waiting(sample_bytes: Callable[[str], bytes]) -> None:
    closing = EnginePool(EngineConfig(), workers=1)
    closing.warm_up()
    running = closing.submit(sample_bytes("group_t1.jpg"))
    waiting = [closing.submit(sample_bytes("group_t1.jpg")) for _ in range(3)]
    closing.close()
    assert len(running.result().faces) == 6  # close waits for running work
    assert all(f.cancelled() for f in waiting)
