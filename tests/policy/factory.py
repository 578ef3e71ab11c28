"""Building PolicyRequests and throwaway pack directories for the policy tests."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from facegate.policy.loader import PACKS_DIR
from facegate.policy.model import (
    CollectionRef,
    Organisation,
    PolicyRequest,
    Principal,
    RequestContext,
)

AFTER_MORATORIUM = datetime(2023, 5, 1, 12, 0, tzinfo=UTC)
SERVICE_ACTIONS = ("DetectFaces", "CompareFaces", "ListCollections")


def make_request(
    *,
    sector: str = "commercial",
    country: str = "US",
    region: str = "US-NY",
    purpose: str = "access_control",
    use_case: str | None = None,
    use_cases: frozenset[str] | None = None,
    action: str = "SearchFacesByImage",
    collection_org: str | None = None,
    now: datetime = AFTER_MORATORIUM,
    realtime: bool = False,
    exigent: bool = False,
    camera: str = "",
    authorization_ref: str = "",
    consent_ref: str = "",
    org_id: str = "org-1",
) -> PolicyRequest:
    """A request whose key is registered for ``use_case`` (default: ``purpose``)."""
    use_case = use_case or purpose
    organisation = Organisation(
        org_id=org_id,
        name="Test Organisation",
        sector=sector,
        country=country,
        region=region,
        city="",
        use_cases=use_cases if use_cases is not None else frozenset({use_case}),
    )
    resource = None
    if action not in SERVICE_ACTIONS:
        resource = CollectionRef("gallery", collection_org or org_id, face_count=10)
    return PolicyRequest(
        principal=Principal("AKTEST", use_case, organisation),
        action=action,
        resource=resource,
        context=RequestContext(
            now=now,
            purpose=purpose,
            authorization_ref=authorization_ref,
            realtime=realtime,
            exigent=exigent,
            camera=camera,
            consent_ref=consent_ref,
        ),
    )


def copy_base(tmp_path: Path) -> Path:
    """A packs directory holding a copy of the real ``base`` pack (policies only)."""
    packs = tmp_path / "packs"
    (packs / "base").mkdir(parents=True)
    shutil.copy(PACKS_DIR / "base" / "policies.cedar", packs / "base" / "policies.cedar")
    return packs


def write_pack(packs: Path, name: str, text: str) -> Path:
    """Create ``packs/<name>/policies.cedar`` with ``text``; returns the file."""
    path = packs / name / "policies.cedar"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
