"""What the audit record of a request says about its input and its result, without biometrics.

``input_hashes`` gives the SHA-256 of each image a request carried (never the bytes): the
parameters its row in :mod:`facegate.operations` names (``image_params``). ``summarise`` reads
the members of a response in wire form (PascalCase) that its row names (``summary_fields``) and
keeps counts, the top similarity, the FaceIds returned (at most ``MAX_FACE_IDS``; the count is
always exact) and the names of the facial attributes the answer carries, never boxes of unknown
people, landmarks, attribute values or vectors (responses carry no vectors anyway).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from facegate.audit.record import RequestRecord, ResultSummary
from facegate.operations import ATTRIBUTE_MEMBERS, FACE_ATTRIBUTES, OperationSpec
from facegate.ops.common import Bound
from facegate.policy.model import Decision, Principal, RequestContext

MAX_FACE_IDS = 100

SUMMARISED_MEMBERS: frozenset[str] = frozenset(
    {
        "AssociatedFaces",
        "DeletedFaces",
        "DisassociatedFaces",
        "FaceDetails",
        "FaceMatches",
        "FaceRecords",
        "SearchedFace",
        "SearchedFaceBoundingBox",
        "SourceImageFace",
        "UnindexedFaces",
        "UnmatchedFaces",
        "UserMatches",
    }
)
"""Every answer member :func:`summarise` knows how to read; a row's ``summary_fields`` are
those its answer has (``tests/test_operations.py`` checks them against botocore's model)."""


def input_hashes(operation: OperationSpec, params: Mapping[str, Any]) -> tuple[str, ...]:
    """SHA-256 (hex) of every image in the validated parameters, in the order of the row's
    ``image_params``."""
    out = []
    for name in operation.image_params:
        image = params.get(name)
        if isinstance(image, Mapping) and isinstance(image.get("bytes"), bytes):
            out.append(hashlib.sha256(image["bytes"]).hexdigest())
    return tuple(out)


def face_details(response: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every ``FaceDetail`` of a DetectFaces or IndexFaces answer (wire form)."""
    details: list[Mapping[str, Any]] = []
    for detail in response.get("FaceDetails") or ():
        if isinstance(detail, Mapping):
            details.append(detail)
    for name in ("FaceRecords", "UnindexedFaces"):
        for item in response.get(name) or ():
            detail = item.get("FaceDetail") if isinstance(item, Mapping) else None
            if isinstance(detail, Mapping):
                details.append(detail)
    return details


def attributes_in(response: Mapping[str, Any]) -> tuple[str, ...]:
    """The facial attributes (names, in Rekognition's order) that at least one face of the
    answer carries."""
    details = face_details(response)
    return tuple(a for a in FACE_ATTRIBUTES if any(ATTRIBUTE_MEMBERS[a] in d for d in details))


def summarise(
    operation: OperationSpec, answer: Mapping[str, Any], *, held: bool = False
) -> ResultSummary:
    """Counts and ids from the members of an answer in wire form (before candidates are
    withheld) that the operation's row names in ``summary_fields``."""
    response = {k: answer[k] for k in operation.summary_fields if k in answer}
    matches = list(response.get("FaceMatches") or ()) + list(response.get("UserMatches") or ())
    similarities = [float(m["Similarity"]) for m in matches if "Similarity" in m]
    face_ids: list[str] = []
    for match in response.get("FaceMatches") or ():
        face = match.get("Face") or {}
        if "FaceId" in face:
            face_ids.append(str(face["FaceId"]))
    for record in response.get("FaceRecords") or ():
        face = record.get("Face") or {}
        if "FaceId" in face:
            face_ids.append(str(face["FaceId"]))
    face_ids.extend(str(f) for f in response.get("DeletedFaces") or ())
    for name in ("AssociatedFaces", "DisassociatedFaces"):
        face_ids.extend(
            str(item["FaceId"])
            for item in response.get(name) or ()
            if isinstance(item, Mapping) and "FaceId" in item
        )
    detected: int | None = None
    if "FaceDetails" in response:
        detected = len(response["FaceDetails"])
    elif "SearchedFaceBoundingBox" in response or "SearchedFace" in response:
        detected = 1
    elif "SourceImageFace" in response:
        detected = len(response.get("FaceMatches") or ()) + len(
            response.get("UnmatchedFaces") or ()
        )
    return ResultSummary(
        faces_detected=detected,
        faces_indexed=len(response["FaceRecords"]) if "FaceRecords" in response else None,
        candidates=len(matches)
        if ("FaceMatches" in response or "UserMatches" in response)
        else None,
        top_similarity_pct=max(similarities) if similarities else None,
        face_ids=tuple(face_ids[:MAX_FACE_IDS]),
        held_for_review=held,
        attributes_inferred=attributes_in(response),
    )


@dataclass
class Outcome:
    """What one request did, filled in as the steps go: for the log line, the metrics and the
    audit record."""

    request_id: str
    received_at: float
    operation: str = "-"
    access_key_id: str | None = None
    org_id: str | None = None
    code: str = "OK"
    principal: Principal | None = None
    context: RequestContext | None = None
    collection_id: str = ""
    decision: Decision | None = None
    review_id: str | None = None
    review_status: str | None = None
    inputs: tuple[str, ...] = ()
    result: ResultSummary | None = None
    collection_faces: int | None = None
    expected_false_candidates: float | None = None
    # a threshold raised by an obligation: the threshold used and the one the request asked for
    threshold_raised_to: float | None = None
    threshold_requested_pct: float | None = None
    # 1:N searches: "tail" (the larger of the calibrated rate and the probe's own tail, both
    # kept) or "calibrated" (the collection was too small to fit); "" for other operations
    false_candidate_method: str = ""
    expected_false_candidates_calibrated: float | None = None
    expected_false_candidates_tail: float | None = None
    client_address: str = ""
    # DetectFaces / IndexFaces: the facial attributes asked for and those dropped by policy
    attributes_requested: frozenset[str] = frozenset()
    attributes_dropped: frozenset[str] = frozenset()
    # The collection the decision was about, bound at the policy step; the work acts on it.
    bound: Bound | None = None
    # The descriptor model of the request's numbers (its collection's; the default model's
    # for CompareFaces) and the Similarity version they are on ("" when not scored)
    face_model_version: str | None = None
    similarity_version: str = ""
    # the promise curve of that Similarity ("" when none ships: the nominal scale)
    promise_version: str = ""
    started: float = field(default_factory=time.perf_counter)
    # refused at authentication (or before it, for an address over its rate): counted in an
    # aggregate record (facegate.refusals), not recorded one by one
    unauthenticated: bool = False


def intent_record(outcome: Outcome, at: float) -> dict[str, Any]:
    """The ``intent`` record of a request about to change the store (:mod:`facegate.intent`):
    who, what and why, as far as known before the work; its ``request`` record follows. The
    request's fields are nested under ``request``, so a search of the log by key, organisation,
    operation, decision or request id finds each request's own record, not its intent."""
    decision = outcome.decision
    return {
        "kind": "intent",
        "at": at,
        "request": {
            "request_id": outcome.request_id,
            "operation": outcome.operation,
            "org_id": outcome.org_id or "",
            "access_key_id": outcome.access_key_id or "",
            "collection_id": outcome.collection_id,
            "decision_id": decision.decision_id if decision else "",
            "input_sha256": list(outcome.inputs),
        },
    }


def request_record(outcome: Outcome) -> RequestRecord:
    """The audit record of a finished request (latency measured up to now)."""
    principal, ctx, decision = outcome.principal, outcome.context, outcome.decision
    if decision is None:
        verdict = "none" if outcome.code != "OK" else "allow"
    elif not decision.allowed:
        verdict = "deny"
    else:
        verdict = "allow" if outcome.code == "OK" else "error"
    obligations = decision.obligations if decision is not None else None
    return RequestRecord(
        at=outcome.received_at,
        request_id=outcome.request_id,
        operation=outcome.operation,
        decision=verdict,
        latency_ms=round((time.perf_counter() - outcome.started) * 1000.0, 3),
        org_id=outcome.org_id or "",
        sector=principal.organisation.sector if principal else "",
        access_key_id=outcome.access_key_id or "",
        use_case=principal.use_case if principal else "",
        collection_id=outcome.collection_id,
        purpose=ctx.purpose if ctx else "",
        case_ref=ctx.case_ref if ctx else "",
        authorization_ref=ctx.authorization_ref if ctx else "",
        authorization_issuer=ctx.authorization_issuer if ctx else "",
        realtime=ctx.realtime if ctx else False,
        exigent=ctx.exigent if ctx else False,
        decision_id=decision.decision_id if decision else "",
        policy_ids=decision.policy_ids if decision else (),
        obligations=obligations.to_json() if obligations and not obligations.empty else {},
        review_id=outcome.review_id or "",
        error_code="" if outcome.code == "OK" else outcome.code,
        input_sha256=outcome.inputs,
        client_address=outcome.client_address,
        attributes_requested=_ordered(outcome.attributes_requested),
        attributes_dropped=_ordered(outcome.attributes_dropped),
        result=replace(
            outcome.result or ResultSummary(),
            expected_false_candidates=outcome.expected_false_candidates,
            threshold_raised_to=outcome.threshold_raised_to,
            threshold_requested_pct=outcome.threshold_requested_pct,
            false_candidate_estimate=outcome.false_candidate_method,
            expected_false_candidates_tail=outcome.expected_false_candidates_tail,
            expected_false_candidates_calibrated=outcome.expected_false_candidates_calibrated,
            face_model_version=outcome.face_model_version or "",
            similarity_version=outcome.similarity_version,
            promise_version=outcome.promise_version,
        ),
    )


def _ordered(attributes: frozenset[str]) -> tuple[str, ...]:
    return tuple(a for a in FACE_ATTRIBUTES if a in attributes)
