"""Requests refused at authentication: counted per address, key and reason, not one record each.

A request that fails authentication (no or malformed signature, unknown key, bad signature,
stale date) did no work, and anyone who can reach the port can send them: written one fsynced
audit record each (about 900 bytes), a few hundred a second fill a disk in days, and then the
audit log refuses and the service stops. So they are counted instead:

* :meth:`RefusalCounter.count` adds one to the row of (client address, key claimed, reason):
  ``reason`` is the error code sent (``InvalidSignatureException``...). The table holds at most
  ``max_rows`` rows; further combinations are summed into one ``other`` row, still counted.
* A writer thread turns the table into ONE ``refusals`` audit record per flush: each row's
  count and first and last time, ``total`` (the exact number of refusals covered) and ``other``.
  A flush happens ``settle_s`` after the first refusal counted since the last flush, but never
  sooner than ``flush_s`` after the previous flush: a lone refusal is on record within about a
  second, a flood costs at most one record (of at most ``max_rows`` rows) per ``flush_s``. If
  the audit log refuses the append, the counts are kept (merged into the next flush). Closing
  flushes what is left. A crash loses at most the counts since the last flush (requests that
  did nothing).
* Per address, a token bucket charged by failures only (``rate_per_s``, ``burst``): an address
  whose bucket is empty is refused (``ThrottlingException``, reason ``address_throttled``) before
  its signature is verified or its key looked up, and counted the same way; authenticated
  callers are never charged. The address is the connection's peer (``RawRequest.client_address``).

``audit verify`` sums the ``total`` of every ``refusals`` record and the transparency report
counts each refusal as a request refused before a decision, so every refusal stays countable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from facegate.limits import RateLimiter

THROTTLED = "address_throttled"
"""The reason counted for a request refused because its address failed too often."""
MAX_FIELD = 64
"""Addresses and claimed keys are cut to this many characters in records (an access key id
has 20, an IPv6 address at most 45)."""


@dataclass
class _Row:
    count: int
    first_at: float
    last_at: float

    def add(self, other: _Row) -> None:
        self.count += other.count
        self.first_at = min(self.first_at, other.first_at)
        self.last_at = max(self.last_at, other.last_at)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "first_at": self.first_at, "last_at": self.last_at}


Key = tuple[str, str, str]


class RefusalCounter:
    """Counts refusals and writes them as ``refusals`` records through ``sink`` (the audit
    log's ``append``); see the module docstring. Thread-safe. ``on_count(reason)`` is called
    for every refusal (the Prometheus counter)."""

    def __init__(
        self,
        sink: Callable[[Mapping[str, Any]], object],
        *,
        flush_s: float = 60.0,
        settle_s: float = 1.0,
        max_rows: int = 64,
        rate_per_s: float = 5.0,
        burst: float = 20.0,
        on_count: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_rows < 1 or flush_s < 0 or settle_s < 0:
            raise ValueError("max_rows must be at least 1, flush_s and settle_s not negative")
        self._sink = sink
        self._flush_s = flush_s
        self._settle_s = settle_s
        self._max_rows = max_rows
        self._on_count = on_count
        self._clock = clock
        self._buckets = RateLimiter(rate_per_s, max(burst, 1.0))
        self._lock = threading.Lock()
        self._rows: dict[Key, _Row] = {}
        self._other: _Row | None = None
        self._pending_since: float | None = None  # monotonic time of the first unflushed
        self._last_flush = -float("inf")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.flush_failures = 0

    # --- the request path ----------------------------------------------------------------------

    def admit(self, address: str) -> bool:
        """Whether ``address`` may try to authenticate (False: its failures used its bucket)."""
        return self._buckets.available(address)

    def count(self, address: str, access_key_id: str, reason: str) -> None:
        """Count one refusal (and charge the address's bucket)."""
        if reason != THROTTLED:
            self._buckets.allow(address)
        now = self._clock()
        key = (address[:MAX_FIELD], access_key_id[:MAX_FIELD], reason[:MAX_FIELD])
        with self._lock:
            self._add(key, _Row(1, now, now))
            if self._pending_since is None:
                self._pending_since = time.monotonic()
                self._wake.set()
        if self._on_count is not None:
            self._on_count(reason)

    def _add(self, key: Key, row: _Row) -> None:
        existing = self._rows.get(key)
        if existing is not None:
            existing.add(row)
        elif len(self._rows) < self._max_rows:
            self._rows[key] = _Row(row.count, row.first_at, row.last_at)
        elif self._other is None:
            self._other = _Row(row.count, row.first_at, row.last_at)
        else:
            self._other.add(row)

    # --- flushing ------------------------------------------------------------------------------

    def pending(self) -> int:
        """Refusals counted but not yet on record."""
        with self._lock:
            return sum(r.count for r in self._rows.values()) + (
                self._other.count if self._other else 0
            )

    def flush(self) -> bool:
        """Write what is counted as one record now (True: written or nothing to write)."""
        with self._lock:
            rows, other = self._rows, self._other
            if not rows and other is None:
                self._pending_since = None
                return True
            self._rows, self._other, self._pending_since = {}, None, None
            self._last_flush = time.monotonic()
        record = _record(rows, other, self._clock())
        try:
            self._sink(record)
        except Exception:
            self.flush_failures += 1
            with self._lock:  # keep the counts for the next flush
                for key, row in rows.items():
                    self._add(key, row)
                if other is not None:
                    if self._other is None:
                        self._other = other
                    else:
                        self._other.add(other)
                if self._pending_since is None:
                    self._pending_since = time.monotonic()
            return False
        return True

    def _due(self) -> float | None:
        """Seconds until the next flush (None: nothing pending)."""
        with self._lock:
            if self._pending_since is None:
                return None
            at = max(self._pending_since + self._settle_s, self._last_flush + self._flush_s)
            return at - time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            due = self._due()
            if due is None or due > 0:
                self._wake.wait(due)
                self._wake.clear()
                continue
            if not self.flush():
                self._stop.wait(min(max(self._flush_s, 0.1), 5.0))  # the log refuses: later

    def start(self) -> RefusalCounter:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="facegate-refusals", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the writer and flush what is left (best effort: the log may refuse)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10.0)
        self.flush()


def _record(rows: Mapping[Key, _Row], other: _Row | None, now: float) -> dict[str, Any]:
    ordered = sorted(rows.items(), key=lambda kv: (-kv[1].count, kv[0]))
    covered = [r for _, r in ordered] + ([other] if other else [])
    record: dict[str, Any] = {
        "kind": "refusals",
        "at": now,
        "first_at": min(r.first_at for r in covered),
        "last_at": max(r.last_at for r in covered),
        "total": sum(r.count for r in covered),
        "rows": [
            {"client_address": a, "access_key_id": k, "reason": why, **row.to_json()}
            for (a, k, why), row in ordered
        ],
    }
    if other is not None:
        record["other"] = other.to_json()
    return record
