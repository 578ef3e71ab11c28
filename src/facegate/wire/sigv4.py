"""Server-side verification of AWS Signature Version 4 (header form), as boto3 and the AWS CLI
sign Rekognition requests.

Following the published SigV4 process, the server rebuilds what the client signed:
1. the canonical request: method, canonical URI (each path segment URI-encoded), canonical query
   string (pairs sorted by name then value, RFC 3986 encoding), canonical headers (the signed
   headers only, lower-case names, values trimmed with inner whitespace collapsed, sorted),
   the signed-header list, and the hex SHA-256 of the body as received;
2. the string to sign: ``AWS4-HMAC-SHA256``, the X-Amz-Date, the credential scope
   (``date/region/service/aws4_request``) and the hex SHA-256 of the canonical request;
3. the signing key: HMAC-SHA256 chained over date, region, service and ``aws4_request``,
   starting from ``"AWS4" + secret``;
and compares its signature with the caller's in constant time.

Refused, each with AWS's error code: no Authorization header (presigned query strings are not
supported); a malformed or oversized header; a missing or malformed X-Amz-Date, or one outside
``max_skew`` of the server clock (replay window); a scope for another service, or another region
when one is configured; ``host``, ``x-amz-date`` or (when present) ``x-amz-target`` not signed, so
neither the operation nor the date can be swapped; an ``x-amz-content-sha256`` that differs from
the body's hash or is ``UNSIGNED-PAYLOAD``; an unknown, revoked or expired key; a wrong signature.
Messages never contain the secret, the signing key or the expected signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import quote, unquote

from facegate.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_AUTHORIZATION_LENGTH = 4096
_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEADER_NAME = re.compile(r"^[a-z0-9!#$%&'*+.^_`|~-]+$")


@dataclass(frozen=True)
class SignedRequest:
    """What the HTTP layer received. ``path`` and ``query`` are raw (percent-encoded)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class VerifiedCaller:
    access_key_id: str
    region: str
    service: str
    signed_at: datetime


class SecretLookup(Protocol):
    def __call__(self, access_key_id: str) -> str | None:
        """The secret of a usable key, or None for an unknown, revoked or expired key."""
        ...


@dataclass(frozen=True)
class _Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def _parse_authorization(value: str) -> _Authorization:
    if len(value) > MAX_AUTHORIZATION_LENGTH:
        raise IncompleteSignatureException("The Authorization header is too long.")
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Unsupported authorization algorithm; only {ALGORITHM} is accepted."
        )
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, val = item.strip().partition("=")
        if not sep or name not in ("Credential", "SignedHeaders", "Signature"):
            raise IncompleteSignatureException(f"Malformed Authorization component: {name[:32]!r}.")
        if name in parts:
            raise IncompleteSignatureException(f"Duplicate Authorization component {name}.")
        parts[name] = val.strip()
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not parts.get(name):
            raise IncompleteSignatureException(f"Authorization header requires '{name}'.")
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope):
        raise IncompleteSignatureException(
            "Credential must be <key>/<date>/<region>/<service>/aws4_request."
        )
    signature = parts["Signature"]
    if not _HEX64.match(signature):
        raise IncompleteSignatureException("Signature must be 64 lower-case hex characters.")
    signed = tuple(parts["SignedHeaders"].split(";"))
    if any(not _HEADER_NAME.match(h) for h in signed) or list(signed) != sorted(set(signed)):
        raise IncompleteSignatureException("SignedHeaders must be sorted lower-case header names.")
    return _Authorization(scope[0], scope[1], scope[2], scope[3], signed, signature)


def _check_date(
    amz_date: str | None, auth: _Authorization, now: datetime, skew: timedelta
) -> datetime:
    if amz_date is None:
        raise IncompleteSignatureException("The request must contain an X-Amz-Date header.")
    if not _AMZ_DATE.match(amz_date):
        raise IncompleteSignatureException("X-Amz-Date must be in ISO 8601 basic format.")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise IncompleteSignatureException("X-Amz-Date is not a valid date.") from exc
    if auth.date != amz_date[:8]:
        raise InvalidSignatureException(
            f"Credential date {auth.date[:8]} does not match X-Amz-Date {amz_date[:8]}."
        )
    fmt = "%Y%m%dT%H%M%SZ"
    minutes = int(skew.total_seconds() // 60)
    if signed_at < now - skew:
        raise InvalidSignatureException(
            f"Signature expired: {amz_date} is now earlier than "
            f"{(now - skew).strftime(fmt)} ({now.strftime(fmt)} - {minutes} min.)"
        )
    if signed_at > now + skew:
        raise InvalidSignatureException(
            f"Signature not yet current: {amz_date} is still later than "
            f"{(now + skew).strftime(fmt)} ({now.strftime(fmt)} + {minutes} min.)"
        )
    return signed_at


def _canonical_uri(path: str) -> str:
    segments = [quote(unquote(s), safe="-_.~") for s in (path or "/").split("/")]
    uri = "/".join(segments)
    return uri if uri.startswith("/") else "/" + uri


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for item in query.split("&"):
        name, _, value = item.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _canonical_headers(headers: Mapping[str, str], signed: tuple[str, ...]) -> str:
    lines = []
    for name in signed:
        value = headers.get(name)
        if value is None:
            raise InvalidSignatureException(f"Signed header {name} is missing from the request.")
        lines.append(f"{name}:{' '.join(value.split())}\n")
    return "".join(lines)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def expected_signature(
    request: SignedRequest, auth: _Authorization, amz_date: str, secret: str
) -> str:
    """The signature the client should have sent (the server's side of SigV4)."""
    payload_hash = hashlib.sha256(request.body).hexdigest()
    canonical = "\n".join(
        (
            request.method.upper(),
            _canonical_uri(request.path),
            _canonical_query(request.query),
            _canonical_headers(request.headers, auth.signed_headers),
            ";".join(auth.signed_headers),
            payload_hash,
        )
    )
    scope = f"{auth.date}/{auth.region}/{auth.service}/aws4_request"
    to_sign = "\n".join(
        (ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest())
    )
    key = _hmac(("AWS4" + secret).encode("utf-8"), auth.date)
    for part in (auth.region, auth.service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def verify(
    request: SignedRequest,
    lookup: SecretLookup,
    *,
    now: datetime,
    service: str = "rekognition",
    region: str | None = None,
    max_skew: timedelta = timedelta(minutes=5),
) -> VerifiedCaller:
    """Verify a SigV4-signed request; returns the caller or raises (see the module docstring)."""
    headers = request.headers
    authorization = headers.get("authorization")
    if not authorization:
        if "X-Amz-Signature=" in request.query:
            raise MissingAuthenticationTokenException(
                "Missing Authentication Token (presigned query strings are not supported)."
            )
        raise MissingAuthenticationTokenException("Missing Authentication Token")
    auth = _parse_authorization(authorization)
    amz_date = headers.get("x-amz-date")
    signed_at = _check_date(amz_date, auth, now, max_skew)
    assert amz_date is not None
    if auth.service != service or (region is not None and auth.region != region):
        raise InvalidSignatureException(
            f"Credential should be scoped to a valid region and to the service '{service}'."
        )
    required = {"host", "x-amz-date"} | ({"x-amz-target"} if "x-amz-target" in headers else set())
    missing = sorted(required - set(auth.signed_headers))
    if missing:
        raise InvalidSignatureException(f"These headers must be signed: {', '.join(missing)}.")
    declared = headers.get("x-amz-content-sha256")
    if declared is not None and declared != hashlib.sha256(request.body).hexdigest():
        raise InvalidSignatureException(
            "x-amz-content-sha256 does not match the body (unsigned payloads are not accepted)."
        )
    secret = lookup(auth.access_key_id)
    if secret is None:
        raise UnrecognizedClientException("The security token included in the request is invalid.")
    expected = expected_signature(request, auth, amz_date, secret)
    if not hmac.compare_digest(expected, auth.signature):
        raise InvalidSignatureException(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return VerifiedCaller(auth.access_key_id, auth.region, auth.service, signed_at)
