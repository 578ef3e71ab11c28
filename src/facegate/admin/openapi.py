"""The OpenAPI 3.1 description of the admin API, written by hand (``GET /admin/openapi.json``).

:func:`document` builds a fresh dict on every call (no module-level mutable state). A test checks
that it describes exactly the routes of :func:`facegate.admin.routes.admin_endpoints`, with the
same query parameters, and that every authenticated operation declares its security and errors.
"""

from __future__ import annotations

from typing import Any

from facegate import __version__

Doc = dict[str, Any]

_TIME = {"type": ["string", "null"], "format": "date-time"}
_STR = {"type": "string"}
_STRS = {"type": "array", "items": {"type": "string"}}
_BOOL = {"type": "boolean"}


def _ref(name: str) -> Doc:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: Doc, required: tuple[str, ...] = ()) -> Doc:
    schema: Doc = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


def _list_of(key: str, item: str) -> Doc:
    return _obj({key: {"type": "array", "items": _ref(item)}}, (key,))


def _schemas() -> Doc:
    obligations = _obj(
        {
            "min_similarity_pct": {"type": ["number", "null"]},
            "max_candidates": {"type": ["integer", "null"]},
            "reviewers_required": {"type": "integer"},
            "redact_fields": _STRS,
            "retention_days": {"type": ["integer", "null"]},
            "max_expected_false_candidates": {"type": ["number", "null"]},
            "drop_attributes": _STRS,
        }
    )
    policy_ref = _obj(
        {"policy_id": _STR, "pack": _STR, "effect": _STR, "reason": _STR, "source": _STR}
    )
    organisation = _obj(
        {
            "org_id": _STR,
            "name": _STR,
            "sector": _STR,
            "country": _STR,
            "region": _STR,
            "city": _STR,
            "use_cases": _STRS,
            "active": _BOOL,
            "created_at": _TIME,
            "disabled_at": _TIME,
        }
    )
    key = _obj(
        {
            "access_key_id": _STR,
            "org_id": {"type": ["string", "null"]},
            "use_case": _STR,
            "description": _STR,
            "state": {"enum": ["usable", "revoked", "expired"]},
            "created_at": _TIME,
            "expires_at": _TIME,
            "revoked_at": _TIME,
        }
    )
    operator = _obj(
        {
            "operator_id": _STR,
            "display_name": _STR,
            "role": {"enum": ["admin", "reviewer", "auditor"]},
            "active": _BOOL,
            "created_at": _TIME,
            "disabled_at": _TIME,
            "created_by": {
                "type": "string",
                "description": "who created the account: an operator id, or cli (the data "
                "directory's administrator); empty if not recorded",
            },
            "token_set_by": {"type": "string", "description": "who set the token it holds"},
            "password_set_by": {
                "type": "string",
                "description": "who set its console password (empty: no password)",
            },
        }
    )
    review = {
        "review_id": _STR,
        "status": {"enum": ["pending", "released", "rejected", "expired"]},
        "operation": _STR,
        "org_id": _STR,
        "access_key_id": _STR,
        "decision_id": _STR,
        "reviewers_required": {"type": "integer"},
        "confirmations": {"type": "integer"},
        "candidates": {"type": "integer", "description": "how many candidates are held"},
        "created_at": _TIME,
        "expires_at": _TIME,
        "decided_at": _TIME,
    }
    vote = _obj(
        {"operator_id": _STR, "verdict": {"enum": ["confirm", "reject"]}, "note": _STR, "at": _TIME}
    )
    candidate = _obj(
        {
            "kind": {"enum": ["face", "user", "unmatched", "association", "not_associated"]},
            "similarity_pct": {"type": ["number", "null"]},
            "face_id": {"type": ["string", "null"]},
            "user_id": {"type": ["string", "null"]},
            "external_image_id": {"type": ["string", "null"]},
            "image_id": {"type": ["string", "null"]},
        }
    )
    return {
        "Error": {
            **_obj({"error": _STR, "code": _STR}, ("error", "code")),
            "description": "one line, safe to show; code is the FacegateError code",
        },
        "OpenApiDocument": {"type": "object", "description": "an OpenAPI 3.1 document"},
        "Obligations": obligations,
        "PolicyRef": policy_ref,
        "Organisation": organisation,
        # One closed object each (not allOf over a closed base, which rejects every extension).
        "OrganisationDetail": _obj(
            {**organisation["properties"], "keys": {"type": "array", "items": _ref("Key")}}
        ),
        "NewOrganisation": _obj(
            {
                "org_id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
                "name": _STR,
                "sector": {
                    "enum": ["law_enforcement", "government", "ngo", "commercial", "research"]
                },
                "use_cases": {**_STRS, "minItems": 1},
                "country": {"type": "string", "description": "ISO 3166-1 alpha-2, e.g. US"},
                "region": {"type": "string", "description": "ISO 3166-2, e.g. US-WA"},
                "city": {"type": "string", "description": "lower case, e.g. seattle"},
            },
            ("org_id", "name", "sector", "use_cases"),
        ),
        "UseCases": _obj({"use_cases": {**_STRS, "minItems": 1}}, ("use_cases",)),
        "Key": key,
        "NewKeyRequest": _obj(
            {
                "org_id": _STR,
                "use_case": {"type": "string", "description": "default: the org's only one"},
                "description": _STR,
                "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 3650},
            },
            ("org_id",),
        ),
        "NewKey": _obj(
            {
                "access_key_id": _STR,
                "secret_access_key": {"type": "string", "description": "shown only once"},
                "org_id": _STR,
                "use_case": _STR,
                "description": _STR,
                "expires_at": _TIME,
                "note": _STR,
            }
        ),
        "Operator": operator,
        "NewOperatorRequest": _obj(
            {
                "operator_id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,62}$"},
                "display_name": _STR,
                "role": {"enum": ["admin", "reviewer"]},
            },
            ("operator_id", "display_name", "role"),
        ),
        "NewOperator": _obj(
            {
                **operator["properties"],
                "token": {"type": "string", "description": "fgop_..., shown only once"},
                "note": _STR,
            },
            ("token",),
        ),
        "Policy": _obj(
            {
                "policy_id": _STR,
                "pack": _STR,
                "effect": {"enum": ["permit", "forbid"]},
                "reason": _STR,
                "source": _STR,
                "note": _STR,
                "obligations": _ref("Obligations"),
                "line": {"type": "integer"},
                "text": {"type": "string", "description": "the policy as written"},
            }
        ),
        "Policies": _obj(
            {"packs": _STRS, "policies": {"type": "array", "items": _ref("Policy")}},
            ("packs", "policies"),
        ),
        "ExplainRequest": {
            "type": "object",
            "description": "org_id (registered) or organisation (described), plus action",
            "properties": {
                "org_id": _STR,
                "organisation": _obj(
                    {
                        "org_id": _STR,
                        "name": _STR,
                        "sector": _STR,
                        "country": _STR,
                        "region": _STR,
                        "city": _STR,
                        "use_cases": _STRS,
                    },
                    ("sector", "use_cases"),
                ),
                "use_case": _STR,
                "key_id": _STR,
                "action": {"type": "string", "description": "a Rekognition operation name"},
                "collection": {
                    "oneOf": [
                        _STR,
                        _obj(
                            {
                                "collection_id": _STR,
                                "organisation_id": _STR,
                                "face_count": {"type": "integer", "minimum": 0},
                            },
                            ("collection_id",),
                        ),
                    ]
                },
                "context": _obj(
                    {
                        "now": {"type": "string", "format": "date-time"},
                        "purpose": _STR,
                        "case_ref": _STR,
                        "authorization_ref": _STR,
                        "authorization_issuer": _STR,
                        "realtime": _BOOL,
                        "exigent": _BOOL,
                        "camera": {"enum": ["", "fixed", "mobile", "upload"]},
                        "consent_ref": _STR,
                        "model_audit_registered": _BOOL,
                        "model_audit_within_bounds": _BOOL,
                        "setting": {"enum": ["", "workplace", "education", "public", "other"]},
                        "attributes": _STRS,
                        "attributes_named": _STRS,
                    }
                ),
            },
            "required": ["action"],
            "additionalProperties": False,
        },
        "Explanation": {
            "type": "object",
            "properties": {
                "decision_id": _STR,
                "allowed": _BOOL,
                "decision": {"enum": ["Allow", "Deny"]},
                "determining": {"type": "array", "items": _ref("PolicyRef")},
                "policy_ids": _STRS,
                "reasons": _STRS,
                "sources": _STRS,
                "obligations": _ref("Obligations"),
                "errors": _STRS,
                "eval_ms": {"type": "number"},
                "request": {"type": "object", "description": "the request as decided"},
            },
        },
        "Decision": _obj(
            {
                "decision_id": _STR,
                "at": _TIME,
                "access_key_id": _STR,
                "org_id": _STR,
                "operation": _STR,
                "resource": _STR,
                "purpose": _STR,
                "allowed": _BOOL,
                "policy_ids": _STRS,
                "reasons": _STRS,
                "errors": _STRS,
                "obligations": {"type": "object"},
                "review_id": {"type": ["string", "null"]},
            }
        ),
        "Review": _obj(review),
        "Vote": vote,
        "Candidate": candidate,
        "ReviewDetail": _obj(
            {
                **review,
                "votes": {"type": "array", "items": _ref("Vote")},
                "request": {"type": ["object", "null"]},
                "held_candidates": {"type": "array", "items": _ref("Candidate")},
            }
        ),
        "Note": _obj({"note": {"type": "string", "minLength": 1, "maxLength": 1000}}, ("note",)),
        "TokenRotation": _obj(
            {
                "note": {
                    "type": "string",
                    "maxLength": 1000,
                    "description": "why (optional; recorded in the audit trail)",
                }
            }
        ),
        "NewModelAudit": _obj(
            {
                "report": {
                    "type": "object",
                    "description": "the JSON report of 'facegate bias verification --json' "
                    "(kind 'verification' or no kind); its SHA-256 is taken over its canonical "
                    "JSON form (sorted keys, no spaces, UTF-8)",
                },
                "note": {"type": "string", "maxLength": 1000},
            },
            ("report",),
        ),
        "ModelAudit": _obj(
            {
                "audit_id": _STR,
                "model_version": _STR,
                "similarity_version": _STR,
                "report_sha256": _STR,
                "dataset": _STR,
                "registered_at": _TIME,
                "registered_by": _STR,
                "note": _STR,
                "active": _BOOL,
                "revoked_at": _TIME,
                "revoked_by": {"type": ["string", "null"]},
                "summary": {
                    "type": "object",
                    "description": "per threshold: similarity_pct, overall_fmr, overall_fnmr, "
                    "max_group_fnmr (and its group), fmr_max_geomean, fnmr_max_geomean, "
                    "groups, groups_measured, groups_too_small",
                },
            }
        ),
        "ModelGate": _obj(
            {
                "model_version": _STR,
                "similarity_version": _STR,
                "bounds": _obj(
                    {
                        "threshold_pct": {"type": "number"},
                        "max_fmr_ratio": {"type": "number"},
                        "max_fnmr": {"type": "number"},
                    }
                ),
                "audit": {"oneOf": [_ref("ModelAudit"), {"type": "null"}]},
                "registered": _BOOL,
                "within_bounds": _BOOL,
                "reasons": _STRS,
            }
        ),
    }


def _json(schema: str, description: str) -> Doc:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


_ERRORS = {
    "400": "a field, query parameter or JSON body is invalid (the message names it)",
    "401": "missing, unknown or disabled operator token",
    "403": "the operator's role may not do this",
    "404": "no such id",
    "409": "already exists, or the review is not pending / already has this reviewer's vote / "
    "the reviewer is not independent of one who confirmed (the message says who controls whom)",
    "413": "the body exceeds 64 KiB (16 MiB for a bias audit report)",
}


def _op(
    summary: str,
    ok: tuple[str, str, str],
    *,
    errors: tuple[str, ...] = ("400", "401", "403"),
    body: str | None = None,
    params: tuple[str, ...] = (),
    query: tuple[tuple[str, Doc, str], ...] = (),
    public: bool = False,
) -> Doc:
    status, schema, description = ok
    op: Doc = {"summary": summary, "responses": {status: _json(schema, description)}}
    for code in errors:
        op["responses"][code] = _json("Error", _ERRORS[code])
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
        op["responses"].setdefault("413", _json("Error", _ERRORS["413"]))
    parameters = [{"name": p, "in": "path", "required": True, "schema": _STR} for p in params] + [
        {"name": name, "in": "query", "required": False, "schema": schema, "description": text}
        for name, schema, text in query
    ]
    if parameters:
        op["parameters"] = parameters
    op["security"] = [] if public else [{"operatorToken": []}]
    return op


def _paths() -> Doc:
    base = ("400", "401", "403")
    found = (*base, "404")
    clash = (*base, "409")
    limit = ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most (50)")
    org_q = ("org_id", _STR, "only this organisation's")
    status_q = (
        "status",
        {"enum": ["pending", "released", "rejected", "expired", "all"]},
        "status now (default pending)",
    )
    return {
        "/admin/openapi.json": {
            "get": _op(
                "This document (no token needed)",
                ("200", "OpenApiDocument", "the OpenAPI 3.1 document"),
                errors=(),
                public=True,
            )
        },
        "/admin/whoami": {
            "get": _op("The operator the token belongs to", ("200", "Operator", "you"))
        },
        "/admin/whoami/token": {
            "post": _op(
                "Replace your own token; the new one is shown once and the old one stops "
                "working (a reviewer whose token another operator set does this before their "
                "confirmations count)",
                ("200", "NewOperator", "you, with your new token"),
                body="TokenRotation",
            )
        },
        "/admin/orgs": {
            "get": _op("List organisations", ("200", "Organisations", "every organisation")),
            "post": _op(
                "Register an organisation (admin)",
                ("201", "Organisation", "registered"),
                errors=clash,
                body="NewOrganisation",
            ),
        },
        "/admin/orgs/{org_id}": {
            "get": _op(
                "An organisation and its keys (admin)",
                ("200", "OrganisationDetail", "the organisation"),
                errors=found,
                params=("org_id",),
            )
        },
        "/admin/orgs/{org_id}/disable": {
            "post": _op(
                "Disable an organisation: its keys stop working (admin)",
                ("200", "Organisation", "disabled"),
                errors=found,
                params=("org_id",),
            )
        },
        "/admin/orgs/{org_id}/use-cases": {
            "put": _op(
                "Replace the registered use cases (admin)",
                ("200", "Organisation", "updated"),
                errors=found,
                body="UseCases",
                params=("org_id",),
            )
        },
        "/admin/keys": {
            "get": _op(
                "List access keys, never their secrets (admin)",
                ("200", "Keys", "keys, oldest first"),
                errors=found,
                query=(org_q,),
            ),
            "post": _op(
                "Create an access key; the secret is shown once (admin)",
                ("201", "NewKey", "the key and its secret"),
                errors=found,
                body="NewKeyRequest",
            ),
        },
        "/admin/keys/{key_id}/revoke": {
            "post": _op(
                "Revoke an access key (admin)",
                ("200", "Key", "revoked"),
                errors=found,
                params=("key_id",),
            )
        },
        "/admin/operators": {
            "get": _op("List operators (admin)", ("200", "Operators", "every operator")),
            "post": _op(
                "Create an operator; the token is shown once (admin)",
                ("201", "NewOperator", "the operator and their token"),
                errors=clash,
                body="NewOperatorRequest",
            ),
        },
        "/admin/policies": {
            "get": _op("Active packs and policies (admin)", ("200", "Policies", "the policies"))
        },
        "/admin/policies/explain": {
            "post": _op(
                "Decide a described request with the active packs, and say why (admin)",
                ("200", "Explanation", "the decision"),
                errors=found,
                body="ExplainRequest",
            )
        },
        "/admin/decisions": {
            "get": _op(
                "Recent policy decisions, newest first (admin)",
                ("200", "Decisions", "decisions"),
                query=(limit, org_q),
            )
        },
        "/admin/decisions/{decision_id}": {
            "get": _op(
                "One decision (admin)",
                ("200", "Decision", "the decision"),
                errors=found,
                params=("decision_id",),
            )
        },
        "/admin/model-audits": {
            "get": _op(
                "Registered bias audits, newest first, revoked ones included (admin)",
                ("200", "ModelAudits", "audits"),
            ),
            "post": _op(
                "Register a bias audit of the active model for the deployment gate (admin)",
                ("201", "ModelAudit", "registered"),
                body="NewModelAudit",
            ),
        },
        "/admin/model-audits/status": {
            "get": _op(
                "The deployment gate now: active model, bounds, audit, verdict (admin)",
                ("200", "ModelGate", "the gate"),
            )
        },
        "/admin/model-audits/{audit_id}/revoke": {
            "post": _op(
                "Revoke a registered audit; searches gated on it are denied again (admin)",
                ("200", "ModelAudit", "revoked"),
                errors=found,
                params=("audit_id",),
            )
        },
        "/admin/reviews": {
            "get": _op(
                "Reviews by status, newest first (reviewer, admin)",
                ("200", "Reviews", "reviews"),
                query=(status_q, limit),
            )
        },
        "/admin/reviews/{review_id}": {
            "get": _op(
                "A review with its votes and held candidates (reviewer, admin)",
                ("200", "ReviewDetail", "the review"),
                errors=found,
                params=("review_id",),
            )
        },
        "/admin/reviews/{review_id}/confirm": {
            "post": _op(
                "Confirm the held results; released once enough reviewers confirm who are "
                "distinct people (no operator controls two of them: 409 otherwise)",
                ("200", "ReviewDetail", "the review after the vote"),
                errors=(*found, "409"),
                body="Note",
                params=("review_id",),
            )
        },
        "/admin/reviews/{review_id}/reject": {
            "post": _op(
                "Reject the held results; they are discarded (reviewer, admin)",
                ("200", "ReviewDetail", "the review after the vote"),
                errors=(*found, "409"),
                body="Note",
                params=("review_id",),
            )
        },
    }


def document() -> Doc:
    """The OpenAPI 3.1 document of the admin API."""
    schemas = _schemas()
    schemas["Organisations"] = _list_of("organisations", "Organisation")
    schemas["Keys"] = _list_of("keys", "Key")
    schemas["Operators"] = _list_of("operators", "Operator")
    schemas["Decisions"] = _list_of("decisions", "Decision")
    schemas["Reviews"] = _list_of("reviews", "Review")
    schemas["ModelAudits"] = _list_of("model_audits", "ModelAudit")
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
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "operatorToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an operator token, fgop_ followed by 40 characters",
                }
            },
        },
    }
