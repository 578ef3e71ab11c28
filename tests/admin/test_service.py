"""The admin service: organisations, keys, operators, policies, decisions and review rules."""

from __future__ import annotations

import time
from typing import Any

import pytest

from facegate.admin.auth import authenticate
from facegate.admin.service import AdminService, held_candidates
from facegate.errors import (
    AccessDeniedException,
    ConflictException,
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from facegate.services import Services
from facegate.store.operators import OperatorRecord
from tests.admin.conftest import MakeReview, Tokens


def _org(admin: AdminService, org_id: str = "acme", **fields: Any) -> None:
    args: dict[str, Any] = {
        "name": "Acme Access",
        "sector": "commercial",
        "use_cases": ("access_control",),
        "country": "DE",
    }
    args.update(fields)
    admin.create_org(org_id, **args)


def _op(services: Services, token: str) -> OperatorRecord:
    return authenticate(services.operators, token)


def test_organisation_lifecycle(admin: AdminService) -> None:
    _org(admin, use_cases=("access_control", "identity_verification"))
    org = admin.org("acme")
    assert org.use_cases == ("access_control", "identity_verification")
    assert org.active
    assert [o.org_id for o in admin.orgs()] == ["acme"]
    with pytest.raises(ResourceAlreadyExistsException, match="acme already exists"):
        _org(admin)
    updated = admin.set_use_cases("acme", ("access_control",))
    assert updated.use_cases == ("access_control",)
    disabled = admin.disable_org("acme")
    assert not disabled.active
    assert admin.disable_org("acme").disabled_at == disabled.disabled_at  # idempotent


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sector": "pirates"}, "Unknown sector 'pirates'"),
        ({"use_cases": ("stalking",)}, "Unknown use case(s) stalking"),
        ({"country": "Germany"}, "Invalid country"),
        ({"region": "US-WA"}, "Region US-WA is not in country DE"),
        ({"name": " "}, "organisation name"),
    ],
)
def test_organisation_validation(admin: AdminService, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(
        InvalidParameterException, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        _org(admin, **fields)


def test_unknown_organisation(admin: AdminService) -> None:
    for call in (admin.org, admin.disable_org, admin.keys):
        with pytest.raises(ResourceNotFoundException, match="Organisation nope does not exist"):
            call("nope")
    with pytest.raises(ResourceNotFoundException):
        admin.set_use_cases("nope", ("research",))


def test_keys(services: Services, admin: AdminService) -> None:
    _org(admin, use_cases=("access_control", "identity_verification"))
    _org(admin, "other", use_cases=("research",))
    with pytest.raises(InvalidParameterException, match="choose one use case"):
        admin.create_key("acme")
    key = admin.create_key("acme", "access_control", "door 1", expires_in_days=30)
    assert key.secret_access_key
    assert key.use_case == "access_control"
    assert key.expires_at is not None
    assert 29.9 * 86400 < key.expires_at - time.time() <= 30 * 86400
    other = admin.create_key("other")  # the organisation's only use case
    assert other.use_case == "research"
    assert [k.access_key_id for k in admin.keys("acme")] == [key.access_key_id]
    assert len(admin.keys()) == 2
    with pytest.raises(InvalidParameterException, match="has not registered use case"):
        admin.create_key("acme", "research")
    with pytest.raises(InvalidParameterException, match="1-3650 days"):
        admin.create_key("acme", "access_control", expires_in_days=0)
    revoked = admin.revoke_key(key.access_key_id)
    assert revoked.revoked_at is not None
    assert services.keys.secret_for(key.access_key_id) is None
    with pytest.raises(ResourceNotFoundException, match="Access key FGAKNOPE"):
        admin.revoke_key("FGAKNOPE")
    admin.disable_org("other")
    with pytest.raises(InvalidParameterException, match="other is disabled"):
        admin.create_key("other")
    assert services.registry.principal(other.access_key_id) is None  # its key stopped working


def test_operators(admin: AdminService) -> None:
    record, token = admin.create_operator("dana", "Dana", "admin")
    assert record.role == "admin"
    assert token.startswith("fgop_")
    with pytest.raises(ResourceAlreadyExistsException):
        admin.create_operator("dana", "Dana again", "reviewer")
    with pytest.raises(InvalidParameterException, match="Unknown role 'root'"):
        admin.create_operator("eve", "Eve", "root")
    with pytest.raises(InvalidParameterException, match="Invalid operator id 'Eve!'"):
        admin.create_operator("Eve!", "Eve", "reviewer")
    with pytest.raises(InvalidParameterException, match="operator name"):
        admin.create_operator("eve", "\x00", "reviewer")
    assert not admin.disable_operator("dana").active
    with pytest.raises(ResourceNotFoundException):
        admin.disable_operator("nobody")
    assert [o.operator_id for o in admin.operator_list()] == ["dana"]


def test_policies_and_explain(admin: AdminService) -> None:
    packs, policies = admin.policies()
    assert packs == ("base", "aws-public-safety-terms", "eu-ai-act-art5")
    assert "eu-ai-act-art5.permit-identification-two-person-verification" in {
        p.policy_id for p in policies
    }
    _org(admin)
    explained = admin.explain(
        {"org_id": "acme", "action": "SearchFacesByImage", "collection": "staff"}
    )
    assert explained.decision.allowed
    assert explained.decision.obligations.reviewers_required == 2
    assert explained.request.resource is not None
    assert explained.request.resource.organisation_id == "acme"  # unknown collection: own
    police = admin.explain(
        {
            "organisation": {
                "sector": "law_enforcement",
                "country": "US",
                "use_cases": ["investigation"],
            },
            "action": "SearchFacesByImage",
            "collection": {"collection_id": "suspects", "face_count": 5000},
            "context": {"realtime": True, "now": "2026-01-01T00:00:00Z"},
        }
    )
    assert not police.decision.allowed
    assert police.decision.policy_ids == (
        "aws-public-safety-terms.forbid-sustained-surveillance-without-review",
    )
    assert "sustained surveillance" in police.decision.determining[0].reason
    unknown = admin.explain({"org_id": "acme", "action": "StealFaces"})
    assert not unknown.decision.allowed
    assert any("unknown action" in e for e in unknown.decision.errors)


def test_explain_facial_attributes(admin: AdminService) -> None:
    """The simulator takes the setting and the attributes (EU employer: Art. 5(1)(f))."""
    body: dict[str, Any] = {
        "organisation": {"sector": "commercial", "country": "DE", "use_cases": ["access_control"]},
        "action": "DetectFaces",
        "context": {"now": "2026-03-01T00:00:00Z", "setting": "workplace"},
    }
    body["context"]["attributes"] = ["EMOTIONS", "SMILE"]
    dropped = admin.explain(body)
    assert dropped.decision.allowed
    assert dropped.decision.obligations.drop_attributes == {"EMOTIONS"}
    body["context"]["attributes_named"] = ["EMOTIONS"]
    refused = admin.explain(body)
    assert refused.decision.policy_ids == (
        "eu-ai-act-art5.forbid-emotion-inference-workplace-education",
    )
    body["context"]["attributes"] = ["RACE"]
    body["context"]["attributes_named"] = []
    assert any("unknown facial attributes" in e for e in admin.explain(body).decision.errors)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"action": "DetectFaces"}, "Field 'org_id' or 'organisation' is required"),
        ({"org_id": "acme", "organisation": {}, "action": "X"}, "exactly one"),
        ({"org_id": "acme"}, "Field 'action' is required"),
        ({"org_id": "acme", "action": "SearchFaces"}, "Field 'collection' is required"),
        ({"org_id": "acme", "action": "X", "context": {"realtime": "yes"}}, "context.realtime"),
        ({"org_id": "acme", "action": "X", "context": {"now": "today"}}, "context.now"),
        ({"org_id": "acme", "action": "X", "context": {"now": "2026-01-01T00:00"}}, "timezone"),
        ({"org_id": "acme", "action": "X", "colection": "c"}, "Field 'colection' is not known"),
        ({"org_id": "acme", "action": "X", "collection": {"face_count": 1}}, "collection_id"),
        ({"organisation": {"sector": "ngo"}, "action": "X"}, "organisation.use_cases"),
    ],
)
def test_explain_errors_name_the_field(
    admin: AdminService, body: dict[str, Any], message: str
) -> None:
    _org(admin)
    with pytest.raises(InvalidParameterException, match=message):
        admin.explain(body)


def test_explain_unknown_org(admin: AdminService) -> None:
    with pytest.raises(ResourceNotFoundException):
        admin.explain({"org_id": "ghost", "action": "DetectFaces"})


def test_decisions(admin: AdminService, make_review: MakeReview) -> None:
    review = make_review()
    found = admin.recent_decisions(10)
    assert [d.decision_id for d in found] == [review.decision_id]
    assert admin.decision(review.decision_id).review_id == review.review_id
    assert admin.recent_decisions(10, "someone-else") == []
    with pytest.raises(ResourceNotFoundException, match="Decision dec-nope"):
        admin.decision("dec-nope")


def test_two_distinct_reviewers_release(
    services: Services, admin: AdminService, tokens: Tokens, make_review: MakeReview
) -> None:
    review = make_review(reviewers=2)
    detail = admin.review(review.review_id)
    assert detail.status == "pending"
    assert detail.candidates[0].external_image_id == "obama.jpg"
    assert detail.candidates[0].similarity_pct == 99.6
    assert detail.decision is not None
    assert detail.decision.resource == "staff"
    alice, bob = _op(services, tokens.alice), _op(services, tokens.bob)
    after_one = admin.vote(review.review_id, alice, "confirm", "matches case photo 12")
    assert after_one.status == "pending"  # one of two is not enough
    with pytest.raises(ConflictException, match="alice has already reviewed"):
        admin.vote(review.review_id, alice, "confirm", "again")
    released = admin.vote(review.review_id, bob, "confirm", "agree")
    assert released.status == "released"
    assert [(v.operator_id, v.note) for v in released.review.votes] == [
        ("alice", "matches case photo 12"),
        ("bob", "agree"),
    ]
    with pytest.raises(ConflictException, match="is released"):
        admin.vote(review.review_id, _op(services, tokens.admin), "reject", "too late")
    assert [r.review_id for r in admin.review_list("released")] == [review.review_id]
    assert admin.review_list("pending") == []


def test_rejection_discards_the_candidates(
    services: Services, admin: AdminService, tokens: Tokens, make_review: MakeReview
) -> None:
    review = make_review(reviewers=2)
    rejected = admin.vote(review.review_id, _op(services, tokens.admin), "reject", "wrong person")
    assert rejected.status == "rejected"
    assert rejected.candidates == ()
    assert rejected.review.held_response == ""


def test_vote_rules(
    services: Services, admin: AdminService, tokens: Tokens, make_review: MakeReview
) -> None:
    review = make_review()
    alice = _op(services, tokens.alice)
    with pytest.raises(InvalidParameterException, match="review note"):
        admin.vote(review.review_id, alice, "confirm", "   ")
    with pytest.raises(InvalidParameterException, match="verdict"):
        admin.vote(review.review_id, alice, "maybe", "hmm")
    with pytest.raises(ResourceNotFoundException, match="Review rev-nope"):
        admin.vote("rev-nope", alice, "confirm", "ok")
    admin.disable_operator("alice")  # disabled after authenticating: the vote is refused
    with pytest.raises(AccessDeniedException, match="alice is disabled"):
        admin.vote(review.review_id, alice, "confirm", "ok")
    auditor = OperatorRecord("auditor", "Auditor", "auditor", 0.0)
    services.operators.insert(auditor, "f" * 64)
    with pytest.raises(AccessDeniedException, match="role 'auditor'"):
        admin.vote(review.review_id, auditor, "confirm", "ok")
    assert admin.review(review.review_id).review.votes == ()


def test_expired_review(
    services: Services, admin: AdminService, tokens: Tokens, make_review: MakeReview
) -> None:
    review = make_review(ttl_s=-1.0)
    assert admin.review(review.review_id).status == "expired"
    assert admin.review(review.review_id).candidates == ()
    assert [r.review_id for r in admin.review_list("expired")] == [review.review_id]
    with pytest.raises(ConflictException, match="is expired"):
        admin.vote(review.review_id, _op(services, tokens.bob), "confirm", "late")
    with pytest.raises(InvalidParameterException, match="Unknown review status 'done'"):
        admin.review_list("done")


def test_held_candidates_of_every_kind() -> None:
    held = (
        '{"UserMatches": [{"Similarity": 99.1, "User": {"UserId": "u1", "UserStatus": "ACTIVE"}}],'
        ' "UnmatchedFaces": [{"BoundingBox": {}}], "FaceMatches": []}'
    )
    kinds = [(c.kind, c.user_id) for c in held_candidates(held)]
    assert kinds == [("user", "u1"), ("unmatched", None)]
    assert held_candidates("") == ()


def test_the_local_organisation_is_created_once_and_recorded(
    admin: AdminService, services: Services
) -> None:
    from facegate.audit.log import iter_entries

    assert admin.ensure_local_org().org_id == "local"
    assert admin.ensure_local_org().sector == "research"
    created = [
        e.record
        for e in iter_entries(services.settings.audit_dir)
        if e.record.get("action") == "org.create" and e.record.get("subject") == "local"
    ]
    assert len(created) == 1
    assert created[0]["details"]["use_cases"] == ["research"]


def test_text_with_unpaired_surrogates_is_refused(admin: AdminService) -> None:
    """A command line's undecodable bytes arrive as surrogates (surrogateescape), as does a JSON
    escape: refused as not printable, never stored (SQLite cannot encode them)."""
    with pytest.raises(InvalidParameterException, match="printable"):
        admin.create_org("acme", name="Acme \udcff", sector="commercial",
                         use_cases=("access_control",))  # fmt: skip
    with pytest.raises(InvalidParameterException, match="printable"):
        admin.create_operator("eve", "Eve \ud800", "reviewer")
    admin.create_org("acme", name="Acme", sector="commercial", use_cases=("access_control",))
    with pytest.raises(InvalidParameterException, match="printable"):
        admin.create_key("acme", description="key \udfff")
