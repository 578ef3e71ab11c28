"""The default Gender and AgeRange estimators (engine.attributes.demographics)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from facegate.engine.attributes.demographics import (
    AGE_BANDS,
    AGE_EDGES_YEARS,
    AGE_MAX_YEARS,
    DemographicModel,
    age_quantile,
    load_document,
    shipped_model,
)
from facegate.engine.attributes.registry import build_registry, valid
from facegate.engine.attributes.types import AgeRange, Attribute, FaceModels, Gender
from facegate.engine.core import FaceEngine

EDGES = (*AGE_EDGES_YEARS, AGE_MAX_YEARS)


def test_the_shipped_model_loads_and_says_what_was_measured() -> None:
    model = shipped_model()
    assert model.mean.shape == (128,)
    assert model.age_weights.shape == (len(AGE_BANDS) - 1, 128)
    summary = model.measured["gender_summary"]
    assert summary["faces"] >= 2000
    assert 0.0 < summary["error"] < 0.5
    assert "held-out" in summary["summary"]
    assert model.measured["age_summary"]["faces"] == summary["faces"]


def test_age_quantiles_read_the_distribution_between_edges() -> None:
    # every face in the band 30-39: the quartiles at 32.5, 35 and 37.5
    cdf = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert age_quantile(cdf, EDGES, 0.25) == pytest.approx(32.5)
    assert age_quantile(cdf, EDGES, 0.5) == pytest.approx(35.0)
    assert age_quantile(cdf, EDGES, 0.75) == pytest.approx(37.5)
    # a distribution over the last band ends at AGE_MAX_YEARS
    last = [0.0] * 9 + [1.0]
    assert age_quantile(last, EDGES, 0.75) == pytest.approx(70 + 0.75 * (AGE_MAX_YEARS - 70))


def test_the_distribution_function_is_monotone_whatever_the_edge_models_say() -> None:
    model = shipped_model()
    rng = np.random.default_rng(3)
    for _ in range(50):
        vector = model.mean + rng.normal(size=128) * model.scale * 2
        cdf = model.age_cdf(vector)
        assert cdf[0] == 0.0
        assert cdf[-1] == 1.0
        assert all(b >= a for a, b in itertools.pairwise(cdf))
        low, mid, high = model.age_quartiles(vector)
        assert 0.0 <= low <= mid <= high <= AGE_MAX_YEARS


def test_a_malformed_document_is_refused() -> None:
    doc = shipped_model().to_document()
    with pytest.raises(ValueError, match="not a facegate-attribute-demographics"):
        load_document({**doc, "format": "other"})
    with pytest.raises(ValueError, match="malformed"):
        load_document({k: v for k, v in doc.items() if k != "gender"})
    with pytest.raises(ValueError, match="inconsistent"):
        load_document({**doc, "mean": doc["mean"][:-1]})
    model = load_document(doc)
    with pytest.raises(ValueError, match="fitted length"):
        model.p_male(np.zeros(127))
    with pytest.raises(ValueError, match="fitted length"):
        model.p_male(np.full(128, math.nan))


def test_document_round_trip_keeps_the_numbers() -> None:
    model = shipped_model()
    again = load_document(model.to_document())
    vector = model.mean + 0.5 * model.scale
    assert again.p_male(vector) == model.p_male(vector)
    assert again.age_quartiles(vector) == model.age_quartiles(vector)


def test_a_model_of_other_shapes_is_refused() -> None:
    with pytest.raises(ValueError, match="inconsistent"):
        DemographicModel(
            version="x",
            mean=np.zeros(4),
            scale=np.ones(4),
            gender_weights=np.zeros(4),
            gender_bias=0.0,
            age_weights=np.zeros((3, 4)),
            age_biases=np.zeros(3),
        )


def test_default_estimators_on_real_photos(
    engine: FaceEngine, sample_bytes: Callable[[str], bytes]
) -> None:
    wanted = frozenset({"GENDER", "AGE_RANGE"})
    for name in ("obama.jpg", "biden.jpg"):
        analysis = engine.analyze(sample_bytes(name), descriptors=False, attributes=wanted)
        attributes = analysis.faces[0].detected.attributes
        assert attributes is not None
        assert isinstance(attributes.gender, Gender)
        assert attributes.gender.value == "Male", name
        assert valid(Attribute.GENDER, attributes.gender)
        age = attributes.age_range
        assert isinstance(age, AgeRange)
        assert valid(Attribute.AGE_RANGE, age)
        # both men were photographed in their forties to seventies
        assert 30 <= age.low_years <= age.high_years <= 90, (name, age)


def test_an_enabled_face_model_takes_precedence(tmp_path: Path) -> None:
    default = build_registry()
    assert default.available[Attribute.GENDER].version.startswith("dlib-descriptor.gender.")
    assert default.available[Attribute.AGE_RANGE].model is None
    # with faceres enabled but missing, its attributes are left out, not answered by the
    # descriptor models the operator did not choose
    missing = build_registry(models=FaceModels(enabled=frozenset({"faceres"}), models_dir=tmp_path))
    assert Attribute.GENDER not in missing.available
    assert Attribute.AGE_RANGE not in missing.available
    assert Attribute.SMILE in missing.available
