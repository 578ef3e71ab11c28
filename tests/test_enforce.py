"""Obligations applied to parameters and responses: raise, never lower; cap; redact; withhold."""

from __future__ import annotations

from typing import Any

import pytest

from facegate import enforce
from facegate.engine.matching import default_matcher
from facegate.engine.similarity import LOGISTIC_V0, CalibratedSimilarity, scale_similarity
from facegate.operations import OPERATIONS as OPS
from facegate.policy.engine import DEFAULT_PACKS, PolicyEngine
from facegate.policy.model import Obligations
from tests.policy.factory import make_request

CALIBRATED = CalibratedSimilarity()


def test_threshold_is_raised_never_lowered() -> None:
    strict = Obligations(min_similarity_pct=99.0)
    params: dict[str, Any] = {"face_match_threshold": 80.0}
    assert enforce.before(OPS["SearchFacesByImage"], params, strict).threshold_raised_to == 99.0
    assert params["face_match_threshold"] == 99.0
    missing: dict[str, Any] = {}
    enforce.before(OPS["CompareFaces"], missing, strict)
    assert missing["similarity_threshold"] == 99.0
    higher: dict[str, Any] = {"user_match_threshold": 99.5}
    assert enforce.before(OPS["SearchUsers"], higher, strict).threshold_raised_to is None
    assert higher["user_match_threshold"] == 99.5
    untouched: dict[str, Any] = {}
    enforce.before(OPS["DetectFaces"], untouched, strict)
    assert untouched == {}


def test_candidates_are_capped_before_and_after() -> None:
    cap = Obligations(max_candidates=2)
    params: dict[str, Any] = {"max_faces": 4096}
    assert enforce.before(OPS["SearchFaces"], params, cap).candidates_capped_to == 2
    assert params["max_faces"] == 2
    small: dict[str, Any] = {"max_users": 1}
    enforce.before(OPS["SearchUsersByImage"], small, cap)
    assert small["max_users"] == 1
    response = {"FaceMatches": [1, 2, 3], "UnmatchedFaces": [4]}
    assert enforce.after(OPS["SearchFaces"], response, cap) == {
        "FaceMatches": [1, 2],
        "UnmatchedFaces": [4],
    }


def test_redaction_removes_fields_everywhere() -> None:
    response = {
        "FaceMatches": [{"Similarity": 99.1, "Face": {"FaceId": "f", "ExternalImageId": "alice"}}],
        "ExternalImageId": "top",
    }
    out = enforce.after(
        OPS["SearchFaces"], response, Obligations(redact_fields=frozenset({"ExternalImageId"}))
    )
    assert out == {"FaceMatches": [{"Similarity": 99.1, "Face": {"FaceId": "f"}}]}
    assert response["ExternalImageId"] == "top"  # the input is not modified


def test_withheld_response_has_no_candidates() -> None:
    response = {"FaceMatches": [1], "UnmatchedFaces": [3], "SourceImageFace": 4}
    compare = OPS["CompareFaces"]
    assert enforce.candidates(compare, response) == 1
    assert enforce.withheld(compare, response) == {
        "FaceMatches": [],
        "UnmatchedFaces": [],
        "SourceImageFace": 4,
    }


@pytest.mark.parametrize("name", sorted(OPS))
def test_a_withheld_answer_has_one_form_with_or_without_a_match(name: str) -> None:
    """What a caller sees while a review is pending must not depend on the result: every held
    member is present and empty whether the answer had candidates or not."""
    spec = OPS[name]
    if not spec.compares_faces:
        assert spec.held_fields == ()  # nothing is held for an operation that compares nothing
        return
    assert spec.held_fields, name  # an operation that compares faces withholds something
    with_match = {field: [{"x": 1}] for field in spec.held_fields} | {"Other": 1}
    without = {"Other": 1}
    assert enforce.withheld(spec, with_match) == enforce.withheld(spec, without)


def test_review_is_owed_whatever_the_result() -> None:
    review = Obligations(reviewers_required=1)
    for name, spec in OPS.items():
        assert enforce.must_hold(spec, review) == spec.compares_faces, name
        assert not enforce.must_hold(spec, Obligations())


# --- the size-aware 1:N bound ----------------------------------------------------------------


def test_a_huge_collection_raises_the_threshold() -> None:
    # 25 million faces, at most 0.01 expected false candidates: per-pair FMR <= 4e-10, which the
    # scale (FMR = (100 - S) / 10,000 from 90 up) puts at Similarity 100 - 4e-6
    bound = Obligations(min_similarity_pct=99.0, max_expected_false_candidates=0.01)
    params: dict[str, Any] = {"face_match_threshold": 80.0}
    applied = enforce.before(
        OPS["SearchFacesByImage"], params, bound, collection_faces=25_000_000, similarity=CALIBRATED
    )
    assert params["face_match_threshold"] == pytest.approx(100.0 - 4e-6)
    assert applied.threshold_raised_to == pytest.approx(100.0 - 4e-6)
    assert applied.expected_false_candidates == pytest.approx(0.01)


def test_a_small_collection_keeps_the_minimum() -> None:
    # 50 faces: 0.01 / 50 = 2e-4 per pair is Similarity 98, below the 99 minimum, which stands
    bound = Obligations(min_similarity_pct=99.0, max_expected_false_candidates=0.01)
    params: dict[str, Any] = {}
    applied = enforce.before(
        OPS["SearchFaces"], params, bound, collection_faces=50, similarity=CALIBRATED
    )
    assert params["face_match_threshold"] == 99.0
    assert applied.expected_false_candidates == pytest.approx(50 * 1e-4)
    # the bound alone raises the default 80 to 98
    only: dict[str, Any] = {}
    enforce.before(
        OPS["SearchUsers"],
        only,
        Obligations(max_expected_false_candidates=0.01),
        collection_faces=50,
        similarity=CALIBRATED,
    )
    assert only["user_match_threshold"] == pytest.approx(98.0)


def test_expected_false_candidates_without_the_obligation() -> None:
    params: dict[str, Any] = {"face_match_threshold": 90.0}
    applied = enforce.before(
        OPS["SearchFacesByImage"],
        params,
        Obligations(),
        collection_faces=25_000,
        similarity=CALIBRATED,
    )
    assert params["face_match_threshold"] == 90.0
    assert applied.expected_false_candidates == pytest.approx(25.0)  # 25,000 x 1e-3
    compare = enforce.before(OPS["CompareFaces"], {}, Obligations(), similarity=CALIBRATED)
    assert compare.expected_false_candidates is None  # 1:1, no collection


def test_an_uncalibrated_mapping_cannot_honour_the_bound() -> None:
    params: dict[str, Any] = {"face_match_threshold": 99.0}
    applied = enforce.before(
        OPS["SearchFacesByImage"],
        params,
        Obligations(max_expected_false_candidates=1.0),
        collection_faces=10,
        similarity=LOGISTIC_V0,
    )
    assert params["face_match_threshold"] == 100.0  # fail closed
    assert applied.expected_false_candidates is None


def test_dropped_attributes_never_reach_the_engine() -> None:
    drop = Obligations(drop_attributes=frozenset({"EMOTIONS", "GENDER"}))
    everything: dict[str, Any] = {"attributes": ["ALL"]}
    applied = enforce.before(OPS["DetectFaces"], everything, drop)
    assert applied.attributes_dropped == {"EMOTIONS", "GENDER"}
    assert len(applied.attributes_requested) == 12
    assert "ALL" not in everything["attributes"]
    assert not {"EMOTIONS", "GENDER"} & set(everything["attributes"])
    assert len(everything["attributes"]) == 10
    only: dict[str, Any] = {"detection_attributes": ["DEFAULT", "EMOTIONS"]}
    applied = enforce.before(OPS["IndexFaces"], only, drop)
    assert only["detection_attributes"] == ["DEFAULT"]
    assert applied.attributes_dropped == {"EMOTIONS"}
    untouched: dict[str, Any] = {"attributes": ["SMILE"]}
    applied = enforce.before(OPS["DetectFaces"], untouched, drop)
    assert untouched == {"attributes": ["SMILE"]}
    assert applied.attributes_requested == {"SMILE"}
    assert applied.attributes_dropped == frozenset()
    # operations that infer no attribute are not touched
    search: dict[str, Any] = {"collection_id": "c"}
    assert enforce.before(OPS["SearchFacesByImage"], search, drop).attributes_requested == set()


def test_dropped_attribute_members_are_removed_from_the_answer() -> None:
    drop = Obligations(drop_attributes=frozenset({"SMILE", "EMOTIONS"}))
    detail = {"BoundingBox": {}, "Smile": {"Value": True}, "EyesOpen": {"Value": True}}
    out = enforce.after(OPS["DetectFaces"], {"FaceDetails": [detail]}, drop)
    assert out["FaceDetails"] == [{"BoundingBox": {}, "EyesOpen": {"Value": True}}]
    indexed = {"FaceRecords": [{"Face": {}, "FaceDetail": dict(detail)}]}
    out = enforce.after(OPS["IndexFaces"], indexed, drop)
    assert "Smile" not in out["FaceRecords"][0]["FaceDetail"]


def test_the_base_packs_bound_is_kept_by_the_promise_curve() -> None:
    """The base pack's decision for a 1:N search (real Cedar evaluation) bounds it by one
    expected false candidate; with the server's default matcher that bound is kept by the
    promise curve (the rate a population left out of the fit can expect), not the nominal
    scale: a stricter threshold, and N x the promised rate reported."""
    decision = PolicyEngine.load(DEFAULT_PACKS).decide(make_request())
    assert decision.allowed
    assert decision.obligations.max_expected_false_candidates == 1.0
    similarity = default_matcher().similarity
    assert isinstance(similarity, CalibratedSimilarity)
    curve = similarity.promise
    assert curve is not None
    for faces in (1_000, 10_000, 25_000):
        params: dict[str, Any] = {"face_match_threshold": 80.0}
        applied = enforce.before(
            OPS["SearchFacesByImage"],
            params,
            decision.obligations,
            collection_faces=faces,
            similarity=similarity,
        )
        wanted = curve.similarity_for_fmr(1.0 / faces)
        assert params["face_match_threshold"] == pytest.approx(wanted)
        assert applied.threshold_raised_to == pytest.approx(wanted)
        assert wanted > scale_similarity(1.0 / faces)  # stricter than the nominal scale
        assert applied.expected_false_candidates == pytest.approx(1.0)
        assert enforce.size_aware_threshold(1.0, faces, similarity) == pytest.approx(wanted)
    # a caller's threshold above it stands, and reports N x the promised rate there
    params = {"face_match_threshold": 99.9}
    applied = enforce.before(
        OPS["SearchFaces"],
        params,
        decision.obligations,
        collection_faces=1_000,
        similarity=similarity,
    )
    assert applied.threshold_raised_to is None
    assert applied.expected_false_candidates == pytest.approx(1_000 * curve.fmr_at(99.9))
