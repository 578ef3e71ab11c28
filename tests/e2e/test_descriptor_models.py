"""Descriptor models on the wire (issue 19), boto3 against a live server, on each backend.

An operator brings their own model, end to end with a real one: faceres's ONNX file, copied out
of the converted models, added with ``facegate models add`` and its preprocessing spec (ArcFace
five-point alignment, 224 px BGR minus the Caffe means, 1,024-d cosine). Until
``facegate bias calibrate --model`` has fitted its calibration it cannot be a collection's model
(fail closed). The calibration here is fitted on synthetic descriptors
(``tests/synthetic_calibration.py``: the command's whole path, none of its measurement); the
faces indexed and searched are real, described by the model in the engine's workers.

A dlib collection and a faceres collection live side by side: each keeps its FaceModelVersion,
its faces are described and compared with its own model only, and a search whose model has lost
its calibration is refused.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from facegate.engine.human_models import default_models_dir
from tests import synthetic_calibration
from tests.e2e.conftest import StoreEnv, selected_backend
from tests.e2e.server import LiveServer, audit_record

pytestmark = pytest.mark.slow  # starts a server with two descriptor models

MODEL = "faceres-ext-v1"
FACERES = "faceres-v1"
FUSED = "fused-dlib-faceres-v1"
MODEL_TAG = "facegate:face-model"
SPEC = {
    "input_size": 224,
    "alignment": "five-point",
    "colour": "BGR",
    "mean": [103.939, 116.779, 123.68],
    "std": [1, 1, 1],
    "layout": "NHWC",
    "output": "descriptor",
    "output_dim": 1024,
    "metric": "cosine",
    "description": "faceres (HSE FaceRes MobileNet) as an operator's own ONNX file",
    "terms": "VGGFace2-trained weights: research terms",
}
FACERES_ONNX = default_models_dir() / "faceres.onnx"


def facegate(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("facegate")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, check=False, timeout=300
    )


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding the operator's model, added and calibrated by the CLI."""
    if not FACERES_ONNX.is_file():
        pytest.skip(f"{FACERES_ONNX} is not converted (python3 tools/dev.py sets it up)")
    root = tmp_path_factory.mktemp("byo")
    folder = root / "models"
    onnx = root / "their-model.onnx"
    shutil.copyfile(FACERES_ONNX, onnx)
    spec = root / "spec.json"
    spec.write_text(json.dumps(SPEC))
    added = facegate(
        "models", "add", MODEL, "--onnx", str(onnx), "--spec", str(spec), "--dir", str(folder)
    )
    assert added.returncode == 0, added.stderr
    assert "not calibrated" in added.stdout
    synthetic_calibration.build(root / "data", root / "cache.sqlite3", MODEL, 1024)
    for normalise in ((), ("--normalise",)):
        done = facegate(
            "bias", "calibrate", "--model", MODEL, "--models-dir", str(folder), "--data",
            str(root / "data"), "--cache", str(root / "cache.sqlite3"), "--no-mmod-fallback",
            "--no-progress", *normalise,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    verified = facegate("models", "verify", MODEL, "--dir", str(folder))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # the built-in faceres-v1 (the pinned conversion) and the fused model, with the calibrations
    # the package ships (fitted on LFW and FairFace, docs/models.md)
    for name in ("faceres.onnx", "manifest.json"):
        shutil.copyfile(FACERES_ONNX.parent / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def live(
    request: pytest.FixtureRequest, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    if selected_backend() == "postgres":  # set up before store_env, so torn down after it
        request.getfixturevalue("pg_cluster")
    store_env: StoreEnv = request.getfixturevalue("store_env")
    server = LiveServer(
        tmp_path_factory.mktemp("models-e2e") / "data",
        env={**store_env(), "FACEGATE_MODELS_DIR": str(models_dir)},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = info.value.response["Error"]
    return err["Code"], err["Message"]


def test_an_uncalibrated_model_cannot_be_a_collections_model(
    live: LiveServer, models_dir: Path
) -> None:
    rek = live.client()
    for version, why in (
        ("no-such-model", "this server has no face model no-such-model"),
        ("dlib-resnet-v1+flip", "this server has no face model dlib-resnet-v1+flip"),
    ):
        with pytest.raises(ClientError) as info:
            rek.create_collection(CollectionId=_id("x"), Tags={MODEL_TAG: version})
        code, message = _error(info)
        assert code == "InvalidParameterException"
        assert why in message
    assert "CollectionIds" in rek.list_collections()


def test_a_dlib_and_a_faceres_collection_side_by_side(live: LiveServer, image: Any) -> None:
    rek = live.client()
    dlib_id, faceres_id = _id("dlib"), _id("faceres")
    created = rek.create_collection(CollectionId=dlib_id)
    assert created["FaceModelVersion"] == "dlib-resnet-v1"
    created = rek.create_collection(CollectionId=faceres_id, Tags={MODEL_TAG: MODEL})
    assert created["FaceModelVersion"] == MODEL
    assert rek.describe_collection(CollectionId=faceres_id)["FaceModelVersion"] == MODEL
    listed = rek.list_collections()
    versions = dict(zip(listed["CollectionIds"], listed["FaceModelVersions"], strict=True))
    assert (versions[dlib_id], versions[faceres_id]) == ("dlib-resnet-v1", MODEL)
    ids: dict[str, dict[str, str]] = {}
    for cid, version in ((dlib_id, "dlib-resnet-v1"), (faceres_id, MODEL)):
        ids[cid] = {}
        for name in ("obama.jpg", "biden.jpg"):
            indexed = rek.index_faces(CollectionId=cid, Image=image(name), ExternalImageId=name)
            assert indexed["FaceModelVersion"] == version
            [record] = indexed["FaceRecords"]
            ids[cid][name] = record["Face"]["FaceId"]
    for cid, version in ((dlib_id, "dlib-resnet-v1"), (faceres_id, MODEL)):
        found = rek.search_faces_by_image(CollectionId=cid, Image=image("obama2.jpg"))
        assert found["FaceModelVersion"] == version
        assert [m["Face"]["FaceId"] for m in found["FaceMatches"]] == [ids[cid]["obama.jpg"]]
        assert found["FaceMatches"][0]["Similarity"] > 90
        by_id = rek.search_faces(CollectionId=cid, FaceId=ids[cid]["obama.jpg"])
        assert by_id["FaceModelVersion"] == version
        assert ids[cid]["biden.jpg"] not in {m["Face"]["FaceId"] for m in by_id["FaceMatches"]}
        decision = found["ResponseMetadata"]["HTTPHeaders"]["x-facegate-decision-id"]
        result = audit_record(live, decision)["result"]
        assert result["face_model_version"] == version
        assert result["similarity_version"].startswith(f"{version}.cohort-")
    # a face id of one collection is not a face of the other
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.search_faces(CollectionId=faceres_id, FaceId=ids[dlib_id]["obama.jpg"])
    # users in the faceres collection: associated and searched with its own model
    rek.create_user(CollectionId=faceres_id, UserId="barack")
    associated = rek.associate_faces(
        CollectionId=faceres_id, UserId="barack", FaceIds=[ids[faceres_id]["obama.jpg"]]
    )
    assert len(associated["AssociatedFaces"]) == 1
    users = rek.search_users_by_image(CollectionId=faceres_id, Image=image("obama3.jpg"))
    assert users["FaceModelVersion"] == MODEL
    assert [u["User"]["UserId"] for u in users["UserMatches"]] == ["barack"]
    # CompareFaces uses the server's default model (dlib here)
    compared = rek.compare_faces(SourceImage=image("obama.jpg"), TargetImage=image("obama2.jpg"))
    assert compared["FaceMatches"][0]["Similarity"] > 80


@pytest.mark.parametrize("model", [FACERES, FUSED])
def test_built_in_faceres_and_fused_collections(live: LiveServer, image: Any, model: str) -> None:
    """faceres-v1 through its pinned conversion; the fused model stores both descriptors of a
    face and scores their weighted distances (its calibration's weights)."""
    rek = live.client()
    cid = _id("builtin")
    assert (
        rek.create_collection(CollectionId=cid, Tags={MODEL_TAG: model})["FaceModelVersion"]
        == model
    )
    faces = {}
    for name in ("obama.jpg", "biden.jpg", "two_people.jpg"):
        indexed = rek.index_faces(CollectionId=cid, Image=image(name), ExternalImageId=name)
        assert indexed["FaceModelVersion"] == model
        faces[name] = [r["Face"]["FaceId"] for r in indexed["FaceRecords"]]
    found = rek.search_faces_by_image(CollectionId=cid, Image=image("obama2.jpg"))
    assert found["FaceModelVersion"] == model
    matched = {m["Face"]["ExternalImageId"] for m in found["FaceMatches"]}
    assert matched == {"obama.jpg", "two_people.jpg"}  # Obama, alone and beside Biden
    assert faces["biden.jpg"][0] not in {m["Face"]["FaceId"] for m in found["FaceMatches"]}
    if model == FUSED:
        with pytest.raises(ClientError) as info:
            rek.create_collection(
                CollectionId=_id("h"), Tags={MODEL_TAG: FUSED, "facegate:index": "hnsw"}
            )
        assert "several descriptors per face" in _error(info)[1]


def test_a_search_whose_model_lost_its_calibration_is_refused(
    live: LiveServer, models_dir: Path, image: Any
) -> None:
    rek = live.client()
    cid = _id("lost")
    rek.create_collection(CollectionId=cid, Tags={MODEL_TAG: MODEL})
    rek.index_faces(CollectionId=cid, Image=image("obama.jpg"))
    folder = models_dir / "descriptors" / MODEL
    aside = models_dir.parent / "aside"
    aside.mkdir(exist_ok=True)
    moved = list(folder.glob(f"{MODEL}*.json"))
    live.stop()
    for f in moved:
        f.rename(aside / f.name)
    try:
        live.start()
        with pytest.raises(ClientError) as info:
            live.client().search_faces_by_image(CollectionId=cid, Image=image("obama2.jpg"))
        code, message = _error(info)
        assert code == "InvalidParameterException"
        assert f"The collection {cid} cannot be searched" in message
        assert "has no calibration" in message
        # it still describes what it holds
        assert live.client().describe_collection(CollectionId=cid)["FaceModelVersion"] == MODEL
    finally:
        live.stop()
        for f in moved:
            (aside / f.name).rename(f)
        live.start()
    assert live.client().search_faces_by_image(CollectionId=cid, Image=image("obama2.jpg"))[
        "FaceMatches"
    ]
