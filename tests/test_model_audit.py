"""The deployment gate's reading of bias audit reports and its verdict (facegate.model_audit)."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from facegate.model_audit import (
    MAX_REPORT_BYTES,
    AuditSummary,
    GateBounds,
    evaluate,
    summarise_bytes,
    summarise_report,
)
from tests.audit_reports import verification_report

SHA = "ab" * 32


def row(
    pct: float = 99.0,
    *,
    fnmr: tuple[float | None, float | None] = (0.1, 0.3),
    fmr_max_geomean: float | None = 4.0,
    measurable: bool = True,
) -> dict[str, Any]:
    """A threshold row of the report's layout (threshold_json), by hand."""
    return {
        "similarity_pct": pct,
        "distance": 0.39,
        "overall": {"fmr": 0.001, "fnmr": 0.2},
        "groups": [
            {"group": name, "fmr": 0.001, "fnmr": rate, "fmr_measurable": measurable,
             "fnmr_measurable": measurable}
            for name, rate in zip(("female", "male"), fnmr, strict=True)
        ],
        "fmr": {"max_geomean": fmr_max_geomean, "too_small": [] if measurable else ["female"]},
        "fnmr": {"max_geomean": 1.2, "too_small": []},
    }  # fmt: skip


def report(*rows: dict[str, Any], **top: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "model_version": "dlib-resnet-v1",
        "similarity_version": "dlib-logistic-v0",
        "dataset": "lfw",
        "group_by": ["gender"],
        "thresholds": list(rows) or [row()],
    }
    doc.update(top)
    return doc


def test_a_report_within_bounds() -> None:
    summary = summarise_report(report(row(80.0), row(99.0)), SHA)
    assert summary.report_sha256 == SHA
    at99 = summary.at(99.0)
    assert at99 is not None
    assert at99.max_group_fnmr == 0.3
    assert at99.max_group_fnmr_group == "male"
    assert at99.fmr_max_geomean == 4.0
    assert at99.overall_fnmr == 0.2
    assert (at99.groups, at99.groups_measured) == (2, 2)
    assert evaluate(summary, GateBounds()) == evaluate(summary, GateBounds(99.0, 10.0, 0.5))
    status = evaluate(summary, GateBounds())
    assert (status.registered, status.within_bounds, status.reasons) == (True, True, ())


def test_no_audit_is_not_registered() -> None:
    status = evaluate(None, GateBounds())
    assert (status.registered, status.within_bounds) == (False, False)
    assert status.reasons == ("no bias audit is registered for the active model",)


def test_no_row_at_the_operating_threshold() -> None:
    summary = summarise_report(report(row(80.0), row(99.5)), SHA)
    status = evaluate(summary, GateBounds(threshold_pct=99.0))
    assert (status.registered, status.within_bounds) == (True, False)
    assert (
        "no row at the operating threshold Similarity 99 (it measured 80, 99.5)"
        in (status.reasons[0])
    )
    assert evaluate(summary, GateBounds(threshold_pct=99.5)).within_bounds


def test_fmr_ratio_above_the_bound_and_unmeasured() -> None:
    high = summarise_report(report(row(fmr_max_geomean=12.5)), SHA)
    status = evaluate(high, GateBounds(max_fmr_ratio=10.0))
    assert not status.within_bounds
    assert status.reasons == ("FMR Max/GeoMean 12.5 at Similarity 99 exceeds the bound 10",)
    assert evaluate(high, GateBounds(max_fmr_ratio=12.5)).within_bounds  # the bound is inclusive
    unmeasured = summarise_report(report(row(fmr_max_geomean=None, measurable=False)), SHA)
    status = evaluate(unmeasured, GateBounds(max_fmr_ratio=1000.0))
    assert not status.within_bounds
    assert status.reasons[0].startswith("FMR Max/GeoMean at Similarity 99 was not measured")
    assert "groups too small: female" in status.reasons[0]
    assert "no group's FNMR at Similarity 99 was measured" in status.reasons[1]


def test_the_highest_group_fnmr_counts_not_the_overall() -> None:
    summary = summarise_report(report(row(fnmr=(0.05, 0.6))), SHA)
    at99 = summary.at(99.0)
    assert at99 is not None
    assert at99.overall_fnmr == 0.2  # the overall rate would pass
    status = evaluate(summary, GateBounds(max_fnmr=0.5))
    assert status.reasons == (
        "the highest group FNMR 0.6 (male) at Similarity 99 exceeds the bound 0.5",
    )
    both = evaluate(
        summarise_report(report(row(fnmr=(0.05, 0.6), fmr_max_geomean=20.0)), SHA), GateBounds()
    )
    assert len(both.reasons) == 2  # every failed check is listed


def test_groups_without_a_measured_fnmr_are_left_out() -> None:
    doc = report(row(fnmr=(None, 0.2)))
    doc["thresholds"][0]["groups"][1]["fnmr_measurable"] = False
    doc["thresholds"][0]["groups"][1]["fnmr"] = 0.9
    at99 = summarise_report(doc, SHA).at(99.0)
    assert at99 is not None
    assert at99.max_group_fnmr is None
    assert at99.groups_measured == 1


def test_a_real_report_from_the_bias_toolkit() -> None:
    doc = verification_report()
    summary = summarise_report(doc, SHA)
    at99 = summary.at(99.0)
    assert at99 is not None
    assert at99.fmr_max_geomean == pytest.approx(0.05 / (0.01 * 0.05) ** 0.5, rel=1e-5)
    assert at99.max_group_fnmr == pytest.approx(0.2)
    assert at99.max_group_fnmr_group == "b"
    assert evaluate(summary, GateBounds()).within_bounds
    assert not evaluate(summary, GateBounds(max_fmr_ratio=2.0)).within_bounds
    assert not evaluate(summary, GateBounds(max_fnmr=0.15)).within_bounds
    older = copy.deepcopy(doc)
    del older["kind"]
    assert summarise_report(older, SHA) == summary  # reports before "kind" are accepted


def test_summary_round_trips_through_json() -> None:
    summary = summarise_report(verification_report(), SHA)
    assert AuditSummary.from_json(json.loads(json.dumps(summary.to_json()))) == summary


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_version": None}, "'model_version' is missing"),
        ({"similarity_version": 3}, "'similarity_version' is missing or not a non-empty string"),
        ({"dataset": ""}, "'dataset' is missing"),
        ({"group_by": "gender"}, "'group_by' is missing or not a list of strings"),
        ({"thresholds": []}, "'thresholds' is missing or not a non-empty list"),
        ({"thresholds": [1]}, "thresholds[0] is not a JSON object"),
        ({"thresholds": [{"groups": []}]}, "thresholds[0].similarity_pct is not a finite number"),
        ({"thresholds": [row(pct=120.0)]}, "thresholds[0].similarity_pct is 120.0, not in"),
        ({"kind": "impostors"}, "'kind' is 'impostors'; expected verification (or absent)"),
    ],
)
def test_malformed_reports_name_the_field(change: dict[str, Any], message: str) -> None:
    doc = report(**change)
    with pytest.raises(ValueError, match="not a verification report") as info:
        summarise_report(doc, SHA)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["groups"][0].update(fnmr=1.5), "thresholds[0].groups[0].fnmr is 1.5"),
        (lambda r: r["groups"][0].update(fnmr="x"), "thresholds[0].groups[0].fnmr is not a"),
        (lambda r: r["groups"][1].pop("group"), "thresholds[0].groups[1].'group' is missing"),
        (lambda r: r["groups"][0].pop("fmr_measurable"), "lacks the booleans"),
        (lambda r: r.update(groups={}), "thresholds[0].groups is not a list"),
        (lambda r: r["fmr"].update(max_geomean=True), "thresholds[0].fmr.max_geomean is not"),
        (lambda r: r["fmr"].update(too_small=[1]), "thresholds[0].fmr.too_small is not a list"),
        (lambda r: r.update(overall=[]), "thresholds[0].overall is not a JSON object or null"),
    ],
)
def test_malformed_rows_name_the_field(mutate: Any, message: str) -> None:
    bad = row()
    mutate(bad)
    with pytest.raises(ValueError, match="not a verification report") as info:
        summarise_report(report(bad), SHA)
    assert message in str(info.value)


def test_bytes_are_hashed_and_bounded() -> None:
    data = json.dumps(verification_report()).encode()
    summary = summarise_bytes(data)
    assert summary.report_sha256 == hashlib.sha256(data).hexdigest()
    with pytest.raises(ValueError, match="at most 16777216"):
        summarise_bytes(b" " * (MAX_REPORT_BYTES + 1))
    with pytest.raises(ValueError, match="not valid JSON"):
        summarise_bytes(b"{")
    with pytest.raises(ValueError, match="not UTF-8"):
        summarise_bytes(b"\xff")
    with pytest.raises(ValueError, match="the document is not a JSON object"):
        summarise_bytes(b"[]")
    with pytest.raises(ValueError, match="64 lower-case hex"):
        summarise_report(report(), "xyz")


@pytest.mark.parametrize(
    "bounds",
    [
        {"threshold_pct": 100.0},
        {"threshold_pct": 0.0},
        {"max_fmr_ratio": 0.5},
        {"max_fnmr": 1.5},
        {"max_fnmr": float("nan")},
    ],
)
def test_bounds_are_checked(bounds: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="gate"):
        GateBounds(**bounds)
