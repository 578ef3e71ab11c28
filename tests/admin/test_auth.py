"""Operator tokens: format, hashing, bearer parsing, authentication and roles."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from facegate.admin.auth import (
    ADMIN_ONLY,
    REVIEWERS,
    authenticate,
    bearer_token,
    new_token,
    read_token_file,
    require_role,
    token_sha256,
)
from facegate.admin.service import AdminService
from facegate.errors import (
    AccessDeniedException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from facegate.services import Services
from tests.admin.conftest import Tokens


def test_new_token_format_and_randomness() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert re.fullmatch(r"fgop_[A-Za-z0-9_-]{40}", token)


def test_only_the_hash_is_stored(services: Services, admin: AdminService) -> None:
    _, token = admin.create_operator("carol", "Carol", "reviewer")
    assert token_sha256(token) == hashlib.sha256(token.encode()).hexdigest()
    with services.db.read() as conn:
        row = conn.execute("SELECT * FROM operators WHERE operator_id = 'carol'").fetchone()
    assert row["token_sha256"] == token_sha256(token)
    assert token not in [str(v) for v in tuple(row)]


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer fgop_abc", "fgop_abc"), ("bearer   fgop_x ", "fgop_x")],
)
def test_bearer_token(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer a b"])
def test_bearer_token_missing_or_malformed(header: str | None) -> None:
    with pytest.raises(MissingAuthenticationTokenException, match="Bearer"):
        bearer_token(header)


def test_authenticate(services: Services, tokens: Tokens) -> None:
    assert authenticate(services.operators, tokens.alice).operator_id == "alice"
    assert authenticate(services.operators, tokens.admin).role == "admin"


@pytest.mark.parametrize(
    "token", ["", "fgop_short", "x" * 45, "fgop_" + "A" * 40, "fgop_" + "!" * 40]
)
def test_authenticate_refuses_unknown_or_malformed(services: Services, token: str) -> None:
    with pytest.raises(UnrecognizedClientException, match="not valid"):
        authenticate(services.operators, token)


def test_disabled_operator_is_refused(
    services: Services, admin: AdminService, tokens: Tokens
) -> None:
    admin.disable_operator("bob")
    with pytest.raises(UnrecognizedClientException) as info:
        authenticate(services.operators, tokens.bob)
    # the same message for unknown and disabled tokens: the answer does not tell which
    assert str(info.value) == "The operator token is not valid (unknown, malformed or disabled)."


def test_require_role(services: Services, tokens: Tokens) -> None:
    alice = authenticate(services.operators, tokens.alice)
    require_role(alice, REVIEWERS, "review")
    with pytest.raises(AccessDeniedException, match="role 'reviewer'; to manage orgs needs"):
        require_role(alice, ADMIN_ONLY, "manage orgs")


def test_read_token_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("  fgop_abc\n")
    assert read_token_file(path) == "fgop_abc"
    path.write_bytes(b"x" * 5000)
    with pytest.raises(ValueError, match="too large"):
        read_token_file(path)
    with pytest.raises(FileNotFoundError):
        read_token_file(tmp_path / "missing")
