"""The statistics behind the transparency report: one pass over audit records.

:class:`ReportAccumulator` is fed every record in log order (``add``) and turns its running
counts into a :class:`~facegate.audit.report_model.TransparencyReport` (``finish``). Memory is
constant apart from per-operation latencies (8 bytes per request), the review ids seen, the
distinct case references of searches (to count them) and one counter per day. The record
conventions it relies on are listed in :mod:`facegate.audit.report`.
"""

from __future__ import annotations

import math
import statistics
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from facegate.audit.query import (
    KNOWN_KINDS,
    Filters,
    iso,
    number,
    record_time,
    section,
    text,
    text_list,
)
from facegate.audit.report_model import (
    FORMAT,
    Count,
    DayCount,
    Integrity,
    OperationLatency,
    Period,
    PolicyDenials,
    QuarterSearches,
    RegistryChanges,
    RequestBreakdown,
    Retention,
    Reviews,
    Searches,
    Totals,
    TransparencyReport,
)
from facegate.operations import DEFAULT_THRESHOLD_PCT, in_group

FACE_COMPARISON_OPERATIONS: frozenset[str] = in_group("face_comparison")
"""The ``face_comparison`` group of :mod:`facegate.operations` (the scope of Amazon's
moratorium): every operation whose answer depends on comparing faces."""

SIMILARITY_BANDS: tuple[tuple[str, float, float], ...] = (
    (f"below {DEFAULT_THRESHOLD_PCT:g}", -math.inf, DEFAULT_THRESHOLD_PCT),
    (f"{DEFAULT_THRESHOLD_PCT:g}-90", DEFAULT_THRESHOLD_PCT, 90.0),
    ("90-95", 90.0, 95.0),
    ("95-99", 95.0, 99.0),
    ("99-100", 99.0, math.inf),
)
"""Top-similarity bands ``[low, high)``: 80 is Rekognition's default threshold (read from
:data:`facegate.operations.DEFAULT_THRESHOLD_PCT`), 95 and 99 the two
law-enforcement figures Amazon gave (governance-rules.md §0 item 3, AMZ-PUBSAFETY-BP)."""

CANDIDATE_BUCKETS: tuple[tuple[str, int, float], ...] = (
    ("0", 0, 0),
    ("1", 1, 1),
    ("2", 2, 2),
    ("3-5", 3, 5),
    ("6-10", 6, 10),
    ("11-20", 11, 20),
    ("21-50", 21, 50),
    ("51+", 51, math.inf),
)
"""Candidate-list sizes ``[low, high]``; 2-50 is the range the FBI's NGI-IPS offers (GAO-16-267)."""

DECISION_ORDER = ("allow", "deny", "error", "none")
TERMINAL_REVIEW = ("released", "rejected", "expired")
_REVIEW_ACTION_STATUS = {
    "review.reject": "rejected",
    "review.expire": "expired",
    "review.release": "released",
}
_VOTES = ("review.confirm", "review.reject")
_EVENT_KINDS = ("review", "registry", "retention", "startup", "shutdown")
MAX_DENSE_DAYS = 3660
"""The per-day table covers every day of the period (zeros included) up to ten years; a longer
or open period covers the days from the first to the last record."""

NO_SECTOR, NO_PURPOSE, NO_ORG = "(none)", "(not stated)", "(unauthenticated)"
NO_OPERATION, DEFAULT_DENY = "(unknown)", "(default deny: no policy permitted)"


def _label(value: object, empty: str) -> str:
    got = text(value)
    return got if got and got != "-" else empty


def _sorted(counter: Mapping[str, int]) -> tuple[Count, ...]:
    """Largest first, then by key, so reports are stable."""
    return tuple(Count(k, n) for k, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def _ordered(counter: Mapping[str, int], order: Iterable[str]) -> tuple[Count, ...]:
    """Every key of ``order`` (zeros included), then any other key largest first."""
    fixed = tuple(order)
    rest = {k: n for k, n in counter.items() if k not in fixed}
    return tuple(Count(k, counter.get(k, 0)) for k in fixed) + _sorted(rest)


def _band(value: float, bands: Iterable[tuple[str, float, float]], *, closed: bool) -> str:
    for name, low, high in bands:
        if low <= value and (value <= high if closed else value < high):
            return name
    raise AssertionError(f"no band for {value}")  # bands cover every number


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


def _quarter(at: float) -> str:
    moment = datetime.fromtimestamp(at, UTC)
    return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"


def _p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile of sorted ``values``."""
    return values[max(0, math.ceil(0.9 * len(values)) - 1)]


@dataclass
class _Quarter:
    searches: int = 0
    with_authorization: int = 0
    exigent: int = 0
    with_case_ref: int = 0
    candidates: int = 0


@dataclass
class ReportAccumulator:
    """Running counts; ``add`` every record in log order, then ``finish`` once."""

    period: Filters
    read: int = 0
    seqs: list[int] = field(default_factory=list)
    log_kinds: Counter[str] = field(default_factory=Counter)
    in_period: Counter[str] = field(default_factory=Counter)
    first_at: float | None = None
    last_at: float | None = None
    # requests
    by: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    orgs: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)
    days: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    denials: Counter[str] = field(default_factory=Counter)
    denial_orgs: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    latencies: defaultdict[str, array[float]] = field(
        default_factory=lambda: defaultdict(lambda: array("d"))
    )
    # searches
    s: Counter[str] = field(default_factory=Counter)
    cases: set[str] = field(default_factory=set)
    quarters: defaultdict[str, _Quarter] = field(default_factory=lambda: defaultdict(_Quarter))
    # reviews: hold times and first terminal times over the whole log, outcomes in the period
    held_at: dict[str, float] = field(default_factory=dict)
    held_in_period: set[str] = field(default_factory=set)
    decided_at: dict[str, float] = field(default_factory=dict)
    decided: list[tuple[str, str, float, float | None]] = field(default_factory=list)
    reviewers: set[str] = field(default_factory=set)
    anonymous: Counter[str] = field(default_factory=Counter)
    votes: int = 0
    # completeness: intents waiting for their request record (whole log; the value says
    # whether the intent lies in the period), integrity events in the period
    intents: dict[str, bool] = field(default_factory=dict)
    integrity: Counter[str] = field(default_factory=Counter)
    refusals_counted: int = 0
    write_failures: int = 0

    def add(self, record: Mapping[str, Any], seq: int | None) -> None:
        self.read += 1
        if seq is not None:
            self.seqs.append(seq)
        kind = text(record.get("kind"))
        self.log_kinds[kind if kind in KNOWN_KINDS else "other"] += 1
        if kind == "recovery" and record.get("cause") == "write_failed":
            self.write_failures += 1
        at = record_time(record)
        if kind == "request" and at is not None:
            self._note_hold(record, at)
        elif kind == "review" and at is not None:
            self._note_review(record, at)
        if kind == "intent":
            request_id = text(section(record.get("request")).get("request_id"))
            self.intents[request_id] = self.period.in_period(record)
        elif kind == "request" and self.intents:
            self.intents.pop(text(record.get("request_id")), None)
        if not self.period.in_period(record):
            return
        self.in_period[kind] += 1
        if at is not None:
            self.first_at = at if self.first_at is None else min(self.first_at, at)
            self.last_at = at if self.last_at is None else max(self.last_at, at)
        if kind == "request":
            self._request(record, at)
        elif kind == "retention":
            self._retention(record)
        elif kind == "registry":
            self.by["registry"][_label(record.get("action"), NO_OPERATION)] += 1
        elif kind == "refusals":
            self._refusals(record, at)
        elif kind == "integrity":
            self.integrity[text(record.get("action"))] += 1
        elif kind == "review":
            action = text(record.get("action"))
            if action in _VOTES:
                self.votes += 1
                details = section(record.get("details"))
                voter = text(details.get("operator")) or text(record.get("actor"))
                if voter:
                    self.reviewers.add(voter)

    # --- requests --------------------------------------------------------------------------------

    def _refusals(self, record: Mapping[str, Any], at: float | None) -> None:
        """A ``refusals`` record: each of its rows is ``count`` requests refused before a
        decision (at authentication), counted like single ``none`` records (no latency, no
        organisation, the claimed key not counted as a key in use). Rows of console sign-ins
        (reason ``console.*``) are counted as refusals, not as API requests."""
        rows = record.get("rows")
        other = section(record.get("other"))
        for row in [*(rows if isinstance(rows, list) else ()), {**other, "reason": "(other)"}]:
            row = section(row)
            count = row.get("count")
            if isinstance(count, int) and not isinstance(count, bool) and count > 0:
                reason = _label(row.get("reason"), "(other)")
                self.refusals_counted += count
                if not reason.startswith("console."):
                    self._request({"decision": "none", "error_code": reason}, at, weight=count)

    def _request(self, record: Mapping[str, Any], at: float | None, weight: int = 1) -> None:
        decision = _label(record.get("decision"), "none")
        operation = _label(record.get("operation"), NO_OPERATION)
        org = text(record.get("org_id"))
        self.by["decision"][decision] += weight
        self.by["operation"][operation] += weight
        self.by["sector"][_label(record.get("sector"), NO_SECTOR)] += weight
        self.by["purpose"][_label(record.get("purpose"), NO_PURPOSE)] += weight
        self.by["organisation"][org or NO_ORG] += weight
        if org:
            self.orgs.add(org)
        if key := text(record.get("access_key_id")):
            self.keys.add(key)
        latency = number(record.get("latency_ms"))
        if latency is not None:
            self.latencies[operation].append(latency)
        error = text(record.get("error_code"))
        if error and decision != "deny":
            self.by["error"][error] += weight
        day = self.days[_day(at)] if at is not None else Counter[str]()
        day["requests"] += weight
        if decision == "deny":
            day["denials"] += 1
            for policy in text_list(record.get("policy_ids")) or (DEFAULT_DENY,):
                self.denials[policy] += 1
                self.denial_orgs[policy].add(org or NO_ORG)
        if operation in FACE_COMPARISON_OPERATIONS:
            self._search(record, decision, error, at, day)

    def _search(
        self,
        record: Mapping[str, Any],
        decision: str,
        error: str,
        at: float | None,
        day: Counter[str],
    ) -> None:
        s = self.s
        s["attempted"] += 1
        if decision == "deny":
            s["denied"] += 1
            return
        if decision != "allow" or error:
            s["failed"] += 1
            return
        s["performed"] += 1
        day["searches"] += 1
        self.by["search_sector"][_label(record.get("sector"), NO_SECTOR)] += 1
        result = section(record.get("result"))
        raw = result.get("candidates")
        candidates = max(0, raw) if isinstance(raw, int) and not isinstance(raw, bool) else 0
        s["candidates"] += candidates
        s["with_candidates" if candidates > 0 else "without_candidates"] += 1
        self.by["candidates"][_band(candidates, CANDIDATE_BUCKETS, closed=True)] += 1
        top = number(result.get("top_similarity_pct"))
        if top is not None:
            self.by["similarity"][_band(top, SIMILARITY_BANDS, closed=False)] += 1
        case = text(record.get("case_ref"))
        authorised = bool(text(record.get("authorization_ref")))
        exigent = record.get("exigent") is True
        if case:
            s["with_case_ref"] += 1
            self.cases.add(case)
        s["with_authorization"] += authorised
        s["exigent"] += exigent
        s["exigent_without_authorization"] += exigent and not authorised
        s["neither"] += not authorised and not exigent
        s["realtime"] += record.get("realtime") is True
        if at is not None:
            q = self.quarters[_quarter(at)]
            q.searches += 1
            q.with_authorization += authorised
            q.exigent += exigent
            q.with_case_ref += bool(case)
            q.candidates += candidates

    # --- events ----------------------------------------------------------------------------------

    def _retention(self, record: Mapping[str, Any]) -> None:
        details = section(record.get("details"))
        count = details.get("count")
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            faces = count
        elif isinstance(details.get("face_ids"), list | tuple):
            faces = len(details["face_ids"])
        else:
            faces = 1
        self.by["retention"][text(record.get("org_id")) or NO_ORG] += faces

    def _note_hold(self, record: Mapping[str, Any], at: float) -> None:
        review_id = text(record.get("review_id"))
        if review_id and section(record.get("result")).get("held_for_review") is True:
            self.held_at.setdefault(review_id, at)
            if self.period.in_period(record):
                self.held_in_period.add(review_id)

    def _note_review(self, record: Mapping[str, Any], at: float) -> None:
        details = section(record.get("details"))
        action = text(record.get("action"))
        status = text(details.get("status")) or _REVIEW_ACTION_STATUS.get(action, "")
        if status not in TERMINAL_REVIEW:
            return
        ids = text_list(details.get("review_ids")) or (text(record.get("subject")),)
        if ids == ("",):  # the sweeper's bulk form: {"expired": n}, no ids
            n = details.get("expired", details.get("count"))
            if isinstance(n, int) and not isinstance(n, bool) and self.period.in_period(record):
                self.anonymous[status] += max(0, n)
            return
        fallback = number(details.get("held_at")) or number(details.get("created_at"))
        for review_id in ids:
            if not review_id or review_id in self.decided_at:
                continue  # the first terminal event decides; later ones are repeats
            self.decided_at[review_id] = at
            if self.period.in_period(record):
                self.decided.append((review_id, status, at, fallback))

    # --- the report ------------------------------------------------------------------------------

    def finish(
        self, *, title: str, verified: bool | None, verify_summary: str, generated_at: float
    ) -> TransparencyReport:
        events = sum(self.in_period[k] for k in _EVENT_KINDS)
        decisions = self.by["decision"]
        return TransparencyReport(
            format=FORMAT,
            title=title,
            period=Period(
                since=iso(self.period.since_s) if self.period.since_s is not None else None,
                until=iso(self.period.until_s) if self.period.until_s is not None else None,
                first_record=iso(self.first_at) if self.first_at is not None else None,
                last_record=iso(self.last_at) if self.last_at is not None else None,
                generated_at=iso(generated_at),
            ),
            totals=Totals(
                records=sum(self.in_period.values()),
                requests=self.in_period["request"] + self.refusals_counted,
                allowed=decisions["allow"],
                denied=decisions["deny"],
                failed=decisions["error"],
                refused=decisions["none"],
                events=events,
                organisations=len(self.orgs),
                access_keys=len(self.keys),
            ),
            requests=RequestBreakdown(
                by_sector=_sorted(self.by["sector"]),
                by_purpose=_sorted(self.by["purpose"]),
                by_operation=_sorted(self.by["operation"]),
                by_decision=_ordered(decisions, DECISION_ORDER),
                by_organisation=_sorted(self.by["organisation"]),
                per_day=self._per_day(),
            ),
            denials=tuple(
                PolicyDenials(c.key, c.count, len(self.denial_orgs[c.key]))
                for c in _sorted(self.denials)
            ),
            searches=self._searches(),
            reviews=self._reviews(),
            retention=Retention(
                faces_deleted=sum(self.by["retention"].values()),
                by_organisation=_sorted(self.by["retention"]),
            ),
            registry=RegistryChanges(
                orgs_created=self.by["registry"]["org.create"],
                orgs_disabled=self.by["registry"]["org.disable"],
                keys_created=self.by["registry"]["key.create"],
                keys_revoked=self.by["registry"]["key.revoke"],
                by_action=_sorted(self.by["registry"]),
            ),
            errors=_sorted(self.by["error"]),
            latency=self._latency(),
            integrity=Integrity(
                records_read=self.read,
                first_seq=min(self.seqs) if self.seqs else None,
                last_seq=max(self.seqs) if self.seqs else None,
                checkpoints=self.log_kinds["checkpoint"],
                recoveries=self.log_kinds["recovery"],
                other_records=self.log_kinds["other"],
                startups=self.in_period["startup"],
                shutdowns=self.in_period["shutdown"],
                verified=verified,
                verify_summary=verify_summary,
                writes_without_outcome=sum(self.intents.values()),
                refusals_counted=self.refusals_counted,
                tamper_suspected=self.integrity["audit.tamper_suspected"],
                write_failures=self.write_failures,
            ),
        )

    def _per_day(self) -> tuple[DayCount, ...]:
        lo, hi = self.period.since_s, self.period.until_s
        if lo is None or hi is None or (hi - lo) / 86400.0 > MAX_DENSE_DAYS:
            if self.first_at is None or self.last_at is None:
                return ()
            lo, hi = self.first_at, self.last_at + 1e-3
        start = datetime.fromtimestamp(lo, UTC).date()
        end = datetime.fromtimestamp(hi - 1e-3, UTC).date()  # until is exclusive
        out = []
        day = start
        while day <= end:
            name = day.isoformat()
            c = self.days.get(name, Counter[str]())
            out.append(DayCount(name, c["requests"], c["searches"], c["denials"]))
            day += timedelta(days=1)
        return tuple(out)

    def _searches(self) -> Searches:
        s = self.s
        return Searches(
            attempted=s["attempted"],
            performed=s["performed"],
            denied=s["denied"],
            failed=s["failed"],
            with_candidates=s["with_candidates"],
            without_candidates=s["without_candidates"],
            candidates_returned=s["candidates"],
            candidate_counts=_ordered(self.by["candidates"], (b[0] for b in CANDIDATE_BUCKETS)),
            top_similarity=_ordered(self.by["similarity"], (b[0] for b in SIMILARITY_BANDS)),
            with_case_ref=s["with_case_ref"],
            distinct_cases=len(self.cases),
            with_authorization=s["with_authorization"],
            exigent=s["exigent"],
            exigent_without_authorization=s["exigent_without_authorization"],
            neither=s["neither"],
            realtime=s["realtime"],
            by_sector=_sorted(self.by["search_sector"]),
            by_quarter=tuple(
                QuarterSearches(
                    name, q.searches, q.with_authorization, q.exigent, q.with_case_ref, q.candidates
                )
                for name, q in sorted(self.quarters.items())
            ),
        )

    def _reviews(self) -> Reviews:
        outcomes = Counter(status for _, status, _, _ in self.decided) + self.anonymous
        waits = []
        for review_id, _, at, fallback in self.decided:
            held = self.held_at.get(review_id, fallback)
            if held is not None and at >= held:
                waits.append(at - held)
        until = self.period.until_s
        undecided = sum(
            1
            for r in self.held_in_period
            if r not in self.decided_at or (until is not None and self.decided_at[r] >= until)
        )
        # Decisions recorded without review ids cannot be matched to their holds; assume they
        # concern reviews held in the period (exact when reviews expire within the period).
        pending = max(0, undecided - sum(self.anonymous.values()))
        return Reviews(
            held=len(self.held_in_period),
            released=outcomes["released"],
            rejected=outcomes["rejected"],
            expired=outcomes["expired"],
            pending_at_end=pending,
            votes=self.votes,
            reviewers=len(self.reviewers),
            median_decision_s=statistics.median(waits) if waits else None,
        )

    def _latency(self) -> tuple[OperationLatency, ...]:
        out = []
        for operation in sorted(self.latencies):
            values = sorted(self.latencies[operation])
            out.append(
                OperationLatency(operation, len(values), statistics.median(values), _p90(values))
            )
        return tuple(out)
