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
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from facegate.engine.core import EngineConfig, FaceEngine
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


def _analyze_in_worker(
    data: bytes, descriptors: bool, detector: DetectorKind | None, max_faces: int | None
) -> Analysis:
    return _worker_engine().analyze(
        data, descriptors=descriptors, detector=detector, max_faces=max_faces
    )


def _ping(delay_s: float) -> int:
    _worker_engine()
    time.sleep(delay_s)
    return os.getpid()


def default_workers() -> int:
    """One worker per core (``os.cpu_count()``), at least one."""
    return max(1, os.cpu_count() or 1)


class EnginePool:
    """``workers`` engine processes behind a thread-safe ``submit``/``analyze`` interface."""

    def __init__(self, config: EngineConfig = EngineConfig(), workers: int | None = None) -> None:
        self.config = config
        self.workers = workers or default_workers()
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None

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
        """Queue one image; the future raises the engine's typed errors."""
        return self._get_executor().submit(
            _analyze_in_worker, data, descriptors, detector, max_faces
        )

    def analyze(
        self,
        data: bytes,
        *,
        descriptors: bool = True,
        detector: DetectorKind | None = None,
        max_faces: int | None = None,
    ) -> Analysis:
        """Analyse one image in a worker (blocking). Same contract as ``FaceEngine.analyze``."""
        executor = self._get_executor()
        try:
            return executor.submit(
                _analyze_in_worker, data, descriptors, detector, max_faces
            ).result()
        except BrokenProcessPool as exc:
            self._reset(executor)
            raise EngineUnavailableError("An engine worker process died; retry.") from exc

    async def analyze_async(
        self,
        data: bytes,
        *,
        descriptors: bool = True,
        detector: DetectorKind | None = None,
        max_faces: int | None = None,
    ) -> Analysis:
        """``analyze`` for an event loop: the loop waits on the worker without blocking."""
        executor = self._get_executor()
        try:
            future = executor.submit(_analyze_in_worker, data, descriptors, detector, max_faces)
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            self._reset(executor)
            raise EngineUnavailableError("An engine worker process died; retry.") from exc

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
        """Stop the workers (waits for running calls)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> EnginePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _outcome(fut: Future[Analysis] | Exception) -> Analysis | Exception:
    if isinstance(fut, Exception):
        return fut
    try:
        return fut.result()
    except BrokenProcessPool as exc:
        return EngineUnavailableError(f"An engine worker process died: {exc}.")
    except Exception as exc:  # typed engine errors are returned to the caller, in order
        return exc
