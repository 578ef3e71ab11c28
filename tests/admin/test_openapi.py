"""The OpenAPI document describes every admin route, and only those."""

from __future__ import annotations

import json
from typing import Any

from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from facegate.admin import explain
from facegate.admin.handlers import KEY_FIELDS, MODEL_AUDIT_FIELDS, OPERATOR_FIELDS, ORG_FIELDS
from facegate.admin.openapi import document
from facegate.admin.routes import admin_endpoints, described
from facegate.app import create_app
from facegate.services import Services


def _operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }


def test_every_endpoint_is_described_and_vice_versa() -> None:
    doc = document()
    endpoints = {(e.method, "/admin" + e.path) for e in admin_endpoints()}
    assert described(doc) == endpoints
    assert len(endpoints) == len(admin_endpoints())  # no endpoint listed twice


def test_the_mounted_app_serves_exactly_the_endpoints(services: Services) -> None:
    app = create_app(services)
    mount = next(r for r in app.routes if isinstance(r, Mount) and r.path == "/admin")
    paths = {r.path for r in mount.routes if isinstance(r, Route)}
    assert paths - {"/{rest:path}"} == {e.path for e in admin_endpoints()}


def test_parameters_and_security_match_the_endpoints() -> None:
    operations = _operations(document())
    for endpoint in admin_endpoints():
        op = operations[(endpoint.method, "/admin" + endpoint.path)]
        params = op.get("parameters", [])
        path_params = {p["name"] for p in params if p["in"] == "path"}
        assert path_params == {
            part[1:-1] for part in endpoint.path.split("/") if part.startswith("{")
        }, endpoint.path
        assert {p["name"] for p in params if p["in"] == "query"} == set(endpoint.query)
        if endpoint.roles is None:
            assert op["security"] == []
        else:
            assert op["security"] == [{"operatorToken": []}]
            assert {"401", "403"} <= set(op["responses"]), endpoint.path


def test_request_bodies_where_the_handlers_read_one() -> None:
    operations = _operations(document())
    without_body = {
        "/admin/orgs/{org_id}/disable",
        "/admin/keys/{key_id}/revoke",
        "/admin/model-audits/{audit_id}/revoke",
    }
    for (method, path), op in operations.items():
        expected = method in ("POST", "PUT") and path not in without_body
        assert ("requestBody" in op) == expected, (method, path)


def test_every_reference_resolves() -> None:
    doc = document()
    text = json.dumps(doc)
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert refs <= set(doc["components"]["schemas"])
    assert doc["openapi"] == "3.1.0"


def test_served_without_a_token(client: TestClient) -> None:
    response = client.get("/admin/openapi.json")
    assert response.status_code == 200
    assert response.json() == document()


def test_body_schemas_list_the_fields_the_handlers_accept() -> None:
    schemas = document()["components"]["schemas"]
    assert set(schemas["NewOrganisation"]["properties"]) == ORG_FIELDS
    assert set(schemas["NewKeyRequest"]["properties"]) == KEY_FIELDS
    assert set(schemas["NewOperatorRequest"]["properties"]) == OPERATOR_FIELDS
    assert set(schemas["NewModelAudit"]["properties"]) == MODEL_AUDIT_FIELDS
    explain_schema = schemas["ExplainRequest"]["properties"]
    assert set(explain_schema) == explain.TOP
    assert set(explain_schema["context"]["properties"]) == explain.CONTEXT
    assert set(explain_schema["organisation"]["properties"]) == explain.ORGANISATION
