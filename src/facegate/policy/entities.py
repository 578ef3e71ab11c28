"""PolicyRequest -> the Cedar request and entities (plain dicts, built per decision).

Entities (types in ``schema.cedarschema``, namespace ``Facegate``):

* ``Organisation::"<org_id>"``: the caller's organisation, with its registration.
* ``Key::"<key_id>"`` in that Organisation: the principal.
* the resource: ``Collection::"<collection_id>"`` whose ``organisation`` attribute references
  ``Organisation::"<organisation_id>"`` (only the caller's organisation is in the entity set, so a
  policy can compare a foreign owner but never read its attributes), or the one
  ``Service::"rekognition"`` when the request names no collection.

Context: every attribute of ``RequestContext`` is always present (Cedar then needs no ``has``
tests); ``has_case``/``has_authorization``/``has_consent`` say whether the matching reference is
non-empty. ``now`` becomes Cedar's ``datetime`` with millisecond precision in UTC.

Cost: a few dict literals; Cedar parses them once per call. Nothing here is cached because
nothing here is expensive (see bench/policy_decision.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from facegate.isotime import iso_millis
from facegate.policy.actions import EITHER_RESOURCE_ACTIONS, SERVICE_ACTIONS
from facegate.policy.model import PolicyRequest

NAMESPACE = "Facegate"
SERVICE_ID = "rekognition"

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class CedarQuery:
    """What ``cedarpy.is_authorized`` takes: the request and the entity list."""

    request: JsonDict
    entities: list[JsonDict]


def uid(kind: str, ident: str) -> JsonDict:
    """A Cedar entity uid in JSON form, e.g. ``{"type": "Facegate::Key", "id": "AK..."}``."""
    return {"type": f"{NAMESPACE}::{kind}", "id": ident}


def cedar_datetime(moment: datetime) -> str:
    """``moment`` as Cedar's ``datetime`` literal text, ``2020-06-10T00:00:00.000Z``.

    Raises ``ValueError`` for a naive datetime: policies compare instants, and a naive time has
    none (the request context promises timezone-aware UTC).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("context.now must be timezone-aware (UTC)")
    return iso_millis(moment)


def resource_kind(action: str, has_collection: bool) -> str:
    """``"Service"`` or ``"Collection"``: the resource type the schema expects for ``action``."""
    if action in SERVICE_ACTIONS:
        return "Service"
    if action in EITHER_RESOURCE_ACTIONS:
        return "Collection" if has_collection else "Service"
    return "Collection"


def to_cedar(request: PolicyRequest) -> CedarQuery:
    """The Cedar form of ``request``.

    The resource follows the action (:func:`resource_kind`): a collection given to an operation
    on the Service is ignored; a collection operation without one gets the Service, which the
    schema rejects at decision time (so the decision is Deny with that error: fail closed).
    """
    principal = request.principal
    org = principal.organisation
    org_uid = uid("Organisation", org.org_id)
    ctx = request.context
    entities: list[JsonDict] = [
        {
            "uid": org_uid,
            "attrs": {
                "name": org.name,
                "sector": org.sector,
                "country": org.country,
                "region": org.region,
                "city": org.city,
                "use_cases": sorted(org.use_cases),
            },
            "parents": [],
        },
        {
            "uid": uid("Key", principal.key_id),
            "attrs": {"use_case": principal.use_case, "organisation": {"__entity": org_uid}},
            "parents": [org_uid],
        },
    ]
    collection = request.resource
    if resource_kind(request.action, collection is not None) == "Collection" and collection:
        resource = uid("Collection", collection.collection_id)
        owner = uid("Organisation", collection.organisation_id)
        attrs = {"organisation": {"__entity": owner}, "face_count": collection.face_count}
        entities.append({"uid": resource, "attrs": attrs, "parents": []})
    else:
        resource = uid("Service", SERVICE_ID)
        entities.append({"uid": resource, "attrs": {}, "parents": []})
    context = {
        "now": {"__extn": {"fn": "datetime", "arg": cedar_datetime(ctx.now)}},
        "purpose": ctx.purpose,
        "case": ctx.case_ref,
        "authorization_ref": ctx.authorization_ref,
        "authorization_issuer": ctx.authorization_issuer,
        "camera": ctx.camera,
        "consent": ctx.consent_ref,
        "has_case": bool(ctx.case_ref),
        "has_authorization": bool(ctx.authorization_ref),
        "has_consent": bool(ctx.consent_ref),
        "realtime": ctx.realtime,
        "exigent": ctx.exigent,
        "model_audit": {
            "registered": ctx.model_audit_registered,
            "within_bounds": ctx.model_audit_within_bounds,
        },
        "setting": ctx.setting,
        "attributes": sorted(ctx.attributes),
        "attributes_named": sorted(ctx.attributes_named),
    }
    cedar_request = {
        "principal": uid("Key", principal.key_id),
        "action": {"type": f"{NAMESPACE}::Action", "id": request.action},
        "resource": resource,
        "context": context,
    }
    return CedarQuery(cedar_request, entities)
