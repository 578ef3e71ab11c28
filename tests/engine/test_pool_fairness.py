"""The pool shares its workers between tenants (issue 18, item 9): deterministic, with a fake
engine in threads whose every task waits until the test lets it finish, so the order in which
the pool hands out work is observed exactly (no clocks).

Before: one queue in arrival order, so one organisation's backlog went first and a second
organisation's image joined the end of it (even the same batch)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from facegate.engine import pool as pool_module
from facegate.engine.core import AnalyzeItem, EngineConfig
from facegate.engine.pool import EnginePool, TenantEngine
from facegate.engine.types import Analysis
from facegate.errors import EngineBusyError
from facegate.ops.common import Enrolment, OpDeps, PageTokens


class GatedEngine:
    """Stands in for the worker function: records each task's images (their bytes are tags)
    and holds the task until :meth:`finish_one` lets one task end."""

    def __init__(self) -> None:
        self.tasks: list[list[str]] = []
        self.running: Counter[str] = Counter()  # tasks running now, by tenant (first letter)
        self.peak: Counter[str] = Counter()
        self._go = threading.Semaphore(0)
        self._lock = threading.Lock()

    def __call__(self, items: list[AnalyzeItem]) -> list[Analysis | Exception]:
        tags = [item.data.decode() for item in items]
        with self._lock:
            self.tasks.append(tags)
            self.running[tags[0][0]] += 1
            self.peak[tags[0][0]] = max(self.peak[tags[0][0]], self.running[tags[0][0]])
        assert self._go.acquire(timeout=30), "the test never let this task finish"
        with self._lock:
            self.running[tags[0][0]] -= 1
        return [Analysis(100, 100, "PNG", tag, ()) for tag in tags]

    def started(self, count: int) -> list[list[str]]:
        """Wait until ``count`` tasks have started; the tasks so far."""
        deadline = time.monotonic() + 30
        while True:
            with self._lock:
                if len(self.tasks) >= count:
                    return [list(t) for t in self.tasks]
            assert time.monotonic() < deadline, f"only {self.tasks} started"
            time.sleep(0.001)

    def finish_one(self) -> None:
        self._go.release()


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GatedEngine, ThreadPoolExecutor]]:
    engine = GatedEngine()
    threads = ThreadPoolExecutor(4)
    monkeypatch.setattr(pool_module, "_analyze_batch_in_worker", engine)
    yield engine, threads
    for _ in range(64):
        engine.finish_one()  # let anything left end
    threads.shutdown(wait=True)


def _pool(
    threads: ThreadPoolExecutor,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
    *,
    max_batch: int = 8,
    tenant_max_jobs: int = 0,
    tenant_workers: int = 0,
) -> EnginePool:
    pool = EnginePool(
        EngineConfig(),
        workers=workers,
        max_batch=max_batch,
        tenant_max_jobs=tenant_max_jobs,
        tenant_workers=tenant_workers,
    )
    monkeypatch.setattr(pool, "_get_executor", lambda: threads)
    return pool


def _sha(future: Future[Analysis]) -> str:
    return future.result(timeout=30).sha256


def test_another_tenant_goes_next_not_after_the_backlog(
    gated: tuple[GatedEngine, ThreadPoolExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, threads = gated
    pool = _pool(threads, monkeypatch, workers=1)
    a = [pool.submit(f"a{i}".encode(), tenant="org-a") for i in range(4)]  # a0 runs, 3 wait
    b = pool.submit(b"b0", tenant="org-b")  # arrives last
    assert engine.started(1) == [["a0"]]
    engine.finish_one()
    # org-b's image is the next task, alone: not behind (nor batched with) org-a's three
    assert engine.started(2) == [["a0"], ["b0"]]
    engine.finish_one()
    assert _sha(b) == "b0"
    assert engine.started(3) == [["a0"], ["b0"], ["a1", "a2", "a3"]]
    engine.finish_one()
    assert [_sha(f) for f in a] == ["a0", "a1", "a2", "a3"]


def test_tenants_take_turns_one_tenant_per_task(
    gated: tuple[GatedEngine, ThreadPoolExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, threads = gated
    pool = _pool(threads, monkeypatch, workers=1, max_batch=1)
    futures = [pool.submit(b"first", tenant="x")]
    futures += [pool.submit(f"a{i}".encode(), tenant="a") for i in range(3)]
    futures += [pool.submit(f"b{i}".encode(), tenant="b") for i in range(2)]
    futures += [pool.submit(b"c0", tenant="c")]
    for count in range(1, 8):
        engine.started(count)
        engine.finish_one()
    order = [task[0] for task in engine.started(7)]
    assert order == ["first", "a0", "b0", "c0", "a1", "b1", "a2"]
    assert all(f.result(timeout=30) for f in futures)


def test_a_tenant_over_its_job_cap_is_refused_at_once_and_others_are_not(
    gated: tuple[GatedEngine, ThreadPoolExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, threads = gated
    pool = _pool(threads, monkeypatch, workers=1, tenant_max_jobs=2)
    first = [pool.submit(b"a0", tenant="a"), pool.submit(b"a1", tenant="a")]
    with pytest.raises(EngineBusyError, match="2 images") as refused:
        pool.submit(b"a2", tenant="a")
    assert refused.value.code == "ThrottlingException"
    other = pool.submit(b"b0", tenant="b")  # another tenant's cap is its own
    for count in (1, 2, 3):
        engine.started(count)
        engine.finish_one()
    assert engine.started(3) == [["a0"], ["b0"], ["a1"]]
    assert [_sha(f) for f in (*first, other)] == ["a0", "a1", "b0"]
    late = pool.submit(b"a3", tenant="a")  # its two are done: room again
    engine.started(4)
    engine.finish_one()
    assert _sha(late) == "a3"


def test_a_cancelled_waiting_image_frees_its_place_under_the_cap(
    gated: tuple[GatedEngine, ThreadPoolExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, threads = gated
    pool = _pool(threads, monkeypatch, workers=1, tenant_max_jobs=2)
    running = pool.submit(b"a0", tenant="a")
    waiting = pool.submit(b"a1", tenant="a")
    engine.started(1)
    assert waiting.cancel()
    assert len(pool._pending) == 0
    again = pool.submit(b"a2", tenant="a")  # the cancelled one no longer counts
    engine.finish_one()
    engine.started(2)
    engine.finish_one()
    assert (_sha(running), _sha(again)) == ("a0", "a2")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_while_another_tenant_uses_the_engine_a_worker_stays_free_for_it(
    gated: tuple[GatedEngine, ThreadPoolExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, threads = gated
    clock = Clock()
    pool = _pool(threads, monkeypatch, workers=2, tenant_workers=1)
    monkeypatch.setattr(pool, "_clock", clock)
    # Alone, a tenant may use both workers.
    alone = [pool.submit(f"x{i}".encode(), tenant="x") for i in range(2)]
    assert sorted(engine.started(2)) == [["x0"], ["x1"]]  # two tasks at once (either order)
    engine.finish_one()
    engine.finish_one()
    assert [_sha(f) for f in alone] == ["x0", "x1"]
    # b used the engine a moment ago: a now gets one worker, the other stays free for b ...
    clock.now += 100.0  # x is long gone
    first_b = pool.submit(b"b0", tenant="b")
    engine.started(3)
    engine.finish_one()
    assert _sha(first_b) == "b0"
    clock.now += 5.0  # within share_window_s (10 s) of b's last image
    a = [pool.submit(f"a{i}".encode(), tenant="a") for i in range(3)]
    assert engine.started(4)[3:] == [["a0"]]
    b = pool.submit(b"b1", tenant="b")
    assert engine.started(5)[4:] == [["b1"]]  # at once: no wait behind a's images
    for _ in range(4):
        engine.finish_one()
    assert _sha(b) == "b1"
    assert [_sha(f) for f in a] == ["a0", "a1", "a2"]
    assert engine.peak["a"] == 1  # never two of a's tasks at once while b was about
    clock.now += 60.0  # b has been idle for longer than the window: a may take both again
    later = [pool.submit(f"a{i}".encode(), tenant="a") for i in (3, 4)]
    assert sorted(engine.started(9)[7:]) == [["a3"], ["a4"]]
    engine.finish_one()
    engine.finish_one()
    assert [_sha(f) for f in later] == ["a3", "a4"]
    assert engine.peak["a"] == 2


def test_the_servers_default_keeps_one_worker_of_several() -> None:
    assert EnginePool(EngineConfig(), workers=4, tenant_workers=None).tenant_workers == 3
    assert EnginePool(EngineConfig(), workers=1, tenant_workers=None).tenant_workers == 1


def test_one_tenant_alone_is_served_as_before(
    gated: tuple[GatedEngine, ThreadPoolExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, threads = gated
    pool = _pool(threads, monkeypatch, workers=1)
    futures = [pool.submit(f"{i}".encode()) for i in range(5)]
    engine.finish_one()
    assert engine.started(2) == [["0"], ["1", "2", "3", "4"]]  # the rest in one batch
    engine.finish_one()
    assert [_sha(f) for f in futures] == ["0", "1", "2", "3", "4"]
    assert pool.stats.batches == 2


def test_the_server_queues_each_request_as_its_organisation(
    gated: tuple[GatedEngine, ThreadPoolExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, threads = gated
    pool = _pool(threads, monkeypatch, workers=1, tenant_max_jobs=1)
    deps = OpDeps(
        engine=pool,
        store=None,  # type: ignore[arg-type]  # not used here
        idempotency=None,  # type: ignore[arg-type]
        matcher=EngineConfig().matcher,
        pages=PageTokens(b"k" * 32),
        region="us-east-1",
        account_id="000000000000",
    )
    mine = deps.for_caller("org-a", Enrolment(), compares_faces=False).engine
    assert mine == TenantEngine(pool, "org-a")
    assert mine.model_version == pool.model_version

    async def two_of_org_a() -> None:
        first = asyncio.ensure_future(mine.analyze_async(b"a0"))
        await asyncio.sleep(0)
        engine.started(1)
        with pytest.raises(EngineBusyError):  # org-a's one job is in the engine
            await mine.analyze_async(b"a1")
        other = deps.for_caller("org-b", Enrolment(), compares_faces=False).engine
        second = asyncio.ensure_future(other.analyze_async(b"b0"))
        await asyncio.sleep(0)
        engine.finish_one()
        engine.finish_one()
        assert (await first).sha256 == "a0"
        assert (await second).sha256 == "b0"

    asyncio.run(two_of_org_a())
