"""Every 1:N search reports how many false candidates its collection's size leads to expect:
collection size x the per-pair false match rate promised at the threshold used (the promise
curve shipped beside the calibration, wider than the nominal scale), in the
x-facegate-expected-false-candidates header and the audit record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from facegate.engine.matching import default_matcher
from facegate.engine.similarity import scale_fmr, scale_similarity
from tests.e2e.server import LiveServer, audit_record

pytestmark = pytest.mark.slow  # searches of a large collection on a live server


def test_search_reports_expected_false_candidates(
    server: LiveServer, rek: Any, image: Callable[[str], dict[str, bytes]]
) -> None:
    rek.create_collection(CollectionId="efc")
    for name in ("biden.jpg", "obama.jpg", "two_people.jpg"):
        rek.index_faces(CollectionId="efc", Image=image(name))
    faces = rek.describe_collection(CollectionId="efc")["FaceCount"]
    assert faces >= 3
    promised = default_matcher().similarity
    for threshold in (80.0, 99.0):
        per_pair = promised.fmr_at(threshold)
        assert per_pair is not None
        assert per_pair > scale_fmr(threshold)  # the promise, not the nominal scale
        response = rek.search_faces_by_image(
            CollectionId="efc", Image=image("obama2.jpg"), FaceMatchThreshold=threshold
        )
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        expected = float(headers["x-facegate-expected-false-candidates"])
        assert expected == pytest.approx(faces * per_pair, rel=1e-5)  # the header has 6 digits
        record = audit_record(server, headers["x-facegate-decision-id"])
        assert record["result"]["expected_false_candidates"] == pytest.approx(faces * per_pair)
        # the record names the promise curve those numbers were counted with
        assert record["result"]["promise_version"] == promised.promise.version  # type: ignore[attr-defined]
        # too few faces for the probe's own tail: the calibrated rate alone, marked so
        assert headers["x-facegate-false-candidate-estimate"] == "calibrated"
        assert "x-facegate-expected-false-candidates-tail" not in headers
        assert record["result"]["false_candidate_estimate"] == "calibrated"
        assert record["result"]["expected_false_candidates_tail"] is None
    detect = rek.detect_faces(Image=image("obama.jpg"))
    assert "x-facegate-expected-false-candidates" not in detect["ResponseMetadata"]["HTTPHeaders"]
    rek.delete_collection(CollectionId="efc")


def test_default_bound_raises_a_low_threshold_and_says_so(
    server: LiveServer, rek: Any, image: Callable[[str], dict[str, bytes]]
) -> None:
    """The base pack bounds every 1:N search by one expected false candidate: a caller asking
    for Similarity 50 against a collection where that expects more gets the threshold whose
    promised rate keeps N x FMR <= 1, and is told in the headers and the audit record."""
    rek.create_collection(CollectionId="bound")
    for name in ("group_t1.jpg", "two_people.jpg", "biden.jpg", "obama.jpg", "obama3.jpg"):
        rek.index_faces(CollectionId="bound", Image=image(name))
    faces = rek.describe_collection(CollectionId="bound")["FaceCount"]
    assert faces > 10  # 50 promises FMR >= 0.1 per pair: more than one false candidate
    response = rek.search_faces_by_image(
        CollectionId="bound", Image=image("obama2.jpg"), FaceMatchThreshold=50.0
    )
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    wanted = default_matcher().similarity.similarity_for_fmr(1.0 / faces)
    assert wanted is not None
    assert wanted > scale_similarity(1.0 / faces)  # the promise is stricter than the scale
    assert float(headers["x-facegate-threshold-raised-to"]) == pytest.approx(wanted, abs=1e-4)
    assert float(headers["x-facegate-threshold-requested"]) == 50.0
    assert float(headers["x-facegate-expected-false-candidates"]) == pytest.approx(1.0)
    assert all(m["Similarity"] >= wanted - 1e-6 for m in response["FaceMatches"])
    record = audit_record(server, headers["x-facegate-decision-id"])
    assert record["obligations"]["max_expected_false_candidates"] == 1.0
    assert "base.default-expected-false-candidates" in record["policy_ids"]
    assert record["result"]["threshold_raised_to"] == pytest.approx(wanted, abs=1e-4)
    assert record["result"]["threshold_requested_pct"] == 50.0
    # a threshold the bound already allows is not raised, and nothing is said about it
    kept = rek.search_faces_by_image(
        CollectionId="bound", Image=image("obama2.jpg"), FaceMatchThreshold=99.0
    )
    kept_headers = kept["ResponseMetadata"]["HTTPHeaders"]
    assert "x-facegate-threshold-raised-to" not in kept_headers
    kept_record = audit_record(server, kept_headers["x-facegate-decision-id"])
    assert kept_record["result"]["threshold_raised_to"] is None
    rek.delete_collection(CollectionId="bound")
