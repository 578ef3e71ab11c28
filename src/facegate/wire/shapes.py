r"""Request validation against botocore's own Rekognition service model (API 2016-06-27).

Contract of :meth:`ServiceModel.validate_input` (``operation``, decoded JSON body):

- The body must be a JSON object (SerializationException otherwise); the operation must be in the
  model (UnknownOperationException otherwise).
- Every member is checked as the model states it: unknown and missing required members, JSON types
  (booleans are not numbers; integers reject ``1.5``; float members accept integers; timestamps
  are epoch-seconds numbers, as JSON 1.1 sends them), string lengths (Unicode code points, as
  Smithy's length trait counts them), patterns, enums, numeric ranges (and Java's int/long/float
  ranges where the model gives none), list and map sizes, base64 blobs and their decoded sizes.
- Patterns are Java regular expressions matched against the whole string (``Matcher.matches()``,
  which is how Rekognition's unanchored ``[a-zA-Z0-9_.\-]+`` rejects ``bad/id``). They are
  compiled once per model with the ``regex`` package (which knows ``\p{L}``) after translating
  the Java constructs whose meaning differs: ``\d \w \s \D \W \S`` are ASCII and ``.``
  excludes every line terminator in Java.
- The result is the body with blobs decoded to bytes; everything else is the caller's own objects
  (strings are not copied). ``null`` members are treated as absent and dropped.
- Violations raise InvalidParameterException with up to five of them, in a deterministic order
  (unknown members in body order, then the model's members in model order), joined by ``"; "``
  into one bounded line such as
  ``CollectionId: must match pattern [a-zA-Z0-9_.\-]+ (got 'bad/id')``.
  Echoed values are cut at 64 characters; blob contents and ``sensitive`` values are never echoed.
- A blob of Rekognition's ``ImageBlob`` shape over its 5,242,880-byte maximum raises
  ImageBytesTooLargeError (an ImageTooLargeException) at once, as Rekognition does.
- The work is bounded: nesting deeper than :data:`MAX_DEPTH`, lists and maps longer than their
  model maximum (or :data:`MAX_UNBOUNDED_ITEMS` without one) are refused before they are walked,
  oversized base64 text is refused before it is decoded, and pattern matches have a time limit.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import regex
from botocore.loaders import Loader

from facegate.errors import (
    ImageBytesTooLargeError,
    InvalidParameterException,
    SerializationException,
    UnknownOperationException,
)
from facegate.operations import OPERATIONS

API_VERSION = "2016-06-27"
FACE_API_OPERATIONS = frozenset(OPERATIONS)
"""The operations facegate serves (:mod:`facegate.operations`)."""
MAX_DEPTH = 20
MAX_UNBOUNDED_ITEMS = 10_000
MAX_VIOLATIONS = 5
MAX_ECHO_CHARS = 64
MAX_MESSAGE_CHARS = 1_000
PATTERN_TIMEOUT_S = 0.05
UNGUARDED_MAX_CHARS = 256
IMAGE_BLOB_SHAPE = "ImageBlob"
# Java's primitive ranges bound integer/long/float members the model leaves open.
JAVA_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
FLOAT32_MAX = 3.4028234663852886e38

Shape = Mapping[str, Any]

# Java's predefined classes are ASCII-only (java.util.regex.Pattern without
# UNICODE_CHARACTER_CLASS); \s is [ \t\n\x0B\f\r] there.
_JAVA_CLASS_BODIES = {"d": "0-9", "w": "a-zA-Z0-9_", "s": " \\t\\n\\x0b\\f\\r"}
_JAVA_DOT = "[^\\n\\r\\u0085\\u2028\\u2029]"


def java_pattern(pattern: str) -> str:
    """``pattern`` (Java syntax) rewritten so the ``regex`` package gives it Java's meaning.

    ``\\d \\w \\s`` become their ASCII sets (so do ``\\D \\W \\S`` outside brackets) and ``.`` stops
    at every Java line terminator; everything else (``\\p{L}``, lookaheads ...) is shared syntax.
    """
    out: list[str] = []
    in_class = 0
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(_java_escape(pattern[i + 1], in_class > 0))
            i += 2
            continue
        if char == "[":
            in_class += 1
        elif char == "]" and in_class:
            in_class -= 1
        elif char == "." and not in_class:
            char = _JAVA_DOT
        out.append(char)
        i += 1
    return "".join(out)


def _java_escape(letter: str, in_class: bool) -> str:
    body = _JAVA_CLASS_BODIES.get(letter.lower())
    if body is None or (in_class and letter.isupper()):
        return "\\" + letter  # a negated class inside brackets keeps the regex meaning
    if in_class:
        return body
    return f"[^{body}]" if letter.isupper() else f"[{body}]"


@dataclass(frozen=True)
class _Pattern:
    """A compiled model pattern; ``guarded`` ones run under a time limit.

    A time limit costs about 3 us per match (Tags maps have up to 400 strings), so it is kept for
    what can backtrack badly: a quantified group (``(a|aa)+``) or a long input. Rekognition's
    face-API patterns are simple character classes and never need it.
    """

    compiled: regex.Pattern[str]
    guarded: bool

    @classmethod
    def compile(cls, pattern: str) -> _Pattern:
        quantified_group = regex.search(r"\)(?:[*+?]|\{\d)", pattern) is not None
        return cls(regex.compile(java_pattern(pattern)), quantified_group)

    def matches(self, value: str) -> bool:
        """Whether ``value`` matches as a whole (a match that runs out of time does not)."""
        if not self.guarded and len(value) <= UNGUARDED_MAX_CHARS:
            return self.compiled.fullmatch(value) is not None
        try:
            return self.compiled.fullmatch(value, timeout=PATTERN_TIMEOUT_S) is not None
        except TimeoutError:
            return False


class _Enough(Exception):
    """Internal: MAX_VIOLATIONS collected; stop walking."""


class ServiceModel:
    """Rekognition's service model as botocore ships it, with its patterns compiled.

    Build it once per process (:meth:`load` takes about 0.1 s after botocore's import) and share
    it: it is immutable after construction, so concurrent requests may use it freely. Tests may
    build one from a hand-written model dict with the same layout.
    """

    def __init__(self, model: Mapping[str, Any]) -> None:
        self._operations: Mapping[str, Any] = model["operations"]
        self._shapes: Mapping[str, Shape] = model["shapes"]
        self._patterns: Mapping[str, _Pattern] = {
            shape["pattern"]: _Pattern.compile(shape["pattern"])
            for shape in self._shapes.values()
            if "pattern" in shape
        }

    @classmethod
    def load(cls) -> ServiceModel:
        """Rekognition's model, API version 2016-06-27, from botocore's data files."""
        loader = Loader()
        return cls(loader.load_service_model("rekognition", "service-2", api_version=API_VERSION))

    def operation_names(self) -> frozenset[str]:
        """The operations facegate serves: :data:`FACE_API_OPERATIONS` that the model defines."""
        return FACE_API_OPERATIONS & frozenset(self._operations)

    def error_shapes(self, operation: str) -> frozenset[str]:
        """The error names the model lists for ``operation``."""
        return frozenset(error["shape"] for error in self._operation(operation).get("errors", []))

    def validate_input(self, operation: str, params: object) -> dict[str, Any]:
        """``params`` checked against the input shape, blobs decoded (see the module docstring)."""
        op = self._operation(operation)
        if not isinstance(params, dict):
            raise SerializationException("The request body must be a JSON object.")
        walk = _Walk(self._shapes, self._patterns)
        shape_name = op.get("input", {}).get("shape")
        shape: Shape = self._shapes[shape_name] if shape_name else {"type": "structure"}
        try:
            out = walk.structure(shape, params, "", 1)
        except _Enough:
            out = None
        if walk.problems:
            raise InvalidParameterException(_joined(walk.problems))
        assert isinstance(out, dict)
        return out

    def _operation(self, operation: str) -> Mapping[str, Any]:
        op = self._operations.get(operation)
        if op is None:
            raise UnknownOperationException(f"Unknown operation {_show(operation)}.")
        return op  # type: ignore[no-any-return]


class _Walk:
    """One validation pass: walks a value along its shape, collecting problems."""

    def __init__(self, shapes: Mapping[str, Shape], patterns: Mapping[str, _Pattern]) -> None:
        self._shapes = shapes
        self._patterns = patterns
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path or 'request'}: {message}")
        if len(self.problems) >= MAX_VIOLATIONS:
            raise _Enough

    def member(self, ref: Shape, value: Any, path: str, depth: int) -> Any:
        """``value`` checked against the shape ``ref`` names; None when it failed."""
        if depth > MAX_DEPTH:
            self.fail(path, f"is nested deeper than {MAX_DEPTH} levels")
            return None
        name: str = ref["shape"]
        shape = self._shapes[name]
        match shape["type"]:
            case "structure":
                return self.structure(shape, value, path, depth)
            case "list":
                return self.list(shape, value, path, depth)
            case "map":
                return self.map(shape, value, path, depth)
            case "string":
                return self.string(shape, value, path)
            case "blob":
                return self.blob(name, shape, value, path)
            case "boolean":
                return self.boolean(value, path)
            case "integer" | "long" | "float" | "double" | "timestamp" as kind:
                return self.number(kind, shape, value, path)
            case kind:  # a type Rekognition's inputs never use: refuse rather than pass
                self.fail(path, f"has the unsupported shape type {_cut(str(kind))}")
                return None

    def structure(self, shape: Shape, value: Any, path: str, depth: int) -> Any:
        if not isinstance(value, dict):
            return self.wrong_type(path, "an object", value)
        members: Mapping[str, Shape] = shape.get("members", {})
        for key in value:
            if key not in members:
                self.fail(_join(path, _name(key)), "unknown parameter")
        required = set(shape.get("required", ()))
        out: dict[str, Any] = {}
        for key, ref in members.items():
            item = value.get(key)
            if item is not None:
                out[key] = self.member(ref, item, _join(path, key), depth + 1)
            elif key in required:
                self.fail(_join(path, key), "is required")
        return out

    def list(self, shape: Shape, value: Any, path: str, depth: int) -> Any:
        if not isinstance(value, list):
            return self.wrong_type(path, "a list", value)
        if not self.size(shape, len(value), path, "item(s)"):
            return None
        ref = shape["member"]
        return [self.member(ref, item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]

    def map(self, shape: Shape, value: Any, path: str, depth: int) -> Any:
        if not isinstance(value, dict):
            return self.wrong_type(path, "an object", value)
        if not self.size(shape, len(value), path, "entries"):
            return None
        out: dict[Any, Any] = {}
        for key, item in value.items():
            self.member(shape["key"], key, f"{path} key", depth + 1)
            out[key] = self.member(shape["value"], item, f"{path}[{_show(key)}]", depth + 1)
        return out

    def size(self, shape: Shape, count: int, path: str, unit: str) -> bool:
        """Checks a list's or map's size; False when it is too long to walk."""
        low, high = shape.get("min", 0), shape.get("max", MAX_UNBOUNDED_ITEMS)
        if count > high:
            self.fail(path, f"must have at most {high} {unit}, has {count}")
            return False
        if count < low:
            self.fail(path, f"must have at least {low} {unit}, has {count}")
        return True

    def string(self, shape: Shape, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            return self.wrong_type(path, "a string", value)
        enum = shape.get("enum")
        low, high = shape.get("min", 0), shape.get("max")
        if enum is not None and value not in enum:
            wanted = _cut(f"must be one of {', '.join(enum)}", 400)
            self.fail(path, f"{wanted}, not {_show_string(shape, value)}")
        elif len(value) < low:
            self.fail(path, f"must be at least {low} character(s) long, not {len(value)}")
        elif high is not None and len(value) > high:
            self.fail(path, f"must be at most {high} characters long, not {len(value)}")
        elif "pattern" in shape and not self.matches(shape["pattern"], value):
            self.fail(
                path, f"must match pattern {shape['pattern']} (got {_show_string(shape, value)})"
            )
        return value

    def matches(self, pattern: str, value: str) -> bool:
        return self._patterns[pattern].matches(value)

    def number(self, kind: str, shape: Shape, value: Any, path: str) -> Any:
        integral = kind in JAVA_RANGES
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self.wrong_type(path, "an integer" if integral else "a number", value)
        if integral and not isinstance(value, int):
            return self.wrong_type(path, "an integer", value)
        if isinstance(value, float) and not math.isfinite(value):
            return self.wrong_type(path, "a finite number", value)
        low, high = JAVA_RANGES.get(kind, (None, None))
        low, high = shape.get("min", low), shape.get("max", high)
        if kind == "float" and abs(value) > FLOAT32_MAX:
            self.fail(path, f"must fit a 32-bit float, not {_show(value)}")
        elif low is not None and value < low:
            self.fail(path, f"must be at least {low}, not {_show(value)}")
        elif high is not None and value > high:
            self.fail(path, f"must be at most {high}, not {_show(value)}")
        return value

    def boolean(self, value: Any, path: str) -> Any:
        if not isinstance(value, bool):
            return self.wrong_type(path, "true or false", value)
        return value

    def blob(self, name: str, shape: Shape, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            return self.wrong_type(path, "a base64-encoded string", value)
        low, high = shape.get("min", 0), shape.get("max")
        # Refuse oversized text before decoding it: n bytes encode to 4 * ceil(n / 3) chars.
        if high is not None and len(value) > 4 * ((high + 2) // 3):
            return self.too_big(name, high, path)
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self.fail(path, "is not valid base64")
            return None
        if len(data) < low:
            self.fail(path, f"must be at least {low} byte(s), not {len(data)}")
        elif high is not None and len(data) > high:
            return self.too_big(name, high, path)
        return data

    def too_big(self, name: str, high: int, path: str) -> None:
        if name == IMAGE_BLOB_SHAPE:
            raise ImageBytesTooLargeError(f"{path}: the image is larger than {high} bytes.")
        self.fail(path, f"must be at most {high} bytes")

    def wrong_type(self, path: str, wanted: str, value: Any) -> None:
        self.fail(path, f"must be {wanted}, not {_show(value)}")


def _show(value: object) -> str:
    """A short, one-line, JSON-flavoured rendering of ``value`` for an error message."""
    if type(value) is str and len(value) <= MAX_ECHO_CHARS:
        return _cut(repr(value))  # the common case first: map keys in paths
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, dict | list):
        return "an object" if isinstance(value, dict) else "a list"
    if isinstance(value, int) and value.bit_length() > 128:
        return "a very large integer"
    if isinstance(value, str | int | float):
        return _cut(repr(value[: MAX_ECHO_CHARS + 1] if isinstance(value, str) else value))
    return f"a {type(value).__name__}"


def _show_string(shape: Shape, value: str) -> str:
    return "a sensitive value" if shape.get("sensitive") else _show(value)


def _cut(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _name(key: object) -> str:
    """A member name for a path: as is when short and plain, else quoted and cut."""
    plain = isinstance(key, str) and key.isascii() and key.isprintable() and "'" not in key
    return str(key) if plain and len(str(key)) <= MAX_ECHO_CHARS else _show(key)


def _join(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def _joined(problems: list[str]) -> str:
    return _cut("; ".join(problems[:MAX_VIOLATIONS]), MAX_MESSAGE_CHARS)
