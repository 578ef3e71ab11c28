"""SigV4 verification against requests signed by botocore's own signer and by a real boto3 client.

Every request here is signed by botocore (``SigV4Auth``, ``SigV4QueryAuth`` or a boto3 client), so
passing tests prove compatibility with what real clients send, not with a second copy of our own
canonicalisation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from unittest import mock
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

from facegate.errors import (
    FacegateError,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from facegate.wire.sigv4 import (
    MAX_AUTHORIZATION_LENGTH,
    SignedRequest,
    VerifiedCaller,
    canonical_request,
    verify,
)

KEY, SECRET = "FGAKTESTTESTTEST0001", "s3cr3t-" + "x" * 33
HOST = "127.0.0.1:8750"
NOW = dt.datetime(2026, 11, 23, 12, 0, 0, tzinfo=dt.UTC)
BODY = b'{"CollectionId": "c1"}'
JSON_HEADERS = {
    "X-Amz-Target": "RekognitionService.DescribeCollection",
    "Content-Type": "application/x-amz-json-1.1",
}
MISMATCH = "The request signature we calculated does not match the signature you provided."

Mutation = Callable[[SignedRequest], SignedRequest]


def lookup(access_key_id: str) -> str | None:
    return SECRET if access_key_id == KEY else None


def received(method: str, url: str, headers: object, body: bytes | None) -> SignedRequest:
    """What facegate's HTTP layer would hand over for a request botocore sends to ``url``."""
    parts = urlsplit(url)
    sent = {
        str(name).lower(): value.decode() if isinstance(value, bytes) else str(value)
        for name, value in headers.items()  # type: ignore[attr-defined]
    }
    sent.setdefault("host", parts.netloc)  # urllib3 sends Host from the URL, as botocore signed it
    return SignedRequest(method, parts.path or "/", parts.query, sent, body or b"")


def sign(
    body: bytes = BODY,
    *,
    path: str = "/",
    headers: dict[str, str] | None = None,
    secret: str = SECRET,
    token: str | None = None,
    service: str = "rekognition",
    region: str = "us-east-1",
    at: dt.datetime = NOW,
) -> SignedRequest:
    """Sign with botocore's SigV4Auth, its clock frozen at ``at``."""
    request = AWSRequest(
        method="POST",
        url=f"http://{HOST}{path}",
        data=body,
        headers=JSON_HEADERS if headers is None else headers,
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
        SigV4Auth(Credentials(KEY, secret, token), service, region).add_auth(request)
    prepared = request.prepare()
    return received("POST", str(prepared.url), prepared.headers, prepared.body)


def with_header(req: SignedRequest, name: str, value: str | None) -> SignedRequest:
    headers = dict(req.headers)
    if value is None:
        headers.pop(name, None)
    else:
        headers[name] = value
    return SignedRequest(req.method, req.path, req.query, headers, req.body)


def with_authorization(edit: Callable[[str], str]) -> Mutation:
    return lambda req: with_header(req, "authorization", edit(req.headers["authorization"]))


def signature_of(req: SignedRequest) -> str:
    return req.headers["authorization"].rsplit("Signature=", 1)[1]


@pytest.fixture
def botocore_canonical(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], str]]:
    """The canonical request botocore logged (at DEBUG) for the last request it signed."""

    def last() -> str:
        logged = [r for r in caplog.records if r.msg == "CanonicalRequest:\n%s"]
        return str(logged[-1].args[0])  # type: ignore[index]

    with caplog.at_level(logging.DEBUG, logger="botocore.auth"):
        yield last


# --- accepted ------------------------------------------------------------------------------------


def test_botocore_signed_json_request_verifies() -> None:
    req = sign()
    assert req.headers["host"] == HOST
    assert (
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target," in req.headers["authorization"]
    )
    assert verify(req, lookup, now=NOW) == VerifiedCaller(
        KEY, "us-east-1", "rekognition", NOW, ("content-type", "host", "x-amz-date", "x-amz-target")
    )


@pytest.mark.parametrize(
    ("operation", "params", "response"),
    [
        ("list_collections", {"MaxResults": 5}, {"CollectionIds": []}),
        ("detect_faces", {"Image": {"Bytes": b"\xff\xd8\xff" + bytes(range(256))}}, {}),
    ],
)
def test_real_boto3_client_request_verifies(
    operation: str, params: dict[str, object], response: dict[str, object]
) -> None:
    """Capture what boto3's Rekognition client really sends (nothing leaves the process)."""
    captured: list[SignedRequest] = []

    def capture(request: object, **_: object) -> object:
        url = str(request.url)  # type: ignore[attr-defined]
        body = request.body  # type: ignore[attr-defined]
        captured.append(received("POST", url, request.headers, body))  # type: ignore[attr-defined]
        raw = mock.Mock()
        raw.stream.return_value = [json.dumps(response).encode()]
        return AWSResponse(url, 200, {}, raw)

    client = boto3.client(
        "rekognition",
        endpoint_url="http://127.0.0.1:1",
        region_name="eu-west-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    )
    client.meta.events.register("before-send", capture)
    getattr(client, operation)(**params)
    (req,) = captured
    assert req.headers["host"] == "127.0.0.1:1"
    signed_at = dt.datetime.strptime(req.headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    now = signed_at.replace(tzinfo=dt.UTC) + dt.timedelta(seconds=2)
    caller = verify(req, lookup, now=now, region="eu-west-1")
    assert (caller.access_key_id, caller.region, caller.service) == (
        KEY,
        "eu-west-1",
        "rekognition",
    )
    with pytest.raises(InvalidSignatureException, match=MISMATCH):
        verify(
            with_header(req, "x-amz-target", "RekognitionService.DeleteCollection"), lookup, now=now
        )


def test_query_string_and_repeated_spaces(botocore_canonical: Callable[[], str]) -> None:
    req = sign(
        path="/?b=2&a=x%20y&a=1&c=%2Fz&empty=",
        headers={**JSON_HEADERS, "X-Custom": "  a   b \t c  ", "X-Other": "tab\there"},
    )
    ours = canonical_request(req, ("content-type", "host", "x-amz-date", "x-amz-target"), "h")
    assert "\na=1&a=x%20y&b=2&c=%2Fz&empty=\n" in ours
    signed = "content-type;host;x-amz-date;x-amz-target;x-custom;x-other"
    theirs = canonical_request(req, signed.split(";"), hashlib.sha256(req.body).hexdigest())
    assert theirs == botocore_canonical()
    assert "\nx-custom:a b c\nx-other:tab here\n" in theirs
    assert verify(req, lookup, now=NOW).access_key_id == KEY


def test_path_is_normalised_and_encoded_twice(botocore_canonical: Callable[[], str]) -> None:
    req = sign(path="/a%20b/./c//d/../caf%C3%A9~/")
    signed = ["content-type", "host", "x-amz-date", "x-amz-target"]
    ours = canonical_request(req, signed, hashlib.sha256(req.body).hexdigest())
    assert ours == botocore_canonical()
    assert ours.splitlines()[1] == "/a%2520b/c/caf%25C3%25A9~/"
    assert verify(req, lookup, now=NOW).access_key_id == KEY


def test_empty_body_and_unknown_region_are_accepted() -> None:
    req = sign(b"", region="ap-southeast-7")
    assert verify(req, lookup, now=NOW).region == "ap-southeast-7"


def test_matching_content_sha256_is_accepted() -> None:
    req = sign(headers={**JSON_HEADERS, "X-Amz-Content-SHA256": hashlib.sha256(BODY).hexdigest()})
    assert verify(req, lookup, now=NOW).access_key_id == KEY


def test_skew_boundary_is_inclusive() -> None:
    req = sign()
    five = dt.timedelta(minutes=5)
    assert verify(req, lookup, now=NOW + five).signed_at == NOW
    assert verify(req, lookup, now=NOW - five).signed_at == NOW
    tz = dt.timezone(dt.timedelta(hours=-7))
    assert verify(req, lookup, now=NOW.astimezone(tz)).signed_at == NOW
    with pytest.raises(InvalidSignatureException, match="expired"):
        verify(req, lookup, now=NOW + five + dt.timedelta(seconds=1))


# --- refused -------------------------------------------------------------------------------------

OTHER_SIG = "0" * 64
REFUSED: list[tuple[str, Mutation, type[FacegateError], str]] = [
    (
        "tampered body",
        lambda r: SignedRequest(r.method, r.path, r.query, r.headers, r.body + b" "),
        InvalidSignatureException,
        MISMATCH,
    ),
    (
        "tampered x-amz-target",
        lambda r: with_header(r, "x-amz-target", "RekognitionService.DeleteCollection"),
        InvalidSignatureException,
        MISMATCH,
    ),
    (
        "tampered query",
        lambda r: SignedRequest(r.method, r.path, "a=1", r.headers, r.body),
        InvalidSignatureException,
        MISMATCH,
    ),
    (
        "tampered path",
        lambda r: SignedRequest(r.method, "/other", r.query, r.headers, r.body),
        InvalidSignatureException,
        MISMATCH,
    ),
    (
        "tampered host",
        lambda r: with_header(r, "host", "evil.example"),
        InvalidSignatureException,
        MISMATCH,
    ),
    (
        "missing Authorization",
        lambda r: with_header(r, "authorization", None),
        MissingAuthenticationTokenException,
        "^Missing Authentication Token$",
    ),
    (
        "empty Authorization",
        lambda r: with_header(r, "authorization", ""),
        MissingAuthenticationTokenException,
        "^Missing Authentication Token$",
    ),
    (
        "missing Signature",
        with_authorization(lambda a: a.split(", Signature=")[0]),
        IncompleteSignatureException,
        "requires 'Signature' parameter",
    ),
    (
        "only a Signature",
        lambda r: with_header(r, "authorization", f"AWS4-HMAC-SHA256 Signature={OTHER_SIG}"),
        IncompleteSignatureException,
        "requires 'Credential', 'SignedHeaders' parameters",
    ),
    (
        "bad hex",
        with_authorization(lambda a: a[:-2] + "zz"),
        IncompleteSignatureException,
        "64 lower-case hexadecimal",
    ),
    (
        "upper-case hex",
        with_authorization(lambda a: a[:-64] + a[-64:].upper()),
        IncompleteSignatureException,
        "64 lower-case hexadecimal",
    ),
    (
        "short signature",
        with_authorization(lambda a: a[:-1]),
        IncompleteSignatureException,
        "64 lower-case hexadecimal",
    ),
    (
        "other scheme",
        lambda r: with_header(r, "authorization", "Basic dXNlcjpwYXNz"),
        IncompleteSignatureException,
        "only AWS4-HMAC-SHA256",
    ),
    (
        "garbage",
        lambda r: with_header(r, "authorization", "AWS4-HMAC-SHA256 \x00garbage\n"),
        IncompleteSignatureException,
        "component",
    ),
    (
        "unknown component",
        with_authorization(lambda a: a + ", Foo=bar"),
        IncompleteSignatureException,
        "component",
    ),
    (
        "duplicate component",
        with_authorization(lambda a: a + f", Signature={OTHER_SIG}"),
        IncompleteSignatureException,
        "repeats 'Signature'",
    ),
    (
        "malformed credential",
        with_authorization(lambda a: a.replace("/aws4_request", "/aws5_request")),
        IncompleteSignatureException,
        "Credential must have the form",
    ),
    (
        "credential date not yyyymmdd",
        with_authorization(lambda a: a.replace("/20261123/", "/2026-11-23/")),
        IncompleteSignatureException,
        "Credential must have the form",
    ),
    (
        "unsorted SignedHeaders",
        with_authorization(lambda a: a.replace("content-type;host", "host;content-type")),
        IncompleteSignatureException,
        "SignedHeaders must",
    ),
    (
        "header too long",
        lambda r: with_header(r, "authorization", "AWS4-HMAC-SHA256 " + "x" * 5000),
        IncompleteSignatureException,
        f"too long \\(limit {MAX_AUTHORIZATION_LENGTH} characters\\)",
    ),
    (
        "missing X-Amz-Date",
        lambda r: with_header(r, "x-amz-date", None),
        IncompleteSignatureException,
        "'X-Amz-Date' header",
    ),
    (
        "extended X-Amz-Date",
        lambda r: with_header(r, "x-amz-date", "2026-11-23T12:00:00Z"),
        IncompleteSignatureException,
        "ISO 8601 basic format",
    ),
    (
        "impossible X-Amz-Date",
        lambda r: with_header(r, "x-amz-date", "20261399T120000Z"),
        IncompleteSignatureException,
        "not a valid date",
    ),
    (
        "X-Amz-Date on another day",
        lambda r: with_header(r, "x-amz-date", "20261124T000100Z"),
        InvalidSignatureException,
        re.escape("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date")
        + ".*'20261123' != '20261124'",
    ),
    (
        "credential scope on another day",
        with_authorization(lambda a: a.replace("/20261123/", "/20261122/")),
        InvalidSignatureException,
        "'20261122' != '20261123', from '20261123T120000Z'",
    ),
    (
        "x-amz-target not signed",
        with_authorization(lambda a: a.replace(";x-amz-target", "")),
        InvalidSignatureException,
        "must be signed .*: x-amz-target",
    ),
    (
        "host not signed",
        with_authorization(lambda a: a.replace(";host", "")),
        InvalidSignatureException,
        "must be signed .*: host",
    ),
    (
        "signed header absent",
        lambda r: with_header(r, "content-type", None),
        InvalidSignatureException,
        "missing from the request: content-type",
    ),
    (
        "content sha256 of another body",
        lambda r: with_header(r, "x-amz-content-sha256", hashlib.sha256(b"{}").hexdigest()),
        InvalidSignatureException,
        "'x-amz-content-sha256' header does not match what was computed",
    ),
    (
        "presigned query string as well",
        lambda r: SignedRequest(
            r.method, r.path, f"X-Amz-Signature={OTHER_SIG}", r.headers, r.body
        ),
        IncompleteSignatureException,
        "Only one auth mechanism allowed",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "error", "fragment"),
    [pytest.param(m, e, f, id=name) for name, m, e, f in REFUSED],
)
def test_refused(mutate: Mutation, error: type[FacegateError], fragment: str) -> None:
    original = sign()
    with pytest.raises(error, match=fragment) as info:
        verify(mutate(original), lookup, now=NOW)
    assert type(info.value) is error
    message = str(info.value)
    assert "\n" not in message
    assert SECRET not in message
    assert signature_of(original) not in message


def test_wrong_secret_never_reveals_the_expected_signature() -> None:
    forged = sign(secret="another-secret")
    with pytest.raises(InvalidSignatureException) as info:
        verify(forged, lookup, now=NOW)
    assert str(info.value) == (f"{MISMATCH} Check your AWS Secret Access Key and signing method.")
    assert signature_of(sign()) not in str(info.value)
    assert SECRET not in str(info.value)


def test_unknown_key_is_unrecognized() -> None:
    with pytest.raises(
        UnrecognizedClientException,
        match=r"^The security token included in the request is invalid\.$",
    ):
        verify(sign(), lambda _: None, now=NOW)


def test_session_token_is_refused() -> None:
    req = sign(token="temporary-session-token")
    assert "x-amz-security-token" in req.headers
    with pytest.raises(UnrecognizedClientException, match="security token"):
        verify(req, lookup, now=NOW)


def test_expired_and_future_dates_use_aws_wording() -> None:
    req = sign()
    calls: list[str] = []

    def counting(key: str) -> str | None:
        calls.append(key)
        return lookup(key)

    expired = (
        "Signature expired: 20261123T120000Z is now earlier than 20261123T120100Z "
        "(20261123T120600Z - 5 min.)"
    )
    with pytest.raises(InvalidSignatureException, match=f"^{re.escape(expired)}$"):
        verify(req, counting, now=NOW + dt.timedelta(minutes=6))
    future = (
        "Signature not yet current: 20261123T120000Z is still later than 20261123T115900Z "
        "(20261123T115400Z + 5 min.)"
    )
    with pytest.raises(InvalidSignatureException, match=f"^{re.escape(future)}$"):
        verify(req, counting, now=NOW - dt.timedelta(minutes=6))
    with pytest.raises(InvalidSignatureException, match=re.escape("- 90 sec.)")):
        verify(req, counting, now=NOW + dt.timedelta(minutes=2), max_skew=dt.timedelta(seconds=90))
    assert calls == []  # no key lookup for a request refused on its date


def test_wrong_service() -> None:
    with pytest.raises(
        InvalidSignatureException,
        match="Credential should be scoped to correct service: 'rekognition'",
    ):
        verify(sign(service="s3"), lookup, now=NOW)


def test_wrong_region_when_one_is_configured() -> None:
    req = sign(region="eu-west-1")
    assert verify(req, lookup, now=NOW, region="eu-west-1").region == "eu-west-1"
    with pytest.raises(
        InvalidSignatureException,
        match="Credential should be scoped to a valid region: 'us-east-1'",
    ):
        verify(req, lookup, now=NOW, region="us-east-1")


def test_target_added_after_signing_is_refused() -> None:
    """A man in the middle adds an operation to a request signed without one."""
    req = sign(headers={"Content-Type": "application/x-amz-json-1.1"})
    assert verify(req, lookup, now=NOW).access_key_id == KEY
    forged = with_header(req, "x-amz-target", "RekognitionService.DeleteCollection")
    with pytest.raises(InvalidSignatureException, match=r"must be signed .*: x-amz-target"):
        verify(forged, lookup, now=NOW)


def test_unsigned_payload_is_refused() -> None:
    """botocore signs 'UNSIGNED-PAYLOAD' in place of the hash when told to; we refuse it."""
    req = sign(headers={**JSON_HEADERS, "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    with pytest.raises(InvalidSignatureException, match=r"Unsigned payloads .* are not accepted"):
        verify(req, lookup, now=NOW)


def test_presigned_url_is_not_supported() -> None:
    request = AWSRequest(method="POST", url=f"http://{HOST}/", data=BODY, headers=JSON_HEADERS)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        SigV4QueryAuth(Credentials(KEY, SECRET), "rekognition", "us-east-1", 300).add_auth(request)
    prepared = request.prepare()
    req = received("POST", str(prepared.url), prepared.headers, prepared.body)
    assert "X-Amz-Signature=" in req.query
    with pytest.raises(
        MissingAuthenticationTokenException, match="presigned URLs are not supported"
    ):
        verify(req, lookup, now=NOW)


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify(sign(), lookup, now=NOW.replace(tzinfo=None))
