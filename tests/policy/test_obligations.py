"""Obligation annotations: parsing at load, strictest combination, operator text."""

from __future__ import annotations

import pytest

from facegate.policy.model import Obligations
from facegate.policy.obligations import REDACTABLE_FIELDS, combine, describe, parse_obligations


def test_parse_every_obligation() -> None:
    got = parse_obligations(
        {
            "id": "x",
            "min_similarity": "99.5",
            "max_candidates": "50",
            "human_review": "2",
            "redact": "ExternalImageId, UserId",
            "retention_days": "1095",
            "max_expected_false_candidates": "0.01",
        }
    )
    assert got == Obligations(99.5, 50, 2, frozenset({"ExternalImageId", "UserId"}), 1095, 0.01)


def test_no_obligation_annotations_is_empty() -> None:
    assert parse_obligations({"id": "x", "source": "y"}).empty


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("min_similarity", "101", "between 0 and 100"),
        ("min_similarity", "-1", "not a number"),
        ("min_similarity", "ninety", "not a number"),
        ("min_similarity", "nan", "not a number"),
        ("max_candidates", "0", "between 1 and 4096"),
        ("max_candidates", "5000", "between 1 and 4096"),
        ("max_candidates", "1_000", "not a whole number"),
        ("human_review", "0", "between 1 and 10"),
        ("human_review", "2.5", "not a whole number"),
        ("human_review", " 2", "not a whole number"),
        ("redact", "FaceId", "cannot redact FaceId"),
        ("redact", "UserId,,Pose", "empty field name"),
        ("retention_days", "", "not a whole number"),
        ("retention_days", "+30", "not a whole number"),
        ("max_expected_false_candidates", "0", "between 0.000001 and 1000"),
        ("max_expected_false_candidates", "5000", "between 0.000001 and 1000"),
        ("max_expected_false_candidates", "1e-3", "not a number"),
        ("max_expected_false_candidates", "-0.1", "not a number"),
        ("default_max_expected_false_candidates", "0", "between 0.000001 and 1000"),
        ("default_max_expected_false_candidates", "one", "not a number"),
    ],
)
def test_bad_values_are_rejected(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_obligations({name: value})
    assert f"@{name}" in str(info.value)


def test_combine_is_strictest() -> None:
    a = Obligations(
        min_similarity_pct=95,
        max_candidates=50,
        reviewers_required=1,
        redact_fields=frozenset({"UserId"}),
        retention_days=1095,
    )
    b = Obligations(
        min_similarity_pct=99,
        max_candidates=None,
        reviewers_required=2,
        redact_fields=frozenset({"Pose"}),
        retention_days=365,
    )
    c = Obligations(max_candidates=10, max_expected_false_candidates=0.5)
    d = Obligations(max_expected_false_candidates=0.01)
    assert combine([a, b, c, d]) == Obligations(
        min_similarity_pct=99,
        max_candidates=10,
        reviewers_required=2,
        redact_fields=frozenset({"UserId", "Pose"}),
        retention_days=365,
        max_expected_false_candidates=0.01,
    )
    assert combine([d, c, b, a]) == combine([a, b, c, d])  # order never matters


def test_default_bound_counts_only_where_no_permit_states_one() -> None:
    default = parse_obligations({"default_max_expected_false_candidates": "1"})
    assert default == Obligations(default_max_expected_false_candidates=1.0)
    other = Obligations(min_similarity_pct=95.0)
    # alone (or with permits that state no bound): the default is the bound, folded in
    assert combine([default, other]) == Obligations(
        min_similarity_pct=95.0, max_expected_false_candidates=1.0
    )
    # a permit that states a bound replaces it, stricter or looser
    stricter = Obligations(max_expected_false_candidates=0.01)
    looser = Obligations(max_expected_false_candidates=10.0)
    assert combine([default, stricter]).max_expected_false_candidates == 0.01
    assert combine([looser, default]).max_expected_false_candidates == 10.0
    # stated bounds still combine to the strictest; the combined default is always folded
    both = combine([default, looser, stricter])
    assert both == Obligations(max_expected_false_candidates=0.01)
    assert combine([default, Obligations(default_max_expected_false_candidates=0.5)]) == (
        Obligations(max_expected_false_candidates=0.5)
    )


def test_combine_nothing_or_empty_is_empty() -> None:
    assert combine([]) == Obligations()
    assert combine([Obligations(), Obligations()]) == Obligations()
    assert combine([Obligations(), Obligations(retention_days=30)]).retention_days == 30


def test_describe() -> None:
    assert describe(Obligations()) == "none"
    text = describe(Obligations(99, 5, 2, frozenset({"UserId", "ImageId"}), 30, 0.01))
    assert text == (
        "min similarity 99%, max 5 candidates, human review by 2 reviewers, "
        "redact ImageId,UserId, retain at most 30 days, at most 0.01 expected false candidates"
    )


def test_redactable_fields_keep_what_a_caller_needs() -> None:
    assert {"FaceId", "BoundingBox", "Similarity"}.isdisjoint(REDACTABLE_FIELDS)


def test_drop_attributes() -> None:
    parsed = parse_obligations({"drop_attributes": "EMOTIONS, GENDER"})
    assert parsed.drop_attributes == {"EMOTIONS", "GENDER"}
    assert "drop attributes EMOTIONS,GENDER" in describe(parsed)
    assert parsed.to_json()["drop_attributes"] == ["EMOTIONS", "GENDER"]
    with pytest.raises(ValueError, match="unknown attribute RACE"):
        parse_obligations({"drop_attributes": "EMOTIONS,RACE"})
    with pytest.raises(ValueError, match="empty attribute"):
        parse_obligations({"drop_attributes": "EMOTIONS,"})
    both = combine(
        [
            Obligations(drop_attributes=frozenset({"EMOTIONS"})),
            Obligations(drop_attributes=frozenset({"GENDER", "SMILE"})),
        ]
    )
    assert both.drop_attributes == {"EMOTIONS", "GENDER", "SMILE"}
