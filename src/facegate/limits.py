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

Before authentication, a request is only its body on its way in. :class:`BodyBudget` bounds the
bytes of bodies being read at once, server-wide and per client address, so connections that
declare large bodies and send them slowly (or never) cannot make the server hold more than the
budget: :mod:`facegate.bodies` reserves a body's declared length when the application starts
reading it, and gives it back when the body is complete or the request ends.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
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


class BodyBudget:
    """Bytes of request bodies being read at once: at most ``total_bytes`` server-wide and at
    most ``per_client_bytes`` for one client address (0: no per-client share).

    :meth:`reserve` either takes the bytes or takes nothing (never a part); each reservation
    is given back with :meth:`release` of the same client and size. Thread-safe; used from the
    event loop (no awaits inside).
    """

    GLOBAL = "server"
    CLIENT = "client"

    def __init__(self, total_bytes: int, per_client_bytes: int = 0) -> None:
        if total_bytes < 1:
            raise ValueError(f"total_bytes must be at least 1, got {total_bytes}")
        if per_client_bytes < 0:
            raise ValueError(f"per_client_bytes must be 0 or more, got {per_client_bytes}")
        self.total_bytes = total_bytes
        self.per_client_bytes = per_client_bytes
        self._held = 0
        self._by_client: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def largest_bytes(self) -> int:
        """The largest reservation an idle server could grant one client."""
        return min(self.total_bytes, self.per_client_bytes or self.total_bytes)

    def fits_ever(self, nbytes: int) -> bool:
        """Whether ``nbytes`` could be reserved for one client on an idle server."""
        return nbytes <= self.largest_bytes

    def reserve(self, client: str, nbytes: int) -> str | None:
        """Take ``nbytes`` for ``client``; None when taken, else which bound refused it
        (:attr:`CLIENT` or :attr:`GLOBAL`; nothing is taken then)."""
        with self._lock:
            mine = self._by_client[client]
            if self.per_client_bytes and mine + nbytes > self.per_client_bytes:
                if mine == 0:
                    del self._by_client[client]
                return self.CLIENT
            if self._held + nbytes > self.total_bytes:
                if mine == 0:
                    del self._by_client[client]
                return self.GLOBAL
            self._held += nbytes
            self._by_client[client] = mine + nbytes
            return None

    def release(self, client: str, nbytes: int) -> None:
        """Give back ``nbytes`` reserved for ``client``."""
        with self._lock:
            mine = self._by_client[client]
            if nbytes > mine or nbytes > self._held:
                raise RuntimeError("release() of more than was reserved")
            self._held -= nbytes
            if mine == nbytes:
                del self._by_client[client]
            else:
                self._by_client[client] = mine - nbytes

    @property
    def held_bytes(self) -> int:
        return self._held

    def held_by(self, client: str) -> int:
        with self._lock:
            return self._by_client.get(client, 0)
