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

The queue has no bound of its own: in the server, ``limits.Admission`` (FACEGATE_MAX_INFLIGHT,
64 by default) bounds the requests in flight, and each request awaits at most one engine call at
a time (CompareFaces awaits its two images one after the other), so at most that many requests
wait here (a request cancelled while it waits, say by a client that went away, leaves the queue
at once). With FACEGATE_MAX_INFLIGHT=0 (no ceiling) nothing bounds it. Direct users of
``submit`` bound their own submissions (``map_analyze`` keeps a window).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from functools import partial

from facegate.engine.core import AnalyzeItem, EngineConfig, FaceEngine
from facegate.engine.embed import dlib_model_version
from facegate.engine.types import Analysis, DetectorKind
from facegate.errors import EngineUnavailableError

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


class EnginePool:
    """``workers`` engine processes behind a thread-safe ``submit``/``analyze`` interface.

    ``max_batch`` (1-64, default :data:`DEFAULT_MAX_BATCH`): the most queued requests one worker
    task takes (see the module docstring); 1 sends every request alone (no batching). Larger
    batches amortise more per-call overhead but make the first image of a batch wait for the
    last one's detection. :attr:`stats` counts what was sent.
    """

    def __init__(
        self,
        config: EngineConfig = EngineConfig(),
        workers: int | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        if not 1 <= max_batch <= MAX_BATCH_LIMIT:
            raise ValueError(f"max_batch must be between 1 and {MAX_BATCH_LIMIT}, got {max_batch}.")
        self.config = config
        self.workers = workers or default_workers()
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        # Guarded by _lock: worker tasks sent and not yet finished, requests waiting for one.
        self._busy = 0
        self._pending: deque[_Job] = deque()
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

    def submit(
        self,
        data: bytes,
        *,
        descriptors: bool = True,
        detector: DetectorKind | None = None,
        max_faces: int | None = None,
    ) -> Future[Analysis]:
        """Queue one image; the future raises the engine's typed errors (a dead worker:
        :class:`EngineUnavailableError`). Never waits for engine work: the image goes to a
        worker at once while one is free, else it waits in the pool's queue for the next free
        one (module docstring). Cancelling the future while it waits there drops the image."""
        job = _Job(AnalyzeItem(data, descriptors, detector, max_faces), Future())
        batch: list[_Job] | None = None
        with self._lock:
            if self._busy >= self.workers:
                self._pending.append(job)
                self._stats = replace(self._stats, queued=self._stats.queued + 1)
            else:
                self._busy += 1
                job.future.set_running_or_notify_cancel()  # not returned yet: not cancelled
                batch = [job]
        if batch is None:
            job.future.add_done_callback(partial(self._forget, job))
            return job.future
        self._run(batch)
        return job.future

    def _forget(self, job: _Job, future: Future[Analysis]) -> None:
        """A waiting job's done callback: a cancelled one leaves the queue at once, so the queue
        never holds more than the requests still waiting (see the module docstring)."""
        if future.cancelled():
            with self._lock:
                if job in self._pending:
                    self._pending.remove(job)

    def _next_batch(self) -> list[_Job] | None:
        """After a worker task finished: the queued jobs for the next task (which keeps the
        finished one's slot, counted in ``_busy``), or None (the slot is given back): its share
        of the queue, ``ceil(queued / workers)`` jobs, at most ``max_batch``. Jobs whose caller
        cancelled them are dropped here."""
        with self._lock:
            # A fair share: the other workers are busy too (else nothing would wait) and each
            # takes its own share when it finishes, so no worker idles while one works through
            # a batch that holds every waiting request.
            share = min(self.max_batch, -(-len(self._pending) // self.workers))
            batch: list[_Job] = []
            while self._pending and len(batch) < share:
                job = self._pending.popleft()
                if job.future.set_running_or_notify_cancel():
                    batch.append(job)
            if not batch:
                self._busy -= 1
                return None
            return batch

    def _run(self, batch: list[_Job] | None) -> None:
        """Send ``batch`` (running futures, one slot) as one worker task. Called without
        ``_lock``: a future that is already done runs its callbacks in the calling thread."""
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
                batch = self._next_batch()
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
        self._run(self._next_batch())

    def analyze(
        self,
        data: bytes,
        *,
        descriptors: bool = True,
        detector: DetectorKind | None = None,
        max_faces: int | None = None,
    ) -> Analysis:
        """Analyse one image in a worker (blocking). Same contract as ``FaceEngine.analyze``;
        a worker that died raises :class:`EngineUnavailableError` (the pool then starts anew)."""
        return self.submit(
            data, descriptors=descriptors, detector=detector, max_faces=max_faces
        ).result()

    async def analyze_async(
        self,
        data: bytes,
        *,
        descriptors: bool = True,
        detector: DetectorKind | None = None,
        max_faces: int | None = None,
    ) -> Analysis:
        """``analyze`` for an event loop: the loop waits on the worker without blocking."""
        future = self.submit(data, descriptors=descriptors, detector=detector, max_faces=max_faces)
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
            queued = list(self._pending)
            self._pending.clear()
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
