"""BodyGuard in process (fake ASGI receive/send): the body deadline, the budget's reservations
and their release, refusals answered in the route's format with ``Connection: close``.
The live-server behaviour (raw sockets) is tests/e2e/test_slow_bodies.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest
from starlette.requests import Request

from facegate.bodies import ASGIApp, BodyGuard, Receive, Send, read_bounded
from facegate.errors import (
    FacegateError,
    RequestEntityTooLargeException,
    RequestTimeoutException,
    ServerBusyError,
)
from facegate.limits import BodyBudget

Message = MutableMapping[str, Any]


def _scope(path: str = "/", length: int | None = None, client: str = "10.0.0.1") -> Message:
    headers = [(b"host", b"x")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "path": path, "headers": headers, "client": (client, 5000)}


class Peer:
    """The client side: body chunks to hand out (None: never answer), what the app sent."""

    def __init__(self, *chunks: bytes | None) -> None:
        self.chunks = list(chunks)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        chunk = self.chunks.pop(0) if self.chunks else None
        if chunk is None:
            await asyncio.Event().wait()  # a client that stopped sending
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


def _reader(seen: list[bytes] | None = None, answer_errors: bool = False) -> ASGIApp:
    """An app that reads the whole body, then answers 200 (or, with ``answer_errors``, answers
    a FacegateError itself with 418)."""

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        body = b""
        try:
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
        except FacegateError:
            if not answer_errors:
                raise
            await send({"type": "http.response.start", "status": 418, "headers": []})
            await send({"type": "http.response.body", "body": b"mine"})
            return
        if seen is not None:
            seen.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def _run(guard: BodyGuard, scope: Message, peer: Peer) -> None:
    asyncio.run(guard(scope, peer.receive, peer.send))


def test_a_complete_body_passes_and_its_reservation_comes_back() -> None:
    budget = BodyBudget(100, 50)
    seen: list[bytes] = []
    guard = BodyGuard(_reader(seen), budget=budget, timeout_s=5)
    peer = Peer(b"abc", b"de")
    _run(guard, _scope(length=5), peer)
    assert (peer.status, peer.body, seen) == (200, b"ok", [b"abcde"])
    assert budget.held_bytes == 0
    assert b"connection" not in peer.headers


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", b"application/x-amz-json-1.1"),
        ("/admin/orgs", b"application/json"),
        ("/console/login", b"text/plain; charset=utf-8"),
    ],
)
def test_a_body_that_stops_is_refused_at_the_deadline_in_the_routes_format(
    path: str, content_type: bytes
) -> None:
    reasons: list[str] = []
    budget = BodyBudget(100)
    guard = BodyGuard(_reader(), budget=budget, timeout_s=0.05, refused=reasons.append)
    peer = Peer(b"ab", None)
    _run(guard, _scope(path, length=10), peer)
    assert peer.status == 408
    assert peer.headers[b"connection"] == b"close"
    assert peer.headers[b"content-type"] == content_type
    assert b"did not arrive within 0.05 seconds" in peer.body
    assert reasons == ["timeout"]
    assert budget.held_bytes == 0


def test_a_route_that_answers_the_refusal_itself_gets_connection_close() -> None:
    guard = BodyGuard(_reader(answer_errors=True), budget=BodyBudget(100), timeout_s=0.05)
    peer = Peer(None)
    _run(guard, _scope(length=10), peer)
    assert (peer.status, peer.body, peer.headers[b"connection"]) == (418, b"mine", b"close")


def test_declared_lengths_beyond_the_budget_are_refused_before_any_byte() -> None:
    budget = BodyBudget(100, 60)
    reasons: list[str] = []

    async def scenario() -> tuple[Peer, Peer, Peer]:
        holder, second, other = Peer(b"x", None), Peer(b"y" * 20), Peer(b"z" * 45)
        guard = BodyGuard(_reader(), budget=budget, timeout_s=0.3, refused=reasons.append)
        held = asyncio.ensure_future(guard(_scope(length=50), holder.receive, holder.send))
        await asyncio.sleep(0.01)
        assert budget.held_bytes == 50
        # the same address: 50 + 20 > its 60
        await guard(_scope(length=20), second.receive, second.send)
        # another address: 50 + 45 <= 100, then 95 + 10 > 100
        await guard(_scope(length=45, client="10.0.0.2"), other.receive, other.send)
        third = Peer(b"w" * 10)
        slow = Peer(b"v" * 45, None)
        waiting = asyncio.ensure_future(
            guard(_scope(length=46, client="10.0.0.3"), slow.receive, slow.send)
        )
        await asyncio.sleep(0.01)
        assert budget.held_bytes == 96
        await guard(_scope(length=10, client="10.0.0.4"), third.receive, third.send)
        await held
        await waiting
        return second, other, third

    second, other, third = asyncio.run(scenario())
    assert (second.status, json.loads(second.body)["__type"]) == (503, "ThrottlingException")
    assert b"client" in second.body
    assert other.status == 200
    assert third.status == 503
    assert b"server" in third.body
    assert reasons == ["client", "server", "timeout", "timeout"]
    assert budget.held_bytes == 0


def test_a_body_without_a_length_is_reserved_as_it_arrives() -> None:
    budget = BodyBudget(100, 30)
    ok = Peer(b"a" * 20, b"b" * 10)
    _run(BodyGuard(_reader(), budget=budget, timeout_s=5), _scope(length=None), ok)
    assert ok.status == 200
    peer = Peer(b"a" * 20, b"b" * 20, b"c")
    _run(BodyGuard(_reader(), budget=budget, timeout_s=5), _scope(length=None), peer)
    assert peer.status == 413  # 40 bytes arrived: more than one client may ever hold (30)
    assert budget.held_bytes == 0


def test_a_declared_length_the_budget_can_never_hold_is_413() -> None:
    peer = Peer(b"x")
    _run(BodyGuard(_reader(), budget=BodyBudget(100, 30), timeout_s=5), _scope(length=31), peer)
    assert (peer.status, json.loads(peer.body)["__type"]) == (413, "RequestEntityTooLargeException")


def test_errors_are_modelled() -> None:
    assert (RequestTimeoutException.code, RequestTimeoutException.http_status) == (
        "RequestTimeoutException",
        408,
    )
    assert (ServerBusyError.code, ServerBusyError.http_status) == ("ThrottlingException", 503)


def _read(limit: int, peer: Peer, length: int | None = None) -> bytes:
    request = Request({**_scope(length=length), "method": "POST"}, peer.receive)
    return asyncio.run(read_bounded(request, limit))


def test_read_bounded_returns_a_body_within_the_limit() -> None:
    assert _read(6, Peer(b"abc", b"def"), length=6) == b"abcdef"
    assert _read(6, Peer(b"abc", b"def")) == b"abcdef"  # no Content-Length


def test_read_bounded_refuses_a_declared_length_before_reading() -> None:
    peer = Peer(b"abc")
    with pytest.raises(RequestEntityTooLargeException, match="exceeds 6 bytes"):
        _read(6, peer, length=7)
    assert peer.chunks == [b"abc"]  # not a byte read


def test_read_bounded_cuts_off_a_longer_stream_at_the_limit() -> None:
    peer = Peer(b"abcd", b"efg", b"never read")
    with pytest.raises(RequestEntityTooLargeException, match="exceeds 6 bytes"):
        _read(6, peer)
    assert peer.chunks == [b"never read"]
