"""The request path in process (``facegate.pipeline.handle`` on a real service graph, SigV4-signed
requests as boto3 signs them): each numbered step of the module's docstring refuses what it
must, with Rekognition's code, and the steps run in that order. The real engine (the session's
``FaceEngine``) does the work where a step needs one."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from facegate import enforce
from facegate.audit.log import iter_entries
from facegate.config import Settings
from facegate.engine.core import FaceEngine
from facegate.ops.estimates import CALIBRATED, TAIL, FalseCandidates
from facegate.pipeline import RawRequest, RawResponse, Scale, _estimated, handle
from facegate.services import Services
from facegate.wire.keys import NewKey
from tests.in_process import InProcessEngine
from tests.signed import local_key, signed_request

# the packs of tests/e2e/test_review.py: every identification by an EU deployer is held for two
# reviewers (eu-ai-act-art5)
REVIEW_PACKS = ("aws-public-safety-terms", "eu-ai-act-art5")


def _open(tmp_path: Path, **settings: Any) -> Services:
    return Services.open(
        Settings(data_dir=tmp_path / "data", engine_workers=1, **settings), start_engine=False
    )


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    graph = _open(tmp_path)
    yield graph
    graph.close()


def _send(services: Services, request: RawRequest) -> tuple[RawResponse, dict[str, Any]]:
    response = asyncio.run(handle(services, request))
    return response, json.loads(response.body)


def _call(
    services: Services,
    key: NewKey,
    operation: str,
    body: dict[str, Any] | bytes,
    headers: dict[str, str] | None = None,
) -> tuple[RawResponse, dict[str, Any]]:
    return _send(services, signed_request(key, operation, body, headers))


def _refused(answer: tuple[RawResponse, dict[str, Any]], status: int, code: str) -> RawResponse:
    response, body = answer
    assert (response.status, body.get("__type")) == (status, code), body
    assert response.headers["x-amzn-RequestId"]
    assert response.headers["content-type"] == "application/x-amz-json-1.1"
    return response


def _requests(services: Services) -> list[dict[str, Any]]:
    return [
        e.record for e in iter_entries(services.settings.audit_dir) if e.record["kind"] == "request"
    ]


def _image(data: bytes) -> dict[str, str]:
    return {"Bytes": base64.b64encode(data).decode()}


# --- 2 authenticate ------------------------------------------------------------------------------


def test_2_a_bad_signature_is_refused_and_counted_not_recorded(services: Services) -> None:
    key = local_key(services)
    forged = replace(key, secret_access_key="x" * len(key.secret_access_key))
    response = _refused(
        _call(services, forged, "ListCollections", {}), 403, "InvalidSignatureException"
    )
    assert "x-facegate-decision-id" not in response.headers
    assert _requests(services) == []  # counted in an aggregate (facegate.refusals), not recorded
    assert services.refusals.pending() == 1


# --- 3 admit -------------------------------------------------------------------------------------


def test_3_a_key_over_its_rate_is_refused_after_it_authenticates(tmp_path: Path) -> None:
    services = _open(tmp_path, rate_limit_rps=0.001, rate_limit_burst=1.0)
    try:
        key = local_key(services)
        response, _ = _call(services, key, "ListCollections", {})
        assert response.status == 200
        _refused(
            _call(services, key, "ListCollections", {}),
            400,
            "ProvisionedThroughputExceededException",
        )
        # the refusal came after authentication: it is recorded, with its key
        (_, refused) = _requests(services)
        assert refused["error_code"] == "ProvisionedThroughputExceededException"
        assert refused["access_key_id"] == key.access_key_id
    finally:
        services.close()


# --- 4 the principal -----------------------------------------------------------------------------


def test_4_a_key_of_a_deactivated_organisation_is_refused(services: Services) -> None:
    services.registry.create_org("gone", name="Gone", sector="research", use_cases=["research"])
    key = services.registry.create_key("gone", "research")
    services.registry.orgs.disable("gone", services.clock())  # as facegate org disable does
    answer = _call(services, key, "ListCollections", {})
    _refused(answer, 403, "AccessDeniedException")
    assert "not registered to an active organisation" in answer[1]["Message"]


# --- 5 the operation, 6 decode -------------------------------------------------------------------


def test_5_an_unknown_operation_is_refused(services: Services) -> None:
    answer = _call(services, local_key(services), "DetectLabels", {})
    _refused(answer, 400, "UnknownOperationException")
    (record,) = _requests(services)
    assert (record["operation"], record["decision"]) == ("DetectLabels", "none")


def test_5_comes_before_6_an_unknown_operation_with_a_bad_body_is_unknown(
    services: Services,
) -> None:
    _refused(
        _call(services, local_key(services), "DetectLabels", b"{not json"),
        400,
        "UnknownOperationException",
    )


def test_6_a_body_that_is_not_json_is_refused(services: Services) -> None:
    answer = _call(services, local_key(services), "ListCollections", b"{not json")
    _refused(answer, 400, "SerializationException")
    (record,) = _requests(services)
    assert record["operation"] == "ListCollections"
    assert record["decision_id"] == ""  # refused before the policy step


def test_6_a_body_outside_the_service_model_is_refused(services: Services) -> None:
    answer = _call(services, local_key(services), "CreateCollection", {"CollectionId": "a b"})
    _refused(answer, 400, "InvalidParameterException")
    assert "CollectionId" in answer[1]["Message"]


# --- 7 decide ------------------------------------------------------------------------------------


def test_7_a_policy_denial_is_refused_with_its_stored_decision(
    services: Services, sample_bytes: Any
) -> None:
    """The default pack's moratorium: no face comparison for a police investigation (refused
    before any work: this graph has no engine)."""
    services.registry.create_org(
        "police", name="Police", sector="law_enforcement", use_cases=["investigation"]
    )
    key = services.registry.create_key("police", "investigation")
    image = _image(sample_bytes("obama.jpg"))
    answer = _call(services, key, "CompareFaces", {"SourceImage": image, "TargetImage": image})
    response = _refused(answer, 403, "AccessDeniedException")
    decision_id = response.headers["x-facegate-decision-id"]
    assert answer[1]["Message"].startswith(f"Access denied by policy (decision {decision_id}).")
    stored = services.decisions.get(decision_id)
    assert stored is not None
    assert not stored.allowed
    (record,) = _requests(services)
    assert (record["decision"], record["decision_id"]) == ("deny", decision_id)


# --- 9 replay ------------------------------------------------------------------------------------


def test_9_a_client_request_token_replays_its_answer(services: Services) -> None:
    key = local_key(services)
    assert _call(services, key, "CreateCollection", {"CollectionId": "c"})[0].status == 200
    create = {"CollectionId": "c", "UserId": "u1", "ClientRequestToken": "tok-1"}
    first, _ = _call(services, key, "CreateUser", create)
    assert first.status == 200
    # replayed, not done again: without the token the same CreateUser is a conflict
    again, _ = _call(services, key, "CreateUser", create)
    assert (again.status, again.body) == (200, first.body)
    _refused(
        _call(services, key, "CreateUser", {"CollectionId": "c", "UserId": "u1"}),
        400,
        "ConflictException",
    )
    # the same token with other parameters is refused
    other = {**create, "UserId": "u2"}
    _refused(_call(services, key, "CreateUser", other), 400, "IdempotentParameterMismatchException")


# --- 8 collect, 10-11 work and hold --------------------------------------------------------------


def test_11_an_identification_is_held_for_review_and_8_collected_only_when_released(
    tmp_path: Path, engine: FaceEngine, sample_bytes: Any
) -> None:
    services = _open(tmp_path, policy_packs=REVIEW_PACKS)
    services.deps = replace(services.deps, engine=InProcessEngine(engine))
    try:
        services.registry.create_org(
            "berlin", name="Berlin", sector="commercial", use_cases=["access_control"],
            country="DE",
        )  # fmt: skip
        key = services.registry.create_key("berlin", "access_control")
        assert _call(services, key, "CreateCollection", {"CollectionId": "c"})[0].status == 200
        for name in ("obama.jpg", "biden.jpg"):
            indexed, body = _call(
                services, key, "IndexFaces",
                {"CollectionId": "c", "Image": _image(sample_bytes(name)), "ExternalImageId": name},
            )  # fmt: skip
            assert indexed.status == 200, body
        search = {"CollectionId": "c", "Image": _image(sample_bytes("obama2.jpg"))}
        held, answer = _call(services, key, "SearchFacesByImage", search)
        assert held.status == 200, answer
        assert answer.get("FaceMatches", []) == []  # withheld until reviewed
        assert answer["SearchedFaceConfidence"] > 90
        review_id = held.headers["x-facegate-review-id"]
        assert held.headers["x-facegate-review-status"] == "pending"
        review = services.reviews.get(review_id)
        assert review is not None
        assert review.reviewers_required == 2
        assert "obama.jpg" in review.held_response
        # collected while pending: still withheld
        collect = {"X-Facegate-Review": review_id}
        pending, again = _call(services, key, "SearchFacesByImage", search, collect)
        assert (pending.status, again.get("FaceMatches", [])) == (200, [])
        assert pending.headers["x-facegate-review-status"] == "pending"
        # another request cannot collect it
        other = {"CollectionId": "c", "Image": _image(sample_bytes("biden.jpg"))}
        _refused(
            _call(services, key, "SearchFacesByImage", other, collect),
            400,
            "InvalidParameterException",
        )
    finally:
        services.close()


# --- 14 record -----------------------------------------------------------------------------------


def test_14_every_answered_request_has_one_record_with_its_request_id(
    services: Services,
) -> None:
    key = local_key(services)
    ok, _ = _call(services, key, "ListCollections", {})
    bad, _ = _call(services, key, "DetectLabels", {})
    records = _requests(services)
    assert [r["request_id"] for r in records] == [
        ok.headers["x-amzn-RequestId"],
        bad.headers["x-amzn-RequestId"],
    ]
    assert [r["error_code"] for r in records] == ["", "UnknownOperationException"]


# --- 10 a search's own false-candidate estimate --------------------------------------------------


def test_10_a_tail_that_raised_the_threshold_is_reported_against_the_threshold_asked(
    services: Services,
) -> None:
    """``_estimated`` on the real default Similarity: a tail fit that raised a search from 80
    to 95 reports 95 as the threshold used and 80 as the one asked for, and the larger of the
    calibrated N x FMR at 95 and the tail's expectation; a fit that raised nothing keeps the
    obligations' figures; no fit (too few faces) keeps them all, marked calibrated."""
    similarity = services.deps.matcher.similarity
    assert similarity is not None
    scale = Scale(similarity, services.active_model[0], services.deps.matcher.version)
    applied = enforce.Applied(threshold_pct=80.0, expected_false_candidates=3.0)
    raised = FalseCandidates()
    raised.note(2_000, 0.4, 95.0)
    figures = _estimated(applied, raised, scale)
    fmr = similarity.fmr_at(95.0)
    assert fmr is not None
    assert (figures.method, figures.threshold_raised_to, figures.threshold_requested_pct) == (
        TAIL,
        95.0,
        80.0,
    )
    assert figures.calibrated == pytest.approx(2_000 * fmr)
    assert figures.expected == pytest.approx(max(2_000 * fmr, 0.4))
    assert figures.tail == 0.4
    kept = FalseCandidates()
    kept.note(2_000, 0.4, None)
    figures = _estimated(applied, kept, scale)
    assert (figures.threshold_raised_to, figures.threshold_requested_pct) == (None, None)
    assert figures.calibrated == pytest.approx(2_000 * (similarity.fmr_at(80.0) or 0.0))
    unfitted = _estimated(applied, FalseCandidates(), scale)
    assert (unfitted.method, unfitted.expected, unfitted.calibrated, unfitted.tail) == (
        CALIBRATED,
        3.0,
        None,
        None,
    )
