"""One function per admin endpoint: a :class:`Call` in, a :class:`Reply` out, no HTTP.

Handlers run in a worker thread (they use SQLite through :class:`AdminService`) after the route
has authenticated the operator and checked the role the endpoint needs (:data:`ENDPOINTS`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from facegate.admin import views
from facegate.admin.auth import ADMIN_ONLY, REVIEWERS
from facegate.admin.explain import TOP as EXPLAIN_FIELDS
from facegate.admin.fields import Fields, invalid, query_choice, query_int, query_text
from facegate.admin.service import REVIEW_STATUSES, AdminService
from facegate.model_audit import MAX_REPORT_BYTES
from facegate.store.operators import ROLES, OperatorRecord


@dataclass(frozen=True)
class Call:
    """An authenticated request: the operator (None on a public endpoint), the path
    parameters, the query parameters and the parsed JSON body (None when empty)."""

    operator: OperatorRecord | None
    params: Mapping[str, str]
    query: Mapping[str, str]
    body: object | None


@dataclass(frozen=True)
class Reply:
    status: int
    doc: Any


Handler = Callable[[AdminService, Call], Reply]


@dataclass(frozen=True)
class Endpoint:
    """One method on one path (relative to ``/admin``). ``roles`` None: no authentication
    (only the OpenAPI document). ``query`` lists the query parameters it accepts; ``what``
    names the action in a 403 message."""

    method: str
    path: str
    roles: tuple[str, ...] | None
    what: str
    handler: Handler
    query: tuple[str, ...] = ()
    max_body_bytes: int | None = None
    """The largest request body (None: the admin API's 64 KiB)."""


ORG_FIELDS = frozenset({"org_id", "name", "sector", "use_cases", "country", "region", "city"})
KEY_FIELDS = frozenset({"org_id", "use_case", "description", "expires_in_days"})
OPERATOR_FIELDS = frozenset({"operator_id", "display_name", "role"})
MODEL_AUDIT_FIELDS = frozenset({"report", "note"})


def _operator(call: Call) -> OperatorRecord:
    assert call.operator is not None  # every handler but the OpenAPI document's is authenticated
    return call.operator


def whoami(_: AdminService, call: Call) -> Reply:
    return Reply(200, views.operator(_operator(call)))


def whoami_token(admin: AdminService, call: Call) -> Reply:
    """Replace the caller's own token; the body ``{"note": "..."}`` is optional."""
    note = Fields({} if call.body is None else call.body, frozenset({"note"}))
    record, token = admin.rotate_own_token(
        _operator(call), note.text("note", default="", max_len=1000)
    )
    return Reply(200, views.rotated_token(record, token))


def orgs_list(admin: AdminService, _: Call) -> Reply:
    return Reply(200, {"organisations": [views.org(o) for o in admin.orgs()]})


def orgs_create(admin: AdminService, call: Call) -> Reply:
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


def org_show(admin: AdminService, call: Call) -> Reply:
    org_id = call.params["org_id"]
    record = admin.org(org_id)
    now = admin.clock()
    keys = [views.key(k, now) for k in admin.keys(org_id)]
    return Reply(200, {**views.org(record), "keys": keys})


def org_disable(admin: AdminService, call: Call) -> Reply:
    return Reply(200, views.org(admin.disable_org(call.params["org_id"])))


def org_use_cases(admin: AdminService, call: Call) -> Reply:
    f = Fields(call.body, frozenset({"use_cases"}))
    return Reply(200, views.org(admin.set_use_cases(call.params["org_id"], f.texts("use_cases"))))


def keys_list(admin: AdminService, call: Call) -> Reply:
    now = admin.clock()
    org_id = query_text(call.query, "org_id", 64)
    return Reply(200, {"keys": [views.key(k, now) for k in admin.keys(org_id)]})


def keys_create(admin: AdminService, call: Call) -> Reply:
    f = Fields(call.body, KEY_FIELDS)
    created = admin.create_key(
        f.text("org_id", max_len=63),
        f.text("use_case", default="", max_len=64) or None,
        f.text("description", default=""),
        f.integer("expires_in_days", low=1, high=3650),
    )
    return Reply(201, views.new_key(created))


def key_revoke(admin: AdminService, call: Call) -> Reply:
    return Reply(200, views.key(admin.revoke_key(call.params["key_id"]), admin.clock()))


def operators_list(admin: AdminService, _: Call) -> Reply:
    return Reply(200, {"operators": [views.operator(o) for o in admin.operator_list()]})


def operators_create(admin: AdminService, call: Call) -> Reply:
    f = Fields(call.body, OPERATOR_FIELDS)
    record, token = admin.create_operator(
        f.text("operator_id", max_len=63), f.text("display_name"), f.text("role", max_len=16)
    )
    return Reply(201, views.new_operator(record, token))


def policies(admin: AdminService, _: Call) -> Reply:
    packs, infos = admin.policies()
    return Reply(200, {"packs": list(packs), "policies": [views.policy(i) for i in infos]})


def policies_explain(admin: AdminService, call: Call) -> Reply:
    body = Fields(call.body, EXPLAIN_FIELDS).doc
    return Reply(200, views.explanation(admin.explain(body)))


def decisions_list(admin: AdminService, call: Call) -> Reply:
    limit = query_int(call.query, "limit", default=50, low=1, high=1000)
    found = admin.recent_decisions(limit, query_text(call.query, "org_id", 64))
    return Reply(200, {"decisions": [views.decision(d) for d in found]})


def decision_show(admin: AdminService, call: Call) -> Reply:
    return Reply(200, views.decision(admin.decision(call.params["decision_id"])))


def reviews_list(admin: AdminService, call: Call) -> Reply:
    status = query_choice(call.query, "status", (*REVIEW_STATUSES, "all"), "pending")
    limit = query_int(call.query, "limit", default=50, low=1, high=1000)
    found = admin.review_list(None if status == "all" else status, limit)
    now = admin.clock()
    return Reply(200, {"reviews": [views.review(r, now) for r in found]})


def review_show(admin: AdminService, call: Call) -> Reply:
    return Reply(200, views.review_detail(admin.review(call.params["review_id"]), admin.clock()))


def model_audits_list(admin: AdminService, _: Call) -> Reply:
    return Reply(200, {"model_audits": [views.model_audit(r) for r in admin.model_audit_list()]})


def model_audits_register(admin: AdminService, call: Call) -> Reply:
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


def model_audit_revoke(admin: AdminService, call: Call) -> Reply:
    return Reply(200, views.model_audit(admin.revoke_model_audit(call.params["audit_id"])))


def model_audits_status(admin: AdminService, _: Call) -> Reply:
    return Reply(200, views.model_gate(admin.model_gate()))


def _vote(verdict: str) -> Handler:
    def vote(admin: AdminService, call: Call) -> Reply:
        note = Fields(call.body, frozenset({"note"})).text("note", max_len=1000)
        detail = admin.vote(call.params["review_id"], _operator(call), verdict, note)
        return Reply(200, views.review_detail(detail, admin.clock()))

    return vote


def endpoints(openapi: Handler) -> tuple[Endpoint, ...]:
    """Every admin endpoint; ``openapi`` serves the OpenAPI document (public)."""
    orgs, keys, ops = "manage organisations", "manage access keys", "manage operators"
    pol, dec, rev = "read policies", "read decisions", "review held results"
    gate = "manage model audits"
    return (
        Endpoint("GET", "/openapi.json", None, "read the API description", openapi),
        Endpoint("GET", "/whoami", REVIEWERS, "ask who you are", whoami),
        Endpoint("POST", "/whoami/token", ROLES, "replace your token", whoami_token),
        Endpoint("GET", "/orgs", ADMIN_ONLY, orgs, orgs_list),
        Endpoint("POST", "/orgs", ADMIN_ONLY, orgs, orgs_create),
        Endpoint("GET", "/orgs/{org_id}", ADMIN_ONLY, orgs, org_show),
        Endpoint("POST", "/orgs/{org_id}/disable", ADMIN_ONLY, orgs, org_disable),
        Endpoint("PUT", "/orgs/{org_id}/use-cases", ADMIN_ONLY, orgs, org_use_cases),
        Endpoint("GET", "/keys", ADMIN_ONLY, keys, keys_list, ("org_id",)),
        Endpoint("POST", "/keys", ADMIN_ONLY, keys, keys_create),
        Endpoint("POST", "/keys/{key_id}/revoke", ADMIN_ONLY, keys, key_revoke),
        Endpoint("GET", "/operators", ADMIN_ONLY, ops, operators_list),
        Endpoint("POST", "/operators", ADMIN_ONLY, ops, operators_create),
        Endpoint("GET", "/policies", ADMIN_ONLY, pol, policies),
        Endpoint("POST", "/policies/explain", ADMIN_ONLY, pol, policies_explain),
        Endpoint("GET", "/decisions", ADMIN_ONLY, dec, decisions_list, ("limit", "org_id")),
        Endpoint("GET", "/decisions/{decision_id}", ADMIN_ONLY, dec, decision_show),
        Endpoint("GET", "/model-audits", ADMIN_ONLY, gate, model_audits_list),
        Endpoint(
            "POST",
            "/model-audits",
            ADMIN_ONLY,
            gate,
            model_audits_register,
            max_body_bytes=MAX_REPORT_BYTES + 64 * 1024,
        ),
        Endpoint("GET", "/model-audits/status", ADMIN_ONLY, gate, model_audits_status),
        Endpoint("POST", "/model-audits/{audit_id}/revoke", ADMIN_ONLY, gate, model_audit_revoke),
        Endpoint("GET", "/reviews", REVIEWERS, rev, reviews_list, ("status", "limit")),
        Endpoint("GET", "/reviews/{review_id}", REVIEWERS, rev, review_show),
        Endpoint("POST", "/reviews/{review_id}/confirm", REVIEWERS, rev, _vote("confirm")),
        Endpoint("POST", "/reviews/{review_id}/reject", REVIEWERS, rev, _vote("reject")),
    )
