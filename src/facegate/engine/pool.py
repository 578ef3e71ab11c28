"""A pool of worker processes, each holding its own :class:`FaceEngine`.

dlib releases no GIL worth having and is single-threaded, so the engine scales across cores with
processes, not threads: one worker per core by default, each running the ONNX descriptor runtime
(when ``auto`` picks it) with one intra-op thread (``engine.runtime`` explains why). Each worker
loads the models and chooses its descriptor runtime once (in its initializer) and then serves
``analyze`` calls; results are the same frozen dataclasses as the in-process path with the same
configuration, bit-identical (tests/engine/test_pool.py checks it).

Workers are started with ``spawn`` (no fork of a process that may hold threads or locks). If a
worker dies (killed, out of memory), the call that was running fails with
:class:`EngineUnavailableError` and the pool replaces its executor for the next call.

Opportunistic batching: requests that arrive while every worker is busy share descriptor calls.
A request is sent to a worker at once while fewer than ``workers`` tasks are in flight (a lone
request never waits: there is no timer); otherwise it joins a FIFO queue, and each time a task
finishes the pool sends that worker its share of the queue (``ceil(queued / workers)``, at most
``max_batch`` requests; the other workers take theirs as they finish) as ONE task
(:meth:`FaceEngine.analyze_many`: decode and detect each image, then one embedder call for the
faces of all). Every request keeps its own options and its own outcome; one bad image fails only
itself, and a worker death fails every request of its batch with ``EngineUnavailableError``.
Results are bit-identical to one-at-a-time (``FaceEngine.analyze_many``), so batching changes
only speed: ONNX costs 4.7 ms a face alone and 4.4 ms in batches of 8 (one thread), and the queue
gives a worker its next images without a round trip per image. A batch's results come back
together, so a request may wait for the detection of the others in its batch. Measured with 8
concurrent submitters on a 2-worker pool (``bench/batching.py``, docs/benchmarks.md), neither
throughput nor latency moved beyond noise (0.98x and 1.08x images/s, p50 1.00x and 0.96x), since
detection (30-80 ms an image), not the descriptor, is most of an image's time; a lone request
was not delayed. ``max_batch=1`` turns batching off.

Fair shares between tenants (the server's organisations, :meth:`EnginePool.for_tenant`): the
queue is one FIFO per tenant, and a worker that finishes takes its next task from the tenant
with the fewest tasks running, then the one served longest ago (round robin), one tenant's images
per task. Two bounds per tenant:

* ``tenant_workers``: while another tenant uses the engine (has images waiting or running, or
  had one within ``share_window_s``, 10 s), one tenant occupies at most this many workers, so
  the others find a worker free instead of waiting behind its images. Alone, a tenant may use
  every worker (no throughput lost to an idle reservation when there is no one to share with).
  The server keeps one worker for the others (``workers - 1``, FACEGATE_ENGINE_TENANT_WORKERS;
  nothing to keep with one worker). The first image of a tenant that was idle may still wait
  for one task of the others: running work is never interrupted.
* ``tenant_max_jobs``: the most images one tenant may have waiting or running; one more is
  refused at once with :class:`~facegate.errors.EngineBusyError` (``ThrottlingException`` on
  the wire), so one organisation cannot fill the queue (nor, through it, the server's
  requests in flight).

Measured (``bench/engine_fairness.py``, 2 workers on a shared 2-core machine, organisation A
keeping four 6324x6324 16-bit PNGs in flight, B's DetectFaces of a 640x480 photo, medians of 12):
before, one queue in arrival order, B's latency went from 0.04 s to 12.5 s (p90 33.9 s); with
turns alone, 2.7 s (B waits for one of A's running images); with a worker kept for the others
(the server's default), 0.07 s, B alone 0.09 s. With one tenant (the default ``""``),
scheduling is as before.

The queue has no bound of its own beyond ``tenant_max_jobs``: in the server,
``limits.Admission`` (FACEGATE_MAX_INFLIGHT, 64 by default) bounds the requests in flight, and
each request awaits at most one engine call at a time (CompareFaces awaits its two images one
after the other), so at most that many requests wait here (a request cancelled while it waits,
say by a client that went away, leaves the queue at once). With FACEGATE_MAX_INFLIGHT=0 (no
ceiling) only the tenant bound does. Direct users of ``submit`` bound their own submissions
(``map_analyze`` keeps a window).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from functools import partial

from facegate.engine.core import AnalyzeItem, EngineConfig, FaceEngine
from facegate.engine.embed import dlib_model_version
from facegate.engine.types import Analysis, DetectorKind
from facegate.errors import EngineBusyError, EngineUnavailableError

# Per-process state of a worker: the one engine that process serves with. It is set once by the
# initializer in each child process and never in the parent (the documented exception to "no
# mutable module globals": a process pool has no other place to keep a per-process object).
_WORKER_ENGINE: list[FaceEngine] = []


def _init_worker(config: EngineConfig) -> None:
    _exit_with_parent(os.getppid())
    _WORKER_ENGINE.append(FaceEngine(config))


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """End this worker within ``every_s`` once its parent is gone (killed with SIGKILL, or
    stopped by a signal before it could shut the pool down): an orphaned worker would hold its
    models' memory for ever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(0)

    threading.Thread(target=watch, name="facegate-parent-watch", daemon=True).start()


def _worker_engine() -> FaceEngine:
    if not _WORKER_ENGINE:
        raise EngineUnavailableError("The engine worker was not initialised.")
    return _WORKER_ENGINE[0]


def _analyze_batch_in_worker(items: list[AnalyzeItem]) -> list[Analysis | Exception]:
    return _worker_engine().analyze_many(items)


def _ping(delay_s: float) -> int:
    _worker_engine()
    time.sleep(delay_s)
    return os.getpid()


def default_workers() -> int:
    """One worker per core (``os.cpu_count()``), at least one."""
    return max(1, os.cpu_count() or 1)


DEFAULT_MAX_BATCH = 8
"""Requests per worker task when requests queue (``EnginePool.max_batch``, set by
FACEGATE_ENGINE_MAX_BATCH). 8 already takes most of the ONNX batch gain (4.9 -> 4.3 ms a face)
while one slow image holds back at most 7 others; 1 turns batching off."""

SHARE_WINDOW_S = 10.0
"""How long after its last image a tenant still counts as using the engine, for
``tenant_workers`` (so a worker stays free between one organisation's requests)."""

MAX_BATCH_LIMIT = 64
"""The largest ``max_batch`` accepted: a batch's decoded images are in one worker's memory at
once (up to 64 x the decoder's pixel limit)."""


@dataclass(frozen=True)
class PoolStats:
    """What the pool has sent to its workers since it was made (a snapshot).

    ``batches``: worker tasks; ``items``: requests in them; ``queued``: requests that waited for
    a busy worker (the others were sent at once); ``largest_batch``: most requests in one task.
    """

    batches: int = 0
    items: int = 0
    queued: int = 0
    largest_batch: int = 0


@dataclass(frozen=True, eq=False)  # compared by identity (deque.remove)
class _Job:
    item: AnalyzeItem
    future: Future[Analysis]
    tenant: str = ""


class _TenantQueues:
    """Waiting jobs: one FIFO per tenant, tenants in the order their queues appeared. Not
    thread-safe (the pool's lock guards it)."""

    def __init__(self) -> None:
        self._queues: OrderedDict[str, deque[_Job]] = OrderedDict()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def tenants(self) -> list[str]:
        """The tenants with waiting jobs, oldest queue first."""
        return list(self._queues)

    def waiting(self, tenant: str) -> int:
        queue = self._queues.get(tenant)
        return len(queue) if queue is not None else 0

    def append(self, job: _Job) -> None:
        """Queue ``job`` behind its tenant's others."""
        self._queues.setdefault(job.tenant, deque()).append(job)
        self._count += 1

    def remove(self, job: _Job) -> None:
        """Take ``job`` out if it is still waiting."""
        queue = self._queues.get(job.tenant)
        if queue is not None and job in queue:
            queue.remove(job)
            self._count -= 1
            if not queue:
                del self._queues[job.tenant]

    def take(self, tenant: str, count: int) -> list[_Job]:
        """Up to ``count`` of ``tenant``'s jobs, oldest first, marked running; jobs cancelled
        while waiting are dropped here (the result may be empty)."""
        queue = self._queues.get(tenant)
        batch: list[_Job] = []
        while queue and len(batch) < count:
            job = queue.popleft()
            self._count -= 1
            if job.future.set_running_or_notify_cancel():
                batch.append(job)
        if queue is not None and not queue:
            del self._queues[tenant]
        return batch

    def clear(self) -> list[_Job]:
        """Every waiting job, taken out."""
        jobs = [job for queue in self._queues.values() for job in queue]
        self._queues.clear()
        self._count = 0
        return jobs


@dataclass(frozen=True)
class TenantEngine:
    """The pool as one tenant's requests see it (``ops.common.AsyncEngine``): each image is
    queued as ``tenant``'s (:meth:`EnginePool.for_tenant`)."""

    pool: EnginePool
    tenant: str

    @property
    def model_version(self) -> str:
        return self.pool.model_version

    def for_tenant(self, tenant: str) -> TenantEngine:
        return TenantEngine(self.pool, tenant)

    async def analyze_async(
        self,
        data: bytes,
        *,
        descriptors: bool = True,
        detector: DetectorKind | None = None,
        max_faces: int | None = None,
        attributes: frozenset[str] = frozenset(),
        model: str | None = None,
    ) -> Analysis:
        return await self.pool.analyze_async(
            data,
            descriptors=descriptors,
            detector=detector,
            max_faces=max_faces,
            attributes=attributes,
            tenant=self.tenant,
            model=model,
        )


class EnginePool:
    """``workers`` engine processes behind a thread-safe ``submit``/``analyze`` interface.

    ``max_batch`` (1-64, default :data:`DEFAULT_MAX_BATCH`): the most queued requests one worker
    task takes (see the module docstring); 1 sends every request alone (no batching). Larger
    batches amortise more per-call overhead but make the first image of a batch wait for the
    last one's detection. ``tenant_max_jobs`` and ``tenant_workers`` (0: no bound; for
    ``tenant_workers`` None: ``workers - 1``, at least 1) bound each tenant's share (module
    docstring). :attr:`stats` counts what was sent.
    """

    def __init__(
        self,
        config: EngineConfig = EngineConfig(),
        workers: int | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        *,
        tenant_max_jobs: int = 0,
        tenant_workers: int | None = 0,
        share_window_s: float = SHARE_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= max_batch <= MAX_BATCH_LIMIT:
            raise ValueError(f"max_batch must be between 1 and {MAX_BATCH_LIMIT}, got {max_batch}.")
        if tenant_max_jobs < 0 or (tenant_workers is not None and tenant_workers < 0):
            raise ValueError("tenant_max_jobs and tenant_workers must be 0 (no bound) or more.")
        self.config = config
        self.workers = workers or default_workers()
        self.max_batch = max_batch
        self.tenant_max_jobs = tenant_max_jobs
        # None: all workers but one for the others (at least one)
        self.tenant_workers = max(1, self.workers - 1) if tenant_workers is None else tenant_workers
        self.share_window_s = share_window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        # Guarded by _lock: worker tasks sent and not yet finished, requests waiting for one,
        # and per tenant its worker tasks running and its jobs waiting or running.
        self._busy = 0
        self._pending = _TenantQueues()
        self._running: Counter[str] = Counter()
        self._jobs: Counter[str] = Counter()
        # When each tenant with work in the pool last started a task (a counter, not a clock).
        self._served: dict[str, int] = {}
        self._turn = 0
        # When each tenant last submitted or finished an image (for share_window_s).
        self._seen: dict[str, float] = {}
        self._stats = PoolStats()

    def _get_executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
                    initargs=(self.config,),
                )
            return self._executor

    def _reset(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)

    @property
    def stats(self) -> PoolStats:
        """Counts of worker tasks and requests sent so far (thread-safe snapshot)."""
        with self._lock:
            return self._stats

    def warm_up(self, timeout_s: float = 120.0) -> None:
        """Start every worker and wait until each has loaded its models."""
        executor = self._get_executor()
        deadline = time.monotonic() + timeout_s
        pids: set[int] = set()
        while len(pids) < self.workers and time.monotonic() < deadline:
            futures = [executor.submit(_ping, 0.2) for _ in range(self.workers)]
            pids.update(f.result(timeout=max(1.0, deadline - time.monotonic())) for f in futures)

    def for_tenant(self, tenant: str) -> TenantEngine:
        """This pool for one tenant's requests (the server: one per organisation)."""
        return TenantEngine(self, tenant)

    def submit(
        self,
        data: bytes,
        *,
        descriptors: bool = True,
        detector: DetectorKind | None = None,
        max_faces: int | None = None,
        tenant: str = "",
        attributes: frozenset[str] = frozenset(),
        model: str | None = None,
    ) -> Future[Analysis]:
        """Queue one image of ``tenant`` (``attributes``: the facial attributes to estimate for
        each face, by the worker's own estimators, loaded once per worker; ``model``: the
        descriptor model's version, None for the engine's dlib model, each model loaded once
        per worker on first use); the future raises
        the engine's typed errors (a dead worker: :class:`EngineUnavailableError`). Never waits
        for engine work: the image goes to a worker at once while one is free (and ``tenant``
        is within ``tenant_workers``), else it
        waits in its tenant's queue (module docstring). Cancelling the future while it waits
        there drops the image. Raises :class:`EngineBusyError` at once when ``tenant`` already
        has ``tenant_max_jobs`` images waiting or running."""
        item = AnalyzeItem(data, descriptors, detector, max_faces, frozenset(attributes), model)
        job = _Job(item, Future(), tenant)
        batch: list[_Job] | None = None
        with self._lock:
            if 0 < self.tenant_max_jobs <= self._jobs[tenant]:
                raise EngineBusyError(
                    f"The organisation already has {self.tenant_max_jobs} images waiting for or "
                    "in the engine; retry later."
                )
            self._jobs[tenant] += 1
            self._seen[tenant] = self._clock()
            if self._busy >= self.workers or not self._may_run(tenant):
                self._pending.append(job)
                self._stats = replace(self._stats, queued=self._stats.queued + 1)
            else:
                self._busy += 1
                self._started(tenant)
                job.future.set_running_or_notify_cancel()  # not returned yet: not cancelled
                batch = [job]
        job.future.add_done_callback(partial(self._done, job))
        if batch is not None:
            self._run(batch)
        return job.future

    def _may_run(self, tenant: str) -> bool:
        """Whether ``tenant`` may start one more worker task (under ``_lock``): below its
        ``tenant_workers``, or while no other tenant uses the engine."""
        if not self.tenant_workers or self._running[tenant] < self.tenant_workers:
            return True
        return not self._others_active(tenant)

    def _others_active(self, tenant: str) -> bool:
        """Whether a tenant other than ``tenant`` has images here or had one within
        ``share_window_s`` (under ``_lock``; forgets tenants idle for longer)."""
        now = self._clock()
        active = False
        for other, seen in list(self._seen.items()):
            if self._jobs[other] > 0 or now - seen < self.share_window_s:
                active = active or other != tenant
            else:
                del self._seen[other]
        return active

    def _done(self, job: _Job, future: Future[Analysis]) -> None:
        """Every job's done callback: a job cancelled while it waits leaves the queue at once,
        so the queue never holds more than the requests still waiting (see the module
        docstring), and its tenant's count goes down."""
        with self._lock:
            if future.cancelled():
                self._pending.remove(job)
            self._jobs[job.tenant] -= 1
            if self._jobs[job.tenant] <= 0:
                del self._jobs[job.tenant]
            self._seen[job.tenant] = self._clock()

    def _started(self, tenant: str) -> None:
        """``tenant`` starts a worker task (under ``_lock``)."""
        self._running[tenant] += 1
        self._turn += 1
        self._served[tenant] = self._turn

    def _next_batch(self, finished: str) -> list[_Job] | None:
        """After a worker task of tenant ``finished`` ended: the jobs of the next task (which
        keeps the finished one's slot, counted in ``_busy``), or None (the slot is given back).

        The tenants take turns: of those with waiting jobs that may run, the one with the fewest
        tasks running, then the one served longest ago (a tenant new to the pool first), gets
        the task: its share of its own queue (``ceil(waiting / workers)``, at most
        ``max_batch``; the other workers take theirs as they finish). Jobs whose caller
        cancelled them are dropped here."""
        with self._lock:
            self._running[finished] -= 1
            if self._running[finished] <= 0:
                del self._running[finished]
                if not self._pending.waiting(finished):
                    self._served.pop(finished, None)  # no work left here: forget its turn
            while True:
                ready = [t for t in self._pending.tenants() if self._may_run(t)]
                if not ready:
                    self._busy -= 1
                    return None
                tenant = min(ready, key=lambda t: (self._running[t], self._served.get(t, 0)))
                share = min(self.max_batch, -(-self._pending.waiting(tenant) // self.workers))
                batch = self._pending.take(tenant, share)
                if batch:
                    self._started(tenant)
                    return batch

    def _run(self, batch: list[_Job] | None) -> None:
        """Send ``batch`` (running futures of one tenant, one slot) as one worker task. Called
        without ``_lock``: a future that is already done runs its callbacks in the calling
        thread."""
        while batch is not None:
            with self._lock:
                self._stats = replace(
                    self._stats,
                    batches=self._stats.batches + 1,
                    items=self._stats.items + len(batch),
                    largest_batch=max(self._stats.largest_batch, len(batch)),
                )
            executor: ProcessPoolExecutor | None = None
            try:
                executor = self._get_executor()
                task = executor.submit(_analyze_batch_in_worker, [j.item for j in batch])
            except Exception as exc:
                # A broken (or concurrently closed) executor refuses the task: nothing ran.
                if isinstance(exc, BrokenProcessPool) and executor is not None:
                    self._reset(executor)
                _settle(batch, _failures(exc, len(batch)))
                batch = self._next_batch(batch[0].tenant)
                continue
            task.add_done_callback(partial(self._finished, executor, batch))
            return

    def _finished(
        self,
        executor: ProcessPoolExecutor,
        batch: list[_Job],
        task: Future[list[Analysis | Exception]],
    ) -> None:
        """A worker task's done callback (in the executor's manager thread, or in the thread
        that added it if it was already done): settle its jobs, then send the next batch."""
        try:
            outcomes = task.result()
        except BrokenProcessPool as exc:
            self._reset(executor)
            outcomes = _failures(exc, len(batch))
        except BaseException as exc:  # cancelled by close(), or the task itself failed
            outcomes = _failures(exc, len(batch))
        _settle(batch, outcomes)
        self._run(self._next_batch(batch[0].tenant))

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
        """Analyse one image in a worker (blocking). Same contract as ``FaceEngine.analyze``;
        a worker that died raises :class:`EngineUnavailableError` (the pool then starts anew)."""
        return self.submit(
            data,
            descriptors=descriptors,
            detector=detector,
            max_faces=max_faces,
            attributes=attributes,
            model=model,
        ).result()

    async def analyze_async(
        self,
        data: bytes,
        *,
        descriptors: bool = True,
        detector: DetectorKind | None = None,
        max_faces: int | None = None,
        tenant: str = "",
        attributes: frozenset[str] = frozenset(),
        model: str | None = None,
    ) -> Analysis:
        """``analyze`` for an event loop: the loop waits on the worker without blocking."""
        future = self.submit(
            data,
            descriptors=descriptors,
            detector=detector,
            max_faces=max_faces,
            tenant=tenant,
            attributes=attributes,
            model=model,
        )
        return await asyncio.wrap_future(future)

    @property
    def model_version(self) -> str:
        """The descriptor model's version (as ``FaceEngine.model_version``), without loading it."""
        return dlib_model_version(self.config.flip_tta)

    def map_analyze(
        self,
        items: Iterable[bytes | Exception],
        *,
        descriptors: bool = True,
        window: int | None = None,
    ) -> Iterator[Analysis | Exception]:
        """Analyse many images, yielding results in input order; errors are yielded, not raised.

        An item that is already an exception (say, a file that could not be read) is passed
        through in its place. At most ``window`` images (default 4 per worker) are in flight, so
        memory stays bounded for long inputs.
        """
        window = window or 4 * self.workers
        pending: deque[Future[Analysis] | Exception] = deque()
        for item in items:
            pending.append(
                item if isinstance(item, Exception) else self.submit(item, descriptors=descriptors)
            )
            if len(pending) >= window:
                yield _outcome(pending.popleft())
        while pending:
            yield _outcome(pending.popleft())

    def close(self) -> None:
        """Stop the workers: waits for the calls sent to them; requests still waiting in the
        queue are cancelled (their futures raise ``CancelledError``). A later call starts new
        workers."""
        with self._lock:
            executor, self._executor = self._executor, None
            queued = self._pending.clear()
        for job in queued:
            job.future.cancel()
        if executor is not None:
            # Tasks already sent are the "running" calls (the executor holds no others): let
            # them finish rather than cancel one its manager thread has not picked up yet.
            executor.shutdown(wait=True)

    def __enter__(self) -> EnginePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _failures(exc: BaseException, count: int) -> list[Analysis | Exception]:
    """The outcome of each of ``count`` jobs whose worker task failed as a whole."""
    if isinstance(exc, BrokenProcessPool):
        message = "An engine worker process died; retry."
    elif isinstance(exc, CancelledError):
        message = "The engine pool was closed before this image was analysed; retry."
    elif isinstance(exc, Exception):
        return [exc] * count
    else:
        message = f"The engine task failed: {type(exc).__name__}."
    failures: list[Analysis | Exception] = []
    for _ in range(count):
        error = EngineUnavailableError(message)
        error.__cause__ = exc
        failures.append(error)
    return failures


def _settle(batch: list[_Job], outcomes: list[Analysis | Exception]) -> None:
    """Give each job its outcome (a list of the wrong length fails them all)."""
    if len(outcomes) != len(batch):
        mismatch = EngineUnavailableError(
            f"The engine returned {len(outcomes)} results for {len(batch)} images."
        )
        outcomes = [mismatch] * len(batch)
    for job, outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, Exception):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(outcome)


def _outcome(fut: Future[Analysis] | Exception) -> Analysis | Exception:
    if isinstance(fut, Exception):
        return fut
    try:
        return fut.result()
    except Exception as exc:  # typed engine errors (a dead worker's too) are returned, in order
        return exc
