"""The OpenAPI document describes every admin route, and only those."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from facegate.admin import explain, openapi
from facegate.admin.handlers import KEY_FIELDS, MODEL_AUDIT_FIELDS, OPERATOR_FIELDS, ORG_FIELDS
from facegate.admin.routes import admin_endpoints, described
from facegate.app import create_app
from facegate.services import Services
from facegate.store.operators import ROLES


def document() -> dict[str, Any]:
    """The document the app serves."""
    return openapi.document(admin_endpoints())


def _operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }


@pytest.mark.slow
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
        assert {p["name"] for p in params if p["in"] == "query"} == set(endpoint.query_names)
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


# --- the served document against the snapshot of the hand-written one ---------------------------

SNAPSHOT = Path(__file__).parent / "data" / "openapi-before.json"
"""``GET /admin/openapi.json`` as written by hand before it was generated from the typed views
(``info.version`` blanked)."""

_PROSE = frozenset({"description", "summary"})


def _shape(node: Any) -> Any:
    """What a client relies on: every key but prose, with enum and required lists as sets."""
    if isinstance(node, dict):
        return {
            key: sorted(value)
            if key in ("enum", "required") and isinstance(value, list)
            else _shape(value)
            for key, value in node.items()
            if key not in _PROSE
        }
    if isinstance(node, list):
        return [_shape(item) for item in node]
    return node


ANSWERS_WITHOUT_REQUIRED = (
    "Candidate", "Decision", "Explanation", "Key", "ModelAudit", "ModelGate", "NewKey",
    "NewOperator", "Obligations", "Operator", "Organisation", "OrganisationDetail", "Policy",
    "PolicyRef", "Review", "ReviewDetail", "Vote",
)  # fmt: skip
"""Answers whose every field the views always write, but the snapshot required none of (or,
for NewOperator, only ``token``)."""


def _corrected(before: dict[str, Any]) -> dict[str, Any]:
    """The snapshot with the corrections of what it said wrongly:

    1. an answer's object lists every field as required (the views always write each one, as
       their total ``TypedDict`` says; clients may rely on them);
    2. ``Explanation`` is closed (``additionalProperties: false``) like every other answer;
    3. ``NewOperatorRequest.role`` admits ``auditor``: the API creates auditors (the service
       accepts every role of ``store.operators.ROLES``).
    """
    schemas = before["components"]["schemas"]
    for name in ANSWERS_WITHOUT_REQUIRED:
        schemas[name]["required"] = list(schemas[name]["properties"])
    bounds = schemas["ModelGate"]["properties"]["bounds"]
    bounds["required"] = list(bounds["properties"])
    schemas["Explanation"]["additionalProperties"] = False
    schemas["NewOperatorRequest"]["properties"]["role"]["enum"] = list(ROLES)
    return before


def test_the_document_keeps_the_snapshots_paths_parameters_and_schemas() -> None:
    before = _corrected(json.loads(SNAPSHOT.read_text(encoding="utf-8")))
    now = document()
    assert now["info"]["version"]
    now["info"]["version"] = before["info"]["version"]
    assert _shape(now["paths"]) == _shape(before["paths"])
    assert set(now["components"]["schemas"]) == set(before["components"]["schemas"])
    for name, schema in before["components"]["schemas"].items():
        assert _shape(now["components"]["schemas"][name]) == _shape(schema), name
    assert _shape(now) == _shape(before)


def test_every_schema_is_valid_json_schema_2020_12_and_its_references_resolve() -> None:
    """OpenAPI 3.1's schemas are JSON Schema 2020-12 (schemathesis then validates real answers
    against them, tests/admin/test_schemathesis.py)."""
    doc = document()
    for name, schema in doc["components"]["schemas"].items():
        jsonschema_rs.meta.validate(schema)
        rooted = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
        jsonschema_rs.Draft202012Validator(rooted)
    error = {"$ref": "#/components/schemas/Error", "components": doc["components"]}
    assert jsonschema_rs.is_valid(error, {"error": "x", "code": "Y"})
    assert not jsonschema_rs.is_valid(error, {"error": "x"})
    assert not jsonschema_rs.is_valid(error, {"error": "x", "code": "Y", "more": 1})
