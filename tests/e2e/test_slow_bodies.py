"""Unauthenticated connections cannot hold the server's time or memory (issue 18, item 8): raw
sockets against a live server with short deadlines and a small body budget.

A request whose body stops (or trickles) is answered 408 RequestTimeoutException at the body
deadline and its connection closed; a connection whose head stops is closed at the head
deadline; bodies beyond the budget (per client address, then server-wide) are refused at once
with 503 ThrottlingException, and the budget comes back when the holders are gone.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import StoreEnv
from tests.e2e.server import LiveServer

MIB = 1024 * 1024
DEADLINE_S = 2.0
# Generous: the server must act at its deadline, the test only bounds "never" (before the fix,
# these connections stayed open for as long as the client kept them).
WAIT_S = DEADLINE_S + 15.0


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, store_env: StoreEnv) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("slow-bodies") / "data",
        workers=1,
        env={
            **store_env(),
            "FACEGATE_MAX_BODY_BYTES": str(1 * MIB),
            "FACEGATE_BODY_BUDGET_BYTES": str(3 * MIB),
            "FACEGATE_BODY_CLIENT_BYTES": str(2 * MIB),
            "FACEGATE_BODY_TIMEOUT_S": str(DEADLINE_S),
            "FACEGATE_HEADER_TIMEOUT_S": str(DEADLINE_S),
        },
    )
    live.start()
    yield live
    live.stop()


def _connect(server: LiveServer, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))  # 127.0.0.0/8 is all loopback: other "client addresses"
    sock.settimeout(WAIT_S)
    sock.connect(("127.0.0.1", server.port))
    return sock


def _head(path: str, length: int, *, target: str = "RekognitionService.ListCollections") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: {target}\r\n"
        f"Content-Type: application/x-amz-json-1.1\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (raises socket.timeout if it never
    does within WAIT_S)."""
    chunks: list[bytes] = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return status, headers, body


def _held_bytes(server: LiveServer) -> float:
    import httpx

    text = httpx.get(f"{server.endpoint}/metrics", timeout=5).text
    found = re.search(r"^facegate_body_bytes_reading (\S+)$", text, re.MULTILINE)
    assert found is not None
    return float(found.group(1))


def _wait_held(server: LiveServer, expected: int) -> None:
    deadline = time.monotonic() + 10
    while _held_bytes(server) != expected:
        assert time.monotonic() < deadline, f"held {_held_bytes(server)}, expected {expected}"
        time.sleep(0.05)


def _error(body: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(body)
    return doc


def test_a_body_that_stops_gets_408_and_the_connection_closes(guarded: LiveServer) -> None:
    with contextlib.closing(_connect(guarded)) as sock:
        started = time.monotonic()
        sock.sendall(_head("/", 800_000) + b"{" + b" " * 100_000)  # most of nothing, then stop
        raw = _read_all(sock)
        elapsed = time.monotonic() - started
    status, headers, body = _response(raw)
    assert status == 408
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert _error(body)["__type"] == "RequestTimeoutException"
    assert "2 seconds" in _error(body)["Message"]
    assert elapsed >= DEADLINE_S * 0.9  # at the deadline, not before
    _wait_held(guarded, 0)  # its reservation was given back


def test_a_trickling_body_is_cut_at_the_deadline_for_the_whole_body(
    guarded: LiveServer,
) -> None:
    with contextlib.closing(_connect(guarded)) as sock:
        sock.sendall(_head("/", 10_000))
        started = time.monotonic()
        raw = b""
        with contextlib.suppress(OSError):  # the server may close while we still send
            while time.monotonic() - started < WAIT_S:
                sock.sendall(b" ")  # a byte every 0.1 s: never idle, never complete
                time.sleep(0.1)
                sock.setblocking(False)
                try:
                    raw = _read_all(sock)
                    break
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
                    sock.settimeout(WAIT_S)
        elapsed = time.monotonic() - started
    assert raw, "the server never answered"
    status, headers, body = _response(raw)
    assert (status, headers["connection"]) == (408, "close")
    assert _error(body)["__type"] == "RequestTimeoutException"
    assert elapsed < WAIT_S


@pytest.mark.parametrize(
    "sent", [b"", b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Targ"], ids=["nothing", "half"]
)
def test_a_connection_whose_head_never_completes_is_closed(
    guarded: LiveServer, sent: bytes
) -> None:
    with contextlib.closing(_connect(guarded)) as sock:
        started = time.monotonic()
        sock.sendall(sent)
        assert _read_all(sock) == b""  # closed without an answer: there is no request yet
        assert time.monotonic() - started >= DEADLINE_S * 0.9


def test_a_body_no_route_reads_cannot_keep_the_connection(guarded: LiveServer) -> None:
    # The admin API refuses a missing token before reading the body; the unread rest of the
    # body must not keep the connection open (the head deadline runs from the response).
    with contextlib.closing(_connect(guarded)) as sock:
        sock.sendall(_head("/admin/orgs", 50_000) + b"{")
        raw = _read_all(sock)
    assert _response(raw)[0] == 401


def test_a_console_sign_in_that_stops_gets_408_and_closes(guarded: LiveServer) -> None:
    head = (
        b"POST /console/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000\r\n\r\n"
    )
    with contextlib.closing(_connect(guarded)) as sock:
        sock.sendall(head + b"operator_id=a")
        status, headers, body = _response(_read_all(sock))
    assert (status, headers["connection"]) == (408, "close")
    assert b"did not arrive within" in body


def test_bodies_beyond_the_budget_are_refused_at_once_then_it_comes_back(
    guarded: LiveServer,
) -> None:
    _wait_held(guarded, 0)
    holders = []
    try:
        # 127.0.0.1 takes its share (2 MiB) with two bodies of 1 MiB that stop half way.
        for _ in range(2):
            sock = _connect(guarded)
            sock.sendall(_head("/", MIB) + b" " * (MIB // 2))
            holders.append(sock)
        _wait_held(guarded, 2 * MIB)
        with contextlib.closing(_connect(guarded)) as third:
            third.sendall(_head("/", 100))
            status, headers, body = _response(_read_all(third))
        assert (status, headers["connection"]) == (503, "close")
        assert _error(body)["__type"] == "ThrottlingException"
        assert "client" in _error(body)["Message"]
        # Another address still has room, until the server's 3 MiB are taken.
        other = _connect(guarded, "127.0.0.2")
        other.sendall(_head("/", MIB) + b" " * 1000)
        holders.append(other)
        _wait_held(guarded, 3 * MIB)
        with contextlib.closing(_connect(guarded, "127.0.0.3")) as fourth:
            fourth.sendall(_head("/", 100))
            status, headers, body = _response(_read_all(fourth))
        assert status == 503
        assert "server" in _error(body)["Message"]
        assert _held_bytes(guarded) == 3 * MIB  # the refusals held nothing
    finally:
        for sock in holders:
            sock.close()
    _wait_held(guarded, 0)  # the holders went away: their reservations came back
    rek = guarded.client()
    assert "CollectionIds" in rek.list_collections()
