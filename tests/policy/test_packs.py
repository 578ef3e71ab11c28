"""The shipped packs are documented and cite real rules: every policy's @source names rule IDs
from governance-rules.md (or FACEGATE-*) and source keys from its section 4, and every pack's
README lists its policies, its rule IDs and what it obliges."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from facegate.operations import FACE_ATTRIBUTES
from facegate.policy.engine import PolicyEngine
from facegate.policy.loader import PACKS_DIR, available_packs
from facegate.policy.model import PolicyRequest
from facegate.policy.obligations import describe
from tests.policy.factory import make_request

RULES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "governance-rules.md"


@pytest.fixture(scope="module")
def rules_text() -> str:
    if not RULES.is_file():
        pytest.fail(f"governance rules not found at {RULES}: tests need ../shared/reference")
    return RULES.read_text(encoding="utf-8")


def known_rule_ids(text: str) -> set[str]:
    return set(re.findall(r"^\| ([A-Z][A-Z0-9-]+) \|", text, flags=re.MULTILINE))


def known_source_keys(text: str) -> set[str]:
    return set(re.findall(r"^- \*\*([A-Z][0-9]+[a-z]?)\*\*", text, flags=re.MULTILINE))


@pytest.mark.parametrize("pack", available_packs())
def test_sources_cite_known_rules_and_keys(pack: str, rules_text: str) -> None:
    rule_ids = known_rule_ids(rules_text)
    keys = known_source_keys(rules_text)
    assert {"AMZ-MORATORIUM", "EU-14-5", "US-IL-BIPA"} <= rule_ids
    assert {"A5", "M2", "E2", "U35"} <= keys
    engine = PolicyEngine.load([pack])
    for info in engine.policies():
        if info.pack != pack:
            continue
        for part in info.source.split(";"):
            rule = part.split()[0]
            assert rule in rule_ids or rule.startswith("FACEGATE-"), (info.policy_id, rule)
            cited = re.findall(r"\[([A-Z][0-9]+[a-z]?)\]", part)
            assert cited or rule.startswith("FACEGATE-"), (info.policy_id, part)
            assert set(cited) <= keys, (info.policy_id, cited)


@pytest.mark.parametrize("pack", available_packs())
def test_readme_documents_the_pack(pack: str) -> None:
    readme = (PACKS_DIR / pack / "README.md").read_text(encoding="utf-8")
    engine = PolicyEngine.load([pack])
    for info in engine.policies():
        if info.pack != pack:
            continue
        assert f"`{info.policy_id}`" in readme, info.policy_id
        for rule in re.findall(r"[A-Z][A-Z0-9]+-[A-Z0-9-]+", info.source):
            assert rule in readme, (pack, rule)
        if not info.obligations.empty:
            for name, value in info.annotations.items():
                if name in (
                    "min_similarity",
                    "max_candidates",
                    "human_review",
                    "redact",
                    "retention_days",
                ):
                    assert f'@{name}("{value}")' in readme, (pack, name)
            assert describe(info.obligations) != "none"


def test_packs_index_lists_every_pack() -> None:
    index = (PACKS_DIR / "README.md").read_text(encoding="utf-8")
    for pack in available_packs():
        assert f"[{pack}]({pack}/README.md)" in index


def test_no_misquotation_of_the_moratorium_scope() -> None:
    """governance-rules.md §0 #1/#2: use the Service Terms scope; the extension was told to
    Reuters, not announced."""
    texts = [
        (PACKS_DIR / "amazon-2020-police-moratorium" / name).read_text(encoding="utf-8")
        for name in ("README.md", "policies.cedar")
    ]
    for text in texts:
        assert "police use of Rekognition" not in text
        assert "announced the extension" not in text.lower()
        assert "face comparison" in text
        assert "in connection with criminal investigations" in text


def _attribute_request(
    attributes: frozenset[str], named: frozenset[str], *, setting: str, purpose: str
) -> PolicyRequest:
    base = make_request(
        action="DetectFaces", country="DE", region="DE", purpose=purpose, now=AFTER_AI_ACT
    )
    context = replace(base.context, setting=setting, attributes=attributes, attributes_named=named)
    return replace(base, context=context)


AFTER_AI_ACT = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("setting", "purpose"), [("workplace", "access_control"), ("education", "access_control")]
)
def test_eye_direction_is_neither_refused_nor_dropped_by_the_attribute_packs(
    setting: str, purpose: str
) -> None:
    """EyeDirection is where the eyes point: not an emotion (EU AI Act Art. 5(1)(f)), not a
    category of person (5(1)(g)), not among the capabilities Microsoft retired or limited;
    the packs that govern attributes leave it alone, while they drop EMOTIONS beside it."""
    engine = PolicyEngine.load(["base", "eu-ai-act-art5", "microsoft-limited-access"])
    everything = frozenset(FACE_ATTRIBUTES)
    decision = engine.decide(
        _attribute_request(everything, frozenset(), setting=setting, purpose=purpose)
    )
    assert decision.allowed, decision
    assert "EMOTIONS" in decision.obligations.drop_attributes  # the packs are active
    assert "EYE_DIRECTION" not in decision.obligations.drop_attributes
    named = frozenset({"EYE_DIRECTION"})
    decision = engine.decide(_attribute_request(named, named, setting=setting, purpose=purpose))
    assert decision.allowed, decision
    assert decision.obligations.drop_attributes == frozenset()
    refused = frozenset({"EYE_DIRECTION", "EMOTIONS"})
    decision = engine.decide(_attribute_request(refused, refused, setting=setting, purpose=purpose))
    assert not decision.allowed  # naming EMOTIONS is refused: the request above is not vacuous
