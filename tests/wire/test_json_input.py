"""Strict JSON at every entry point (issue 18, item 15): a number literal of thousands of digits,
an unpaired surrogate escape, NaN/Infinity, a number too large for a float and deep nesting are
each the documented client error, never an unhandled exception.

``facegate.wire.jsonin.loads`` is the one decoder; the Rekognition wire
(``protocol.decode_body``: SerializationException) and the admin API
(``admin.routes.decode_json``: its JSON 400) map its refusal."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facegate.admin.routes import decode_json
from facegate.config import Settings
from facegate.errors import SerializationException
from facegate.pipeline import RawRequest, handle
from facegate.services import Services
from facegate.wire import jsonin
from facegate.wire.protocol import decode_body
from tests.signed import local_key, signed_request

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HOSTILE = [
    b'{"MaxFaces": ' + b"9" * 5000 + b"}",
    b'{"MaxFaces": -' + b"9" * 5000 + b"}",
    b'{"FaceMatchThreshold": 1' + b"0" * 5000 + b".5}",
    b'{"FaceMatchThreshold": 1e999}',
    b'{"FaceMatchThreshold": -1e999}',
    b'{"FaceMatchThreshold": NaN}',
    b'{"FaceMatchThreshold": Infinity}',
    b'{"ExternalImageId": "\\ud800"}',
    b'{"ExternalImageId": "a\\udfffb"}',
    b'{"\\ud83d": 1}',
    b'{"Tags": {"k": ["\\ud800"]}}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b"\xff\xfe{}",
]


def _plain(value: Any) -> None:
    """Every string encodes as UTF-8 and every number is finite and of bounded size."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            item.encode("utf-8")
        elif isinstance(item, float):
            assert math.isfinite(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            assert len(str(abs(item))) <= jsonin.MAX_NUMBER_CHARS
        elif isinstance(item, dict):
            for key, child in item.items():
                key.encode("utf-8")
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_bodies_are_serialization_errors_on_the_wire(body: bytes) -> None:
    with pytest.raises(SerializationException, match=r"not valid JSON|must be a JSON object"):
        decode_body(body)


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_bodies_are_serialization_errors_in_the_admin_api(body: bytes) -> None:
    with pytest.raises(SerializationException, match="not valid JSON"):
        decode_json(body)


def test_the_message_says_what_is_wrong() -> None:
    cases = {
        b'{"n": ' + b"1" * 5000 + b"}": "more than 100 characters",
        b'{"n": 1e999}': "too large",
        b'{"n": NaN}': "NaN",
        b'{"s": "\\ud800"}': "unpaired surrogate",
        b"[" * 50 + b"]" * 50: "nested deeper than 32",
    }
    for body, fragment in cases.items():
        with pytest.raises(SerializationException, match=fragment):
            decode_body(body)


def test_ordinary_json_is_unchanged() -> None:
    body = {"CollectionId": "c", "MaxFaces": 10, "FaceMatchThreshold": 99.5, "Name": "Zoë 😀"}
    assert decode_body(json.dumps(body).encode()) == body
    assert decode_body(json.dumps(body, ensure_ascii=True).encode()) == body  # paired escapes
    assert decode_json(b'{"n": -' + b"9" * 99 + b"}") == {"n": -int("9" * 99)}


# --- properties: whatever arrives, a plain value or the modelled error -------------------------

NUMBERS = st.one_of(
    st.integers(1, 6000).map(lambda n: "9" * n),
    st.integers(1, 400).map(lambda n: "-1" + "0" * n + ".25"),
    st.integers(300, 5000).map(lambda n: f"1e{n}"),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "0", "-0.0", "1E-400"]),
)
STRINGS = st.one_of(
    st.text(max_size=20).map(json.dumps),
    st.integers(0xD800, 0xDFFF).map(lambda c: f'"x\\u{c:04x}y"'),
    st.tuples(st.integers(0xD800, 0xDBFF), st.integers(0xDC00, 0xDFFF)).map(
        lambda p: f'"\\u{p[0]:04x}\\u{p[1]:04x}"'
    ),
)
SCALARS = st.one_of(NUMBERS, STRINGS, st.sampled_from(["true", "false", "null"]))
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]"),
        st.lists(st.tuples(STRINGS, inner), max_size=4).map(
            lambda kv: "{" + ",".join(f"{k}:{v}" for k, v in kv) + "}"
        ),
    ),
    max_leaves=12,
)


@FUZZ
@given(DOCUMENTS)
def test_protocol_decoder_property(text: str) -> None:
    body = ('{"Doc":' + text + "}").encode("utf-8")
    try:
        value = decode_body(body)
    except SerializationException:
        return
    _plain(value)


@FUZZ
@given(DOCUMENTS)
def test_admin_decoder_property(text: str) -> None:
    try:
        value = decode_json(text.encode("utf-8"))
    except SerializationException:
        return
    _plain(value)


# --- through the request path: the modelled error and an audit record, not a 500 ---------------


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    graph = Services.open(
        Settings(data_dir=tmp_path / "data", engine_workers=1), start_engine=False
    )
    yield graph
    graph.close()


def _signed(services: Services, operation: str, body: bytes) -> RawRequest:
    """A request signed with a fresh key of the local organisation over exactly ``body``."""
    return signed_request(local_key(services), operation, body)


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("ListCollections", b'{"MaxResults": ' + b"9" * 5000 + b"}"),
        ("ListCollections", b'{"MaxResults": 1e999}'),
        ("ListCollections", b'{"NextToken": "\\ud800"}'),
        ("CreateCollection", b'{"CollectionId": "c", "Tags": {"k": "\\ud800"}}'),
    ],
)
def test_rekognition_api_answers_serialization_exception(
    services: Services, operation: str, body: bytes
) -> None:
    response = asyncio.run(handle(services, _signed(services, operation, body)))
    assert response.status == 400, response.body
    assert json.loads(response.body)["__type"] == "SerializationException"
