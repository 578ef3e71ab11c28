"""Write intents: nothing is stored for a request before its audit trail says so.

A request's audit record is written when the request ends, after its work; if that append
fails (the disk is full, say), the work stands without its record. So before an allowed
request first changes the store, the request path appends, and fsyncs, an ``intent`` record
(:func:`facegate.recording.intent_record`: request id, operation, organisation, key,
collection, decision and input hashes). If that append fails, the write never begins and the
request fails with nothing stored. The request's own record follows when it ends; an intent
without one (a crash, or the log refusing the second append) is counted by ``audit verify``
and the transparency report as a change that may have happened without its outcome on record.

The mechanism is the store's :data:`facegate.store.db.before_write` hook, not a list of
operations: every write transaction a request starts after its decision allowed it (the
operation's own writes, a review holding its results, an idempotent response remembered)
first makes sure the intent is on record, once per request. Writes before the decision (the
decision itself, stored for every request) do not: a request that is denied or only reads
leaves no intent. :class:`WriteIntent` is set for the request by :func:`recording` and armed
by :func:`arm` once the decision allows the request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from facegate.store.db import before_write


class WriteIntent:
    """The intent of one request: appended at most once, by the first write after :meth:`arm`
    (from whichever thread runs it). Raises what ``append`` raises (the write must not begin)."""

    def __init__(
        self,
        append: Callable[[Mapping[str, Any]], object],
        record: Callable[[], Mapping[str, Any]],
    ) -> None:
        self._append = append
        self._record = record
        self._lock = threading.Lock()
        self.armed = False
        self.written = False

    def arm(self) -> None:
        self.armed = True

    def __call__(self) -> None:
        if not self.armed or self.written:
            return
        with self._lock:
            if not self.written:
                self._append(self._record())
                self.written = True


@contextmanager
def recording(intent: WriteIntent) -> Iterator[WriteIntent]:
    """Make ``intent`` the store's write hook for the current context (a request)."""
    token = before_write.set(intent)
    try:
        yield intent
    finally:
        before_write.reset(token)


def arm() -> None:
    """Arm the current request's intent: its next store write appends the intent first."""
    hook = before_write.get()
    if isinstance(hook, WriteIntent):
        hook.arm()
