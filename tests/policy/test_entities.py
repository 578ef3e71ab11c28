"""PolicyRequest -> Cedar request and entities."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from facegate.policy.entities import cedar_datetime, resource_kind, to_cedar
from facegate.policy.model import CollectionRef

from .factory import make_request


def test_cedar_datetime_is_utc_with_milliseconds() -> None:
    assert cedar_datetime(datetime(2020, 6, 10, tzinfo=UTC)) == "2020-06-10T00:00:00.000Z"
    cest = timezone(timedelta(hours=2))
    moment = datetime(2025, 2, 2, 1, 30, 5, 123456, tzinfo=cest)
    assert cedar_datetime(moment) == "2025-02-01T23:30:05.123Z"


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cedar_datetime(datetime(2020, 6, 10))


def test_collection_request() -> None:
    query = to_cedar(make_request(purpose="access_control", collection_org="org-2"))
    req, entities = query.request, query.entities
    assert req["principal"] == {"type": "Facegate::Key", "id": "AKTEST"}
    assert req["action"] == {"type": "Facegate::Action", "id": "SearchFacesByImage"}
    assert req["resource"] == {"type": "Facegate::Collection", "id": "gallery"}
    by_type = {e["uid"]["type"]: e for e in entities}
    assert set(by_type) == {"Facegate::Organisation", "Facegate::Key", "Facegate::Collection"}
    org = by_type["Facegate::Organisation"]["attrs"]
    assert org["sector"] == "commercial"
    assert org["use_cases"] == ["access_control"]
    key = by_type["Facegate::Key"]
    assert key["parents"] == [{"type": "Facegate::Organisation", "id": "org-1"}]
    owner = by_type["Facegate::Collection"]["attrs"]["organisation"]["__entity"]
    assert owner == {"type": "Facegate::Organisation", "id": "org-2"}


def test_context_has_every_attribute() -> None:
    ctx = to_cedar(make_request(authorization_ref="W-1", realtime=True)).request["context"]
    assert ctx["now"] == {"__extn": {"fn": "datetime", "arg": "2023-05-01T12:00:00.000Z"}}
    assert ctx["has_authorization"] is True
    assert ctx["has_case"] is False
    assert ctx["has_consent"] is False
    assert ctx["realtime"] is True
    assert ctx["model_audit"] == {"registered": False, "within_bounds": False}
    assert set(ctx) == {
        "now",
        "purpose",
        "case",
        "authorization_ref",
        "authorization_issuer",
        "camera",
        "consent",
        "has_case",
        "has_authorization",
        "has_consent",
        "realtime",
        "exigent",
        "model_audit",
        "setting",
        "attributes",
        "attributes_named",
    }
    assert ctx["setting"] == ""
    assert ctx["attributes"] == []
    assert ctx["attributes_named"] == []


def test_service_actions_use_the_service() -> None:
    query = to_cedar(make_request(action="DetectFaces"))
    assert query.request["resource"] == {"type": "Facegate::Service", "id": "rekognition"}
    assert resource_kind("CompareFaces", True) == "Service"
    assert resource_kind("TagResource", True) == "Collection"
    assert resource_kind("TagResource", False) == "Service"
    assert resource_kind("IndexFaces", False) == "Collection"


def test_tag_action_with_collection() -> None:
    request = make_request(action="TagResource")
    assert request.resource == CollectionRef("gallery", "org-1", 10)
    assert to_cedar(request).request["resource"]["type"] == "Facegate::Collection"


def test_the_gate_status_reaches_the_context() -> None:
    base = make_request()
    context = replace(base.context, model_audit_registered=True, model_audit_within_bounds=False)
    request = replace(base, context=context)
    ctx = to_cedar(request).request["context"]
    assert ctx["model_audit"] == {"registered": True, "within_bounds": False}
