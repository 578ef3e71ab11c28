"""Loading packs: every way a pack can be broken fails with a message naming pack, file, line."""

from __future__ import annotations

from pathlib import Path

import pytest

from facegate.policy.engine import PolicyEngine
from facegate.policy.errors import PolicyLoadError
from facegate.policy.loader import available_packs, load_schema, split_policies

from .factory import copy_base, make_request, write_pack

GOOD = """
@id("extra.permit-review")
@source("AMZ-LE-TERMS [A6]")
@human_review("1")
permit (principal, action in Facegate::Action::"face_comparison", resource)
when { principal.organisation.sector == "law_enforcement" };
"""


def load_error(packs: Path, *names: str) -> str:
    with pytest.raises(PolicyLoadError) as info:
        PolicyEngine.load(names, packs)
    message = str(info.value)
    assert "\n" not in message  # FacegateError contract: one line
    return message


def test_a_good_extra_pack_loads(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    write_pack(packs, "extra", GOOD)
    engine = PolicyEngine.load(["extra"], packs)
    assert engine.packs == ("base", "extra")
    info = engine.policy("extra.permit-review")
    assert info.line == 2
    assert info.obligations.reviewers_required == 1
    assert info.text.startswith('@id("extra.permit-review")')


def test_broken_policy_text_names_pack_file_and_line(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    path = write_pack(
        packs,
        "extra",
        GOOD + '\n@id("x")\n@source("y")\n'
        'permit (principal, action, resource) when { context.purpose = "a" };\n',
    )
    message = load_error(packs, "extra")
    assert f"pack 'extra' ({path}, line 8)" in message  # where the policy starts
    assert "cannot parse" in message
    assert "'=' is not a valid operator" in message


def test_missing_id(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    write_pack(
        packs,
        "extra",
        '// header\n\n@source("AMZ-LE-TERMS [A6]")\npermit (principal, action, resource);\n',
    )
    message = load_error(packs, "extra")
    assert "line 3" in message
    assert "no @id" in message


def test_duplicate_id_in_a_pack(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    write_pack(packs, "extra", GOOD + GOOD)
    message = load_error(packs, "extra")
    assert "duplicate @id('extra.permit-review')" in message
    assert "line 8" in message


def test_duplicate_id_across_packs(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    write_pack(packs, "extra", GOOD)
    write_pack(packs, "other", GOOD)
    message = load_error(packs, "extra", "other")
    assert "pack 'other'" in message
    assert "already used by pack 'extra'" in message


def test_duplicate_of_a_base_id(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    write_pack(packs, "extra", GOOD.replace("extra.permit-review", "base.permit-registered-use"))
    assert "already used by pack 'base'" in load_error(packs, "extra")


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ('@min_similarity("120")', "@min_similarity('120') must be between 0 and 100"),
        ('@human_review("two")', "@human_review('two') is not a whole number"),
        ('@redact("FaceId")', "cannot redact FaceId"),
        ('@min_similarty("99")', "unknown annotation @min_similarty"),
    ],
)
def test_bad_obligation_value(tmp_path: Path, annotation: str, message: str) -> None:
    packs = copy_base(tmp_path)
    write_pack(packs, "extra", GOOD.replace('@human_review("1")', annotation))
    got = load_error(packs, "extra")
    assert message in got
    assert "policy 'extra.permit-review'" in got


def test_obligation_on_a_forbid(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    text = GOOD.replace("permit (", "forbid (").replace(
        '@human_review("1")', '@reason("r")\n@human_review("1")'
    )
    write_pack(packs, "extra", text)
    assert "belong on permits, not forbids" in load_error(packs, "extra")


def test_forbid_without_reason(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    write_pack(
        packs, "extra", GOOD.replace("permit (", "forbid (").replace('@human_review("1")\n', "")
    )
    assert "a forbid needs @reason" in load_error(packs, "extra")


def test_missing_source(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    write_pack(packs, "extra", GOOD.replace('@source("AMZ-LE-TERMS [A6]")\n', ""))
    assert "no @source" in load_error(packs, "extra")


def test_schema_violation(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    path = write_pack(
        packs,
        "extra",
        GOOD.replace("principal.organisation.sector", "principal.organisation.colour"),
    )
    message = load_error(packs, "extra")
    assert f"({path}, line 2)" in message
    assert "policy 'extra.permit-review' does not validate against the schema" in message
    assert "colour" in message


def test_unknown_action_is_a_schema_violation(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    write_pack(packs, "extra", GOOD.replace('"face_comparison"', '"FaceSwap"'))
    assert "does not validate against the schema" in load_error(packs, "extra")


def test_templates_are_refused(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    write_pack(
        packs,
        "extra",
        '@id("t")\n@source("s")\npermit (principal == ?principal, action, resource);\n',
    )
    assert "templates" in load_error(packs, "extra")


def test_empty_pack_is_refused(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    write_pack(packs, "extra", "// nothing yet\n")
    assert "no policies" in load_error(packs, "extra")


def test_unknown_pack_lists_the_available_ones(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    write_pack(packs, "extra", GOOD)
    message = load_error(packs, "nope")
    assert "unknown policy pack 'nope'" in message
    assert "available: base, extra" in message


def test_missing_base_is_an_error(tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    write_pack(packs, "extra", GOOD)
    assert "unknown policy pack 'base'" in load_error(packs, "extra")


def test_broken_schema(tmp_path: Path) -> None:
    schema = tmp_path / "schema.cedarschema"
    schema.write_text("namespace Facegate { entity Key = { oops } }")
    with pytest.raises(PolicyLoadError, match=f"schema {schema}"):
        load_schema(schema)
    with pytest.raises(PolicyLoadError, match="cannot read"):
        load_schema(tmp_path / "missing.cedarschema")


def test_available_packs_are_the_shipped_eight() -> None:
    assert available_packs() == (
        "amazon-2020-police-moratorium",
        "aws-public-safety-terms",
        "base",
        "deployment-gate",
        "eu-ai-act-art5",
        "il-bipa",
        "microsoft-limited-access",
        "wa-rcw-43-386",
    )


def test_split_policies_respects_strings_and_comments() -> None:
    text = (
        "// header; with a semicolon\n"
        "\n"
        "// about p\n"
        '@id("p") permit (principal, action, resource) when { context.purpose == "a;b\\"c" };\n'
        "// trailing; comment\n"
        '@id("q")\nforbid (principal, action, resource);\n'
        "// end\n"
    )
    chunks = split_policies(text)
    assert [c.line for c in chunks] == [4, 6]
    assert chunks[0].text.startswith('// about p\n@id("p")')
    assert chunks[0].text.endswith('"a;b\\"c" };')
    assert chunks[1].text == '// trailing; comment\n@id("q")\nforbid (principal, action, resource);'


def test_caller_reason_only_on_forbids(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    write_pack(packs, "extra", GOOD.replace('@human_review("1")', '@caller_reason("told")'))
    assert "@caller_reason belongs on forbids" in load_error(packs, "extra")


def test_caller_reason_is_told_on_denial(tmp_path: Path) -> None:
    packs = copy_base(tmp_path)
    forbid = GOOD.replace("permit (", "forbid (").replace(
        '@human_review("1")', '@reason("r")\n@caller_reason("you are told")'
    )
    write_pack(packs, "extra", forbid)
    engine = PolicyEngine.load(["extra"], packs_dir=packs)
    denied = engine.decide(make_request(sector="law_enforcement", purpose="missing_persons"))
    assert not denied.allowed
    assert engine.caller_reasons(denied) == ("you are told",)
    allowed = engine.decide(make_request(sector="commercial"))
    assert allowed.allowed
    assert engine.caller_reasons(allowed) == ()
