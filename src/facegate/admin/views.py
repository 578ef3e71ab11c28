"""Records -> JSON documents for the admin API (and ``--json`` style output), and their types.

Each view returns a ``TypedDict`` (``...Doc``): mypy checks every view and handler against it,
and the admin API's OpenAPI schemas are generated from these types (:mod:`facegate.admin.openapi`
through :mod:`facegate.admin.typeschema`: a class's docstring describes its schema, a field's
docstring the field).

Contract: no view contains a sealed or clear access-key secret, an operator token or its hash,
an image or a face vector. The two exceptions are explicit and single-use: :func:`new_key`
(the secret of a key just created) and :func:`new_operator` (the token of an operator just
created). Times are ISO 8601 UTC strings ("2026-11-23T11:16:44Z") or null.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict, cast

from facegate.admin.service import (
    REVIEW_STATUSES,
    Candidate,
    Explanation,
    ModelGate,
    ReviewDetail,
    summary_of,
)
from facegate.admin.typeschema import Choice, keywords
from facegate.isotime import iso_seconds
from facegate.policy.loader import PolicyInfo
from facegate.policy.model import Obligations, PolicyRef
from facegate.store.decisions import DecisionRecord
from facegate.store.keys import KeyRecord
from facegate.store.model_audits import ModelAuditRecord
from facegate.store.operators import ROLES, OperatorRecord
from facegate.store.orgs import OrganisationRecord
from facegate.store.reviews import VERDICTS, ReviewRecord, Vote
from facegate.wire.keys import NewKey

Doc = dict[str, Any]

IsoTime = Annotated[str | None, keywords(format="date-time")]
"""An ISO 8601 UTC time with second precision (:func:`iso`), or null."""

OpenApiDocument = Annotated[Doc, keywords(description="an OpenAPI 3.1 document")]

KeyState = Literal["usable", "revoked", "expired"]
CANDIDATE_KINDS = ("face", "user", "unmatched", "association", "not_associated")


class ErrorDoc(TypedDict):
    """one line, safe to show; code is the FacegateError code"""

    error: str
    code: str


class OrganisationDoc(TypedDict):
    org_id: str
    name: str
    sector: str
    country: str
    region: str
    city: str
    use_cases: list[str]
    active: bool
    created_at: IsoTime
    disabled_at: IsoTime


class KeyDoc(TypedDict):
    access_key_id: str
    org_id: str | None
    use_case: str
    description: str
    state: KeyState
    created_at: IsoTime
    expires_at: IsoTime
    revoked_at: IsoTime


class OrganisationDetailDoc(OrganisationDoc):
    keys: list[KeyDoc]


class NewKeyDoc(TypedDict):
    access_key_id: str
    secret_access_key: str
    """shown only once"""
    org_id: str
    use_case: str
    description: str
    expires_at: IsoTime
    note: str


class OperatorDoc(TypedDict):
    operator_id: str
    display_name: str
    role: Annotated[str, Choice(ROLES)]
    active: bool
    created_at: IsoTime
    disabled_at: IsoTime
    created_by: str
    """who created the account: an operator id, or cli (the data directory's administrator);
    empty if not recorded"""
    token_set_by: str
    """who set the token it holds"""
    password_set_by: str
    """who set its console password (empty: no password)"""


class NewOperatorDoc(OperatorDoc):
    token: str
    """fgop_..., shown only once"""
    note: str


class ObligationsDoc(TypedDict):
    min_similarity_pct: float | None
    max_candidates: int | None
    reviewers_required: int
    redact_fields: list[str]
    retention_days: int | None
    max_expected_false_candidates: float | None
    drop_attributes: list[str]


class PolicyRefDoc(TypedDict):
    policy_id: str
    pack: str
    effect: str
    reason: str
    source: str


class PolicyDoc(TypedDict):
    policy_id: str
    pack: str
    effect: Annotated[str, Choice(("permit", "forbid"))]
    reason: str
    source: str
    note: str
    obligations: ObligationsDoc
    line: int
    text: str
    """the policy as written"""


class PoliciesDoc(TypedDict):
    packs: list[str]
    policies: list[PolicyDoc]


class ExplanationDoc(TypedDict):
    decision_id: str
    allowed: bool
    decision: Literal["Allow", "Deny"]
    determining: list[PolicyRefDoc]
    policy_ids: list[str]
    reasons: list[str]
    sources: list[str]
    obligations: ObligationsDoc
    errors: list[str]
    eval_ms: float
    request: Doc
    """the request as decided"""


class DecisionDoc(TypedDict):
    decision_id: str
    at: IsoTime
    access_key_id: str
    org_id: str
    operation: str
    resource: str
    purpose: str
    allowed: bool
    policy_ids: list[str]
    reasons: list[str]
    errors: list[str]
    obligations: dict[str, object]
    review_id: str | None


class VoteDoc(TypedDict):
    operator_id: str
    verdict: Annotated[str, Choice(VERDICTS)]
    note: str
    at: IsoTime


class ReviewDoc(TypedDict):
    review_id: str
    status: Annotated[str, Choice(REVIEW_STATUSES)]
    operation: str
    org_id: str
    access_key_id: str
    decision_id: str
    reviewers_required: int
    confirmations: int
    candidates: int
    """how many candidates are held"""
    created_at: IsoTime
    expires_at: IsoTime
    decided_at: IsoTime


class CandidateDoc(TypedDict):
    kind: Annotated[str, Choice(CANDIDATE_KINDS)]
    similarity_pct: float | None
    face_id: str | None
    user_id: str | None
    external_image_id: str | None
    image_id: str | None


class ReviewDetailDoc(ReviewDoc):
    votes: list[VoteDoc]
    request: Doc | None
    held_candidates: list[CandidateDoc]


class ModelAuditDoc(TypedDict):
    audit_id: str
    model_version: str
    similarity_version: str
    report_sha256: str
    dataset: str
    registered_at: IsoTime
    registered_by: str
    note: str
    active: bool
    revoked_at: IsoTime
    revoked_by: str | None
    summary: Doc
    """per threshold: similarity_pct, overall_fmr, overall_fnmr, max_group_fnmr (and its group),
    fmr_max_geomean, fnmr_max_geomean, groups, groups_measured, groups_too_small"""


class GateBoundsDoc(TypedDict):
    threshold_pct: float
    max_fmr_ratio: float
    max_fnmr: float


class ModelGateDoc(TypedDict):
    model_version: str
    similarity_version: str
    bounds: GateBoundsDoc
    audit: ModelAuditDoc | None
    registered: bool
    within_bounds: bool
    reasons: list[str]


class OrganisationListDoc(TypedDict):
    organisations: list[OrganisationDoc]


class KeyListDoc(TypedDict):
    keys: list[KeyDoc]


class OperatorListDoc(TypedDict):
    operators: list[OperatorDoc]


class DecisionListDoc(TypedDict):
    decisions: list[DecisionDoc]


class ReviewListDoc(TypedDict):
    reviews: list[ReviewDoc]


class ModelAuditListDoc(TypedDict):
    model_audits: list[ModelAuditDoc]


def iso(epoch_s: float | None) -> str | None:
    """``epoch_s`` as an ISO 8601 UTC time with second precision, or None."""
    if epoch_s is None:
        return None
    return iso_seconds(epoch_s)


def org(record: OrganisationRecord) -> OrganisationDoc:
    return {
        "org_id": record.org_id,
        "name": record.name,
        "sector": record.sector,
        "country": record.country,
        "region": record.region,
        "city": record.city,
        "use_cases": list(record.use_cases),
        "active": record.active,
        "created_at": iso(record.created_at),
        "disabled_at": iso(record.disabled_at),
    }


def key_state(record: KeyRecord, now: float) -> KeyState:
    """usable, revoked or expired."""
    if record.usable_at(now):
        return "usable"
    return "revoked" if record.revoked_at is not None and record.revoked_at <= now else "expired"


def key(record: KeyRecord, now: float) -> KeyDoc:
    """A stored key, without its (sealed) secret."""
    return {
        "access_key_id": record.access_key_id,
        "org_id": record.org_id,
        "use_case": record.use_case,
        "description": record.description,
        "state": key_state(record, now),
        "created_at": iso(record.created_at),
        "expires_at": iso(record.expires_at),
        "revoked_at": iso(record.revoked_at),
    }


def new_key(created: NewKey) -> NewKeyDoc:
    """A key just created, with its secret: the only time the secret is shown."""
    return {
        "access_key_id": created.access_key_id,
        "secret_access_key": created.secret_access_key,
        "org_id": created.org_id or "",  # AdminService.create_key always names one
        "use_case": created.use_case,
        "description": created.description,
        "expires_at": iso(created.expires_at),
        "note": "The secret is shown only now; store it safely.",
    }


def operator(record: OperatorRecord) -> OperatorDoc:
    return {
        "operator_id": record.operator_id,
        "display_name": record.display_name,
        "role": record.role,
        "active": record.active,
        "created_at": iso(record.created_at),
        "disabled_at": iso(record.disabled_at),
        "created_by": record.created_by,
        "token_set_by": record.token_set_by,
        "password_set_by": record.password_set_by,
    }


def new_operator(record: OperatorRecord, token: str) -> NewOperatorDoc:
    """An operator just created, with their token: the only time the token is shown."""
    return {
        **operator(record),
        "token": token,
        "note": "The token is shown only now; give it to the operator over a safe channel. "
        "Their review confirmations count once they have set their own token "
        "(POST /admin/whoami/token) and the cooling-off period has passed.",
    }


def rotated_token(record: OperatorRecord, token: str) -> NewOperatorDoc:
    """An operator's own new token: the only time it is shown."""
    return {
        **operator(record),
        "token": token,
        "note": "Your new token is shown only now; the old one no longer works.",
    }


def obligations(value: Obligations) -> ObligationsDoc:
    """:meth:`Obligations.to_json` (a test checks that its keys are :class:`ObligationsDoc`'s)."""
    return cast(ObligationsDoc, value.to_json())


def policy(info: PolicyInfo) -> PolicyDoc:
    return {
        "policy_id": info.policy_id,
        "pack": info.pack,
        "effect": info.effect,
        "reason": info.reason,
        "source": info.source,
        "note": info.annotations.get("note", ""),
        "obligations": obligations(info.obligations),
        "line": info.line,
        "text": info.text,
    }


def policy_ref(ref: PolicyRef) -> PolicyRefDoc:
    return {
        "policy_id": ref.policy_id,
        "pack": ref.pack,
        "effect": ref.effect,
        "reason": ref.reason,
        "source": ref.source,
    }


def explanation(value: Explanation) -> ExplanationDoc:
    request, decision = value.request, value.decision
    principal, ctx = request.principal, request.context
    resource = request.resource
    return {
        "decision_id": decision.decision_id,
        "allowed": decision.allowed,
        "decision": "Allow" if decision.allowed else "Deny",
        "determining": [policy_ref(p) for p in decision.determining],
        "policy_ids": list(decision.policy_ids),
        "reasons": [p.reason for p in decision.determining if p.reason],
        "sources": [p.source for p in decision.determining if p.source],
        "obligations": obligations(decision.obligations),
        "errors": list(decision.errors),
        "eval_ms": round(decision.eval_ms, 3),
        "request": {
            "organisation": {
                "org_id": principal.organisation.org_id,
                "sector": principal.organisation.sector,
                "country": principal.organisation.country,
                "region": principal.organisation.region,
                "city": principal.organisation.city,
                "use_cases": sorted(principal.organisation.use_cases),
            },
            "use_case": principal.use_case,
            "action": request.action,
            "collection": None
            if resource is None
            else {
                "collection_id": resource.collection_id,
                "organisation_id": resource.organisation_id,
                "face_count": resource.face_count,
            },
            "context": {
                "now": iso_seconds(ctx.now),
                "purpose": ctx.purpose,
                "case_ref": ctx.case_ref,
                "authorization_ref": ctx.authorization_ref,
                "authorization_issuer": ctx.authorization_issuer,
                "realtime": ctx.realtime,
                "exigent": ctx.exigent,
                "camera": ctx.camera,
                "consent_ref": ctx.consent_ref,
            },
        },
    }


def decision(record: DecisionRecord) -> DecisionDoc:
    return {
        "decision_id": record.decision_id,
        "at": iso(record.at),
        "access_key_id": record.access_key_id,
        "org_id": record.org_id,
        "operation": record.operation,
        "resource": record.resource,
        "purpose": record.purpose,
        "allowed": record.allowed,
        "policy_ids": list(record.policy_ids),
        "reasons": list(record.reasons),
        "errors": list(record.errors),
        "obligations": record.obligations,
        "review_id": record.review_id,
    }


def vote(value: Vote) -> VoteDoc:
    return {
        "operator_id": value.operator_id,
        "verdict": value.verdict,
        "note": value.note,
        "at": iso(value.at),
    }


def review(record: ReviewRecord, now: float) -> ReviewDoc:
    """A review without what it holds (for lists)."""
    return {
        "review_id": record.review_id,
        "status": record.status_at(now),
        "operation": record.operation,
        "org_id": record.org_id,
        "access_key_id": record.access_key_id,
        "decision_id": record.decision_id,
        "reviewers_required": record.reviewers_required,
        "confirmations": sum(v.verdict == "confirm" for v in record.votes),
        "candidates": record.candidates,
        "created_at": iso(record.created_at),
        "expires_at": iso(record.expires_at),
        "decided_at": iso(record.decided_at),
    }


def candidate(value: Candidate) -> CandidateDoc:
    return {
        "kind": value.kind,
        "similarity_pct": value.similarity_pct,
        "face_id": value.face_id,
        "user_id": value.user_id,
        "external_image_id": value.external_image_id,
        "image_id": value.image_id,
    }


def review_detail(detail: ReviewDetail, now: float) -> ReviewDetailDoc:
    """A review with its votes, the decision that held it and the held candidates."""
    made = detail.decision
    return {
        **review(detail.review, now),
        "status": detail.status,
        "votes": [vote(v) for v in detail.review.votes],
        "request": None
        if made is None
        else {
            "collection_id": made.resource,
            "purpose": made.purpose,
            "policy_ids": list(made.policy_ids),
            "obligations": made.obligations,
            "at": iso(made.at),
        },
        "held_candidates": [candidate(c) for c in detail.candidates],
    }


def model_audit(record: ModelAuditRecord) -> ModelAuditDoc:
    """A registered bias audit: ids, versions, SHA-256 and the summary's numbers (per threshold:
    rates and Max/GeoMean; nothing biometric)."""
    return {
        "audit_id": record.audit_id,
        "model_version": record.model_version,
        "similarity_version": record.similarity_version,
        "report_sha256": record.report_sha256,
        "dataset": record.dataset,
        "registered_at": iso(record.registered_at),
        "registered_by": record.registered_by,
        "note": record.note,
        "active": record.active,
        "revoked_at": iso(record.revoked_at),
        "revoked_by": record.revoked_by,
        "summary": summary_of(record).to_json(),
    }


def model_gate(gate: ModelGate) -> ModelGateDoc:
    """The deployment gate now (``GET /admin/model-audits/status``)."""
    return {
        "model_version": gate.model_version,
        "similarity_version": gate.similarity_version,
        "bounds": {
            "threshold_pct": gate.bounds.threshold_pct,
            "max_fmr_ratio": gate.bounds.max_fmr_ratio,
            "max_fnmr": gate.bounds.max_fnmr,
        },
        "audit": None if gate.audit is None else model_audit(gate.audit),
        "registered": gate.status.registered,
        "within_bounds": gate.status.within_bounds,
        "reasons": list(gate.status.reasons),
    }
