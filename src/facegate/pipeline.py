"""The request path, readable top to bottom: the one module that knows the order of the steps.

One numbering, used here, in the code's comments and in ARCHITECTURE.md ("The request path"):

 1 app.py, bodies.py   the body: a Content-Length above the limit is refused before it is read,
                       a streamed body is cut off at the limit (RequestEntityTooLarge), and every
                       body has a deadline and a share of the server's body budget (Throttling);
                       refused before this module runs
 2 wire/sigv4          authenticate: the client address's bucket of failed authentications
                       (facegate.refusals), then SigV4 with the claimed key's secret, read in one
                       worker thread with the key's registration
 3 limits              admit: the key's request rate (ProvisionedThroughputExceeded), then the
                       server's requests in flight (Throttling); both refuse at once, never queue
 4 governance          the principal: the key's active organisation and use case (not
                       registered -> AccessDenied)
 5 ops/registry        the operation X-Amz-Target names (unknown -> UnknownOperation: fail
                       closed), before the body is parsed
 6 wire/protocol       decode: the JSON body (wire/jsonin), validated against botocore's model
                       (wire/shapes); the X-Facegate-* headers (wire/context) -> RequestContext,
                       with the facial attributes the parameters ask for
 7 policy              decide: the collection resolved once in the caller's organisation and
                       bound to the request; the deployment gate (identification, on the
                       collection's own model); the Cedar decision, stored; deny ->
                       AccessDenied with its id. What was admitted is one frozen ``Admitted``;
                       from here the first store write puts the request's intent on record
 8 store/reviews       collect: a request naming a review (X-Facegate-Review) gets the held
                       answer once released (a held plan is applied then), the withheld one while
                       pending; steps 9-11 do not run
 9 store/idempotency   replay: under a lock per ClientRequestToken, the stored answer to the same
                       token, parameters and collection is answered again
10 enforce, ops/*      work: hold for review decided first (whatever the result); obligations on
                       the parameters (threshold raised, candidates capped, attributes dropped);
                       the work (engine in worker processes, store in threads); a 1:N search's
                       own estimate of its false candidates
11 enforce, reviews    obligations on the answer: cap, redact; a held answer is stored for review
                       (with the probe's face crop) and the caller gets it without candidates
12 wire/protocol       encode the answer; remember it for its ClientRequestToken (step 9)
13 wire/protocol       respond: the status, the modelled error, x-amzn-RequestId and the
                       x-facegate-* headers (decision, review, threshold, false candidates)
14 audit               record: the request's record appended and fsynced, fail closed (its
                       decision is already stored at step 7, its intent before its first store
                       write); a refusal at step 2 is counted, not recorded one by one
                       (facegate.refusals); metrics and the log line

Every failure becomes a ``FacegateError`` with Rekognition's code; anything unexpected becomes an
``InternalServerError`` whose details go to the log, never to the caller.

Each step is a function whose docstring names its number; it returns a value (``Decoded``,
the frozen ``Admitted``, ``Collected``, ``Plan``, ``Scale``, ``Estimated``) and writes nothing.
The request's ``Outcome`` (what it did, for steps 13 and 14) is owned by :func:`handle` and
written only by the functions that run the steps in order (``handle``, ``_serve``,
``_admitted``, ``_answer``) and by step 7's worker thread, each fact as soon as it is known, so
that a request failing part-way is recorded with what was known.
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
from facegate.audit.record import ResultSummary
from facegate.engine.matching import read_promise
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
from facegate.ops.common import Bound, Enrolment, OpDeps, image_bytes, token_scope
from facegate.ops.estimates import TAIL, FalseCandidates
from facegate.ops.registry import OPERATIONS, Handler, Operation, deps_for
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


@dataclass(frozen=True)
class Decoded:
    """Step 6's result: the validated parameters (snake_case), the governance headers as
    parsed (the context the caller asserted, and the review being collected), the context the
    policy decides on (with the facial attributes asked for), and the time the request is
    decided at."""

    params: dict[str, Any]
    governance: governance_headers.Governance
    context: RequestContext
    now: float


@dataclass(frozen=True)
class Admitted:
    """What step 7 admitted, passed unchanged to steps 8-12: who asked (``principal``), for
    what (``operation``, ``params``), under which governance (``governance``: the headers as
    asserted; ``context``: as decided on, with the deployment gate's facts), the allowing
    ``decision`` and its obligations, the collection bound to the request (``bound``, its size
    ``collection_faces``, its descriptor model ``face_model_version``), the parameters' digest
    (for idempotency and reviews) and ``now``, the time the request was decided at."""

    principal: Principal
    operation: Operation
    params: dict[str, Any]
    governance: governance_headers.Governance
    context: RequestContext
    decision: Decision
    bound: Bound | None
    collection_faces: int | None
    face_model_version: str | None
    digest: str
    now: float

    @property
    def org_id(self) -> str:
        return self.principal.organisation.org_id

    @property
    def review_digest(self) -> str:
        """What a held review of this request is bound to (:func:`_review_digest`)."""
        return _review_digest(self.digest, self.governance.context)


@dataclass(frozen=True)
class _Decided:
    """Step 7's facts from its worker thread."""

    decision: Decision
    context: RequestContext
    bound: Bound | None
    collection_faces: int | None
    face_model_version: str | None


@dataclass(frozen=True)
class Scale:
    """The Similarity a request's numbers are on (None: its collection's model cannot be scored
    here), with the descriptor model and Similarity versions the audit record names."""

    similarity: SimilarityModel | None
    face_model_version: str | None
    similarity_version: str
    promise_version: str = ""
    """The promise curve the size-aware bound and expected false candidates use ("": the
    nominal scale)."""


@dataclass(frozen=True)
class Estimated:
    """The outcome's false-candidate figures once a 1:N search has made its own estimate."""

    method: str
    threshold_raised_to: float | None
    threshold_requested_pct: float | None
    expected: float | None
    calibrated: float | None = None
    tail: float | None = None


@dataclass(frozen=True)
class Plan:
    """Step 10's plan: whether the answer is held for review, the Similarity the numbers are on
    (face comparisons only), what the obligations changed in the parameters, the search's own
    false-candidate estimate (filled in by the work), and the work with what it may use."""

    held: bool
    scale: Scale | None
    applied: enforce.Applied
    estimate: FalseCandidates | None
    deps: OpDeps
    work: Handler


@dataclass(frozen=True)
class Collected:
    """Step 8's answer, and the summary of a released result for the audit record."""

    body: bytes
    result: ResultSummary | None = None


async def handle(services: Services, request: RawRequest) -> RawResponse:
    """Serve one Rekognition API request (steps 2-14; step 1 is the HTTP layer's), and write
    its audit record (fail closed: a request whose record cannot be written answers
    InternalServerError)."""
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
            body = await _serve(services, request, outcome)  # 2-12
        response = RawResponse(200, body)
    except FacegateError as exc:
        outcome.code = exc.code
        response = RawResponse(exc.http_status, protocol.error_body(exc))
    except Exception:
        log.exception("internal error", extra={"request_id": outcome.request_id})
        error = InternalServerError("Internal server error.")
        outcome.code = error.code
        response = RawResponse(error.http_status, protocol.error_body(error))
    # 13 respond
    response.headers.update(_response_headers(outcome))
    # 14 record: a refusal at step 2 is counted (on record with the next aggregate:
    # facegate.refusals); any other request's record is appended and fsynced, fail closed
    if outcome.unauthenticated:
        reason = THROTTLED if outcome.code == ThrottlingException.code else outcome.code
        services.refusals.count(request.client_address, outcome.access_key_id or "", reason)
    else:
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
    _observe(services, outcome)
    return response


async def _serve(services: Services, request: RawRequest, outcome: Outcome) -> bytes:
    """Steps 2-12: the answer's body, or a ``FacegateError``."""
    # 2 authenticate (a refused request is counted with the key it claimed, so attempts on a
    # key show in the audit trail: facegate.refusals)
    outcome.access_key_id = _claimed_key(request.headers.get("authorization", ""))
    try:
        caller, principal = await _authenticate(services, request)
    except FacegateError:
        outcome.unauthenticated = True
        raise
    outcome.access_key_id = caller.access_key_id
    _admit(services, caller)  # 3
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
    """Steps 4-12 for an authenticated, admitted request."""
    registered = _principal(principal)  # 4
    outcome.org_id, outcome.principal = registered.organisation.org_id, registered
    # 5 the operation, named before it is looked up (an unknown one is recorded by its name)
    outcome.operation = protocol.operation_from_target(request.headers.get("x-amz-target"))
    operation = _operation(services, outcome.operation)
    # 6 decode: the body, then the governance headers
    params = _decode(services, operation, request.body)
    outcome.inputs = input_hashes(operation.spec, params)
    decoded = _governance(services, request, caller, registered, operation, params)
    outcome.attributes_requested = decoded.context.attributes
    admitted = await _decide(services, registered, operation, decoded, outcome)  # 7
    if admitted.governance.review_id is not None:
        # 8 collect a review
        review_id = admitted.governance.review_id
        review, status = await _review(services, admitted, review_id)
        outcome.review_id, outcome.review_status = review_id, status
        collected = await _collect(services, admitted, review, status)
        if collected.result is not None:
            outcome.result = collected.result
        return collected.body
    token = admitted.params.get("client_request_token") if operation.spec.idempotent_token else None
    if token is None:
        return await _answer(services, admitted, outcome)  # 9-12
    key = f"{operation.name}\0{admitted.org_id}\0{token}"
    async with services.token_locks.hold(key):  # 9: one request per token at a time
        return await _answer(services, admitted, outcome)  # 9-12


# 2 authenticate


async def _authenticate(
    services: Services, request: RawRequest
) -> tuple[VerifiedCaller, Principal | None]:
    """Step 2: the verified caller and its key's principal (None: not registered; refused at
    step 4). An address over its bucket of failed authentications is refused before its
    signature is checked or its key looked up (facegate.refusals)."""
    if not services.refusals.admit(request.client_address):
        raise ThrottlingException("Too many failed authentications from this address; retry later.")
    return await _verify_signature(services, request)


async def _verify_signature(
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
    key_secrets: dict[str, str | None] = {}

    def lookup(access_key_id: str) -> str | None:
        return key_secrets.get(access_key_id)

    key_id = _claimed_key(request.headers.get("authorization", ""))
    principal: Principal | None = None
    if key_id is not None:
        key_secrets[key_id], principal = await asyncio.to_thread(_key_facts, services, key_id)
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


# 3 admit


def _admit(services: Services, caller: VerifiedCaller) -> None:
    """Step 3: the key's rate, then a place among the server's requests in flight
    (facegate.limits); both refuse at once rather than queue. On return the request holds a
    place, which the caller must leave (``services.admission.leave``)."""
    if not services.limiter.allow(caller.access_key_id):
        raise ProvisionedThroughputExceededException(
            "The request rate of this access key exceeds its limit; slow down and retry."
        )
    if not services.admission.try_enter():
        raise ThrottlingException("The server is at capacity; retry later.")


# 4 the principal


def _principal(principal: Principal | None) -> Principal:
    """Step 4: the key's organisation and use case (read at step 2 with its secret)."""
    if principal is None:
        raise AccessDeniedException(
            "The access key is not registered to an active organisation and use case."
        )
    return principal


# 5 the operation


def _operation(services: Services, name: str) -> Operation:
    """Step 5: the operation X-Amz-Target names, if facegate serves it (fail closed)."""
    operation = OPERATIONS.get(name)
    if operation is None or name not in services.model.operation_names():
        raise UnknownOperationException(f"facegate does not serve the operation {name}.")
    return operation


# 6 decode


def _decode(services: Services, operation: Operation, body: bytes) -> dict[str, Any]:
    """Step 6, the body: decoded (wire/jsonin) and validated against botocore's model; the
    parameters in snake_case."""
    raw = protocol.decode_body(body)
    return request_kwargs(services.model.validate_input(operation.name, raw))


def _governance(
    services: Services,
    request: RawRequest,
    caller: VerifiedCaller,
    principal: Principal,
    operation: Operation,
    params: dict[str, Any],
) -> Decoded:
    """Step 6, the headers: the governance context (signed X-Facegate-* headers, defaulting to
    the key's registration), with the facial attributes the parameters ask for."""
    now = services.clock()
    governance = governance_headers.parse(
        request.headers,
        key_use_case=principal.use_case,
        now=datetime.fromtimestamp(now, UTC),
        signed=caller.signed_headers,
    )
    context = governance.context
    attributes_param = operation.spec.attributes_param
    if attributes_param is not None:
        # the facial attributes asked for are a capability policies decide (context.attributes)
        context = replace(
            context,
            attributes=requested_attributes(params.get(attributes_param)),
            attributes_named=named_attributes(params.get(attributes_param)),
        )
    return Decoded(params, governance, context, now)


# 7 decide


async def _decide(
    services: Services,
    principal: Principal,
    operation: Operation,
    decoded: Decoded,
    outcome: Outcome,
) -> Admitted:
    """Step 7: the collection, the gate, the decision and its stored row, in one worker thread
    (one hop from the event loop instead of three); a denial is refused with its id. From here
    on, the first store write puts the intent on record first."""
    decided = await asyncio.to_thread(
        _decide_blocking, services, principal, operation, decoded, outcome
    )
    decision = decided.decision
    if not decision.allowed:
        told = " ".join(services.policy.caller_reasons(decision))
        raise AccessDeniedException(
            f"Access denied by policy (decision {decision.decision_id})."
            + (f" {told}" if told else "")
        )
    intent.arm()
    return Admitted(
        principal=principal,
        operation=operation,
        params=decoded.params,
        governance=decoded.governance,
        context=decided.context,
        decision=decision,
        bound=decided.bound,
        collection_faces=decided.collection_faces,
        face_model_version=decided.face_model_version,
        digest=_params_digest(operation, decoded.params),
        now=decoded.now,
    )


def _decide_blocking(
    services: Services,
    principal: Principal,
    operation: Operation,
    decoded: Decoded,
    outcome: Outcome,
) -> _Decided:
    """Step 7, blocking (run in a worker thread): the collection resolved and bound, the
    deployment gate for identification (on the collection's own model), the Cedar decision, and
    the decision stored. ``outcome`` records each as it is known, so a failure part-way is
    audited with what was known."""
    resource, bound = _resource(services, operation, decoded.params, principal)
    outcome.bound = bound
    bound_record = bound.record if bound is not None else None
    face_model_version = bound_record.face_model_version if bound_record is not None else None
    outcome.face_model_version = face_model_version
    context = decoded.context
    if operation.spec.identification:
        # the deployment gate: the registered bias audit of the collection's own model (and
        # Similarity), read per request so a registration by the CLI applies at once (other
        # actions keep false/false: only the gate reads these, and only for identification)
        gate = services.gate_status(face_model_version)
        context = replace(
            context,
            model_audit_registered=gate.registered,
            model_audit_within_bounds=gate.within_bounds,
        )
    outcome.context = context
    outcome.collection_id = resource.collection_id if resource is not None else ""
    collection_faces = resource.face_count if resource is not None else None
    outcome.collection_faces = collection_faces
    decision = services.policy.decide(PolicyRequest(principal, operation.name, resource, context))
    outcome.decision = decision
    _store_decision(services, decision, principal, operation, resource, context, decoded.now)
    return _Decided(decision, context, bound, collection_faces, face_model_version)


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


# 8 collect a review


async def _review(
    services: Services, admitted: Admitted, review_id: str
) -> tuple[ReviewRecord, str]:
    """Step 8, the review and its status now. Only the organisation that made the request,
    repeating the same request with the same governance context (:func:`_review_digest`), can
    collect it."""
    review = await asyncio.to_thread(services.reviews.get, review_id)
    if review is None or review.org_id != admitted.org_id:
        raise ResourceNotFoundException(f"Review {review_id} does not exist.")
    if review.operation != admitted.operation.name or not hmac.compare_digest(
        review.params_sha256, admitted.review_digest
    ):
        raise InvalidParameterException(
            f"Review {review_id} holds the results of another request; send the same request "
            "with the same governance headers (purpose, case, authorisation, consent, camera, "
            "real-time, exigent)."
        )
    return review, review.status_at(services.clock())


async def _collect(
    services: Services, admitted: Admitted, review: ReviewRecord, status: str
) -> Collected:
    """Step 8, the answer: the held response of a released review; while pending, the response
    without candidates again; a rejected or expired review holds nothing. A held plan of an
    operation that writes (AssociateFaces) is applied when collected."""
    operation = admitted.operation
    if status not in (RELEASED, PENDING):
        raise AccessDeniedException(
            f"Review {review.review_id} was {status}; its results are not released."
        )
    held = json.loads(review.held_response)
    if status == PENDING:
        return Collected(protocol.encode_body(enforce.withheld(operation.spec, held)))
    if operation.apply_held is None:
        return Collected(review.held_response.encode("utf-8"), summarise(operation.spec, held))
    deps = deps_for(
        services.deps,
        operation,
        admitted.org_id,
        Enrolment(admitted.governance.context.consent_ref or None),
        admitted.bound,
    )
    applied = to_wire(await operation.apply_held(deps, admitted.params, held))
    return Collected(protocol.encode_body(applied), summarise(operation.spec, applied))


# 9-12 answer


async def _answer(services: Services, admitted: Admitted, outcome: Outcome) -> bytes:
    """Steps 9-12: replay a stored idempotent answer, or work, apply the obligations on the
    answer, encode it and remember it for its token. Each fact goes on the outcome as soon as
    it is known, so a request that fails later is recorded with it."""
    scope = token_scope(admitted.org_id, admitted.bound)
    replay = await _recall(services, admitted, scope)  # 9
    if replay is not None:
        return replay
    # 10 work: held or not, the obligations on the parameters, then the work
    plan = _plan(services, admitted)
    if plan.scale is not None:
        outcome.face_model_version = plan.scale.face_model_version
        outcome.similarity_version = plan.scale.similarity_version
        outcome.promise_version = plan.scale.promise_version
    outcome.expected_false_candidates = plan.applied.expected_false_candidates
    outcome.threshold_raised_to = plan.applied.threshold_raised_to
    outcome.threshold_requested_pct = plan.applied.threshold_requested_pct
    outcome.attributes_dropped = plan.applied.attributes_dropped
    full = to_wire(await plan.work(plan.deps, admitted.params))
    if plan.estimate is not None:
        estimated = _estimated(plan.applied, plan.estimate, plan.scale)
        outcome.false_candidate_method = estimated.method
        outcome.threshold_raised_to = estimated.threshold_raised_to
        outcome.threshold_requested_pct = estimated.threshold_requested_pct
        outcome.expected_false_candidates = estimated.expected
        outcome.expected_false_candidates_calibrated = estimated.calibrated
        outcome.expected_false_candidates_tail = estimated.tail
    # 11 obligations on the answer; human review holds it whole
    spec = admitted.operation.spec
    wire = enforce.after(spec, full, admitted.decision.obligations)
    outcome.result = summarise(spec, wire, held=plan.held)
    if admitted.context.attributes:
        _count_attributes(
            services,
            outcome.request_id,
            admitted.context.attributes,
            plan.applied.attributes_dropped,
            wire,
        )
    if plan.held:
        crop = await _probe_crop(services, admitted.operation, admitted.params, full)
        outcome.review_id = await _hold(services, admitted, wire, crop)
        outcome.review_status = PENDING
        wire = enforce.withheld(spec, wire)
    body = protocol.encode_body(wire)  # 12
    await _remember(services, admitted, body, scope)
    return body


# 9 replay


async def _recall(services: Services, admitted: Admitted, scope: TokenScope) -> bytes | None:
    """Step 9: the stored response to the same ClientRequestToken in the same scope
    (organisation and collection identity), within its validity window."""
    operation, params = admitted.operation, admitted.params
    token = params.get("client_request_token")
    if not operation.spec.idempotent_token or token is None:
        return None
    stored = await asyncio.to_thread(
        services.deps.idempotency.recall,
        scope,
        operation.name,
        token,
        admitted.digest,
        services.clock(),
    )
    return None if stored is None else stored.encode("utf-8")


# 10 work


def _plan(services: Services, admitted: Admitted) -> Plan:
    """Step 10, before the work: whether the answer is held for human review (decided before
    the work, whatever its result, so that being held says nothing about a match; an operation
    that writes what it compares is planned, its plan applied only when a released review is
    collected), the parameters under the obligations, and what the work may use."""
    operation, obligations = admitted.operation, admitted.decision.obligations
    spec = operation.spec
    held = enforce.must_hold(spec, obligations)
    if held and not operation.holdable:
        raise AccessDeniedException(
            f"{operation.name} cannot be held for the human review this request needs."
        )
    scale = _similarity(services, admitted.face_model_version) if spec.compares_faces else None
    applied = enforce.before(
        spec,
        admitted.params,
        obligations,
        collection_faces=admitted.collection_faces,
        similarity=scale.similarity if scale is not None else services.deps.matcher.similarity,
    )
    estimate = (
        FalseCandidates(bound=obligations.max_expected_false_candidates)
        if spec.identification and admitted.collection_faces is not None
        else None
    )
    retain_until = (
        admitted.now + obligations.retention_days * 86400.0
        if obligations.retention_days is not None
        else None
    )
    deps = deps_for(
        services.deps,
        operation,
        admitted.org_id,
        Enrolment(admitted.governance.context.consent_ref or None, retain_until),
        admitted.bound,
        estimate,
    )
    work = operation.plan if held and operation.plan is not None else operation.handler
    return Plan(held, scale, applied, estimate, deps, work)


def _similarity(services: Services, version: str | None) -> Scale:
    """The Similarity the request's numbers are on: its collection's model's (``version``;
    None: that model cannot be scored here, so the size-aware bound closes and the search
    itself is refused), or the default model's."""
    matcher = services.deps.matcher
    if version is not None and services.deps.matchers is not None:
        try:
            matcher = services.deps.matchers.for_model(version)
        except (KeyError, ValueError):
            return Scale(None, version, "")
    return Scale(
        matcher.similarity,
        version or services.active_model[0],
        matcher.version,
        read_promise(matcher) or "",
    )


def _estimated(
    applied: enforce.Applied, estimate: FalseCandidates, scale: Scale | None
) -> Estimated:
    """What the search's own estimate makes of the outcome's false-candidate figures: the
    threshold its tail raised the search to (reported like any raised threshold), and the
    expected false candidates as the larger of the calibrated rate and the tail's at that
    threshold. When the collection was too small to fit, the calibrated rate alone stands
    (``applied``'s figures), marked so."""
    if estimate.method != TAIL:
        return Estimated(
            estimate.method,
            applied.threshold_raised_to,
            applied.threshold_requested_pct,
            applied.expected_false_candidates,
        )
    final = estimate.raised_to_pct
    raised, requested = applied.threshold_raised_to, applied.threshold_requested_pct
    if final is not None:
        raised = final
        requested = applied.threshold_requested_pct
        if requested is None:
            requested = applied.threshold_pct
    threshold = final if final is not None else applied.threshold_pct
    similarity = scale.similarity if scale is not None else None
    fmr = similarity.fmr_at(threshold) if similarity and threshold is not None else None
    calibrated = None if fmr is None else estimate.faces * fmr
    tail = estimate.tail_expected or 0.0
    return Estimated(
        method=estimate.method,
        threshold_raised_to=raised,
        threshold_requested_pct=requested,
        expected=tail if calibrated is None else max(calibrated, tail),
        calibrated=calibrated,
        tail=estimate.tail_expected,
    )


# 11 obligations on the answer


def _count_attributes(
    services: Services,
    request_id: str,
    requested: frozenset[str],
    dropped: frozenset[str],
    wire: dict[str, Any],
) -> None:
    """Count what became of each facial attribute asked for (metric
    ``facegate_face_attributes``), and log those asked for but estimated for no face although
    faces were found: not available in this server (docs/attributes.md lists what it
    estimates), or no face allowed an estimate. Rekognition's answer has no member for that,
    so the caller sees the attribute omitted."""
    inferred = set(attributes_in(wire))
    faces = len(face_details(wire))
    missing = []
    for attribute in sorted(requested):
        if attribute in dropped:
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
            extra={"request_id": request_id, "attributes": missing},
        )


async def _hold(
    services: Services, admitted: Admitted, wire: dict[str, Any], crop: bytes | None
) -> str:
    """Keep the full response for review, with the probe's face crop (stored encrypted in the
    review's own transaction); returns the review id the caller collects it with (header
    X-Facegate-Review, step 8) once enough reviewers confirm. The review is bound to the
    request's parameters and governance context (:func:`_review_digest`)."""
    decision, principal, now = admitted.decision, admitted.principal, admitted.now
    review = ReviewRecord(
        review_id="rev-" + secrets.token_hex(10),
        decision_id=decision.decision_id,
        operation=admitted.operation.name,
        access_key_id=principal.key_id,
        org_id=principal.organisation.org_id,
        params_sha256=admitted.review_digest,
        reviewers_required=decision.obligations.reviewers_required,
        status=PENDING,
        held_response=protocol.encode_body(wire).decode("utf-8"),
        candidates=enforce.candidates(admitted.operation.spec, wire),
        created_at=now,
        expires_at=now + services.settings.review_ttl_s,
    )
    await asyncio.to_thread(services.reviews.insert, review, crop)
    await asyncio.to_thread(services.decisions.set_review, decision.decision_id, review.review_id)
    return review.review_id


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


# 12 encode and remember


async def _remember(services: Services, admitted: Admitted, body: bytes, scope: TokenScope) -> None:
    """Step 12: the answer kept for its ClientRequestToken (replayed at step 9)."""
    operation = admitted.operation
    token = admitted.params.get("client_request_token")
    if operation.spec.idempotent_token and token is not None:
        await asyncio.to_thread(
            services.deps.idempotency.remember,
            scope,
            operation.name,
            token,
            admitted.digest,
            body.decode("utf-8"),
            services.clock(),
        )


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


# 13 respond


def _response_headers(outcome: Outcome) -> dict[str, str]:
    """Step 13: the headers of every answer, success or error."""
    headers = {"x-amzn-RequestId": outcome.request_id, "content-type": protocol.CONTENT_TYPE}
    if outcome.decision is not None:
        headers["x-facegate-decision-id"] = outcome.decision.decision_id
    if outcome.expected_false_candidates is not None:
        headers["x-facegate-expected-false-candidates"] = f"{outcome.expected_false_candidates:.6g}"
    if outcome.false_candidate_method:
        headers["x-facegate-false-candidate-estimate"] = outcome.false_candidate_method
    if outcome.expected_false_candidates_tail is not None:
        headers["x-facegate-expected-false-candidates-tail"] = (
            f"{outcome.expected_false_candidates_tail:.6g}"
        )
    if outcome.threshold_raised_to is not None:
        headers["x-facegate-threshold-raised-to"] = f"{outcome.threshold_raised_to:.6g}"
        if outcome.threshold_requested_pct is not None:
            headers["x-facegate-threshold-requested"] = f"{outcome.threshold_requested_pct:.6g}"
    if outcome.review_id is not None:
        headers["x-facegate-review-id"] = outcome.review_id
        headers["x-facegate-review-status"] = outcome.review_status or PENDING
    return headers


# 14 record


def _observe(services: Services, outcome: Outcome) -> None:
    """Step 14, after the record: the request's metrics and log line."""
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
