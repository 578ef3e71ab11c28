"""Verification of an audit directory: every line, link, checkpoint and ``HEAD.json``.

:func:`verify` reads the log from the first segment to the last and stops at the FIRST problem,
which it locates by segment file, line number and seq. Problem kinds:

* ``hash mismatch``: a line's bytes are not what its hash covers (a changed byte anywhere after
  the hash field, or in the hash itself);
* ``bad json`` / ``bad entry`` / ``not canonical``: a line that is not JSON, not an entry of
  the documented shape, or not in canonical form although its hash matches its bytes;
* ``sequence gap``: seq jumps forward (entries removed, or moved elsewhere);
  ``order``: seq goes backwards, or two neighbouring entries are swapped; ``duplicate``: a line
  repeated; ``missing segment``: a segment file is absent from the numbering;
* ``prev mismatch``: an entry does not link to the hash of the entry before it (an entry edited
  with its hash recomputed is caught here, at the next entry);
* ``bad checkpoint`` / ``key mismatch`` / ``bad signature`` / ``checkpoint mismatch``: a
  checkpoint that is malformed, signed by another key, not validly signed, or signing a seq or
  hash other than the entry before it (a chain recomputed after an edit is caught here);
* ``bad HEAD`` / ``HEAD mismatch`` / ``HEAD missing`` / ``truncated``: ``HEAD.json`` is
  unreadable or badly signed, names an entry the log has with another hash, is gone although
  the log has checkpoints, or lies beyond the end of the log (``truncated: the log ends at seq
  N but HEAD says M``);
* ``torn tail``: the last line is incomplete (a crash; opening the log repairs it and records
  the repair). If a writer holds the log open, an incomplete last line is a write in progress
  and only a warning.

* ``rollback`` / ``trusted head mismatch``: with ``trusted_heads`` (statements kept outside
  the log, :mod:`facegate.audit.head`), the log ends before a trusted head, or holds other
  hashes at its seqs.

What verification cannot detect (by design of any such log): entries after the last checkpoint
(the *unsigned tail*, reported as a warning) can be removed or rewritten consistently by anyone
with write access; and a rollback of the whole directory (log *and* HEAD) to an older, genuinely
signed state is indistinguishable from that state: whoever holds the data directory holds the
signing key too. Without a trusted head a result only says the log is consistent up to its
last seq (``rollback_checked`` is False); against a rollback, pin heads outside the machine
(``facegate audit head --export``) and pass them as ``trusted_heads``. The ``public.key`` in the
audit directory can be replaced together with a re-signed log: verify with a trusted copy of
the public key.

:func:`verify_tail` checks what a writer continues from when it opens the log (the last
segment, the checkpoint that sealed the one before, ``HEAD.json`` and entries the caller pins,
such as the store's anchors of this chain): see :mod:`facegate.audit.log`.

Besides the chain itself, the walk counts what the record kinds of the request path say about
completeness: ``intent`` records without the ``request`` record of the same request id
(``open_intents``: a change to the store that may have happened without its outcome on record)
and the refusals counted by ``refusals`` records (``refusals``).

Speed: one SHA-256 over the raw line, one JSON parse and one canonical re-serialisation of the
record per line, an Ed25519 verification per checkpoint: about 43,000 entries/s (1.1 KB request
records) on the 2-core machine of ``bench/audit_overhead.py``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from facegate.audit.chain import BODY_OFFSET, ENTRY_KEYS, GENESIS, LINE_PREFIX, body_bytes
from facegate.audit.checkpoint import CHECKPOINT, Head, checkpoint_problem
from facegate.audit.errors import AuditReadError
from facegate.audit.head import HeadStatement
from facegate.audit.layout import HEAD_NAME, segment_name, segments, writer_active
from facegate.audit.record import INTENT, REFUSALS
from facegate.audit.signing_key import key_id
from facegate.audit.tail import last_line, parse_entry_head, scan_tail

MAX_OPEN_INTENTS_LISTED = 20
"""How many request ids of intents without outcome a result lists (the count is exact)."""


@dataclass(frozen=True)
class Problem:
    """The first problem found: what, where (segment file, 1-based line; ``HEAD.json`` line 1
    for HEAD problems), at which seq (None if unknown) and a one-line explanation."""

    kind: str
    segment: str
    line: int
    seq: int | None
    detail: str

    def __str__(self) -> str:
        seq = f", seq {self.seq}" if self.seq is not None else ""
        return f"{self.kind} at {self.segment} line {self.line}{seq}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "segment": self.segment,
            "line": self.line,
            "seq": self.seq,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found. Counts cover the entries read before the first problem.

    ``kinds``: entries per record kind (``checkpoint`` and ``recovery`` included);
    ``signed_seq``: the last seq vouched for by a valid checkpoint; ``unsigned_tail``: entries
    after the last checkpoint; ``first_at``/``last_at``: the smallest and largest ``at``;
    ``trusted_heads``: the trusted heads checked (``rollback_checked``: at least one was given,
    so a rollback to before it would have been found); ``open_intents``: intents without their
    request record (``open_intent_ids``: the first of their request ids); ``refusals``: the
    refusals counted in ``refusals`` records; ``last_checkpoint``: (seq, hash, record) of the
    last valid checkpoint, for :class:`~facegate.audit.head.HeadStatement`."""

    audit_dir: str
    key_id: str
    problem: Problem | None
    entries: int = 0
    segments: int = 0
    checkpoints: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    last_seq: int = 0
    last_hash: str = GENESIS
    signed_seq: int = 0
    unsigned_tail: int = 0
    head_seq: int | None = None
    first_at: float | None = None
    last_at: float | None = None
    warnings: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    trusted_heads: tuple[HeadStatement, ...] = ()
    open_intents: int = 0
    open_intent_ids: tuple[str, ...] = ()
    refusals: int = 0
    last_checkpoint: tuple[int, str, dict[str, Any]] | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def rollback_checked(self) -> bool:
        """Whether a rollback would have been detected: only against a trusted head."""
        return bool(self.trusted_heads)

    def head_statement(self) -> HeadStatement | None:
        """The statement of the last checkpoint (None: no valid checkpoint was read)."""
        if self.last_checkpoint is None:
            return None
        return HeadStatement.from_checkpoint(*self.last_checkpoint)

    def summary(self) -> str:
        """One sentence: what was verified, and what was not (rollback without a trusted
        head). Used by the CLI's verdict, the console and reports."""
        if self.problem is not None:
            return f"BROKEN: {self.problem}"
        reach = f"up to seq {self.last_seq}" + (
            f" (hash {self.last_hash[:16]}...)" if self.last_seq else ""
        )
        if self.trusted_heads:
            pinned = max(self.trusted_heads, key=lambda h: h.seq)
            return (
                f"OK {reach}, and the log holds the trusted head at seq {pinned.seq}: no "
                "rollback to before it"
            )
        return (
            f"OK {reach}; a rollback to an earlier signed state cannot be detected without a "
            "trusted head: pin one with 'facegate audit head --export FILE' (kept off this "
            "machine) and check it with 'facegate audit verify --trusted-head FILE'"
        )

    @property
    def entries_per_s(self) -> float:
        return self.entries / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "audit_dir": self.audit_dir,
            "key_id": self.key_id,
            "problem": self.problem.to_json() if self.problem else None,
            "entries": self.entries,
            "segments": self.segments,
            "checkpoints": self.checkpoints,
            "kinds": dict(sorted(self.kinds.items())),
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "signed_seq": self.signed_seq,
            "unsigned_tail": self.unsigned_tail,
            "head_seq": self.head_seq,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "warnings": list(self.warnings),
            "elapsed_s": round(self.elapsed_s, 6),
            "rollback_checked": self.rollback_checked,
            "trusted_heads": [h.to_json() for h in self.trusted_heads],
            "open_intents": self.open_intents,
            "open_intent_ids": list(self.open_intent_ids),
            "refusals": self.refusals,
            "summary": self.summary(),
        }


class _Found(Exception):
    """Internal: stops the walk at the first problem."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class _Walk:
    """The state of one verification walk."""

    def __init__(
        self,
        audit_dir: Path,
        public_key: Ed25519PublicKey,
        watch: frozenset[int] = frozenset(),
    ) -> None:
        self.dir = audit_dir
        self.public_key = public_key
        self.kid = key_id(public_key)
        self.seq = 0
        self.hash = GENESIS
        self.watch = watch
        self.seen: dict[int, str] = {}
        self.intents: dict[str, int] = {}
        self.refusals = 0
        self.last_checkpoint: tuple[int, str, dict[str, Any]] | None = None
        self.entries = 0
        self.segments = 0
        self.checkpoints = 0
        self.last_checkpoint_seq = 0
        self.signed_seq = 0
        self.kinds: Counter[str] = Counter()
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.head: Head | None = None
        self.warnings: list[str] = []
        self.segment = ""
        self.line = 0
        self.decode = json.JSONDecoder().decode
        self.encode = json.JSONEncoder(
            sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        ).encode

    def fail(self, kind: str, detail: str, seq: int | None = None) -> _Found:
        return _Found(Problem(kind, self.segment, self.line, seq, detail))

    # --- HEAD.json -----------------------------------------------------------------------------

    def read_head(self) -> None:
        """Read and check HEAD first: the log is at least as long as HEAD when it was read."""
        self.segment, self.line = HEAD_NAME, 1
        try:
            data = (self.dir / HEAD_NAME).read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise AuditReadError(f"{self.dir / HEAD_NAME}: cannot read: {exc}") from exc
        try:
            head = Head.parse(data)
        except ValueError as exc:
            raise self.fail("bad HEAD", str(exc)) from None
        problem = checkpoint_problem(head.checkpoint, self.public_key, self.kid)
        if problem is not None:
            raise self.fail(problem[0], f"{HEAD_NAME}: {problem[1]}", head.seq)
        if head.checkpoint["signed_seq"] != head.seq - 1:
            raise self.fail("bad HEAD", "its checkpoint does not sign the entry before it")
        self.head = head

    # --- the log -------------------------------------------------------------------------------

    def walk(self) -> None:
        found = segments(self.dir)
        live = writer_active(self.dir)
        expected_no = 1
        for index, (number, path) in enumerate(found):
            self.segment, self.line = path.name, 0
            if number != expected_no:
                self.segment = segment_name(expected_no)
                raise self.fail(
                    "missing segment",
                    f"{segment_name(expected_no)} is absent (the next file is {path.name})",
                    self.seq + 1,
                )
            expected_no += 1
            self.segments += 1
            self.walk_segment(path, last=index == len(found) - 1, live=live)

    def walk_segment(self, path: Path, *, last: bool, live: bool) -> None:
        try:
            fh = path.open("rb")
        except OSError as exc:
            raise AuditReadError(f"{path}: cannot read: {exc}") from exc
        with fh:
            lines = iter(fh)
            for raw in lines:
                self.line += 1
                if not raw.endswith(b"\n"):
                    if last and live:
                        self.warnings.append(
                            f"{path.name} line {self.line}: a line is being written "
                            "(the log is open by a running server); not checked"
                        )
                        return
                    kind = "torn tail" if last else "torn line"
                    raise self.fail(
                        kind,
                        f"incomplete last line ({len(raw)} bytes, no newline): a crash during "
                        "a write? opening the log moves it aside and records the repair",
                        self.seq + 1,
                    )
                self.check_line(raw, lines)

    def check_line(self, raw: bytes, lines: Any) -> None:
        body = b"{" + raw[BODY_OFFSET:-1]
        stated = raw[9:73]
        well_formed = raw.startswith(LINE_PREFIX) and raw[73:75] == b'",'
        if well_formed and hashlib.sha256(body).hexdigest().encode("ascii") != stated:
            raise self.fail(
                "hash mismatch",
                "the line's bytes do not match its hash (a changed byte)",
                _seq_of(raw),
            )
        try:
            obj = self.decode(raw.decode("utf-8"))
        except ValueError:
            raise self.fail("bad json", "the line is not valid JSON", _seq_of(raw)) from None
        seq, prev, record = self.entry_fields(obj)
        # (a well-formed line whose hash matched states a valid hex digest)
        if not well_formed or body != body_bytes(seq, prev, self.encode(record).encode("ascii")):
            raise self.fail("not canonical", "the line is not the canonical JSON of its entry", seq)
        if seq != self.seq + 1:
            self.sequence_problem(seq, raw, lines)
        if prev != self.hash:
            raise self.fail(
                "prev mismatch",
                f"prev is {prev[:16]}..., but the entry before it has hash {self.hash[:16]}... "
                "(an entry was edited and its hash recomputed, or removed)",
                seq,
            )
        digest = stated.decode("ascii")
        if record["kind"] == CHECKPOINT:
            self.check_checkpoint(seq, record)
            self.last_checkpoint = (seq, digest, record)
        if seq in self.watch:
            self.seen[seq] = digest
        self.note_completeness(record)
        if self.head is not None and seq == self.head.seq and digest != self.head.hash:
            raise self.fail(
                "HEAD mismatch",
                f"{HEAD_NAME} names seq {seq} with hash {self.head.hash[:16]}..., the log has "
                f"{digest[:16]}... (the log was rewritten after HEAD was written)",
                seq,
            )
        self.seq, self.hash = seq, digest
        self.entries += 1
        self.kinds[record["kind"]] += 1
        at = record.get("at")
        if isinstance(at, int | float) and not isinstance(at, bool):
            if self.first_at is None or at < self.first_at:
                self.first_at = float(at)
            if self.last_at is None or at > self.last_at:
                self.last_at = float(at)

    def note_completeness(self, record: dict[str, Any]) -> None:
        """Intents waiting for their request record; refusals counted in aggregates."""
        kind = record["kind"]
        if kind == INTENT:
            request = record.get("request")
            request_id = request.get("request_id") if isinstance(request, dict) else None
            if isinstance(request_id, str):
                self.intents[request_id] = self.seq + 1
        elif kind == "request":
            request_id = record.get("request_id")
            if isinstance(request_id, str) and self.intents:
                self.intents.pop(request_id, None)
        elif kind == REFUSALS:
            total = record.get("total")
            if type(total) is int and total > 0:
                self.refusals += total

    def entry_fields(self, obj: Any) -> tuple[int, str, dict[str, Any]]:
        if not isinstance(obj, dict) or obj.keys() != ENTRY_KEYS:
            raise self.fail("bad entry", "not an object with exactly seq, prev, hash, record")
        seq, prev, record = obj["seq"], obj["prev"], obj["record"]
        if type(seq) is not int or seq < 1:
            raise self.fail("bad entry", "seq is not a positive integer")
        # Only the length is checked here: prev must equal the previous (hex) hash anyway.
        if not isinstance(prev, str) or len(prev) != 64 or not prev.isascii():
            raise self.fail("bad entry", "prev is not 64 lowercase hex digits", seq)
        if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
            raise self.fail("bad entry", "record is not an object with a string kind", seq)
        return seq, prev, record

    def sequence_problem(self, seq: int, raw: bytes, lines: Any) -> None:
        expected = self.seq + 1
        if seq > expected:
            following = next(lines, None)
            parsed = parse_entry_head(following) if following else None
            if parsed is not None and parsed[0] == expected:
                raise self.fail(
                    "order",
                    f"seq {seq} comes before seq {expected} (a reordered pair, lines "
                    f"{self.line} and {self.line + 1})",
                    seq,
                )
            missing = f"seq {expected}" if seq == expected + 1 else f"seq {expected}..{seq - 1}"
            raise self.fail(
                "sequence gap",
                f"expected seq {expected}, found {seq}: {missing} missing (removed or moved)",
                seq,
            )
        if seq == self.seq and _stated(raw) == self.hash:
            raise self.fail("duplicate", f"seq {seq} appears twice", seq)
        raise self.fail("order", f"expected seq {expected}, found the earlier seq {seq}", seq)

    def check_checkpoint(self, seq: int, record: dict[str, Any]) -> None:
        problem = checkpoint_problem(record, self.public_key, self.kid)
        if problem is not None:
            raise self.fail(problem[0], problem[1], seq)
        if record["signed_seq"] != seq - 1 or record["signed_hash"] != self.hash:
            raise self.fail(
                "checkpoint mismatch",
                f"signs seq {record['signed_seq']} with hash {record['signed_hash'][:16]}..., "
                f"but the entry before it is seq {seq - 1} with hash {self.hash[:16]}... "
                "(entries before it were rewritten)",
                seq,
            )
        self.checkpoints += 1
        self.last_checkpoint_seq = seq
        self.signed_seq = seq - 1

    # --- after the walk ------------------------------------------------------------------------

    def check_trusted(self, heads: tuple[HeadStatement, ...]) -> None:
        """Every trusted head is in the log with its hashes (after the walk)."""
        for head in heads:
            self.segment, self.line = "trusted head", 0
            problem = head.problem(self.public_key)
            if problem is not None:
                raise self.fail("bad trusted head", problem, head.seq)
            for seq, expected in (
                (head.seq, head.hash),
                (head.checkpoint_seq, head.checkpoint_hash),
            ):
                if seq > self.seq:
                    raise self.fail(
                        "rollback",
                        f"the log ends at seq {self.seq}, before the trusted head "
                        f"{head.describe()}: it was cut short or rolled back to an earlier "
                        "state",
                        seq,
                    )
                if seq and self.seen.get(seq) != expected:
                    raise self.fail(
                        "trusted head mismatch",
                        f"seq {seq} has hash {str(self.seen.get(seq))[:16]}..., the trusted "
                        f"head says {expected[:16]}...: the log was rewritten or rolled back "
                        "and continued",
                        seq,
                    )

    def finish(self) -> None:
        if self.head is None:
            if self.checkpoints:
                self.segment, self.line = HEAD_NAME, 0
                raise self.fail(
                    "HEAD missing",
                    f"the log has {self.checkpoints} checkpoints but no {HEAD_NAME}: a "
                    "truncation before the last checkpoint cannot be ruled out",
                )
        elif self.seq < self.head.seq:
            self.line += 1
            raise self.fail(
                "truncated",
                f"the log ends at seq {self.seq} but HEAD says {self.head.seq}",
                self.seq + 1,
            )
        unsigned = self.seq - self.last_checkpoint_seq
        if unsigned:
            self.warnings.append(
                f"{unsigned} entries after the last checkpoint (seq "
                f"{self.last_checkpoint_seq + 1}..{self.seq}) are not signed yet: they could be "
                "removed or rewritten without a trace"
            )
        if not self.entries:
            self.warnings.append("the log is empty")
        torn = sorted(p.name for p in self.dir.glob("torn-*.bin"))
        if torn:
            self.warnings.append(
                f"{len(torn)} torn tail(s) moved aside by crash recovery: {', '.join(torn)}"
            )
        if self.intents:
            self.warnings.append(
                f"{len(self.intents)} write intent(s) without their request record (request "
                f"ids {', '.join(list(self.intents)[:3])}{'...' if len(self.intents) > 3 else ''}"
                "): the store may have changed without the outcome on record (a crash, an audit "
                "write failure, or a request still in progress)"
            )


def _seq_of(raw: bytes) -> int | None:
    parsed = parse_entry_head(raw)
    return parsed[0] if parsed else None


def _stated(raw: bytes) -> str:
    return raw[9:73].decode("ascii", "replace")


def verify(
    audit_dir: Path,
    public_key: Ed25519PublicKey,
    trusted_heads: tuple[HeadStatement, ...] = (),
) -> VerifyResult:
    """Verify the log in ``audit_dir`` with ``public_key`` (see the module docstring), and that
    it holds every head of ``trusted_heads`` (statements kept outside the log).

    Never raises for a damaged log: damage is the ``problem`` of the result. Raises
    :class:`AuditReadError` if ``audit_dir`` is not a directory or a file cannot be read."""
    if not audit_dir.is_dir():
        raise AuditReadError(f"{audit_dir}: no audit log here (not a directory)")
    started = time.perf_counter()
    watch = frozenset(s for h in trusted_heads for s in (h.seq, h.checkpoint_seq))
    walk = _Walk(audit_dir, public_key, watch)
    problem = None
    try:
        walk.read_head()
        walk.walk()
        walk.finish()
        walk.check_trusted(trusted_heads)
    except _Found as found:
        problem = found.problem
    except ValueError as exc:  # e.g. a float the JSON parser cannot re-serialise canonically
        problem = Problem("not canonical", walk.segment, walk.line, None, str(exc))
    return VerifyResult(
        audit_dir=str(audit_dir),
        key_id=walk.kid,
        problem=problem,
        entries=walk.entries,
        segments=walk.segments,
        checkpoints=walk.checkpoints,
        kinds=dict(walk.kinds),
        last_seq=walk.seq,
        last_hash=walk.hash,
        signed_seq=walk.signed_seq,
        unsigned_tail=walk.seq - walk.last_checkpoint_seq,
        head_seq=walk.head.seq if walk.head else None,
        first_at=walk.first_at,
        last_at=walk.last_at,
        warnings=tuple(walk.warnings),
        elapsed_s=time.perf_counter() - started,
        trusted_heads=trusted_heads,
        open_intents=len(walk.intents),
        open_intent_ids=tuple(list(walk.intents)[:MAX_OPEN_INTENTS_LISTED]),
        refusals=walk.refusals,
        last_checkpoint=walk.last_checkpoint,
    )


@dataclass(frozen=True)
class Pin:
    """An entry the log must hold, known from outside it: its seq and hash, the segment named
    with it (where to look first) and where the pin comes from (for messages), e.g. the
    store's latest anchor of this chain."""

    seq: int
    hash: str
    segment: str
    source: str


def _hash_in_segment(path: Path, seq: int) -> str | None:
    """The stated hash of entry ``seq`` in the segment ``path`` (None: not there)."""
    try:
        fh = path.open("rb")
    except OSError:
        return None
    with fh:
        for raw in fh:
            parsed = parse_entry_head(raw)
            if parsed is not None and parsed[0] == seq:
                return parsed[1]
    return None


def verify_tail(
    audit_dir: Path, public_key: Ed25519PublicKey, pins: tuple[Pin, ...] = ()
) -> Problem | None:
    """Check what a writer continues from (the first problem, or None).

    Checked: ``HEAD.json`` (format, signature, and that the log holds its entry with its
    hash, i.e. was not cut short or rewritten under it); the segment numbering; the last line
    of the segment before the last (it must be a validly signed checkpoint sealing that
    segment); every complete line of the last segment (hashes, canonical form, seqs, links,
    checkpoint signatures); and every pin (the log holds that seq with that hash). Earlier
    segments are not read beyond the entries HEAD or a pin names: ``verify`` checks the
    whole log. An incomplete last line is not a problem here (opening the log repairs it).
    Raises ``ValueError`` when the last segment's end cannot be found (see
    :func:`facegate.audit.tail.scan_tail`)."""
    walk = _Walk(audit_dir, public_key)
    try:
        walk.read_head()
        found = segments(audit_dir)
        for expected_no, (number, path) in enumerate(found, 1):
            if number != expected_no:
                walk.segment, walk.line = segment_name(expected_no), 0
                raise walk.fail(
                    "missing segment",
                    f"{segment_name(expected_no)} is absent (the next file is {path.name})",
                )
        wanted = {pin.seq for pin in pins}
        if walk.head is not None:
            wanted.add(walk.head.seq)
        walk.watch = frozenset(wanted)
        first_walked = 1
        if found:
            last_path = found[-1][1]
            tail = scan_tail(last_path)
            if len(found) > 1:
                first_walked = _check_seal(walk, found[-2][1])
            walk.segment, walk.line = last_path.name, 0
            with last_path.open("rb") as fh:
                offset = 0
                for raw in fh:
                    if offset >= tail.good_end:
                        break
                    offset += len(raw)
                    walk.line += 1
                    walk.check_line(raw, fh)
        head_pin = (
            ()
            if walk.head is None
            else (Pin(walk.head.seq, walk.head.hash, walk.head.segment, HEAD_NAME),)
        )
        for pin in head_pin + pins:
            _check_pin(walk, pin, first_walked)
    except _Found as found_problem:
        return found_problem.problem
    return None


def _check_seal(walk: _Walk, path: Path) -> int:
    """Check the last line of the segment before the last (a signed checkpoint); set the
    walk's state to it; return its seq."""
    tail = scan_tail(path)
    walk.segment, walk.line = path.name, tail.lines
    raw = last_line(path, tail.good_end)
    parsed = parse_entry_head(raw) if raw is not None else None
    if raw is None or parsed is None or tail.torn_bytes:
        raise walk.fail("torn line", "the segment before the last does not end with an entry")
    obj = json.loads(raw)
    walk.seq, walk.hash = parsed[0] - 1, str(obj.get("prev"))
    walk.check_line(raw, iter(()))
    if parsed[2] != CHECKPOINT:
        raise walk.fail(
            "unsealed segment",
            "the segment before the last does not end with a checkpoint (entries after its "
            "seal were removed, or it was rewritten)",
            parsed[0],
        )
    return parsed[0]


def _check_pin(walk: _Walk, pin: Pin, first_walked: int) -> None:
    walk.segment, walk.line = pin.source, 0
    if pin.seq > walk.seq:
        raise walk.fail(
            "rollback" if pin.source != HEAD_NAME else "truncated",
            f"the log ends at seq {walk.seq} but {pin.source} says {pin.seq}: it was cut "
            "short or rolled back to an earlier state",
            pin.seq,
        )
    if pin.seq >= first_walked:
        stated = walk.seen.get(pin.seq)
    else:
        stated = _hash_in_segment(walk.dir / pin.segment, pin.seq)
    if stated != pin.hash:
        raise walk.fail(
            "HEAD mismatch" if pin.source == HEAD_NAME else "trusted head mismatch",
            f"{pin.source} names seq {pin.seq} with hash {pin.hash[:16]}..., the log has "
            f"{str(stated)[:16]}... (in {pin.segment}): the log was rewritten after it",
            pin.seq,
        )
