"""The policy package's actions and groups are those of the table of operations, and the Cedar
schema (whose actions are generated from it) agrees."""

from __future__ import annotations

import cedarpy
import pytest

from facegate.ops.registry import OPERATIONS
from facegate.policy.actions import ACTION_GROUPS, GROUPS, SERVICE_ACTIONS
from facegate.policy.entities import to_cedar
from facegate.policy.loader import load_schema

from .factory import make_request


def test_actions_match_the_registry() -> None:
    assert set(ACTION_GROUPS) == set(OPERATIONS)
    assert len(ACTION_GROUPS) == 21
    for name, op in OPERATIONS.items():
        assert op.spec.groups == ACTION_GROUPS[name], name
        # an operation that names no collection either is on the Service or takes an ARN
        if op.spec.collection_param is None:
            assert name in SERVICE_ACTIONS or name.endswith(("Resource", "ForResource")), name
        else:
            assert name not in SERVICE_ACTIONS, name


def test_face_comparison_is_identification_and_verification() -> None:
    identification = {a for a, g in ACTION_GROUPS.items() if "identification" in g}
    verification = {a for a, g in ACTION_GROUPS.items() if "verification" in g}
    comparison = {a for a, g in ACTION_GROUPS.items() if "face_comparison" in g}
    assert comparison == identification | verification
    assert not identification & verification
    assert verification == {"CompareFaces"}
    assert identification == {
        "SearchFaces",
        "SearchFacesByImage",
        "SearchUsers",
        "SearchUsersByImage",
        "AssociateFaces",
    }


@pytest.mark.parametrize("action", sorted(ACTION_GROUPS))
def test_schema_declares_the_action_and_its_groups(action: str) -> None:
    """Every action is in the schema, with the resource type entities.py gives it, and is in
    exactly the groups actions.py says (checked by asking Cedar)."""
    schema = load_schema()
    policies = "\n".join(
        f'@id("{g}") permit(principal, action in Facegate::Action::"{g}", resource);'
        for g in GROUPS
    )
    assert cedarpy.validate_policies(policies, schema).validation_passed
    query = to_cedar(make_request(action=action))
    result = cedarpy.is_authorized(query.request, policies, query.entities, schema=schema)
    assert result.diagnostics.errors == []
    satisfied = set(result.diagnostics.id_annotations_by_reason.values())
    assert satisfied == ACTION_GROUPS[action]
