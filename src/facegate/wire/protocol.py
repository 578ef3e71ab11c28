"""The AWS JSON 1.1 protocol as Rekognition speaks it.

Requests: ``POST /`` with ``Content-Type: application/x-amz-json-1.1`` and
``X-Amz-Target: RekognitionService.<Operation>``; the body is one JSON object.
Responses: 200 with the JSON object, or the error status with ``{"__type": <code>,
"Message": <text>}`` (botocore reads ``__type`` and ``Message``/``message``), always with an
``x-amzn-RequestId`` header. boto3 then raises ``client.exceptions.<code>``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from facegate.errors import FacegateError, SerializationException, UnknownOperationException
from facegate.wire import jsonin

CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "RekognitionService."
MAX_JSON_DEPTH = 32


def operation_from_target(target: str | None) -> str:
    """The operation named by ``X-Amz-Target`` (UnknownOperationException otherwise)."""
    if not target or not target.startswith(TARGET_PREFIX):
        raise UnknownOperationException("X-Amz-Target must name a RekognitionService operation.")
    name = target[len(TARGET_PREFIX) :]
    if not name.isascii() or not name.isalnum() or len(name) > 64:
        raise UnknownOperationException("X-Amz-Target must name a RekognitionService operation.")
    return name


def decode_body(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is ``{}``, as botocore sends it).

    Strict (:func:`facegate.wire.jsonin.loads`): UTF-8; no NaN or Infinity; number literals of
    at most 100 characters and finite; no unpaired surrogates; nested at most
    :data:`MAX_JSON_DEPTH` levels. Anything else is ``SerializationException``, the error
    Rekognition answers for a body it cannot read."""
    if not body.strip():
        return {}
    try:
        value = jsonin.loads(body, max_depth=MAX_JSON_DEPTH)
    except jsonin.InvalidJson as exc:
        raise SerializationException(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise SerializationException("The request body must be a JSON object.")
    return value


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("non-finite number in a response")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def encode_body(value: Any) -> bytes:
    """A response object as compact JSON bytes (never NaN or Infinity)."""
    return json.dumps(_finite(value), separators=(",", ":"), allow_nan=False).encode("utf-8")


def error_body(error: FacegateError) -> bytes:
    """The error document for ``error``: its Rekognition code and its one-line message."""
    return encode_body({"__type": error.code, "Message": error.message, "Code": error.code})
