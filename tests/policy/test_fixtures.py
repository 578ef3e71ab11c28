"""Every pack's request fixtures hold, alone on base and with the default packs; the fixture
format is strict. A new fixture file is a new test case."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from facegate.policy.engine import DEFAULT_PACKS, PolicyEngine
from facegate.policy.errors import FixtureError
from facegate.policy.fixtures import (
    Fixture,
    check,
    load_fixture,
    obligations_json,
    pack_fixtures,
    pack_sets,
    request_from_json,
)
from facegate.policy.loader import PACKS_DIR, available_packs
from facegate.policy.model import Decision, Obligations, PolicyRef

CASES = [
    pytest.param(
        fixture, packs, id=f"{'+'.join(packs[1:]) or 'base'}:{fixture.pack}/{fixture.name}"
    )
    for pack in available_packs()
    for fixture in pack_fixtures(pack, PACKS_DIR)
    for packs in pack_sets(pack, DEFAULT_PACKS)
]


@cache
def engine(packs: tuple[str, ...]) -> PolicyEngine:
    return PolicyEngine.load(packs)


@pytest.mark.parametrize(("fixture", "packs"), CASES)
def test_fixture(fixture: Fixture, packs: tuple[str, ...]) -> None:
    decision = engine(packs).decide(fixture.request)
    assert check(fixture, decision) == ""


@pytest.mark.parametrize("pack", available_packs())
def test_every_pack_has_allow_and_deny_fixtures(pack: str) -> None:
    fixtures = pack_fixtures(pack, PACKS_DIR)
    assert any(f.expect_allow for f in fixtures)
    assert any(not f.expect_allow for f in fixtures)
    for f in fixtures:
        assert f.description, f.name
        if not f.expect_allow:
            assert f.policies or f.error, f"{f.name}: a DENY fixture names its policies or error"
        # a pack's DENY fixtures are about its own policies
        assert all(p.startswith(pack + ".") for p in f.policies), f.name


def test_pack_sets() -> None:
    assert pack_sets("il-bipa", ("m",)) == [("base", "il-bipa"), ("base", "il-bipa", "m")]
    assert pack_sets("m", ("m",)) == [("base", "m")]
    assert pack_sets("base", ("m",)) == [("base",), ("base", "m")]
    assert pack_sets("base", ()) == [("base",)]


MINIMAL: dict[str, Any] = {
    "description": "d",
    "principal": {
        "use_case": "access_control",
        "organisation": {"sector": "commercial", "use_cases": ["access_control"]},
    },
    "action": "SearchFaces",
    "resource": {"collection_id": "c"},
    "context": {"now": "2024-01-01T00:00:00+01:00", "purpose": "access_control"},
}


def test_minimal_document_and_defaults() -> None:
    request = request_from_json(MINIMAL, "x.json")
    assert request.principal.key_id == "AKFIXTURE"
    assert request.principal.organisation.org_id == "org-fixture"
    assert request.resource is not None
    assert request.resource.organisation_id == "org-fixture"
    assert request.context.now.isoformat() == "2023-12-31T23:00:00+00:00"
    assert request.context.realtime is False


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("context", "now"),
            "2024-01-01T00:00:00",
            "context.now: '2024-01-01T00:00:00' has no timezone",
        ),
        (("context", "now"), "yesterday", "is not an ISO 8601 time"),
        (("context", "realtime"), "yes", "context.realtime: must be true or false"),
        (("context", "purpos"), "x", "context: unknown key(s) ['purpos']"),
        (("principal", "organisation", "use_cases"), "access_control", "must be a list of strings"),
        (("resource", "face_count"), "3", "resource.face_count: must be an integer"),
        (("action",), 7, "action: must be a string"),
        (("extra",), 1, "document: unknown key(s) ['extra']"),
    ],
)
def test_format_errors_name_the_field(path: tuple[str, ...], value: object, message: str) -> None:
    doc = json.loads(json.dumps(MINIMAL))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(FixtureError, match=r"x\.json") as info:
        request_from_json(doc, "x.json")
    assert message in str(info.value)


def test_missing_required_field() -> None:
    doc = json.loads(json.dumps(MINIMAL))
    del doc["principal"]["organisation"]["sector"]
    with pytest.raises(FixtureError, match=r"principal\.organisation\.sector: is required"):
        request_from_json(doc, "x.json")


def write(tmp_path: Path, kind: str, doc: object) -> Path:
    path = tmp_path / kind / "f.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_expectations_must_fit_the_directory(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match="an ALLOW fixture expects only obligations"):
        load_fixture(write(tmp_path, "ALLOW", {**MINIMAL, "expect": {"policies": ["p"]}}), "x")
    with pytest.raises(FixtureError, match="not obligations"):
        load_fixture(write(tmp_path, "DENY", {**MINIMAL, "expect": {"obligations": {}}}), "x")
    with pytest.raises(FixtureError, match="ALLOW/ or DENY/"):
        load_fixture(write(tmp_path, "MAYBE", MINIMAL), "x")
    path = tmp_path / "DENY" / "bad.json"
    path.write_text("{")
    with pytest.raises(FixtureError, match="not valid JSON"):
        load_fixture(path, "x")


def test_load_fixture_reads_expectations(tmp_path: Path) -> None:
    obligations = {"min_similarity_pct": 99, "reviewers_required": 2, "redact_fields": ["UserId"]}
    fixture = load_fixture(
        write(tmp_path, "ALLOW", {**MINIMAL, "expect": {"obligations": obligations}}), "p"
    )
    assert fixture.expect_allow
    assert fixture.obligations == Obligations(99.0, None, 2, frozenset({"UserId"}), None)
    assert obligations_json(fixture.obligations) == {**obligations, "min_similarity_pct": 99.0}
    deny = load_fixture(
        write(tmp_path, "DENY", {**MINIMAL, "expect": {"policies": ["p.x"], "error": "e"}}), "p"
    )
    assert (deny.expect_allow, deny.policies, deny.error) == (False, ("p.x",), "e")


def test_check() -> None:
    request = request_from_json(MINIMAL, "x.json")
    allow = Fixture(
        Path("ALLOW/a.json"), "p", True, "d", request, Obligations(reviewers_required=1)
    )
    deny = Fixture(Path("DENY/d.json"), "p", False, "d", request, policies=("p.f",), error="boom")
    forbid = PolicyRef("p.f", "p", "forbid", "r", "s")
    permitted = Decision("dec-1", True, obligations=Obligations(reviewers_required=1))
    assert check(allow, permitted) == ""
    assert "obligations" in check(allow, Decision("dec-1", True))
    assert "expected Allow, got Deny (p.f)" in check(allow, Decision("dec-1", False, (forbid,)))
    assert "expected Deny" in check(deny, permitted)
    assert "among the determining" in check(deny, Decision("dec-1", False, errors=("boom",)))
    assert "error containing 'boom'" in check(deny, Decision("dec-1", False, (forbid,)))
    assert check(deny, Decision("dec-1", False, (forbid,), errors=("a boom",))) == ""
