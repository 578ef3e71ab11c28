"""The body of ``POST /admin/policies/explain`` -> a :class:`~facegate.policy.model.PolicyRequest`.

::

    {
      "org_id": "berlin-access",                 a registered organisation, or instead:
      "organisation": {"org_id": "x", "name": "X", "sector": "commercial", "country": "DE",
                       "region": "", "city": "", "use_cases": ["access_control"]},
      "use_case": "access_control",              the key's use case (default: the org's only one)
      "action": "SearchFacesByImage",            a Rekognition operation name
      "collection": "staff",                     needed by actions on a collection: an id
                                                 of the principal's organisation (its size
                                                 looked up when the server knows it, else 0;
                                                 ids are per organisation),
                                                 or {"collection_id", "organisation_id",
                                                 "face_count"}
      "context": {"now": "2026-09-01T08:00:00Z", "purpose": "access_control", "case_ref": "",
                  "authorization_ref": "", "authorization_issuer": "", "realtime": false,
                  "exigent": false, "camera": "", "consent_ref": ""}   all optional: now
                                                 defaults to the server's clock, purpose to
                                                 the use case
    }

Types, lengths and unknown fields are checked here (``InvalidParameterException`` naming the
field); names outside the policy vocabulary (an unknown sector, purpose or action) are left to the
policy engine, which denies and lists them in the decision's errors, as it would for a request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from facegate.admin.fields import Fields, invalid
from facegate.admin.inputs import ExplainRequest, fields_of
from facegate.governance import to_policy
from facegate.policy.actions import ACTION_GROUPS, EITHER_RESOURCE_ACTIONS, SERVICE_ACTIONS
from facegate.policy.model import (
    CollectionRef,
    Organisation,
    PolicyRequest,
    Principal,
    RequestContext,
    field_names,
)
from facegate.store.orgs import OrganisationRepository

TOP = fields_of(ExplainRequest)
ORGANISATION = field_names(Organisation)
COLLECTION = field_names(CollectionRef)
CONTEXT = field_names(RequestContext)
EXPLAIN_KEY_ID = "explain"
_NO_COLLECTION_NEEDED = SERVICE_ACTIONS | EITHER_RESOURCE_ACTIONS


def request_from_body(
    body: Mapping[str, Any],
    *,
    orgs: OrganisationRepository,
    collections: Callable[[str, str], CollectionRef | None] | None,
    now: datetime,
) -> PolicyRequest:
    """The policy request ``body`` describes (see the module docstring)."""
    top = Fields(dict(body), TOP)
    organisation = _organisation(top, orgs)
    use_case = top.text("use_case", default="", max_len=64)
    if not use_case:
        if len(organisation.use_cases) != 1:
            raise invalid("use_case", "is required (the organisation has not exactly one)")
        (use_case,) = organisation.use_cases
    principal = Principal(
        key_id=top.text("key_id", default=EXPLAIN_KEY_ID, max_len=128),
        use_case=use_case,
        organisation=organisation,
    )
    action = top.text("action", max_len=64)
    resource = _collection(top, organisation.org_id, collections)
    if resource is None and action in ACTION_GROUPS and action not in _NO_COLLECTION_NEEDED:
        raise invalid("collection", f"is required for {action} (it acts on a collection)")
    return PolicyRequest(
        principal=principal,
        action=action,
        resource=resource,
        context=_context(top.child("context", CONTEXT), use_case, now),
    )


def _organisation(top: Fields, orgs: OrganisationRepository) -> Organisation:
    given = top.child("organisation", ORGANISATION)
    if top.has("org_id") == (given is not None):
        raise invalid("org_id", "or 'organisation' is required (exactly one of them)")
    if given is None:
        return to_policy(orgs.require(top.text("org_id", max_len=64)))
    org_id = given.text("org_id", default="explain-org", max_len=64)
    return Organisation(
        org_id=org_id,
        name=given.text("name", default=org_id),
        sector=given.text("sector", max_len=64),
        country=given.text("country", default="", max_len=2),
        region=given.text("region", default="", max_len=6),
        city=given.text("city", default="", max_len=63),
        use_cases=frozenset(given.texts("use_cases")),
    )


def _collection(
    top: Fields, own: str, collections: Callable[[str, str], CollectionRef | None] | None
) -> CollectionRef | None:
    value = top.doc.get("collection")
    if value is None:
        return None
    if isinstance(value, str):
        collection_id = top.text("collection", max_len=255)
        known = collections(own, collection_id) if collections is not None else None
        return known if known is not None else CollectionRef(collection_id, own)
    given = Fields(value, COLLECTION, "collection")
    return CollectionRef(
        collection_id=given.text("collection_id", max_len=255),
        organisation_id=given.text("organisation_id", default=own, max_len=64),
        face_count=given.integer("face_count", low=0, high=10**9) or 0,
    )


def _context(ctx: Fields | None, use_case: str, now: datetime) -> RequestContext:
    if ctx is None:
        return RequestContext(now=now, purpose=use_case)
    return RequestContext(
        now=_time(ctx, now),
        purpose=ctx.text("purpose", default=use_case, max_len=64),
        case_ref=ctx.text("case_ref", default="", max_len=128),
        authorization_ref=ctx.text("authorization_ref", default="", max_len=128),
        authorization_issuer=ctx.text("authorization_issuer", default="", max_len=128),
        realtime=ctx.flag("realtime"),
        exigent=ctx.flag("exigent"),
        camera=ctx.text("camera", default="", max_len=16),
        consent_ref=ctx.text("consent_ref", default="", max_len=128),
        model_audit_registered=ctx.flag("model_audit_registered"),
        model_audit_within_bounds=ctx.flag("model_audit_within_bounds"),
        setting=ctx.text("setting", default="", max_len=16),
        attributes=_names(ctx, "attributes"),
        attributes_named=_names(ctx, "attributes_named"),
    )


def _names(ctx: Fields, key: str) -> frozenset[str]:
    """An optional list of facial attribute names (checked by the policy engine's vocabulary)."""
    return frozenset(ctx.texts(key, max_items=20)) if ctx.doc.get(key) else frozenset()


def _time(ctx: Fields, default: datetime) -> datetime:
    text = ctx.text("now", default="", max_len=64)
    if not text:
        return default
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(
            ctx.path("now"), "must be an ISO 8601 time such as 2026-09-01T08:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise invalid(ctx.path("now"), "needs a timezone (add Z for UTC)")
    return moment.astimezone(UTC)
