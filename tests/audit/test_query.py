"""Selecting and printing audit records (``facegate audit query``): time parsing, every filter,
entries versus records, and the one-line and JSON-lines renderings."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from facegate.audit.query import (
    AuditQueryError,
    Filters,
    format_line,
    iso,
    json_line,
    parse_time,
    select,
    to_epoch,
    write_lines,
)
from facegate.audit.record import EventRecord, RequestRecord, ResultSummary
from tests.audit.report_stream import (
    MORATORIUM,
    SINCE,
    UNTIL,
    as_entries,
    build_stream,
    face_ids_in,
    ts,
)

STREAM = build_stream()
Q4 = {"since": "2026-10-01", "until": "2026-12-31"}


def count(filters: Filters, items: list[dict[str, Any]] | None = None) -> int:
    return sum(1 for _ in select(STREAM if items is None else items, filters))


# --- times ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("2026-11-01", False, "2026-11-01T00:00:00Z"),
        ("2026-11-01", True, "2026-11-02T00:00:00Z"),
        ("2026-12-31", True, "2027-01-01T00:00:00Z"),
        ("2026-11-01T12:00:00Z", False, "2026-11-01T12:00:00Z"),
        ("2026-11-01T12:00:00z", True, "2026-11-01T12:00:00Z"),  # a time is never widened
        ("2026-11-01T13:30:00+01:30", False, "2026-11-01T12:00:00Z"),
        ("2026-11-01T12:00", False, "2026-11-01T12:00:00Z"),  # no zone: UTC, as the log
        ("2026-11-01 12:00:00.250Z", False, "2026-11-01T12:00:00.250Z"),
        ("1793491200", False, "2026-11-01T00:00:00Z"),
        (" 1793491200.5 ", False, "2026-11-01T00:00:00.500Z"),
    ],
)
def test_parse_time_accepts_iso_dates_times_and_epochs(text: str, end: bool, expected: str) -> None:
    assert iso(parse_time(text, end=end)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "since: empty"),
        ("   ", "since: empty"),
        ("2026-02-30", "since: '2026-02-30' is not a calendar date"),
        ("20261101", "since: '20261101' is ambiguous; write 2026-11-01 for a date"),
        ("yesterday", "since: 'yesterday' is not a date or time; expected ISO 8601"),
        ("2026-13-01T00:00:00Z", "is not a date or time"),
        ("01/11/2026", "is not a date or time"),
    ],
)
def test_parse_time_refuses_bad_input_with_a_clear_one_line_message(
    text: str, message: str
) -> None:
    with pytest.raises(AuditQueryError) as caught:
        parse_time(text, option="since")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)  # argparse type= functions may raise it


def test_to_epoch_takes_numbers_dates_and_aware_datetimes_only() -> None:
    moment = datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert to_epoch(None) is None
    assert to_epoch(1793491200) == 1793491200.0
    assert to_epoch(moment) == moment.timestamp()
    assert to_epoch(moment.astimezone(timezone(timedelta(hours=-5)))) == moment.timestamp()
    assert to_epoch(date(2026, 11, 1)) == ts("2026-11-01T00:00:00Z")
    assert to_epoch(date(2026, 11, 1), end=True) == ts("2026-11-02T00:00:00Z")
    with pytest.raises(AuditQueryError, match="needs a time zone"):
        to_epoch(datetime(2026, 11, 1, 12))
    with pytest.raises(AuditQueryError, match="boolean"):
        to_epoch(True)
    for bad in (float("nan"), float("inf"), -1.0, 1e13):
        with pytest.raises(AuditQueryError, match="is not a time between 1970 and 9999"):
            to_epoch(bad)
    with pytest.raises(AuditQueryError, match="is not a time between 1970 and 9999"):
        parse_time("999999999999")


def test_iso_shows_milliseconds_only_when_present() -> None:
    assert iso(None) == "-"
    assert iso(ts("2026-11-01T00:00:00Z")) == "2026-11-01T00:00:00Z"
    assert iso(ts("2026-11-01T00:00:00Z") + 0.25) == "2026-11-01T00:00:00.250Z"


# --- Filters validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"since": "2026-12-01", "until": "2026-11-01"}, "until (2026-11-02T00:00:00Z) must be"),
        ({"since": "2026-11-01T12:00:00Z", "until": "2026-11-01T12:00:00Z"}, "must be after"),
        ({"decision": "denied"}, "decision: 'denied' is not one of allow, deny, error, none"),
        ({"kind": "requests"}, "kind: 'requests' is not one of"),
        ({"org_id": ""}, "org_id: expected 1 to 256 characters"),
        ({"case_ref": "x" * 257}, "case_ref: expected 1 to 256 characters"),
        ({"until": "soon"}, "until: 'soon' is not a date or time"),
    ],
)
def test_filters_refuse_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(AuditQueryError) as caught:
        Filters(**kwargs)
    assert message in str(caught.value)


def test_filters_normalise_their_bounds_and_a_date_until_includes_its_day() -> None:
    f = Filters(since="2026-10-01", until="2026-12-31")
    assert (f.since_s, f.until_s) == (SINCE, UNTIL)
    assert Filters(since=SINCE, until=UNTIL) == Filters(since=SINCE, until=UNTIL)
    assert Filters(until="2026-12-31T00:00:00Z").until_s == ts("2026-12-31T00:00:00Z")
    assert Filters().since_s is None
    assert Filters().until_s is None
    assert Filters(kind="checkpoint").kind == "checkpoint"
    assert Filters(kind="recovery").kind == "recovery"


# --- select: each field --------------------------------------------------------------------------


def test_select_without_filters_yields_everything_in_order() -> None:
    assert list(select(STREAM)) == STREAM
    assert list(select(STREAM, Filters())) == STREAM


def test_select_by_period_includes_its_start_and_excludes_its_end() -> None:
    in_q4 = list(select(STREAM, Filters(**Q4)))
    assert all(SINCE <= r["at"] < UNTIL for r in in_q4)
    assert len(in_q4) == 571  # 500 requests, 67 events, 3 checkpoints, 1 recovery
    assert sum(r["kind"] == "request" for r in in_q4) == 500
    assert in_q4[0]["at"] == SINCE  # one request sits exactly at the start
    outside = [r for r in STREAM if r not in in_q4]
    assert any(r["at"] == UNTIL for r in outside)  # one exactly at the end: excluded
    assert any(r["at"] == SINCE - 0.001 for r in outside)  # one a millisecond before the start
    # at exactly the start: a request and the first vote on the result held the evening before
    at_start = list(select(STREAM, Filters(since=SINCE, until=SINCE + 0.001)))
    assert sorted(r["kind"] for r in at_start) == ["request", "review"]
    assert count(Filters(since=UNTIL)) == len(STREAM) - len(in_q4) - 12  # 12 before Q4


def test_select_by_period_bounds_alone() -> None:
    before = [r for r in STREAM if r["at"] < SINCE]
    assert len(before) == 12  # 10 requests, the early hold, a checkpoint (its vote is at SINCE)
    assert count(Filters(until=SINCE)) == len(before)
    assert count(Filters(since=SINCE)) == len(STREAM) - len(before)


def test_select_by_period_drops_records_without_a_time_only_when_bounded() -> None:
    odd = [{"kind": "request"}, {"kind": "request", "at": "2026-11-01"}, {"kind": "request"}]
    assert count(Filters(), odd) == 3
    assert count(Filters(since=0), odd) == 0
    assert count(Filters(org_id="x"), odd) == 0


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("kind", "request", 500),
        ("kind", "review", 12 * 2 + 5 + 1 + 2),  # votes, rejections, a bulk expiry, early one
        ("kind", "retention", 19),
        ("kind", "registry", 13),
        ("kind", "startup", 2),
        ("org_id", "metro-pd", 117 + 1 + 2 + 3),  # requests, org.create, 2 keys, 3 deletions
        ("org_id", "shopco", 196 + 1 + 1 + 1 + 1),  # org.create, key, use cases, a batch
        ("operation", "CompareFaces", 70),
        ("operation", "SearchFaces", 8),
        ("decision", "allow", 392),
        ("decision", "deny", 83),
        ("decision", "error", 13),
        ("decision", "none", 12),
        ("case_ref", "HELD-CASE", 20),
        ("case_ref", "MP-2026-003", 2),
        ("purpose", "trafficking_victims", 60),
        ("purpose", "personalisation", 8),
        ("policy_id", MORATORIUM, 70),
        ("policy_id", "eu-ai-act-art5.forbid-realtime-without-authorisation", 15),
        ("policy_id", "amazon-2020-police-moratorium", 0),  # ids match whole, not as prefixes
    ],
)
def test_select_by_each_field_in_the_period(field: str, value: str, expected: int) -> None:
    assert count(Filters(**Q4, **{field: value})) == expected


def test_select_matches_log_kinds_over_the_whole_log() -> None:
    assert count(Filters(kind="checkpoint")) == 4
    assert count(Filters(kind="recovery")) == 1
    assert count(Filters(policy_id=MORATORIUM)) == 70 + 10  # and 10 in January


def test_select_combines_filters_with_and() -> None:
    f = Filters(**Q4, org_id="metro-pd", decision="allow", purpose="missing_persons")
    assert count(f) == 47
    assert count(Filters(**Q4, org_id="metro-pd", decision="allow", case_ref="EX-3")) == 1
    assert count(Filters(**Q4, org_id="shopco", policy_id=MORATORIUM)) == 0
    # events have no decision, operation or purpose: those filters select requests only
    assert count(Filters(**Q4, org_id="findkids", kind="review", decision="allow")) == 0


def test_select_on_entries_yields_the_entries_with_their_sequence_numbers() -> None:
    entries = as_entries(STREAM)
    picked = list(select(entries, Filters(**Q4, decision="deny")))
    assert len(picked) == 83
    assert all(set(e) == {"seq", "prev", "hash", "record"} for e in picked)
    assert [e["seq"] for e in picked] == sorted(e["seq"] for e in picked)
    assert picked == [e for e in entries if e in picked]


def test_select_is_lazy() -> None:
    def endless() -> Iterator[dict[str, Any]]:
        for k in itertools.count():
            yield {"kind": "request", "at": SINCE + k, "org_id": "a" if k % 2 else "b"}

    first = list(itertools.islice(select(endless(), Filters(org_id="a")), 3))
    assert [r["at"] for r in first] == [SINCE + 1, SINCE + 3, SINCE + 5]


def test_select_tolerates_fields_of_the_wrong_type() -> None:
    odd: list[dict[str, Any]] = [
        {"kind": "request", "at": SINCE, "policy_ids": "not-a-list"},
        {"kind": "request", "at": SINCE, "policy_ids": [MORATORIUM, 3, None]},
        {"kind": 7, "at": True},
        {"kind": "request", "at": 1e300},
    ]
    assert count(Filters(policy_id=MORATORIUM), odd) == 1
    assert count(Filters(kind="request"), odd) == 3
    assert count(Filters(since=0), odd) == 2  # a boolean is not a time, nor year 10^292
    assert format_line(odd[-1]).startswith("-  request")


# --- rendering -----------------------------------------------------------------------------------


def _request(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "at": ts("2026-11-03T09:12:44Z"),
        "request_id": "req-1",
        "operation": "SearchFacesByImage",
        "decision": "deny",
        "latency_ms": 12.34,
        "org_id": "metro-pd",
        "sector": "law_enforcement",
        "access_key_id": "FGKSECRETKEYID",
        "purpose": "investigation",
        "case_ref": "CASE-9",
        "policy_ids": (MORATORIUM,),
        "input_sha256": ("ab" * 32,),
        "result": ResultSummary(candidates=3, top_similarity_pct=99.456, face_ids=("f1f1",)),
    }
    base.update(kw)
    record: dict[str, Any] = json.loads(json.dumps(RequestRecord(**base).to_json()))
    return record


def test_format_line_of_a_request() -> None:
    line = format_line(_request(realtime=True, exigent=True))
    assert line.startswith(
        "2026-11-03T09:12:44Z  request  metro-pd  SearchFacesByImage  deny  12.3ms  "
        f"policies={MORATORIUM}  candidates=3  top=99.46%"
    )
    for part in ("case=CASE-9", "purpose=investigation", "realtime", "exigent"):
        assert part in line
    assert "\n" not in line
    # never FaceIds, image hashes or key ids in the compact line
    for secret in ("f1f1", "ab" * 32, "FGKSECRETKEYID"):
        assert secret not in line


def test_format_line_shows_error_codes_except_the_one_every_denial_answers() -> None:
    assert "error=" not in format_line(_request(error_code="AccessDeniedException"))
    failed = format_line(_request(decision="error", error_code="InvalidParameterException"))
    assert "  error  " in failed
    assert failed.endswith("error=InvalidParameterException")


def test_format_line_of_an_entry_shows_its_sequence_number() -> None:
    line = format_line({"seq": 1042, "prev": "0", "hash": "1", "record": _request()})
    assert line.startswith("2026-11-03T09:12:44Z  #1042  request  metro-pd")


def test_format_line_of_events_and_log_records() -> None:
    vote = EventRecord(
        at=ts("2026-11-03T10:00:00Z"),
        kind="review",
        action="review.confirm",
        actor="op-alice",
        subject="rev-00000000000000000001",
        org_id="findkids",
        details={"status": "released", "operator": "op-alice"},
    ).to_json()
    assert format_line(vote) == (
        "2026-11-03T10:00:00Z  review  findkids  review.confirm  "
        "subject=rev-00000000000000000001  actor=op-alice  status=released"
    )
    assert format_line({"kind": "checkpoint", "at": SINCE, "signed_seq": 9}) == (
        "2026-10-01T00:00:00Z  checkpoint  -  -"
    )
    assert format_line({}) == "-  ?  -  -"


def test_format_line_escapes_control_and_bidi_characters() -> None:
    line = format_line(_request(org_id="evil\x1b[31mred\n\u202eok", case_ref="a\tb"))
    assert "\x1b" not in line
    assert "\n" not in line
    assert "\u202e" not in line
    assert "\t" not in line
    assert "evil\\u001b[31mred\\u000a\\u202eok" in line
    assert "case=a\\u0009b" in line


def test_format_line_cuts_very_long_values() -> None:
    line = format_line(_request(case_ref="C" * 500))
    assert "case=" + "C" * 79 + "…" in line


def test_json_lines_round_trip_records_and_entries() -> None:
    entries = as_entries(STREAM[:50])
    out = io.StringIO()
    assert write_lines(entries, out, as_json=True) == 50
    lines = out.getvalue().splitlines()
    assert [json.loads(x) for x in lines] == entries
    assert json_line(STREAM[0]) == json.dumps(STREAM[0], sort_keys=True, separators=(",", ":"))
    assert json.loads(json_line({"org_id": "évian\x1b"})) == {"org_id": "évian\x1b"}
    assert "\x1b" not in json_line({"org_id": "évian\x1b"})


def test_write_lines_in_text_with_a_limit() -> None:
    out = io.StringIO()
    assert write_lines(select(STREAM, Filters(**Q4, decision="deny")), out, limit=5) == 5
    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    assert all("  deny  " in x for x in lines)


def test_no_face_id_of_a_result_reaches_the_text_output() -> None:
    out = io.StringIO()
    write_lines(STREAM, out)
    text = out.getvalue()
    results = {f for r in STREAM if r["kind"] == "request" for f in r["result"]["face_ids"]}
    assert len(results) > 100
    assert not [f for f in results if f in text]
    # a retention event's subject is the deleted face: shown, it is what the event is about
    assert all(f"subject={f}" in text for f in face_ids_in(STREAM) - results)
