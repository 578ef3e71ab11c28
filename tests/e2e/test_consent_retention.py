"""Illinois BIPA end to end: a private entity in Illinois enrols a face only with a consent
record; the face keeps that record and a retention deadline of 3 years; once the deadline has
passed the sweeper deletes it and records the deletion."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.governance import register, send_headers
from tests.e2e.server import LiveServer

THREE_YEARS_S = 1095 * 86400


@pytest.fixture(scope="module")
def bipa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("bipa") / "data",
        workers=1,
        env={
            "FACEGATE_POLICY_PACKS": "amazon-2020-police-moratorium,il-bipa",
            "FACEGATE_RETENTION_SWEEP_S": "0.5",
        },
    )
    live.start()
    yield live
    live.stop()


def _db(server: LiveServer) -> sqlite3.Connection:
    return sqlite3.connect(server.data_dir / "facegate.sqlite3", timeout=30)


def test_enrolment_needs_consent_and_is_deleted_at_its_deadline(
    bipa: LiveServer, samples: Path
) -> None:
    keys = register(
        bipa, "chicago-gym", "commercial", ["access_control"], country="US", region="US-IL"
    )
    image = {"Bytes": (samples / "obama.jpg").read_bytes()}
    plain = bipa.client(keys["access_control"])
    plain.create_collection(CollectionId="members")
    with pytest.raises(ClientError) as denied:
        plain.index_faces(CollectionId="members", Image=image)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"

    consenting = send_headers(
        bipa.client(keys["access_control"]), {"X-Facegate-Consent": "release-2026-0007"}
    )
    before = time.time()
    face_id = consenting.index_faces(CollectionId="members", Image=image)["FaceRecords"][0]["Face"][
        "FaceId"
    ]
    with _db(bipa) as conn:
        consent, deadline = conn.execute(
            "SELECT consent_ref, retain_until FROM faces WHERE face_id = ?", (face_id,)
        ).fetchone()
    assert consent == "release-2026-0007"
    assert before + THREE_YEARS_S - 5 <= deadline <= time.time() + THREE_YEARS_S + 5

    # Three years pass (for this face): the sweeper deletes it and records the deletion.
    with _db(bipa) as conn:
        conn.execute(
            "UPDATE faces SET retain_until = ? WHERE face_id = ?", (time.time() - 1, face_id)
        )
    deadline_s = time.monotonic() + 30
    while time.monotonic() < deadline_s:
        if not plain.list_faces(CollectionId="members")["Faces"]:
            break
        time.sleep(0.25)
    assert plain.list_faces(CollectionId="members")["Faces"] == []
    with _db(bipa) as conn:
        rows = conn.execute(
            "SELECT face_id, collection_id, org_id FROM retention_deletions"
        ).fetchall()
    assert rows == [(face_id, "members", "chicago-gym")]
    found = plain.search_faces_by_image(
        CollectionId="members", Image={"Bytes": (samples / "obama2.jpg").read_bytes()}
    )
    assert found["FaceMatches"] == []  # gone from the vector index too
