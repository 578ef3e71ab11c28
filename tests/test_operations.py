"""The table of operations says what each operation computes, and that is checked four ways:
against botocore's service model (the names; an operation with a match threshold compares
faces; thresholds and their documented defaults, caps and their maxima, idempotency tokens,
image parameters, the answer members a row names), against the handlers (an operation whose row
says it compares nothing cannot reach the matcher or the store's vector searches: the request
fails), against what governance reads from it, and against the source (no other module names an
operation to keep a fact of its own about it)."""

from __future__ import annotations

import ast
import asyncio
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import botocore.session
import pytest

import facegate
from facegate.config import Settings
from facegate.operations import (
    DEFAULT_THRESHOLD_PCT,
    Comparison,
    OperationSpec,
    cap_limit,
    default_threshold,
)
from facegate.operations import OPERATIONS as SPECS
from facegate.ops.common import COMPARING_STORE_METHODS, Enrolment, UndeclaredComparison
from facegate.ops.registry import OPERATIONS, deps_for
from facegate.pipeline import handle
from facegate.recording import SUMMARISED_MEMBERS, input_hashes, summarise
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


def _members(operation: str, which: str) -> dict[str, Any]:
    shape = getattr(MODEL.operation_model(operation), which)
    return dict(shape.members) if shape is not None else {}


def test_the_operations_are_rekognitions_face_api() -> None:
    """Every row is an operation of the service model, and every operation of the model on a
    collection is served except the video one (StartFaceSearch: no video here)."""
    assert len(SPECS) == 21
    assert set(SPECS) <= set(MODEL.operation_names)
    on_collections = {
        n for n in MODEL.operation_names if "CollectionId" in _members(n, "input_shape")
    }
    assert on_collections - set(SPECS) == {"StartFaceSearch"}
    for name, spec in SPECS.items():
        inputs = {_snake(n) for n in _members(name, "input_shape")}
        assert spec.name == name
        if spec.collection_param is not None:
            assert spec.collection_param in inputs, name
        if spec.attributes_param is not None:
            assert spec.attributes_param in inputs, name


def _documented_default(operation: str, member: str) -> float | None:
    """The default of a threshold as botocore documents it: in the member's documentation
    ("default value is 80%", "Default value of 80") or the operation's ("By default, only
    faces with a similarity score of greater than or equal to 80% are returned")."""
    model = MODEL.operation_model(operation)
    patterns = (r"[Dd]efault value (?:is|of) (\d+(?:\.\d+)?)", r"greater than or equal to (\d+)%")
    for text in (model.input_shape.members[member].documentation, model.documentation):
        for pattern in patterns:
            found = re.search(pattern, text)
            if found:
                return float(found.group(1))
    return None


@pytest.mark.parametrize("name", sorted(n for n, s in SPECS.items() if s.threshold_param))
def test_thresholds_default_as_botocore_documents(name: str) -> None:
    spec = SPECS[name]
    [member] = _match_thresholds(name)
    documented = _documented_default(name, member)
    assert documented is not None, f"{name}.{member}: no documented default"
    assert spec.default_threshold_pct == documented == default_threshold(name)
    assert MODEL.operation_model(name).input_shape.members[member].metadata["max"] == 100


def test_the_default_threshold_is_rekognitions_80_but_associate_faces_75() -> None:
    defaults = {n: s.default_threshold_pct for n, s in SPECS.items() if s.threshold_param}
    assert defaults.pop("AssociateFaces") == 75.0
    assert set(defaults.values()) == {DEFAULT_THRESHOLD_PCT} == {80.0}
    with pytest.raises(ValueError, match="no threshold"):
        default_threshold("DetectFaces")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_caps_are_the_models_maxima(name: str) -> None:
    """An operation that lists candidates has a cap parameter whose limit is the model's
    maximum (MaxFaces 4,096, MaxUsers 500); the others have none (IndexFaces' MaxFaces caps
    faces indexed, not candidates)."""
    spec = SPECS[name]
    inputs = _members(name, "input_shape")
    assert bool(spec.candidate_fields) == (spec.cap_param is not None) or name == "CompareFaces"
    if spec.cap_param is None:
        assert spec.cap_limit is None
        with pytest.raises(ValueError, match="no candidate cap"):
            cap_limit(name)
        return
    [member] = [n for n in inputs if _snake(n) == spec.cap_param]
    assert member in {"MaxFaces", "MaxUsers"}
    assert inputs[member].metadata == {"min": 1, "max": spec.cap_limit}
    assert cap_limit(name) == spec.cap_limit


@pytest.mark.parametrize("name", sorted(SPECS))
def test_idempotency_is_the_models_client_request_token(name: str) -> None:
    assert SPECS[name].idempotent_token == ("ClientRequestToken" in _members(name, "input_shape"))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_images_are_the_models_image_parameters(name: str) -> None:
    """The parameters that carry an image are the model's members of shape Image, in its order;
    exactly the operations with one run the engine."""
    spec = SPECS[name]
    images = [_snake(n) for n, s in _members(name, "input_shape").items() if s.name == "Image"]
    assert list(spec.image_params) == images
    assert spec.uses_engine == bool(images)


def _shape_at(name: str, path: tuple[str, ...]) -> Any:
    shape = MODEL.operation_model(name).output_shape
    for member in path:
        assert member in shape.members, (name, path)
        shape = shape.members[member]
    return shape


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_probe_is_a_compared_image_and_its_box_is_in_the_answer(name: str) -> None:
    """A reviewer sees the probe of every comparison that carries an image (the source face of
    CompareFaces, the searched face of a search by image), at a bounding box of the answer."""
    spec = SPECS[name]
    assert (spec.probe is not None) == (spec.compares_faces and spec.uses_engine), name
    if spec.probe is not None:
        assert spec.probe.param in spec.image_params
        assert _shape_at(name, spec.probe.box_path).name == "BoundingBox"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_audit_record_summarises_the_members_it_can_read(name: str) -> None:
    """A row's summary fields are the answer members the record's summary reads (none left out,
    none the answer lacks), in the model's order."""
    output = list(_members(name, "output_shape"))
    assert list(SPECS[name].summary_fields) == [m for m in output if m in SUMMARISED_MEMBERS]


def test_the_summary_reads_only_the_rows_members() -> None:
    """The record of a search by FaceId counts its matches and their FaceIds; members its row
    does not name are not read, whatever the answer carries."""
    answer = {
        "SearchedFaceId": "f0",
        "FaceMatches": [{"Similarity": 91.5, "Face": {"FaceId": "f1"}}],
        "FaceRecords": [{"Face": {"FaceId": "f2"}}],
        "FaceDetails": [{}, {}],
    }
    summary = summarise(SPECS["SearchFaces"], answer, held=True)
    assert (summary.candidates, summary.top_similarity_pct) == (1, 91.5)
    assert summary.face_ids == ("f1",)
    assert (summary.faces_detected, summary.faces_indexed, summary.held_for_review) == (
        None,
        None,
        True,
    )
    indexed = summarise(SPECS["IndexFaces"], answer)
    assert (indexed.faces_indexed, indexed.face_ids, indexed.candidates) == (1, ("f2",), None)
    assert summarise(SPECS["AssociateFaces"], answer).face_ids == ()


@pytest.mark.parametrize(
    ("name", "member"),
    [("AssociateFaces", "AssociatedFaces"), ("DisassociateFaces", "DisassociatedFaces")],
)
def test_the_record_of_a_user_change_names_the_faces_it_moved(name: str, member: str) -> None:
    """AssociateFaces compares faces and enrols them to a user: its record keeps the FaceIds it
    associated (never the faces that failed, nor any score); DisassociateFaces likewise."""
    answer = {
        member: [{"FaceId": "f1"}, {"FaceId": "f2"}],
        "UnsuccessfulFaceAssociations": [{"FaceId": "f3", "Confidence": 40.0}],
        "UnsuccessfulFaceDisassociations": [{"FaceId": "f4"}],
        "UserStatus": "ACTIVE",
    }
    summary = summarise(SPECS[name], answer)
    assert summary.face_ids == ("f1", "f2")
    assert (summary.candidates, summary.top_similarity_pct) == (None, None)


def test_input_hashes_are_of_the_rows_images_in_its_order() -> None:
    params = {"source_image": {"bytes": b"s"}, "target_image": {"bytes": b"t"}, "image": {}}
    digests = input_hashes(SPECS["CompareFaces"], params)
    assert digests == tuple(hashlib.sha256(b).hexdigest() for b in (b"s", b"t"))
    assert input_hashes(SPECS["SearchFaces"], {"image": {"bytes": b"x"}}) == ()


def test_a_row_keeps_its_parameters_together() -> None:
    with pytest.raises(ValueError, match="threshold parameter goes with its default"):
        OperationSpec("X", SPECS["SearchFaces"].resource, threshold_param="t")
    with pytest.raises(ValueError, match="cap parameter goes with its limit"):
        OperationSpec("X", SPECS["SearchFaces"].resource, cap_param="max_faces")
    probe = SPECS["CompareFaces"].probe
    with pytest.raises(ValueError, match="probe is not one of the request's images"):
        OperationSpec("X", SPECS["SearchFaces"].resource, probe=probe)


_NAMING_CALLS = frozenset({"default_threshold", "cap_limit"})


def _named_elsewhere() -> list[str]:
    """Every string literal in the package equal to an operation's name outside its row, the
    handler map (ops/registry.py's keys) and a handler reading its own row."""
    root = Path(facegate.__file__).parent
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative == "operations.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        allowed: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in _NAMING_CALLS:
                allowed.update(id(a) for a in node.args)
            if isinstance(node, ast.Dict) and relative == "ops/registry.py":
                allowed.update(id(k) for k in node.keys if k is not None)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or id(node) in allowed:
                continue
            if isinstance(node.value, str) and node.value in SPECS:
                found.append(f"{relative}:{node.lineno}: {node.value}")
    return found


def test_no_other_module_keeps_facts_about_an_operation_by_name() -> None:
    """No list, dict or ``if op == "..."`` keyed by an operation's name outside the table: a
    fact about an operation is a column of its row."""
    assert _named_elsewhere() == []


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
