"""One function per admin endpoint: a :class:`Call` in, a :class:`Reply` out, no HTTP.

Handlers run in a worker thread (they use SQLite through :class:`AdminService`) after the route
has authenticated the operator and checked the role the endpoint needs (:data:`ENDPOINTS`).
"""

from __future__ import annotations

import json
from typing import Annotated

from facegate.admin import views
from facegate.admin.auth import ADMIN_ONLY, REVIEWERS
from facegate.admin.endpoint import Call, Endpoint, Handler, Query, Reply
from facegate.admin.explain import TOP as EXPLAIN_FIELDS
from facegate.admin.fields import Fields, invalid, query_choice, query_int, query_text
from facegate.admin.inputs import (
    ExplainRequest,
    NewKeyRequest,
    NewModelAudit,
    NewOperatorRequest,
    NewOrganisation,
    Note,
    TokenRotation,
    UseCases,
    fields_of,
)
from facegate.admin.openapi import document
from facegate.admin.service import REVIEW_STATUSES, AdminService
from facegate.admin.typeschema import Choice, keywords
from facegate.model_audit import MAX_REPORT_BYTES
from facegate.store.operators import ROLES, OperatorRecord

ORG_FIELDS = fields_of(NewOrganisation)
KEY_FIELDS = fields_of(NewKeyRequest)
OPERATOR_FIELDS = fields_of(NewOperatorRequest)
MODEL_AUDIT_FIELDS = fields_of(NewModelAudit)
LIST_LIMIT = 1000
"""The most items one list request returns (``limit``; 50 when not given)."""


STATUS_CHOICES = (*REVIEW_STATUSES, "all")
_LIMIT = Query("limit", Annotated[int, keywords(minimum=1, maximum=LIST_LIMIT)], "at most (50)")
_ORG_ID = Query("org_id", str, "only this organisation's")
_STATUS = Query("status", Annotated[str, Choice(STATUS_CHOICES)], "status now (default pending)")


def _operator(call: Call) -> OperatorRecord:
    assert call.operator is not None  # every handler but the OpenAPI document's is authenticated
    return call.operator


def whoami(_: AdminService, call: Call) -> Reply[views.OperatorDoc]:
    return Reply(200, views.operator(_operator(call)))


def whoami_token(admin: AdminService, call: Call) -> Reply[views.NewOperatorDoc]:
    """Replace the caller's own token; the body ``{"note": "..."}`` is optional."""
    note = Fields({} if call.body is None else call.body, fields_of(TokenRotation))
    record, token = admin.rotate_own_token(
        _operator(call), note.text("note", default="", max_len=1000)
    )
    return Reply(200, views.rotated_token(record, token))


def orgs_list(admin: AdminService, _: Call) -> Reply[views.OrganisationListDoc]:
    return Reply(200, {"organisations": [views.org(o) for o in admin.orgs()]})


def orgs_create(admin: AdminService, call: Call) -> Reply[views.OrganisationDoc]:
    f = Fields(call.body, ORG_FIELDS)
    record = admin.create_org(
        f.text("org_id", max_len=63),
        name=f.text("name"),
        sector=f.text("sector", max_len=64),
        use_cases=f.texts("use_cases"),
        country=f.text("country", default="", max_len=2),
        region=f.text("region", default="", max_len=6),
        city=f.text("city", default="", max_len=63),
    )
    return Reply(201, views.org(record))


def org_show(admin: AdminService, call: Call) -> Reply[views.OrganisationDetailDoc]:
    org_id = call.params["org_id"]
    record = admin.org(org_id)
    now = admin.clock()
    keys = [views.key(k, now) for k in admin.keys(org_id)]
    return Reply(200, {**views.org(record), "keys": keys})


def org_disable(admin: AdminService, call: Call) -> Reply[views.OrganisationDoc]:
    return Reply(200, views.org(admin.disable_org(call.params["org_id"])))


def org_use_cases(admin: AdminService, call: Call) -> Reply[views.OrganisationDoc]:
    f = Fields(call.body, fields_of(UseCases))
    return Reply(200, views.org(admin.set_use_cases(call.params["org_id"], f.texts("use_cases"))))


def keys_list(admin: AdminService, call: Call) -> Reply[views.KeyListDoc]:
    now = admin.clock()
    org_id = query_text(call.query, "org_id", 64)
    return Reply(200, {"keys": [views.key(k, now) for k in admin.keys(org_id)]})


def keys_create(admin: AdminService, call: Call) -> Reply[views.NewKeyDoc]:
    f = Fields(call.body, KEY_FIELDS)
    created = admin.create_key(
        f.text("org_id", max_len=63),
        f.text("use_case", default="", max_len=64) or None,
        f.text("description", default=""),
        f.integer("expires_in_days", low=1, high=3650),
    )
    return Reply(201, views.new_key(created))


def key_revoke(admin: AdminService, call: Call) -> Reply[views.KeyDoc]:
    return Reply(200, views.key(admin.revoke_key(call.params["key_id"]), admin.clock()))


def operators_list(admin: AdminService, _: Call) -> Reply[views.OperatorListDoc]:
    return Reply(200, {"operators": [views.operator(o) for o in admin.operator_list()]})


def operators_create(admin: AdminService, call: Call) -> Reply[views.NewOperatorDoc]:
    f = Fields(call.body, OPERATOR_FIELDS)
    record, token = admin.create_operator(
        f.text("operator_id", max_len=63), f.text("display_name"), f.text("role", max_len=16)
    )
    return Reply(201, views.new_operator(record, token))


def policies(admin: AdminService, _: Call) -> Reply[views.PoliciesDoc]:
    packs, infos = admin.policies()
    return Reply(200, {"packs": list(packs), "policies": [views.policy(i) for i in infos]})


def policies_explain(admin: AdminService, call: Call) -> Reply[views.ExplanationDoc]:
    body = Fields(call.body, EXPLAIN_FIELDS).doc
    return Reply(200, views.explanation(admin.explain(body)))


def decisions_list(admin: AdminService, call: Call) -> Reply[views.DecisionListDoc]:
    limit = query_int(call.query, "limit", default=50, low=1, high=LIST_LIMIT)
    found = admin.recent_decisions(limit, query_text(call.query, "org_id", 64))
    return Reply(200, {"decisions": [views.decision(d) for d in found]})


def decision_show(admin: AdminService, call: Call) -> Reply[views.DecisionDoc]:
    return Reply(200, views.decision(admin.decision(call.params["decision_id"])))


def reviews_list(admin: AdminService, call: Call) -> Reply[views.ReviewListDoc]:
    status = query_choice(call.query, "status", STATUS_CHOICES, "pending")
    limit = query_int(call.query, "limit", default=50, low=1, high=LIST_LIMIT)
    found = admin.review_list(None if status == "all" else status, limit)
    now = admin.clock()
    return Reply(200, {"reviews": [views.review(r, now) for r in found]})


def review_show(admin: AdminService, call: Call) -> Reply[views.ReviewDetailDoc]:
    return Reply(200, views.review_detail(admin.review(call.params["review_id"]), admin.clock()))


def model_audits_list(admin: AdminService, _: Call) -> Reply[views.ModelAuditListDoc]:
    return Reply(200, {"model_audits": [views.model_audit(r) for r in admin.model_audit_list()]})


def model_audits_register(admin: AdminService, call: Call) -> Reply[views.ModelAuditDoc]:
    """The body's ``report`` is the report's JSON object; its SHA-256 is taken over its
    canonical JSON form (sorted keys, no spaces, UTF-8), as the API never sees the file."""
    f = Fields(call.body, MODEL_AUDIT_FIELDS)
    report = f.doc.get("report")
    if not isinstance(report, dict):
        raise invalid("report", "must be the JSON object of a 'facegate bias verification' report")
    text = json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    note = f.text("note", default="", max_len=1000)
    record = admin.register_model_audit(text.encode("utf-8"), note)
    return Reply(201, views.model_audit(record))


def model_audit_revoke(admin: AdminService, call: Call) -> Reply[views.ModelAuditDoc]:
    return Reply(200, views.model_audit(admin.revoke_model_audit(call.params["audit_id"])))


def model_audits_status(admin: AdminService, _: Call) -> Reply[views.ModelGateDoc]:
    return Reply(200, views.model_gate(admin.model_gate()))


def _vote(verdict: str) -> Handler:
    def vote(admin: AdminService, call: Call) -> Reply[views.ReviewDetailDoc]:
        note = Fields(call.body, fields_of(Note)).text("note", max_len=1000)
        detail = admin.vote(call.params["review_id"], _operator(call), verdict, note)
        return Reply(200, views.review_detail(detail, admin.clock()))

    return vote


def openapi(_: AdminService, __: Call) -> Reply[views.OpenApiDocument]:
    """This document, generated from :data:`ENDPOINTS` and the views' types."""
    return Reply(200, document(ENDPOINTS))


_ORGS, _KEYS, _OPS = "manage organisations", "manage access keys", "manage operators"
_POL, _DEC, _REV = "read policies", "read decisions", "review held results"
_GATE = "manage model audits"

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET", "/openapi.json", None, "read the API description", openapi,
        "This document (no token needed)", "the OpenAPI 3.1 document",
    ),
    Endpoint(
        "GET", "/whoami", REVIEWERS, "ask who you are", whoami,
        "The operator the token belongs to", "you",
    ),
    Endpoint(
        "POST", "/whoami/token", ROLES, "replace your token", whoami_token,
        "Replace your own token; the new one is shown once and the old one stops working (a "
        "reviewer whose token another operator set does this before their confirmations count)",
        "you, with your new token", body=TokenRotation,
    ),
    Endpoint(
        "GET", "/orgs", ADMIN_ONLY, _ORGS, orgs_list,
        "List organisations", "every organisation",
    ),
    Endpoint(
        "POST", "/orgs", ADMIN_ONLY, _ORGS, orgs_create,
        "Register an organisation (admin)", "registered",
        status=201, body=NewOrganisation, errors=(409,),
    ),
    Endpoint(
        "GET", "/orgs/{org_id}", ADMIN_ONLY, _ORGS, org_show,
        "An organisation and its keys (admin)", "the organisation", errors=(404,),
    ),
    Endpoint(
        "POST", "/orgs/{org_id}/disable", ADMIN_ONLY, _ORGS, org_disable,
        "Disable an organisation: its keys stop working (admin)", "disabled", errors=(404,),
    ),
    Endpoint(
        "PUT", "/orgs/{org_id}/use-cases", ADMIN_ONLY, _ORGS, org_use_cases,
        "Replace the registered use cases (admin)", "updated", body=UseCases, errors=(404,),
    ),
    Endpoint(
        "GET", "/keys", ADMIN_ONLY, _KEYS, keys_list,
        "List access keys, never their secrets (admin)", "keys, oldest first",
        query=(_ORG_ID,), errors=(404,),
    ),
    Endpoint(
        "POST", "/keys", ADMIN_ONLY, _KEYS, keys_create,
        "Create an access key; the secret is shown once (admin)", "the key and its secret",
        status=201, body=NewKeyRequest, errors=(404,),
    ),
    Endpoint(
        "POST", "/keys/{key_id}/revoke", ADMIN_ONLY, _KEYS, key_revoke,
        "Revoke an access key (admin)", "revoked", errors=(404,),
    ),
    Endpoint(
        "GET", "/operators", ADMIN_ONLY, _OPS, operators_list,
        "List operators (admin)", "every operator",
    ),
    Endpoint(
        "POST", "/operators", ADMIN_ONLY, _OPS, operators_create,
        "Create an operator; the token is shown once (admin)", "the operator and their token",
        status=201, body=NewOperatorRequest, errors=(409,),
    ),
    Endpoint(
        "GET", "/policies", ADMIN_ONLY, _POL, policies,
        "Active packs and policies (admin)", "the policies",
    ),
    Endpoint(
        "POST", "/policies/explain", ADMIN_ONLY, _POL, policies_explain,
        "Decide a described request with the active packs, and say why (admin)", "the decision",
        body=ExplainRequest, errors=(404,),
    ),
    Endpoint(
        "GET", "/decisions", ADMIN_ONLY, _DEC, decisions_list,
        "Recent policy decisions, newest first (admin)", "decisions", query=(_LIMIT, _ORG_ID),
    ),
    Endpoint(
        "GET", "/decisions/{decision_id}", ADMIN_ONLY, _DEC, decision_show,
        "One decision (admin)", "the decision", errors=(404,),
    ),
    Endpoint(
        "GET", "/model-audits", ADMIN_ONLY, _GATE, model_audits_list,
        "Registered bias audits, newest first, revoked ones included (admin)", "audits",
    ),
    Endpoint(
        "POST", "/model-audits", ADMIN_ONLY, _GATE, model_audits_register,
        "Register a bias audit of the active model for the deployment gate (admin)",
        "registered", status=201, body=NewModelAudit,
        max_body_bytes=MAX_REPORT_BYTES + 64 * 1024,
    ),
    Endpoint(
        "GET", "/model-audits/status", ADMIN_ONLY, _GATE, model_audits_status,
        "The deployment gate now: active model, bounds, audit, verdict (admin)", "the gate",
    ),
    Endpoint(
        "POST", "/model-audits/{audit_id}/revoke", ADMIN_ONLY, _GATE, model_audit_revoke,
        "Revoke a registered audit; searches gated on it are denied again (admin)", "revoked",
        errors=(404,),
    ),
    Endpoint(
        "GET", "/reviews", REVIEWERS, _REV, reviews_list,
        "Reviews by status, newest first (reviewer, admin)", "reviews",
        query=(_STATUS, _LIMIT),
    ),
    Endpoint(
        "GET", "/reviews/{review_id}", REVIEWERS, _REV, review_show,
        "A review with its votes and held candidates (reviewer, admin)", "the review",
        errors=(404,),
    ),
    Endpoint(
        "POST", "/reviews/{review_id}/confirm", REVIEWERS, _REV, _vote("confirm"),
        "Confirm the held results; released once enough reviewers confirm who are distinct "
        "people (no operator controls two of them: 409 otherwise)",
        "the review after the vote", body=Note, errors=(404, 409),
    ),
    Endpoint(
        "POST", "/reviews/{review_id}/reject", REVIEWERS, _REV, _vote("reject"),
        "Reject the held results; they are discarded (reviewer, admin)",
        "the review after the vote", body=Note, errors=(404, 409),
    ),
)  # fmt: skip
"""Every admin endpoint, paths relative to ``/admin``: the one table the router serves
(:func:`facegate.admin.routes.admin_routes`) and the OpenAPI document describes."""
