"""The admin API's HTTP layer (Starlette), mounted under ``/admin`` by :mod:`facegate.app`.

JSON in and out. Every endpoint but ``GET /admin/openapi.json`` needs
``Authorization: Bearer <operator token>`` (:mod:`facegate.admin.auth`) and a role
(:data:`facegate.admin.handlers.ENDPOINTS`). Request bodies are bounded (64 KiB; 16 MiB for a
bias audit report, ``POST /admin/model-audits``; refused from
``Content-Length`` before reading and cut off when streamed); bodies and query strings are
checked field by field (:mod:`facegate.admin.fields`).

Errors are ``{"error": "<one line>", "code": "<FacegateError code>"}`` with the status of
:func:`http_status`: 400 bad field / JSON, 401 missing or unknown token, 403 wrong role,
404 unknown id or path, 405 method, 409 already exists or conflicting state, 413 body too large,
408 body too slow, 503 server busy (``facegate.bodies``),
500 anything unexpected (details in the log only). Every response carries
``Cache-Control: no-store`` (some carry a secret shown once).

Each request is logged (``facegate.admin``): method, path, operator id and status, with the
client address (:mod:`facegate.wire.peers`: the TCP peer unless it is a trusted proxy) as a
field; never a body, a token or a secret.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from facegate.admin.auth import authenticate, bearer_token, require_role
from facegate.admin.endpoint import Call, Endpoint, Reply
from facegate.admin.handlers import ENDPOINTS
from facegate.admin.service import AdminService, over_services
from facegate.bodies import read_bounded
from facegate.errors import (
    AccessDeniedException,
    ConflictException,
    FacegateError,
    InternalServerError,
    InvalidParameterException,
    MissingAuthenticationTokenException,
    RequestEntityTooLargeException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    SerializationException,
    UnrecognizedClientException,
)
from facegate.services import Services
from facegate.store.operators import OperatorRecord, OperatorRepository
from facegate.wire import jsonin
from facegate.wire.peers import client_address

MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 64
"""The deepest JSON body accepted (a bias audit report nests about six levels)."""
# Routes accept every common method and answer the ones an endpoint lacks with a JSON 405.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
NO_STORE = {"cache-control": "no-store"}
log = logging.getLogger("facegate.admin")


def http_status(exc: FacegateError) -> int:
    """The admin API's status for an error (the Rekognition wire uses its own statuses)."""
    if isinstance(exc, MissingAuthenticationTokenException | UnrecognizedClientException):
        return 401
    if isinstance(exc, AccessDeniedException):
        return 403
    if isinstance(exc, ResourceNotFoundException):
        return 404
    if isinstance(exc, ResourceAlreadyExistsException | ConflictException):
        return 409
    if isinstance(exc, RequestEntityTooLargeException):
        return 413
    if exc.http_status in (408, 503):  # a body too slow, or over the body budget (bodies.py)
        return exc.http_status
    if isinstance(exc, InternalServerError):
        return 500
    return 400 if 400 <= exc.http_status < 500 else 500


def error_response(exc: FacegateError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    status = http_status(exc)
    message = exc.message if status != 500 else "Internal server error."
    extra = {"www-authenticate": "Bearer"} if status == 401 else {}
    return JSONResponse(
        {"error": " ".join(message.split()), "code": exc.code},
        status_code=status,
        headers={**NO_STORE, **extra, **(headers or {})},
    )


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> object | None:
    """The request's JSON body (None when empty), at most ``limit`` bytes."""
    raw = await read_bounded(request, limit)
    if not raw.strip():
        return None
    return decode_json(raw)


def decode_json(raw: bytes) -> object:
    """A request body as strict JSON (:func:`facegate.wire.jsonin.loads`: UTF-8, bounded number
    literals, no NaN/Infinity, no unpaired surrogates, at most :data:`MAX_JSON_DEPTH` levels);
    ``SerializationException`` (400) naming the problem otherwise."""
    try:
        return jsonin.loads(raw, max_depth=MAX_JSON_DEPTH)
    except jsonin.InvalidJson as exc:
        raise SerializationException(f"The request body is not valid JSON: {exc}.") from None


def _check_query(endpoint: Endpoint, query: Mapping[str, str]) -> None:
    unknown = sorted(set(query) - set(endpoint.query_names))
    if unknown:
        known = ", ".join(endpoint.query_names) or "none"
        raise InvalidParameterException(
            f"Unknown query parameter {unknown[0]!r} (known here: {known})."
        )


class _PathRoutes:
    """The endpoints of one path, dispatched by method (a JSON 405 for the others)."""

    def __init__(
        self, admin: AdminService, operators: OperatorRepository, table: dict[str, Endpoint]
    ) -> None:
        self.admin = admin
        self.operators = operators
        self.table = table

    async def handle(self, request: Request) -> Response:
        endpoint = self.table.get(request.method)
        if endpoint is None:
            allowed = ", ".join(sorted(self.table))
            return JSONResponse(
                {
                    "error": f"Method {request.method} is not allowed here (allowed: {allowed}).",
                    "code": "MethodNotAllowed",
                },
                status_code=405,
                headers={**NO_STORE, "allow": allowed},
            )
        operator: OperatorRecord | None = None
        try:
            if endpoint.roles is not None:
                token = bearer_token(request.headers.get("authorization"))
                operator = await asyncio.to_thread(authenticate, self.operators, token)
                require_role(operator, endpoint.roles, endpoint.what)
            call = await _call(request, endpoint, operator)
            admin = self.admin.as_actor(call.operator.operator_id) if call.operator else self.admin
            reply: Reply[Any] = await asyncio.to_thread(endpoint.handler, admin, call)
            response: Response = JSONResponse(reply.doc, status_code=reply.status, headers=NO_STORE)
        except FacegateError as exc:
            if http_status(exc) == 500:
                log.exception("admin request failed")
            response = error_response(exc)
        except Exception:
            log.exception("admin request failed")
            response = error_response(InternalServerError("unexpected error"))
        who = operator.operator_id if operator is not None else "-"
        log.info(
            f"admin {request.method} {request.url.path} by {who}: {response.status_code}",
            extra={"client_address": client_address(request.scope)},
        )
        return response


async def _call(request: Request, endpoint: Endpoint, operator: OperatorRecord | None) -> Call:
    query = dict(request.query_params)
    _check_query(endpoint, query)
    limit = endpoint.max_body_bytes or MAX_BODY_BYTES
    body = await read_json(request, limit) if request.method in ("POST", "PUT") else None
    return Call(operator, dict(request.path_params), query, body)


async def admin_not_found(request: Request) -> Response:
    """The admin API's JSON 404 for a path no admin endpoint serves."""
    return error_response(
        ResourceNotFoundException(
            f"No admin endpoint at {request.url.path} (see /admin/openapi.json)."
        )
    )


def admin_endpoints() -> tuple[Endpoint, ...]:
    """Every endpoint, paths relative to ``/admin`` (:data:`facegate.admin.handlers.ENDPOINTS`)."""
    return ENDPOINTS


def admin_routes(services: Services) -> list[BaseRoute]:
    """The routes to mount at ``/admin`` over ``services``."""
    admin = over_services(services)
    by_path: dict[str, dict[str, Endpoint]] = {}
    for endpoint in admin_endpoints():
        by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint
    routes: list[BaseRoute] = [
        Route(path, _PathRoutes(admin, services.operators, table).handle, methods=HTTP_METHODS)
        for path, table in by_path.items()
    ]
    routes.append(Route("/{rest:path}", admin_not_found, methods=HTTP_METHODS))
    return routes


def described(doc: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) pairs an OpenAPI document describes (for tests and checks)."""
    return {
        (method.upper(), path)
        for path, item in doc.get("paths", {}).items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    }
