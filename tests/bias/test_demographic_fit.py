"""Fitting and measuring the default Gender and AgeRange estimators (bias.demographic_fit), on
descriptors the engine computes of real FairFace faces."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from facegate.bias.demographic_fit import (
    Labelled,
    fit_model,
    leave_one_race_out,
    measure_age,
    measure_gender,
    pct,
    split_names,
)
from facegate.engine.attributes.demographics import AGE_BANDS, load_document
from facegate.engine.core import FaceEngine

FAIRFACE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fairface_val"
FACES = 120


@pytest.fixture(scope="module")
def faces(engine: FaceEngine) -> Labelled:
    """The first FairFace val images the engine finds a face in, with their labels."""
    if not (FAIRFACE / "labels.csv").is_file():
        pytest.fail(f"FairFace not found at {FAIRFACE}: tests need ../shared/data")
    vectors, gender, band, race = [], [], [], []
    with (FAIRFACE / "labels.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            analysis = engine.analyze((FAIRFACE / "images" / row["image"]).read_bytes())
            if not analysis.faces:
                continue
            vectors.append(np.asarray(analysis.faces[0].descriptor, dtype=np.float64))
            gender.append(row["gender"].lower())
            band.append(row["age"])
            race.append(row["race"])
            if len(vectors) == FACES:
                break
    return Labelled(np.vstack(vectors), tuple(gender), tuple(band), tuple(race))


def test_split_is_stable_and_about_half() -> None:
    names = [f"{i}.jpg" for i in range(2000)]
    mask = split_names(names)
    assert (split_names(names) == mask).all()
    assert 900 < int(mask.sum()) < 1100
    assert not (split_names(names, salt="other") == mask).all()


@pytest.mark.slow
def test_gender_error_is_counted_per_group_with_intervals(faces: Labelled) -> None:
    model = fit_model(faces, "test")
    doc = measure_gender(model, faces)
    said = [model.p_male(v) >= 0.5 for v in faces.vectors]
    wrong = [s != (g == "male") for s, g in zip(said, faces.gender, strict=True)]
    assert doc["all"]["count"] == sum(wrong)
    assert doc["all"]["n"] == FACES
    for name, row in doc["groups"].items():
        race, gender = name.split(" x ")
        members = [i for i in range(FACES) if faces.race[i] == race and faces.gender[i] == gender]
        assert row["n"] == len(members)
        assert row["count"] == sum(wrong[i] for i in members)
        lo, hi = row["interval"]
        assert lo <= row["rate"] <= hi
    assert sum(r["n"] for r in doc["groups"].values()) == FACES
    assert doc["worst_group"] in doc["groups"]
    # fitted and measured on the same faces, a descriptor separates gender well
    assert doc["all"]["rate"] < 0.2
    assert pct(doc["all"]).endswith(f"({FACES})")


def test_age_ranges_are_measured_against_the_labelled_band(faces: Labelled) -> None:
    model = fit_model(faces, "test")
    doc = measure_age(model, faces)
    assert doc["all"]["n"] == FACES
    inside = 0
    for vector, band in zip(faces.vectors, faces.age_band, strict=True):
        low, mid, high = model.age_quartiles(vector)
        assert low <= mid <= high
        i = AGE_BANDS.index(band)
        edges = (0, 3, 10, 20, 30, 40, 50, 60, 70, 90)
        inside += edges[i] <= mid < edges[i + 1]
    assert doc["all"]["median_in_band"]["count"] == inside
    assert doc["all"]["mean_width_years"] > 0


def test_fitted_model_round_trips_through_its_document(faces: Labelled) -> None:
    model = fit_model(faces, "test")
    again = load_document(model.to_document())
    assert again.p_male(faces.vectors[0]) == model.p_male(faces.vectors[0])


@pytest.mark.slow
def test_leaving_a_race_out_refits_without_it(faces: Labelled) -> None:
    mask = split_names([f"{i}" for i in range(FACES)])
    fit, held = faces.take(mask), faces.take(~mask)
    out = leave_one_race_out(fit, held, "test")
    assert set(out) == set(fit.race)
    for race, row in out.items():
        assert row["left_out"]["all"]["n"] == sum(r == race for r in held.race)
        assert row["fitted_with"]["all"]["n"] == row["left_out"]["all"]["n"]


def test_nothing_to_fit_is_refused() -> None:
    empty = Labelled(np.zeros((0, 128)), (), (), ())
    with pytest.raises(ValueError, match="nothing to fit"):
        fit_model(empty, "test")
