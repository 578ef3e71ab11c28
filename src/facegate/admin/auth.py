"""Operator authentication: bearer tokens, their hashes, and roles.

An operator token is ``fgop_`` followed by 40 URL-safe characters (30 random bytes, 240 bits),
shown once when the operator is created. The database keeps only its SHA-256
(:class:`~facegate.store.operators.OperatorRepository`), so a copy of the database holds no
usable credential. Because the token has 240 bits of entropy, an unsalted hash is enough: there
is no dictionary to try, and the lookup by hash is an index lookup in SQLite, not a comparison of
secrets in Python (nothing here compares a token or a hash with ``==``).

The admin API (``Authorization: Bearer <token>``) and the CLI's ``review`` commands
(``FACEGATE_OPERATOR_TOKEN`` or ``--token-file``) both authenticate through :func:`authenticate`,
so an operator is always who their token says, never who a command-line option names.

Errors (mapped to HTTP by :mod:`facegate.admin.routes`):

* no or malformed ``Authorization`` header -> ``MissingAuthenticationTokenException`` (401)
* unknown, malformed or disabled token -> ``UnrecognizedClientException`` (401), one message for
  all three so the answer does not tell which
* a role that may not do this -> ``AccessDeniedException`` (403)
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Collection
from pathlib import Path

from facegate.errors import (
    AccessDeniedException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from facegate.store.operators import OperatorRecord, OperatorRepository

TOKEN_PREFIX = "fgop_"  # noqa: S105 (a prefix, not a password)
TOKEN_RANDOM_CHARS = 40
_TOKEN = re.compile(r"fgop_[A-Za-z0-9_-]{40}")
_BEARER = re.compile(r"[Bb]earer +(\S+)")
MAX_TOKEN_FILE_BYTES = 4096

ADMIN = "admin"
REVIEWER = "reviewer"
ADMIN_ONLY: tuple[str, ...] = (ADMIN,)
"""Organisations, keys, operators, policies, decisions."""
REVIEWERS: tuple[str, ...] = (ADMIN, REVIEWER)
"""Reviews: reading and voting."""

_UNRECOGNISED = "The operator token is not valid (unknown, malformed or disabled)."


def new_token() -> str:
    """A fresh operator token: ``fgop_`` + 40 URL-safe characters from ``secrets``."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(30)  # 30 bytes -> exactly 40 characters
    assert len(token) == len(TOKEN_PREFIX) + TOKEN_RANDOM_CHARS
    return token


def token_sha256(token: str) -> str:
    """The stored form of a token: its SHA-256 as 64 lower-case hex digits."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value.

    Raises ``MissingAuthenticationTokenException`` when the header is absent or not a bearer
    credential. The token's format is checked by :func:`authenticate`."""
    if not authorization:
        raise MissingAuthenticationTokenException(
            "Missing operator credentials: send 'Authorization: Bearer <operator token>'."
        )
    match = _BEARER.fullmatch(authorization.strip())
    if match is None:
        raise MissingAuthenticationTokenException(
            "The Authorization header must be 'Bearer <operator token>'."
        )
    return match.group(1)


def authenticate(operators: OperatorRepository, token: str) -> OperatorRecord:
    """The active operator holding ``token``; ``UnrecognizedClientException`` otherwise.

    A malformed token is refused without a database lookup; a well-formed one is looked up by
    its hash (``by_token`` returns only operators that are not disabled)."""
    if not _TOKEN.fullmatch(token):
        raise UnrecognizedClientException(_UNRECOGNISED)
    operator = operators.by_token(token_sha256(token))
    if operator is None:
        raise UnrecognizedClientException(_UNRECOGNISED)
    return operator


def require_role(operator: OperatorRecord, roles: Collection[str], what: str) -> None:
    """Raise ``AccessDeniedException`` unless ``operator`` has one of ``roles``; ``what`` names
    the action in the message ("manage organisations")."""
    if operator.role not in roles:
        raise AccessDeniedException(
            f"Operator {operator.operator_id} has role {operator.role!r}; "
            f"to {what} needs role {' or '.join(repr(r) for r in sorted(roles))}."
        )


def read_token_file(path: Path) -> str:
    """The token stored in ``path`` (surrounding whitespace removed). Raises ``OSError`` if the
    file cannot be read and ``ValueError`` if it is larger than a token file can be."""
    with path.open("rb") as fh:
        data = fh.read(MAX_TOKEN_FILE_BYTES + 1)
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise ValueError(f"{path}: too large for a token file")
    return data.decode("utf-8", errors="replace").strip()
