"""Transparency reports from the audit trail: statistics, and the JSON, CSV and HTML writers.

``build_report(records, since, until, title=...)`` reads audit records once (in constant memory
apart from per-operation latencies and per-review times) and returns a
:class:`~facegate.audit.report_model.TransparencyReport`; ``write_json``, ``write_csv`` and
``write_html`` publish it. The report answers what accountability rules ask a deployer to
publish, in counts only:

* Washington RCW 43.386 (governance-rules.md US-WA-*): use records "sufficient to facilitate
  public reporting and auditing" and an annual report on use and compliance: requests by purpose,
  sector and operation, warrants and court orders, real-time use, human review outcomes.
* Massachusetts M.G.L. c. 6 §220 (US-MA-2020): per search the date, number of matches and reason,
  reported quarterly: searches per quarter, with a warrant or court order, exigent, matches.
* EU AI Act Art. 12 and 26(6), Art. 5(4)-(7) (EU-12-3, EU-5-4-7): logging of each use, two-person
  verification, annual reports on real-time use.

Record conventions it relies on (``audit/record.py``):

* ``request`` records: ``decision`` allow / deny / error / none, ``policy_ids``, ``result``
  (``candidates``, ``top_similarity_pct``, ``held_for_review``), context fields.
* ``review`` events: ``subject`` = review id, ``details["status"]`` = the review's status after
  the event (``pending``, ``released``, ``rejected``, ``expired``); without it the action decides
  (``review.reject`` -> rejected, ``review.expire`` -> expired, ``review.release`` -> released).
  The first terminal event of a review decides it. A bulk event may list
  ``details["review_ids"]``; one with only a count (the sweeper's ``review.expire`` with
  ``details["expired"]``) adds that many outcomes, which cannot be timed or matched to their
  holds: ``pending_at_end`` then assumes they concern reviews held in the period.
  ``review.confirm`` / ``review.reject`` are operator votes (``details["operator"]``, else
  ``actor``).
* ``retention`` events: one deleted face each (the sweeper's form; ``subject`` is the FaceId and
  is never reported), or ``details["count"]`` faces, or ``len(details["face_ids"])``.
* ``registry`` events: ``org.create``, ``org.disable``, ``key.create``, ``key.revoke`` are the
  headline counts; every action is listed.
* ``checkpoint`` and ``recovery`` records (written by the log) are only counted, in the integrity
  section; so are start-ups and shutdowns.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from facegate.audit.query import Filters, TimeBound, unwrap
from facegate.audit.report_files import read_json, write_csv, write_json
from facegate.audit.report_html import render_html, write_html
from facegate.audit.report_model import TransparencyReport
from facegate.audit.report_stats import (
    CANDIDATE_BUCKETS,
    FACE_COMPARISON_OPERATIONS,
    SIMILARITY_BANDS,
    ReportAccumulator,
)

__all__ = [
    "CANDIDATE_BUCKETS",
    "FACE_COMPARISON_OPERATIONS",
    "SIMILARITY_BANDS",
    "TransparencyReport",
    "build_report",
    "read_json",
    "render_html",
    "write_csv",
    "write_html",
    "write_json",
]


def build_report(
    records: Iterable[Mapping[str, Any]],
    since: TimeBound = None,
    until: TimeBound = None,
    *,
    title: str = "facegate transparency report",
    verified: bool | None = None,
    verify_summary: str = "",
    generated_at: float | None = None,
) -> TransparencyReport:
    """The transparency report of the records in ``[since, until)``.

    ``records``: record dicts or log entries (``{"seq", "record", ...}``), in log order, the
    whole log or at least everything up to ``until`` (a review held before ``since`` and decided
    in the period needs its hold to time the decision; the integrity counts cover what is
    passed). ``since`` / ``until``: epoch seconds, ISO 8601 strings, aware datetimes or dates
    (a date-only ``until`` includes that day; see :class:`~facegate.audit.query.Filters`).
    ``verified`` / ``verify_summary``: the outcome of ``audit verify``, run by the caller
    (``None``: not verified). ``generated_at``: epoch seconds (default: now), for reproducible
    reports. Raises :class:`~facegate.audit.query.AuditQueryError` for a bad period.
    """
    period = Filters(since=since, until=until)
    acc = ReportAccumulator(period)
    for item in records:
        record, seq = unwrap(item)
        acc.add(record, seq)
    return acc.finish(
        title=title,
        verified=verified,
        verify_summary=verify_summary,
        generated_at=time.time() if generated_at is None else generated_at,
    )
