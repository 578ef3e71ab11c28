"""Bias audits for the deployment gate through AdminService and the admin API: registration
checks the report and the active model's versions, revocation, status, and audit events."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from facegate.admin.service import AdminService
from facegate.audit.log import iter_entries
from facegate.errors import InvalidParameterException, ResourceNotFoundException
from facegate.model_audit import GateBounds
from facegate.services import Services
from tests.admin.conftest import Tokens, bearer
from tests.audit_reports import verification_report


def _bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode("utf-8")


def _events(services: Services, prefix: str) -> list[dict[str, Any]]:
    return [
        e.record
        for e in iter_entries(services.settings.audit_dir)
        if str(e.record.get("action", "")).startswith(prefix)
    ]


def test_register_status_revoke(admin: AdminService, services: Services) -> None:
    assert admin.active_model == services.active_model
    gate = admin.model_gate()
    assert gate.audit is None
    assert (gate.status.registered, gate.status.within_bounds) == (False, False)
    data = _bytes(verification_report())
    record = admin.register_model_audit(data, note="LFW, gender; bounds per policy 7")
    assert record.report_sha256 == hashlib.sha256(data).hexdigest()
    assert record.model_version == services.active_model[0]
    assert record.note == "LFW, gender; bounds per policy 7"
    gate = admin.model_gate()
    assert gate.audit == record
    assert (gate.status.registered, gate.status.within_bounds) == (True, True)
    assert services.gate_status() == gate.status  # the server's lookup sees it too
    assert [r.audit_id for r in admin.model_audit_list()] == [record.audit_id]
    revoked = admin.revoke_model_audit(record.audit_id)
    assert not revoked.active
    assert revoked.revoked_by == "server"
    assert not admin.model_gate().status.registered
    events = _events(services, "model_audit.")
    assert [e["action"] for e in events] == ["model_audit.register", "model_audit.revoke"]
    details = events[0]["details"]
    assert details["report_sha256"] == record.report_sha256
    assert details["within_bounds"] is True
    assert details["fmr_max_geomean"] == pytest.approx(2.236068)
    assert events[0]["subject"] == record.audit_id


def test_a_report_of_another_model_is_refused(admin: AdminService) -> None:
    model, similarity = admin.active_model
    other = _bytes(verification_report(model_version="arcface-r100"))
    with pytest.raises(InvalidParameterException) as info:
        admin.register_model_audit(other)
    message = info.value.message
    assert f"measured model arcface-r100 with similarity mapping {similarity}" in message
    assert f"the active engine is model {model} with similarity mapping {similarity}" in message
    with pytest.raises(InvalidParameterException, match="similarity mapping calib-v9"):
        admin.register_model_audit(_bytes(verification_report(similarity_version="calib-v9")))
    assert admin.model_audit_list() == []


def test_invalid_reports_and_ids(admin: AdminService) -> None:
    with pytest.raises(InvalidParameterException, match=r"Invalid audit report: .*'thresholds'"):
        admin.register_model_audit(_bytes({**verification_report(), "thresholds": []}))
    with pytest.raises(InvalidParameterException, match="not valid JSON"):
        admin.register_model_audit(b"{")
    with pytest.raises(InvalidParameterException, match="note"):
        admin.register_model_audit(_bytes(verification_report()), note="x\x00")
    with pytest.raises(ResourceNotFoundException, match="Model audit ma-nope does not exist"):
        admin.revoke_model_audit("ma-nope")


def test_tight_bounds_are_reported(admin: AdminService) -> None:
    tight = AdminService(
        registry=admin.registry,
        operators=admin.operators,
        reviews=admin.reviews,
        decisions=admin.decisions,
        clock=admin.clock,
        model_audits=admin.model_audits,
        active_model=admin.active_model,
        gate=GateBounds(max_fmr_ratio=2.0, max_fnmr=0.1),
    )
    tight.register_model_audit(_bytes(verification_report()))
    status = tight.model_gate().status
    assert (status.registered, status.within_bounds) == (True, False)
    assert len(status.reasons) == 2
    assert "FMR Max/GeoMean 2.23607 at Similarity 99 exceeds the bound 2" in status.reasons[0]


def test_the_api(client: TestClient, tokens: Tokens) -> None:
    auth = bearer(tokens.admin)
    status = client.get("/admin/model-audits/status", headers=auth)
    assert status.status_code == 200
    assert status.json()["registered"] is False
    assert status.json()["bounds"] == {
        "threshold_pct": 99.0,
        "max_fmr_ratio": 10.0,
        "max_fnmr": 0.5,
    }
    report = verification_report()
    created = client.post(
        "/admin/model-audits", json={"report": report, "note": "api"}, headers=auth
    )
    assert created.status_code == 201, created.text
    doc = created.json()
    canonical = json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert doc["report_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert doc["active"] is True
    assert doc["summary"]["thresholds"][1]["max_group_fnmr"] == pytest.approx(0.2)
    status = client.get("/admin/model-audits/status", headers=auth).json()
    assert (status["registered"], status["within_bounds"], status["reasons"]) == (True, True, [])
    assert status["audit"]["audit_id"] == doc["audit_id"]
    listed = client.get("/admin/model-audits", headers=auth).json()["model_audits"]
    assert [a["audit_id"] for a in listed] == [doc["audit_id"]]
    revoked = client.post(f"/admin/model-audits/{doc['audit_id']}/revoke", headers=auth)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_by"] == "root"
    assert client.get("/admin/model-audits/status", headers=auth).json()["registered"] is False


def test_the_api_refuses_bad_bodies_and_reviewers(client: TestClient, tokens: Tokens) -> None:
    auth = bearer(tokens.admin)
    bad = client.post("/admin/model-audits", json={"report": [1]}, headers=auth)
    assert bad.status_code == 400
    assert "Field 'report' must be the JSON object" in bad.json()["error"]
    other = client.post(
        "/admin/model-audits",
        json={"report": {**verification_report(), "dataset": ""}},
        headers=auth,
    )
    assert other.status_code == 400
    assert "'dataset' is missing" in other.json()["error"]
    unknown = client.post("/admin/model-audits", json={"report": {}, "x": 1}, headers=auth)
    assert unknown.status_code == 400
    denied = client.get("/admin/model-audits", headers=bearer(tokens.alice))
    assert denied.status_code == 403
    missing = client.post("/admin/model-audits/ma-nope/revoke", headers=auth)
    assert missing.status_code == 404


def test_an_audit_of_another_served_model_gates_its_collections(
    admin: AdminService, services: Services
) -> None:
    """A descriptor model this server serves collections with (issue 19) has audits of its
    own: registered for its versions, read by the gate of its collections only."""
    served = (("faceres-v1", "faceres-v1.cohort-x.fmr-y"),)
    twin = AdminService(
        registry=services.registry,
        operators=services.operators,
        reviews=services.reviews,
        decisions=services.decisions,
        clock=services.clock,
        model_audits=services.model_audits,
        active_model=services.active_model,
        served_models=served,
    )
    report = verification_report(
        model_version="faceres-v1", similarity_version="faceres-v1.cohort-x.fmr-y"
    )
    record = twin.register_model_audit(_bytes(report))
    assert (record.model_version, record.similarity_version) == served[0]
    assert services.model_audits.active(*served[0]) == record
    assert not services.gate_status().registered  # the default model's gate: no audit
    assert admin.model_gate().audit is None
