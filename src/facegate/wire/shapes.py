"""Request validation against botocore's own Rekognition service model.

``ServiceModel.validate_input(operation, params)`` checks a decoded JSON body member by member
against the operation's input shape, exactly as the model states it: unknown and missing members,
JSON types, string lengths, patterns (Java syntax, matched whole with the ``regex`` package so
``\\p{L}`` works), enums, numeric ranges, list and map sizes, base64 blobs and their sizes. It
returns the parameters with blobs decoded to bytes. Violations raise InvalidParameterException
with up to five of them in one line (``CollectionId: must match [a-zA-Z0-9_.\\-]+``); echoed
values are cut at 64 characters and blob contents are never echoed. An ``Image.Bytes`` over
Rekognition's 5 MiB raises ImageBytesTooLargeError instead, as Rekognition does.

The work is bounded: nesting deeper than 20 levels, lists longer than their model maximum, or
unmodelled lists over 10,000 items are refused before they are walked.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from typing import Any

import regex
from botocore.loaders import Loader

from facegate.errors import (
    ImageBytesTooLargeError,
    InvalidParameterException,
    SerializationException,
    UnknownOperationException,
)

FACE_API_OPERATIONS = frozenset(
    {
        "DetectFaces", "CompareFaces", "CreateCollection", "DescribeCollection",
        "ListCollections", "DeleteCollection", "IndexFaces", "ListFaces", "DeleteFaces",
        "SearchFaces", "SearchFacesByImage", "CreateUser", "DeleteUser", "ListUsers",
        "AssociateFaces", "DisassociateFaces", "SearchUsers", "SearchUsersByImage",
        "TagResource", "UntagResource", "ListTagsForResource",
    }
)  # fmt: skip
MAX_DEPTH = 20
MAX_UNBOUNDED_LIST = 10_000
MAX_VIOLATIONS = 5
IMAGE_BLOB_SHAPE = "ImageBlob"


class _Violations(Exception):
    """Internal: enough violations collected; stop walking."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 64 else text[:61] + "..."


class ServiceModel:
    """Rekognition's service model (API 2016-06-27) as botocore ships it."""

    def __init__(self, model: Mapping[str, Any]) -> None:
        self._operations: Mapping[str, Any] = model["operations"]
        self._shapes: Mapping[str, Any] = model["shapes"]
        self._patterns: dict[str, Any] = {}

    @classmethod
    def load(cls) -> ServiceModel:
        """Load the model from botocore's data files (about 20 ms)."""
        return cls(Loader().load_service_model("rekognition", "service-2"))

    def operation_names(self) -> frozenset[str]:
        """The face API operations facegate serves (a subset of the model's)."""
        return FACE_API_OPERATIONS & frozenset(self._operations)

    def error_shapes(self, operation: str) -> frozenset[str]:
        """Error names the model lists for ``operation``."""
        op = self._operation(operation)
        return frozenset(e["shape"] for e in op.get("errors", []))

    def _operation(self, operation: str) -> Mapping[str, Any]:
        op = self._operations.get(operation)
        if op is None:
            raise UnknownOperationException(f"Unknown operation {operation[:64]}.")
        return op  # type: ignore[no-any-return]

    def validate_input(self, operation: str, params: object) -> dict[str, Any]:
        """Validated parameters (blobs decoded to bytes), or InvalidParameterException."""
        op = self._operation(operation)
        if not isinstance(params, dict):
            raise SerializationException("The request body must be a JSON object.")
        shape_name = op.get("input", {}).get("shape")
        if shape_name is None:
            return {}
        problems: list[str] = []
        try:
            out = self._check(shape_name, params, "", problems, 1)
        except _Violations:
            out = None
        if problems:
            raise InvalidParameterException("; ".join(problems[:MAX_VIOLATIONS]))
        assert isinstance(out, dict)
        return out

    # --- the walk -----------------------------------------------------------------------------

    def _fail(self, problems: list[str], path: str, message: str) -> None:
        problems.append(f"{path or 'request'}: {message}")
        if len(problems) >= MAX_VIOLATIONS:
            raise _Violations

    def _check(self, name: str, value: Any, path: str, problems: list[str], depth: int) -> Any:
        if depth > MAX_DEPTH:
            self._fail(problems, path, f"nested deeper than {MAX_DEPTH} levels")
            return None
        shape = self._shapes[name]
        kind = shape["type"]
        checker = getattr(self, f"_check_{kind}", None)
        if checker is None:  # pragma: no cover - every Rekognition input type is handled
            self._fail(problems, path, f"unsupported shape type {kind}")
            return None
        return checker(name, shape, value, path, problems, depth)

    def _check_structure(
        self, name: str, shape: Any, value: Any, path: str, problems: list[str], depth: int
    ) -> Any:
        if not isinstance(value, dict):
            self._fail(problems, path, f"must be an object, not {type(value).__name__}")
            return None
        members: Mapping[str, Any] = shape.get("members", {})
        for key in value:
            if key not in members:
                self._fail(problems, _join(path, str(key)), "unknown parameter")
        for required in shape.get("required", []):
            if value.get(required) is None:
                self._fail(problems, _join(path, required), "is required")
        out: dict[str, Any] = {}
        for member, spec in members.items():
            if member in value and value[member] is not None:
                out[member] = self._check(
                    spec["shape"], value[member], _join(path, member), problems, depth + 1
                )
        return out

    def _check_list(
        self, name: str, shape: Any, value: Any, path: str, problems: list[str], depth: int
    ) -> Any:
        if not isinstance(value, list):
            self._fail(problems, path, f"must be a list, not {type(value).__name__}")
            return None
        low, high = shape.get("min"), shape.get("max", MAX_UNBOUNDED_LIST)
        if low is not None and len(value) < low:
            self._fail(problems, path, f"must have at least {low} item(s), has {len(value)}")
        if len(value) > high:
            self._fail(problems, path, f"must have at most {high} items, has {len(value)}")
            return None
        member = shape["member"]["shape"]
        return [
            self._check(member, item, f"{path}[{i}]", problems, depth + 1)
            for i, item in enumerate(value)
        ]

    def _check_map(
        self, name: str, shape: Any, value: Any, path: str, problems: list[str], depth: int
    ) -> Any:
        if not isinstance(value, dict):
            self._fail(problems, path, f"must be an object, not {type(value).__name__}")
            return None
        low, high = shape.get("min"), shape.get("max", MAX_UNBOUNDED_LIST)
        if low is not None and len(value) < low:
            self._fail(problems, path, f"must have at least {low} entries, has {len(value)}")
        if len(value) > high:
            self._fail(problems, path, f"must have at most {high} entries, has {len(value)}")
            return None
        key_shape, value_shape = shape["key"]["shape"], shape["value"]["shape"]
        out = {}
        for key, item in value.items():
            self._check(key_shape, key, f"{path} key {_show(key)}", problems, depth + 1)
            out[key] = self._check(value_shape, item, f"{path}[{_show(key)}]", problems, depth + 1)
        return out

    def _pattern(self, text: str) -> Any:
        compiled = self._patterns.get(text)
        if compiled is None:
            compiled = regex.compile(text)
            self._patterns[text] = compiled
        return compiled

    def _check_string(
        self, name: str, shape: Any, value: Any, path: str, problems: list[str], depth: int
    ) -> Any:
        if not isinstance(value, str):
            self._fail(problems, path, f"must be a string, not {type(value).__name__}")
            return None
        enum = shape.get("enum")
        if enum is not None and value not in enum:
            self._fail(problems, path, f"must be one of {', '.join(enum)}, not {_show(value)}")
            return value
        low, high = shape.get("min"), shape.get("max")
        if low is not None and len(value) < low:
            self._fail(problems, path, f"must be at least {low} character(s) long")
        elif high is not None and len(value) > high:
            self._fail(problems, path, f"must be at most {high} characters long")
        elif "pattern" in shape and not self._pattern(shape["pattern"]).fullmatch(value):
            self._fail(problems, path, f"{_show(value)} must match {shape['pattern']}")
        return value

    def _number(
        self, shape: Any, value: Any, path: str, problems: list[str], integral: bool
    ) -> Any:
        ok = not isinstance(value, bool) and (
            isinstance(value, int) or (not integral and isinstance(value, float))
        )
        if not ok:
            wanted = "an integer" if integral else "a number"
            self._fail(problems, path, f"must be {wanted}, not {_show(value)}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self._fail(problems, path, "must be a finite number")
            return None
        low, high = shape.get("min"), shape.get("max")
        if low is not None and value < low:
            self._fail(problems, path, f"must be at least {low}, not {_show(value)}")
        if high is not None and value > high:
            self._fail(problems, path, f"must be at most {high}, not {_show(value)}")
        return value

    def _check_integer(
        self, name: str, shape: Any, value: Any, path: str, problems: list[str], depth: int
    ) -> Any:
        return self._number(shape, value, path, problems, integral=True)

    _check_long = _check_integer

    def _check_float(
        self, name: str, shape: Any, value: Any, path: str, problems: list[str], depth: int
    ) -> Any:
        return self._number(shape, value, path, problems, integral=False)

    _check_double = _check_float

    def _check_boolean(
        self, name: str, shape: Any, value: Any, path: str, problems: list[str], depth: int
    ) -> Any:
        if not isinstance(value, bool):
            self._fail(problems, path, f"must be true or false, not {_show(value)}")
        return value

    def _check_timestamp(
        self, name: str, shape: Any, value: Any, path: str, problems: list[str], depth: int
    ) -> Any:
        return self._number(shape, value, path, problems, integral=False)

    def _check_blob(
        self, name: str, shape: Any, value: Any, path: str, problems: list[str], depth: int
    ) -> Any:
        if not isinstance(value, str):
            self._fail(problems, path, "must be a base64-encoded string")
            return None
        high = shape.get("max")
        if high is not None and len(value) > 4 * ((high + 2) // 3) + 4:
            return self._too_big(name, high, path, problems)
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self._fail(problems, path, "is not valid base64")
            return None
        low = shape.get("min")
        if low is not None and len(data) < low:
            self._fail(problems, path, f"must be at least {low} byte(s)")
        if high is not None and len(data) > high:
            return self._too_big(name, high, path, problems)
        return data

    def _too_big(self, name: str, high: int, path: str, problems: list[str]) -> None:
        if name == IMAGE_BLOB_SHAPE:
            raise ImageBytesTooLargeError(f"{path}: the image is larger than {high} bytes.")
        self._fail(problems, path, f"must be at most {high} bytes")


def _join(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member
