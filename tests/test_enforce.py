"""Obligations applied to parameters and responses: raise, never lower; cap; redact; withhold."""

from __future__ import annotations

from typing import Any

from facegate import enforce
from facegate.policy.model import Obligations


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
