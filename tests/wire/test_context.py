"""X-Facegate-* headers: defaults from the key, parsing, bounds, and the signing requirement."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from facegate.errors import AccessDeniedException, InvalidParameterException
from facegate.wire.context import Governance, parse

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def _parse(headers: dict[str, str], signed: tuple[str, ...] | None = None) -> Governance:
    return parse(
        headers,
        key_use_case="investigation",
        now=NOW,
        signed=tuple(headers) if signed is None else signed,
    )


def test_defaults_come_from_the_key() -> None:
    parsed = _parse({"host": "x"})
    assert parsed.context.purpose == "investigation"
    assert parsed.context.now == NOW
    assert not parsed.context.realtime
    assert parsed.context.authorization_ref == ""
    assert parsed.review_id is None


def test_every_header_parses() -> None:
    parsed = _parse(
        {
            "x-facegate-purpose": "missing_persons",
            "x-facegate-case": "MP-2026/0042",
            "x-facegate-authorization": "W-17; issuer=King County Superior Court",
            "x-facegate-realtime": "true",
            "x-facegate-exigent": "no",
            "x-facegate-camera": "mobile",
            "x-facegate-consent": "consent#981",
            "x-facegate-review": "rev-0123456789abcdef0123",
        }
    )
    ctx = parsed.context
    assert ctx.purpose == "missing_persons"
    assert ctx.case_ref == "MP-2026/0042"
    assert (ctx.authorization_ref, ctx.authorization_issuer) == (
        "W-17",
        "King County Superior Court",
    )
    assert ctx.realtime
    assert not ctx.exigent
    assert ctx.camera == "mobile"
    assert ctx.consent_ref == "consent#981"
    assert parsed.review_id == "rev-0123456789abcdef0123"


def test_unsigned_header_is_refused() -> None:
    headers = {"x-facegate-purpose": "missing_persons"}
    with pytest.raises(AccessDeniedException, match="X-Facegate-Purpose must be signed"):
        _parse(headers, signed=("host",))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("x-facegate-purpose", "Missing Persons!", "Invalid X-Facegate-Purpose"),
        ("x-facegate-case", "x" * 129, "Invalid X-Facegate-Case"),
        ("x-facegate-case", "a\x00b", "Invalid X-Facegate-Case"),
        ("x-facegate-realtime", "maybe", "Invalid X-Facegate-Realtime"),
        ("x-facegate-camera", "drone", "Invalid X-Facegate-Camera"),
        ("x-facegate-authorization", "; issuer=court", "needs a reference"),
        ("x-facegate-authorization", "W-1; judge=x", "Invalid X-Facegate-Authorization"),
        ("x-facegate-review", "rev-1", "Invalid X-Facegate-Review"),
        ("x-facegate-purpos", "typo", "Unknown header X-Facegate-Purpos"),
    ],
)
def test_bad_values_name_the_header(name: str, value: str, message: str) -> None:
    with pytest.raises(InvalidParameterException, match=message):
        _parse({name: value})
