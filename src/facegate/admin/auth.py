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

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Collection
from pathlib import Path

from facegate.errors import (
    AccessDeniedException,
    InvalidParameterException,
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
AUDITOR = "auditor"
ADMIN_ONLY: tuple[str, ...] = (ADMIN,)
"""Organisations, keys, operators, policies, decisions."""
REVIEWERS: tuple[str, ...] = (ADMIN, REVIEWER)
"""Reviews: reading and voting."""
READERS: tuple[str, ...] = (ADMIN, AUDITOR)
"""Reading organisations, keys, policies, decisions, the audit trail and the gate (the console's
read-only pages; an auditor changes nothing but may verify the chain and download reports)."""

# Console passwords: scrypt (RFC 7914) with OWASP's minimum parameters for scrypt
# (N=2^15, r=8, p=1; about 32 MiB and 50-100 ms per hash), a 16-byte random salt, 32-byte key.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 32
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024

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


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=2 * 128 * r * n + 2**20,
        dklen=SCRYPT_DKLEN,
    )  # fmt: skip


def check_password_rules(password: str) -> None:
    """``InvalidParameterException`` unless ``password`` has 12-1024 characters."""
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidParameterException(
            f"A console password has {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters."
        )


def hash_password(password: str) -> str:
    """The stored form of a console password:
    ``scrypt$<n>$<r>$<p>$<salt, base64>$<key, base64>`` (the parameters travel with the hash,
    so they can be raised later without invalidating stored hashes)."""
    check_password_rules(password)
    salt = secrets.token_bytes(16)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored`` (a :func:`hash_password` value), compared in
    constant time. With no stored hash a dummy hash is still computed, so the time taken does
    not tell whether the account exists or has a password."""
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    parts = (stored or "").split("$")
    try:
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError("not a scrypt hash")
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        if not (2**10 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16):
            raise ValueError("scrypt parameters out of range")
        salt, expected = base64.b64decode(parts[4]), base64.b64decode(parts[5])
    except ValueError:
        _scrypt(password, b"\0" * 16, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        return False
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), expected)
