"""What an admin endpoint is: the table row that the router serves and the OpenAPI document
describes (:data:`facegate.admin.handlers.ENDPOINTS`), and the values a handler takes and gives.

A row says everything about its endpoint but the shape of its answer, which is the type of its
handler's result (``Reply[SomeDoc]``, read by :func:`response_type`), so that mypy checks every
handler against the schema the document publishes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, get_args, get_origin, get_type_hints

from facegate.store.operators import OperatorRecord

D = TypeVar("D")


@dataclass(frozen=True)
class Call:
    """An authenticated request: the operator (None on a public endpoint), the path
    parameters, the query parameters and the parsed JSON body (None when empty)."""

    operator: OperatorRecord | None
    params: Mapping[str, str]
    query: Mapping[str, str]
    body: object | None


@dataclass(frozen=True)
class Reply(Generic[D]):
    """A handler's answer: the HTTP status and the JSON document (a view's ``TypedDict``)."""

    status: int
    doc: D


Handler = Callable[[Any, Call], Reply[Any]]
"""``(AdminService, Call) -> Reply[SomeDoc]`` (the service is ``Any`` here to keep this module
below the service)."""


@dataclass(frozen=True)
class Query:
    """One query parameter: its name, its type (a schema is derived from it) and what it does."""

    name: str
    type: object
    description: str


@dataclass(frozen=True)
class Endpoint:
    """One method on one path (relative to ``/admin``).

    ``roles`` None: no authentication (only the OpenAPI document); ``what`` names the action in
    a 403 message; ``summary`` and ``returns`` are the document's prose for the operation and
    its ``status`` answer; ``body`` is the type of the JSON body it reads (None: it reads none);
    ``query`` its query parameters; ``errors`` the statuses it may answer besides 400, 401 and
    403 (and 413 with a body)."""

    method: str
    path: str
    roles: tuple[str, ...] | None
    what: str
    handler: Handler
    summary: str
    returns: str
    status: int = 200
    body: type | None = None
    query: tuple[Query, ...] = ()
    errors: tuple[int, ...] = ()
    max_body_bytes: int | None = None
    """The largest request body (None: the admin API's 64 KiB)."""

    @property
    def query_names(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.query)

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(p[1:-1] for p in self.path.split("/") if p.startswith("{"))


def response_type(handler: Handler) -> object:
    """``SomeDoc`` of a handler annotated ``-> Reply[SomeDoc]`` (``TypeError`` otherwise)."""
    returned = get_type_hints(handler, include_extras=True).get("return")
    if get_origin(returned) is not Reply or len(get_args(returned)) != 1:
        raise TypeError(f"{handler.__qualname__} is not annotated '-> Reply[SomeDoc]'")
    return get_args(returned)[0]
