"""JSON Schemas derived from types: each rule of facegate.admin.typeschema, and its refusals."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, TypedDict

import pytest

from facegate.admin import views
from facegate.admin.inputs import fields_of
from facegate.admin.typeschema import Choice, Schemas, field_docs, keywords
from facegate.policy.model import Obligations


class Inner(TypedDict):
    """An inner object."""

    size: Annotated[int, keywords(minimum=0)]
    """how many"""


class Outer(TypedDict):
    name: str
    score: float | None
    kind: Literal["a", "b"]
    colour: Annotated[str, Choice({"red", "blue"})]
    tags: list[str]
    inner: Inner
    maybe: Inner | None
    either: str | Inner
    extra: dict[str, Any]
    note: NotRequired[str]
    """optional"""


class Wider(Outer):
    more: bool


def test_a_typed_dict_is_a_closed_object_with_its_required_fields() -> None:
    schema = Schemas({"Inner": Inner}).schema(Outer)
    assert schema["additionalProperties"] is False
    assert schema["required"] == [
        "name", "score", "kind", "colour", "tags", "inner", "maybe", "either", "extra",
    ]  # fmt: skip
    props = schema["properties"]
    assert props["name"] == {"type": "string"}
    assert props["score"] == {"type": ["number", "null"]}
    assert props["kind"] == {"enum": ["a", "b"]}
    assert props["colour"] == {"enum": ["blue", "red"]}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["inner"] == {"$ref": "#/components/schemas/Inner"}
    assert props["maybe"] == {"oneOf": [{"$ref": "#/components/schemas/Inner"}, {"type": "null"}]}
    assert props["either"] == {
        "oneOf": [{"type": "string"}, {"$ref": "#/components/schemas/Inner"}]
    }
    assert props["extra"] == {"type": "object"}
    assert props["note"] == {"type": "string", "description": "optional"}


def test_an_unregistered_object_is_inlined_with_its_docstrings() -> None:
    inner = Schemas({}).schema(Outer)["properties"]["inner"]
    assert inner == {
        "type": "object",
        "properties": {"size": {"type": "integer", "minimum": 0, "description": "how many"}},
        "additionalProperties": False,
        "required": ["size"],
        "description": "An inner object.",
    }


def test_inherited_fields_keep_their_docstrings() -> None:
    schema = Schemas({}).schema(Wider)
    assert list(schema["properties"])[-1] == "more"
    assert schema["properties"]["note"]["description"] == "optional"
    assert field_docs(Wider)["note"] == "optional"
    assert fields_of(Wider) == {*fields_of(Outer), "more"}


def test_types_without_a_schema_are_refused() -> None:
    with pytest.raises(TypeError, match="no JSON Schema"):
        Schemas({}).schema(bytes)
    with pytest.raises(TypeError, match=r"tuple\[X, \.\.\.\]"):
        Schemas({}).schema(tuple[str, int])
    with pytest.raises(TypeError, match="two component names"):
        Schemas({"A": Inner, "B": Inner})


def test_the_obligations_view_has_the_obligations_keys() -> None:
    """views.obligations casts Obligations.to_json(): its keys must be the type's."""
    assert set(views.obligations(Obligations())) == fields_of(views.ObligationsDoc)
