"""The client's address: the TCP peer, unless that peer is a proxy the operator trusts.

``X-Forwarded-For`` is a claim, and anyone can send it. The address facegate records in the audit
trail and counts sign-in attempts against is therefore the TCP peer of the connection (the
ASGI ``client``), and ``X-Forwarded-For`` is read only when that peer is a configured trusted
proxy (``FACEGATE_TRUSTED_PROXIES``: addresses or CIDR networks, comma-separated; empty by
default, so no header is ever believed). Each proxy appends the address it received the request
from, so the list is read from the right: trusted proxies are skipped and the first address that
is not one is the client (a value the client itself put in front is never reached). If every
entry is a trusted proxy, the left-most one is the client; an entry that is not an IP address
stops the walk at the proxy that forwarded it.

From a trusted peer, ``X-Forwarded-Proto`` (its right-most value, ``http`` or ``https``) sets the
request's scheme too, so cookies are marked Secure behind a TLS-terminating proxy.

:class:`TrustedProxyMiddleware` applies this to every HTTP request once, before routing, by
rewriting the ASGI scope's ``client`` and ``scheme``: the Rekognition API (``RawRequest.
client_address``), the admin API and the console all read ``request.client`` and get the same
answer. uvicorn's own proxy-header handling must be off (``facegate serve`` sets
``proxy_headers=False``): by default uvicorn trusts ``X-Forwarded-For`` from 127.0.0.1, so any
local process, or anything relayed through a local port, could choose its address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

UNKNOWN = "-"
"""The address when the server was not told one (e.g. a unix socket)."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Addresses or CIDR networks (``10.0.0.5``, ``10.0.0.0/8``, ``::1``); ``ValueError``
    naming the entry that is neither."""
    out: list[IPNetwork] = []
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or network") from None
    return tuple(out)


def _address(text: str) -> IPAddress | None:
    """An address as a proxy may write it (``1.2.3.4``, ``1.2.3.4:567``, ``[::1]:567``,
    ``::1``), or None."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies whose ``X-Forwarded-*`` headers are believed (none by default)."""

    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedProxies:
        return cls(parse_networks(entries))

    def trusts(self, address: str | IPAddress | None) -> bool:
        if address is None or not self.networks:
            return False
        parsed = _address(address) if isinstance(address, str) else address
        return parsed is not None and any(parsed in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: Iterable[str] = ()) -> str:
        """The client's address given the TCP ``peer`` and the ``X-Forwarded-For`` header
        values in the order received (several headers are one list)."""
        if not peer:
            return UNKNOWN
        if not self.trusts(peer):
            return peer
        hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
        client = peer
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:  # garbage: stop at the trusted proxy that passed it on
                return client
            client = str(address)
            if not self.trusts(address):
                return client
        return client

    def scheme(self, peer: str | None, scheme: str, forwarded_proto: Iterable[str] = ()) -> str:
        """The request's scheme: the right-most ``X-Forwarded-Proto`` from a trusted peer."""
        if not self.trusts(peer):
            return scheme
        values = [v.strip().lower() for value in forwarded_proto for v in value.split(",")]
        values = [v for v in values if v]
        if not values or values[-1] not in ("http", "https"):
            return scheme
        return values[-1]


class TrustedProxyMiddleware:
    """ASGI middleware: every HTTP request's ``client`` and ``scheme`` as :class:`TrustedProxies`
    says (the TCP peer unless it is a trusted proxy)."""

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            peer_pair = scope.get("client")
            peer = peer_pair[0] if peer_pair else None
            if self.trusted.trusts(peer):
                forwarded: list[str] = []
                proto: list[str] = []
                for name, value in scope.get("headers", ()):
                    if name == b"x-forwarded-for":
                        forwarded.append(value.decode("latin-1"))
                    elif name == b"x-forwarded-proto":
                        proto.append(value.decode("latin-1"))
                scope = dict(scope)
                scope["client"] = (self.trusted.client(peer, forwarded), 0)
                scope["scheme"] = self.trusted.scheme(peer, scope.get("scheme", "http"), proto)
        await self.app(scope, receive, send)


def client_address(scope: Scope) -> str:
    """The client's address of a request that went through :class:`TrustedProxyMiddleware`
    (``-`` when the server was not told one)."""
    client = scope.get("client")
    return str(client[0]) if client and client[0] else UNKNOWN
