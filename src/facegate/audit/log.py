"""The append-only audit log: segment files, durability, checkpoints, rotation, recovery.

Durability (the fsync policy). :meth:`AuditLog.append` writes the whole line with ``os.write``
on a file opened ``O_APPEND`` and calls ``os.fsync`` before it returns, so a record is on disk
before the caller answers the request it describes. New segment files and ``HEAD.json`` are
made durable with an fsync of the directory too. A checkpoint's line is fsynced before
``HEAD.json`` names it, so HEAD is never ahead of the durable log. If ``HEAD.json`` cannot be
replaced (a full disk: a new file needs space), the checkpoint stands and HEAD lags behind, as
after a crash between the two; the next checkpoint retries (``health()`` shows
``head_stale``).

Fail closed, then recover. If a write or fsync fails (disk full, I/O error, read-only file
system) the call raises :class:`~facegate.audit.errors.AuditWriteError` and the log refuses
every append and checkpoint (:attr:`AuditLog.failed` says why, for health checks) until it has
repaired itself: at most every ``retry_s`` seconds (on the next append, and from the
checkpoint thread, so a quiet server recovers too), it takes back whatever follows the last
line it knows to be durable (moved to ``torn-<segment>-<offset>.bin`` as crash recovery does:
after a failed fsync the page cache no longer says what is on disk, so the line whose fsync
failed is removed rather than trusted), checks that the segment then ends with the entry it
last wrote (seq and hash; anything else, e.g. a file cut shorter by someone else, keeps the log
refused until it is reopened, which verifies the tail), and appends a ``recovery`` entry
(``cause: "write_failed"``, the error, when it started and how many appends were refused)
and a checkpoint. Only then are appends accepted again. A repair that fails (the disk is
still full) leaves the log refused. A record whose write failed is never in the log; the
caller's request failed. A record that cannot be serialised (NaN, non-string keys, objects
JSON cannot hold) or uses a reserved kind raises ``AuditWriteError`` too, but leaves the log
usable: nothing was written.

Room for outcomes. The request path appends an *intent* before an allowed request first
changes the store and the request's record after the work (:mod:`facegate.intent`); if the
disk filled in between, the change would stand with its outcome unrecorded. So the log keeps
``reserve_bytes`` (default 1 MiB) of disk allocated past the end of the current segment
(``fallocate`` with ``FALLOC_FL_KEEP_SIZE``: the file's size does not change, so readers and
recovery see nothing of it) and writes into it. An ``intent`` record (or any append with
``reserve=True``) first tops the allocation up when less than a quarter of it is left, and is
refused (``AuditWriteError``, nothing written; :meth:`AuditLog.health` reports it) if that
fails: a write is admitted only while the outcomes of writes in progress (at most ``max_inflight``
records, about 1 KB each) are sure to fit. Other appends top it up when they can and
otherwise write on into what is left. Where ``fallocate`` is not supported (not Linux, or a
file system without it) there is no reserve; copy-on-write file systems (btrfs, ZFS) may not
honour it fully. The reserve of a sealed segment is given back.

Checkpoints (signed, see :mod:`facegate.audit.checkpoint`) are written:

* inside the ``append`` that brings the number of entries since the last checkpoint to
  ``checkpoint_every`` (default 1000), so at most ``checkpoint_every`` entries are unsigned;
* by a background thread ``checkpoint_s`` seconds (default 60) after the last checkpoint if
  anything was appended since (and by ``append`` itself if the thread is late), so unsigned
  entries are at most about ``checkpoint_s`` old even when traffic stops;
* when a segment is full (see rotation), after a recovery, on open if the log ends with
  unsigned entries (e.g. after a crash), and by :meth:`AuditLog.close`.

After each checkpoint is durable (``HEAD.json`` written), the optional ``on_checkpoint``
callback receives the checkpoint's :class:`Entry` (the server anchors it in the shared store, see
:mod:`facegate.audit.anchors`). It runs on a thread of its own (``facegate-audit-anchor``), one
call at a time in checkpoint order, never with the log's lock held and never in the thread that
wrote the checkpoint: a request thread may write a checkpoint while it holds the store's writer
lock (moving outbox rows), and a callback that takes the same lock must not run under it. A
callback that raises (the store is down) is logged as a warning and otherwise ignored: the log
and the request path carry on, and the next checkpoint's anchor covers the gap. ``close``
delivers the pending calls (the final checkpoint's too) before it returns, waiting at most
``callback_wait_s`` seconds.

Choose ``checkpoint_every``/``checkpoint_s`` by how many records you can afford to lose
undetectably: entries after the last checkpoint can be cut off without a trace (verify reports
them as an unsigned tail). A checkpoint costs one Ed25519 signature and three fsyncs.

Rotation: when an append brings the current segment to ``segment_max_bytes`` or more, the log
seals it with a checkpoint (checkpoints never start a segment); the next entry starts the next
segment (created, and the directory fsynced, before that entry is written). The chain runs on
across segments, and every segment but the last ends with a checkpoint (a rotation seals the
segment first if needed). ``segment_max_bytes`` is a soft limit: if the next file cannot be
created, the log writes on in the current one and retries at the next append (an intent is
refused instead, see "Room for outcomes").

Verification on open: before it continues a chain, ``open`` checks its tail
(:func:`facegate.audit.verify.verify_tail`: ``HEAD.json`` and its entry, the segment
numbering, the checkpoint sealing the segment before the last, every line of the last segment,
and ``pins``: entries known from outside the log, e.g. the store's latest anchor of this
chain, which a rolled-back log no longer holds). A tail that fails is refused
(``AuditWriteError`` naming the problem) unless ``accept_damage`` is set: then the log logs
the problem at ERROR, appends an ``integrity`` entry (``action: "audit.tamper_suspected"``,
the problem in ``details``) and a checkpoint, starts a new segment for what follows (so the
next start verifies a clean tail; ``verify`` still reports the damage) and exposes the
problem as :attr:`AuditLog.tamper_suspected`.

Recovery on open: a torn last line (see :mod:`facegate.audit.tail`) is moved to
``torn-<segment>-<offset>.bin``, the segment truncated to its last complete line, and a
``{"kind": "recovery", "at", "torn_bytes", "segment", "offset"}`` entry appended (then a
checkpoint), so the repair is itself on the record. Before repairing anything, ``open`` refuses
(``AuditWriteError``) a tail that fails verification (see above; a log behind ``HEAD.json``
too), a log held open by another process (``flock`` on ``LOCK``), and a ``public.key`` that is
not the signing key's: appending to such a log would hide the damage under a fresh
checkpoint. Leftover temporary
files of an interrupted atomic write (``.HEAD.json.*.tmp``) are removed. A crash between moving
torn bytes aside and appending the recovery entry leaves the ``torn-*.bin`` file without its
entry (verify lists torn files as a warning).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from facegate.atomicfile import fsync_dir, write_all, write_atomic
from facegate.audit.chain import GENESIS, Entry, body_bytes, canonical, check_keys
from facegate.audit.checkpoint import (
    CHECKPOINT,
    RECOVERY,
    RESERVED_KINDS,
    Head,
    checkpoint_record,
)
from facegate.audit.errors import AuditKeyError, AuditReadError, AuditWriteError
from facegate.audit.layout import (
    DIR_MODE,
    FILE_MODE,
    HEAD_NAME,
    LOCK_NAME,
    PUBLIC_KEY_NAME,
    allocate,
    segment_name,
    segments,
    writer_active,
)
from facegate.audit.record import INTEGRITY, INTENT
from facegate.audit.signing_key import key_id, public_key_text, raw_public, read_public_key
from facegate.audit.tail import Tail, move_torn_bytes, scan_tail
from facegate.audit.verify import Pin, Problem, verify_tail

__all__ = ["AuditLog", "CheckpointCallback", "Entry", "Pin", "iter_entries", "writer_active"]

TAMPER_SUSPECTED = "audit.tamper_suspected"
"""The ``action`` of the ``integrity`` entry written when a damaged tail is accepted."""

_logger = logging.getLogger("facegate.audit")

CheckpointCallback = Callable[[Entry], None]
"""Called with each checkpoint entry once it is durable (see the module docstring)."""


class AuditLog:
    """The writer of one audit directory. Build it with :meth:`open`; thread-safe.

    Only one process may have a directory open (an ``flock`` on ``LOCK``); readers
    (:func:`iter_entries`, :func:`facegate.audit.verify.verify`) need no lock."""

    def __init__(
        self,
        audit_dir: Path,
        signing_key: Ed25519PrivateKey,
        lock_fd: int,
        *,
        checkpoint_every: int,
        checkpoint_s: float,
        segment_max_bytes: int,
        on_checkpoint: CheckpointCallback | None = None,
        callback_wait_s: float = 30.0,
        retry_s: float = 1.0,
        reserve_bytes: int = 1024 * 1024,
    ) -> None:
        self._dir = audit_dir
        self._key = signing_key
        self._key_id = key_id(signing_key.public_key())
        self._lock_fd = lock_fd
        self._every = checkpoint_every
        self._interval_s = checkpoint_s
        self._max_bytes = segment_max_bytes
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # set on stop and on a write failure
        self._timer: threading.Thread | None = None
        self._fd = -1
        self._segment_no = 0
        self._segment = ""
        self._size = 0
        self._lines = 0
        self._seq = 0
        self._hash = GENESIS
        self._last_kind = ""
        self._since_checkpoint = 0
        self._last_checkpoint_mono = time.monotonic()
        self._failed: str | None = None
        self._failed_at = 0.0
        self._refused = 0
        self._retry_s = retry_s
        self._retry_mono = 0.0
        self._rotate_next = False
        self._repair_error = ""
        self._stuck = False  # refused until reopened: the segment is not what this log wrote
        self._reserve_bytes = reserve_bytes
        self._reserved_end = 0  # the segment's disk is allocated up to this offset
        self._reserve_error: str | None = None
        self._head_error: str | None = None
        self._tamper: dict[str, Any] | None = None
        self._closed = False
        self._on_checkpoint = on_checkpoint
        self._callback_wait_s = callback_wait_s
        self._written: queue.SimpleQueue[Entry | None] = queue.SimpleQueue()
        self._notifier: threading.Thread | None = None
        # (seq, hash, size, lines, last kind) after the last fsync: what a failure rolls back to
        self._durable: tuple[int, str, int, int, str] = (0, GENESIS, 0, 0, "")
        # group commit (see append): records queued, and whether a call is writing a group
        self._group = threading.Condition(threading.Lock())
        self._pending: list[_Pending] = []
        self._leading = False
        self.fsyncs = 0
        """How many times a segment was fsynced (group commit shares one among appends)."""
        self.callback_failures = 0
        """How many ``on_checkpoint`` calls raised (for health checks and tests)."""

    # --- opening -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        audit_dir: Path,
        signing_key: Ed25519PrivateKey,
        *,
        checkpoint_every: int = 1000,
        checkpoint_s: float = 60.0,
        segment_max_bytes: int = 64 * 1024 * 1024,
        on_checkpoint: CheckpointCallback | None = None,
        callback_wait_s: float = 30.0,
        retry_s: float = 1.0,
        pins: tuple[Pin, ...] = (),
        accept_damage: bool = False,
        reserve_bytes: int = 1024 * 1024,
    ) -> AuditLog:
        """Open (creating if needed) the log in ``audit_dir`` for appending.

        Verifies the tail (against ``pins`` too) and recovers a torn last line, checks
        ``public.key`` against the signing key, signs any unsigned tail and starts the
        checkpoint timer (see the module docstring). ``on_checkpoint`` is called with every
        checkpoint written from now on, including one written by ``open`` itself. ``retry_s``:
        how often a log refused after a write failure tries to repair itself.
        ``accept_damage``: continue a tail that fails verification, recording it;
        ``reserve_bytes``: disk kept allocated for records to come (0: none; see the module
        docstring). Raises :class:`AuditWriteError` or :class:`AuditKeyError` if the log
        cannot be opened safely."""
        if checkpoint_every < 1 or not checkpoint_s > 0 or segment_max_bytes < 1:
            raise ValueError("checkpoint_every, checkpoint_s and segment_max_bytes must be > 0")
        if retry_s < 0 or reserve_bytes < 0:
            raise ValueError("retry_s and reserve_bytes must not be negative")
        try:
            created = not audit_dir.is_dir()
            audit_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            if created:
                fsync_dir(audit_dir.parent)
            lock_fd = _lock(audit_dir)
        except OSError as exc:
            raise AuditWriteError(f"{audit_dir}: cannot open the audit log: {_why(exc)}") from exc
        log = cls(
            audit_dir,
            signing_key,
            lock_fd,
            checkpoint_every=checkpoint_every,
            checkpoint_s=checkpoint_s,
            segment_max_bytes=segment_max_bytes,
            on_checkpoint=on_checkpoint,
            callback_wait_s=callback_wait_s,
            retry_s=retry_s,
            reserve_bytes=reserve_bytes,
        )
        try:
            log._start(pins, accept_damage)
        except BaseException:
            log._stop_notifier()
            log._release()
            raise
        return log

    def _start(self, pins: tuple[Pin, ...], accept_damage: bool) -> None:
        try:
            for stale in self._dir.glob(".*.tmp"):  # temporary files of an interrupted write
                stale.unlink()
            self._check_public_key()
            recovered = self._open_tail(pins, accept_damage)
        except OSError as exc:
            raise AuditWriteError(f"{self._dir}: cannot open the audit log: {_why(exc)}") from exc
        if self._on_checkpoint is not None:
            self._notifier = threading.Thread(
                target=self._run_notifier, name="facegate-audit-anchor", daemon=True
            )
            self._notifier.start()
        with self._lock:
            if self._tamper is not None:
                self._append_locked(
                    {
                        "kind": INTEGRITY,
                        "at": time.time(),
                        "action": TAMPER_SUSPECTED,
                        "actor": "server",
                        "subject": str(self._tamper["segment"]),
                        "org_id": "",
                        "details": {**self._tamper, "accepted": "accept_damage"},
                    }
                )
            if recovered is not None:
                self._append_locked(recovered)
            if self._seq and self._last_kind != CHECKPOINT:
                self._checkpoint_locked()
            if self._tamper is not None:
                self._rotate_next = True  # what follows starts a segment that verifies
        self._timer = threading.Thread(
            target=self._run_timer, name="facegate-audit-checkpoint", daemon=True
        )
        self._timer.start()

    def _check_public_key(self) -> None:
        path = self._dir / PUBLIC_KEY_NAME
        public = self._key.public_key()
        if not path.exists():
            write_atomic(path, public_key_text(public).encode("ascii") + b"\n")
            return
        published = read_public_key(path)
        if raw_public(published) != raw_public(public):
            raise AuditKeyError(
                f"{path} holds key id {key_id(published)} but the signing key is "
                f"{self._key_id}: restore the signing key the log was written with, or start "
                "a new audit directory"
            )

    def _open_tail(self, pins: tuple[Pin, ...], accept_damage: bool) -> dict[str, Any] | None:
        """Find the end of the chain, verify the tail, repair a torn last line; open the last
        segment."""
        try:
            problem = verify_tail(self._dir, self._key.public_key(), pins)
        except ValueError as exc:
            raise AuditWriteError(f"{exc}; run facegate audit verify") from exc
        if problem is not None:
            self._suspect(problem, accept_damage)
        found = segments(self._dir)
        if not found:
            self._segment_no = 1
            self._open_segment(create=True)
            return None
        self._segment_no, path = found[-1]
        self._segment = path.name
        tail = self._scan(path)
        self._lines = tail.lines
        last = tail
        for _, earlier in reversed(found[:-1]):
            if last.last_seq:
                break
            last = self._scan(earlier)
            if last.torn_bytes:
                raise AuditWriteError(
                    f"{earlier}: an earlier segment ends with an incomplete line; run "
                    "facegate audit verify"
                )
        self._seq, self._hash = last.last_seq, last.last_hash or GENESIS
        self._last_kind = last.last_kind
        recovery = None
        if tail.torn_bytes:
            move_torn_bytes(path, tail)
            recovery = {
                "kind": RECOVERY,
                "at": time.time(),
                "torn_bytes": tail.torn_bytes,
                "segment": path.name,
                "offset": tail.good_end,
            }
        self._open_segment(create=False)
        return recovery

    def _scan(self, path: Path) -> Tail:
        try:
            return scan_tail(path)
        except ValueError as exc:
            raise AuditWriteError(f"{exc}; run facegate audit verify") from exc

    def _suspect(self, problem: Problem, accept_damage: bool) -> None:
        """A tail that fails verification: refuse, or (``accept_damage``) note it."""
        if not accept_damage:
            raise AuditWriteError(
                f"{self._dir}: the audit log's tail fails verification ({problem}); the chain "
                "is not continued, since a fresh checkpoint would hide the damage. Run facegate "
                "audit verify; to continue this chain anyway (the damage stays visible to "
                "verify and is recorded as audit.tamper_suspected), start the server with "
                "FACEGATE_AUDIT_ACCEPT_DAMAGE=1"
            )
        _logger.error(
            "AUDIT LOG TAMPER SUSPECTED: %s; continuing as accept_damage asks, recording %s",
            problem,
            TAMPER_SUSPECTED,
        )
        self._tamper = problem.to_json()

    def _open_segment(self, *, create: bool) -> None:
        path = self._dir / segment_name(self._segment_no)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | (os.O_EXCL if create else 0)
        try:
            fd = os.open(path, flags, FILE_MODE)
        except FileExistsError:
            if path.stat().st_size:  # an empty one is left by a rotation that failed
                raise
            fd = os.open(path, flags & ~os.O_EXCL, FILE_MODE)
        if create:
            try:
                fsync_dir(self._dir)
            except OSError:
                os.close(fd)
                raise
            self._lines = 0
        if self._fd >= 0:
            self._release_reserve()
            os.close(self._fd)
        self._fd = fd
        self._segment = path.name
        self._size = os.fstat(fd).st_size
        self._reserved_end = self._size
        self._mark_durable()  # what the file holds (a new segment: nothing yet)

    # --- writing -------------------------------------------------------------------------------

    @property
    def audit_dir(self) -> Path:
        return self._dir

    @property
    def last_seq(self) -> int:
        """The seq of the last entry written (0 for an empty log)."""
        return self._seq

    @property
    def failed(self) -> str | None:
        """Why the log refuses appends after a write failure, or None (for health checks)."""
        return self._failed

    @property
    def tamper_suspected(self) -> dict[str, Any] | None:
        """The problem of a damaged tail accepted at open (``Problem.to_json``), or None."""
        return self._tamper

    def health(self) -> dict[str, Any]:
        """The log's state for health checks: ``ok`` (appends, intents included, are
        accepted) and, when not, why (and since when, and how many appends were refused); a
        tail accepted with damage."""
        with self._lock:
            failed = self._failed if not self._closed else "the audit log is closed"
            doc: dict[str, Any] = {
                "ok": failed is None and self._reserve_error is None,
                "last_seq": self._seq,
            }
            if failed is not None:
                doc.update(reason=failed, since=self._failed_at, refused=self._refused)
            elif self._reserve_error is not None:
                doc["reason"] = (
                    f"no disk space can be reserved for the outcomes of writes "
                    f"({self._reserve_error}): writes are refused"
                )
            if self._head_error is not None:
                doc["head_stale"] = self._head_error
            if self._tamper is not None:
                doc["tamper_suspected"] = self._tamper
            return doc

    def append(self, record: Mapping[str, Any], *, reserve: bool = False) -> Entry:
        """Append ``record`` (a JSON-ready mapping with a string ``kind``), durably.

        Returns the entry once its line is written and fsynced. May also write a checkpoint or
        rotate the segment before returning. ``reserve``: refuse unless disk space for the
        records to come is allocated (always for ``intent`` records; see the module
        docstring). Raises
        :class:`AuditWriteError` (see the module docstring for when the log stays refused
        afterwards).

        Group commit: appends from several threads at once share one write and one fsync.
        Each call queues its record, then takes the log's lock; the first to get it writes
        every record queued by then (each line chained to the one before, as one append after
        another would) and fsyncs once, then settles them all; a caller whose record was
        settled meanwhile only returns its outcome. No call returns before its own line is
        fsynced, and if that fsync (or a write) fails, every record of the group not yet
        durable fails: the log rolls back to the last line it knows durable, exactly as for a
        single append."""
        kind = record.get("kind")
        if not isinstance(kind, str) or not kind:
            raise AuditWriteError("an audit record needs a non-empty string 'kind'")
        if kind in RESERVED_KINDS:
            raise AuditWriteError(f"records of kind {kind!r} are written by the log itself")
        pending = _Pending(_serialise(record), reserve or kind == INTENT)
        with self._group:
            self._pending.append(pending)
            while not pending.settled:
                if not self._leading:
                    self._leading = True  # this call writes the group
                    break
                self._group.wait()  # a leader is writing: it or the next settles this one
            else:
                return pending.outcome()
        batch: list[_Pending] = []
        try:
            with self._lock:
                with self._group:
                    batch.extend(self._pending)  # every record queued by now, this one too
                    self._pending.clear()
                self._commit_locked(batch)
        finally:
            for item in batch:  # not settled only if something unexpected was raised
                if not item.settled:
                    item.settle(error=AuditWriteError("the audit record was not written"))
            with self._group:
                self._leading = False
                self._group.notify_all()
        return pending.outcome()

    def _commit_locked(self, batch: list[_Pending]) -> None:
        """Write ``batch``'s records, fsync once, settle each (see :meth:`append`)."""
        staged: list[tuple[_Pending, Entry]] = []

        def lose(exc: AuditWriteError) -> None:
            # A write or fsync failed and the log rolled back to its last durable line: the
            # records of the group written after it are not in the log.
            nonlocal staged
            durable_seq = self._durable[0]
            for item, entry in staged:
                if entry.seq > durable_seq:
                    item.settle(error=exc)
            staged = [(item, entry) for item, entry in staged if entry.seq <= durable_seq]

        for item in batch:
            was_failed = self._failed is not None
            try:
                entry = self._append_json_locked(item.record_json, reserve=item.reserve, sync=False)
            except AuditWriteError as exc:
                item.settle(error=exc)  # refused (nothing written), or its write failed
                if not was_failed and self._failed is not None:
                    lose(exc)
                continue  # each later record is refused, or written after a repair
            self._since_checkpoint += 1
            staged.append((item, entry))
        if self._failed is None and self._seq != self._durable[0]:
            try:
                self._sync_locked()
            except AuditWriteError as exc:
                lose(exc)
        sealed: AuditWriteError | None = None
        if staged and self._failed is None:
            due = time.monotonic() - self._last_checkpoint_mono >= self._interval_s
            full = self._size >= self._max_bytes  # seal the segment; the next entry rotates
            if self._since_checkpoint >= self._every or due or full:
                try:
                    self._checkpoint_locked()
                except AuditWriteError as exc:  # the records are durable, but a single append
                    sealed = exc  # raises this too, and so does every one of the group
        for item, entry in staged:
            if sealed is not None:
                item.settle(error=sealed)
            else:
                item.settle(entry=entry)

    def _sync_locked(self) -> None:
        """fsync the segment: every line written so far becomes durable (or, on failure, the
        log rolls back to the last durable line and refuses, see :meth:`_fail`)."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._fail(exc, truncate=False)
        self.fsyncs += 1
        self._mark_durable()

    def _mark_durable(self) -> None:
        self._durable = (self._seq, self._hash, self._size, self._lines, self._last_kind)

    def repair(self) -> bool:
        """Try now to leave the refused state after a write failure (the log also tries by
        itself every ``retry_s``). Returns whether appends are accepted."""
        with self._lock:
            if self._failed is not None and not self._stuck and not self._closed:
                self._repair_locked()
            return self._failed is None and not self._closed

    def checkpoint(self) -> Entry:
        """Write a signed checkpoint now (even if the last entry is one) and update HEAD."""
        with self._lock:
            return self._checkpoint_locked()

    def _usable(self) -> None:
        if self._closed:
            raise AuditWriteError("the audit log is closed")
        if self._failed is not None and not self._stuck and time.monotonic() >= self._retry_mono:
            self._repair_locked()
        if self._failed is not None:
            self._refused += 1
            raise AuditWriteError(
                f"the audit log refuses appends after a write failure ({self._failed}); "
                f"it retries every {self._retry_s:g} s"
            )

    def _repair_locked(self) -> None:
        """Try to leave the refused state (see the module docstring); on failure the log stays
        refused and the next attempt is ``retry_s`` away."""
        reason, since, refused = self._failed, self._failed_at, self._refused
        self._retry_mono = time.monotonic() + self._retry_s
        try:
            torn = self._restore_tail_locked()
        except (OSError, ValueError) as exc:
            why = _why(exc) if isinstance(exc, OSError) else str(exc)
            if why != self._repair_error:
                _logger.warning("audit log still refused: repair failed (%s)", why)
                self._repair_error = why
            if isinstance(exc, ValueError):  # not ours to repair: refused until reopened
                self._failed = f"{reason}; {exc}; reopen the log (restart the server)"
                self._stuck = True
            return
        self._failed = None
        try:
            self._append_locked(
                {
                    "kind": RECOVERY,
                    "at": time.time(),
                    "cause": "write_failed",
                    "error": reason,
                    "failed_at": since,
                    "refused_appends": refused,
                    "torn_bytes": torn,
                    "segment": self._segment,
                    "offset": self._size,
                },
                rotate=False,  # a full segment is sealed by the checkpoint below first
            )
            self._checkpoint_locked()
        except AuditWriteError:
            self._refused = refused
            return  # refused again (the disk is still full); _fail recorded why
        _logger.warning(
            "audit log recovered after a write failure (%s); %d appends were refused",
            reason,
            refused,
        )
        self._refused, self._failed_at, self._repair_error = 0, 0.0, ""

    def _restore_tail_locked(self) -> int:
        """Cut the current segment back to the last line known durable (moving any bytes after
        it aside); check it ends with the entry last written. Returns the bytes removed.
        Raises ``OSError`` (still failing) or ``ValueError`` (not what this log wrote)."""
        path = self._dir / self._segment
        for stale in self._dir.glob(".*.tmp"):  # a HEAD.json write that failed half-way
            with contextlib.suppress(OSError):
                stale.unlink()
        size = os.fstat(self._fd).st_size
        if size < self._size:
            raise ValueError(
                f"{self._segment} is {size} bytes, shorter than the {self._size} bytes written: "
                "cut short by someone else"
            )
        torn = size - self._size
        self._reserved_end = self._size  # truncating, below, frees any allocation beyond
        if torn:
            move_torn_bytes(path, Tail(size, self._size, self._seq, self._hash, "", self._lines))
        os.fsync(self._fd)
        found = scan_tail(path)
        if found.size != self._size or (
            self._lines and (found.last_seq, found.last_hash) != (self._seq, self._hash)
        ):
            raise ValueError(f"{self._segment} does not end with the entry seq {self._seq}")
        return torn

    def _append_locked(self, record: Mapping[str, Any], *, rotate: bool = True) -> Entry:
        return self._append_json_locked(_serialise(record), rotate=rotate)

    def _top_up_locked(self, *, required: bool) -> None:
        """Keep ``reserve_bytes`` allocated past the end (when under a quarter of it is left).
        With ``required``, raise :class:`AuditWriteError` when that fails."""
        if not self._reserve_bytes or self._reserved_end - self._size >= self._reserve_bytes // 4:
            return
        try:
            allocate(self._fd, self._size, self._reserve_bytes)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                _logger.info("audit log: no disk reserve on this file system (%s)", _why(exc))
                self._reserve_bytes = 0
                return
            if self._reserve_error is None:
                _logger.error("audit log: cannot reserve disk space: %s", _why(exc))
            self._reserve_error = f"{self._segment}: {_why(exc)}"
            self._wake.set()  # the checkpoint thread retries, so health recovers when idle
            if required:
                raise AuditWriteError(
                    f"cannot reserve disk space for the audit records of a write "
                    f"({_why(exc)}); the write is refused before anything is stored"
                ) from exc
            return
        self._reserved_end = self._size + self._reserve_bytes
        self._reserve_error = None

    def _release_reserve(self) -> None:
        """Give back the allocation past the end of the current segment (best effort)."""
        if self._reserved_end > self._size:
            with contextlib.suppress(OSError):
                allocate(self._fd, self._size, self._reserved_end - self._size, release=True)
        self._reserved_end = self._size

    def _append_json_locked(
        self, record_json: bytes, *, rotate: bool = True, reserve: bool = False, sync: bool = True
    ) -> Entry:
        """Write one entry, chained to the last one written. ``sync``: fsync it before returning
        (else the caller fsyncs, :meth:`_sync_locked`, before anyone relies on it)."""
        self._usable()
        if rotate and (self._size >= self._max_bytes or (self._rotate_next and self._lines)):
            self._rotate_locked(required=reserve)
        self._top_up_locked(required=reserve)
        seq = self._seq + 1
        body = body_bytes(seq, self._hash, record_json)
        digest = hashlib.sha256(body).hexdigest()
        line = b'{"hash":"' + digest.encode("ascii") + b'",' + body[1:] + b"\n"
        try:
            write_all(self._fd, line)
        except OSError as exc:
            self._fail(exc, truncate=True)
        if sync:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._fail(exc, truncate=False)
            self.fsyncs += 1
        record: dict[str, Any] = json.loads(record_json)
        entry = Entry(seq, self._hash, digest, record, self._segment, self._lines + 1)
        self._seq, self._hash, self._last_kind = seq, digest, str(record["kind"])
        self._size += len(line)
        self._lines += 1
        if sync:
            self._mark_durable()
        return entry

    def _set_failed(self, reason: str) -> None:
        if not self._failed_at:  # a new failure, not a repair that failed again
            _logger.error("audit log refuses appends: %s", reason)
        self._failed = reason
        self._failed_at = self._failed_at or time.time()
        self._retry_mono = time.monotonic() + self._retry_s
        self._wake.set()  # the checkpoint thread now retries every retry_s

    def _fail(self, exc: OSError, *, truncate: bool) -> NoReturn:
        # Whatever was written since the last fsync is not known durable (a group commit may
        # have written several lines): back to the last durable line; the repair moves the
        # rest of the file aside (a line whose fsync failed is never trusted).
        self._seq, self._hash, self._size, self._lines, self._last_kind = self._durable
        reason = f"{self._segment}: {_why(exc)}"
        self._set_failed(reason)
        if truncate:  # best effort: take back a partly written line
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            self._reserved_end = self._size  # a truncation frees what lay beyond
        raise AuditWriteError(f"cannot write the audit record: {reason}") from exc

    def _checkpoint_locked(self) -> Entry:
        self._usable()
        record = checkpoint_record(self._key, self._key_id, self._seq, self._hash, time.time())
        entry = self._append_locked(record, rotate=False)  # a checkpoint seals its segment
        head = Head(entry.seq, entry.hash, entry.segment, entry.record)
        try:
            write_atomic(self._dir / HEAD_NAME, head.to_bytes())
            self._head_error = None
        except OSError as exc:
            # The checkpoint line is durable; HEAD.json only lags behind it, as after a crash
            # between the two (verify accepts a HEAD older than the log). A new file needs disk
            # the reserve does not cover, so the log goes on; the next checkpoint retries.
            if self._head_error is None:
                _logger.warning(
                    "audit checkpoint seq %d is durable but %s could not be updated (%s); "
                    "retried at the next checkpoint",
                    entry.seq,
                    HEAD_NAME,
                    _why(exc),
                )
            self._head_error = f"{HEAD_NAME}: {_why(exc)}"
            for stale in self._dir.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    stale.unlink()
        self._since_checkpoint = 0
        self._last_checkpoint_mono = time.monotonic()
        if self._notifier is not None:
            self._written.put(entry)  # delivered by the notifier thread, outside this lock
        return entry

    def _rotate_locked(self, *, required: bool) -> None:
        """Start the next segment, sealing the current one first if its last entry is not a
        checkpoint. ``segment_max_bytes`` is a soft limit: if the new file cannot be created
        (the disk is full), the log writes on in the current segment and tries again at the
        next append; with ``required`` (an intent) it raises :class:`AuditWriteError`
        instead, leaving the log usable."""
        if self._last_kind != CHECKPOINT:
            self._checkpoint_locked()  # every segment but the last ends with a checkpoint
        self._segment_no += 1
        try:
            self._open_segment(create=True)
        except OSError as exc:
            self._segment_no -= 1  # the current segment stays the one the fd writes to
            name = segment_name(self._segment_no + 1)
            with contextlib.suppress(OSError):  # an empty file left behind is reused later
                if (self._dir / name).stat().st_size == 0:
                    (self._dir / name).unlink()
            _logger.warning("audit log: cannot start %s (%s)", name, _why(exc))
            if required:
                raise AuditWriteError(
                    f"cannot start a new audit segment ({_why(exc)}); the write is refused "
                    "before anything is stored"
                ) from exc
            return
        self._rotate_next = False

    # --- the timer and closing -----------------------------------------------------------------

    def _run_timer(self) -> None:
        while True:
            with self._lock:
                if self._failed is not None:
                    wait = self._retry_s if self._stuck else self._retry_mono - time.monotonic()
                elif self._reserve_error is not None:
                    wait = self._retry_s
                else:
                    wait = self._interval_s - (time.monotonic() - self._last_checkpoint_mono)
            self._wake.wait(max(wait, 0.01))
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._lock:
                if self._closed:
                    return
                if self._failed is not None:
                    if time.monotonic() >= self._retry_mono and not self._stuck:
                        self._repair_locked()  # a quiet server recovers too
                    continue
                if self._reserve_error is not None:
                    self._top_up_locked(required=False)
                elapsed = time.monotonic() - self._last_checkpoint_mono
                if elapsed < self._interval_s:
                    continue
                if self._since_checkpoint:
                    with contextlib.suppress(AuditWriteError):  # refused: repaired later
                        self._checkpoint_locked()
                else:
                    self._last_checkpoint_mono = time.monotonic()  # idle: look again later

    def _run_notifier(self) -> None:
        callback = self._on_checkpoint
        assert callback is not None
        while True:
            entry = self._written.get()
            if entry is None:
                return
            try:
                callback(entry)
            except Exception as exc:  # the store is down, say: the next anchor covers the gap
                self.callback_failures += 1
                # The class name only: a driver's message may name hosts or users.
                _logger.warning(
                    "audit checkpoint seq %d: on_checkpoint failed (%s); the next "
                    "checkpoint's anchor covers it",
                    entry.seq,
                    type(exc).__name__,
                )

    def _stop_notifier(self) -> None:
        notifier = self._notifier
        if notifier is None or notifier is threading.current_thread():
            return
        self._written.put(None)
        notifier.join(self._callback_wait_s)
        if notifier.is_alive():
            _logger.warning(
                "audit log closed with on_checkpoint calls still pending after %.0f s",
                self._callback_wait_s,
            )

    def close(self) -> None:
        """Write a final checkpoint (if anything is unsigned and the log has not failed), stop
        the timer, deliver pending ``on_checkpoint`` calls and release the files. Idempotent.
        Raises :class:`AuditWriteError` if the final checkpoint cannot be written (the files are
        released anyway)."""
        self._stop.set()
        self._wake.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.join()
        try:
            with self._lock:
                if self._failed is not None and not self._closed and not self._stuck:
                    self._repair_locked()  # records the failure if the disk allows it now
                unsigned = self._seq and self._last_kind != CHECKPOINT
                if unsigned and not self._closed and self._failed is None:
                    self._checkpoint_locked()
        finally:
            with self._lock:
                self._closed = True
            self._stop_notifier()
            self._release()

    def _release(self) -> None:
        if self._fd >= 0:
            self._release_reserve()
        for fd in (self._fd, self._lock_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._lock_fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Pending:
    """One queued append of the group commit: its record, then its outcome."""

    __slots__ = ("entry", "error", "record_json", "reserve", "settled")

    def __init__(self, record_json: bytes, reserve: bool) -> None:
        self.record_json = record_json
        self.reserve = reserve
        self.entry: Entry | None = None
        self.error: AuditWriteError | None = None
        self.settled = False

    def settle(self, *, entry: Entry | None = None, error: AuditWriteError | None = None) -> None:
        self.entry, self.error, self.settled = entry, error, True

    def outcome(self) -> Entry:
        if self.error is not None:
            raise self.error
        assert self.entry is not None
        return self.entry


def _serialise(record: Mapping[str, Any]) -> bytes:
    try:
        check_keys(record)
        return canonical(record)
    except (TypeError, ValueError) as exc:
        raise AuditWriteError(f"the audit record cannot be serialised: {exc}") from exc


_LOCK_WAIT_S = 0.5
"""How long ``open`` waits for the lock: a verifier probes it for an instant (``writer_active``),
a writer holds it for its lifetime."""


def _lock(audit_dir: Path) -> int:
    fd = os.open(audit_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() < deadline:
                time.sleep(0.02)
                continue
            os.close(fd)
            raise AuditWriteError(
                f"{audit_dir}: the audit log is open in another process (LOCK is held)"
            ) from None
        except OSError:
            os.close(fd)
            raise


def _why(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    text = exc.strerror or str(exc)
    return f"{text} ({name})" if name else text


def iter_entries(audit_dir: Path) -> Iterator[Entry]:
    """Every complete entry of the log in ``audit_dir``, in order (nothing if it does not
    exist). An incomplete last line of the last segment (a crash, or a write in progress) is
    skipped. Hashes, links and signatures are NOT checked: run
    :func:`facegate.audit.verify.verify` for that. Raises :class:`AuditReadError` for a line
    that is not an entry."""
    if not audit_dir.is_dir():
        return
    found = segments(audit_dir)
    for index, (_, path) in enumerate(found):
        last_segment = index == len(found) - 1
        with path.open("rb") as fh:
            for number, raw in enumerate(fh, 1):
                if not raw.endswith(b"\n"):
                    if last_segment:
                        return
                    raise AuditReadError(f"{path.name} line {number}: incomplete line")
                yield _entry(raw, path.name, number)


def _entry(raw: bytes, segment: str, line: int) -> Entry:
    try:
        obj = json.loads(raw)
        seq, prev, digest, record = obj["seq"], obj["prev"], obj["hash"], obj["record"]
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditReadError(f"{segment} line {line}: not an audit entry") from exc
    if type(seq) is not int or not isinstance(record, dict):
        raise AuditReadError(f"{segment} line {line}: not an audit entry")
    return Entry(seq, str(prev), str(digest), record, segment, line)
