"""Server-side verification of AWS Signature Version 4 (Authorization-header form).

boto3 and the AWS CLI sign every Rekognition call with SigV4 (service ``rekognition``). This
module is the server's half of that protocol, written from AWS's published description of SigV4
("Signature Version 4 signing process" in the IAM User Guide):

1. *Create a canonical request*: the upper-case method; the canonical URI (the path normalised as
   RFC 3986 section 5.2.4 says, with empty segments dropped, then every segment URI-encoded once
   more, because for services other than S3 the guide asks for each segment to be encoded twice
   and the path arrives encoded once); the canonical query string (names and values
   URI-encoded with the RFC 3986 unreserved set, sorted by name, then by value); the canonical
   headers (only the signed ones, lower-case names, values trimmed with runs of whitespace
   collapsed, sorted, each ``name:value`` and a newline); the signed-header list; the hex SHA-256
   of the body as received.
2. *Create the string to sign*: ``AWS4-HMAC-SHA256``, the X-Amz-Date, the credential scope
   ``yyyymmdd/region/service/aws4_request`` and the hex SHA-256 of the canonical request, joined by
   newlines.
3. *Derive the signing key*: HMAC-SHA256 chained over the date, region, service and
   ``aws4_request``, starting from ``"AWS4" + secret``.
4. *Calculate the signature*: hex HMAC-SHA256 of the string to sign; compared with the caller's
   in constant time (:func:`hmac.compare_digest`).

Contract of :func:`verify`: it returns a :class:`VerifiedCaller` only for a request whose every
signed part (method, path, query, signed headers, body) is what the holder of the secret signed,
dated within ``max_skew`` of ``now``, and scoped to ``service`` (and to ``region`` when one is
configured; any region otherwise). Otherwise it raises, with AWS's error codes:

- :class:`MissingAuthenticationTokenException`: no Authorization header. Presigned URLs (the
  query-string form of SigV4) are not supported and are refused the same way.
- :class:`IncompleteSignatureException`: a malformed Authorization header (longer than
  :data:`MAX_AUTHORIZATION_LENGTH`, another algorithm, unknown, repeated or missing components, a
  malformed credential scope, a signature that is not 64 lower-case hex digits, an unsorted
  SignedHeaders list) or a missing or malformed X-Amz-Date.
- :class:`InvalidSignatureException`: a scope date other than the X-Amz-Date's day, a date outside
  the replay window, a scope for another service or region, ``host``, ``x-amz-date`` or (when sent)
  ``x-amz-target`` left unsigned (so neither the operation nor the date can be swapped in
  transit), an ``x-amz-content-sha256`` that is not the body's hash (``UNSIGNED-PAYLOAD``
  included: this service always signs its payload), or a wrong signature.
- :class:`UnrecognizedClientException`: an unknown, revoked or expired key (``lookup`` returned
  None) or a session token, which facegate never issues.

Choosing parameters: ``max_skew`` bounds how long a captured request can be replayed and how far
client clocks may drift; AWS uses 5 minutes and boto3 assumes it. Pin ``region`` only when clients
are told one region; boto3 signs with whatever region its configuration names.

Messages are single lines that never contain the secret, the signing key or the expected
signature. The HTTP layer must hand over the path and query exactly as received (still
percent-encoded) and the ``Host`` header the client sent.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
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
"""Longest Authorization header accepted, in characters (boto3's are about 200)."""

_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z", re.ASCII)
_SCOPE_DATE = re.compile(r"\d{8}", re.ASCII)
_ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9]{1,128}", re.ASCII)
_SCOPE_NAME = re.compile(r"[a-z0-9-]{1,64}", re.ASCII)
_SIGNATURE = re.compile(r"[0-9a-f]{64}", re.ASCII)
# An HTTP header name (RFC 9110 "token"), lower-cased as SigV4 signs it.
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]{1,128}", re.ASCII)
_COMPONENTS = ("Credential", "SignedHeaders", "Signature")
_PRESIGN_PARAMETERS = frozenset({"x-amz-algorithm", "x-amz-credential", "x-amz-signature"})
# Characters SigV4 leaves unencoded besides ASCII letters and digits (RFC 3986 "unreserved");
# urllib's quote() always keeps these, so "safe" only needs to add "/" where wanted.
_UNRESERVED_EXTRA = "-_.~"
_UNSIGNED_PAYLOADS = ("UNSIGNED-PAYLOAD", "STREAMING-")


@dataclass(frozen=True)
class SignedRequest:
    """What the HTTP layer received.

    ``path`` and ``query`` are raw (still percent-encoded, without the ``?``); ``headers`` have
    lower-case names, with repeated headers already joined by ``","``; ``body`` is every byte
    received.
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class VerifiedCaller:
    """Who signed the request, and when (``signed_at`` is the X-Amz-Date, in UTC)."""

    access_key_id: str
    region: str
    service: str
    signed_at: datetime
    signed_headers: tuple[str, ...] = ()


class SecretLookup(Protocol):
    def __call__(self, access_key_id: str, /) -> str | None:
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

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def verify(
    request: SignedRequest,
    lookup: SecretLookup,
    *,
    now: datetime,
    service: str = "rekognition",
    region: str | None = None,
    max_skew: timedelta = timedelta(minutes=5),
) -> VerifiedCaller:
    """Verify a SigV4-signed request and return its caller, or raise (see the module docstring).

    ``now`` must be timezone-aware. ``lookup`` is called at most once, only after every check that
    needs no secret has passed.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    if max_skew < timedelta(0):
        raise ValueError("max_skew must not be negative")
    auth = _parse_authorization(_authorization_header(request))
    amz_date, signed_at = _parse_amz_date(request.headers.get("x-amz-date"))
    _check_scope_date(auth, amz_date)
    _check_freshness(amz_date, signed_at, now.astimezone(UTC), max_skew)
    _check_scope(auth, service, region)
    _check_signed_headers(auth, request.headers)
    payload_hash = _payload_hash(request)
    if "x-amz-security-token" in request.headers:
        raise UnrecognizedClientException("The security token included in the request is invalid.")
    secret = lookup(auth.access_key_id)
    if secret is None:
        raise UnrecognizedClientException("The security token included in the request is invalid.")
    canonical = canonical_request(request, auth.signed_headers, payload_hash)
    expected = _signature(secret, auth, _string_to_sign(amz_date, auth.scope, canonical))
    if not hmac.compare_digest(expected.encode("ascii"), auth.signature.encode("ascii")):
        raise InvalidSignatureException(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return VerifiedCaller(
        auth.access_key_id, auth.region, auth.service, signed_at, auth.signed_headers
    )


# --- parsing -------------------------------------------------------------------------------------


def _authorization_header(request: SignedRequest) -> str:
    presigned = any(
        item.partition("=")[0].lower() in _PRESIGN_PARAMETERS
        for item in request.query.split("&")
        if item
    )
    value = request.headers.get("authorization")
    if not value:
        if presigned:
            raise MissingAuthenticationTokenException(
                "Missing Authentication Token (presigned URLs are not supported; "
                "sign with the Authorization header)"
            )
        raise MissingAuthenticationTokenException("Missing Authentication Token")
    if presigned:
        raise IncompleteSignatureException(
            "Only one auth mechanism allowed; send either the Authorization header or "
            "X-Amz-* query parameters, not both (presigned URLs are not supported)."
        )
    if len(value) > MAX_AUTHORIZATION_LENGTH:
        raise IncompleteSignatureException(
            f"Authorization header is too long (limit {MAX_AUTHORIZATION_LENGTH} characters)."
        )
    return value


def _parse_authorization(value: str) -> _Authorization:
    """Parse ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`` strictly."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Unsupported authorization algorithm; only {ALGORITHM} is accepted."
        )
    components = _components(rest)
    access_key_id, date, region, service = _parse_credential(components["Credential"])
    return _Authorization(
        access_key_id=access_key_id,
        date=date,
        region=region,
        service=service,
        signed_headers=_parse_signed_headers(components["SignedHeaders"]),
        signature=_parse_signature(components["Signature"]),
    )


def _components(text: str) -> dict[str, str]:
    components: dict[str, str] = {}
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or name not in _COMPONENTS:
            raise IncompleteSignatureException(
                "Authorization header has a component that is not Credential=, "
                "SignedHeaders= or Signature=."
            )
        if name in components:
            raise IncompleteSignatureException(f"Authorization header repeats '{name}'.")
        components[name] = value.strip()
    missing = [name for name in _COMPONENTS if not components.get(name)]
    if missing:
        needed = ", ".join(f"'{name}'" for name in missing)
        raise IncompleteSignatureException(
            f"Authorization header requires {needed} parameter{'s' if len(missing) > 1 else ''}."
        )
    return components


def _parse_credential(value: str) -> tuple[str, str, str, str]:
    parts = value.split("/")
    if (
        len(parts) != 5
        or parts[4] != "aws4_request"
        or not _ACCESS_KEY_ID.fullmatch(parts[0])
        or not _SCOPE_DATE.fullmatch(parts[1])
        or not _SCOPE_NAME.fullmatch(parts[2])
        or not _SCOPE_NAME.fullmatch(parts[3])
    ):
        raise IncompleteSignatureException(
            "Credential must have the form <access key>/<yyyymmdd>/<region>/<service>/aws4_request."
        )
    return parts[0], parts[1], parts[2], parts[3]


def _parse_signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(value.split(";"))
    if not all(_HEADER_NAME.fullmatch(name) for name in names) or list(names) != sorted(set(names)):
        raise IncompleteSignatureException(
            "SignedHeaders must be distinct lower-case header names, sorted, separated by ';'."
        )
    return names


def _parse_signature(value: str) -> str:
    if not _SIGNATURE.fullmatch(value):
        raise IncompleteSignatureException("Signature must be 64 lower-case hexadecimal digits.")
    return value


def _parse_amz_date(value: str | None) -> tuple[str, datetime]:
    if value is None:
        raise IncompleteSignatureException(
            "Authorization header requires existence of an 'X-Amz-Date' header."
        )
    if not _AMZ_DATE.fullmatch(value):
        raise IncompleteSignatureException(
            "X-Amz-Date must be in ISO 8601 basic format, yyyymmddThhmmssZ."
        )
    try:
        signed_at = datetime.strptime(value, _AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise IncompleteSignatureException("X-Amz-Date is not a valid date and time.") from exc
    return value, signed_at


# --- checks that need no secret ------------------------------------------------------------------


def _check_scope_date(auth: _Authorization, amz_date: str) -> None:
    if auth.date != amz_date[:8]:
        raise InvalidSignatureException(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{auth.date}' != '{amz_date[:8]}', from '{amz_date}'."
        )


def _check_freshness(amz_date: str, signed_at: datetime, now: datetime, skew: timedelta) -> None:
    """Refuse a date more than ``skew`` away from ``now`` (AWS's replay window and wording)."""
    window = _describe(skew)
    if signed_at < now - skew:
        raise InvalidSignatureException(
            f"Signature expired: {amz_date} is now earlier than {_amz(now - skew)} "
            f"({_amz(now)} - {window})"
        )
    if signed_at > now + skew:
        raise InvalidSignatureException(
            f"Signature not yet current: {amz_date} is still later than {_amz(now + skew)} "
            f"({_amz(now)} + {window})"
        )


def _amz(moment: datetime) -> str:
    return moment.strftime(_AMZ_DATE_FORMAT)


def _describe(skew: timedelta) -> str:
    seconds = int(skew.total_seconds())
    return f"{seconds // 60} min." if seconds % 60 == 0 else f"{seconds} sec."


def _check_scope(auth: _Authorization, service: str, region: str | None) -> None:
    if auth.service != service:
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{service}'."
        )
    if region is not None and auth.region != region:
        raise InvalidSignatureException(
            f"Credential should be scoped to a valid region: '{region}'."
        )


def _check_signed_headers(auth: _Authorization, headers: Mapping[str, str]) -> None:
    # host and x-amz-date are what SigV4 itself requires; x-amz-target names the operation of a
    # JSON 1.1 call, so an unsigned one could be swapped in transit (DescribeCollection ->
    # DeleteCollection) without breaking the signature.
    required = {"host", "x-amz-date"}
    if "x-amz-target" in headers:
        required.add("x-amz-target")
    unsigned = sorted(required.difference(auth.signed_headers))
    if unsigned:
        raise InvalidSignatureException(
            f"These headers must be signed (listed in SignedHeaders): {', '.join(unsigned)}."
        )
    absent = [name for name in auth.signed_headers if name not in headers]
    if absent:
        raise InvalidSignatureException(
            f"Signed headers are missing from the request: {', '.join(absent)}."
        )


def _payload_hash(request: SignedRequest) -> str:
    """The body's hex SHA-256; a declared ``x-amz-content-sha256`` must be exactly that."""
    computed = hashlib.sha256(request.body).hexdigest()
    declared = request.headers.get("x-amz-content-sha256")
    if declared is None or declared == computed:
        return computed
    if declared.startswith(_UNSIGNED_PAYLOADS):
        raise InvalidSignatureException(
            "Unsigned payloads (UNSIGNED-PAYLOAD, STREAMING-*) are not accepted by this service; "
            "sign the request body."
        )
    raise InvalidSignatureException(
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    )


# --- the signature -------------------------------------------------------------------------------


def canonical_request(
    request: SignedRequest, signed_headers: Sequence[str], payload_hash: str
) -> str:
    """SigV4's canonical request for ``request`` (step 1 in the module docstring).

    ``signed_headers`` must be sorted lower-case names, each present in ``request.headers``.
    Exposed so that a failed verification can be diagnosed against the client's own debug log
    (botocore logs its canonical request at DEBUG level).
    """
    return "\n".join(
        (
            request.method.upper(),
            _canonical_uri(request.path),
            _canonical_query(request.query),
            _canonical_headers(request.headers, signed_headers),
            ";".join(signed_headers),
            payload_hash,
        )
    )


def _canonical_uri(path: str) -> str:
    # The raw path is already encoded once; encoding each segment again (with "%" -> "%25")
    # is the "encode twice" the guide asks of every service but S3.
    segments = _remove_dot_segments(path)
    encoded = "/".join(quote(segment, safe=_UNRESERVED_EXTRA) for segment in segments)
    trailing = "/" if path.endswith("/") and segments else ""
    return "/" + encoded + trailing


def _remove_dot_segments(path: str) -> list[str]:
    """RFC 3986 section 5.2.4, plus dropping empty segments (AWS collapses "//")."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    return segments


def _canonical_query(query: str) -> str:
    pairs = []
    for item in query.split("&") if query else ():
        name, _, value = item.partition("=")
        pairs.append((_uri_encode(name), _uri_encode(value)))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _uri_encode(component: str) -> str:
    # Decode what the client encoded, then encode it the one canonical way (upper-case hex,
    # only unreserved characters left bare). A "+" stays a literal "+", as SigV4 wants.
    return quote(unquote(component), safe=_UNRESERVED_EXTRA)


def _canonical_headers(headers: Mapping[str, str], signed_headers: Sequence[str]) -> str:
    # Trimall: strip the value and collapse each run of whitespace to one space.
    return "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed_headers)


def _string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return "\n".join((ALGORITHM, amz_date, scope, digest))


def _signature(secret: str, auth: _Authorization, string_to_sign: str) -> str:
    key = _hmac(("AWS4" + secret).encode("utf-8"), auth.date)
    for part in (auth.region, auth.service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()
