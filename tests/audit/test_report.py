"""The transparency report: exact counts over a realistic quarter (``report_stream``), period
boundaries, the review, retention and band conventions, and the JSON, CSV and HTML files (well
formed, escaped, self-contained, no FaceIds, numbers that round-trip)."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from facegate.audit.query import AuditQueryError
from facegate.audit.record import EventRecord, RequestRecord, ResultSummary
from facegate.audit.report import (
    FACE_COMPARISON_OPERATIONS,
    build_report,
    read_json,
    render_html,
    write_csv,
    write_html,
    write_json,
)
from facegate.audit.report_files import csv_cell
from facegate.audit.report_model import (
    Count,
    DayCount,
    OperationLatency,
    PolicyDenials,
    QuarterSearches,
    TransparencyReport,
    report_from_dict,
    report_to_dict,
    summary_rows,
    tables,
)
from facegate.audit.report_stats import DEFAULT_DENY
from facegate.operations import OPERATIONS
from tests.audit.report_stream import (
    EU_REALTIME,
    EXPECTED,
    MORATORIUM,
    SINCE,
    UNTIL,
    as_entries,
    build_stream,
    face_ids_in,
    ts,
)

STREAM = build_stream()
GENERATED = ts("2027-01-02T09:00:00Z")


def q4(records: list[dict[str, Any]] | None = None, **kw: Any) -> TransparencyReport:
    return build_report(
        STREAM if records is None else records,
        "2026-10-01",
        "2026-12-31",
        title=kw.pop("title", "facegate transparency report, 2026 Q4"),
        generated_at=GENERATED,
        **kw,
    )


REPORT = q4(verified=True, verify_summary="596 entries, 4 checkpoints, chain intact")


def c(*pairs: tuple[str, int]) -> tuple[Count, ...]:
    return tuple(Count(k, n) for k, n in pairs)


# --- statistics ----------------------------------------------------------------------------------


def test_period_and_totals() -> None:
    p, t = REPORT.period, REPORT.totals
    assert (p.since, p.until) == ("2026-10-01T00:00:00Z", "2027-01-01T00:00:00Z")
    assert p.first_record == "2026-10-01T00:00:00Z"
    assert p.last_record == "2026-12-31T20:00:00Z"  # the last hold; January is outside
    assert p.generated_at == "2027-01-02T09:00:00Z"
    assert t.requests == EXPECTED.requests == 500
    assert (t.allowed, t.denied, t.failed, t.refused) == (392, 83, 13, 12)
    assert t.allowed + t.denied + t.failed + t.refused == t.requests
    assert t.events == 32 + 19 + 13 + 3  # review, retention, registry, start-up/shutdown
    assert t.records == 500 + 67 + 3 + 1  # and 3 checkpoints and a recovery in the period
    assert (t.organisations, t.access_keys) == (3, 6)


def test_requests_by_sector_purpose_operation_decision_and_organisation() -> None:
    r = REPORT.requests
    assert r.by_sector == c(
        ("commercial", 196), ("ngo", 175), ("law_enforcement", 117), ("(none)", 12)
    )
    assert r.by_organisation == c(
        ("shopco", 196), ("findkids", 175), ("metro-pd", 117), ("(unauthenticated)", 12)
    )
    assert r.by_purpose == c(
        ("missing_persons", 40 + 7 + 5 + 40 + 20 + 50),
        ("access_control", 80 + 10 + 30 + 8),
        ("investigation", 70),
        ("identity_verification", 60),
        ("trafficking_victims", 60),
        ("(not stated)", 12),
        ("personalisation", 8),
    )
    assert r.by_operation == c(
        ("SearchFacesByImage", 60 + 40 + 7 + 5 + 120),
        ("DetectFaces", 90),
        ("IndexFaces", 80),
        ("CompareFaces", 70),
        ("(unknown)", 12),
        ("CreateCollection", 8),
        ("SearchFaces", 8),
    )
    assert r.by_decision == c(("allow", 392), ("deny", 83), ("error", 13), ("none", 12))


def test_requests_per_day_cover_every_day_of_the_quarter() -> None:
    days = REPORT.requests.per_day
    assert len(days) == 92
    assert (days[0].day, days[-1].day) == ("2026-10-01", "2026-12-31")
    assert sum(d.requests for d in days) == 500
    assert sum(d.searches for d in days) == EXPECTED.searches_performed
    assert sum(d.denials for d in days) == 83
    assert [d.day for d in days] == sorted({d.day for d in days})


def test_denials_by_policy_with_distinct_organisations() -> None:
    assert REPORT.denials == (
        PolicyDenials(MORATORIUM, 70, 1),
        PolicyDenials(EU_REALTIME, 15, 2),  # metro-pd and findkids
        PolicyDenials(DEFAULT_DENY, 8, 1),
    )


def test_face_comparison_searches() -> None:
    s = REPORT.searches
    assert s.attempted == EXPECTED.searches_attempted == 310
    assert s.performed == EXPECTED.searches_performed == 224
    assert (s.denied, s.failed) == (83, 3)
    assert s.attempted == s.performed + s.denied + s.failed
    assert (s.with_candidates, s.without_candidates) == (167, 57)
    assert s.candidates_returned == EXPECTED.candidates_returned == 907
    assert s.candidate_counts == c(
        ("0", 57),
        ("1", 67),
        ("2", 10),
        ("3-5", 30),
        ("6-10", 0),
        ("11-20", 60),
        ("21-50", 0),
        ("51+", 0),
    )
    assert s.top_similarity == c(
        ("below 80", 0), ("80-90", 20), ("90-95", 70), ("95-99", 10), ("99-100", 67)
    )
    assert sum(b.count for b in s.top_similarity) == s.with_candidates
    assert s.by_sector == c(("ngo", 120), ("commercial", 57), ("law_enforcement", 47))


def test_searches_in_the_massachusetts_shape() -> None:
    s = REPORT.searches
    assert (s.with_case_ref, s.distinct_cases) == (EXPECTED.with_case_ref, EXPECTED.distinct_cases)
    assert (s.with_authorization, s.exigent, s.exigent_without_authorization) == (40, 7, 7)
    assert s.neither == 224 - 40 - 7
    assert s.realtime == 4
    assert s.by_quarter == (QuarterSearches("2026-Q4", 224, 40, 7, 127, 907),)


def test_reviews() -> None:
    r = REPORT.reviews
    assert r.held == 20
    # 12 released in the period plus the result held on 30 September and released on 1 October
    assert (r.released, r.rejected, r.expired) == (13, 5, 2)
    assert r.pending_at_end == 1  # held on 31 December, released on 1 January
    assert r.votes == 12 * 2 + 5 + 2
    assert r.reviewers == 3
    # 13 x 2 h and 5 x 30 min (the bulk expiry has no ids, so no time): median 2 h
    assert r.median_decision_s == 7200.0


def test_retention_registry_errors_latency_integrity() -> None:
    assert REPORT.retention.faces_deleted == EXPECTED.faces_deleted == 61
    assert REPORT.retention.by_organisation == c(("shopco", 40), ("findkids", 15), ("metro-pd", 6))
    g = REPORT.registry
    assert (g.orgs_created, g.orgs_disabled, g.keys_created, g.keys_revoked) == (3, 0, 5, 1)
    assert g.by_action == c(
        ("key.create", 5),
        ("operator.create", 3),
        ("org.create", 3),
        ("key.revoke", 1),
        ("org.use_cases", 1),
    )
    assert REPORT.errors == c(
        ("InvalidSignatureException", 12),
        ("InvalidImageFormatException", 10),
        ("InvalidParameterException", 3),
    )
    detect = next(x for x in REPORT.latency if x.operation == "DetectFaces")
    # 10 x 5 ms and 8 each of 20..29 ms: the 45th/46th values are 24, the 81st is 28
    assert detect == OperationLatency("DetectFaces", 90, 24.0, 28.0)
    assert [x.operation for x in REPORT.latency] == sorted(x.operation for x in REPORT.latency)
    i = REPORT.integrity
    assert (i.records_read, i.checkpoints, i.recoveries, i.other_records) == (len(STREAM), 4, 1, 0)
    assert (i.startups, i.shutdowns) == (2, 1)
    assert (i.first_seq, i.last_seq) == (None, None)  # records, not entries
    assert (i.verified, i.verify_summary) == (True, "596 entries, 4 checkpoints, chain intact")


def test_entries_give_the_same_report_with_sequence_numbers() -> None:
    from_entries = q4(
        as_entries(STREAM), verified=True, verify_summary=REPORT.integrity.verify_summary
    )
    assert (from_entries.integrity.first_seq, from_entries.integrity.last_seq) == (1, len(STREAM))
    assert replace(from_entries, integrity=REPORT.integrity) == REPORT


def test_records_straight_from_to_json_give_the_same_report() -> None:
    """Before a JSON round trip tuples are tuples: same numbers."""
    raw_stream = build_stream(json_round_trip=False)
    first_request = next(r for r in raw_stream if r["kind"] == "request")
    assert isinstance(first_request["policy_ids"], tuple)
    assert q4(raw_stream) == q4()
    raw = [
        RequestRecord(
            at=SINCE + k,
            request_id=str(k),
            operation="SearchFaces",
            decision="allow",
            latency_ms=1.0,
            policy_ids=(MORATORIUM,),
            result=ResultSummary(candidates=2, top_similarity_pct=99.0),
        ).to_json()
        for k in range(3)
    ]
    assert q4(raw).searches.candidate_counts[2] == Count("2", 3)


def test_period_boundaries() -> None:
    def req(at: float) -> dict[str, Any]:
        return RequestRecord(
            at=at,
            request_id="r",
            operation="DetectFaces",
            decision="allow",
            latency_ms=1.0,
            org_id="o",
        ).to_json()

    stream = [req(SINCE - 0.001), req(SINCE), req(UNTIL - 0.001), req(UNTIL)]
    assert q4(stream).totals.requests == 2
    assert build_report(stream, SINCE, UNTIL, generated_at=0).totals.requests == 2
    assert build_report(stream, SINCE, "2026-12-31T23:59:59Z").totals.requests == 1
    assert build_report(stream, "2026-09-30", "2026-10-01").totals.requests == 2
    assert build_report(stream, "2026-09-30", "2026-10-01").requests.per_day == (
        DayCount("2026-09-30", 1, 0, 0),
        DayCount("2026-10-01", 1, 0, 0),
    )
    assert build_report(stream).totals.requests == 4
    assert build_report(stream, since=UNTIL).totals.requests == 1
    with pytest.raises(AuditQueryError, match="must be after"):
        build_report(stream, "2026-12-31", "2026-10-01")


def test_an_open_period_spans_the_records_and_counts_quarters() -> None:
    report = build_report(STREAM, generated_at=GENERATED)
    assert report.period.since is None
    assert report.period.until is None
    days = report.requests.per_day
    assert days[0].day == "2026-09-26"  # the first checkpoint
    assert days[-1].day == "2027-01-01"  # the January requests and votes
    assert [q.quarter for q in report.searches.by_quarter] == ["2026-Q3", "2026-Q4"]
    assert report.searches.by_quarter[0].searches == 1  # the result held on 30 September
    assert report.totals.requests == 500 + 10 + 10 + 1
    assert report.reviews.pending_at_end == 0  # released on 1 January, inside an open period


def test_similarity_bands_include_their_lower_bound() -> None:
    tops = [79.99, 80.0, 89.999, 90.0, 95.0, 98.99, 99.0, 100.0]
    stream = [
        RequestRecord(
            at=SINCE + k,
            request_id=str(k),
            operation="CompareFaces",
            decision="allow",
            latency_ms=1.0,
            result=ResultSummary(candidates=1, top_similarity_pct=t),
        ).to_json()
        for k, t in enumerate(tops)
    ]
    assert q4(stream).searches.top_similarity == c(
        ("below 80", 1), ("80-90", 2), ("90-95", 1), ("95-99", 2), ("99-100", 2)
    )


def test_candidate_buckets() -> None:
    sizes = [0, 1, 2, 3, 5, 6, 10, 11, 20, 21, 50, 51, 1000]
    stream = [
        RequestRecord(
            at=SINCE + k,
            request_id=str(k),
            operation="SearchFacesByImage",
            decision="allow",
            latency_ms=1.0,
            result=ResultSummary(candidates=n),
        ).to_json()
        for k, n in enumerate(sizes)
    ]
    assert q4(stream).searches.candidate_counts == c(
        ("0", 1),
        ("1", 1),
        ("2", 1),
        ("3-5", 2),
        ("6-10", 2),
        ("11-20", 2),
        ("21-50", 2),
        ("51+", 2),
    )
    assert q4(stream).searches.candidates_returned == sum(sizes)


def _held(k: int, at: float) -> dict[str, Any]:
    return RequestRecord(
        at=at,
        request_id=str(k),
        operation="SearchFacesByImage",
        decision="allow",
        latency_ms=1.0,
        review_id=f"rev-{k}",
        result=ResultSummary(candidates=1, top_similarity_pct=99.5, held_for_review=True),
    ).to_json()


def _review(at: float, action: str, subject: str = "", **details: Any) -> dict[str, Any]:
    return EventRecord(
        at=at, kind="review", action=action, actor="sweeper", subject=subject, details=details
    ).to_json()


def test_review_events_by_id_list_and_first_decision_wins() -> None:
    t = SINCE + 100
    stream = [
        _held(1, t),
        _held(2, t),
        _held(3, t),
        _held(4, t),
        _review(t + 60, "review.expire", review_ids=["rev-1", "rev-2"]),  # status from action
        _review(t + 120, "review.reject", "rev-3", operator="op-x"),  # status from action
        _review(t + 180, "review.confirm", "rev-3", status="released"),  # already decided
        _review(t + 240, "review.confirm", "rev-4", status="pending", operator="op-y"),
    ]
    r = q4(stream).reviews
    assert (r.held, r.released, r.rejected, r.expired, r.pending_at_end) == (4, 0, 1, 2, 1)
    assert (r.votes, r.reviewers) == (3, 3)  # two operators and the actor of the last confirm
    assert r.median_decision_s == 60.0  # 60, 60, 120


def test_review_times_fall_back_to_the_event_details() -> None:
    t = SINCE + 100
    stream = [_review(t + 90, "review.confirm", "rev-9", status="released", held_at=t)]
    r = q4(stream).reviews
    assert (r.held, r.released, r.median_decision_s) == (0, 1, 90.0)
    assert q4([_review(t, "review.confirm", "rev-9", status="released")]).reviews == replace(
        r, median_decision_s=None
    )


def test_retention_counts_each_form() -> None:
    def deletion(**details: Any) -> dict[str, Any]:
        return EventRecord(
            SINCE + 1, "retention", "face.delete", "sweeper", "", "org-a", details
        ).to_json()

    stream = [deletion(), deletion(count=7), deletion(face_ids=["a", "b", "c"]), deletion(count=-1)]
    assert q4(stream).retention.faces_deleted == 1 + 7 + 3 + 1
    assert q4(stream).retention.by_organisation == c(("org-a", 12))


def test_face_comparison_operations_match_the_operation_registry() -> None:
    assert {n for n, op in OPERATIONS.items() if op.compares_faces} == set(
        FACE_COMPARISON_OPERATIONS
    )
    assert "AssociateFaces" in FACE_COMPARISON_OPERATIONS


def test_an_empty_log_gives_an_empty_report() -> None:
    report = build_report([], "2026-10-01", "2026-10-03", generated_at=GENERATED)
    assert report.totals.requests == 0
    assert report.totals.records == 0
    assert report.period.first_record is None
    assert [d.requests for d in report.requests.per_day] == [0, 0, 0]
    assert report.reviews.median_decision_s is None
    assert report.integrity.verified is None
    html = render_html(report)
    assert html.count("No records in this period.") >= 10
    assert "Not verified." in html
    assert report_from_dict(report_to_dict(report)) == report


def test_malformed_records_are_counted_not_fatal() -> None:
    stream: list[Any] = [
        {
            "kind": "request",
            "at": SINCE,
            "decision": 5,
            "result": "x",
            "latency_ms": "fast",
            "policy_ids": None,
            "operation": None,
        },
        {"kind": "request", "at": SINCE, "decision": "deny", "result": {"candidates": True}},
        {"kind": "martian", "at": SINCE},
        {"at": SINCE},
        {"kind": "request", "at": 1e300, "operation": "DetectFaces"},
        {"kind": "review", "at": "noon", "action": "review.expire", "details": {"expired": "2"}},
    ]
    report = q4(stream)
    assert report.totals.requests == 2  # the one in year 10^292 is outside the period
    assert build_report(stream).totals.requests == 3  # and in an open one, without a day
    assert report.requests.by_decision == c(("allow", 0), ("deny", 1), ("error", 0), ("none", 1))
    assert report.denials == (PolicyDenials(DEFAULT_DENY, 1, 1),)
    assert report.integrity.other_records == 2
    assert report.latency == ()


# --- files ---------------------------------------------------------------------------------------


def test_json_round_trip(tmp_path: Path) -> None:
    path = write_json(REPORT, tmp_path / "report.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "facegate-transparency-report/1"
    assert data["searches"]["performed"] == 224
    assert data["denials"][0] == {"policy_id": MORATORIUM, "denials": 70, "organisations": 1}
    assert data == json.loads(json.dumps(report_to_dict(REPORT)))
    assert read_json(path) == REPORT
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left
    assert path.stat().st_mode & 0o777 == 0o644  # a report is meant to be read
    path.chmod(0o600)
    write_json(REPORT, path)
    assert path.stat().st_mode & 0o777 == 0o600  # a replaced file keeps its mode


def test_read_json_refuses_other_documents(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a facegate-transparency-report/1 document"):
        read_json(path)
    data = report_to_dict(REPORT)
    data["totals"]["requests"] = "500"
    with pytest.raises(ValueError, match=r"report\.totals\.requests: expected int"):
        report_from_dict(data)
    del data["totals"]
    with pytest.raises(ValueError, match=r"report\.totals: missing"):
        report_from_dict(data)


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_csv_round_trip(tmp_path: Path) -> None:
    written = write_csv(REPORT, tmp_path / "csv")
    names = [p.name for p in written]
    assert names[0] == "summary.csv"
    assert names[1:] == [f"{t.name}.csv" for t in tables(REPORT)]
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == sorted(names)
    summary = _read_csv(tmp_path / "csv" / "summary.csv")
    assert summary[0] == ["section", "field", "value"]
    values = {(s, f): v for s, f, v in summary[1:]}
    assert values[("totals", "requests")] == "500"
    assert values[("searches", "candidates_returned")] == "907"
    assert values[("reviews", "median_decision_s")] == "7200.0"
    assert values[("integrity", "verified")] == "true"
    assert values[("integrity", "first_seq")] == ""
    assert len(summary) - 1 == len(summary_rows(REPORT))
    for table in tables(REPORT):
        rows = _read_csv(tmp_path / "csv" / f"{table.name}.csv")
        assert tuple(rows[0]) == table.columns
        assert rows[1:] == [[csv_cell(v) for v in row] for row in table.rows]
    by_policy = _read_csv(tmp_path / "csv" / "denials_by_policy.csv")
    assert by_policy[1] == [MORATORIUM, "70", "1"]
    per_day = _read_csv(tmp_path / "csv" / "requests_per_day.csv")
    assert sum(int(r[1]) for r in per_day[1:]) == 500
    latency = _read_csv(tmp_path / "csv" / "latency_by_operation.csv")
    assert ["DetectFaces", "90", "24.0", "28.0"] in latency


def test_csv_neutralises_formulas_but_not_numbers() -> None:
    assert csv_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert csv_cell("-1+2") == "'-1+2"
    assert csv_cell(-3) == "-3"
    assert csv_cell(2.5) == "2.5"
    assert csv_cell(None) == ""
    assert csv_cell(False) == "false"
    assert csv_cell("metro-pd") == "metro-pd"


# --- HTML ----------------------------------------------------------------------------------------

VOID = {"meta", "br", "hr", "img", "link", "input", "wbr", "col", "area", "base", "source"}


class Structure(HTMLParser):
    """Checks nesting (every non-void element closed in order) and records what the tests
    inspect: tags, attributes, figures with their svg and tables, text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.starts: list[tuple[str, dict[str, str | None]]] = []
        self.figures: list[dict[str, Any]] = []
        self.svg_titles: list[str] = []
        self.text: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.starts.append((tag, a))
        if tag == "figure":
            self.figures.append({"attrs": a, "svg": 0, "tables": []})
        if self.figures and "figure" in [*self.stack, tag]:
            if tag == "svg":
                self.figures[-1]["svg"] += 1
            if tag == "table":
                self.figures[-1]["tables"].append(a.get("id"))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "title" and "svg" in self.stack:
            self.svg_titles.append(data)
        self.text.append(data)


def parse(html: str) -> Structure:
    parser = Structure()
    parser.feed(html)
    parser.close()
    assert parser.errors == []
    assert parser.stack == []
    return parser


def test_html_is_well_formed_with_one_svg_and_one_table_per_chart(tmp_path: Path) -> None:
    html = write_html(REPORT, tmp_path / "report.html").read_text(encoding="utf-8")
    page = parse(html)
    assert page.doctype.lower() == "doctype html"
    tags = [t for t, _ in page.starts]
    assert tags.count("html") == tags.count("head") == tags.count("body") == 1
    chart_titles = [a for t, a in page.starts if t == "title" and a.get("id")]
    assert len(chart_titles) == tags.count("svg")  # one labelled title per chart (+ tooltips)
    charts = [t for t in tables(REPORT) if t.chart != "none"]
    assert tags.count("svg") == len(charts) == len(page.figures) == 13
    ids = {a.get("id") for _, a in page.starts}
    for figure, table in zip(page.figures, charts, strict=True):
        assert figure["attrs"]["id"] == f"fig-{table.name}"
        assert figure["svg"] == 1
        assert figure["attrs"]["data-table"] == f"tbl-{table.name}"
        assert f"tbl-{table.name}" in ids  # in the figure, or in the appendix for per-day
        if table.chart != "days":
            assert figure["tables"] == [f"tbl-{table.name}"]
    assert tags.count("table") == len(tables(REPORT))
    for tag, attrs in page.starts:
        if tag == "svg":
            assert attrs["role"] == "img"
            labelled = (attrs["aria-labelledby"] or "").split()
            assert len(labelled) == 2
            assert all(x in ids for x in labelled)
    assert any(t == "Requests by sector" for t in page.svg_titles)
    assert html.count("<caption>") == len(tables(REPORT))


def test_html_is_self_contained_and_script_free() -> None:
    html = render_html(REPORT)
    page = parse(html)
    tags = {t for t, _ in page.starts}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "base", "form"}
    assert [t for t, _ in page.starts].count("style") == 1  # the page's own CSS, inline
    for _, attrs in page.starts:
        for name, value in attrs.items():
            assert not name.startswith("on")
            if name in ("src", "href"):
                assert (value or "").startswith("#")
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    assert "url(" not in html
    assert "@import" not in html
    assert "@font-face" not in html
    csp = next(a for t, a in page.starts if a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in (csp["content"] or "")


def test_html_says_what_it_contains_never_contains_and_follows() -> None:
    text = " ".join(parse(render_html(REPORT)).text)
    for phrase in (
        "What this report contains",
        "What it never contains",
        "No images and no face vectors",
        "No FaceIds",
        "RCW 43.386",
        "M.G.L. c. 6 §220",
        "Regulation (EU) 2024/1689",
        "Art. 12",
        "Art. 26(6)",
        "Art. 5(4)-(7)",
        "Verified.",
        "596 entries, 4 checkpoints, chain intact",
        "2026-10-01T00:00:00Z to 2027-01-01T00:00:00Z",
        "Median time from hold to decision",
        "2 h 0 min",
    ):
        assert phrase in text, phrase
    failed = render_html(replace(REPORT, integrity=replace(REPORT.integrity, verified=False)))
    assert "Verification FAILED." in failed


def test_html_contains_no_face_ids_hashes_keys_or_case_references() -> None:
    html = render_html(REPORT) + json.dumps(report_to_dict(REPORT))
    face_ids = face_ids_in(STREAM)
    assert len(face_ids) > 100
    assert not [f for f in face_ids if f in html]
    hashes = {h for r in STREAM if r["kind"] == "request" for h in r["input_sha256"]}
    assert not [h for h in hashes if h in html]
    keys = {r["access_key_id"] for r in STREAM if r.get("access_key_id")}
    assert not [k for k in keys if k in html]
    cases = {r["case_ref"] for r in STREAM if r.get("case_ref")}
    assert not [x for x in cases if re.search(rf"\b{re.escape(x)}\b", html)]
    assert "review" in html
    assert not re.search(r"rev-[0-9a-f]{20}", html)


def test_html_escapes_values_from_records() -> None:
    evil_org = "<script>alert(1)</script>"
    evil_policy = 'pack.forbid-"><img src=x onerror=alert(2)>'
    stream = [
        RequestRecord(
            at=SINCE + k,
            request_id=str(k),
            operation="SearchFacesByImage",
            decision="deny",
            latency_ms=1.0,
            org_id=evil_org,
            sector="ngo",
            policy_ids=(evil_policy,),
            error_code="AccessDeniedException",
        ).to_json()
        for k in range(3)
    ] + [
        EventRecord(SINCE + 9, "retention", "face.delete", "sweeper", "", evil_org).to_json(),
        EventRecord(SINCE + 9, "registry", "<b>x</b>.create", "cli", "", evil_org).to_json(),
    ]
    report = build_report(
        stream,
        "2026-10-01",
        "2026-10-02",
        title="Q4 <i>report</i> & co",
        verify_summary="<a href=x>",
        generated_at=GENERATED,
    )
    html = render_html(report)
    page = parse(html)
    tags = {t for t, _ in page.starts}
    assert not tags & {"script", "img", "i", "b"}
    assert all((a.get("href") or "").startswith("#") for t, a in page.starts if t == "a")
    assert evil_org not in html
    assert "<img" not in html
    assert "<b>x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<title>Q4 &lt;i&gt;report&lt;/i&gt; &amp; co</title>" in html
    text = "".join(page.text)
    assert evil_org in text  # shown as text, in tables and chart labels


def test_html_charts_handle_long_labels_and_many_days() -> None:
    long_policy = "x" * 200
    stream = [
        RequestRecord(
            at=SINCE + k * 86400.0,
            request_id=str(k),
            operation="SearchFaces",
            decision="deny",
            latency_ms=1.0,
            org_id="o",
            policy_ids=(long_policy,),
        ).to_json()
        for k in range(365)
    ]
    report = build_report(stream, "2026-10-01", "2027-09-30", generated_at=GENERATED)
    assert len(report.requests.per_day) == 365
    html = render_html(report)
    parse(html)
    assert "x" * 59 + "…" in html  # cut in the picture
    assert f"<td>{long_policy}</td>" in html  # whole in the table
