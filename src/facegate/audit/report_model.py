"""The transparency report as typed data, and its flat views for files.

:class:`TransparencyReport` is built by :func:`facegate.audit.report.build_report` and is plain
data: counts, medians, labels, ISO times. It holds no FaceIds, no input hashes, no case or
authorisation references (only how many there were), no images and no face vectors, so every
writer can publish all of it.

Two flat views serve the writers:

* :func:`tables` lists every table of the report (one row per key) with its column names and the
  chart that shows it; the CSV writer writes each as ``<name>.csv`` and the HTML page draws each.
* :func:`summary_rows` lists every single number as ``(section, field, value)``.

:func:`report_from_dict` rebuilds a report from the dict of :func:`report_to_dict` (and so from
the JSON file), so a published JSON report can be rendered again.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

FORMAT = "facegate-transparency-report/1"

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Count:
    """One row of a "by X" table: a label and how many."""

    key: str
    count: int


@dataclass(frozen=True)
class PolicyDenials:
    """Requests denied with ``policy_id`` among the deciding policies, and how many distinct
    organisations those denials concerned."""

    policy_id: str
    denials: int
    organisations: int


@dataclass(frozen=True)
class OperationLatency:
    """Server latency of one operation over all its requests (any outcome), in milliseconds.
    The median is the middle value (mean of the two middle ones for an even count); p90 is the
    nearest-rank 90th percentile."""

    operation: str
    requests: int
    median_ms: float
    p90_ms: float


@dataclass(frozen=True)
class DayCount:
    """One UTC day: all requests, face-comparison searches performed, denials."""

    day: str
    requests: int
    searches: int
    denials: int


@dataclass(frozen=True)
class QuarterSearches:
    """Face-comparison searches performed in one calendar quarter (``2026-Q4``), in the shape of
    the Massachusetts quarterly reports: how many, how many under a warrant or court order, how
    many in an emergency (exigent), with a case reference, and the number of matches returned."""

    quarter: str
    searches: int
    with_authorization: int
    exigent: int
    with_case_ref: int
    candidates: int


@dataclass(frozen=True)
class Period:
    """The reporting period ``[since, until)`` (``None``: open), the first and last record in
    it, and when the report was generated; all ISO 8601 UTC."""

    since: str | None
    until: str | None
    first_record: str | None
    last_record: str | None
    generated_at: str


@dataclass(frozen=True)
class Totals:
    """Records in the period. ``failed``: allowed but the operation failed (decision
    ``error``); ``refused``: stopped before any policy decision (authentication, validation,
    unknown operation: decision ``none``), including the refusals at authentication that
    ``refusals`` records count in aggregate (in ``requests`` too); ``events``: governance
    events (review, registry, retention, startup, shutdown)."""

    records: int
    requests: int
    allowed: int
    denied: int
    failed: int
    refused: int
    events: int
    organisations: int
    access_keys: int


@dataclass(frozen=True)
class RequestBreakdown:
    """Requests by sector, purpose, operation, decision and organisation, and per UTC day."""

    by_sector: tuple[Count, ...]
    by_purpose: tuple[Count, ...]
    by_operation: tuple[Count, ...]
    by_decision: tuple[Count, ...]
    by_organisation: tuple[Count, ...]
    per_day: tuple[DayCount, ...]


@dataclass(frozen=True)
class Searches:
    """Face comparison (CompareFaces, SearchFaces, SearchFacesByImage, SearchUsers,
    SearchUsersByImage). ``attempted`` counts every such request; ``performed`` those allowed
    and completed, which every other field describes. ``candidates_returned`` sums the
    candidates the searches produced, whether returned at once or held for human review
    (Massachusetts: "number of matches"); ``top_similarity`` bands the best
    similarity of searches that had one; ``neither`` = no warrant or court order and not exigent.
    """

    attempted: int
    performed: int
    denied: int
    failed: int
    with_candidates: int
    without_candidates: int
    candidates_returned: int
    candidate_counts: tuple[Count, ...]
    top_similarity: tuple[Count, ...]
    with_case_ref: int
    distinct_cases: int
    with_authorization: int
    exigent: int
    exigent_without_authorization: int
    neither: int
    realtime: int
    by_sector: tuple[Count, ...]
    by_quarter: tuple[QuarterSearches, ...]


@dataclass(frozen=True)
class Reviews:
    """Human review: results held in the period, reviews decided in the period by outcome,
    reviews held in the period still undecided when it ended, operator votes and distinct
    reviewers, and the median time from hold to decision (seconds; ``None`` without any)."""

    held: int
    released: int
    rejected: int
    expired: int
    pending_at_end: int
    votes: int
    reviewers: int
    median_decision_s: float | None


@dataclass(frozen=True)
class Retention:
    """Faces deleted because their retention deadline passed, in total and by organisation."""

    faces_deleted: int
    by_organisation: tuple[Count, ...]


@dataclass(frozen=True)
class RegistryChanges:
    """Registry events: the four headline changes and every action with its count."""

    orgs_created: int
    orgs_disabled: int
    keys_created: int
    keys_revoked: int
    by_action: tuple[Count, ...]


@dataclass(frozen=True)
class Integrity:
    """The log as read (whole log, not only the period): records, sequence numbers when the
    caller passed log entries, checkpoints, recovery records (a torn tail repaired after a
    crash, or the log recovering after a write failure: ``write_failures``), records of unknown
    kinds; start-ups and shutdowns in the period; what the verification run elsewhere found
    (``verified`` ``None``: not verified); in the period: ``writes_without_outcome`` (intents
    without their request record: the store may have changed without the outcome on record),
    ``refusals_counted`` (requests refused at authentication, counted in aggregate records and
    included in the request totals) and ``tamper_suspected`` (starts that continued a log
    whose tail failed verification). Fields with defaults were added later; reports written
    before them read as 0."""

    records_read: int
    first_seq: int | None
    last_seq: int | None
    checkpoints: int
    recoveries: int
    other_records: int
    startups: int
    shutdowns: int
    verified: bool | None
    verify_summary: str
    writes_without_outcome: int = 0
    refusals_counted: int = 0
    tamper_suspected: int = 0
    write_failures: int = 0


@dataclass(frozen=True)
class TransparencyReport:
    """Everything a transparency report says; see the module docstring for what it never says."""

    format: str
    title: str
    period: Period
    totals: Totals
    requests: RequestBreakdown
    denials: tuple[PolicyDenials, ...]
    searches: Searches
    reviews: Reviews
    retention: Retention
    registry: RegistryChanges
    errors: tuple[Count, ...]
    latency: tuple[OperationLatency, ...]
    integrity: Integrity


# --- flat views ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """One table of the report. ``name`` is a file-safe id (``requests_by_sector``); ``chart``
    says how the HTML page draws it: ``hbar`` (horizontal bars of the second column), ``bands``
    (a histogram of the second column), ``days`` (bars per day), or ``none`` (table only)."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Scalar, ...], ...]
    chart: str = "hbar"
    note: str = ""


def _counts(
    name: str, title: str, key: str, rows: tuple[Count, ...], chart: str = "hbar", note: str = ""
) -> Table:
    return Table(name, title, (key, "count"), tuple((r.key, r.count) for r in rows), chart, note)


def tables(report: TransparencyReport) -> tuple[Table, ...]:
    """Every table, in the order the HTML page shows them. Names, titles and columns are part of
    the file format (CSV file names and headers)."""
    req, s = report.requests, report.searches
    return (
        Table(
            "requests_per_day",
            "Requests per day (UTC)",
            ("day", "requests", "searches", "denials"),
            tuple((d.day, d.requests, d.searches, d.denials) for d in req.per_day),
            "days",
        ),
        _counts("requests_by_sector", "Requests by sector", "sector", req.by_sector),
        _counts("requests_by_purpose", "Requests by purpose", "purpose", req.by_purpose),
        _counts("requests_by_operation", "Requests by operation", "operation", req.by_operation),
        _counts("requests_by_decision", "Requests by decision", "decision", req.by_decision),
        _counts(
            "requests_by_organisation",
            "Requests by organisation",
            "organisation",
            req.by_organisation,
        ),
        Table(
            "denials_by_policy",
            "Denials by policy",
            ("policy_id", "denials", "organisations"),
            tuple((d.policy_id, d.denials, d.organisations) for d in report.denials),
            "hbar",
            "A denial decided by several policies counts once under each of them.",
        ),
        _counts("searches_by_sector", "Searches performed by sector", "sector", s.by_sector),
        _counts(
            "search_candidate_counts",
            "Searches by number of candidates",
            "candidates",
            s.candidate_counts,
            "bands",
        ),
        _counts(
            "search_top_similarity",
            "Searches by top similarity (%)",
            "band",
            s.top_similarity,
            "bands",
            "Bands include their lower bound: 90-95 means 90 <= similarity < 95.",
        ),
        Table(
            "searches_by_quarter",
            "Searches by quarter",
            (
                "quarter",
                "searches",
                "with_authorization",
                "exigent",
                "with_case_ref",
                "candidates",
            ),
            tuple(
                (
                    q.quarter,
                    q.searches,
                    q.with_authorization,
                    q.exigent,
                    q.with_case_ref,
                    q.candidates,
                )
                for q in s.by_quarter
            ),
            "none",
        ),
        _counts(
            "retention_by_organisation",
            "Faces deleted at their retention deadline, by organisation",
            "organisation",
            report.retention.by_organisation,
        ),
        _counts(
            "registry_by_action", "Registry changes by action", "action", report.registry.by_action
        ),
        _counts("errors_by_code", "Errors by code", "code", report.errors),
        Table(
            "latency_by_operation",
            "Latency by operation (ms)",
            ("operation", "requests", "median_ms", "p90_ms"),
            tuple((r.operation, r.requests, r.median_ms, r.p90_ms) for r in report.latency),
            "none",
        ),
    )


SUMMARY_SECTIONS = (
    "period",
    "totals",
    "searches",
    "reviews",
    "retention",
    "registry",
    "integrity",
)


def summary_rows(report: TransparencyReport) -> tuple[tuple[str, str, Scalar], ...]:
    """Every single value as ``(section, field, value)``: the title and format, then the scalar
    fields of each section in :data:`SUMMARY_SECTIONS` (tables are in :func:`tables`)."""
    rows: list[tuple[str, str, Scalar]] = [
        ("report", "format", report.format),
        ("report", "title", report.title),
    ]
    for name in SUMMARY_SECTIONS:
        part = getattr(report, name)
        for f in dataclasses.fields(part):
            value = getattr(part, f.name)
            if not isinstance(value, tuple):
                rows.append((name, f.name, value))
    return tuple(rows)


# --- dict round trip -----------------------------------------------------------------------------


def report_to_dict(report: TransparencyReport) -> dict[str, Any]:
    """The report as JSON-ready data (tuples become lists)."""
    return dataclasses.asdict(report)


def report_from_dict(data: Mapping[str, Any]) -> TransparencyReport:
    """Rebuild a report from :func:`report_to_dict` output (e.g. a parsed JSON report).

    Raises ``ValueError`` when the data is not a report of this :data:`FORMAT`."""
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} document")
    built = _build(TransparencyReport, data, "report")
    assert isinstance(built, TransparencyReport)
    return built


def _build(kind: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected an object")
        hints = typing.get_type_hints(kind)
        args = {}
        for f in dataclasses.fields(kind):
            if f.name not in value and f.default is not dataclasses.MISSING:
                continue  # a field added later: an older report reads as its default
            if f.name not in value:
                raise ValueError(f"{where}.{f.name}: missing")
            args[f.name] = _build(hints[f.name], value[f.name], f"{where}.{f.name}")
        return kind(**args)
    origin = typing.get_origin(kind)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where}: expected a list")
        return tuple(_build(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (Union, types.UnionType):
        if value is None and type(None) in typing.get_args(kind):
            return None
        (inner,) = (a for a in typing.get_args(kind) if a is not type(None))
        return _build(inner, value, where)
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind in (str, int, bool) and type(value) is kind:
        return value
    raise ValueError(f"{where}: expected {getattr(kind, '__name__', kind)}")
