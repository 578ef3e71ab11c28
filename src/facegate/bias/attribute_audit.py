"""Auditing facegate's own attribute estimators the Gender Shades way.

:mod:`facegate.bias.attributes` gives what the server answers for each labelled image; this
module turns those answers into the rows :mod:`facegate.bias.classifier` tabulates (truth,
prediction, group values), so the estimators get exactly the table an outside classifier gets:
error per intersectional group and per single attribute, Wilson intervals, Max/GeoMean and
Fisher's test of the worst group against the best.

What counts as an error, per kind (``ESTIMATES``):

* ``gender``: ``Gender.Value`` differs from the data set's binary label (FairFace's, LFW's).
* ``age``: the middle of ``AgeRange`` falls outside the labelled age bin (FairFace's bins
  0-2, 3-9, ..., 60-69, more than 70, read as ``[low, high + 1)`` years). Beside the table:
  the share of ranges that overlap the bin, the years between the middle and the bin, and the
  ranges' widths (:func:`age_table`).
* ``happy``: HAPPY is not the top expression (``Emotions[0]``) of a face labelled smiling, or
  is the top one of a face labelled not smiling. A smile is not happiness: this measures only
  whether HAPPY tracks a visible smile.
* ``smile``: ``Smile.Value`` against the same smile labels (the landmark estimator, for
  comparison on the same faces).

Images where no face is found are not errors of the estimator; they are counted per group
(:attr:`EstimateRows.no_face`) and reported beside the table, never dropped silently. Rows with
no truth label (LFW's ``M/F?``) are counted as unlabelled truth and left out.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from facegate.bias.attributes import FACE, NO_FACE, AttributeRecord, AttributeSet
from facegate.bias.classifier import PredictionCounts, count_predictions
from facegate.bias.datasets import UNKNOWN, DatasetError, Manifest
from facegate.bias.groups import GROUP_SEPARATOR
from facegate.bias.stats import wilson_interval

SMILE, NO_SMILE = "smile", "no smile"

REFERENCES: tuple[Mapping[str, Any], ...] = (
    {
        "study": "Gender Shades (Buolamwini & Gebru, FAT* 2018)",
        "system": "IBM's gender classifier (API of April-May 2017)",
        "group": "darker-skinned women, PPB (1,270 parliamentarians, Fitzpatrick IV-VI)",
        "error_rate": 0.347,
        "source": "[B1][B2] in ../shared/reference/governance-rules.md, section 2",
    },
    {
        "study": "Actionable Auditing (Raji & Buolamwini, AIES 2019)",
        "system": "Amazon Rekognition's gender classification (August 2018)",
        "group": "darker-skinned women, PPB",
        "error_rate": 0.3137,
        "source": "[B5] in ../shared/reference/governance-rules.md, sections 0 and 2",
    },
    {
        "study": "Gender Shades (Buolamwini & Gebru, FAT* 2018)",
        "system": "the highest lighter-skinned men's error of the three vendors (Face++)",
        "group": "lighter-skinned men, PPB",
        "error_rate": 0.008,
        "source": "[B1][B2]",
    },
)
"""Published worst- and best-group gender errors to read a gender table against. Not the same
data: PPB's groups are Fitzpatrick skin types of adult parliamentarians in official portraits;
FairFace's are annotators' race labels of Flickr faces of every age."""


@dataclass(frozen=True)
class Estimate:
    """One kind of audit: the attribute it reads, the default truth column, what an error is,
    and how a truth value and a record become labels (None: no label / no estimate)."""

    attribute: str
    truth_attribute: str
    error: str
    truth: Callable[[str], str | None]
    predicted: Callable[[AttributeRecord, str], str | None]


def _gender_truth(value: str) -> str | None:
    v = value.strip().lower()
    return v if v in ("male", "female") else None


def _gender_predicted(record: AttributeRecord, _: str) -> str | None:
    return None if record.gender is None else record.gender[0].lower()


def _smile_truth(value: str) -> str | None:
    v = value.strip().lower()
    return SMILE if v in ("1", "yes", "true") else NO_SMILE if v in ("0", "no", "false") else None


def _happy_predicted(record: AttributeRecord, _: str) -> str | None:
    top = record.top_emotion
    return None if top is None else SMILE if top == "HAPPY" else NO_SMILE


def _smile_predicted(record: AttributeRecord, _: str) -> str | None:
    return None if record.smile is None else SMILE if record.smile[0] else NO_SMILE


_BIN = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_OPEN_BIN = re.compile(r"^\s*(?:more than\s+(\d+)|(\d+)\s*\+)\s*$", re.IGNORECASE)


def age_bin(label: str) -> tuple[float, float]:
    """``"20-29"`` -> (20, 30) years; ``"more than 70"`` or ``"70+"`` -> (70, inf). Raises
    DatasetError for anything else."""
    m = _BIN.match(label)
    if m:
        low, high = int(m.group(1)), int(m.group(2))
        if high >= low:
            return float(low), float(high + 1)
    m = _OPEN_BIN.match(label)
    if m:
        return float(m.group(1) or m.group(2)), math.inf
    raise DatasetError(f"not an age bin: {label!r} (expected e.g. 20-29 or 'more than 70')")


def _age_truth(value: str) -> str | None:
    if value.strip() in ("", UNKNOWN):
        return None
    age_bin(value)
    return value.strip()


def _age_predicted(record: AttributeRecord, bins: str) -> str | None:
    if record.age_range is None:
        return None
    middle = sum(record.age_range) / 2.0
    for label in bins.split("|"):
        low, high = age_bin(label)
        if low <= middle < high:
            return label
    return f"{middle:g} (outside every bin)"


ESTIMATES: Mapping[str, Estimate] = {
    "gender": Estimate(
        "GENDER", "gender", "Gender.Value differs from the binary label", _gender_truth,
        _gender_predicted,
    ),
    "age": Estimate(
        "AGE_RANGE", "age_band", "the middle of AgeRange is outside the labelled age bin",
        _age_truth, _age_predicted,
    ),
    "happy": Estimate(
        "EMOTIONS", "smile", "HAPPY is the top expression exactly when the face is labelled "
        "smiling (error otherwise)", _smile_truth, _happy_predicted,
    ),
    "smile": Estimate(
        "SMILE", "smile", "Smile.Value differs from the smile label", _smile_truth,
        _smile_predicted,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class AgeRow:
    """One face of an age audit: its labelled bin, the answered range and its group values."""

    truth: str
    low_years: int
    high_years: int
    values: tuple[str, ...]


@dataclass(frozen=True)
class EstimateRows:
    """The rows of one estimate audit, and what was left out of them, per group.

    ``images`` counts labelled images per intersectional group, ``no_face`` those of them with
    no face found (``overall`` keys the totals); ``no_label`` counts images without a truth
    label, ``no_estimate`` faces the estimator gave no value for."""

    kind: str
    truth_attribute: str
    group_by: tuple[str, ...]
    counts: PredictionCounts
    images: Mapping[str, int]
    no_face: Mapping[str, int]
    no_label: int
    no_estimate: int
    errors: int
    age: tuple[AgeRow, ...] = ()


def _group_values(sample_attrs: Mapping[str, str], group_by: Sequence[str]) -> tuple[str, ...]:
    values = []
    for name in group_by:
        value = sample_attrs.get(name, UNKNOWN)
        values.append("" if value == UNKNOWN else value)
    return tuple(values)


def estimate_rows(
    kind: str,
    manifest: Manifest,
    results: AttributeSet,
    group_by: Sequence[str],
    truth_attribute: str | None = None,
    *,
    keep_errors: int = 20,
) -> EstimateRows:
    """The classifier rows of ``kind`` (``ESTIMATES``) over ``manifest`` and its ``results``.
    Raises DatasetError when the manifest has no ``truth_attribute`` or a group attribute."""
    spec = ESTIMATES[kind]
    truth_name = truth_attribute or spec.truth_attribute
    available = (
        set().union(*(s.attributes for s in manifest.samples)) if manifest.samples else set()
    )
    missing = [a for a in (truth_name, *group_by) if a not in available]
    if missing:
        raise DatasetError(
            f"{manifest.name} has no attribute(s) {', '.join(missing)} "
            f"(it has: {', '.join(sorted(available)) or 'none'})"
        )
    bins = ""
    if kind == "age":
        labels = {s.attributes.get(truth_name, UNKNOWN) for s in manifest.samples} - {UNKNOWN}
        bins = "|".join(sorted(labels, key=lambda b: age_bin(b)[0]))
    rows: list[tuple[str, str, Sequence[str]]] = []
    images_of: list[str] = []
    age_rows: list[AgeRow] = []
    images: Counter[str] = Counter()
    no_face: Counter[str] = Counter()
    no_label = no_estimate = errors = 0
    for sample, record in zip(manifest.samples, results.records, strict=True):
        truth = spec.truth(sample.attributes.get(truth_name, UNKNOWN))
        if truth is None:
            no_label += 1
            continue
        values = _group_values(sample.attributes, group_by)
        group = "(unlabelled)" if "" in values else GROUP_SEPARATOR.join(values)
        images[group] += 1
        images["overall"] += 1
        if record.status != FACE:
            if record.status == NO_FACE:
                no_face[group] += 1
                no_face["overall"] += 1
            else:
                errors += 1
            continue
        predicted = spec.predicted(record, bins)
        if predicted is None:
            no_estimate += 1
            continue
        rows.append((truth, predicted, values))
        images_of.append(str(sample.path))
        if kind == "age" and record.age_range is not None:
            age_rows.append(AgeRow(truth, record.age_range[0], record.age_range[1], values))
    counts = count_predictions(
        rows, group_by, keep_errors=keep_errors, source=manifest.name, images=images_of
    )
    return EstimateRows(
        kind, truth_name, tuple(group_by), counts, dict(images), dict(no_face), no_label,
        no_estimate, errors, tuple(age_rows),
    )  # fmt: skip


# --- age ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgeGroup:
    """Age answers of one group: the middle of AgeRange inside the bin, the range overlapping
    the bin (counts with 95% Wilson intervals), years between the middle and the bin (0 when
    inside) and the ranges' widths."""

    group: str
    n: int
    middle_inside: int
    overlap: int
    years_outside_median: float | None
    years_outside_mean: float | None
    width_median: float | None
    too_small: bool

    def share(self, count: int) -> tuple[float | None, tuple[float, float] | None]:
        return (count / self.n if self.n else None), wilson_interval(count, self.n, 0.95)


def _years_outside(row: AgeRow) -> float:
    """0 when the middle of the range is in the bin ``[low, high)``; else the years from the
    middle to the bin's nearest labelled age (``low``, or its last whole year ``high - 1``)."""
    low, high = age_bin(row.truth)
    middle = (row.low_years + row.high_years) / 2.0
    if low <= middle < high:
        return 0.0
    return low - middle if middle < low else middle - (high - 1.0)


def _overlaps(row: AgeRow) -> bool:
    low, high = age_bin(row.truth)
    return row.low_years < high and row.high_years >= low


def _age_group(name: str, rows: Sequence[AgeRow], min_n: int) -> AgeGroup:
    outside = [_years_outside(r) for r in rows]
    widths = [float(r.high_years - r.low_years) for r in rows]
    return AgeGroup(
        group=name,
        n=len(rows),
        middle_inside=sum(1 for o in outside if o == 0.0),  # outside > 0 whenever not inside
        overlap=sum(1 for r in rows if _overlaps(r)),
        years_outside_median=statistics.median(outside) if outside else None,
        years_outside_mean=statistics.fmean(outside) if outside else None,
        width_median=statistics.median(widths) if widths else None,
        too_small=len(rows) < min_n,
    )


def age_table(
    rows: Sequence[AgeRow], group_by: Sequence[str], attributes: Sequence[str], min_n: int
) -> tuple[AgeGroup, ...]:
    """Per group of ``attributes`` (a subset of ``group_by``), sorted, then ``overall``."""
    index = [list(group_by).index(a) for a in attributes]
    per: dict[str, list[AgeRow]] = {}
    for row in rows:
        chosen = [row.values[i] for i in index]
        name = "(unlabelled)" if "" in chosen else GROUP_SEPARATOR.join(chosen)
        per.setdefault(name, []).append(row)
    groups = [_age_group(name, per[name], min_n) for name in sorted(per)]
    return (*groups, _age_group("overall", rows, 1))


def age_group_json(g: AgeGroup) -> dict[str, Any]:
    inside, inside_ci = g.share(g.middle_inside)
    overlap, overlap_ci = g.share(g.overlap)
    return {
        "group": g.group,
        "n": g.n,
        "too_small": g.too_small,
        "middle_inside": g.middle_inside,
        "middle_inside_rate": inside,
        "middle_inside_ci": None if inside_ci is None else list(inside_ci),
        "overlap": g.overlap,
        "overlap_rate": overlap,
        "overlap_ci": None if overlap_ci is None else list(overlap_ci),
        "years_outside_median": g.years_outside_median,
        "years_outside_mean": g.years_outside_mean,
        "width_median": g.width_median,
    }
