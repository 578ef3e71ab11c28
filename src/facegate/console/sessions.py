"""Console sessions, CSRF tokens and sign-in throttling.

* A session id is 32 random bytes (``secrets.token_urlsafe``), sent only in the ``fg_session``
  cookie (HttpOnly, SameSite=Strict, Path=/console, Secure behind https). The database keeps
  its SHA-256 (:class:`~facegate.store.operators.SessionRepository`), so a copy of the database
  holds no usable session.
* A session ends when idle for ``idle_s`` (default 30 minutes) or ``absolute_s`` after sign-in
  (default 12 hours), at sign-out, when the operator is disabled or their password changes.
* Each session has a CSRF token (synchronizer pattern): every POST form carries it in the
  ``csrf_token`` field and it is compared in constant time with the stored one. The sign-in form,
  before any session exists, uses a double-submit cookie (``fg_login_csrf``).
* :class:`LoginThrottle` refuses sign-in attempts after 5 in 15 minutes for an account or 20
  failures from one client address, counting each attempt before its password is checked, in
  bounded memory (the oldest entries are forgotten first).
* :class:`WorkSlots` bounds the password hashes running at once (2 in the console); a sign-in
  finding none free is refused at once (503; it still counts as an attempt), never queued.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from facegate.store.operators import SessionRecord, SessionRepository

T = TypeVar("T")

SESSION_COOKIE = "fg_session"
LOGIN_CSRF_COOKIE = "fg_login_csrf"
IDLE_S = 30 * 60.0
ABSOLUTE_S = 12 * 3600.0


def session_sha256(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """32 random bytes, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time equality of two secrets; False when either is missing or empty."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True)
class Session:
    """An open session: its hashed id (the key), whose it is, and its CSRF token."""

    key: str
    record: SessionRecord


class SessionManager:
    """Create, resolve (with expiry) and end console sessions. Blocking (SQLite)."""

    def __init__(
        self,
        repo: SessionRepository,
        clock: Callable[[], float],
        idle_s: float = IDLE_S,
        absolute_s: float = ABSOLUTE_S,
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.idle_s = idle_s
        self.absolute_s = absolute_s

    def create(self, operator_id: str) -> tuple[str, Session]:
        """A new session for ``operator_id``: (the id for the cookie, the session)."""
        session_id = new_secret()
        now = self.clock()
        record = SessionRecord(operator_id, new_secret(), now, now)
        key = session_sha256(session_id)
        self.repo.insert(key, record)
        return session_id, Session(key, record)

    def resolve(self, session_id: str | None) -> Session | None:
        """The live session with this id (its last use updated), or None: unknown, idle too
        long or too old (an expired session is deleted)."""
        if not session_id or len(session_id) > 100:
            return None
        key = session_sha256(session_id)
        record = self.repo.get(key)
        if record is None:
            return None
        now = self.clock()
        if now - record.last_seen_at > self.idle_s or now - record.created_at > self.absolute_s:
            self.repo.delete(key)
            return None
        self.repo.touch(key, now)
        return Session(key, record)

    def end(self, session: Session) -> None:
        self.repo.delete(session.key)

    def sweep(self) -> int:
        """Delete every expired session; returns how many."""
        now = self.clock()
        return self.repo.delete_stale(now - self.idle_s, now - self.absolute_s)


class LoginThrottle:
    """Sign-in attempts per account and per client address in a sliding window.

    An attempt is counted *before* its password is checked: :meth:`reserve` checks the limits
    and records the attempt in one step under a lock, so however many sign-ins arrive at once,
    at most ``max_per_account`` attempts on an account and ``max_per_client`` from an address
    are ever checked within ``window_s`` (the check takes ~0.1 s of scrypt; counting afterwards
    let a burst of concurrent attempts all pass the check first). A failed attempt stays
    counted, and so does one refused because every hashing slot was busy (an attacker's burst
    uses up the window whether or not its guesses were checked); :meth:`succeeded` clears the
    account's attempts and takes the successful attempt off the address's count (an address is
    limited by its failures).

    At most ``max_keys`` accounts and addresses are remembered (the least recently attempted
    are forgotten first), so memory stays bounded under a flood of names."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        window_s: float = 15 * 60.0,
        max_per_account: int = 5,
        max_per_client: int = 20,
        max_keys: int = 10_000,
    ) -> None:
        self.clock = clock
        self.window_s = window_s
        self.max_per_account = max_per_account
        self.max_per_client = max_per_client
        self.max_keys = max_keys
        self._attempts: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _keys(self, account: str, client: str) -> tuple[tuple[str, int], tuple[str, int]]:
        return ("a:" + account, self.max_per_account), ("c:" + client, self.max_per_client)

    def _recent(self, key: str, now: float) -> int:
        times = self._attempts.get(key)
        if times is None:
            return 0
        while times and now - times[0] > self.window_s:
            times.popleft()
        if not times:
            del self._attempts[key]
            return 0
        return len(times)

    def allowed(self, account: str, client: str) -> bool:
        """Whether an attempt would be accepted now (a look only; :meth:`reserve` counts)."""
        now = self.clock()
        with self._lock:
            return all(self._recent(key, now) < cap for key, cap in self._keys(account, client))

    def reserve(self, account: str, client: str) -> bool:
        """Count one attempt on ``account`` from ``client`` if both are under their limits
        (True: go on and check the password), else count nothing (False: refuse)."""
        now = self.clock()
        with self._lock:
            keys = self._keys(account, client)
            if any(self._recent(key, now) >= cap for key, cap in keys):
                return False
            self._record(keys, now)
            return True

    def failed(self, account: str, client: str) -> None:
        """Count one failed attempt (for callers that did not :meth:`reserve`)."""
        now = self.clock()
        with self._lock:
            self._record(self._keys(account, client), now)

    def _record(self, keys: tuple[tuple[str, int], ...], now: float) -> None:
        for key, cap in keys:
            times = self._attempts.pop(key, None) or deque(maxlen=cap)
            times.append(now)
            self._attempts[key] = times  # most recent last
        while len(self._attempts) > self.max_keys:
            self._attempts.popitem(last=False)

    def _take_back(self, key: str) -> None:
        times = self._attempts.get(key)
        if times:
            times.pop()
            if not times:
                del self._attempts[key]

    def succeeded(self, account: str, client: str | None = None) -> None:
        """The account signed in: its attempts are cleared, and the reserved attempt no longer
        counts against ``client``."""
        with self._lock:
            self._attempts.pop("a:" + account, None)
            if client is not None:
                self._take_back("c:" + client)

    def __len__(self) -> int:
        return len(self._attempts)


class SlotsBusy(Exception):
    """Every slot of a :class:`WorkSlots` is taken."""


class WorkSlots:
    """At most ``slots`` password hashes (scrypt: ~0.1 s of CPU and 32 MiB each) at once.

    :meth:`run` never waits for a slot: a caller that finds every slot taken is refused at
    once (:class:`SlotsBusy`; the console answers 503), so a flood of sign-ins cannot queue up
    hashing work, fill the shared thread pool and stall every other request behind it. A slot
    is held until the work itself ends in its thread (not when the awaiting request goes away),
    so cancelled requests cannot push more hashes than ``slots`` into the pool."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("at least one slot")
        self.slots = slots
        self._busy = 0
        self._lock = threading.Lock()

    @property
    def busy(self) -> int:
        return self._busy

    def _leave(self) -> None:
        with self._lock:
            self._busy -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread if a slot is free; :class:`SlotsBusy` otherwise."""
        with self._lock:
            if self._busy >= self.slots:
                raise SlotsBusy
            self._busy += 1
        state = {"started": False, "abandoned": False}

        def work() -> T | None:
            with self._lock:
                if state["abandoned"]:  # cancelled before it began: the slot is already free
                    return None
                state["started"] = True
            try:
                return fn(*args)
            finally:
                self._leave()

        try:
            result = await asyncio.to_thread(work)
        except asyncio.CancelledError:
            with self._lock:
                if not state["started"]:
                    state["abandoned"] = True
                    self._busy -= 1
            raise
        return result  # type: ignore[return-value]  # None only when abandoned
