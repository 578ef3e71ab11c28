"""The client address (facegate.wire.peers): the TCP peer, unless it is a trusted proxy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from facegate.config import Settings, SettingsError
from facegate.wire.peers import TrustedProxies, TrustedProxyMiddleware, client_address

NONE = TrustedProxies()
LOCAL = TrustedProxies.parse(["127.0.0.1", "::1", "10.0.0.0/8"])


def test_nobody_is_trusted_by_default() -> None:
    assert NONE.client("127.0.0.1", ["203.0.113.9"]) == "127.0.0.1"
    assert NONE.client("192.0.2.1", ["203.0.113.9, 10.0.0.1"]) == "192.0.2.1"
    assert NONE.scheme("127.0.0.1", "http", ["https"]) == "http"
    assert NONE.client(None, ["203.0.113.9"]) == "-"


def test_an_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    assert LOCAL.client("192.0.2.1", ["127.0.0.1"]) == "192.0.2.1"
    assert LOCAL.scheme("192.0.2.1", "http", ["https"]) == "http"


def test_a_trusted_proxy_is_read_from_the_right() -> None:
    assert LOCAL.client("127.0.0.1", ["203.0.113.9"]) == "203.0.113.9"
    # the client wrote 192.0.2.7 itself; the proxies appended what they saw
    assert LOCAL.client("127.0.0.1", ["192.0.2.7, 203.0.113.9, 10.1.2.3"]) == "203.0.113.9"
    assert LOCAL.client("127.0.0.1", ["192.0.2.7", "203.0.113.9", "10.1.2.3"]) == "203.0.113.9"
    # every hop trusted: the left-most is the client
    assert LOCAL.client("127.0.0.1", ["10.9.9.9, 10.1.2.3"]) == "10.9.9.9"
    # no header: the proxy itself
    assert LOCAL.client("127.0.0.1", []) == "127.0.0.1"
    # garbage stops the walk at the proxy that forwarded it
    assert LOCAL.client("127.0.0.1", ["203.0.113.9, unknown"]) == "127.0.0.1"
    assert LOCAL.client("127.0.0.1", ["203.0.113.9, bogus, 10.1.2.3"]) == "10.1.2.3"
    # ports and brackets as some proxies write them; IPv6
    assert LOCAL.client("127.0.0.1", ["203.0.113.9:4711"]) == "203.0.113.9"
    assert LOCAL.client("::1", ["[2001:db8::5]:4711"]) == "2001:db8::5"
    assert LOCAL.client("::ffff:127.0.0.1", ["2001:db8::5"]) == "2001:db8::5"
    assert LOCAL.scheme("127.0.0.1", "http", ["http, https"]) == "https"
    assert LOCAL.scheme("127.0.0.1", "http", ["gopher"]) == "http"


@given(st.lists(st.ip_addresses().map(str), max_size=6), st.ip_addresses().map(str))
def test_an_untrusted_client_cannot_choose_its_address(forged: list[str], peer: str) -> None:
    trusted = TrustedProxies.parse(["10.0.0.0/8"])
    if trusted.trusts(peer):
        return
    assert trusted.client(peer, [", ".join(forged)]) == peer


@given(st.lists(st.ip_addresses(v=4).map(str), max_size=6))
def test_whatever_a_client_prepends_the_proxy_view_wins(prepended: list[str]) -> None:
    header = ", ".join([*prepended, "203.0.113.9"])
    assert LOCAL.client("127.0.0.1", [header]) == "203.0.113.9"


def test_middleware_rewrites_client_and_scheme_only_for_trusted_peers() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((client_address(scope), scope["scheme"]))

    def call(peer: str, headers: list[tuple[bytes, bytes]], trusted: TrustedProxies) -> Any:
        scope = {"type": "http", "client": (peer, 5000), "scheme": "http", "headers": headers}
        asyncio.run(TrustedProxyMiddleware(app, trusted)(scope, None, None))  # type: ignore[arg-type]
        return seen.pop()

    forged = [(b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")]
    assert call("127.0.0.1", forged, NONE) == ("127.0.0.1", "http")
    assert call("127.0.0.1", forged, LOCAL) == ("203.0.113.9", "https")
    assert call("192.0.2.1", forged, LOCAL) == ("192.0.2.1", "http")


def test_setting() -> None:
    assert Settings.from_env({}).trusted_proxies == ()
    got = Settings.from_env({"FACEGATE_TRUSTED_PROXIES": " 10.0.0.0/8, ::1 ,"}).trusted_proxies
    assert got == ("10.0.0.0/8", "::1")
    with pytest.raises(SettingsError, match=r"FACEGATE_TRUSTED_PROXIES: 'proxy\.local'"):
        Settings.from_env({"FACEGATE_TRUSTED_PROXIES": "proxy.local"})
