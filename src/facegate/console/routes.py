"""The console's HTTP layer: sessions, roles, CSRF, forms and rendering (pages: :mod:`.pages`).

Every page but sign-in needs a live session (:mod:`facegate.console.sessions`); without one a
GET is redirected to the sign-in page and a POST refused. Roles: ``admin`` everything;
``reviewer`` the overview and the review queue; ``auditor`` every page read-only, and may run
the decision simulator (nothing is stored), verify the audit chain and download reports. Every
POST must carry the session's CSRF token. Responses are ``Cache-Control: no-store`` with a strict
Content-Security-Policy (no inline scripts; the pages need no JavaScript).

Sign-ins, failed sign-ins, sign-outs, refused CSRF tokens and console actions are recorded in
the audit trail (kind ``console``: the operator id and client address, never a password or a
session id). Sign-in attempts refused for a bad form token or by the throttle, which anyone can
send without limit, are counted per address, operator id and reason in ``refusals`` records
instead (:mod:`facegate.refusals`). Changes made through the console are recorded by
:class:`~facegate.admin.service.AdminService` with the operator as the actor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from facegate.admin.auth import ADMIN, AUDITOR, REVIEWER
from facegate.admin.routes import http_status
from facegate.admin.service import AdminService, over_services
from facegate.bodies import read_bounded
from facegate.console.sessions import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    LoginThrottle,
    Session,
    SessionManager,
    SlotsBusy,
    WorkSlots,
    new_secret,
    same_secret,
)
from facegate.errors import FacegateError, RequestEntityTooLargeException
from facegate.services import Services
from facegate.store.operators import OperatorRecord, SessionRepository
from facegate.templating import environment
from facegate.wire.peers import client_address

MAX_FORM_BYTES = 64 * 1024
HASH_SLOTS = 2
"""Password hashes (scrypt, ~0.1 s of CPU each) the console computes at once; a sign-in that
finds them all busy is refused at once (503) rather than queued."""
ALL_ROLES: tuple[str, ...] = (ADMIN, REVIEWER, AUDITOR)
log = logging.getLogger("facegate.console")
T = TypeVar("T")

SECURITY_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}

NAV: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("overview", "Overview", ALL_ROLES),
    ("orgs", "Organisations and keys", (ADMIN, AUDITOR)),
    ("policies", "Policies", (ADMIN, AUDITOR)),
    ("reviews", "Review queue", ALL_ROLES),
    ("audit", "Audit", (ADMIN, AUDITOR)),
    ("bias", "Bias and accuracy", (ADMIN, AUDITOR)),
    ("collections", "Collections", (ADMIN, AUDITOR)),
)


class SignInRefused(Exception):
    """A sign-in (or password check) refused before the password was checked: ``status`` 429
    (throttled) or 503 (every hashing slot busy), the audit ``action`` and the page's
    ``message``."""

    def __init__(self, status: int, action: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.action = action
        self.message = message


async def read_form(request: Request, limit: int = MAX_FORM_BYTES) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the first value of each field);
    :class:`~facegate.errors.RequestEntityTooLargeException` above ``limit`` bytes
    (:func:`facegate.bodies.read_bounded`)."""
    raw = await read_bounded(request, limit)
    form: dict[str, str] = {}
    for name, value in parse_qsl(raw.decode("utf-8", "replace"), True):
        form.setdefault(name, value)
    return form


@dataclass
class Ctx:
    """One console request: the signed-in operator, their session, the form (POST)."""

    request: Request
    operator: OperatorRecord
    session: Session
    admin: AdminService
    form: dict[str, str] = field(default_factory=dict)

    def can(self, *roles: str) -> bool:
        return self.operator.role in roles


Handler = Callable[["Console", Ctx], Awaitable[Response]]


class Console:
    """The console over a running server's services."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.admin = over_services(services)
        self.sessions = SessionManager(SessionRepository(services.db), services.clock)
        self.throttle = LoginThrottle(services.clock)
        self.hashing = WorkSlots(HASH_SLOTS)
        self.templates = Jinja2Templates(env=environment("facegate.console"))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    # --- rendering ----------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        name: str,
        ctx: Ctx | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **values: Any,
    ) -> Response:
        role = ctx.operator.role if ctx else ""
        context = {
            "operator": ctx.operator if ctx else None,
            "csrf_token": ctx.session.record.csrf_token if ctx else "",
            "nav": [(slug, title) for slug, title, roles in NAV if role in roles],
            "page": values.pop("page", ""),
            "title": values.pop("title", "facegate console"),
            "is_admin": role == ADMIN,
            "is_reviewer": role in (ADMIN, REVIEWER),
            "message": values.pop("message", ""),
            "error": values.pop("error", ""),
            **values,
        }
        return self.templates.TemplateResponse(
            request,
            name,
            context,
            status_code=status,
            headers={**SECURITY_HEADERS, **(headers or {})},
        )

    def refuse(self, request: Request, ctx: Ctx | None, status: int, message: str) -> Response:
        return self.render(
            request, "error.html", ctx, status=status, title=f"Error {status}", error=message
        )

    # --- events -------------------------------------------------------------------------------

    async def event(self, actor: str, action: str, subject: str = "", **details: Any) -> None:
        """A console event in the audit trail (fails the request if it cannot be recorded)."""
        await self.run(
            lambda: self.admin.as_actor(actor).record_event("console", action, subject, **details)
        )

    # --- guarded pages ------------------------------------------------------------------------

    def page(
        self, handler: Handler, roles: Collection[str]
    ) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint for ``handler``: session, role, and on POST the CSRF token, checked."""

        async def endpoint(request: Request) -> Response:
            session = await self.run(self.sessions.resolve, request.cookies.get(SESSION_COOKIE))
            operator = None
            if session is not None:
                operator = await self.run(self.services.operators.get, session.record.operator_id)
                if operator is None or not operator.active:
                    await self.run(self.sessions.end, session)
                    session = None
            if session is None or operator is None:
                if request.method == "GET":
                    target = "/console/login?next=" + quote(request.url.path, safe="/")
                    response: Response = RedirectResponse(target, 303, SECURITY_HEADERS)
                else:
                    response = self.refuse(
                        request, None, 401, "Your session has ended. Sign in again."
                    )
                response.delete_cookie(SESSION_COOKIE, path="/console")
                return response
            ctx = Ctx(request, operator, session, self.admin.as_actor(operator.operator_id))
            if operator.role not in roles:
                await self.event(operator.operator_id, "console.forbidden", request.url.path)
                return self.refuse(
                    request, ctx, 403, f"Your role ({operator.role}) may not open this page."
                )
            if request.method == "POST":
                try:
                    ctx.form = await read_form(request)
                except RequestEntityTooLargeException:
                    return self.refuse(request, ctx, 413, "The form is too large.")
                if not same_secret(ctx.form.get("csrf_token"), session.record.csrf_token):
                    await self.event(operator.operator_id, "console.csrf_refused", request.url.path)
                    return self.refuse(
                        request, ctx, 403, "The form's CSRF token is missing or wrong: reload "
                        "the page and try again."
                    )  # fmt: skip
            try:
                return await handler(self, ctx)
            except FacegateError as exc:
                status = http_status(exc)
                if status == 500:
                    log.exception("console request failed")
                    return self.refuse(request, ctx, 500, "Internal server error.")
                return self.refuse(request, ctx, status, exc.message)

        return endpoint

    # --- sign-in and sign-out -----------------------------------------------------------------

    async def password_work(self, operator_id: str, client: str, fn: Callable[..., T],
                            *args: Any) -> T:  # fmt: skip
        """``fn(*args)``, work that checks ``operator_id``'s password (scrypt), with the
        throttle and the hashing bound applied: the attempt is counted before the hash is
        computed, so concurrent attempts cannot all pass the limit first, and the hash runs in
        one of a few slots or not at all. :class:`SignInRefused` when either refuses (the
        password is then not checked; a busy refusal still counts as an attempt). The caller
        reports a right password with ``self.throttle.succeeded``; a wrong one stays
        counted."""
        if not self.throttle.reserve(operator_id, client):
            raise SignInRefused(
                429, "console.sign_in_throttled",
                "Too many failed sign-ins: wait 15 minutes and try again.",
            )  # fmt: skip
        try:
            return await self.hashing.run(fn, *args)
        except SlotsBusy:  # still counted: a burst uses up its attempts, checked or not
            raise SignInRefused(
                503, "console.sign_in_busy", "The server is busy signing others in: try again."
            ) from None

    async def checked_password(
        self, operator_id: str, password: str, client: str
    ) -> OperatorRecord | None:
        """The operator if ``password`` is theirs, else None (:meth:`password_work`; the hash
        is computed for unknown accounts too, so the time taken does not tell which exist)."""
        operator = await self.password_work(
            operator_id, client, self.admin.check_password, operator_id, password
        )
        if operator is not None:
            self.throttle.succeeded(operator_id, client)
        return operator

    def start_session(self, request: Request, response: Response, session_id: str) -> None:
        """Set the session cookie of ``session_id`` on ``response``."""
        response.set_cookie(
            SESSION_COOKIE, session_id, httponly=True, samesite="strict", path="/console",
            secure=self.cookie_secure(request),
        )  # fmt: skip

    def cookie_secure(self, request: Request) -> bool:
        return request.url.scheme == "https"

    async def login_form(self, request: Request, status: int = 200, error: str = "") -> Response:
        session = await self.run(self.sessions.resolve, request.cookies.get(SESSION_COOKIE))
        if session is not None and request.method == "GET":
            return RedirectResponse("/console/overview", 303, SECURITY_HEADERS)
        token = new_secret()
        response = self.render(
            request, "login.html", None, status=status, title="Sign in", login_csrf=token,
            next=_safe_next(request.query_params.get("next")), error=error,
        )  # fmt: skip
        response.set_cookie(
            LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/console/login",
            secure=self.cookie_secure(request),
        )  # fmt: skip
        return response

    async def login_get(self, request: Request) -> Response:
        return await self.login_form(request)

    async def login_post(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except RequestEntityTooLargeException:
            return await self.login_form(request, 413, "The form is too large.")
        client = client_address(request.scope)  # the peer, or what a trusted proxy says
        if not same_secret(form.get("csrf_token"), request.cookies.get(LOGIN_CSRF_COOKIE)):
            # unauthenticated and unbounded: counted, not one record each (facegate.refusals)
            self.services.refusals.count(client, "", "console.csrf_refused")
            return await self.login_form(
                request, 403, "The sign-in form expired (CSRF check): try again."
            )
        operator_id = form.get("operator_id", "").strip()[:64]
        password = form.get("password", "")
        try:
            operator = await self.checked_password(operator_id, password, client)
        except SignInRefused as refused:
            # refused before any password was checked: a flood of these is counted, not
            # recorded one by one (facegate.refusals)
            self.services.refusals.count(client, operator_id, refused.action)
            response = await self.login_form(request, refused.status, refused.message)
            if refused.status == 503:
                response.headers["retry-after"] = "1"
            return response
        if operator is None:
            await self.event(operator_id or "-", "console.sign_in_failed", operator_id,
                             client=client)  # fmt: skip
            return await self.login_form(request, 401, "Unknown operator or wrong password.")
        session_id, _ = await self.run(self.sessions.create, operator.operator_id)
        await self.event(operator.operator_id, "console.sign_in", operator.operator_id,
                         client=client, role=operator.role)  # fmt: skip
        target = _safe_next(form.get("next")) or "/console/overview"
        response = RedirectResponse(target, 303, SECURITY_HEADERS)
        self.start_session(request, response, session_id)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
        return response


async def logout(console: Console, ctx: Ctx) -> Response:
    await console.run(console.sessions.end, ctx.session)
    await console.event(ctx.operator.operator_id, "console.sign_out", ctx.operator.operator_id)
    response = RedirectResponse("/console/login", 303, SECURITY_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


def _safe_next(value: str | None) -> str:
    """A redirect target inside the console, or "" (no open redirects)."""
    if value and value.startswith("/console/") and "//" not in value and "\\" not in value:
        return value
    return ""


def console_routes(services: Services) -> list[BaseRoute]:
    """The routes to mount at ``/console``."""
    from facegate.console import pages  # pages import this module: imported when mounting

    console = Console(services)

    async def home(_: Request) -> Response:
        return RedirectResponse("/console/overview", 303, SECURITY_HEADERS)

    routes: list[BaseRoute] = [
        Route("/", home, methods=["GET"]),
        Route("/login", console.login_get, methods=["GET"]),
        Route("/login", console.login_post, methods=["POST"]),
        Route("/logout", console.page(logout, ALL_ROLES), methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("facegate.console", "static")]), name="static"),
    ]
    for path, method, handler, roles in pages.PAGES:
        routes.append(Route(path, console.page(handler, roles), methods=[method]))
    return routes
