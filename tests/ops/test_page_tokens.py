"""Pagination tokens carry their cursor encrypted: nothing about the server's row numbers is
readable, and a token works only for the listing (operation, organisation, collection identity,
filter) it was issued for (issue 18, item 7)."""

from __future__ import annotations

import base64

import pytest

from facegate.errors import InvalidPaginationTokenException
from facegate.ops.common import PageTokens

KEY = bytes(range(32))


def test_a_token_round_trips_and_reveals_nothing() -> None:
    pages = PageTokens(KEY)
    for cursor in (1, 7, 123_456, 2**62):
        token = pages.issue("ListCollections\0org-a", cursor)
        assert len(token) == 48  # the same length whatever the cursor
        assert not token.startswith(f"{cursor}.")
        assert pages.cursor("ListCollections\0org-a", token) == cursor
    # Randomised: the same position never gives the same token twice.
    assert pages.issue("s", 5) != pages.issue("s", 5)
    assert pages.cursor("s", None) == 0


@pytest.mark.parametrize(
    "token",
    [
        "5.abc",  # the old "<cursor>.<mac>" form
        "",
        "x" * 48,
        "é" * 48,
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidPaginationTokenException, match="Invalid pagination token"):
        PageTokens(KEY).cursor("s", token)


def test_a_token_is_bound_to_its_scope_and_key() -> None:
    pages = PageTokens(KEY)
    token = pages.issue("ListCollections\0org-a", 9)
    for scope in ("ListCollections\0org-b", "ListFaces\0col-1\0None\0", ""):
        with pytest.raises(InvalidPaginationTokenException):
            pages.cursor(scope, token)
    with pytest.raises(InvalidPaginationTokenException):
        PageTokens(bytes(32)).cursor("ListCollections\0org-a", token)
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[-1] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(InvalidPaginationTokenException):
        pages.cursor("ListCollections\0org-a", tampered)
