"""Validation against botocore's Rekognition model: every rule, with the error and message it gives.

Rules that Rekognition's face API never exercises (booleans, longs, doubles, timestamps, blobs other
than images, unbounded lists, deep nesting, sensitive strings) are tested on a small hand-written
model with botocore's layout.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from facegate.errors import (
    ImageBytesTooLargeError,
    ImageTooLargeException,
    InvalidParameterException,
    SerializationException,
    UnknownOperationException,
)
from facegate.wire.shapes import (
    FACE_API_OPERATIONS,
    MAX_DEPTH,
    MAX_UNBOUNDED_ITEMS,
    ServiceModel,
    java_pattern,
)

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "samples"
ARN = "arn:aws:rekognition:us-east-1:123456789012:collection/c1"
FACE_ID = "11111111-2222-3333-4444-555555555555"
IMAGE_MAX = 5_242_880


@pytest.fixture(scope="module")
def model() -> ServiceModel:
    return ServiceModel.load()


@pytest.fixture(scope="module")
def photo() -> bytes:
    return (SAMPLES / "obama-240p.jpg").read_bytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def rejects(model: ServiceModel, operation: str, params: object) -> str:
    """The InvalidParameterException message ``params`` gets (exactly that class, one line)."""
    with pytest.raises(InvalidParameterException) as info:
        model.validate_input(operation, params)
    assert type(info.value) is InvalidParameterException
    assert info.value.code == "InvalidParameterException"
    assert "\n" not in info.value.message
    return info.value.message


# --- a hand-written model for the types the face API does not use ---------------------------------


def _toy_model() -> ServiceModel:
    shapes: dict[str, Any] = {
        "In": {
            "type": "structure",
            "required": ["Name"],
            "members": {
                "Name": {"shape": "Name"},
                "Flag": {"shape": "Flag"},
                "Count": {"shape": "Count"},
                "Big": {"shape": "Big"},
                "Ratio": {"shape": "Ratio"},
                "Precise": {"shape": "Precise"},
                "When": {"shape": "When"},
                "Data": {"shape": "Data"},
                "Secret": {"shape": "Secret"},
                "Digits": {"shape": "Digits"},
                "Line": {"shape": "Line"},
                "Slow": {"shape": "Slow"},
                "Items": {"shape": "Items"},
                "Labels": {"shape": "Labels"},
                "Node": {"shape": "Node"},
                "Any": {"shape": "Any"},
            },
        },
        "Name": {"type": "string"},
        "Flag": {"type": "boolean"},
        "Count": {"type": "long", "min": 1},
        "Big": {"type": "integer"},
        "Ratio": {"type": "float"},
        "Precise": {"type": "double", "min": -1, "max": 1},
        "When": {"type": "timestamp"},
        "Data": {"type": "blob", "min": 2, "max": 4},
        "Secret": {"type": "string", "pattern": "[a-z]+", "sensitive": True},
        "Digits": {"type": "string", "pattern": r"\d{3}"},
        "Line": {"type": "string", "pattern": ".+"},
        "Slow": {"type": "string", "pattern": "(a|aa)+"},
        "Items": {"type": "list", "member": {"shape": "Name"}},
        "Labels": {
            "type": "map",
            "key": {"shape": "Name"},
            "value": {"shape": "Name"},
            "min": 1,
            "max": 2,
        },
        "Node": {"type": "structure", "members": {"Next": {"shape": "Node"}}},
        "Any": {"type": "document"},
    }
    return ServiceModel({"operations": {"Op": {"input": {"shape": "In"}}}, "shapes": shapes})


@pytest.fixture(scope="module")
def toy() -> ServiceModel:
    return _toy_model()


def toy_rejects(toy: ServiceModel, **params: object) -> str:
    return rejects(toy, "Op", {"Name": "n", **params})


# --- the model and the operations --------------------------------------------------------------


def test_serves_the_face_api(model: ServiceModel) -> None:
    assert len(FACE_API_OPERATIONS) == 21
    assert model.operation_names() == FACE_API_OPERATIONS
    assert "ResourceNotFoundException" in model.error_shapes("IndexFaces")
    assert "InvalidParameterException" in model.error_shapes("CreateCollection")
    assert "ImageTooLargeException" in model.error_shapes("DetectFaces")


def test_unknown_operation_and_non_object_body(model: ServiceModel) -> None:
    with pytest.raises(UnknownOperationException, match="LaunchRockets"):
        model.validate_input("LaunchRockets", {})
    with pytest.raises(UnknownOperationException):
        model.error_shapes("LaunchRockets")
    for body in ([1, 2], "text", None, 3):
        with pytest.raises(SerializationException, match="must be a JSON object"):
            model.validate_input("ListCollections", body)


def test_every_model_pattern_compiles_once(model: ServiceModel) -> None:
    again = ServiceModel.load()
    assert again.validate_input("CreateCollection", {"CollectionId": "x"}) == {"CollectionId": "x"}


# --- realistic requests that pass --------------------------------------------------------------


def test_index_faces_decodes_the_image(model: ServiceModel, photo: bytes) -> None:
    params = {
        "CollectionId": "missing-persons_2020.v1",
        "Image": {"Bytes": b64(photo)},
        "ExternalImageId": "case:4711",
        "DetectionAttributes": ["DEFAULT"],
        "MaxFaces": 3,
        "QualityFilter": "AUTO",
    }
    out = model.validate_input("IndexFaces", params)
    assert out["Image"]["Bytes"] == photo
    assert isinstance(out["Image"]["Bytes"], bytes)
    assert {k: v for k, v in out.items() if k != "Image"} == {
        k: v for k, v in params.items() if k != "Image"
    }
    assert out["CollectionId"] is params["CollectionId"]  # strings are not copied
    assert params["Image"] == {"Bytes": b64(photo)}  # the input is left alone


def test_search_faces_by_image_with_threshold(model: ServiceModel, photo: bytes) -> None:
    for threshold in (0, 80, 99.5, 100):
        out = model.validate_input(
            "SearchFacesByImage",
            {
                "CollectionId": "c1",
                "Image": {"Bytes": b64(photo)},
                "MaxFaces": 5,
                "FaceMatchThreshold": threshold,
                "QualityFilter": "HIGH",
            },
        )
        assert out["FaceMatchThreshold"] == threshold


def test_tag_resource_with_unicode_tag_key(model: ServiceModel) -> None:
    tags = {"Ünïcödé Schlüssel": "wert", "部署": "捜索", "team/x=y+z@a.b:c": "", "k": "v v"}
    out = model.validate_input("TagResource", {"ResourceArn": ARN, "Tags": tags})
    assert out["Tags"] == tags
    model.validate_input("UntagResource", {"ResourceArn": ARN, "TagKeys": list(tags)})
    model.validate_input("ListTagsForResource", {"ResourceArn": ARN})


@pytest.mark.parametrize("max_results", [0, 1, 4095, 4096])
def test_list_faces_max_results_boundaries(model: ServiceModel, max_results: int) -> None:
    out = model.validate_input("ListFaces", {"CollectionId": "c", "MaxResults": max_results})
    assert out["MaxResults"] == max_results


def test_more_operations_pass(model: ServiceModel, photo: bytes) -> None:
    image = {"Bytes": b64(photo)}
    model.validate_input("DetectFaces", {"Image": image, "Attributes": ["ALL", "AGE_RANGE"]})
    out = model.validate_input(
        "CompareFaces", {"SourceImage": image, "TargetImage": image, "SimilarityThreshold": 90}
    )
    assert out["SourceImage"]["Bytes"] == out["TargetImage"]["Bytes"] == photo
    model.validate_input(
        "AssociateFaces",
        {"CollectionId": "c", "UserId": "u:1", "FaceIds": [FACE_ID], "ClientRequestToken": "a-b_c"},
    )
    model.validate_input("SearchUsers", {"CollectionId": "c", "UserId": "u", "MaxUsers": 500})
    model.validate_input("ListCollections", {"NextToken": "t", "MaxResults": 10})
    assert model.validate_input("ListCollections", {}) == {}


def test_null_members_count_as_absent(model: ServiceModel) -> None:
    assert model.validate_input("ListCollections", {"MaxResults": None}) == {}
    assert "CollectionId: is required" in rejects(model, "CreateCollection", {"CollectionId": None})


# --- one negative test per rule ----------------------------------------------------------------


def test_unknown_member(model: ServiceModel) -> None:
    message = rejects(model, "CreateCollection", {"CollectionId": "c", "Extra": 1})
    assert message == "Extra: unknown parameter"
    message = rejects(model, "DetectFaces", {"Image": {"Bytes": "QQ==", "Url": "http://x"}})
    assert message == "Image.Url: unknown parameter"


def test_missing_required_members_in_model_order(model: ServiceModel) -> None:
    assert rejects(model, "CreateCollection", {}) == "CollectionId: is required"
    message = rejects(model, "AssociateFaces", {})
    assert message == "CollectionId: is required; UserId: is required; FaceIds: is required"


def test_string_type_length_pattern_and_enum(model: ServiceModel) -> None:
    assert "CollectionId: must be a string, not 5" in rejects(
        model, "CreateCollection", {"CollectionId": 5}
    )
    message = rejects(model, "CreateCollection", {"CollectionId": ""})
    assert message == "CollectionId: must be at least 1 character(s) long, not 0"
    message = rejects(model, "CreateCollection", {"CollectionId": "c" * 256})
    assert message == "CollectionId: must be at most 255 characters long, not 256"
    message = rejects(model, "CreateCollection", {"CollectionId": "bad/id"})
    assert message == r"CollectionId: must match pattern [a-zA-Z0-9_.\-]+ (got 'bad/id')"
    params = {"CollectionId": "c", "Image": {"Bytes": "QQ=="}, "QualityFilter": "BEST"}
    message = rejects(model, "IndexFaces", params)
    assert message == "QualityFilter: must be one of NONE, AUTO, LOW, MEDIUM, HIGH, not 'BEST'"


def test_patterns_match_the_whole_string(model: ServiceModel) -> None:
    for bad in ("ok/", "/ok", "ok\n", "ok id"):
        assert "must match pattern" in rejects(model, "CreateCollection", {"CollectionId": bad})
    message = rejects(model, "SearchFaces", {"CollectionId": "c", "FaceId": FACE_ID + "0"})
    assert message.startswith("FaceId: must match pattern")


def test_tag_key_pattern_is_java_syntax(model: ServiceModel) -> None:
    message = rejects(model, "TagResource", {"ResourceArn": ARN, "Tags": {"aws:x": "v"}})
    assert message.startswith("Tags key: must match pattern ^(?!aws:)")
    assert message.endswith("(got 'aws:x')")
    message = rejects(model, "TagResource", {"ResourceArn": ARN, "Tags": {"k": "a\tb"}})
    assert message.startswith("Tags['k']: must match pattern")
    message = rejects(model, "UntagResource", {"ResourceArn": ARN, "TagKeys": ["ok", "no#"]})
    assert message.startswith("TagKeys[1]: must match pattern")


def test_integer_type_and_range(model: ServiceModel) -> None:
    def list_faces(value: object) -> str:
        return rejects(model, "ListFaces", {"CollectionId": "c", "MaxResults": value})

    assert list_faces(4097) == "MaxResults: must be at most 4096, not 4097"
    assert list_faces(-1) == "MaxResults: must be at least 0, not -1"
    assert list_faces(1.5) == "MaxResults: must be an integer, not 1.5"
    assert list_faces(2.0) == "MaxResults: must be an integer, not 2.0"
    assert list_faces(True) == "MaxResults: must be an integer, not true"
    assert list_faces("10") == "MaxResults: must be an integer, not '10'"
    # MaxFacesToIndex has a min and no max: Java's int range bounds it.
    params = {"CollectionId": "c", "Image": {"Bytes": "QQ=="}, "MaxFaces": 2**31}
    assert (
        rejects(model, "IndexFaces", params)
        == "MaxFaces: must be at most 2147483647, not 2147483648"
    )


def test_float_type_and_range(model: ServiceModel) -> None:
    def search(value: object) -> str:
        params = {"CollectionId": "c", "Image": {"Bytes": "QQ=="}, "FaceMatchThreshold": value}
        return rejects(model, "SearchFacesByImage", params)

    assert search(100.5) == "FaceMatchThreshold: must be at most 100, not 100.5"
    assert search(-0.1) == "FaceMatchThreshold: must be at least 0, not -0.1"
    assert search("80") == "FaceMatchThreshold: must be a number, not '80'"
    assert search(False) == "FaceMatchThreshold: must be a number, not false"
    assert search(float("nan")) == "FaceMatchThreshold: must be a finite number, not nan"


def test_list_and_structure_types(model: ServiceModel) -> None:
    message = rejects(model, "DetectFaces", {"Image": {"Bytes": "QQ=="}, "Attributes": "ALL"})
    assert message == "Attributes: must be a list, not 'ALL'"
    assert rejects(model, "DetectFaces", {"Image": "x"}) == "Image: must be an object, not 'x'"
    assert rejects(model, "DetectFaces", {"Image": [1]}) == "Image: must be an object, not a list"


def test_map_type_and_sizes(model: ServiceModel) -> None:
    message = rejects(model, "TagResource", {"ResourceArn": ARN, "Tags": ["k"]})
    assert message == "Tags: must be an object, not a list"
    tags = {f"k{i}": "v" for i in range(201)}
    message = rejects(model, "TagResource", {"ResourceArn": ARN, "Tags": tags})
    assert message == "Tags: must have at most 200 entries, has 201"
    message = rejects(model, "TagResource", {"ResourceArn": ARN, "Tags": {"k": 1}})
    assert message == "Tags['k']: must be a string, not 1"


def test_list_sizes(model: ServiceModel) -> None:
    message = rejects(model, "DeleteFaces", {"CollectionId": "c", "FaceIds": []})
    assert message == "FaceIds: must have at least 1 item(s), has 0"
    message = rejects(model, "DeleteFaces", {"CollectionId": "c", "FaceIds": [FACE_ID, "no"]})
    assert message.startswith("FaceIds[1]: must match pattern")


def test_oversized_list_is_refused_before_walking(model: ServiceModel) -> None:
    ids: list[object] = [object()] * 4097  # items that would each fail if they were walked
    message = rejects(model, "DeleteFaces", {"CollectionId": "c", "FaceIds": ids})
    assert message == "FaceIds: must have at most 4096 item(s), has 4097"


def test_image_blob(model: ServiceModel, photo: bytes) -> None:
    assert rejects(model, "DetectFaces", {"Image": {"Bytes": ""}}) == (
        "Image.Bytes: must be at least 1 byte(s), not 0"
    )
    message = rejects(model, "DetectFaces", {"Image": {"Bytes": "***"}})
    assert message == "Image.Bytes: is not valid base64"
    message = rejects(model, "DetectFaces", {"Image": {"Bytes": b64(photo)[:-1]}})
    assert message == "Image.Bytes: is not valid base64"
    message = rejects(model, "DetectFaces", {"Image": {"Bytes": 12}})
    assert message == "Image.Bytes: must be a base64-encoded string, not 12"


def test_image_blob_at_and_over_max(model: ServiceModel) -> None:
    at_max = model.validate_input("DetectFaces", {"Image": {"Bytes": b64(b"\0" * IMAGE_MAX)}})
    assert len(at_max["Image"]["Bytes"]) == IMAGE_MAX
    for size in (IMAGE_MAX + 1, 3 * IMAGE_MAX):
        with pytest.raises(ImageBytesTooLargeError) as info:
            model.validate_input("DetectFaces", {"Image": {"Bytes": b64(b"\0" * size)}})
        assert isinstance(info.value, ImageTooLargeException)
        assert info.value.code == "ImageTooLargeException"
        assert str(info.value) == "Image.Bytes: the image is larger than 5242880 bytes."


def test_blob_contents_are_never_echoed(model: ServiceModel) -> None:
    message = rejects(model, "DetectFaces", {"Image": {"Bytes": "SECRETSECRET!"}})
    assert "SECRET" not in message


def test_several_violations_are_joined_and_bounded(model: ServiceModel) -> None:
    params: dict[str, object] = {f"Unknown{i}": i for i in range(50)}
    message = rejects(model, "CreateCollection", params)
    assert message.count("unknown parameter") == 5
    assert message.count("; ") == 4
    params = {"CollectionId": "bad/id", "Image": {"Bytes": ""}, "MaxFaces": 0}
    message = rejects(model, "SearchFacesByImage", params)
    assert message.split("; ") == [
        r"CollectionId: must match pattern [a-zA-Z0-9_.\-]+ (got 'bad/id')",
        "Image.Bytes: must be at least 1 byte(s), not 0",
        "MaxFaces: must be at least 1, not 0",
    ]


def test_long_values_and_names_are_not_echoed(model: ServiceModel) -> None:
    message = rejects(model, "CreateCollection", {"CollectionId": "/" * 200})
    assert "/" * 70 not in message
    assert len(message) < 160
    message = rejects(model, "CreateCollection", {"CollectionId": "c", "X" * 10_000 + "\n": 1})
    assert "X" * 70 not in message
    message = rejects(model, "ListFaces", {"CollectionId": "c", "MaxResults": 10**5000})
    assert message == "MaxResults: must be at most 4096, not a very large integer"
    message = rejects(model, "ListFaces", {"CollectionId": "c", "MaxResults": [[[1]] * 1000]})
    assert message == "MaxResults: must be an integer, not a list"


# --- rules only the hand-written model exercises -----------------------------------------------


def test_boolean_type(toy: ServiceModel) -> None:
    assert toy.validate_input("Op", {"Name": "n", "Flag": False})["Flag"] is False
    assert toy_rejects(toy, Flag=1) == "Flag: must be true or false, not 1"
    assert toy_rejects(toy, Flag="true") == "Flag: must be true or false, not 'true'"


def test_long_type_and_range(toy: ServiceModel) -> None:
    assert toy.validate_input("Op", {"Name": "n", "Count": 2**63 - 1})["Count"] == 2**63 - 1
    assert toy_rejects(toy, Count=2**63) == (
        "Count: must be at most 9223372036854775807, not 9223372036854775808"
    )
    assert toy_rejects(toy, Count=0) == "Count: must be at least 1, not 0"
    assert toy_rejects(toy, Count=True) == "Count: must be an integer, not true"
    assert toy_rejects(toy, Big=-(2**31) - 1) == (
        "Big: must be at least -2147483648, not -2147483649"
    )


def test_float_and_double(toy: ServiceModel) -> None:
    out = toy.validate_input("Op", {"Name": "n", "Ratio": 3, "Precise": 0.25})
    assert (out["Ratio"], out["Precise"]) == (3, 0.25)
    assert toy_rejects(toy, Ratio=1e39) == "Ratio: must fit a 32-bit float, not 1e+39"
    assert toy_rejects(toy, Precise=1.5) == "Precise: must be at most 1, not 1.5"
    assert toy_rejects(toy, Precise=[]) == "Precise: must be a number, not a list"


def test_timestamp_is_epoch_seconds(toy: ServiceModel) -> None:
    for when in (1_700_000_000, 1_700_000_000.25):
        assert toy.validate_input("Op", {"Name": "n", "When": when})["When"] == when
    assert toy_rejects(toy, When="2024-01-01T00:00:00Z") == (
        "When: must be a number, not '2024-01-01T00:00:00Z'"
    )
    assert toy_rejects(toy, When=True) == "When: must be a number, not true"


def test_blob_sizes(toy: ServiceModel) -> None:
    assert toy.validate_input("Op", {"Name": "n", "Data": b64(b"abc")})["Data"] == b"abc"
    assert toy_rejects(toy, Data=b64(b"a")) == "Data: must be at least 2 byte(s), not 1"
    assert toy_rejects(toy, Data=b64(b"abcde")) == "Data: must be at most 4 bytes"
    assert toy_rejects(toy, Data=b64(b"x" * 1000)) == "Data: must be at most 4 bytes"


def test_sensitive_values_are_not_echoed(toy: ServiceModel) -> None:
    message = toy_rejects(toy, Secret="Hunter2")
    assert message == "Secret: must match pattern [a-z]+ (got a sensitive value)"


def test_java_predefined_classes_are_ascii(toy: ServiceModel) -> None:
    assert toy.validate_input("Op", {"Name": "n", "Digits": "123"})["Digits"] == "123"
    assert "must match pattern" in toy_rejects(toy, Digits="١٢٣")  # Arabic-Indic digits
    assert "must match pattern" in toy_rejects(toy, Line="a\u2028b")  # a Java line terminator
    assert java_pattern(r"\d[\w\-]\S.") == r"[0-9][a-zA-Z0-9_\-][^ \t\n\x0b\f\r]" + (
        "[^\\n\\r\\u0085\\u2028\\u2029]"
    )
    assert java_pattern(r"^(?!aws:)[\p{L}.]*$") == r"^(?!aws:)[\p{L}.]*$"


def test_runaway_pattern_is_cut_off(toy: ServiceModel) -> None:
    assert toy.validate_input("Op", {"Name": "n", "Slow": "aaa"})["Slow"] == "aaa"
    assert "must match pattern" in toy_rejects(toy, Slow="a" * 60 + "b")
    long_line = "x" * 1000  # long inputs take the time-limited path too
    assert toy.validate_input("Op", {"Name": "n", "Line": long_line})["Line"] is long_line


def test_unbounded_list_limit(toy: ServiceModel) -> None:
    items = ["x"] * MAX_UNBOUNDED_ITEMS
    assert toy.validate_input("Op", {"Name": "n", "Items": items})["Items"] == items
    message = toy_rejects(toy, Items=[*items, "x"])
    assert message == "Items: must have at most 10000 item(s), has 10001"


def test_map_min_size_and_key_type(toy: ServiceModel) -> None:
    assert toy_rejects(toy, Labels={}) == "Labels: must have at least 1 entries, has 0"
    assert toy_rejects(toy, Labels={"a": "b", "c": "d", "e": "f"}) == (
        "Labels: must have at most 2 entries, has 3"
    )


def test_nesting_depth_is_bounded(toy: ServiceModel) -> None:
    node: dict[str, Any] = {}
    for _ in range(MAX_DEPTH - 2):
        node = {"Next": node}
    toy.validate_input("Op", {"Name": "n", "Node": node})
    message = toy_rejects(toy, Node={"Next": node})
    assert message.endswith(": is nested deeper than 20 levels")
    assert message.startswith("Node.Next.Next")


def test_unsupported_shape_type_fails_closed(toy: ServiceModel) -> None:
    assert toy_rejects(toy, Any={}) == "Any: has the unsupported shape type document"


def test_required_and_type_of_toy(toy: ServiceModel) -> None:
    assert rejects(toy, "Op", {}) == "Name: is required"
    assert rejects(toy, "Op", {"Name": None, "Flag": 0}) == (
        "Name: is required; Flag: must be true or false, not 0"
    )
