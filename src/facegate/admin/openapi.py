"""The OpenAPI 3.1 description of the admin API (``GET /admin/openapi.json``), generated.

The paths come from the endpoint table (:data:`facegate.admin.handlers.ENDPOINTS`: method, path,
roles, summary, body type, query parameters, extra error statuses) and each answer's schema from
its handler's result type (``Reply[SomeDoc]``); the schemas from the views' and bodies'
``TypedDict``\\ s (:mod:`facegate.admin.views`, :mod:`facegate.admin.inputs`) through
:mod:`facegate.admin.typeschema`. :data:`COMPONENTS` names the types published as components;
a type an endpoint uses that is not named there is an error, not an inline guess.

:func:`document` builds a fresh dict on every call (no module-level mutable state). Tests check
it against the snapshot of the hand-written document it replaced and against the routes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from facegate import __version__
from facegate.admin import inputs, views
from facegate.admin.endpoint import Endpoint, response_type
from facegate.admin.typeschema import Schemas, ref

Doc = dict[str, Any]

COMPONENTS: Mapping[str, object] = {
    "Error": views.ErrorDoc,
    "OpenApiDocument": views.OpenApiDocument,
    "Obligations": views.ObligationsDoc,
    "PolicyRef": views.PolicyRefDoc,
    "Organisation": views.OrganisationDoc,
    "OrganisationDetail": views.OrganisationDetailDoc,
    "NewOrganisation": inputs.NewOrganisation,
    "UseCases": inputs.UseCases,
    "Key": views.KeyDoc,
    "NewKeyRequest": inputs.NewKeyRequest,
    "NewKey": views.NewKeyDoc,
    "Operator": views.OperatorDoc,
    "NewOperatorRequest": inputs.NewOperatorRequest,
    "NewOperator": views.NewOperatorDoc,
    "Policy": views.PolicyDoc,
    "Policies": views.PoliciesDoc,
    "ExplainRequest": inputs.ExplainRequest,
    "Explanation": views.ExplanationDoc,
    "Decision": views.DecisionDoc,
    "Review": views.ReviewDoc,
    "Vote": views.VoteDoc,
    "Candidate": views.CandidateDoc,
    "ReviewDetail": views.ReviewDetailDoc,
    "Note": inputs.Note,
    "TokenRotation": inputs.TokenRotation,
    "NewModelAudit": inputs.NewModelAudit,
    "ModelAudit": views.ModelAuditDoc,
    "ModelGate": views.ModelGateDoc,
    "Organisations": views.OrganisationListDoc,
    "Keys": views.KeyListDoc,
    "Operators": views.OperatorListDoc,
    "Decisions": views.DecisionListDoc,
    "Reviews": views.ReviewListDoc,
    "ModelAudits": views.ModelAuditListDoc,
}
"""The published schemas by name (written as ``$ref`` wherever their type appears)."""

ERRORS: Mapping[int, str] = {
    400: "a field, query parameter or JSON body is invalid (the message names it)",
    401: "missing, unknown or disabled operator token",
    403: "the operator's role may not do this",
    404: "no such id",
    409: "already exists, or the review is not pending / already has this reviewer's vote / "
    "the reviewer is not independent of one who confirmed (the message says who controls whom)",
    413: "the body exceeds 64 KiB (16 MiB for a bias audit report)",
}
AUTHENTICATED_ERRORS = (400, 401, 403)
"""What every endpoint behind a token may answer."""


def _json(schema: Doc, description: str) -> Doc:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(endpoint: Endpoint, schemas: Schemas) -> Doc:
    ok = ref(schemas.name_of(response_type(endpoint.handler)))
    responses = {str(endpoint.status): _json(ok, endpoint.returns)}
    codes = () if endpoint.roles is None else (*AUTHENTICATED_ERRORS, *endpoint.errors)
    if endpoint.body is not None:
        codes = (*codes, 413)
    for code in codes:
        responses[str(code)] = _json(ref("Error"), ERRORS[code])
    op: Doc = {"summary": endpoint.summary, "responses": responses}
    if endpoint.body is not None:
        body = ref(schemas.name_of(endpoint.body))
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in endpoint.path_params
    ] + [
        {
            "name": q.name,
            "in": "query",
            "required": False,
            "schema": schemas.schema(q.type),
            "description": q.description,
        }
        for q in endpoint.query
    ]
    if parameters:
        op["parameters"] = parameters
    op["security"] = [] if endpoint.roles is None else [{"operatorToken": []}]
    return op


def document(endpoints: Iterable[Endpoint]) -> Doc:
    """The OpenAPI 3.1 document of the admin API that serves ``endpoints``."""
    schemas = Schemas(COMPONENTS)
    paths: Doc = {}
    for endpoint in endpoints:
        paths.setdefault("/admin" + endpoint.path, {})[endpoint.method.lower()] = _operation(
            endpoint, schemas
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "facegate admin API",
            "version": __version__,
            "description": (
                "Organisations, access keys, operators, policies, decisions, human review and "
                "the deployment gate's bias audits. JSON in and out; bodies up to 64 KiB (16 MiB "
                "for a bias audit report). Authenticate with "
                "'Authorization: Bearer <operator token>' (facegate operators create)."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas.component_schemas(),
            "securitySchemes": {
                "operatorToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an operator token, fgop_ followed by 40 characters",
                }
            },
        },
    }
