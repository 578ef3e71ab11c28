"""The request path, readable top to bottom. The one module that knows the order of the steps.

1 wire/sigv4      authenticate the access key
2 wire/protocol   decode the operation and its JSON body; wire/shapes validates it against
                  botocore's service model (before any work is done)
3 ops/registry    look up the operation (unknown -> refused: fail closed)
4 policy          (the governance issue: Cedar decision; not in this build yet)
5 ops/*           the work (engine in worker processes, store in threads)
6 obligations     (the governance issue)
7 wire/protocol   encode the response or the modelled error
8 audit           (the audit issue)

Every failure becomes a ``FacegateError`` with Rekognition's code; anything unexpected becomes an
``InternalServerError`` whose details go to the log, never to the caller.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from facegate.errors import FacegateError, InternalServerError, UnknownOperationException
from facegate.ops.registry import OPERATIONS, Operation
from facegate.services import Services
from facegate.wire import protocol
from facegate.wire.names import request_kwargs, to_wire
from facegate.wire.sigv4 import SignedRequest, VerifiedCaller, verify

log = logging.getLogger("facegate.request")


@dataclass(frozen=True)
class RawRequest:
    """What the HTTP layer received. Header names are lower-case."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RawResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """What one request did (for logs and metrics; the audit record in a later issue)."""

    request_id: str
    operation: str = "-"
    access_key_id: str | None = None
    code: str = "OK"
    started: float = field(default_factory=time.perf_counter)


async def handle(services: Services, request: RawRequest) -> RawResponse:
    """Serve one Rekognition API request."""
    outcome = Outcome(request_id=str(uuid.uuid4()))
    try:
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
    _record(services, outcome)
    return response


async def _serve(services: Services, request: RawRequest, outcome: Outcome) -> bytes:
    # 1 authenticate
    caller = await _authenticate(services, request)
    outcome.access_key_id = caller.access_key_id
    # 2-3 decode and validate; look up the operation
    name = protocol.operation_from_target(request.headers.get("x-amz-target"))
    outcome.operation = name
    operation = OPERATIONS.get(name)
    if operation is None or name not in services.model.operation_names():
        raise UnknownOperationException(f"facegate does not serve the operation {name}.")
    raw = protocol.decode_body(request.body)
    params = request_kwargs(services.model.validate_input(name, raw))
    # 4-6 policy, work, obligations
    replay = await _recall(services, operation, params)
    if replay is not None:
        return replay
    result = await operation.handler(services.deps, params)
    body = protocol.encode_body(to_wire(result))
    await _remember(services, operation, params, body)
    return body


async def _authenticate(services: Services, request: RawRequest) -> VerifiedCaller:
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
    if key_id is not None:
        secrets[key_id] = await asyncio.to_thread(services.keys.secret_for, key_id)
    return verify(
        signed,
        lookup,
        now=datetime.fromtimestamp(services.clock(), UTC),
        region=settings.region if settings.strict_region else None,
        max_skew=timedelta(seconds=settings.max_skew_s),
    )


def _claimed_key(authorization: str) -> str | None:
    """The access key id the Authorization header claims (verified by ``verify``)."""
    marker = "Credential="
    start = authorization.find(marker)
    if start < 0:
        return None
    key = authorization[start + len(marker) :].split("/", 1)[0]
    return key if 0 < len(key) <= 128 else None


def _params_digest(operation: Operation, params: dict[str, Any]) -> str:
    material = {k: v for k, v in params.items() if k != "client_request_token"}
    text = json.dumps(material, sort_keys=True, default=repr)
    return hashlib.sha256(f"{operation.name}\0{text}".encode()).hexdigest()


async def _recall(services: Services, operation: Operation, params: dict[str, Any]) -> bytes | None:
    token = params.get("client_request_token")
    if not operation.idempotent_token or token is None:
        return None
    stored = await asyncio.to_thread(
        services.deps.idempotency.recall, operation.name, token, _params_digest(operation, params)
    )
    return None if stored is None else stored.encode("utf-8")


async def _remember(
    services: Services, operation: Operation, params: dict[str, Any], body: bytes
) -> None:
    token = params.get("client_request_token")
    if operation.idempotent_token and token is not None:
        await asyncio.to_thread(
            services.deps.idempotency.remember,
            operation.name,
            token,
            _params_digest(operation, params),
            body.decode("utf-8"),
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
            "code": outcome.code,
            "latency_ms": round(elapsed * 1000.0, 2),
        },
    )
