"""Fixtures for the admin tests: a service graph over a temporary data directory (the engine is
never started), operators with tokens, and held reviews made without running a search."""

from __future__ import annotations

import json
import secrets
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from facegate.admin.service import AdminService, over_services
from facegate.app import create_app
from facegate.config import Settings
from facegate.services import Services
from facegate.store.decisions import DecisionRecord
from facegate.store.reviews import PENDING, ReviewRecord

with warnings.catch_warnings():
    # Starlette 1.x warns at import that its test client prefers httpx2; httpx is what we have.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

PACKS = ("aws-public-safety-terms", "eu-ai-act-art5")

HELD = {
    "SearchedFaceBoundingBox": {"Width": 0.3, "Height": 0.4, "Left": 0.1, "Top": 0.2},
    "SearchedFaceConfidence": 99.9,
    "FaceMatches": [
        {
            "Similarity": 99.6,
            "Face": {
                "FaceId": "11111111-1111-1111-1111-111111111111",
                "ImageId": "22222222-2222-2222-2222-222222222222",
                "ExternalImageId": "obama.jpg",
                "Confidence": 99.9,
            },
        }
    ],
    "FaceModelVersion": "dlib-resnet-v1",
}


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path / "data", policy_packs=PACKS, engine_workers=1)
    graph = Services.open(settings, start_engine=False)
    yield graph
    graph.close()


@pytest.fixture
def admin(services: Services) -> AdminService:
    return over_services(services)


@dataclass(frozen=True)
class Tokens:
    admin: str
    alice: str
    bob: str


@pytest.fixture
def tokens(admin: AdminService) -> Tokens:
    """Three operators: root (admin), alice and bob (reviewers)."""
    return Tokens(
        admin=admin.create_operator("root", "Root Admin", "admin")[1],
        alice=admin.create_operator("alice", "Alice Reviewer", "reviewer")[1],
        bob=admin.create_operator("bob", "Bob Reviewer", "reviewer")[1],
    )


MakeReview = Callable[..., ReviewRecord]


@pytest.fixture
def make_review(services: Services) -> MakeReview:
    """Store a decision and a pending review holding :data:`HELD` (as the pipeline's _hold)."""

    def make(reviewers: int = 2, org_id: str = "acme", ttl_s: float = 3600.0) -> ReviewRecord:
        now = time.time()
        decision_id = "dec-" + secrets.token_hex(10)
        services.decisions.insert(
            DecisionRecord(
                decision_id=decision_id,
                at=now,
                access_key_id="FGAKTEST",
                org_id=org_id,
                operation="SearchFacesByImage",
                resource="staff",
                purpose="access_control",
                allowed=True,
                policy_ids=("base.permit-registered-use",),
                reasons=(),
                errors=(),
                obligations={"reviewers_required": reviewers},
            )
        )
        review = ReviewRecord(
            review_id="rev-" + secrets.token_hex(10),
            decision_id=decision_id,
            operation="SearchFacesByImage",
            access_key_id="FGAKTEST",
            org_id=org_id,
            params_sha256="0" * 64,
            reviewers_required=reviewers,
            status=PENDING,
            held_response=json.dumps(HELD),
            candidates=1,
            created_at=now,
            expires_at=now + ttl_s,
        )
        services.reviews.insert(review)
        services.decisions.set_review(decision_id, review.review_id)
        return review

    return make


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
