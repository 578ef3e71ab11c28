"""The audit trail end to end: every request leaves exactly one record with the right fields
(allowed, denied, failed, refused before a decision), events are recorded, nothing biometric is
written, and the chain verifies while the server runs."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from botocore.exceptions import ClientError

from facegate.audit.log import iter_entries
from facegate.cli import main
from facegate.engine.core import EngineConfig, FaceEngine
from tests.e2e.governance import register
from tests.e2e.server import Credentials, LiveServer


def _records(server: LiveServer, key: str) -> list[dict[str, Any]]:
    return [
        e.record
        for e in iter_entries(server.data_dir / "audit")
        if e.record.get("access_key_id") == key
    ]


def _wait_for(server: LiveServer, key: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    records = _records(server, key)
    while len(records) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        records = _records(server, key)
    return records


@pytest.fixture(scope="module")
def police(server: LiveServer) -> dict[str, Credentials]:
    return register(
        server, "audit-police", "law_enforcement", ["investigation", "missing_persons"],
        country="US",
    )  # fmt: skip


def test_each_request_leaves_one_record(
    server: LiveServer, police: dict[str, Credentials], samples: Path
) -> None:
    image = (samples / "obama.jpg").read_bytes()
    probe = (samples / "obama3.jpg").read_bytes()
    mp = server.client(police["missing_persons"])
    mp.create_collection(CollectionId="audit-mp")
    indexed = mp.index_faces(CollectionId="audit-mp", Image={"Bytes": image}, ExternalImageId="o")
    found = mp.search_faces_by_image(CollectionId="audit-mp", Image={"Bytes": probe})
    with pytest.raises(ClientError):
        mp.describe_collection(CollectionId="audit-missing")  # allowed, then fails
    records = _wait_for(server, police["missing_persons"].access_key_id, 4)
    assert [r["operation"] for r in records] == [
        "CreateCollection",
        "IndexFaces",
        "SearchFacesByImage",
        "DescribeCollection",
    ]
    create, index, search, missing = records
    assert create["decision"] == "allow"
    assert create["org_id"] == "audit-police"
    assert create["sector"] == "law_enforcement"
    assert create["purpose"] == "missing_persons"
    assert create["collection_id"] == "audit-mp"
    assert index["input_sha256"] == [hashlib.sha256(image).hexdigest()]
    assert index["result"]["faces_indexed"] == 1
    assert index["result"]["face_ids"] == [indexed["FaceRecords"][0]["Face"]["FaceId"]]
    assert search["result"]["candidates"] == len(found["FaceMatches"]) == 1
    assert search["result"]["top_similarity_pct"] == pytest.approx(
        found["FaceMatches"][0]["Similarity"], abs=1e-3
    )
    assert (
        search["decision_id"] == found["ResponseMetadata"]["HTTPHeaders"]["x-facegate-decision-id"]
    )
    assert missing["decision"] == "error"
    assert missing["error_code"] == "ResourceNotFoundException"
    assert all(r["latency_ms"] > 0 for r in records)
    # the two that changed the store announced it first (facegate.intent), with their ids
    key = police["missing_persons"].access_key_id
    intents = [
        e.record["request"]
        for e in iter_entries(server.data_dir / "audit")
        if e.record["kind"] == "intent" and e.record["request"]["access_key_id"] == key
    ]
    assert [(i["operation"], i["request_id"]) for i in intents] == [
        ("CreateCollection", create["request_id"]),
        ("IndexFaces", index["request_id"]),
    ]
    assert intents[1]["input_sha256"] == index["input_sha256"]


def test_denials_and_refusals_are_recorded(
    server: LiveServer, police: dict[str, Credentials], samples: Path
) -> None:
    investigation = server.client(police["investigation"])
    with pytest.raises(ClientError):
        investigation.compare_faces(
            SourceImage={"Bytes": (samples / "obama.jpg").read_bytes()},
            TargetImage={"Bytes": (samples / "obama2.jpg").read_bytes()},
        )
    forged = server.client(Credentials(police["investigation"].access_key_id, "wrong-secret"))
    with pytest.raises(ClientError):
        forged.list_collections()
    records = _wait_for(server, police["investigation"].access_key_id, 1)
    (denied,) = records
    assert denied["decision"] == "deny"
    assert denied["policy_ids"] == ["amazon-2020-police-moratorium.forbid-police-face-comparison"]
    assert denied["error_code"] == "AccessDeniedException"
    assert len(denied["input_sha256"]) == 2
    # A refusal at authentication is counted, not recorded on its own: it appears in the next
    # aggregate `refusals` record (per address, key and reason; tests/e2e/test_refusals.py).
    metrics = httpx.get(f"{server.endpoint}/metrics").text
    assert 'facegate_auth_refusals_total{reason="InvalidSignatureException"}' in metrics


def test_registry_changes_and_start_up_are_recorded(server: LiveServer) -> None:
    kinds = {
        (e.record.get("kind"), e.record.get("action"))
        for e in iter_entries(server.data_dir / "audit")
    }
    assert ("startup", "server.start") in kinds
    with server.environment():
        code = main(
            ["org", "create", "audit-ngo", "--name", "Audit NGO", "--sector", "ngo",
             "--use-case", "missing_persons", "--data-dir", str(server.data_dir)]
        )  # fmt: skip
    assert code == 0
    deadline = time.monotonic() + 10
    events: list[dict[str, Any]] = []
    while not events and time.monotonic() < deadline:
        time.sleep(0.2)
        events = [
            e.record
            for e in iter_entries(server.data_dir / "audit")
            if e.record.get("action") == "org.create" and e.record.get("subject") == "audit-ngo"
        ]
    assert len(events) == 1
    assert events[0]["actor"] == "cli"
    assert events[0]["details"]["sector"] == "ngo"
    assert "outbox_id" in events[0]


def test_nothing_biometric_is_written(server: LiveServer, samples: Path) -> None:
    image = (samples / "obama.jpg").read_bytes()
    engine = FaceEngine(EngineConfig())
    descriptor = engine.analyze(image, max_faces=1).faces[0].descriptor
    assert descriptor is not None
    raw = np.asarray(descriptor, dtype=np.float32).tobytes()
    log_bytes = b"".join(p.read_bytes() for p in sorted((server.data_dir / "audit").glob("*")))
    assert len(log_bytes) > 1000
    for needle in (
        base64.b64encode(image[:3000]),
        base64.b64encode(raw),
        raw.hex().encode(),
        f"{float(descriptor[0]):.6f},{float(descriptor[1]):.6f}".encode(),
    ):
        assert needle not in log_bytes


def test_the_log_verifies_while_the_server_runs(server: LiveServer) -> None:
    assert main(["audit", "verify", "--data-dir", str(server.data_dir)]) == 0
