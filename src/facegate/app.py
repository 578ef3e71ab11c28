"""The ASGI application: ``POST /`` (Rekognition API), ``GET /healthz``, ``GET /metrics``,
``GET /transparency`` (public: what Similarity values mean, the deployment gate, the policies in
force; JSON, or HTML for ``?format=html`` or a browser's ``Accept``), and the admin API under
``/admin`` (:mod:`facegate.admin.routes`) and the operator console under ``/console``
(:mod:`facegate.console.routes`); its lifespan runs the retention and
review sweeper (:mod:`facegate.admin.sweeper`).

Every request's client address (``request.client``) is the TCP peer, or, from a proxy named in
``FACEGATE_TRUSTED_PROXIES``, the address it forwarded (:mod:`facegate.wire.peers`).

Request bodies are bounded (step 1 of the request path, numbered in :mod:`facegate.pipeline`):
a ``Content-Length`` above the limit is refused before the body is read, and a body streamed
without one is cut off at the limit. Every route's body also has a deadline and a share of the
server's budget of bodies being read at once (:class:`facegate.bodies.BodyGuard`, around the
whole app). Steps 2-14 are :func:`facegate.pipeline.handle`'s.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from facegate import __version__
from facegate.admin.routes import admin_not_found, admin_routes
from facegate.admin.sweeper import sweeping
from facegate.audit.record import EventRecord
from facegate.bodies import BodyGuard, read_bounded
from facegate.console.routes import console_routes
from facegate.errors import FacegateError
from facegate.health import HealthCheck
from facegate.limits import BodyBudget
from facegate.pipeline import RawRequest, RawResponse, handle
from facegate.services import Services
from facegate.transparency import render_html, transparency_document
from facegate.wire import protocol
from facegate.wire.peers import TrustedProxies, TrustedProxyMiddleware, client_address


def startup_event(services: Services) -> EventRecord:
    """The start-up record: version, model, and the exact policy set now in force (its packs
    and a SHA-256 over every policy's id and text, so any change of policy is visible)."""
    digest = hashlib.sha256()
    for info in services.policy.policies():
        digest.update(f"{info.policy_id}\0{info.text}\0".encode())
    return EventRecord(
        at=services.clock(),
        kind="startup",
        action="server.start",
        actor="server",
        details={
            "version": __version__,
            "face_model_version": services.engine.model_version,
            "similarity_model": services.deps.matcher.version,
            "policy_packs": list(services.policy.packs),
            "policy_ids": [info.policy_id for info in services.policy.policies()],
            "policy_set_sha256": digest.hexdigest(),
        },
    )


def create_app(services: Services, *, close_on_shutdown: bool = False) -> Starlette:
    """The app over an already opened service graph. The caller owns its lifetime unless
    ``close_on_shutdown``: then the app's shutdown closes it (``facegate serve`` does this, because
    uvicorn ends the process with the signal it caught once shutdown completes, and code after
    ``Server.run()`` would never run)."""

    trusted = TrustedProxies.parse(services.settings.trusted_proxies)

    async def rekognition(request: Request) -> Response:
        # 1 the body, bounded before the pipeline (steps 2-14: pipeline.handle)
        try:
            body = await read_bounded(request, services.settings.max_body_bytes)
        except FacegateError as exc:  # too large, too slow (BodyGuard), over the body budget
            return Response(
                protocol.error_body(exc),
                status_code=exc.http_status,
                media_type=protocol.CONTENT_TYPE,
                headers={"connection": "close"},
            )
        raw = RawRequest(
            method=request.method,
            path=request.scope.get("raw_path", b"/").decode("latin-1").split("?", 1)[0] or "/",
            query=request.scope.get("query_string", b"").decode("latin-1"),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            client_address=client_address(request.scope),
        )
        result: RawResponse = await handle(services, raw)
        return Response(result.body, status_code=result.status, headers=result.headers)

    health = HealthCheck(services)

    async def healthz(_: Request) -> Response:  # 503 while requests would fail (health.py)
        status, doc = await health.check()
        return JSONResponse(doc, status_code=status)

    async def transparency(request: Request) -> Response:
        doc = await asyncio.to_thread(transparency_document, services)
        wants_html = request.query_params.get("format") == "html" or (
            "format" not in request.query_params
            and "text/html" in request.headers.get("accept", "")
        )
        if wants_html:
            return HTMLResponse(render_html(doc))
        return JSONResponse(doc)

    async def metrics(_: Request) -> Response:
        return Response(services.metrics.exposition(), media_type="text/plain; version=0.0.4")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(services.record, startup_event(services))
        try:
            async with sweeping(services):  # retention and review deadlines; stops before close
                yield
        finally:
            await asyncio.to_thread(
                services.record,
                EventRecord(
                    at=services.clock(), kind="shutdown", action="server.stop", actor="server"
                ),
            )
            if close_on_shutdown:
                services.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path == "/admin" or request.url.path.startswith("/admin/"):
            return await admin_not_found(request)
        if isinstance(exc, HTTPException):  # as Starlette's own handler answers it
            return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
        return PlainTextResponse("Not Found", status_code=404)

    settings = services.settings
    budget = BodyBudget(settings.body_budget_bytes, settings.body_client_bytes)
    services.metrics.body_bytes_reading.set_function(lambda: budget.held_bytes)
    guard = Middleware(
        BodyGuard,
        budget=budget,
        timeout_s=settings.body_timeout_s,
        refused=lambda reason: services.metrics.body_refusals.labels(reason).inc(),
    )
    return Starlette(
        # outermost first: the client address every route sees (the TCP peer, or what a trusted
        # proxy says), then the body guard, whose per-address budget uses that address
        middleware=[Middleware(TrustedProxyMiddleware, trusted=trusted), guard],
        routes=[
            Route("/", rekognition, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/transparency", transparency, methods=["GET"]),
            Mount("/admin", routes=admin_routes(services)),
            Mount("/console", routes=console_routes(services)),
        ],
        lifespan=lifespan,
        # Starlette's path patterns do not match a newline, so a path like /admin/orgs/a%0A/x
        # misses every route, the admin mount's catch-all included: answer it as that would.
        exception_handlers={404: not_found},
    )
