"""The deployment gate: a registered bias audit of the active model, and whether it is in bounds.

An audit is the JSON report ``facegate bias verification --json OUT`` writes (top level
``model_version``, ``similarity_version``, ``dataset``, ``group_by``, ``thresholds``; newer
reports add ``"kind": "verification"``). This module reads that layout itself: the server never
imports the bias toolkit (an import-linter contract), so only the fields listed here are relied on.

* :func:`summarise_report` validates a parsed report and keeps, per threshold, the numbers the
  gate needs (:class:`ThresholdSummary`); :func:`summarise_bytes` parses and hashes a file first
  (at most :data:`MAX_REPORT_BYTES`).
* :func:`evaluate` compares a summary with the operator's :class:`GateBounds` and says, with the
  numbers, why it is or is not within them (:class:`GateStatus`).

Why these measures: Washington's RCW 43.386.040/.050 (US-WA-TESTING) requires testing before
deployment for "accuracy and unfair performance differences across distinct subpopulations".
NIST FRVT Part 8 (draft NISTIR 8429) summarises such differences with **Max/GeoMean**, the highest
group error rate over the geometric mean of the group rates (1 = parity); across algorithms it
found FNMR Max/GeoMean mostly between 1 and 2 and FMR Max/GeoMean from about 6 to over 300. There
is no agreed pass mark: the defaults below are a starting point, and operators must choose their
own bounds (``FACEGATE_GATE_*``, :mod:`facegate.config`).

Pure: no I/O, no clock, nothing stored here (``facegate.store.model_audits`` stores summaries).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from facegate.wire import jsonin

MAX_REPORT_BYTES = 16 * 1024 * 1024
"""Reports larger than this are refused before parsing (a verification report is a few hundred
KiB at most, DET curves included)."""

REPORT_KINDS = ("verification",)
"""Accepted values of the report's ``kind`` (reports written before ``kind`` existed have none)."""

THRESHOLD_TOLERANCE = 1e-9
"""How close a report's ``similarity_pct`` must be to the operating threshold to count as it."""


@dataclass(frozen=True)
class GateBounds:
    """What the operator accepts. ``threshold_pct``: the operating Similarity threshold the
    audit must have measured (Rekognition's 0-100 scale); ``max_fmr_ratio``: the largest
    acceptable FMR Max/GeoMean at it (>= 1); ``max_fnmr``: the largest acceptable FNMR of the
    worst group at it (0-1)."""

    threshold_pct: float = 99.0
    max_fmr_ratio: float = 10.0
    max_fnmr: float = 0.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold_pct) and 0.0 < self.threshold_pct < 100.0):
            raise ValueError(f"gate threshold must be in (0, 100), not {self.threshold_pct}")
        if not (math.isfinite(self.max_fmr_ratio) and self.max_fmr_ratio >= 1.0):
            raise ValueError(f"gate FMR Max/GeoMean bound must be >= 1, not {self.max_fmr_ratio}")
        if not (math.isfinite(self.max_fnmr) and 0.0 <= self.max_fnmr <= 1.0):
            raise ValueError(f"gate FNMR bound must be in [0, 1], not {self.max_fnmr}")

    def to_json(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class ThresholdSummary:
    """The gate's numbers at one Similarity threshold of a report (None: not measured).

    ``max_group_fnmr`` is the highest FNMR among groups with enough mated pairs to be measured
    (``fnmr_measurable``), ``max_group_fnmr_group`` that group. ``groups`` counts the groups in
    the table, ``groups_measured`` those measurable for both FMR and FNMR, and
    ``groups_too_small`` names those too small for either summary."""

    similarity_pct: float
    overall_fmr: float | None
    overall_fnmr: float | None
    max_group_fnmr: float | None
    max_group_fnmr_group: str | None
    fmr_max_geomean: float | None
    fnmr_max_geomean: float | None
    groups: int
    groups_measured: int
    groups_too_small: tuple[str, ...]


@dataclass(frozen=True)
class AuditSummary:
    """What is kept of a report: its versions, dataset, grouping, SHA-256 and per-threshold
    numbers. JSON round trip: :meth:`to_json` / :meth:`from_json`."""

    model_version: str
    similarity_version: str
    dataset: str
    group_by: tuple[str, ...]
    report_sha256: str
    thresholds: tuple[ThresholdSummary, ...]

    def at(self, threshold_pct: float) -> ThresholdSummary | None:
        """The row measured at exactly ``threshold_pct`` (None: the audit has none)."""
        for row in self.thresholds:
            if abs(row.similarity_pct - threshold_pct) <= THRESHOLD_TOLERANCE:
                return row
        return None

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["group_by"] = list(self.group_by)
        doc["thresholds"] = [
            {**asdict(t), "groups_too_small": list(t.groups_too_small)} for t in self.thresholds
        ]
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> AuditSummary:
        """The summary :meth:`to_json` wrote (stored by facegate itself: trusted layout)."""
        return cls(
            model_version=str(doc["model_version"]),
            similarity_version=str(doc["similarity_version"]),
            dataset=str(doc["dataset"]),
            group_by=tuple(doc["group_by"]),
            report_sha256=str(doc["report_sha256"]),
            thresholds=tuple(
                ThresholdSummary(**{**t, "groups_too_small": tuple(t["groups_too_small"])})
                for t in doc["thresholds"]
            ),
        )


@dataclass(frozen=True)
class GateStatus:
    """``registered``: an audit of the active model is registered; ``within_bounds``: it meets
    every bound; ``reasons``: why not (empty when within bounds)."""

    registered: bool
    within_bounds: bool
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "registered": self.registered,
            "within_bounds": self.within_bounds,
            "reasons": list(self.reasons),
        }


# --- reading a report ----------------------------------------------------------------------------


def _bad(field: str, problem: str) -> ValueError:
    return ValueError(f"not a verification report: {field} {problem}")


def _text(doc: Mapping[str, Any], key: str, where: str = "") -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{where}{key!r}", "is missing or not a non-empty string")
    return value


def _number(value: object, field: str, *, optional: bool = True) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(field, "is not a finite number" + (" or null" if optional else ""))
    return float(value)


def _rate(value: object, field: str) -> float | None:
    rate = _number(value, field)
    if rate is not None and not 0.0 <= rate <= 1.0:
        raise _bad(field, f"is {rate}, not a rate in [0, 1]")
    return rate


def _mapping(value: object, field: str, *, optional: bool = False) -> Mapping[str, Any] | None:
    if value is None and optional:
        return None
    if not isinstance(value, Mapping):
        raise _bad(field, "is not a JSON object" + (" or null" if optional else ""))
    return value


def _names(value: object, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(field, "is not a list of strings")
    return tuple(value)


def _threshold(row: object, where: str) -> ThresholdSummary:
    doc = _mapping(row, where)
    assert doc is not None
    pct = _number(doc.get("similarity_pct"), f"{where}.similarity_pct", optional=False)
    assert pct is not None
    if not 0.0 <= pct <= 100.0:
        raise _bad(f"{where}.similarity_pct", f"is {pct}, not in [0, 100]")
    overall = _mapping(doc.get("overall"), f"{where}.overall", optional=True) or {}
    groups = doc.get("groups", [])
    if not isinstance(groups, list):
        raise _bad(f"{where}.groups", "is not a list")
    worst: tuple[float, str] | None = None
    measured = 0
    for i, group in enumerate(groups):
        g = _mapping(group, f"{where}.groups[{i}]")
        assert g is not None
        name = _text(g, "group", f"{where}.groups[{i}].")
        fnmr = _rate(g.get("fnmr"), f"{where}.groups[{i}].fnmr")
        fnmr_ok, fmr_ok = g.get("fnmr_measurable"), g.get("fmr_measurable")
        if not isinstance(fnmr_ok, bool) or not isinstance(fmr_ok, bool):
            raise _bad(f"{where}.groups[{i}]", "lacks the booleans fmr_measurable/fnmr_measurable")
        measured += fnmr_ok and fmr_ok
        if fnmr_ok and fnmr is not None and (worst is None or fnmr > worst[0]):
            worst = (fnmr, name)
    fmr = _mapping(doc.get("fmr"), f"{where}.fmr", optional=True) or {}
    fnmr_summary = _mapping(doc.get("fnmr"), f"{where}.fnmr", optional=True) or {}
    too_small = set(_names(fmr.get("too_small"), f"{where}.fmr.too_small"))
    too_small |= set(_names(fnmr_summary.get("too_small"), f"{where}.fnmr.too_small"))
    return ThresholdSummary(
        similarity_pct=pct,
        overall_fmr=_rate(overall.get("fmr"), f"{where}.overall.fmr"),
        overall_fnmr=_rate(overall.get("fnmr"), f"{where}.overall.fnmr"),
        max_group_fnmr=None if worst is None else worst[0],
        max_group_fnmr_group=None if worst is None else worst[1],
        fmr_max_geomean=_number(fmr.get("max_geomean"), f"{where}.fmr.max_geomean"),
        fnmr_max_geomean=_number(fnmr_summary.get("max_geomean"), f"{where}.fnmr.max_geomean"),
        groups=len(groups),
        groups_measured=measured,
        groups_too_small=tuple(sorted(too_small)),
    )


def summarise_report(report: Mapping[str, Any], file_sha256: str) -> AuditSummary:
    """Validate a parsed verification report and keep what the gate needs.

    Raises ``ValueError`` naming the missing or invalid field. Accepts ``kind`` "verification"
    or no ``kind`` (older reports); other kinds (e.g. an impostor-only report, which measures
    no FNMR) are refused. Fields other than those read here are ignored.
    """
    if not isinstance(report, Mapping):
        raise _bad("the document", "is not a JSON object")
    kind = report.get("kind")
    if kind is not None and kind not in REPORT_KINDS:
        raise _bad("'kind'", f"is {kind!r}; expected {' or '.join(REPORT_KINDS)} (or absent)")
    if len(file_sha256) != 64 or any(c not in "0123456789abcdef" for c in file_sha256):
        raise ValueError("file_sha256 must be 64 lower-case hex digits")
    group_by = report.get("group_by")
    if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
        raise _bad("'group_by'", "is missing or not a list of strings")
    rows = report.get("thresholds")
    if not isinstance(rows, Sequence) or isinstance(rows, str) or not rows:
        raise _bad("'thresholds'", "is missing or not a non-empty list")
    return AuditSummary(
        model_version=_text(report, "model_version"),
        similarity_version=_text(report, "similarity_version"),
        dataset=_text(report, "dataset"),
        group_by=tuple(group_by),
        report_sha256=file_sha256,
        thresholds=tuple(_threshold(r, f"thresholds[{i}]") for i, r in enumerate(rows)),
    )


def summarise_bytes(data: bytes) -> AuditSummary:
    """Parse a report file's bytes (UTF-8 JSON, at most :data:`MAX_REPORT_BYTES`), hash them
    (SHA-256 of exactly these bytes) and summarise. Raises ``ValueError``."""
    if len(data) > MAX_REPORT_BYTES:
        raise ValueError(
            f"the report has {len(data)} bytes; at most {MAX_REPORT_BYTES} (16 MiB) are accepted"
        )
    try:
        doc = jsonin.loads(data, max_depth=64)
    except jsonin.InvalidJson as exc:
        raise ValueError(f"the report is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _bad("the document", "is not a JSON object")
    return summarise_report(doc, hashlib.sha256(data).hexdigest())


# --- the gate ------------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def evaluate(summary: AuditSummary | None, bounds: GateBounds) -> GateStatus:
    """Whether ``summary`` (the registered audit of the active model; None: none) is within
    ``bounds``: it has a row at exactly ``bounds.threshold_pct``, whose FMR Max/GeoMean is
    measured and at most ``max_fmr_ratio``, and whose highest measured group FNMR (not the
    overall FNMR: the worst-served group counts) is at most ``max_fnmr``. Every failed check
    is listed with its numbers."""
    if summary is None:
        return GateStatus(False, False, ("no bias audit is registered for the active model",))
    threshold = _fmt(bounds.threshold_pct)
    row = summary.at(bounds.threshold_pct)
    if row is None:
        have = ", ".join(_fmt(t.similarity_pct) for t in summary.thresholds)
        return GateStatus(
            True,
            False,
            (
                f"the audit has no row at the operating threshold Similarity {threshold} "
                f"(it measured {have}); run it with --threshold {threshold}",
            ),
        )
    reasons: list[str] = []
    if row.fmr_max_geomean is None:
        small = ", ".join(row.groups_too_small) or "none"
        reasons.append(
            f"FMR Max/GeoMean at Similarity {threshold} was not measured (groups too small: "
            f"{small}; or no false matches in some group)"
        )
    elif row.fmr_max_geomean > bounds.max_fmr_ratio:
        reasons.append(
            f"FMR Max/GeoMean {_fmt(row.fmr_max_geomean)} at Similarity {threshold} exceeds "
            f"the bound {_fmt(bounds.max_fmr_ratio)}"
        )
    if row.max_group_fnmr is None:
        reasons.append(f"no group's FNMR at Similarity {threshold} was measured")
    elif row.max_group_fnmr > bounds.max_fnmr:
        reasons.append(
            f"the highest group FNMR {_fmt(row.max_group_fnmr)} ({row.max_group_fnmr_group}) "
            f"at Similarity {threshold} exceeds the bound {_fmt(bounds.max_fnmr)}"
        )
    return GateStatus(True, not reasons, tuple(reasons))
