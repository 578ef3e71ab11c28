"""Auditing facegate's own attribute estimators (issue 21): the rows the Gender Shades table is
made of (errors, images with no face, missing labels), the AgeRange measures against age bins,
and the cache of the engine's answers."""

from __future__ import annotations

import math
from pathlib import Path
from types import MappingProxyType

import pytest

from facegate.bias.attribute_audit import (
    NO_SMILE,
    SMILE,
    AgeRow,
    age_bin,
    age_group_json,
    age_table,
    estimate_rows,
)
from facegate.bias.attributes import (
    FACE,
    NO_FACE,
    AttributeCache,
    AttributeRecord,
    AttributeSet,
    record_of,
)
from facegate.bias.classifier import audit
from facegate.bias.datasets import DatasetError, Manifest, Sample
from facegate.engine.attributes.types import AgeRange, Emotion, FaceAttributes, Flag, Gender


def _manifest(*attrs: dict[str, str]) -> Manifest:
    return Manifest(
        "toy",
        tuple(
            Sample(Path(f"/img/{i}.jpg"), None, MappingProxyType(a), "toy data")
            for i, a in enumerate(attrs)
        ),
    )


def _set(*records: AttributeRecord) -> AttributeSet:
    return AttributeSet({"GENDER": "g-1"}, "key", records, len(records), 0)


def _face(**kwargs: object) -> AttributeRecord:
    return AttributeRecord(FACE, faces=1, found_by="mtcnn", **kwargs)  # type: ignore[arg-type]


def test_gender_rows_count_errors_and_keep_no_face_and_unlabelled_apart() -> None:
    manifest = _manifest(
        {"gender": "female", "race": "A"},
        {"gender": "female", "race": "A"},
        {"gender": "male", "race": "A"},
        {"gender": "male", "race": "unknown"},
        {"gender": "female", "race": "B"},
        {"gender": "unknown", "race": "B"},
    )
    results = _set(
        _face(gender=("Male", 70.0)),  # error
        _face(gender=("Female", 90.0)),
        _face(gender=("Male", 99.0)),
        _face(gender=("Female", 60.0)),  # error, race unlabelled
        AttributeRecord(NO_FACE),  # counted apart, not an error
        _face(gender=("Male", 80.0)),  # no truth label: left out, counted
    )
    rows = estimate_rows("gender", manifest, results, ["race", "gender"])
    assert rows.counts.rows == 4
    assert rows.no_label == 1
    assert rows.no_face == {"B x female": 1, "overall": 1}
    assert rows.images == {"A x female": 2, "A x male": 1, "(unlabelled)": 1, "B x female": 1,
                           "overall": 5}  # fmt: skip
    result = audit(rows.counts, min_n=1)
    table = result.intersectional
    assert table.group("A x female").errors == 1
    assert table.unlabelled.errors == 1  # an empty group value is unlabelled, never dropped
    assert table.overall.errors == 2
    assert rows.counts.listed_errors[0].image == "/img/0.jpg"
    with pytest.raises(DatasetError, match=r"no attribute.*skin"):
        estimate_rows("gender", manifest, results, ["skin"])


def test_happy_is_the_top_expression_against_smile_labels() -> None:
    manifest = _manifest({"smile": "1", "g": "x"}, {"smile": "0", "g": "x"},
                         {"smile": "x", "g": "x"}, {"smile": "1", "g": "x"})  # fmt: skip
    happy_first = (("HAPPY", 80.0), ("CALM", 20.0))
    calm_first = (("CALM", 60.0), ("HAPPY", 40.0))
    results = _set(
        _face(emotions=happy_first, smile=(True, 90.0)),
        _face(emotions=happy_first, smile=(False, 70.0)),  # HAPPY on a face without a smile
        _face(emotions=calm_first),
        _face(emotions=calm_first, smile=(True, 55.0)),  # a smile HAPPY missed
    )
    rows = estimate_rows("happy", manifest, results, ["g"])
    assert rows.no_label == 1  # "x": cannot tell
    cells = {(t, p): c for (_, t, p), c in rows.counts.cells.items()}
    assert cells == {(SMILE, SMILE): 1, (NO_SMILE, SMILE): 1, (SMILE, NO_SMILE): 1}
    smile = estimate_rows("smile", manifest, results, ["g"])
    assert smile.counts.rows == 3
    assert audit(smile.counts, min_n=1).intersectional.overall.errors == 0  # Smile agrees


def test_age_bins_and_what_counts_as_inside() -> None:
    assert age_bin("0-2") == (0.0, 3.0)
    assert age_bin(" 20 - 29 ") == (20.0, 30.0)
    assert age_bin("more than 70") == (70.0, math.inf)
    assert age_bin("70+") == (70.0, math.inf)
    for bad in ("20-10", "adult", ""):
        with pytest.raises(DatasetError, match="not an age bin"):
            age_bin(bad)
    rows = [
        AgeRow("20-29", 22, 30, ("a",)),  # middle 26: inside
        AgeRow("20-29", 25, 35, ("a",)),  # middle 30: not inside (1 year past 29), overlaps
        AgeRow("20-29", 31, 40, ("a",)),  # middle 35.5: 6.5 years out, no overlap
        AgeRow("more than 70", 60, 76, ("b",)),  # middle 68: 2 years out, overlaps
        AgeRow("3-9", 1, 5, ("b",)),  # middle 3: inside
    ]
    a, b, overall = age_table(rows, ("g",), ("g",), min_n=3)
    assert (a.group, a.n, a.middle_inside, a.overlap) == ("a", 3, 1, 2)
    assert a.years_outside_median == 1.0
    assert a.years_outside_mean == pytest.approx((0 + 1 + 6.5) / 3)
    assert a.width_median == 9.0
    assert (b.n, b.middle_inside, b.overlap, b.too_small) == (2, 1, 2, True)
    assert (overall.group, overall.n, overall.middle_inside) == ("overall", 5, 2)
    doc = age_group_json(a)
    assert doc["middle_inside_rate"] == pytest.approx(1 / 3)
    assert doc["overlap_ci"][0] < 2 / 3 < doc["overlap_ci"][1]


def test_age_rows_predict_the_bin_of_the_middle() -> None:
    manifest = _manifest({"age_band": "20-29", "g": "x"}, {"age_band": "30-39", "g": "x"},
                         {"age_band": "more than 70", "g": "x"})  # fmt: skip
    results = _set(_face(age_range=(24, 31)), _face(age_range=(24, 31)), _face(age_range=(70, 90)))
    rows = estimate_rows("age", manifest, results, ["g"])
    cells = {(t, p) for (_, t, p) in rows.counts.cells}
    assert cells == {("20-29", "20-29"), ("30-39", "20-29"), ("more than 70", "more than 70")}
    assert len(rows.age) == 3


def test_records_round_trip_and_the_cache(tmp_path: Path) -> None:
    attributes = FaceAttributes(
        age_range=AgeRange(37, 51),
        gender=Gender("Male", 91.0),
        emotions=(Emotion("HAPPY", 99.0), Emotion("CALM", 1.0)),
        smile=Flag(True, 99.4),
        eyes_open=Flag(True, 80.0),
    )
    record = record_of(attributes, 2, "mtcnn")
    assert record.top_emotion == "HAPPY"
    assert record.mouth_open is None
    assert AttributeRecord.from_json(record.to_json()) == record
    cache = AttributeCache(tmp_path / "a.sqlite3")
    cache.put_many("k1", {"sha-a": record, "sha-b": AttributeRecord(NO_FACE)})
    assert cache.get_many("k1", ["sha-a", "sha-b", "sha-c"]) == {
        "sha-a": record, "sha-b": AttributeRecord(NO_FACE)
    }  # fmt: skip
    assert cache.get_many("k2", ["sha-a"]) == {}  # another estimator version: a miss
