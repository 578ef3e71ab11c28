"""Strict JSON for text that arrives from outside: request bodies (Rekognition API, admin API) and
documents an operator hands in (a bias audit report).

Python's ``json.loads`` accepts more than JSON and fails in ways a server must not turn into a
500:

* a number literal of thousands of digits: ``int()`` refuses more than
  ``sys.get_int_max_str_digits()`` (4,300) digits with a ``ValueError`` that is not a
  ``JSONDecodeError``, and below that limit the conversion takes time quadratic in the length;
  ``1e999`` silently becomes infinity;
* ``NaN``, ``Infinity`` and ``-Infinity``, which JSON (RFC 8259) does not have;
* a lone surrogate escape (``"\\ud800"``): valid JSON syntax, but the string it gives cannot be
  encoded as UTF-8, so storing, hashing or logging it fails far from the input;
* nesting thousands of levels deep: ``RecursionError``.

:func:`loads` refuses all of these with :class:`InvalidJson` (a ``ValueError``), which each entry
point maps to its own documented error: ``SerializationException`` on the Rekognition wire
(:func:`facegate.wire.protocol.decode_body`) and the admin API's JSON 400
(:func:`facegate.admin.routes.read_json`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_NUMBER_CHARS = 100
"""The longest number literal accepted (sign, digits, point and exponent). Every number a
request needs (thresholds, counts, days, epoch seconds) fits in a few dozen characters."""
DEFAULT_MAX_DEPTH = 32

_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidJson(ValueError):
    """The text is not acceptable JSON; the message says why, in one line, safe to show."""


def _number_literal(text: str) -> None:
    if len(text) > MAX_NUMBER_CHARS:
        raise InvalidJson(f"a number has more than {MAX_NUMBER_CHARS} characters")


def _parse_int(text: str) -> int:
    _number_literal(text)
    return int(text)


def _parse_float(text: str) -> float:
    _number_literal(text)
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJson("a number is too large to represent")
    return value


def _parse_constant(name: str) -> Any:
    raise InvalidJson(f"it contains {name}, which JSON does not allow")


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a surrogate code point (which no UTF-8 text can hold). An ASCII
    string holds none, and CPython knows a string is ASCII without reading it (a request's
    base64 image is tens of kilobytes of ASCII)."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def check_tree(value: Any, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """Raise :class:`InvalidJson` if a decoded document nests deeper than ``max_depth`` or holds
    a string (key or value) with a lone surrogate. Iterative: any depth is safe to check."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise InvalidJson(f"it is nested deeper than {max_depth} levels")
        if isinstance(item, str):
            if has_surrogate(item):
                raise InvalidJson("a string holds an unpaired surrogate (not Unicode text)")
        elif isinstance(item, dict):
            for key, child in item.items():
                if has_surrogate(key):
                    raise InvalidJson("a name holds an unpaired surrogate (not Unicode text)")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def loads(data: bytes | str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """The JSON document in ``data`` (bytes must be UTF-8). Raises :class:`InvalidJson` for
    anything that is not strict JSON text within the bounds above."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidJson("it is not UTF-8 text") from None
    else:
        text = data
    try:
        value = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except InvalidJson:
        raise
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise InvalidJson(f"it is nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # int() or float() refusing a literal; never expected past the
        raise InvalidJson(f"a number cannot be read ({exc})") from None  # length bound
    check_tree(value, max_depth)
    return value
