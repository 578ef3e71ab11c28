"""Hostile requests at the wire layer: JSON bodies, SigV4 headers and parameters. Whatever
arrives, the answer is a result or one of facegate's modelled errors (hypothesis)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facegate.errors import FacegateError, SerializationException
from facegate.wire.protocol import MAX_JSON_DEPTH, decode_body
from facegate.wire.shapes import ServiceModel
from facegate.wire.sigv4 import SignedRequest, verify

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODEL = ServiceModel.load()
OPERATIONS = sorted(MODEL.operation_names())
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=5)
    ),
    max_leaves=30,
)


@FUZZ
@given(st.binary(max_size=2048))
def test_any_bytes_as_a_body(body: bytes) -> None:
    try:
        value = decode_body(body)
    except FacegateError:
        return
    assert isinstance(value, dict)


@FUZZ
@given(st.integers(1, 5000))
def test_deep_nesting_is_refused_not_crashed(depth: int) -> None:
    body = ('{"a":' * depth + "1" + "}" * depth).encode()
    if depth + 1 <= MAX_JSON_DEPTH:  # the objects and the number inside the innermost one
        assert isinstance(decode_body(body), dict)
        return
    with pytest.raises(SerializationException, match=f"nested deeper than {MAX_JSON_DEPTH} "):
        decode_body(body)


def _rekognition_like() -> st.SearchStrategy[dict[str, Any]]:
    """Objects with Rekognition's own parameter names and arbitrary values."""
    names = st.sampled_from(
        [
            "CollectionId", "Image", "MaxFaces", "FaceMatchThreshold", "FaceIds", "UserId",
            "ExternalImageId", "QualityFilter", "Attributes", "SimilarityThreshold", "Tags",
            "ClientRequestToken", "NextToken", "MaxResults", "SourceImage", "TargetImage",
        ]
    )  # fmt: skip
    value = JSON_VALUES | st.fixed_dictionaries({"Bytes": st.text(max_size=64)})
    return st.dictionaries(names | st.text(max_size=12), value, max_size=8)


@FUZZ
@given(st.sampled_from(OPERATIONS), _rekognition_like())
def test_any_parameters_for_any_operation(operation: str, params: dict[str, Any]) -> None:
    # through JSON, as they would arrive
    body = json.loads(json.dumps(params))
    try:
        out = MODEL.validate_input(operation, body)
    except FacegateError:
        return
    assert isinstance(out, dict)


HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=300)


@FUZZ
@given(
    HEADER_TEXT,
    st.one_of(st.none(), HEADER_TEXT, st.just("20261123T120000Z")),
    st.dictionaries(
        st.sampled_from(["host", "x-amz-content-sha256", "x-amz-security-token", "x-amz-target"]),
        HEADER_TEXT,
        max_size=4,
    ),
    st.binary(max_size=256),
)
def test_any_authorization_header(
    authorization: str, amz_date: str | None, extra: dict[str, str], body: bytes
) -> None:
    headers = {"authorization": authorization, **extra}
    if amz_date is not None:
        headers["x-amz-date"] = amz_date
    request = SignedRequest("POST", "/", "", headers, body)
    lookups: list[str] = []

    def lookup(key: str) -> str | None:
        lookups.append(key)
        return "secret-" + key

    try:
        verify(request, lookup, now=NOW)
    except FacegateError:
        pass
    else:  # a random header never carries a valid signature
        raise AssertionError(f"accepted {headers!r}")
    assert len(lookups) <= 1


@FUZZ
@given(
    st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30),
    st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=30),
    st.lists(
        st.sampled_from(["host", "x-amz-date", "content-type", "x-amz-target", ";", ""]), max_size=5
    ),
    st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=70),
)
def test_well_formed_but_wrong_authorization(
    key: str, scope: str, signed: list[str], signature: str
) -> None:
    header = (
        f"AWS4-HMAC-SHA256 Credential={key}/20261123/{scope}/rekognition/aws4_request, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    request = SignedRequest(
        "POST",
        "/",
        "",
        {"authorization": header, "x-amz-date": "20261123T120000Z", "host": "h"},
        b"{}",
    )
    try:
        verify(request, lambda k: "s", now=NOW)
    except FacegateError:
        return
    raise AssertionError(f"accepted {header!r}")
