"""Selecting audit records and printing them: the engine of ``facegate audit query``.

Input is any iterable of record dicts as :meth:`RequestRecord.to_json` and
:meth:`EventRecord.to_json` produce them (also after a JSON round trip: tuples become lists), or of
log entries ``{"seq", "prev", "hash", "record"}``: an item with a ``"record"`` mapping is an entry,
it is matched on its record and yielded whole, so the caller keeps the sequence number and hashes.
Records of kinds this module does not know (``checkpoint``, ``recovery``...) pass through when no
field filter excludes them.

Times are epoch seconds (UTC) inside; on the command line they are ISO 8601 (``2026-11-01``,
``2026-11-01T12:00:00Z``, ``2026-11-01T13:00+01:00``) or epoch seconds (``1793491200``). A
period is half open, ``since <= at < until``; a date-only ``until`` means the end of that day
(``--until 2026-11-30`` includes all of 30 November), a date-only ``since`` its start.

Bad input raises :class:`AuditQueryError` (a ``ValueError``) with a one-line message naming the
option and what was expected.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from facegate.audit.record import DECISIONS, KINDS

KNOWN_KINDS: frozenset[str] = frozenset((*KINDS, "recovery"))
"""Kinds a filter may name: the record kinds plus the log's own ``recovery`` records."""

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EPOCH = re.compile(r"\d{1,12}(\.\d+)?")
MAX_FILTER_LEN = 256
MAX_EPOCH = 253402300799.0
"""9999-12-31T23:59:59Z: the last second ``datetime`` can show; later times are refused (from
the command line) or treated as absent (in a record)."""


class AuditQueryError(ValueError):
    """A filter value or time that cannot be used; ``str()`` is one line for the user."""


TimeBound = float | int | str | datetime | date | None
"""What :class:`Filters` accepts for ``since`` / ``until``: epoch seconds, an ISO 8601 string,
an aware ``datetime`` (naive ones are refused: the log is in UTC and a guess would shift the
period), or a ``date`` (its UTC midnight; the end of that day for ``until``)."""


def parse_time(raw: str, *, end: bool = False, option: str = "time") -> float:
    """Epoch seconds for a command-line time.

    Accepts ``YYYY-MM-DD`` (UTC midnight; with ``end=True`` the next midnight, so a date used as
    an upper bound includes its whole day), ISO 8601 date-times with ``Z`` or an offset (a
    date-time without one is read as UTC, which is what the log records), and epoch seconds.
    ``option`` names the flag in the error message.
    """
    value = raw.strip()
    if not value:
        raise AuditQueryError(f"{option}: empty; expected a date like 2026-11-01")
    if re.fullmatch(r"\d{8}", value):  # 20261101: a compact date, not 1970-08-23 in epoch seconds
        raise AuditQueryError(
            f"{option}: {value!r} is ambiguous; "
            f"write {value[:4]}-{value[4:6]}-{value[6:]} for a date"
        )
    if _EPOCH.fullmatch(value):
        return _in_range(float(value), option)
    if _DATE.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise AuditQueryError(f"{option}: {value!r} is not a calendar date") from None
        return _day_start(day, end=end)
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise AuditQueryError(
            f"{option}: {value!r} is not a date or time; expected ISO 8601 such as "
            "2026-11-01 or 2026-11-01T12:00:00Z, or epoch seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def to_epoch(value: TimeBound, *, end: bool = False, option: str = "time") -> float | None:
    """Normalise any :data:`TimeBound` to epoch seconds (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise AuditQueryError(f"{option}: expected a time, got a boolean")
    if isinstance(value, int | float):
        return _in_range(float(value), option)
    if isinstance(value, str):
        return parse_time(value, end=end, option=option)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise AuditQueryError(f"{option}: a datetime needs a time zone (the log is UTC)")
        return value.timestamp()
    if isinstance(value, date):
        return _day_start(value, end=end)
    raise AuditQueryError(f"{option}: cannot read a time from {type(value).__name__}")


def _in_range(at: float, option: str) -> float:
    if not (math.isfinite(at) and 0 <= at <= MAX_EPOCH):
        raise AuditQueryError(f"{option}: {at} is not a time between 1970 and 9999")
    return at


def _day_start(day: date, *, end: bool) -> float:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return (start + timedelta(days=1) if end else start).timestamp()


def iso(at: float | None) -> str:
    """``2026-11-01T12:00:00Z`` (milliseconds shown only when present); ``-`` for ``None``."""
    if at is None:
        return "-"
    moment = datetime.fromtimestamp(at, UTC)
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


@dataclass(frozen=True)
class Filters:
    """Which records to select; every field that is set must match (AND).

    * ``since`` / ``until``: the half-open period ``since <= at < until`` (see :data:`TimeBound`);
      records without a time are excluded when either bound is set.
    * ``org_id``: the record's organisation (requests and events).
    * ``operation``: the Rekognition operation name, exactly (``SearchFacesByImage``).
    * ``decision``: ``allow``, ``deny``, ``error`` or ``none`` (requests only).
    * ``case_ref``, ``purpose``: the request's context values, exactly.
    * ``kind``: ``request``, ``review``, ``registry``, ``retention``, ``startup``, ``shutdown``,
      ``checkpoint`` or ``recovery``.
    * ``policy_id``: one of the policies that decided the request (``@id`` of a Cedar policy).

    Construction validates every value and raises :class:`AuditQueryError`; ``since_s`` and
    ``until_s`` hold the normalised epoch bounds.
    """

    since: TimeBound = None
    until: TimeBound = None
    org_id: str | None = None
    operation: str | None = None
    decision: str | None = None
    case_ref: str | None = None
    kind: str | None = None
    purpose: str | None = None
    policy_id: str | None = None
    since_s: float | None = field(init=False, default=None, compare=False)
    until_s: float | None = field(init=False, default=None, compare=False)

    def __post_init__(self) -> None:
        since_s = to_epoch(self.since, option="since")
        until_s = to_epoch(self.until, end=True, option="until")
        if since_s is not None and until_s is not None and until_s <= since_s:
            raise AuditQueryError(f"until ({iso(until_s)}) must be after since ({iso(since_s)})")
        object.__setattr__(self, "since_s", since_s)
        object.__setattr__(self, "until_s", until_s)
        for name in ("org_id", "operation", "decision", "case_ref", "kind", "purpose", "policy_id"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str) or not value or len(value) > MAX_FILTER_LEN:
                raise AuditQueryError(f"{name}: expected 1 to {MAX_FILTER_LEN} characters")
        if self.decision is not None and self.decision not in DECISIONS:
            raise AuditQueryError(
                f"decision: {self.decision!r} is not one of {', '.join(DECISIONS)}"
            )
        if self.kind is not None and self.kind not in KNOWN_KINDS:
            raise AuditQueryError(
                f"kind: {self.kind!r} is not one of {', '.join(sorted(KNOWN_KINDS))}"
            )

    def in_period(self, record: Mapping[str, Any]) -> bool:
        """Whether the record's time lies in ``[since, until)`` (always, with no bounds)."""
        if self.since_s is None and self.until_s is None:
            return True
        at = record_time(record)
        if at is None:
            return False
        if self.since_s is not None and at < self.since_s:
            return False
        return self.until_s is None or at < self.until_s

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether a record (not an entry) passes every filter that is set."""
        if not self.in_period(record):
            return False
        checks = (
            (self.kind, "kind"),
            (self.org_id, "org_id"),
            (self.operation, "operation"),
            (self.decision, "decision"),
            (self.case_ref, "case_ref"),
            (self.purpose, "purpose"),
        )
        for wanted, key in checks:
            if wanted is not None and record.get(key) != wanted:
                return False
        return self.policy_id is None or self.policy_id in text_list(record.get("policy_ids"))


def unwrap(item: Mapping[str, Any]) -> tuple[Mapping[str, Any], int | None]:
    """``(record, seq)`` of a log entry ``{"seq", "record", ...}``, or ``(item, None)`` for a
    bare record."""
    inner = item.get("record")
    if isinstance(inner, Mapping):
        seq = item.get("seq")
        return inner, seq if isinstance(seq, int) and not isinstance(seq, bool) else None
    return item, None


def select(
    items: Iterable[Mapping[str, Any]], filters: Filters | None = None
) -> Iterator[Mapping[str, Any]]:
    """The items (records or log entries, see the module docstring) that match ``filters``, in
    input order, lazily: a log of any size streams through in constant memory."""
    wanted = filters or Filters()
    for item in items:
        record, _ = unwrap(item)
        if wanted.matches(record):
            yield item


# --- reading fields defensively ------------------------------------------------------------------
# Records come from a file: a field of the wrong type is treated as absent, never a crash.


def record_time(record: Mapping[str, Any]) -> float | None:
    """The record's ``at`` as epoch seconds, or ``None`` if absent, not a number, or outside
    1970-9999."""
    at = number(record.get("at"))
    return at if at is not None and 0 <= at <= MAX_EPOCH else None


def number(value: object) -> float | None:
    """A finite int/float as float, else ``None`` (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def text(value: object) -> str:
    """A string value, else ``""``."""
    return value if isinstance(value, str) else ""


def text_list(value: object) -> tuple[str, ...]:
    """The strings of a list/tuple value (tuples become lists after JSON), else ``()``."""
    if isinstance(value, list | tuple):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def section(value: object) -> Mapping[str, Any]:
    """A nested mapping (``result``, ``details``), else an empty one."""
    return value if isinstance(value, Mapping) else {}


# --- output --------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def safe(value: object, limit: int = 80) -> str:
    """Text fit for one terminal line: control and bidi characters escaped (organisation ids,
    case references and notes come from users), cut to ``limit`` characters with an ellipsis."""
    out = _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", str(value))
    return out if len(out) <= limit else out[: limit - 1] + "…"


def format_line(item: Mapping[str, Any]) -> str:
    """One line per record for people, fields separated by two spaces::

        2026-11-03T09:12:44Z  #1042  request  acme-pd  SearchFacesByImage  deny  12.3ms
            policies=amazon-2020-police-moratorium.forbid-police-face-comparison  purpose=...

    (shown wrapped here; the output is a single line). Requests show time, sequence number (for
    log entries), kind, organisation, operation, decision, latency, then the non-empty details:
    policies, candidates and top similarity, review, purpose, case, authorisation, flags,
    error code (not the ``AccessDeniedException`` every denial answers). Events show time,
    kind, organisation, action, subject (for a retention deletion, the deleted FaceId), actor
    and resulting status. The FaceIds of results, access key ids and input hashes are not
    printed (``--json`` gives the full record: ids and hashes, never images or descriptors).
    """
    record, seq = unwrap(item)
    kind = text(record.get("kind")) or "?"
    head = [iso(record_time(record))]
    if seq is not None:
        head.append(f"#{seq}")
    head.append(kind)
    org = text(record.get("org_id")) or "-"
    if kind == "request":
        latency = number(record.get("latency_ms"))
        head += [
            org,
            text(record.get("operation")) or "-",
            text(record.get("decision")) or "-",
            f"{latency:.1f}ms" if latency is not None else "-",
        ]
        tail = _request_details(record)
    else:
        head += [org, text(record.get("action")) or "-"]
        tail = []
        if subject := text(record.get("subject")):
            tail.append(f"subject={safe(subject)}")
        if actor := text(record.get("actor")):
            tail.append(f"actor={safe(actor)}")
        details = section(record.get("details"))
        if (status := details.get("status")) is not None:
            tail.append(f"status={safe(status)}")
    return "  ".join([safe(h) for h in head] + tail)


def _request_details(record: Mapping[str, Any]) -> list[str]:
    parts: list[str] = []
    denied = record.get("decision") == "deny"
    policies = text_list(record.get("policy_ids"))
    if policies:
        parts.append("policies=" + ",".join(safe(p, 120) for p in policies))
    result = section(record.get("result"))
    candidates = result.get("candidates")
    if isinstance(candidates, int) and not isinstance(candidates, bool):
        parts.append(f"candidates={candidates}")
    top = number(result.get("top_similarity_pct"))
    if top is not None:
        parts.append(f"top={top:.2f}%")
    if result.get("held_for_review") is True:
        parts.append("held")
    for key, label in (
        ("review_id", "review"),
        ("collection_id", "collection"),
        ("purpose", "purpose"),
        ("case_ref", "case"),
        ("authorization_ref", "auth"),
        ("error_code", "error"),
    ):
        value = text(record.get(key))
        if key == "error_code" and value == "AccessDeniedException" and denied:
            continue  # what every denial answers; the policies say why
        if value:
            parts.append(f"{label}={safe(value)}")
    parts += [flag for flag in ("realtime", "exigent") if record.get(flag) is True]
    return parts


def json_line(item: Mapping[str, Any]) -> str:
    """The item as one line of JSON (keys sorted, compact; non-ASCII kept, control characters
    escaped by JSON itself): for ``facegate audit query --json`` and for tools like ``jq``."""
    return json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write_lines(
    items: Iterable[Mapping[str, Any]],
    out: TextIO,
    *,
    as_json: bool = False,
    limit: int | None = None,
) -> int:
    """Write one line per item to the text stream ``out`` (compact text, or JSON lines with
    ``as_json``), at most ``limit`` lines; returns the number written."""
    written = 0
    for item in items:
        if limit is not None and written >= limit:
            break
        out.write((json_line(item) if as_json else format_line(item)) + "\n")
        written += 1
    return written
