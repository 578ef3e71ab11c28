"""The request path, readable top to bottom. The one module that knows the order of the steps.

1 wire/sigv4      authenticate the access key; governance: the key's organisation and use case
2 wire/protocol   decode the operation and its JSON body; wire/shapes validates it against
                  botocore's service model (before any work is done); wire/context parses the
                  X-Facegate-* headers (purpose, case, authorisation, real-time...)
3 ops/registry    look up the operation (unknown -> refused: fail closed)
4 policy          Cedar decision (principal = key, action = operation, resource = collection,
                  context); every decision is stored; Deny -> AccessDeniedException with its id
5 ops/*           the work (engine in worker processes, store in threads), after the
                  obligations that shape parameters (threshold raised, candidates capped)
6 enforce         obligations on the response: cap, redact, hold for human review
7 wire/protocol   encode the response or the modelled error
8 audit           the request's record, appended and fsynced (decisions are already stored in
                  step 4); an allowed request's intent record precedes its first store write
                  (facegate.intent), and refusals at authentication are counted, not recorded
                  one by one (facegate.refusals)

Every failure becomes a ``FacegateError`` with Rekognition's code; anything unexpected becomes an
``InternalServerError`` whose details go to the log, never to the caller.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from facegate import crops, enforce, intent
from facegate.engine.similarity import SimilarityModel
from facegate.errors import (
    AccessDeniedException,
    FacegateError,
    InternalServerError,
    InvalidParameterException,
    ProvisionedThroughputExceededException,
    ResourceNotFoundException,
    ThrottlingException,
    UnknownOperationException,
)
from facegate.operations import named_attributes, requested_attributes
from facegate.ops.common import Bound, Enrolment, image_bytes, token_scope
from facegate.ops.estimates import TAIL, FalseCandidates
from facegate.ops.registry import OPERATIONS, Operation, deps_for
from facegate.ops.tags import collection_of
from facegate.policy.model import (
    CollectionRef,
    Decision,
    PolicyRequest,
    Principal,
    RequestContext,
)
from facegate.recording import (
    Outcome,
    attributes_in,
    face_details,
    input_hashes,
    intent_record,
    request_record,
    summarise,
)
from facegate.refusals import THROTTLED
from facegate.services import Services
from facegate.store.decisions import DecisionRecord
from facegate.store.idempotency import TokenScope
from facegate.store.reviews import PENDING, RELEASED, ReviewRecord
from facegate.wire import context as governance_headers
from facegate.wire import protocol
from facegate.wire.names import request_kwargs, to_wire
from facegate.wire.sigv4 import SignedRequest, VerifiedCaller, verify

log = logging.getLogger("facegate.request")


@dataclass(frozen=True)
class RawRequest:
    """What the HTTP layer received. Header names are lower-case. ``client_address`` is the
    client's IP address as :mod:`facegate.wire.peers` determines it (the TCP peer unless that is
    a trusted proxy; never a header the client chose), ``-`` when unknown."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    client_address: str = "-"


@dataclass
class RawResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


async def handle(services: Services, request: RawRequest) -> RawResponse:
    """Serve one Rekognition API request, and write its audit record (fail closed: a request
    whose record cannot be written answers InternalServerError)."""
    outcome = Outcome(
        request_id=str(uuid.uuid4()),
        received_at=services.clock(),
        client_address=request.client_address,
    )
    write_intent = intent.WriteIntent(
        lambda record: services.audit.append(record),  # an intent needs the log's reserve
        lambda: intent_record(outcome, services.clock()),
    )
    try:
        with intent.recording(write_intent):
            body = await _serve(services, request, outcome)
        response = RawResponse(200, body)
    except FacegateError as exc:
        outcome.code = exc.code
        response = RawResponse(exc.http_status, protocol.error_body(exc))
    except Exception:
        log.exception("internal error", extra={"request_id": outcome.request_id})
        error = InternalServerError("Internal server error.")
        outcome.code = error.code
        response = RawResponse(error.http_status, protocol.error_body(error))
    response.headers["x-amzn-RequestId"] = outcome.request_id
    response.headers["content-type"] = protocol.CONTENT_TYPE
    if outcome.decision is not None:
        response.headers["x-facegate-decision-id"] = outcome.decision.decision_id
    if outcome.expected_false_candidates is not None:
        response.headers["x-facegate-expected-false-candidates"] = (
            f"{outcome.expected_false_candidates:.6g}"
        )
    if outcome.false_candidate_method:
        response.headers["x-facegate-false-candidate-estimate"] = outcome.false_candidate_method
    if outcome.expected_false_candidates_tail is not None:
        response.headers["x-facegate-expected-false-candidates-tail"] = (
            f"{outcome.expected_false_candidates_tail:.6g}"
        )
    if outcome.threshold_raised_to is not None:
        response.headers["x-facegate-threshold-raised-to"] = f"{outcome.threshold_raised_to:.6g}"
        if outcome.threshold_requested_pct is not None:
            response.headers["x-facegate-threshold-requested"] = (
                f"{outcome.threshold_requested_pct:.6g}"
            )
    if outcome.review_id is not None:
        response.headers["x-facegate-review-id"] = outcome.review_id
        response.headers["x-facegate-review-status"] = outcome.review_status or PENDING
    if outcome.unauthenticated:  # counted; on record with the next aggregate (refusals.py)
        reason = THROTTLED if outcome.code == ThrottlingException.code else outcome.code
        services.refusals.count(request.client_address, outcome.access_key_id or "", reason)
        _record(services, outcome)
        return response
    try:
        await asyncio.to_thread(services.audit.append, request_record(outcome).to_json())
    except Exception:
        log.exception("audit append failed", extra={"request_id": outcome.request_id})
        error = InternalServerError("Internal server error.")
        outcome.code = error.code
        response = RawResponse(
            error.http_status,
            protocol.error_body(error),
            {"x-amzn-RequestId": outcome.request_id, "content-type": protocol.CONTENT_TYPE},
        )
    _record(services, outcome)
    return response


async def _serve(services: Services, request: RawRequest, outcome: Outcome) -> bytes:
    # 1 authenticate; the key's registration (a refused request is counted with the key it
    # claimed, so attempts on a key show in the audit trail: facegate.refusals)
    outcome.access_key_id = _claimed_key(request.headers.get("authorization", ""))
    if not services.refusals.admit(request.client_address):
        outcome.unauthenticated = True
        raise ThrottlingException("Too many failed authentications from this address; retry later.")
    try:
        caller, principal = await _authenticate(services, request)
    except FacegateError:
        outcome.unauthenticated = True
        raise
    outcome.access_key_id = caller.access_key_id
    # overload: the key's rate, then the server's requests in flight (facegate.limits); both
    # refuse at once rather than queue
    if not services.limiter.allow(caller.access_key_id):
        raise ProvisionedThroughputExceededException(
            "The request rate of this access key exceeds its limit; slow down and retry."
        )
    if not services.admission.try_enter():
        raise ThrottlingException("The server is at capacity; retry later.")
    try:
        return await _admitted(services, request, caller, principal, outcome)
    finally:
        services.admission.leave()


async def _admitted(
    services: Services,
    request: RawRequest,
    caller: VerifiedCaller,
    principal: Principal | None,
    outcome: Outcome,
) -> bytes:
    """Steps 1 (the key's registration, read with its secret) to 6 for an authenticated,
    admitted request."""
    if principal is None:
        raise AccessDeniedException(
            "The access key is not registered to an active organisation and use case."
        )
    outcome.org_id = principal.organisation.org_id
    outcome.principal = principal
    # 2-3 decode and validate; look up the operation; the governance headers
    name = protocol.operation_from_target(request.headers.get("x-amz-target"))
    outcome.operation = name
    operation = OPERATIONS.get(name)
    if operation is None or name not in services.model.operation_names():
        raise UnknownOperationException(f"facegate does not serve the operation {name}.")
    raw = protocol.decode_body(request.body)
    params = request_kwargs(services.model.validate_input(name, raw))
    outcome.inputs = input_hashes(operation.spec, params)
    now = services.clock()
    headers = governance_headers.parse(
        request.headers,
        key_use_case=principal.use_case,
        now=datetime.fromtimestamp(now, UTC),
        signed=caller.signed_headers,
    )
    context = headers.context
    attributes_param = operation.spec.attributes_param
    if attributes_param is not None:
        # the facial attributes asked for are a capability policies decide (context.attributes)
        context = replace(
            context,
            attributes=requested_attributes(params.get(attributes_param)),
            attributes_named=named_attributes(params.get(attributes_param)),
        )
        outcome.attributes_requested = context.attributes
    # 4 policy: the collection, the gate, the decision and its stored row, in one worker
    # thread (one hop from the event loop instead of three)
    decision = await asyncio.to_thread(
        _decide, services, operation, params, principal, context, now, outcome
    )
    if not decision.allowed:
        told = " ".join(services.policy.caller_reasons(decision))
        raise AccessDeniedException(
            f"Access denied by policy (decision {decision.decision_id})."
            + (f" {told}" if told else "")
        )
    intent.arm()  # from here on, the first store write puts the intent on record first
    digest = _params_digest(operation, params)
    if headers.review_id is not None:
        return await _collect(
            services, operation, params, _review_digest(digest, context), principal, headers,
            outcome,
        )  # fmt: skip
    token = params.get("client_request_token") if operation.spec.idempotent_token else None
    if token is None:
        return await _work(
            services, operation, params, digest, decision, principal, headers, now, outcome
        )
    key = f"{operation.name}\0{principal.organisation.org_id}\0{token}"
    async with services.token_locks.hold(key):
        return await _work(
            services, operation, params, digest, decision, principal, headers, now, outcome
        )


async def _work(
    services: Services,
    operation: Operation,
    params: dict[str, Any],
    digest: str,
    decision: Decision,
    principal: Principal,
    headers: governance_headers.Governance,
    now: float,
    outcome: Outcome,
) -> bytes:
    """Steps 5-6: replay a stored idempotent response, or do the work under the obligations."""
    scope = token_scope(principal.organisation.org_id, outcome.bound)
    replay = await _recall(services, operation, params, digest, scope)
    if replay is not None:
        return replay
    # 5 the work, its parameters shaped by the obligations
    obligations = decision.obligations
    spec = operation.spec
    # held for human review whatever the result (decided before the work, so that being held
    # says nothing about a match); an operation that writes what it compares is planned, and
    # its plan applied only when a released review is collected
    held = enforce.must_hold(spec, obligations)
    if held and not operation.holdable:
        raise AccessDeniedException(
            f"{operation.name} cannot be held for the human review this request needs."
        )
    applied = enforce.before(
        spec,
        params,
        obligations,
        collection_faces=outcome.collection_faces,
        similarity=(
            _similarity(services, outcome)
            if spec.compares_faces
            else services.deps.matcher.similarity
        ),
    )
    outcome.expected_false_candidates = applied.expected_false_candidates
    outcome.threshold_raised_to = applied.threshold_raised_to
    outcome.threshold_requested_pct = applied.threshold_requested_pct
    estimate = (
        FalseCandidates(bound=obligations.max_expected_false_candidates)
        if spec.identification and outcome.collection_faces is not None
        else None
    )
    outcome.attributes_dropped = applied.attributes_dropped
    retain_until = (
        now + obligations.retention_days * 86400.0
        if obligations.retention_days is not None
        else None
    )
    deps = deps_for(
        services.deps,
        operation,
        principal.organisation.org_id,
        Enrolment(headers.context.consent_ref or None, retain_until),
        outcome.bound,
        estimate,
    )
    work = operation.plan if held and operation.plan is not None else operation.handler
    result = await work(deps, params)
    if estimate is not None:
        _report_estimate(services, outcome, applied, estimate)
    # 6 obligations on the response; human review holds the whole answer
    full = to_wire(result)
    wire = enforce.after(spec, full, obligations)
    outcome.result = summarise(operation.spec, wire, held=held)
    if outcome.attributes_requested:
        _count_attributes(services, outcome, wire)
    if held:
        crop = await _probe_crop(services, operation, params, full)
        review_digest = _review_digest(digest, headers.context)
        wire = await _hold(
            services, operation, review_digest, decision, principal, wire, now, outcome, crop
        )
    body = protocol.encode_body(wire)
    await _remember(services, operation, params, digest, body, scope)
    return body


def _report_estimate(
    services: Services,
    outcome: Outcome,
    applied: enforce.Applied,
    estimate: FalseCandidates,
) -> None:
    """What the search's own estimate adds to the outcome: the threshold its tail raised the
    search to (reported like any raised threshold), and the expected false candidates as the
    larger of the calibrated rate and the tail's at that threshold (the calibrated rate alone,
    marked so, when the collection was too small to fit)."""
    outcome.false_candidate_method = estimate.method
    if estimate.method != TAIL:
        return
    final = estimate.raised_to_pct
    if final is not None:
        requested = applied.threshold_requested_pct
        if requested is None:
            requested = applied.threshold_pct
        outcome.threshold_raised_to = final
        outcome.threshold_requested_pct = requested
    threshold = final if final is not None else applied.threshold_pct
    similarity = _similarity(services, outcome)
    fmr = similarity.fmr_at(threshold) if similarity and threshold is not None else None
    calibrated = None if fmr is None else estimate.faces * fmr
    outcome.expected_false_candidates_calibrated = calibrated
    outcome.expected_false_candidates_tail = estimate.tail_expected
    tail = estimate.tail_expected or 0.0
    outcome.expected_false_candidates = tail if calibrated is None else max(calibrated, tail)


def _count_attributes(services: Services, outcome: Outcome, wire: dict[str, Any]) -> None:
    """Count what became of each facial attribute asked for (metric
    ``facegate_face_attributes``), and log those asked for but estimated for no face although
    faces were found: not available in this server (docs/attributes.md lists what it
    estimates), or no face allowed an estimate. Rekognition's answer has no member for that,
    so the caller sees the attribute omitted."""
    inferred = set(attributes_in(wire))
    faces = len(face_details(wire))
    missing = []
    for attribute in sorted(outcome.attributes_requested):
        if attribute in outcome.attributes_dropped:
            state = "dropped"
        elif attribute in inferred:
            state = "inferred"
        elif faces:
            state = "not_estimated"
            missing.append(attribute)
        else:
            continue
        services.metrics.attributes.labels(attribute, state).inc()
    if missing:
        log.info(
            "attributes not estimated",
            extra={"request_id": outcome.request_id, "attributes": missing},
        )


def _decide(
    services: Services,
    operation: Operation,
    params: dict[str, Any],
    principal: Principal,
    context: RequestContext,
    now: float,
    outcome: Outcome,
) -> Decision:
    """Step 4, blocking (run in a worker thread): the collection resolved and bound, the
    deployment gate for identification (on the collection's own model), the Cedar decision, and
    the decision stored. ``outcome`` records each as it is known, so a failure part-way is
    audited with what was known."""
    resource, outcome.bound = _resource(services, operation, params, principal)
    bound_record = outcome.bound.record if outcome.bound is not None else None
    outcome.face_model_version = (
        bound_record.face_model_version if bound_record is not None else None
    )
    if operation.spec.identification:
        # the deployment gate: the registered bias audit of the collection's own model (and
        # Similarity), read per request so a registration by the CLI applies at once (other
        # actions keep false/false: only the gate reads these, and only for identification)
        gate = services.gate_status(outcome.face_model_version)
        context = replace(
            context,
            model_audit_registered=gate.registered,
            model_audit_within_bounds=gate.within_bounds,
        )
    outcome.context = context
    outcome.collection_id = resource.collection_id if resource is not None else ""
    outcome.collection_faces = resource.face_count if resource is not None else None
    decision = services.policy.decide(PolicyRequest(principal, operation.name, resource, context))
    outcome.decision = decision
    _store_decision(services, decision, principal, operation, resource, context, now)
    return decision


def _similarity(services: Services, outcome: Outcome) -> SimilarityModel | None:
    """The Similarity the request's numbers are on: its collection's model's (None: that model
    cannot be scored here, so the size-aware bound closes; the search itself is refused), or
    the default model's. Names both versions in the audit record."""
    version = outcome.face_model_version
    matcher = services.deps.matcher
    if version is not None and services.deps.matchers is not None:
        try:
            matcher = services.deps.matchers.for_model(version)
        except (KeyError, ValueError):
            outcome.similarity_version = ""
            return None
    outcome.face_model_version = version or services.active_model[0]
    outcome.similarity_version = matcher.version
    return matcher.similarity


def _resource(
    services: Services, operation: Operation, params: dict[str, Any], principal: Principal
) -> tuple[CollectionRef | None, Bound | None]:
    """The collection a request is about, resolved once, in the caller's organisation: for the
    policy, with its owner and size (one that does not exist, e.g. for CreateCollection, belongs
    to the caller's organisation); for the work, the binding to that very collection (its
    identity), so the work never acts on a collection created later under the same id.
    Collection ids are per organisation: another organisation's collection of the same id is
    not consulted, so it looks and costs exactly like one that does not exist."""
    own = principal.organisation.org_id
    collection_id: str | None = None
    if operation.spec.collection_param is not None:
        collection_id = params.get(operation.spec.collection_param)
    elif "resource_arn" in params:
        try:
            collection_id = collection_of(services.deps, params["resource_arn"])
        except ResourceNotFoundException:
            return CollectionRef(str(params["resource_arn"]), own), None
    if collection_id is None:
        return None, None
    record = services.store.find_collection(own, collection_id)
    if record is None:
        return CollectionRef(collection_id, own), Bound(collection_id, None)
    faces = services.store.face_count(record)
    return CollectionRef(collection_id, record.org_id, faces), Bound(collection_id, record)


def _store_decision(
    services: Services,
    decision: Decision,
    principal: Principal,
    operation: Operation,
    resource: CollectionRef | None,
    ctx: RequestContext,
    now: float,
) -> None:
    services.decisions.insert(
        DecisionRecord(
            decision_id=decision.decision_id,
            at=now,
            access_key_id=principal.key_id,
            org_id=principal.organisation.org_id,
            operation=operation.name,
            resource=resource.collection_id if resource is not None else "",
            purpose=ctx.purpose,
            allowed=decision.allowed,
            policy_ids=decision.policy_ids,
            reasons=tuple(p.reason for p in decision.determining if p.reason),
            errors=decision.errors,
            obligations=decision.obligations.to_json(),
        )
    )


async def _hold(
    services: Services,
    operation: Operation,
    digest: str,
    decision: Decision,
    principal: Principal,
    wire: dict[str, Any],
    now: float,
    outcome: Outcome,
    crop: bytes | None = None,
) -> dict[str, Any]:
    """Keep the full response for review, with the probe's face crop (stored encrypted in the
    review's own transaction); the caller gets it without candidates, plus the review id to
    collect it with (header X-Facegate-Review) once enough reviewers confirm. ``digest`` binds
    the review to the request's parameters and governance context (:func:`_review_digest`)."""
    review = ReviewRecord(
        review_id="rev-" + secrets.token_hex(10),
        decision_id=decision.decision_id,
        operation=operation.name,
        access_key_id=principal.key_id,
        org_id=principal.organisation.org_id,
        params_sha256=digest,
        reviewers_required=decision.obligations.reviewers_required,
        status=PENDING,
        held_response=protocol.encode_body(wire).decode("utf-8"),
        candidates=enforce.candidates(operation.spec, wire),
        created_at=now,
        expires_at=now + services.settings.review_ttl_s,
    )
    await asyncio.to_thread(services.reviews.insert, review, crop)
    await asyncio.to_thread(services.decisions.set_review, decision.decision_id, review.review_id)
    outcome.review_id, outcome.review_status = review.review_id, PENDING
    return enforce.withheld(operation.spec, wire)


async def _probe_crop(
    services: Services, operation: Operation, params: dict[str, Any], full: dict[str, Any]
) -> bytes | None:
    """The probe's face crop for a held result (None: the operation has no probe image, e.g.
    SearchFaces by FaceId; or no face was found in the probe). Fails closed: a crop that cannot
    be made holds nothing and the request fails, so no review of a search by image with a face
    exists without its crop."""
    probe = operation.spec.probe
    if probe is None:
        return None
    try:
        box = crops.face_box(probe, full)
    except crops.CropError:
        return None  # the answer has no probe face (e.g. no usable face in the image)
    try:
        data = image_bytes(params[probe.param])
        return await asyncio.to_thread(crops.face_crop, data, box, services.settings.engine.limits)
    except Exception as exc:
        log.exception("review crop failed", extra={"operation": operation.name})
        raise InternalServerError("Internal server error.") from exc


async def _collect(
    services: Services,
    operation: Operation,
    params: dict[str, Any],
    digest: str,
    principal: Principal,
    headers: governance_headers.Governance,
    outcome: Outcome,
) -> bytes:
    """The held response of a review, once released; while pending, the response without
    candidates again. Only the organisation that made the request, repeating the same request
    with the same governance context (``digest``: :func:`_review_digest`), can collect it. A
    held plan of an operation that writes (AssociateFaces) is applied when collected."""
    review_id = headers.review_id or ""
    review = await asyncio.to_thread(services.reviews.get, review_id)
    if review is None or review.org_id != principal.organisation.org_id:
        raise ResourceNotFoundException(f"Review {review_id} does not exist.")
    if review.operation != operation.name or not hmac.compare_digest(review.params_sha256, digest):
        raise InvalidParameterException(
            f"Review {review_id} holds the results of another request; send the same request "
            "with the same governance headers (purpose, case, authorisation, consent, camera, "
            "real-time, exigent)."
        )
    status = review.status_at(services.clock())
    outcome.review_id, outcome.review_status = review_id, status
    if status not in (RELEASED, PENDING):  # a rejected or expired review holds nothing
        raise AccessDeniedException(
            f"Review {review_id} was {status}; its results are not released."
        )
    held = json.loads(review.held_response)
    if status == RELEASED:
        if operation.apply_held is not None:
            deps = deps_for(
                services.deps,
                operation,
                principal.organisation.org_id,
                Enrolment(headers.context.consent_ref or None),
                outcome.bound,
            )
            held = to_wire(await operation.apply_held(deps, params, held))
            outcome.result = summarise(operation.spec, held)
            return protocol.encode_body(held)
        outcome.result = summarise(operation.spec, held)
        return review.held_response.encode("utf-8")
    return protocol.encode_body(enforce.withheld(operation.spec, held))


async def _authenticate(
    services: Services, request: RawRequest
) -> tuple[VerifiedCaller, Principal | None]:
    """The verified caller, and the policy principal of its key (None: the key is not
    registered to an active organisation and use case). The key's secret and its registration
    are read in one worker thread; the registration is used only once the signature verifies."""
    settings = services.settings
    signed = SignedRequest(
        method=request.method,
        path=request.path,
        query=request.query,
        headers=request.headers,
        body=request.body,
    )
    secrets: dict[str, str | None] = {}

    def lookup(access_key_id: str) -> str | None:
        return secrets.get(access_key_id)

    key_id = _claimed_key(request.headers.get("authorization", ""))
    principal: Principal | None = None
    if key_id is not None:
        secrets[key_id], principal = await asyncio.to_thread(_key_facts, services, key_id)
    caller = verify(
        signed,
        lookup,
        now=datetime.fromtimestamp(services.clock(), UTC),
        region=settings.region if settings.strict_region else None,
        max_skew=timedelta(seconds=settings.max_skew_s),
    )
    return (
        caller,
        principal if principal is not None and principal.key_id == caller.access_key_id else None,
    )


def _key_facts(services: Services, key_id: str) -> tuple[str | None, Principal | None]:
    """A claimed key's secret (None: unknown or unusable) and, for a usable key, its principal."""
    secret = services.keys.secret_for(key_id)
    return secret, services.registry.principal(key_id) if secret is not None else None


def _claimed_key(authorization: str) -> str | None:
    """The access key id the Authorization header claims (verified by ``verify``)."""
    marker = "Credential="
    start = authorization.find(marker)
    if start < 0:
        return None
    key = authorization[start + len(marker) :].split("/", 1)[0]
    return key if 0 < len(key) <= 128 else None


def _digestible(value: object) -> str:
    if isinstance(value, bytes):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    return repr(value)


def _params_digest(operation: Operation, params: dict[str, Any]) -> str:
    """A digest of the request's parameters (images by their SHA-256)."""
    material = {k: v for k, v in params.items() if k != "client_request_token"}
    text = json.dumps(material, sort_keys=True, default=_digestible)
    return hashlib.sha256(f"{operation.name}\0{text}".encode()).hexdigest()


def _review_digest(params_digest: str, context: RequestContext) -> str:
    """What a held review is bound to: the request's parameters and every governance fact the
    caller asserted (purpose, case, authorisation, consent, camera, real-time, exigent), so a
    released result is collected only under the context that was reviewed."""
    asserted = {
        "purpose": context.purpose,
        "case_ref": context.case_ref,
        "authorization_ref": context.authorization_ref,
        "authorization_issuer": context.authorization_issuer,
        "camera": context.camera,
        "consent_ref": context.consent_ref,
        "realtime": context.realtime,
        "exigent": context.exigent,
    }
    text = json.dumps(asserted, sort_keys=True)
    return hashlib.sha256(f"{params_digest}\0{text}".encode()).hexdigest()


async def _recall(
    services: Services,
    operation: Operation,
    params: dict[str, Any],
    digest: str,
    scope: TokenScope,
) -> bytes | None:
    """The stored response to the same ClientRequestToken in the same scope (organisation and
    collection identity), within its validity window."""
    token = params.get("client_request_token")
    if not operation.spec.idempotent_token or token is None:
        return None
    stored = await asyncio.to_thread(
        services.deps.idempotency.recall, scope, operation.name, token, digest, services.clock()
    )
    return None if stored is None else stored.encode("utf-8")


async def _remember(
    services: Services,
    operation: Operation,
    params: dict[str, Any],
    digest: str,
    body: bytes,
    scope: TokenScope,
) -> None:
    token = params.get("client_request_token")
    if operation.spec.idempotent_token and token is not None:
        await asyncio.to_thread(
            services.deps.idempotency.remember,
            scope,
            operation.name,
            token,
            digest,
            body.decode("utf-8"),
            services.clock(),
        )


def _record(services: Services, outcome: Outcome) -> None:
    elapsed = time.perf_counter() - outcome.started
    services.metrics.requests.labels(outcome.operation, outcome.code).inc()
    services.metrics.latency.labels(outcome.operation).observe(elapsed)
    log.info(
        "request",
        extra={
            "request_id": outcome.request_id,
            "operation": outcome.operation,
            "access_key_id": outcome.access_key_id,
            "org_id": outcome.org_id,
            "code": outcome.code,
            "decision_id": outcome.decision.decision_id if outcome.decision else None,
            "policy_ids": list(outcome.decision.policy_ids) if outcome.decision else None,
            "review_id": outcome.review_id,
            "client_address": outcome.client_address,
            "latency_ms": round(elapsed * 1000.0, 2),
        },
    )
