"""Time and memory bounds on the way in, before any request is authenticated.

A request is only authenticated once its whole body has arrived (SigV4 signs the body's hash),
so until then anyone can make the server wait and hold memory. Two layers bound that:

* :func:`head_deadline_protocol`: uvicorn's h11 protocol with a deadline for a request's head.
  A connection must send a complete request line and headers within ``head_timeout_s`` of
  opening, or of the previous response; else it is closed. uvicorn alone closes an idle
  keep-alive connection after ``timeout_keep_alive`` but waits for ever once a byte arrived, and
  never bounds a fresh connection. The same timer closes a connection that keeps trickling a
  body the application never read (after its response).
* :class:`BodyGuard`: ASGI middleware around every route (``POST /``, ``/admin``, ``/console``).
  When the application first reads a body, the body's declared length is reserved in a
  :class:`facegate.limits.BodyBudget` (server-wide and per client address; a body without
  ``Content-Length`` is reserved chunk by chunk as it arrives) and given back once the body is
  complete or the request ends. A body that does not fit is refused with
  :class:`~facegate.errors.ServerBusyError` (``ThrottlingException``, HTTP 503): the server
  holds at most the budget for bodies in flight, whatever the number of connections. The
  whole body must arrive within ``body_timeout_s`` of the request's head, else
  :class:`~facegate.errors.RequestTimeoutException` (HTTP 408; botocore retries both).

Both errors are raised from the application's ``receive``, so each route answers in its own
format (Rekognition's JSON error, the admin API's JSON, the console's page), and the guard adds
``Connection: close`` to that response: the unread rest of the body would otherwise be taken for
the next request. An application that lets the error escape gets the guard's own answer in the
route's format. Refusals are counted in ``facegate_body_refusals{reason}``.

Routes read a body with :func:`read_bounded`: a ``Content-Length`` above the route's limit is
refused before any byte is read, and a body streamed without one is cut off at the limit, with
:class:`~facegate.errors.RequestEntityTooLargeException` (HTTP 413) either way.

Choosing the values: ``body_timeout_s`` is the slowest upload to accept (30 s lets an 8 MiB body
through at about 2.3 Mbit/s); the budget is the memory to give to bodies in flight (128 MiB:
sixteen 8 MiB bodies at once); the per-client share keeps one address from taking all of it,
but every client behind one proxy or NAT shares an address, so size it for the busiest of those.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from facegate.errors import (
    FacegateError,
    RequestEntityTooLargeException,
    RequestTimeoutException,
    ServerBusyError,
)
from facegate.limits import BodyBudget
from facegate.wire import protocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Refused = Callable[[str], None]

CLOSE = (b"connection", b"close")


@dataclass
class _Read:
    """One request's body as the guard sees it."""

    client: str
    declared: int | None
    deadline: float
    reserved: int = 0
    complete: bool = False
    refusal: FacegateError | None = None
    response_started: bool = False


class BodyGuard:
    """ASGI middleware: a deadline for each request body and a budget for the bodies being read
    (module docstring). ``refused`` is called with the reason of each refusal: ``timeout``,
    ``server`` or ``client`` (the budget), ``size`` (a body larger than the budget could ever
    hold; routes refuse bodies above their own, smaller, limits before reading them)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        budget: BodyBudget,
        timeout_s: float,
        refused: Refused | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.budget = budget
        self.timeout_s = timeout_s
        self.refused = refused or (lambda _reason: None)
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        state = _Read(
            client=str(client[0]) if client else "-",
            declared=_content_length(scope),
            deadline=self.clock() + self.timeout_s,
        )

        async def guarded_receive() -> Message:
            if state.refusal is not None:
                raise state.refusal
            if state.complete:
                return await receive()
            if state.declared is not None and state.reserved == 0 and state.declared > 0:
                self._reserve(state, state.declared)
            remaining = state.deadline - self.clock()
            try:
                if remaining <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(receive(), remaining)
            except TimeoutError:
                late = RequestTimeoutException(
                    f"The request body did not arrive within {self.timeout_s:g} seconds."
                )
                raise self._refuse(state, late, "timeout") from None
            if message["type"] == "http.request":
                if state.declared is None:  # no Content-Length: reserve what arrives
                    self._reserve(state, len(message.get("body", b"")))
                if not message.get("more_body", False):
                    state.complete = True
                    self._release(state)
            else:  # http.disconnect
                state.complete = True
                self._release(state)
            return message

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state.response_started = True
                if state.refusal is not None:
                    headers = [h for h in message.get("headers", []) if h[0].lower() != CLOSE[0]]
                    message = {**message, "headers": [*headers, CLOSE]}
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except FacegateError as exc:
            if exc is not state.refusal:
                raise
            if not state.response_started:  # the route let it escape: answer in its format
                await _answer(scope, send, exc)
        finally:
            self._release(state)

    def _reserve(self, state: _Read, nbytes: int) -> None:
        if not self.budget.fits_ever(state.reserved + nbytes):
            too_large = RequestEntityTooLargeException(
                f"The request body exceeds the {self.budget.largest_bytes} bytes the server "
                "reads at once."
            )
            raise self._refuse(state, too_large, "size")
        refused_by = self.budget.reserve(state.client, nbytes)
        if refused_by is None:
            state.reserved += nbytes
            return
        if refused_by == BodyBudget.CLIENT:
            why = "this client's request bodies already use its share of the server's budget"
        else:
            why = "the server is reading as many request bodies as its budget allows"
        raise self._refuse(state, ServerBusyError(f"Busy: {why}; retry later."), refused_by)

    def _refuse(self, state: _Read, error: FacegateError, reason: str) -> FacegateError:
        """Mark the request refused (its reservation given back); returns ``error`` to raise."""
        state.refusal = error
        state.complete = True
        self._release(state)
        self.refused(reason)
        return error

    def _release(self, state: _Read) -> None:
        if state.reserved:
            self.budget.release(state.client, state.reserved)
            state.reserved = 0


def _content_length(scope: Scope) -> int | None:
    """The declared body length (None: none, or not a number; h11 refuses those itself)."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _answer(scope: Scope, send: Send, exc: FacegateError) -> None:
    """The guard's own answer, in the format of the route the request was for."""
    path = str(scope.get("path", "/"))
    headers: list[tuple[bytes, bytes]] = [CLOSE]
    if path == "/admin" or path.startswith("/admin/"):
        body = json.dumps({"error": exc.message, "code": exc.code}).encode()
        headers += [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    elif path == "/console" or path.startswith("/console/"):
        body = exc.message.encode()
        headers += [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"cache-control", b"no-store"),
        ]
    else:
        body = protocol.error_body(exc)
        headers += [
            (b"content-type", protocol.CONTENT_TYPE.encode()),
            (b"x-amzn-requestid", str(uuid.uuid4()).encode()),
        ]
    await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_bounded(request: Request, limit: int) -> bytes:
    """The request's whole body, at most ``limit`` bytes: a declared ``Content-Length`` above
    ``limit`` is refused before reading, a longer stream as soon as it passes ``limit``, both with
    :class:`~facegate.errors.RequestEntityTooLargeException` (HTTP 413)."""
    too_large = RequestEntityTooLargeException(f"The request body exceeds {limit} bytes.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def head_deadline_protocol(head_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol class with a deadline for each request's head (module
    docstring); pass it as ``uvicorn.Config(http=...)``."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadDeadlineProtocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_head_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_head_deadline()
            super().connection_lost(exc)

        def _arm_head_deadline(self) -> None:
            self._disarm_head_deadline()
            self._head_timer = self.loop.call_later(head_timeout_s, self._head_deadline_passed)

        def _disarm_head_deadline(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_deadline_passed(self) -> None:
            self._head_timer = None
            in_progress = self.cycle is not None and not self.cycle.response_complete
            if not in_progress:  # a request being served is bounded by the body deadline
                self.transport.close()

    return HeadDeadlineProtocol
