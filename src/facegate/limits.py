"""Overload protection: a request-rate limit per access key and a bound on requests in flight.

Beyond what the machine can do, a server that queues every request answers all of them late
(and, with a bounded body but unbounded count, can be made to hold any amount of memory).
facegate answers promptly instead, with Rekognition's own errors:

* :class:`RateLimiter`: a token bucket per access key (``rate_per_s`` tokens a second, at most
  ``burst`` saved). A request without a token is refused with
  ``ProvisionedThroughputExceededException`` (the caller's own limit). The table of buckets is
  bounded (``max_keys``, least recently used evicted): a flood of invented key ids cannot grow it,
  and those are refused by authentication before they reach it anyway.
* :class:`Admission`: at most ``max_inflight`` authenticated requests are past admission at once
  (decoding, policy, engine work, storage). One more is refused at once with
  ``ThrottlingException`` (the service is busy), never queued.

Both are safe to use from the event loop thread (no awaits inside; the pipeline checks them
before its first await after authentication). A limit of 0 switches the check off.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets per key. ``rate_per_s <= 0`` allows everything."""

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 and rate_per_s > 0:
            raise ValueError("burst must be at least 1 when a rate limit is set")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Take one token from ``key``'s bucket; False when it is empty."""
        if self.rate_per_s <= 0:
            return True
        now = self._clock()
        with self._lock:
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                bucket = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate_per_s)
            bucket.at = now
            self._buckets[key] = bucket  # most recently used last
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            if bucket.tokens < 1.0:
                return False
            bucket.tokens -= 1.0
            return True

    def available(self, key: str) -> bool:
        """Whether ``key``'s bucket holds a token now (nothing is taken: a bucket charged only
        by failures, e.g. :mod:`facegate.refusals`, asks this before the work and takes a
        token with :meth:`allow` when it fails)."""
        if self.rate_per_s <= 0:
            return True
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return True
            elapsed = self._clock() - bucket.at
            return min(self.burst, bucket.tokens + elapsed * self.rate_per_s) >= 1.0

    def __len__(self) -> int:
        return len(self._buckets)


class Admission:
    """A counter of requests in flight with a hard ceiling. ``max_inflight <= 0``: no ceiling."""

    def __init__(self, max_inflight: int) -> None:
        self.max_inflight = max_inflight
        self._inflight = 0
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        """Count one more request in flight, or return False at the ceiling (nothing counted)."""
        with self._lock:
            if 0 < self.max_inflight <= self._inflight:
                return False
            self._inflight += 1
            return True

    def leave(self) -> None:
        """A request admitted by :meth:`try_enter` has finished."""
        with self._lock:
            if self._inflight <= 0:
                raise RuntimeError("leave() without a matching try_enter()")
            self._inflight -= 1

    @property
    def inflight(self) -> int:
        return self._inflight
