"""The deployment gate end to end: with the deployment-gate pack active, a 1:N search is denied
until a bias audit of the active model is registered (``facegate model-audit register``, in
another process) and within bounds; detection and 1:1 comparison are never gated; a revoked or
out-of-bounds audit denies again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from facegate.store.db import Database
from facegate.store.decisions import DecisionRepository
from tests.audit_reports import verification_report
from tests.e2e.server import LiveServer, audit_record

pytestmark = pytest.mark.slow  # live servers gated by bias audit reports

GATE = "deployment-gate.forbid-search-without-audit"
COLLECTION = "gate-gallery"


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory, samples: Path) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("deployment-gate")
    live = LiveServer(
        root / "data",
        workers=1,
        env={"FACEGATE_POLICY_PACKS": "amazon-2020-police-moratorium,deployment-gate"},
    )
    live.start()
    client = live.client()
    client.create_collection(CollectionId=COLLECTION)
    client.index_faces(
        CollectionId=COLLECTION,
        Image={"Bytes": (samples / "obama.jpg").read_bytes()},
        ExternalImageId="obama.jpg",
    )
    yield live
    live.stop()


def _search(server: LiveServer, samples: Path) -> dict[str, Any]:
    reply: dict[str, Any] = server.client().search_faces_by_image(
        CollectionId=COLLECTION,
        Image={"Bytes": (samples / "obama2.jpg").read_bytes()},
        FaceMatchThreshold=80,
    )
    return reply


def _denied_by_the_gate(server: LiveServer, samples: Path) -> None:
    with pytest.raises(ClientError) as info:
        _search(server, samples)
    error = info.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"].startswith("Access denied by policy (decision dec-")
    # the gate's @caller_reason tells the caller why (other denials give only the decision id)
    assert error["Message"].endswith(
        "1:N search is disabled until a bias audit of the active face model, within the"
        " operator's bounds, is registered."
    )
    decision_id = info.value.response["ResponseMetadata"]["HTTPHeaders"]["x-facegate-decision-id"]
    db = Database(server.data_dir / "facegate.sqlite3")
    try:
        decision = DecisionRepository(db).get(decision_id)
    finally:
        db.close()
    assert decision is not None
    assert not decision.allowed
    assert decision.policy_ids == (GATE,)
    assert decision.reasons[0].startswith("1:N search needs a registered bias audit")
    record = audit_record(server, decision_id)
    assert record["decision"] == "deny"
    assert record["policy_ids"] == [GATE]
    assert record["error_code"] == "AccessDeniedException"


def _register(server: LiveServer, tmp_path: Path, **report: Any) -> str:
    path = tmp_path / "verification.json"
    path.write_text(json.dumps(verification_report(**report)))
    out = server.facegate("model-audit", "register", str(path), "--note", "e2e")
    first = out.splitlines()[0]
    assert first.startswith("registered ma-"), out
    return first.split()[1]


def test_the_gate_denies_without_an_audit_and_allows_with_one(
    gated: LiveServer, samples: Path, tmp_path: Path
) -> None:
    _denied_by_the_gate(gated, samples)
    # detection and 1:1 comparison are not gated
    client = gated.client()
    detected = client.detect_faces(Image={"Bytes": (samples / "obama.jpg").read_bytes()})
    assert len(detected["FaceDetails"]) == 1
    compared = client.compare_faces(
        SourceImage={"Bytes": (samples / "obama.jpg").read_bytes()},
        TargetImage={"Bytes": (samples / "obama2.jpg").read_bytes()},
    )
    assert len(compared["FaceMatches"]) == 1
    # a registration by the CLI (another process) applies from the next request
    audit_id = _register(gated, tmp_path)
    status = gated.facegate("model-audit", "status")
    assert "gate:        within bounds" in status
    assert audit_id in status
    found = _search(gated, samples)
    assert [m["Face"]["ExternalImageId"] for m in found["FaceMatches"]] == ["obama.jpg"]
    # revoked: denied again
    assert f"revoked model audit {audit_id}" in gated.facegate("model-audit", "revoke", audit_id)
    _denied_by_the_gate(gated, samples)
    listed = gated.facegate("model-audit", "list")
    assert f"{audit_id:<20} revoked" in listed


def test_an_audit_out_of_bounds_is_denied(gated: LiveServer, samples: Path, tmp_path: Path) -> None:
    # group "b" misses 160 of 200 mated pairs at Similarity 99: FNMR 0.8 > the bound 0.5
    audit_id = _register(gated, tmp_path, false_non_matches=(20, 160))
    status = gated.facegate("model-audit", "status")
    assert "gate:        NOT within bounds" in status
    assert "the highest group FNMR 0.8 (b) at Similarity 99 exceeds the bound 0.5" in status
    _denied_by_the_gate(gated, samples)
    gated.facegate("model-audit", "revoke", audit_id)


def test_tight_bounds_deny_an_audit_the_defaults_accept(
    gated: LiveServer, samples: Path, tmp_path: Path
) -> None:
    audit_id = _register(gated, tmp_path)
    _search(gated, samples)  # within the default bounds
    tight = {"FACEGATE_GATE_MAX_FMR_RATIO": "2"}  # the report's FMR Max/GeoMean is about 2.24
    status = gated.facegate("model-audit", "status", env=tight)
    assert "FMR Max/GeoMean 2.23607 at Similarity 99 exceeds the bound 2" in status
    defaults = gated.env
    gated.stop()
    gated.env = {**defaults, **tight}
    gated.start()
    try:
        _denied_by_the_gate(gated, samples)
    finally:
        gated.facegate("model-audit", "revoke", audit_id)
        gated.stop()  # the other tests expect the default bounds
        gated.env = defaults
        gated.start()


def test_a_report_of_another_model_is_refused(gated: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps(verification_report(model_version="arcface-r100")))
    with pytest.raises(RuntimeError, match="measured model arcface-r100") as info:
        gated.facegate("model-audit", "register", str(path))
    assert "exit 3" in str(info.value)
