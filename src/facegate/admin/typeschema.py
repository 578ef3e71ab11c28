"""JSON Schemas (the OpenAPI 3.1 dialect) derived from Python types, for the admin API's views.

:class:`Schemas` turns a type into a schema:

* ``str``, ``int``, ``float``, ``bool`` -> ``string``, ``integer``, ``number``, ``boolean``;
  ``dict[...]`` / ``Mapping[...]`` -> a free-form ``object``; ``list[X]`` / ``tuple[X, ...]`` ->
  an ``array`` of ``X``;
* ``Literal["a", "b"]`` -> ``{"enum": ["a", "b"]}``; ``X | None`` -> the type list
  ``[..., "null"]`` (``oneOf`` with ``null`` where ``X`` has no single ``type``); a union of
  several types -> ``oneOf``;
* a ``TypedDict`` -> a closed ``object`` (``additionalProperties: false``) of its fields, all
  required but those marked ``NotRequired``; its docstring is the schema's ``description`` and
  a field's docstring (a string right below the field, as for module attributes) the field's;
* ``Annotated[X, Keywords(...)]`` adds JSON Schema keywords (pattern, bounds, format,
  description); ``Annotated[X, Choice(values)]`` makes it the enum of a vocabulary known only
  at run time (sorted).

A type registered as a named component is written as a ``$ref`` to it wherever it appears
(except as the component itself). Anything else raises ``TypeError``: the generator never guesses.
Field docstrings are read from the module's source (``inspect``); where no source is installed,
the schemas are the same without them.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import sys
import textwrap
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

Schema = dict[str, Any]

_SCALARS: Mapping[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}


@dataclass(frozen=True, eq=False)
class Keywords:
    """JSON Schema keywords added to an ``Annotated`` type's schema (hashed by identity)."""

    values: Mapping[str, Any]


def keywords(**values: Any) -> Keywords:
    """``Annotated[int, keywords(minimum=1)]``."""
    return Keywords(values)


@dataclass(frozen=True, eq=False)
class Choice:
    """A closed vocabulary known at run time (``policy.vocabulary.SECTORS``): the schema is
    ``{"enum": sorted(values)}``."""

    values: Iterable[str]


def ref(name: str) -> Schema:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


class Schemas:
    """Schemas of types, with ``components`` (name -> type) written as references."""

    def __init__(self, components: Mapping[str, object]) -> None:
        self.components = dict(components)
        self._names: dict[object, str] = {tp: name for name, tp in self.components.items()}
        if len(self._names) != len(self.components):
            raise TypeError("a type is registered under two component names")

    def name_of(self, tp: object) -> str:
        """The component name of ``tp`` (``KeyError`` if it is not one)."""
        return self._names[tp]

    def component_schemas(self) -> dict[str, Schema]:
        """Every component's own schema, by name."""
        return {name: self.schema(tp, inline=True) for name, tp in self.components.items()}

    def schema(self, tp: object, *, inline: bool = False) -> Schema:
        """The schema of ``tp``; a component as a ``$ref`` unless ``inline``."""
        if not inline and tp in self._names:
            return ref(self._names[tp])
        origin, args = get_origin(tp), get_args(tp)
        if origin is Annotated:
            return self._annotated(args[0], args[1:])
        if origin is Union or origin is types.UnionType:
            return self._union(args)
        if origin is Literal:
            return {"enum": list(args)}
        if origin in (list, tuple, Sequence) and args:
            if origin is tuple and (len(args) != 2 or args[1] is not Ellipsis):
                raise TypeError(f"only tuple[X, ...] has a schema, not {tp!r}")
            return {"type": "array", "items": self.schema(args[0])}
        if origin in (dict, Mapping) or tp is dict:
            return {"type": "object"}
        if isinstance(tp, type) and is_typeddict(tp):
            return self._object(tp)
        if isinstance(tp, type) and tp in _SCALARS:
            return {"type": _SCALARS[tp]}
        raise TypeError(f"no JSON Schema for {tp!r}")

    def _annotated(self, base: object, metadata: Sequence[object]) -> Schema:
        out = self.schema(base)
        for item in metadata:
            if isinstance(item, Choice):
                out = {"enum": sorted(item.values)}
            elif isinstance(item, Keywords):
                out = {**out, **item.values}
        return out

    def _union(self, members: Sequence[object]) -> Schema:
        present = [m for m in members if m is not type(None)]
        nullable = len(present) < len(members)
        if len(present) > 1:
            options = [self.schema(m) for m in present]
            return {"oneOf": options + ([{"type": "null"}] if nullable else [])}
        out = self.schema(present[0])
        if not nullable:
            return out
        if isinstance(out.get("type"), str) and "$ref" not in out:
            return {**out, "type": [out["type"], "null"]}
        return {"oneOf": [out, {"type": "null"}]}

    def _object(self, cls: type) -> Schema:
        hints = get_type_hints(cls, include_extras=True)
        docs = field_docs(cls)
        properties: Schema = {}
        required: list[str] = []
        for name, hint in hints.items():
            if get_origin(hint) is NotRequired:
                hint = get_args(hint)[0]
            elif getattr(cls, "__total__", True):
                required.append(name)
            prop = self.schema(hint)
            if name in docs and "$ref" not in prop:
                prop = {**prop, "description": docs[name]}
            properties[name] = prop
        out: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            out["required"] = required
        if cls.__doc__:
            out["description"] = " ".join(cls.__doc__.split())
        return out


@cache
def field_docs(cls: type) -> Mapping[str, str]:
    """The docstrings of ``cls``'s fields and of those it inherits from the classes named as its
    bases in its source ({} where the source is not installed)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    node = ast.parse(source).body[0]
    if not isinstance(node, ast.ClassDef):
        return {}
    found: dict[str, str] = {}
    module = vars(sys.modules[cls.__module__])
    for base in node.bases:
        inherited = module.get(base.id) if isinstance(base, ast.Name) else None
        if isinstance(inherited, type) and is_typeddict(inherited):
            found.update(field_docs(inherited))
    body = node.body
    for field, after in itertools.pairwise(body):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            found[field.target.id] = " ".join(after.value.value.split())
    return found
