"""Group commit: items submitted from several threads at once are written in one transaction.

Each :meth:`GroupCommit.submit` queues its item and returns only once a transaction holding it
has committed (or raises what that transaction raised): durability is the same as one
transaction per item. The first caller to find no transaction in progress becomes the leader:
it takes every item queued by then, its own included, and commits them together; callers that
queue meanwhile wait, and the next leader takes them all. Under load a commit (and its fsync,
with SQLite's ``synchronous=FULL``) is shared by the requests that arrived while the last one
ran; a lone request commits alone, as before, and waits for nobody.

A group whose transaction fails is retried one item per transaction, so each caller gets its
own item's outcome (one bad row never fails another caller's).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class _Slot(Generic[T]):
    __slots__ = ("error", "item", "settled")

    def __init__(self, item: T) -> None:
        self.item = item
        self.error: BaseException | None = None
        self.settled = False


class GroupCommit(Generic[T]):
    """Calls ``commit(items)`` (one transaction writing every item) for groups of submitted
    items; see the module docstring. Thread-safe."""

    def __init__(self, commit: Callable[[Sequence[T]], None]) -> None:
        self._commit = commit
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[_Slot[T]] = []
        self._leading = False
        self.commits = 0
        """Transactions committed (for benchmarks and tests)."""

    def submit(self, item: T) -> None:
        """Write ``item``; returns once it is committed, raises what its commit raised."""
        slot = _Slot(item)
        with self._cond:
            self._queue.append(slot)
            while not slot.settled:
                if not self._leading:
                    self._leading = True
                    break
                self._cond.wait()
            else:
                return self._outcome(slot)
        batch: list[_Slot[T]] = []
        try:
            with self._cond:
                batch, self._queue = self._queue, []
            self._run(batch)
        finally:
            with self._cond:
                self._leading = False
                self._cond.notify_all()
        return self._outcome(slot)

    def _run(self, batch: list[_Slot[T]]) -> None:
        try:
            self._commit([s.item for s in batch])
            self.commits += 1
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:  # one transaction each: every item gets its own outcome
                for slot in batch:
                    try:
                        self._commit([slot.item])
                        self.commits += 1
                    except Exception as one:
                        slot.error = one
        except BaseException as exc:  # interrupted: nothing of the group is known committed
            for slot in batch:
                slot.error = exc
            raise
        finally:
            for slot in batch:
                slot.settled = True

    @staticmethod
    def _outcome(slot: _Slot[T]) -> None:
        if slot.error is not None:
            raise slot.error
