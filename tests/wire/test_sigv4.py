"""SigV4 verification against requests signed by botocore's own signer."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from facegate.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from facegate.wire.sigv4 import SignedRequest, VerifiedCaller, verify

KEY, SECRET = "FGAKTESTTESTTEST0001", "s3cr3t-" + "x" * 33
NOW = dt.datetime(2026, 11, 23, 12, 0, 0, tzinfo=dt.UTC)


def lookup(access_key_id: str) -> str | None:
    return SECRET if access_key_id == KEY else None


def sign(
    body: bytes = b'{"CollectionId":"c1"}',
    *,
    target: str = "RekognitionService.DescribeCollection",
    url: str = "http://127.0.0.1:8750/",
    secret: str = SECRET,
    service: str = "rekognition",
    region: str = "us-east-1",
    at: dt.datetime = NOW,
    extra: dict[str, str] | None = None,
) -> SignedRequest:
    headers = {
        "X-Amz-Target": target,
        "Content-Type": "application/x-amz-json-1.1",
        **(extra or {}),
    }
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
        SigV4Auth(Credentials(KEY, secret), service, region).add_auth(request)
    prepared = request.prepare()
    path, _, query = prepared.url.split("127.0.0.1:8750", 1)[1].partition("?")
    sent = {
        k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in prepared.headers.items()
    }
    sent["host"] = "127.0.0.1:8750"
    return SignedRequest("POST", path or "/", query, sent, body)


def replace(req: SignedRequest, **changes: object) -> SignedRequest:
    fields = {**req.__dict__, **changes}
    return SignedRequest(**fields)


def with_header(req: SignedRequest, name: str, value: str | None) -> SignedRequest:
    headers = dict(req.headers)
    if value is None:
        headers.pop(name, None)
    else:
        headers[name] = value
    return replace(req, headers=headers)


def test_botocore_signed_request_verifies() -> None:
    caller = verify(sign(), lookup, now=NOW)
    assert caller == VerifiedCaller(KEY, "us-east-1", "rekognition", NOW)


def test_query_string_and_whitespace_canonicalisation() -> None:
    req = sign(url="http://127.0.0.1:8750/?b=2&a=x%20y&a=1", extra={"X-Custom": "a   b  c"})
    assert verify(req, lookup, now=NOW).access_key_id == KEY


def test_any_region_unless_configured() -> None:
    req = sign(region="eu-west-1")
    assert verify(req, lookup, now=NOW).region == "eu-west-1"
    with pytest.raises(InvalidSignatureException, match="scoped"):
        verify(req, lookup, now=NOW, region="us-east-1")


@pytest.mark.parametrize(
    ("mutate", "error", "fragment"),
    [
        (lambda r: replace(r, body=r.body + b" "), InvalidSignatureException, "does not match"),
        (
            lambda r: with_header(r, "x-amz-target", "RekognitionService.DeleteCollection"),
            InvalidSignatureException,
            "does not match",
        ),
        (
            lambda r: with_header(r, "authorization", None),
            MissingAuthenticationTokenException,
            "Missing",
        ),
        (
            lambda r: with_header(
                r, "authorization", r.headers["authorization"].split(", Signature")[0]
            ),
            IncompleteSignatureException,
            "Signature",
        ),
        (
            lambda r: with_header(r, "authorization", r.headers["authorization"][:-2] + "zz"),
            IncompleteSignatureException,
            "hex",
        ),
        (
            lambda r: with_header(r, "authorization", "Basic dXNlcjpwYXNz"),
            IncompleteSignatureException,
            "algorithm",
        ),
        (
            lambda r: with_header(r, "authorization", "AWS4-HMAC-SHA256 " + "x" * 5000),
            IncompleteSignatureException,
            "too long",
        ),
        (lambda r: with_header(r, "x-amz-date", None), IncompleteSignatureException, "X-Amz-Date"),
        (
            lambda r: with_header(r, "x-amz-date", "2026-11-23T12:00:00Z"),
            IncompleteSignatureException,
            "ISO 8601",
        ),
        (
            lambda r: with_header(r, "x-amz-date", "20261124T120000Z"),
            InvalidSignatureException,
            "Credential date",
        ),
        (
            lambda r: with_header(r, "x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            InvalidSignatureException,
            "unsigned payloads",
        ),
    ],
)
def test_tampering_is_refused(mutate, error, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=fragment):
        verify(mutate(sign()), lookup, now=NOW)


def test_matching_content_sha256_is_accepted() -> None:
    body = b'{"CollectionId":"c1"}'
    req = sign(body, extra={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    assert verify(req, lookup, now=NOW).access_key_id == KEY


def test_wrong_secret_and_unknown_key() -> None:
    with pytest.raises(InvalidSignatureException, match="does not match") as info:
        verify(sign(secret="another-secret"), lookup, now=NOW)
    assert SECRET not in str(info.value)
    with pytest.raises(UnrecognizedClientException, match="security token"):
        verify(sign(), lambda _: None, now=NOW)


def test_expired_and_future_dates() -> None:
    req = sign()
    with pytest.raises(InvalidSignatureException, match="Signature expired: 20261123T120000Z"):
        verify(req, lookup, now=NOW + dt.timedelta(minutes=6))
    with pytest.raises(InvalidSignatureException, match="not yet current"):
        verify(req, lookup, now=NOW - dt.timedelta(minutes=6))
    assert verify(req, lookup, now=NOW + dt.timedelta(minutes=4)).access_key_id == KEY


def test_wrong_service() -> None:
    with pytest.raises(InvalidSignatureException, match="rekognition"):
        verify(sign(service="s3"), lookup, now=NOW)


def test_target_must_be_signed() -> None:
    req = sign()
    auth = req.headers["authorization"].replace(";x-amz-target", "")
    assert "x-amz-target" not in auth
    with pytest.raises(InvalidSignatureException, match="x-amz-target"):
        verify(with_header(req, "authorization", auth), lookup, now=NOW)


def test_real_boto3_client_request_verifies() -> None:
    """Capture what boto3's Rekognition client really sends, then verify it."""
    import boto3
    from botocore.awsrequest import AWSResponse

    captured: list[SignedRequest] = []

    def capture(request: object, **_: object) -> AWSResponse:
        prepared = request  # botocore AWSPreparedRequest
        url = prepared.url  # type: ignore[attr-defined]
        path, _, query = url.split("127.0.0.1:8750", 1)[1].partition("?")
        headers = {
            k.lower(): v.decode() if isinstance(v, bytes) else v
            for k, v in prepared.headers.items()  # type: ignore[attr-defined]
        }
        headers.setdefault("host", "127.0.0.1:8750")
        body = prepared.body or b""  # type: ignore[attr-defined]
        captured.append(SignedRequest("POST", path or "/", query, headers, body))
        raw = mock.Mock()
        raw.stream.return_value = [json.dumps({"CollectionIds": []}).encode()]
        return AWSResponse(url, 200, {}, raw)

    client = boto3.client(
        "rekognition",
        endpoint_url="http://127.0.0.1:8750",
        region_name="us-east-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    )
    client.meta.events.register("before-send", capture)
    client.list_collections(MaxResults=5)
    (req,) = captured
    signed_at = dt.datetime.strptime(req.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=dt.UTC
    )
    assert verify(req, lookup, now=signed_at).access_key_id == KEY
