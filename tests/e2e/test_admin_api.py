"""The admin API against a live server (httpx), and its effect on boto3 callers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from facegate.admin.routes import admin_endpoints, described
from tests.admin.live import AdminApi, create_operator, error_of, unique
from tests.e2e.server import LiveServer


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[AdminApi]:
    with AdminApi(server, create_operator(server, unique("root"), "admin")) as api:
        yield api


@pytest.fixture(scope="module")
def reviewer(server: LiveServer) -> Iterator[AdminApi]:
    with AdminApi(server, create_operator(server, unique("rev"), "reviewer")) as api:
        yield api


def _code(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = info.value.response["Error"]
    return error["Code"], error["Message"]


def test_openapi_is_public_and_complete(server: LiveServer) -> None:
    response = httpx.get(server.endpoint + "/admin/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"] == "3.1.0"
    assert described(doc) == {(e.method, "/admin" + e.path) for e in admin_endpoints()}


def test_authentication_and_roles(server: LiveServer, reviewer: AdminApi) -> None:
    with AdminApi(server, None) as anonymous:
        assert "Authorization: Bearer" in error_of(anonymous.get("/whoami"), 401)
    with AdminApi(server, "fgop_" + "A" * 40) as unknown:
        assert "not valid" in error_of(unknown.get("/whoami"), 401)
    assert reviewer.ok(reviewer.get("/whoami"))["role"] == "reviewer"
    assert "needs role 'admin'" in error_of(reviewer.get("/orgs"), 403)
    assert "needs role 'admin'" in error_of(reviewer.post("/policies/explain", {}), 403)
    gone_id = unique("gone")
    with AdminApi(server, create_operator(server, gone_id, "admin")) as gone:
        assert gone.ok(gone.get("/whoami"))["operator_id"] == gone_id
        server.facegate("operators", "disable", gone_id)
        assert "not valid" in error_of(gone.get("/whoami"), 401)


def test_organisation_and_key_lifecycle_with_boto3(server: LiveServer, admin: AdminApi) -> None:
    org_id = unique("ngo")
    org = admin.create_org(
        org_id, sector="ngo", use_cases=["missing_persons"], country="US", region="US-NY"
    )
    assert org["active"] is True
    assert "already exists" in error_of(
        admin.post(
            "/orgs", {"org_id": org_id, "name": "x", "sector": "ngo", "use_cases": ["humanitarian"]}
        ),
        409,
    )
    creds = admin.create_key(org_id)
    rek = server.client(creds)
    listed = rek.list_collections()
    decision_id = listed["ResponseMetadata"]["HTTPHeaders"]["x-facegate-decision-id"]
    decision = admin.ok(admin.get(f"/decisions/{decision_id}"))
    assert decision["org_id"] == org_id
    assert decision["operation"] == "ListCollections"
    assert decision["allowed"] is True
    assert decision["purpose"] == "missing_persons"
    recent = admin.ok(admin.get("/decisions", org_id=org_id, limit="5"))["decisions"]
    assert decision_id in [d["decision_id"] for d in recent]
    shown = admin.get(f"/orgs/{org_id}")
    keys = admin.get("/keys", org_id=org_id)
    for response in (shown, keys):
        assert creds.secret_access_key not in response.text
    assert [k["access_key_id"] for k in admin.ok(keys)["keys"]] == [creds.access_key_id]
    revoked = admin.ok(admin.post(f"/keys/{creds.access_key_id}/revoke"))
    assert revoked["state"] == "revoked"
    with pytest.raises(ClientError) as info:
        rek.list_collections()
    assert _code(info)[0] == "UnrecognizedClientException"
    second = server.client(admin.create_key(org_id))
    second.list_collections()
    assert admin.ok(admin.post(f"/orgs/{org_id}/disable"))["active"] is False
    with pytest.raises(ClientError) as info:
        second.list_collections()
    code, message = _code(info)
    assert code == "AccessDeniedException"
    assert "not registered to an active organisation" in message
    assert "is disabled" in error_of(admin.post("/keys", {"org_id": org_id}), 400)


def test_explain_the_police_moratorium(admin: AdminApi) -> None:
    """The server runs the default pack (amazon-2020-police-moratorium)."""
    org_id = unique("pd")
    admin.create_org(
        org_id,
        sector="law_enforcement",
        use_cases=["investigation", "missing_persons"],
        country="US",
    )
    packs = admin.ok(admin.get("/policies"))["packs"]
    assert packs == ["base", "amazon-2020-police-moratorium"]
    body: dict[str, Any] = {
        "org_id": org_id,
        "use_case": "investigation",
        "action": "SearchFacesByImage",
        "collection": "suspects",
        "context": {"now": "2021-06-01T12:00:00Z"},
    }
    denied = admin.ok(admin.post("/policies/explain", body))
    assert denied["decision"] == "Deny"
    assert any(p.startswith("amazon-2020-police-moratorium.") for p in denied["policy_ids"])
    assert denied["reasons"]
    assert denied["sources"]
    allowed = admin.ok(admin.post("/policies/explain", {**body, "use_case": "missing_persons"}))
    assert allowed["decision"] == "Allow"
    assert allowed["errors"] == []


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/orgs", {"org_id": "x"}, 400, "Field 'name' is required"),
        ("/orgs", {"org_id": "x", "name": "X", "sector": "ngo", "use_cases": []}, 400, "use_cases"),
        ("/keys", {"org_id": "nobody-here"}, 404, "Organisation nobody-here does not exist"),
        ("/keys", {"org_id": "x", "expires_in_days": "soon"}, 400, "'expires_in_days'"),
        ("/operators", {"operator_id": "x", "role": "god"}, 400, "'display_name' is required"),
        ("/policies/explain", {"org_id": "x", "bogus": 1}, 400, "Field 'bogus' is not known"),
        ("/keys/FGAKNOTAKEY/revoke", None, 404, "FGAKNOTAKEY"),
        ("/reviews/rev-0000/confirm", {"note": "ok"}, 404, "rev-0000"),
    ],
)
def test_errors_name_the_field_or_id(
    admin: AdminApi, path: str, body: Any, status: int, fragment: str
) -> None:
    assert fragment in error_of(admin.post(path, body), status)


def test_transport_errors(server: LiveServer, admin: AdminApi) -> None:
    big = admin.http.post("/orgs", content=b"{" + b" " * (65 * 1024) + b"}")
    assert "exceeds 65536 bytes" in error_of(big, 413)
    assert "not valid JSON" in error_of(admin.http.post("/orgs", content=b"{'a': 1}"), 400)
    assert "Decision dec-nope" in error_of(admin.get("/decisions/dec-nope"), 404)
    assert "No admin endpoint" in error_of(admin.get("/nothing"), 404)
    wrong = admin.http.delete("/orgs")
    assert "DELETE is not allowed" in error_of(wrong, 405)
    assert "'status' must be one of" in error_of(admin.get("/reviews", status="done"), 400)


def test_operators(server: LiveServer, admin: AdminApi, reviewer: AdminApi) -> None:
    operator_id = unique("carol")
    created = admin.ok(
        admin.post(
            "/operators", {"operator_id": operator_id, "display_name": "Carol", "role": "reviewer"}
        ),
        201,
    )
    token = created["token"]
    with AdminApi(server, token) as carol:
        assert carol.ok(carol.get("/whoami"))["operator_id"] == operator_id
    listing = admin.get("/operators")
    assert token not in listing.text
    assert operator_id in {o["operator_id"] for o in admin.ok(listing)["operators"]}
    assert "manage operators" in error_of(reviewer.get("/operators"), 403)
