"""The table of operations says what each operation computes, and that is checked three ways:
against botocore's service model (an operation with a match threshold compares faces), against
the handlers (an operation whose row says it compares nothing cannot reach the matcher or the
store's vector searches: the request fails), and against what governance reads from it."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from facegate.config import Settings
from facegate.operations import OPERATIONS as SPECS
from facegate.operations import Comparison
from facegate.ops.common import COMPARING_STORE_METHODS, Enrolment, UndeclaredComparison
from facegate.ops.registry import OPERATIONS, deps_for
from facegate.pipeline import handle
from facegate.services import Services
from tests.signed import local_key, signed_request
from tests.store.factory import face_id, new_face

MODEL = botocore.session.get_session().get_service_model("rekognition")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _match_thresholds(operation: str) -> list[str]:
    """The input members that set a similarity threshold for a match (shape Percent)."""
    members = MODEL.operation_model(operation).input_shape.members
    return [n for n, s in members.items() if n.endswith("Threshold") and s.name == "Percent"]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_an_operation_with_a_match_threshold_compares_faces(name: str) -> None:
    spec = SPECS[name]
    thresholds = _match_thresholds(name)
    assert spec.compares_faces == bool(thresholds), name
    if thresholds:
        [threshold] = thresholds
        assert spec.threshold_param == _snake(threshold)
        assert spec.default_threshold_pct is not None
    else:
        assert spec.threshold_param is None


@pytest.mark.parametrize("name", sorted(SPECS))
def test_what_is_held_and_capped_is_in_the_answer(name: str) -> None:
    """Held fields are members of the answer, and include every list that tells who matched or
    did not (a list of Similarity-scored matches, or of (un)matched/associated faces)."""
    spec = SPECS[name]
    output = MODEL.operation_model(name).output_shape.members
    inputs = MODEL.operation_model(name).input_shape.members
    assert set(spec.held_fields) <= set(output)
    assert set(spec.candidate_fields) <= set(spec.held_fields)
    if spec.cap_param is not None:
        assert spec.cap_param in {_snake(n) for n in inputs}
    if not spec.compares_faces:
        return
    telling = {
        member
        for member, shape in output.items()
        if shape.type_name == "list"
        and (
            "Similarity" in getattr(shape.member, "members", {})
            or re.search("Match|Unmatched|Associat", member)
        )
    }
    assert telling, name
    assert telling <= set(spec.held_fields), name


def test_an_operation_that_compares_and_writes_can_be_planned() -> None:
    for name, op in OPERATIONS.items():
        if op.spec.compares_faces and op.spec.writes:
            assert op.holdable, name
            assert op.plan is not None, name
            assert op.apply_held is not None, name
    assert OPERATIONS["AssociateFaces"].plan is not None


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    graph = Services.open(
        Settings(data_dir=tmp_path / "data", engine_workers=1), start_engine=False
    )
    yield graph
    graph.close()


def test_an_operation_that_compares_nothing_cannot_reach_the_matcher(services: Services) -> None:
    for op in OPERATIONS.values():
        deps = deps_for(services.deps, op, "local", Enrolment())
        if op.spec.compares_faces:
            assert deps.matcher is services.deps.matcher
            assert deps.store is services.store
            continue
        with pytest.raises(UndeclaredComparison):
            deps.matcher.compare([0.0] * 128, [0.0] * 128)
        for method in COMPARING_STORE_METHODS:
            with pytest.raises(UndeclaredComparison):
                getattr(deps.store, method)
        assert deps.store.get_collection is not None  # the rest of the store is there


class Caller:
    """Signed requests of one key of the local organisation, through the pipeline in process."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.key = local_key(services)

    def call(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = asyncio.run(handle(self.services, signed_request(self.key, operation, body)))
        return response.status, json.loads(response.body)


COMPARING_CALLS: dict[str, dict[str, Any]] = {
    "SearchFaces": {"CollectionId": "c", "FaceId": face_id(0)},
    "SearchUsers": {"CollectionId": "c", "FaceId": face_id(0)},
    "AssociateFaces": {"CollectionId": "c", "UserId": "u", "FaceIds": [face_id(1), face_id(2)]},
}


@pytest.mark.parametrize("name", sorted(COMPARING_CALLS))
def test_an_undeclared_comparison_fails_the_request(
    services: Services, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """If a row said an operation that compares faces did not, the request would fail closed
    (InternalServerError, no answer) instead of escaping the face-comparison rules."""
    caller = Caller(services)
    assert caller.call("CreateCollection", {"CollectionId": "c"})[0] == 200
    assert caller.call("CreateUser", {"CollectionId": "c", "UserId": "u"})[0] == 200
    collection = services.store.get_collection("local", "c")
    services.store.add_faces(collection, [new_face(collection.uid, i) for i in range(3)])
    body = COMPARING_CALLS[name]
    status, answer = caller.call(name, body)
    assert status == 200, answer

    op = OPERATIONS[name]
    undeclared = replace(
        op, spec=replace(op.spec, comparison=Comparison.NONE, held_fields=(), candidate_fields=())
    )
    monkeypatch.setattr("facegate.pipeline.OPERATIONS", {**OPERATIONS, name: undeclared})
    status, answer = caller.call(name, body)
    assert status == 500
    assert answer["__type"] == "InternalServerError"
    assert set(answer) <= {"__type", "Code", "message", "Message"}
