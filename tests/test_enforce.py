"""Obligations applied to parameters and responses: raise, never lower; cap; redact; withhold."""

from __future__ import annotations

from typing import Any

import pytest

from facegate import enforce
from facegate.engine.similarity import LOGISTIC_V0, CalibratedSimilarity
from facegate.policy.model import Obligations

CALIBRATED = CalibratedSimilarity()


def test_threshold_is_raised_never_lowered() -> None:
    strict = Obligations(min_similarity_pct=99.0)
    params: dict[str, Any] = {"face_match_threshold": 80.0}
    assert enforce.before("SearchFacesByImage", params, strict).threshold_raised_to == 99.0
    assert params["face_match_threshold"] == 99.0
    missing: dict[str, Any] = {}
    enforce.before("CompareFaces", missing, strict)
    assert missing["similarity_threshold"] == 99.0
    higher: dict[str, Any] = {"user_match_threshold": 99.5}
    assert enforce.before("SearchUsers", higher, strict).threshold_raised_to is None
    assert higher["user_match_threshold"] == 99.5
    untouched: dict[str, Any] = {}
    enforce.before("DetectFaces", untouched, strict)
    assert untouched == {}


def test_candidates_are_capped_before_and_after() -> None:
    cap = Obligations(max_candidates=2)
    params: dict[str, Any] = {"max_faces": 4096}
    assert enforce.before("SearchFaces", params, cap).candidates_capped_to == 2
    assert params["max_faces"] == 2
    small: dict[str, Any] = {"max_users": 1}
    enforce.before("SearchUsersByImage", small, cap)
    assert small["max_users"] == 1
    response = {"FaceMatches": [1, 2, 3], "UnmatchedFaces": [4]}
    assert enforce.after(response, cap) == {"FaceMatches": [1, 2], "UnmatchedFaces": [4]}


def test_redaction_removes_fields_everywhere() -> None:
    response = {
        "FaceMatches": [{"Similarity": 99.1, "Face": {"FaceId": "f", "ExternalImageId": "alice"}}],
        "ExternalImageId": "top",
    }
    out = enforce.after(response, Obligations(redact_fields=frozenset({"ExternalImageId"})))
    assert out == {"FaceMatches": [{"Similarity": 99.1, "Face": {"FaceId": "f"}}]}
    assert response["ExternalImageId"] == "top"  # the input is not modified


def test_withheld_response_has_no_candidates() -> None:
    response = {"FaceMatches": [1], "UserMatches": [2], "UnmatchedFaces": [3], "Other": 4}
    assert enforce.candidates(response) == 2
    assert enforce.withheld(response) == {
        "FaceMatches": [],
        "UserMatches": [],
        "UnmatchedFaces": [],
        "Other": 4,
    }


# --- the size-aware 1:N bound ----------------------------------------------------------------


def test_a_huge_collection_raises_the_threshold() -> None:
    # 25 million faces, at most 0.01 expected false candidates: per-pair FMR <= 4e-10, which the
    # scale (FMR = (100 - S) / 10,000 from 90 up) puts at Similarity 100 - 4e-6
    bound = Obligations(min_similarity_pct=99.0, max_expected_false_candidates=0.01)
    params: dict[str, Any] = {"face_match_threshold": 80.0}
    applied = enforce.before(
        "SearchFacesByImage", params, bound, collection_faces=25_000_000, similarity=CALIBRATED
    )
    assert params["face_match_threshold"] == pytest.approx(100.0 - 4e-6)
    assert applied.threshold_raised_to == pytest.approx(100.0 - 4e-6)
    assert applied.expected_false_candidates == pytest.approx(0.01)


def test_a_small_collection_keeps_the_minimum() -> None:
    # 50 faces: 0.01 / 50 = 2e-4 per pair is Similarity 98, below the 99 minimum, which stands
    bound = Obligations(min_similarity_pct=99.0, max_expected_false_candidates=0.01)
    params: dict[str, Any] = {}
    applied = enforce.before(
        "SearchFaces", params, bound, collection_faces=50, similarity=CALIBRATED
    )
    assert params["face_match_threshold"] == 99.0
    assert applied.expected_false_candidates == pytest.approx(50 * 1e-4)
    # the bound alone raises the default 80 to 98
    only: dict[str, Any] = {}
    enforce.before(
        "SearchUsers",
        only,
        Obligations(max_expected_false_candidates=0.01),
        collection_faces=50,
        similarity=CALIBRATED,
    )
    assert only["user_match_threshold"] == pytest.approx(98.0)


def test_expected_false_candidates_without_the_obligation() -> None:
    params: dict[str, Any] = {"face_match_threshold": 90.0}
    applied = enforce.before(
        "SearchFacesByImage", params, Obligations(), collection_faces=25_000, similarity=CALIBRATED
    )
    assert params["face_match_threshold"] == 90.0
    assert applied.expected_false_candidates == pytest.approx(25.0)  # 25,000 x 1e-3
    compare = enforce.before("CompareFaces", {}, Obligations(), similarity=CALIBRATED)
    assert compare.expected_false_candidates is None  # 1:1, no collection


def test_an_uncalibrated_mapping_cannot_honour_the_bound() -> None:
    params: dict[str, Any] = {"face_match_threshold": 99.0}
    applied = enforce.before(
        "SearchFacesByImage",
        params,
        Obligations(max_expected_false_candidates=1.0),
        collection_faces=10,
        similarity=LOGISTIC_V0,
    )
    assert params["face_match_threshold"] == 100.0  # fail closed
    assert applied.expected_false_candidates is None
