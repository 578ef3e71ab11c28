"""Decisions: Cedar semantics, fail-closed errors, obligations, and how packs interact."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from facegate.policy.engine import DEFAULT_PACKS, PolicyEngine, new_decision_id
from facegate.policy.loader import available_packs
from facegate.policy.model import Obligations, PolicyRequest
from facegate.policy.vocabulary import PURPOSES

from .factory import AFTER_MORATORIUM, copy_base, make_request, write_pack

MORATORIUM = "amazon-2020-police-moratorium"
MORATORIUM_FORBID = f"{MORATORIUM}.forbid-police-face-comparison"


@pytest.fixture(scope="module")
def default_engine() -> PolicyEngine:
    return PolicyEngine.load(DEFAULT_PACKS)


@pytest.fixture(scope="module")
def all_packs() -> PolicyEngine:
    return PolicyEngine.load(available_packs())


def test_load_puts_base_first_and_ignores_duplicates() -> None:
    engine = PolicyEngine.load([MORATORIUM, "base", MORATORIUM])
    assert engine.packs == ("base", MORATORIUM)
    assert [p.pack for p in engine.policies()] == ["base"] * 4 + [MORATORIUM]


def test_load_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError, match="not the string 'il-bipa'"):
        PolicyEngine.load("il-bipa")


def test_a_failing_cedar_call_denies(
    default_engine: PolicyEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("engine panic")

    monkeypatch.setattr("facegate.policy.engine.cedarpy.is_authorized", explode)
    decision = default_engine.decide(make_request())
    assert not decision.allowed
    assert decision.errors == ("policy evaluation failed: RuntimeError: engine panic",)


def test_interrupts_are_not_swallowed(
    default_engine: PolicyEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("facegate.policy.engine.cedarpy.is_authorized", interrupt)
    with pytest.raises(KeyboardInterrupt):
        default_engine.decide(make_request())


def test_allow_lists_the_permits(default_engine: PolicyEngine) -> None:
    decision = default_engine.decide(make_request())
    assert decision.allowed
    assert decision.policy_ids == (
        "base.permit-registered-use",
        "base.default-expected-false-candidates",
    )
    assert decision.determining[0].effect == "permit"
    assert decision.errors == ()
    # a 1:N search: the base pack's default bound on expected false candidates, folded in
    assert decision.obligations == Obligations(max_expected_false_candidates=1.0)
    assert decision.eval_ms > 0


def test_deny_lists_the_forbids_with_reason_and_source(default_engine: PolicyEngine) -> None:
    decision = default_engine.decide(
        make_request(sector="law_enforcement", purpose="investigation")
    )
    assert not decision.allowed
    assert decision.policy_ids == (MORATORIUM_FORBID,)
    ref = decision.determining[0]
    assert ref.pack == MORATORIUM
    assert ref.effect == "forbid"
    assert ref.reason.startswith("Amazon's moratorium")
    assert ref.source.startswith("AMZ-MORATORIUM")


def test_forbid_overrides_permit(all_packs: PolicyEngine) -> None:
    # Police face comparison: the AWS permit is satisfied, the moratorium forbid wins.
    decision = all_packs.decide(
        make_request(sector="law_enforcement", purpose="investigation", country="GB", region="")
    )
    assert not decision.allowed
    assert MORATORIUM_FORBID in decision.policy_ids
    assert all(ref.effect == "forbid" for ref in decision.determining)


def test_default_deny_has_no_determining_policies(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    # A base that permits nothing: every request is a default deny.
    write_pack(
        packs,
        "base",
        '@id("b")\n@source("s")\npermit (principal, action, resource) when { false };\n',
    )
    decision = PolicyEngine.load([], packs).decide(make_request())
    assert not decision.allowed
    assert decision.determining == ()
    assert decision.errors == ()


def test_permits_in_other_packs_cannot_widen_access(all_packs: PolicyEngine) -> None:
    """The AWS permit matches any police face comparison, but the key's registration still rules."""
    request = make_request(
        sector="law_enforcement",
        purpose="missing_persons",
        use_case="imminent_threat",
        country="GB",
        region="",
    )
    decision = all_packs.decide(request)
    assert not decision.allowed
    assert "base.forbid-unregistered-purpose" in decision.policy_ids


def test_cross_organisation_collection_is_denied(default_engine: PolicyEngine) -> None:
    decision = default_engine.decide(make_request(collection_org="someone-else"))
    assert decision.policy_ids == ("base.forbid-cross-organisation",)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"purpose": "marketing"}, "unknown purpose 'marketing'"),
        ({"purpose": ""}, "unknown purpose ''"),
        ({"sector": "military"}, "unknown sector 'military'"),
        ({"camera": "drone"}, "unknown camera 'drone'"),
        ({"action": "RecognizeCelebrities"}, "unknown action 'RecognizeCelebrities'"),
        ({"now": datetime(2023, 5, 1)}, "not timezone-aware"),
    ],
)
def test_out_of_vocabulary_requests_are_denied_before_cedar(
    default_engine: PolicyEngine, changes: dict[str, Any], message: str
) -> None:
    request = make_request(**changes)
    decision = default_engine.decide(request)
    assert not decision.allowed
    assert decision.determining == ()
    assert any(message in e for e in decision.errors), decision.errors


def test_an_evaluation_error_denies(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    # Long overflow: the forbid errors at evaluation (Cedar skips it) - facegate must deny.
    write_pack(
        packs,
        "overflow",
        '@id("overflow.forbid")\n@source("test")\n@reason("never satisfied, always errors")\n'
        "forbid (principal, action, resource)\n"
        "when { context.realtime && 9223372036854775807 + 1 == 0 };\n",
    )
    engine = PolicyEngine.load(["overflow"], packs)
    assert engine.decide(make_request(realtime=False)).allowed  # short-circuit: no error
    decision = engine.decide(make_request(realtime=True))
    assert not decision.allowed
    assert decision.determining == ()
    assert any("overflow" in e for e in decision.errors), decision.errors


def test_a_request_the_schema_rejects_denies(default_engine: PolicyEngine) -> None:
    request = make_request(action="SearchFaces")
    request = type(request)(request.principal, request.action, None, request.context)
    decision = default_engine.decide(request)
    assert not decision.allowed
    assert any("is not valid for" in e for e in decision.errors), decision.errors


def test_decision_ids_are_random_and_well_formed(default_engine: PolicyEngine) -> None:
    ids = {default_engine.decide(make_request()).decision_id for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"dec-[0-9a-f]{20}", i) for i in ids)
    assert re.fullmatch(r"dec-[0-9a-f]{20}", new_decision_id())


def test_obligations_combine_across_packs() -> None:
    """A German police search for a missing person (not real-time) in 2026-09: AWS asks 99% and
    one reviewer, the EU Art. 14(5) two reviewers: the decision demands 99% and two."""
    engine = PolicyEngine.load(["aws-public-safety-terms", "eu-ai-act-art5"])
    request = make_request(
        sector="law_enforcement",
        country="DE",
        region="DE-BE",
        purpose="missing_persons",
        now=datetime(2026, 9, 1, tzinfo=UTC),
    )
    decision = engine.decide(request)
    assert decision.allowed
    assert decision.obligations == Obligations(
        min_similarity_pct=99.0, reviewers_required=2, max_expected_false_candidates=0.01
    )
    assert decision.policy_ids == (
        "base.permit-registered-use",
        "base.default-expected-false-candidates",
        "aws-public-safety-terms.permit-law-enforcement-comparison",
        "eu-ai-act-art5.permit-identification-two-person-verification",
    )


def test_microsoft_allows_what_the_default_moratorium_denies() -> None:
    """A UK force identifying an apprehended suspect with an authorisation is approved by
    Microsoft's public-sector list, and denied once Amazon's moratorium (default) is added."""
    request = make_request(
        sector="law_enforcement",
        country="GB",
        region="GB-LND",
        purpose="apprehended_suspect",
        authorization_ref="AUTH-1",
    )
    assert PolicyEngine.load(["microsoft-limited-access"]).decide(request).allowed
    with_default = PolicyEngine.load(["microsoft-limited-access", *DEFAULT_PACKS])
    assert with_default.decide(request).policy_ids == (MORATORIUM_FORBID,)


def test_moratorium_purposes_equal_the_vocabulary(default_engine: PolicyEngine) -> None:
    """Police face comparison after 2020-06-10 is forbidden exactly for the purposes that the
    vocabulary marks as criminal investigation."""
    forbidden = set()
    for name in PURPOSES:
        decision = default_engine.decide(make_request(sector="law_enforcement", purpose=name))
        if MORATORIUM_FORBID in decision.policy_ids:
            forbidden.add(name)
    assert forbidden == {p.name for p in PURPOSES.values() if p.criminal_investigation}
    text = default_engine.policy(MORATORIUM_FORBID).text
    listed = re.search(r"\[([^\]]*)\]\.contains\(context\.purpose\)", text)
    assert listed is not None
    assert set(re.findall(r'"([a-z_]+)"', listed.group(1))) == forbidden


def police(now: datetime = AFTER_MORATORIUM, action: str = "SearchFacesByImage") -> PolicyRequest:
    return make_request(sector="law_enforcement", purpose="investigation", now=now, action=action)


def test_moratorium_boundary_and_scope(default_engine: PolicyEngine) -> None:
    before = datetime(2020, 6, 9, 23, 59, 59, 999000, tzinfo=UTC)
    assert default_engine.decide(police(now=before)).allowed
    assert not default_engine.decide(police(now=datetime(2020, 6, 10, tzinfo=UTC))).allowed
    # "until further notice": no end date
    assert not default_engine.decide(police(now=datetime(2040, 1, 1, tzinfo=UTC))).allowed
    for action in ("DetectFaces", "IndexFaces", "ListFaces", "CreateCollection"):
        assert default_engine.decide(police(action=action)).allowed, action
    comparison = (
        "CompareFaces",
        "SearchFaces",
        "SearchFacesByImage",
        "SearchUsers",
        "SearchUsersByImage",
    )
    for action in comparison:
        assert not default_engine.decide(police(action=action)).allowed, action


def test_policies_view(all_packs: PolicyEngine) -> None:
    infos = all_packs.policies()
    assert len({i.policy_id for i in infos}) == len(infos)
    for info in infos:
        assert info.policy_id.startswith(info.pack + "."), info.policy_id
        assert info.effect in ("permit", "forbid")
        assert info.source
        assert info.line > 0
        assert f'@id("{info.policy_id}")' in info.text
        assert (info.effect == "forbid") == bool(info.reason)
        if info.effect == "forbid":
            assert info.obligations.empty
    with pytest.raises(KeyError):
        all_packs.policy("nope")
