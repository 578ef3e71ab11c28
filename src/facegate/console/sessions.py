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
* :class:`LoginThrottle` refuses sign-in attempts after 5 failures in 15 minutes for an account
  or 20 from one client address, in bounded memory (the oldest entries are forgotten first).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from facegate.store.operators import SessionRecord, SessionRepository

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
    """Failed sign-ins per account and per client address in a sliding window.

    ``allowed(account, client)`` is False while either has ``max_per_account`` /
    ``max_per_client`` failures within ``window_s``; ``failed`` records one; ``succeeded`` clears
    the account's. At most ``max_keys`` accounts and addresses are remembered (the least recently
    failing are forgotten first), so memory stays bounded under a flood of names."""

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
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> int:
        times = self._failures.get(key)
        if times is None:
            return 0
        while times and now - times[0] > self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0
        return len(times)

    def allowed(self, account: str, client: str) -> bool:
        now = self.clock()
        with self._lock:
            return (
                self._recent("a:" + account, now) < self.max_per_account
                and self._recent("c:" + client, now) < self.max_per_client
            )

    def failed(self, account: str, client: str) -> None:
        now = self.clock()
        with self._lock:
            for key, cap in (
                ("a:" + account, self.max_per_account),
                ("c:" + client, self.max_per_client),
            ):
                times = self._failures.pop(key, None) or deque(maxlen=cap)
                times.append(now)
                self._failures[key] = times  # most recent last
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._failures.pop("a:" + account, None)

    def __len__(self) -> int:
        return len(self._failures)
