"""Reading admin requests: JSON objects and query strings, with errors that name the field.

Every problem is an ``InvalidParameterException`` (HTTP 400) whose message names the field by
its dotted path (``context.realtime``) or the query parameter, and says what was expected.
Unknown fields are refused too, so a misspelt option cannot silently fall back to a default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from facegate.errors import InvalidParameterException

# No control characters and no unpaired surrogates (a JSON escape such as "\ud800" decodes to
# one; it is not Unicode text and cannot be stored as UTF-8).
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]*")


def invalid(field: str, problem: str) -> InvalidParameterException:
    """The error for one field: ``Field 'name' <problem>.``"""
    return InvalidParameterException(f"Field {field!r} {problem}.")


class Fields:
    """Typed, checked access to one JSON object.

    ``allowed`` lists the keys the object may have; ``prefix`` is its dotted path in the body
    ("" at the top), used in error messages.
    """

    def __init__(self, doc: object, allowed: frozenset[str], prefix: str = "") -> None:
        self.prefix = prefix
        if not isinstance(doc, dict):
            if prefix:
                raise invalid(prefix, "must be a JSON object")
            raise InvalidParameterException("The request body must be a JSON object.")
        unknown = sorted(set(doc) - allowed)
        if unknown:
            known = ", ".join(sorted(allowed)) or "none"
            raise invalid(self.path(unknown[0]), f"is not known here (known fields: {known})")
        self.doc: dict[str, Any] = doc

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def has(self, key: str) -> bool:
        return self.doc.get(key) is not None

    def text(self, key: str, *, default: str | None = None, max_len: int = 200) -> str:
        """A string of printable characters, at most ``max_len`` long; required unless a
        ``default`` is given (returned when the field is absent or null)."""
        value = self.doc.get(key)
        if value is None:
            if default is None:
                raise invalid(self.path(key), "is required")
            return default
        if not isinstance(value, str):
            raise invalid(self.path(key), "must be a string")
        if len(value) > max_len:
            raise invalid(self.path(key), f"has more than {max_len} characters")
        if not _PRINTABLE.fullmatch(value):
            raise invalid(self.path(key), "contains control characters or unpaired surrogates")
        return value

    def integer(self, key: str, *, low: int, high: int) -> int | None:
        """An integer in ``[low, high]``, or None when absent or null."""
        value = self.doc.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise invalid(self.path(key), "must be an integer")
        if not low <= value <= high:
            raise invalid(self.path(key), f"must be between {low} and {high}")
        return value

    def flag(self, key: str) -> bool:
        """true or false (false when absent)."""
        value = self.doc.get(key, False)
        if not isinstance(value, bool):
            raise invalid(self.path(key), "must be true or false")
        return value

    def texts(self, key: str, *, max_items: int = 50, max_len: int = 64) -> tuple[str, ...]:
        """A required, non-empty list of strings."""
        value = self.doc.get(key)
        if value is None:
            raise invalid(self.path(key), "is required")
        if not isinstance(value, list) or not value:
            raise invalid(self.path(key), "must be a non-empty list of strings")
        if len(value) > max_items:
            raise invalid(self.path(key), f"has more than {max_items} items")
        for item in value:
            if not isinstance(item, str) or not 0 < len(item) <= max_len:
                raise invalid(self.path(key), f"must hold strings of 1-{max_len} characters")
            if not _PRINTABLE.fullmatch(item):
                raise invalid(self.path(key), "contains control characters or unpaired surrogates")
        return tuple(value)

    def child(self, key: str, allowed: frozenset[str]) -> Fields | None:
        """The nested object ``key`` (None when absent or null)."""
        value = self.doc.get(key)
        return None if value is None else Fields(value, allowed, self.path(key))


def query_int(query: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    """An integer query parameter in ``[low, high]`` (``default`` when absent)."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidParameterException(
            f"Query parameter {name!r} must be an integer between {low} and {high}."
        )
    return int(raw)


def query_choice(
    query: Mapping[str, str], name: str, choices: tuple[str, ...], default: str | None
) -> str | None:
    """A query parameter restricted to ``choices`` (``default`` when absent)."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise InvalidParameterException(
            f"Query parameter {name!r} must be one of {', '.join(choices)}."
        )
    return raw


def query_text(query: Mapping[str, str], name: str, max_len: int = 128) -> str | None:
    """A free-text query parameter (None when absent), bounded and printable."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_len or not _PRINTABLE.fullmatch(raw):
        raise InvalidParameterException(
            f"Query parameter {name!r} must be up to {max_len} printable characters."
        )
    return raw
