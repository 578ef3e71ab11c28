"""Tenancy through the whole request path (SigV4, policy, operations, store), in process, on
SQLite and PostgreSQL, with the interleavings forced by pausing a request at a chosen step:

* a request acts on the collection its policy decision was about: one deleted meanwhile answers
  ResourceNotFoundException and nothing is written, also when its id names a new collection by
  then, of the same organisation or another (issue 18, item 5);
* ClientRequestToken records are scoped by organisation and collection identity and expire
  after their window (item 6).
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from facegate.config import Settings
from facegate.engine.core import FaceEngine
from facegate.engine.types import Analysis
from facegate.pipeline import RawRequest, handle
from facegate.services import Services
from facegate.store.idempotency import IdempotencyRepository
from facegate.wire.keys import NewKey
from tests.conftest import BACKENDS
from tests.in_process import InProcessEngine
from tests.signed import signed_request

Answer = tuple[int, dict[str, Any]]
TOKEN_WINDOW_S = 8 * 3600.0  # how long a ClientRequestToken is remembered (store/idempotency.py)


@pytest.fixture(params=BACKENDS)
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    url = request.getfixturevalue("pg_dsn") if request.param == "postgres" else None
    graph = Services.open(
        # A day of allowed clock skew: the expiry test moves the server's clock by hours.
        Settings(
            data_dir=tmp_path / "data", engine_workers=1, database_url=url, max_skew_s=86400.0
        ),
        start_engine=False,
    )
    yield graph
    graph.close()


def _org(services: Services, org_id: str) -> NewKey:
    services.registry.create_org(org_id, name=org_id, sector="research", use_cases=["research"])
    return services.registry.create_key(org_id, "research")


def _signed(key: NewKey, operation: str, body: dict[str, Any]) -> RawRequest:
    return signed_request(key, operation, body)


async def _call(services: Services, key: NewKey, operation: str, **body: Any) -> Answer:
    response = await handle(services, _signed(key, operation, body))
    return response.status, json.loads(response.body)


async def _ok(services: Services, key: NewKey, operation: str, **body: Any) -> dict[str, Any]:
    status, answer = await _call(services, key, operation, **body)
    assert status == 200, (operation, answer)
    return answer


def _not_found(answer: Answer) -> None:
    status, body = answer
    assert (status, body.get("__type")) == (400, "ResourceNotFoundException"), body
    assert body["Message"] == "The collection id: x does not exist"


class PausedEngine(InProcessEngine):
    """The real engine behind a gate: ``analyze_async`` says it was entered, then waits until
    the test opens the gate (IndexFaces is then between resolving its collection and storing
    the faces)."""

    def __init__(self, engine: FaceEngine) -> None:
        super().__init__(engine)
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def analyze_async(
        self,
        data: bytes,
        *,
        descriptors: bool = True,
        max_faces: int | None = None,
        attributes: frozenset[str] = frozenset(),
        model: str | None = None,
    ) -> Analysis:
        self.entered.set()
        await self.gate.wait()
        return await super().analyze_async(
            data,
            descriptors=descriptors,
            max_faces=max_faces,
            attributes=attributes,
            model=model,
        )


class PausedRecall:
    """The idempotency repository with its first ``recall`` held until released: the request
    is then past its policy decision and before its work."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.gate = threading.Event()

    def recall(self, *args: Any, **kwargs: Any) -> Any:
        if not self.entered.is_set():
            self.entered.set()
            assert self.gate.wait(30)
        return self.inner.recall(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("successor", ["another organisation", "the same organisation"])
def test_index_faces_in_flight_never_lands_in_a_collection_created_after_the_deletion(
    services: Services, engine: FaceEngine, sample_bytes: Any, successor: str
) -> None:
    a = _org(services, "org-a")
    b = _org(services, "org-b") if successor == "another organisation" else a
    paused = PausedEngine(engine)
    services.deps = replace(services.deps, engine=paused)
    image = {"Bytes": base64.b64encode(sample_bytes("obama.jpg")).decode()}

    async def scenario() -> None:
        await _ok(services, a, "CreateCollection", CollectionId="x")
        indexing = asyncio.create_task(
            _call(services, a, "IndexFaces", CollectionId="x", Image=image)
        )
        await paused.entered.wait()  # A's IndexFaces resolved "x" and is analysing the image
        await _ok(services, a, "DeleteCollection", CollectionId="x")
        await _ok(services, b, "CreateCollection", CollectionId="x")
        paused.gate.set()
        _not_found(await indexing)
        listed = await _ok(services, b, "ListFaces", CollectionId="x")
        assert listed["Faces"] == []
        described = await _ok(services, b, "DescribeCollection", CollectionId="x")
        assert described["FaceCount"] == 0
        search = await _ok(services, b, "SearchFacesByImage", CollectionId="x", Image=image)
        assert search["FaceMatches"] == []

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("CreateUser", {"UserId": "u-new"}),
        ("DeleteUser", {"UserId": "u1"}),
        ("AssociateFaces", {"UserId": "u1", "FaceIds": ["00000000-0000-0000-0000-000000000001"]}),
        (
            "DisassociateFaces",
            {"UserId": "u1", "FaceIds": ["00000000-0000-0000-0000-000000000001"]},
        ),
    ],
)
def test_a_request_acts_on_the_collection_its_decision_was_about(
    services: Services, operation: str, params: dict[str, Any]
) -> None:
    """The request is held after its policy decision (which resolved "x"); meanwhile "x" is
    deleted and another organisation creates "x" with a user "u1". The held request must not
    touch the new collection."""
    a, b = _org(services, "org-a"), _org(services, "org-b")
    paused = PausedRecall(services.deps.idempotency)
    services.deps = replace(services.deps, idempotency=cast(IdempotencyRepository, paused))

    async def scenario() -> None:
        await _ok(services, a, "CreateCollection", CollectionId="x")
        await _ok(services, a, "CreateUser", CollectionId="x", UserId="u1")
        held = asyncio.create_task(
            _call(services, a, operation, CollectionId="x", ClientRequestToken="tok-1", **params)
        )
        await asyncio.to_thread(paused.entered.wait, 30)
        await _ok(services, a, "DeleteCollection", CollectionId="x")
        await _ok(services, b, "CreateCollection", CollectionId="x")
        await _ok(services, b, "CreateUser", CollectionId="x", UserId="u1")
        paused.gate.set()
        _not_found(await held)
        users = await _ok(services, b, "ListUsers", CollectionId="x")
        assert [u["UserId"] for u in users["Users"]] == ["u1"]

    asyncio.run(scenario())


def test_a_client_request_token_belongs_to_one_organisation(services: Services) -> None:
    a, b = _org(services, "org-a"), _org(services, "org-b")

    async def scenario() -> None:
        await _ok(services, a, "CreateCollection", CollectionId="xa")
        await _ok(services, b, "CreateCollection", CollectionId="xb")
        await _ok(services, a, "CreateUser", CollectionId="xa", UserId="u", ClientRequestToken="t")
        # The same token from another organisation is another request: no mismatch, no replay.
        await _ok(services, b, "CreateUser", CollectionId="xb", UserId="u", ClientRequestToken="t")
        users = await _ok(services, b, "ListUsers", CollectionId="xb")
        assert [u["UserId"] for u in users["Users"]] == ["u"]
        # Within one organisation and collection the token still means what it meant.
        await _ok(services, a, "CreateUser", CollectionId="xa", UserId="u", ClientRequestToken="t")
        status, body = await _call(
            services, a, "CreateUser", CollectionId="xa", UserId="v", ClientRequestToken="t"
        )
        assert (status, body["__type"]) == (400, "IdempotentParameterMismatchException")

    asyncio.run(scenario())


@pytest.mark.parametrize("successor", ["another organisation", "the same organisation"])
def test_a_token_is_not_replayed_on_a_collection_created_again(
    services: Services, successor: str
) -> None:
    a = _org(services, "org-a")
    b = _org(services, "org-b") if successor == "another organisation" else a

    async def scenario() -> None:
        await _ok(services, a, "CreateCollection", CollectionId="x")
        await _ok(services, a, "CreateUser", CollectionId="x", UserId="u")
        await _ok(services, a, "DeleteUser", CollectionId="x", UserId="u", ClientRequestToken="d")
        await _ok(services, a, "DeleteCollection", CollectionId="x")
        await _ok(services, b, "CreateCollection", CollectionId="x")
        await _ok(services, b, "CreateUser", CollectionId="x", UserId="u")
        # The same parameters and token: on the new collection this is a new request, which
        # deletes the new user (a replay of the old answer would leave it in place).
        await _ok(services, b, "DeleteUser", CollectionId="x", UserId="u", ClientRequestToken="d")
        users = await _ok(services, b, "ListUsers", CollectionId="x")
        assert users["Users"] == []

    asyncio.run(scenario())


def test_a_token_expires_after_eight_hours(services: Services) -> None:
    a = _org(services, "org-a")
    start = services.clock()
    now = [start]
    services.clock = lambda: now[0]

    async def scenario() -> None:
        await _ok(services, a, "CreateCollection", CollectionId="x")
        await _ok(services, a, "CreateUser", CollectionId="x", UserId="u1", ClientRequestToken="t")
        now[0] = start + TOKEN_WINDOW_S - 60  # still valid: another use is a mismatch
        status, body = await _call(
            services, a, "CreateUser", CollectionId="x", UserId="u2", ClientRequestToken="t"
        )
        assert (status, body["__type"]) == (400, "IdempotentParameterMismatchException")
        now[0] = start + TOKEN_WINDOW_S + 1  # expired: a new request
        await _ok(services, a, "CreateUser", CollectionId="x", UserId="u2", ClientRequestToken="t")
        users = await _ok(services, a, "ListUsers", CollectionId="x")
        assert sorted(u["UserId"] for u in users["Users"]) == ["u1", "u2"]
        # The new answer is the one remembered now, for another window.
        await _ok(services, a, "CreateUser", CollectionId="x", UserId="u2", ClientRequestToken="t")

    asyncio.run(scenario())
