"""The admin API over HTTP (in process): authentication, roles, bodies, statuses, no secrets."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from facegate.admin.routes import http_status
from facegate.errors import (
    ConflictException,
    EmptyImageError,
    FacegateError,
    InternalServerError,
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    SerializationException,
    ThrottlingException,
)
from tests.admin.conftest import MakeReview, Tokens, bearer

ORG = {
    "org_id": "acme",
    "name": "Acme Access",
    "sector": "commercial",
    "use_cases": ["access_control"],
    "country": "DE",
}


def _error(response: Any, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    doc = response.json()
    assert set(doc) == {"error", "code"}
    assert fragment in doc["error"], doc


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidParameterException("x"), 400),
        (EmptyImageError("x"), 400),
        (SerializationException("x"), 400),
        (ThrottlingException("x"), 400),
        (ResourceNotFoundException("x"), 404),
        (ResourceAlreadyExistsException("x"), 409),
        (ConflictException("x"), 409),
        (InternalServerError("x"), 500),
    ],
)
def test_http_status(error: FacegateError, status: int) -> None:
    assert http_status(error) == status


def test_authentication(client: TestClient, tokens: Tokens) -> None:
    missing = client.get("/admin/whoami")
    _error(missing, 401, "Authorization: Bearer")
    assert missing.headers["www-authenticate"] == "Bearer"
    _error(client.get("/admin/whoami", headers={"Authorization": "Basic eDp5"}), 401, "Bearer")
    _error(client.get("/admin/whoami", headers=bearer("fgop_" + "x" * 40)), 401, "not valid")
    me = client.get("/admin/whoami", headers=bearer(tokens.alice))
    assert me.status_code == 200
    assert me.json()["operator_id"] == "alice"
    assert me.headers["cache-control"] == "no-store"


def test_roles(client: TestClient, tokens: Tokens) -> None:
    for path in ("/admin/orgs", "/admin/keys", "/admin/operators", "/admin/decisions"):
        _error(client.get(path, headers=bearer(tokens.alice)), 403, "needs role 'admin'")
    _error(
        client.post("/admin/orgs", json=ORG, headers=bearer(tokens.bob)),
        403,
        "manage organisations",
    )
    assert client.get("/admin/reviews", headers=bearer(tokens.alice)).status_code == 200
    assert client.get("/admin/reviews", headers=bearer(tokens.admin)).status_code == 200


def test_organisations_and_keys(client: TestClient, tokens: Tokens) -> None:
    auth = bearer(tokens.admin)
    created = client.post("/admin/orgs", json=ORG, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["use_cases"] == ["access_control"]
    _error(client.post("/admin/orgs", json=ORG, headers=auth), 409, "already exists")
    _error(client.get("/admin/orgs/ghost", headers=auth), 404, "Organisation ghost")
    key = client.post("/admin/keys", json={"org_id": "acme", "description": "door"}, headers=auth)
    assert key.status_code == 201
    secret = key.json()["secret_access_key"]
    key_id = key.json()["access_key_id"]
    shown = client.get("/admin/orgs/acme", headers=auth)
    assert [k["access_key_id"] for k in shown.json()["keys"]] == [key_id]
    listing = client.get("/admin/keys", params={"org_id": "acme"}, headers=auth)
    assert secret not in listing.text
    assert secret not in shown.text
    assert listing.json()["keys"][0]["state"] == "usable"
    revoked = client.post(f"/admin/keys/{key_id}/revoke", headers=auth)
    assert revoked.json()["state"] == "revoked"
    _error(client.post("/admin/keys/FGAKNOPE/revoke", headers=auth), 404, "FGAKNOPE")
    use_cases = {"use_cases": ["access_control", "identity_verification"]}
    updated = client.put("/admin/orgs/acme/use-cases", json=use_cases, headers=auth)
    assert updated.json()["use_cases"] == use_cases["use_cases"]
    disabled = client.post("/admin/orgs/acme/disable", headers=auth)
    assert disabled.json()["active"] is False


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({**ORG, "sector": "pirates"}, "Unknown sector 'pirates'"),
        ({**ORG, "use_cases": "access_control"}, "Field 'use_cases' must be a non-empty list"),
        ({**ORG, "name": 7}, "Field 'name' must be a string"),
        ({**ORG, "colour": "red"}, "Field 'colour' is not known here"),
        ({k: v for k, v in ORG.items() if k != "sector"}, "Field 'sector' is required"),
        (["not", "an", "object"], "must be a JSON object"),
    ],
)
def test_bad_bodies_name_the_field(
    client: TestClient, tokens: Tokens, body: Any, fragment: str
) -> None:
    _error(client.post("/admin/orgs", json=body, headers=bearer(tokens.admin)), 400, fragment)


def test_body_limits_and_json(client: TestClient, tokens: Tokens) -> None:
    auth = {**bearer(tokens.admin), "content-type": "application/json"}
    _error(client.post("/admin/orgs", content=b"{nope", headers=auth), 400, "not valid JSON")
    _error(client.post("/admin/orgs", content=b"\xff\xfe", headers=auth), 400, "UTF-8")
    _error(client.post("/admin/orgs", headers=auth), 400, "must be a JSON object")
    big = b'{"name": "' + b"x" * (70 * 1024) + b'"}'
    _error(client.post("/admin/orgs", content=big, headers=auth), 413, "65536 bytes")


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        # issue 18, item 15: a lone surrogate in an organisation name was a 500
        ("/admin/orgs", b'{"org_id": "acme", "name": "\\ud800", "sector": "commercial", '
         b'"use_cases": ["access_control"]}', "unpaired surrogate"),
        ("/admin/orgs", b'{"org_id": "acme", "name": "Acme", "sector": "commercial", '
         b'"use_cases": ["access_\\udc00"]}', "unpaired surrogate"),
        # a 5000-digit integer was a 500 (int() refuses more than 4300 digits)
        ("/admin/keys", b'{"org_id": "acme", "expires_in_days": ' + b"9" * 5000 + b"}",
         "more than 100 characters"),
        ("/admin/keys", b'{"org_id": "acme", "expires_in_days": 1e999}', "too large"),
        ("/admin/keys", b'{"org_id": "acme", "expires_in_days": NaN}', "NaN"),
        ("/admin/policies/explain", b'{"context": ' * 200 + b"{}" + b"}" * 200, "nested deeper"),
    ],
)  # fmt: skip
def test_hostile_json_is_a_400(
    client: TestClient, tokens: Tokens, path: str, body: bytes, fragment: str
) -> None:
    auth = {**bearer(tokens.admin), "content-type": "application/json"}
    _error(client.post(path, content=body, headers=auth), 400, fragment)
    assert client.get("/admin/orgs", headers=bearer(tokens.admin)).json() == {"organisations": []}


def test_query_parameters(client: TestClient, tokens: Tokens) -> None:
    auth = bearer(tokens.admin)
    _error(client.get("/admin/reviews?status=done", headers=auth), 400, "'status' must be one of")
    _error(client.get("/admin/decisions?limit=0", headers=auth), 400, "'limit' must be")
    _error(client.get("/admin/reviews?stauts=pending", headers=auth), 400, "'stauts'")


def test_unknown_paths_and_methods(client: TestClient, tokens: Tokens) -> None:
    auth = bearer(tokens.admin)
    _error(client.get("/admin/nothing/here", headers=auth), 404, "No admin endpoint")
    wrong = client.delete("/admin/orgs", headers=auth)
    _error(wrong, 405, "DELETE is not allowed")
    assert wrong.headers["allow"] == "GET, POST"


def test_operators(client: TestClient, tokens: Tokens) -> None:
    auth = bearer(tokens.admin)
    body = {"operator_id": "carol", "display_name": "Carol", "role": "reviewer"}
    created = client.post("/admin/operators", json=body, headers=auth)
    assert created.status_code == 201
    token = created.json()["token"]
    assert client.get("/admin/whoami", headers=bearer(token)).json()["role"] == "reviewer"
    listing = client.get("/admin/operators", headers=auth)
    assert token not in listing.text
    assert "sha256" not in listing.text
    assert {o["operator_id"] for o in listing.json()["operators"]} == {
        "root",
        "alice",
        "bob",
        "carol",
    }
    _error(client.post("/admin/operators", json=body, headers=auth), 409, "carol already exists")


def test_policies_and_explain(client: TestClient, tokens: Tokens) -> None:
    auth = bearer(tokens.admin)
    policies = client.get("/admin/policies", headers=auth).json()
    assert policies["packs"] == ["base", "aws-public-safety-terms", "eu-ai-act-art5"]
    assert all(p["text"] and p["source"] for p in policies["policies"])
    client.post("/admin/orgs", json=ORG, headers=auth)
    body = {"org_id": "acme", "action": "SearchFacesByImage", "collection": "staff"}
    explained = client.post("/admin/policies/explain", json=body, headers=auth).json()
    assert explained["decision"] == "Allow"
    assert explained["obligations"]["reviewers_required"] == 2
    assert "eu-ai-act-art5.permit-identification-two-person-verification" in explained["policy_ids"]
    assert "EU-14-5 [E2]; EU-12-3 [E2]; EU-ANNEX-III-1 [E2][E7]" in explained["sources"]
    bad = client.post(
        "/admin/policies/explain", json={**body, "context": {"exigent": 1}}, headers=auth
    )
    _error(bad, 400, "Field 'context.exigent' must be true or false")


def test_reviews(client: TestClient, tokens: Tokens, make_review: MakeReview) -> None:
    review = make_review(reviewers=2)
    path = f"/admin/reviews/{review.review_id}"
    listed = client.get("/admin/reviews", headers=bearer(tokens.alice)).json()["reviews"]
    assert [r["review_id"] for r in listed] == [review.review_id]
    shown = client.get(path, headers=bearer(tokens.alice)).json()
    assert shown["held_candidates"][0]["external_image_id"] == "obama.jpg"
    assert shown["request"]["collection_id"] == "staff"
    note = {"note": "checked against case file"}
    one = client.post(f"{path}/confirm", json=note, headers=bearer(tokens.alice))
    assert one.status_code == 200
    assert one.json()["status"] == "pending"
    again = client.post(f"{path}/confirm", json=note, headers=bearer(tokens.alice))
    _error(again, 409, "already reviewed")
    _error(client.post(f"{path}/confirm", headers=bearer(tokens.bob)), 400, "JSON object")
    _error(client.post(f"{path}/confirm", json={}, headers=bearer(tokens.bob)), 400, "'note'")
    two = client.post(f"{path}/confirm", json=note, headers=bearer(tokens.bob))
    assert two.json()["status"] == "released"
    assert [v["operator_id"] for v in two.json()["votes"]] == ["alice", "bob"]
    _error(client.get("/admin/reviews/rev-nope", headers=bearer(tokens.bob)), 404, "rev-nope")
    decision = client.get(f"/admin/decisions/{review.decision_id}", headers=bearer(tokens.admin))
    assert decision.json()["review_id"] == review.review_id


def test_requests_are_logged_without_tokens(
    client: TestClient, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="facegate.admin"):
        client.get("/admin/orgs", headers=bearer(tokens.alice))
        client.get("/admin/whoami", headers=bearer("fgop_" + "q" * 40))
        client.post(
            "/admin/operators",
            json={"operator_id": "x", "display_name": "X", "role": "reviewer"},
            headers=bearer(tokens.admin),
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "facegate.admin"]
    assert "admin GET /admin/orgs by alice: 403" in lines
    assert "admin GET /admin/whoami by -: 401" in lines
    assert "admin POST /admin/operators by root: 201" in lines
    assert not any("fgop_" in line for line in lines)
