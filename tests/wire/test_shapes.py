"""Validation against botocore's Rekognition model: every rule, with the message it gives."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from facegate.errors import (
    ImageBytesTooLargeError,
    InvalidParameterException,
    SerializationException,
    UnknownOperationException,
)
from facegate.wire.shapes import FACE_API_OPERATIONS, ServiceModel

SAMPLE = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "samples" / "obama-240p.jpg"
)


@pytest.fixture(scope="module")
def model() -> ServiceModel:
    return ServiceModel.load()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_serves_the_face_api(model: ServiceModel) -> None:
    assert model.operation_names() == FACE_API_OPERATIONS
    assert len(FACE_API_OPERATIONS) == 21
    assert "ResourceNotFoundException" in model.error_shapes("IndexFaces")


def test_blob_is_decoded(model: ServiceModel) -> None:
    data = SAMPLE.read_bytes()
    out = model.validate_input(
        "IndexFaces",
        {
            "CollectionId": "c1",
            "Image": {"Bytes": b64(data)},
            "MaxFaces": 3,
            "QualityFilter": "AUTO",
        },
    )
    assert out["Image"]["Bytes"] == data
    assert out["MaxFaces"] == 3


def test_valid_requests_pass(model: ServiceModel) -> None:
    model.validate_input(
        "SearchFacesByImage",
        {"CollectionId": "a.b_c-1", "Image": {"Bytes": b64(b"x")}, "FaceMatchThreshold": 99.5},
    )
    model.validate_input(
        "TagResource",
        {"ResourceArn": "arn:aws:rekognition:us-east-1:0:collection/c", "Tags": {"ünï cödé": "v"}},
    )
    model.validate_input("ListFaces", {"CollectionId": "c", "MaxResults": 0})
    model.validate_input("ListFaces", {"CollectionId": "c", "MaxResults": 4096})
    assert model.validate_input("ListCollections", {}) == {}


@pytest.mark.parametrize(
    ("operation", "params", "fragment"),
    [
        ("CreateCollection", {"CollectionId": "bad/id"}, "CollectionId: 'bad/id' must match"),
        ("CreateCollection", {}, "CollectionId: is required"),
        ("CreateCollection", {"CollectionId": "c", "Extra": 1}, "Extra: unknown parameter"),
        ("CreateCollection", {"CollectionId": ""}, "at least 1 character"),
        ("CreateCollection", {"CollectionId": "c" * 256}, "at most 255 characters"),
        ("CreateCollection", {"CollectionId": 5}, "must be a string"),
        (
            "ListFaces",
            {"CollectionId": "c", "MaxResults": 4097},
            "MaxResults: must be at most 4096",
        ),
        ("ListFaces", {"CollectionId": "c", "MaxResults": 1.5}, "must be an integer"),
        ("ListFaces", {"CollectionId": "c", "MaxResults": True}, "must be an integer"),
        (
            "SearchFacesByImage",
            {"CollectionId": "c", "Image": {"Bytes": "QQ=="}, "FaceMatchThreshold": 100.5},
            "FaceMatchThreshold: must be at most 100",
        ),
        (
            "SearchFacesByImage",
            {"CollectionId": "c", "Image": {"Bytes": "QQ=="}, "FaceMatchThreshold": "80"},
            "must be a number",
        ),
        ("IndexFaces", {"CollectionId": "c", "Image": {"Bytes": "***"}}, "not valid base64"),
        ("IndexFaces", {"CollectionId": "c", "Image": {"Bytes": ""}}, "at least 1 byte"),
        (
            "IndexFaces",
            {"CollectionId": "c", "Image": {"Bytes": "QQ=="}, "QualityFilter": "BEST"},
            "must be one of NONE, AUTO, LOW, MEDIUM, HIGH",
        ),
        ("DeleteFaces", {"CollectionId": "c", "FaceIds": []}, "at least 1 item"),
        ("DeleteFaces", {"CollectionId": "c", "FaceIds": ["not-a-uuid"]}, "FaceIds[0]"),
        (
            "TagResource",
            {"ResourceArn": "arn:aws:rekognition:us-east-1:0:collection/c", "Tags": {"aws:x": "v"}},
            "Tags key 'aws:x'",
        ),
        ("DetectFaces", {"Image": "not an object"}, "Image: must be an object"),
        ("DetectFaces", {"Image": {"Bytes": "QQ=="}, "Attributes": "ALL"}, "must be a list"),
    ],
)
def test_violations(
    model: ServiceModel, operation: str, params: dict[str, object], fragment: str
) -> None:
    with pytest.raises(InvalidParameterException) as info:
        model.validate_input(operation, params)
    assert fragment in info.value.message
    assert "\n" not in info.value.message


def test_several_violations_in_one_line_and_bounded(model: ServiceModel) -> None:
    params = {f"Unknown{i}": i for i in range(50)}
    with pytest.raises(InvalidParameterException) as info:
        model.validate_input("CreateCollection", params)
    assert info.value.message.count("unknown parameter") == 5


def test_long_values_are_not_echoed(model: ServiceModel) -> None:
    with pytest.raises(InvalidParameterException) as info:
        model.validate_input("CreateCollection", {"CollectionId": "/" * 200})
    assert "/" * 100 not in info.value.message


def test_oversized_image_blob(model: ServiceModel) -> None:
    data = b64(b"\0" * (5 * 1024 * 1024 + 1))
    with pytest.raises(ImageBytesTooLargeError):
        model.validate_input("DetectFaces", {"Image": {"Bytes": data}})


def test_oversized_list_is_refused_before_walking(model: ServiceModel) -> None:
    ids = ["00000000-0000-0000-0000-000000000000"] * 4097
    with pytest.raises(InvalidParameterException, match="at most 4096 items"):
        model.validate_input("DeleteFaces", {"CollectionId": "c", "FaceIds": ids})


def test_body_and_operation_errors(model: ServiceModel) -> None:
    with pytest.raises(SerializationException):
        model.validate_input("ListCollections", [1, 2])
    with pytest.raises(UnknownOperationException):
        model.validate_input("LaunchRockets", {})
