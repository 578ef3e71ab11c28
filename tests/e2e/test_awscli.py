"""The AWS CLI (pip package awscli) against the live server, unchanged but for the endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.server import LiveServer
from tests.e2e.test_collections_faces import new_id


def aws(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("aws")
    env = {
        **os.environ,
        "AWS_SHARED_CREDENTIALS_FILE": str(server.data_dir / "credentials"),
        "AWS_PROFILE": "facegate",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
    }
    return subprocess.run(
        [str(exe), "rekognition", *args, "--endpoint-url", server.endpoint, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_aws_cli_round_trip(server: LiveServer, samples: Path) -> None:
    cid = new_id("cli")
    created = aws(server, "create-collection", "--collection-id", cid)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["StatusCode"] == 200
    indexed = aws(
        server, "index-faces", "--collection-id", cid,
        "--image-bytes", f"fileb://{samples / 'obama.jpg'}", "--external-image-id", "obama",
    )  # fmt: skip
    assert indexed.returncode == 0, indexed.stderr
    assert len(json.loads(indexed.stdout)["FaceRecords"]) == 1
    found = aws(
        server, "search-faces-by-image", "--collection-id", cid,
        "--image-bytes", f"fileb://{samples / 'obama2.jpg'}",
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    matches = json.loads(found.stdout)["FaceMatches"]
    assert [m["Face"]["ExternalImageId"] for m in matches] == ["obama"]
    listed = aws(server, "list-collections")
    assert cid in json.loads(listed.stdout)["CollectionIds"]


def test_aws_cli_error_is_reported(server: LiveServer) -> None:
    result = aws(server, "describe-collection", "--collection-id", new_id("absent"))
    assert result.returncode != 0
    assert "ResourceNotFoundException" in result.stderr


def test_aws_cli_detect_faces_attributes_all(server: LiveServer, samples: Path) -> None:
    result = aws(
        server, "detect-faces", "--image-bytes", f"fileb://{samples / 'obama.jpg'}",
        "--attributes", "ALL",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    face = json.loads(result.stdout)["FaceDetails"][0]
    assert face["EyesOpen"]["Value"] is True
    assert face["Smile"]["Value"] is True
    assert {"MouthOpen", "BoundingBox", "Landmarks"} <= set(face)
    assert "Emotions" not in face  # not estimated by default: omitted
    # the members AWS examples read (AgeRange.Low, Gender.Value) are there
    assert face["Gender"]["Value"] == "Male"
    assert 0 <= face["AgeRange"]["Low"] <= face["AgeRange"]["High"]
