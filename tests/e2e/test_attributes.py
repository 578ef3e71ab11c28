"""Facial attributes end to end with boto3 (issue 21): DetectFaces' ``Attributes`` and
IndexFaces' ``DetectionAttributes`` with DEFAULT, ALL and single attributes, on real photos;
the shapes checked against botocore's service model; the access pattern of AWS's own examples
(``FaceDetails[0]['EyesOpen']['Value']``, ``['AgeRange']['Low']``, ``['Gender']['Value']``);
the model-backed attributes off by default and on with ``FACEGATE_ATTRIBUTE_MODELS``; the
policies that refuse or drop attributes (eu-ai-act-art5, microsoft-limited-access), with the
models on so that a dropped attribute would otherwise be answered; and the audit record, which
names the attributes asked for, dropped and inferred, never their values."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import botocore.session
import httpx
import pytest
from botocore.exceptions import ClientError

from facegate.engine.human_models import model_status
from facegate.operations import ATTRIBUTE_MEMBERS, FACE_ATTRIBUTES
from tests.e2e.conftest import StoreEnv
from tests.e2e.governance import register, send_headers
from tests.e2e.server import Credentials, LiveServer, audit_record

Image = Callable[[str], dict[str, bytes]]

ESTIMATED = (
    "EyesOpen", "MouthOpen", "Smile", "Eyeglasses", "Sunglasses", "Beard", "Mustache",
    "FaceOccluded",
)  # fmt: skip
"""The FaceDetail members this version estimates by default (docs/attributes.md)."""
NOT_ESTIMATED = tuple(m for m in ATTRIBUTE_MEMBERS.values() if m not in ESTIMATED)
MODEL_MEMBERS = ("AgeRange", "Gender", "Emotions", "EyeDirection")
"""The members estimated with FACEGATE_ATTRIBUTE_MODELS=faceres,emotion,iris."""
MODELS_ON = {"FACEGATE_ATTRIBUTE_MODELS": "faceres,emotion,iris"}
MODELS_READY = all(model_status(m).available for m in ("faceres", "emotion", "iris"))
needs_models = pytest.mark.skipif(
    not MODELS_READY,
    reason="the converted face models are not set up (python3 tools/dev.py; docs/models.md)",
)


@pytest.fixture(scope="module")
def face_detail_shape() -> Any:
    model = botocore.session.get_session().get_service_model("rekognition")
    return model.shape_for("FaceDetail")


def _check_shape(detail: dict[str, Any], shape: Any) -> None:
    """Every member of ``detail`` is a FaceDetail member with the model's types and ranges."""
    assert set(detail) <= set(shape.members), set(detail) - set(shape.members)
    for name in ESTIMATED:
        if name not in detail:
            continue
        member = shape.members[name]
        assert set(detail[name]) == set(member.members) == {"Value", "Confidence"}
        assert isinstance(detail[name]["Value"], bool)
        confidence = detail[name]["Confidence"]
        assert isinstance(confidence, float)
        assert member.members["Confidence"].metadata["min"] <= confidence
        assert confidence <= member.members["Confidence"].metadata["max"]


def _attributes(detail: dict[str, Any]) -> set[str]:
    return set(detail) & set(ATTRIBUTE_MEMBERS.values())


def test_all_returns_the_estimated_attributes(
    rek: Any, image: Image, face_detail_shape: Any
) -> None:
    reply = rek.detect_faces(Image=image("obama.jpg"), Attributes=["ALL"])
    # the access pattern of AWS's examples works for the attributes facegate estimates
    face = reply["FaceDetails"][0]
    assert face["EyesOpen"]["Value"] is True
    assert face["Smile"]["Value"] is True
    assert face["MouthOpen"]["Value"] is True
    assert face["Smile"]["Confidence"] > 90
    _check_shape(face, face_detail_shape)
    assert _attributes(face) == set(ESTIMATED)
    # what is not estimated is omitted, never invented
    assert not set(NOT_ESTIMATED) & set(face)
    assert set(face) >= {"BoundingBox", "Landmarks", "Pose", "Quality", "Confidence"}


@pytest.mark.parametrize("attributes", [None, ["DEFAULT"]])
def test_default_returns_no_attribute(rek: Any, image: Image, attributes: Any) -> None:
    kwargs = {} if attributes is None else {"Attributes": attributes}
    (face,) = rek.detect_faces(Image=image("obama.jpg"), **kwargs)["FaceDetails"]
    assert _attributes(face) == set()
    assert set(face) == {"BoundingBox", "Landmarks", "Pose", "Quality", "Confidence"}


@pytest.mark.parametrize(
    ("attributes", "members"),
    [
        (["SMILE"], {"Smile"}),
        (["DEFAULT", "EYES_OPEN"], {"EyesOpen"}),
        (["MOUTH_OPEN", "EYES_OPEN"], {"MouthOpen", "EyesOpen"}),
        (["ALL", "DEFAULT"], set(ESTIMATED)),
        (["GENDER", "AGE_RANGE", "EMOTIONS"], set()),  # not estimated here: omitted
        (["EYE_DIRECTION", "SMILE"], {"Smile"}),  # iris is off by default: omitted
    ],
)
def test_single_attributes(
    rek: Any, image: Image, attributes: list[str], members: set[str]
) -> None:
    (face,) = rek.detect_faces(Image=image("obama2.jpg"), Attributes=attributes)["FaceDetails"]
    assert _attributes(face) == members


def test_sensible_values_on_real_photos(rek: Any, image: Image) -> None:
    for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "astronaut.png"):
        (face,) = rek.detect_faces(Image=image(name), Attributes=["ALL"])["FaceDetails"]
        assert face["EyesOpen"]["Value"] is True, name
    (astronaut,) = rek.detect_faces(Image=image("astronaut.png"), Attributes=["SMILE"])[
        "FaceDetails"
    ]
    assert astronaut["Smile"]["Value"] is True
    assert astronaut["Smile"]["Confidence"] > 90
    # nobody in these photos wears glasses or a beard, or has the face covered
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg", "astronaut.png"):
        (face,) = rek.detect_faces(Image=image(name), Attributes=["ALL"])["FaceDetails"]
        for member in ("Eyeglasses", "Sunglasses", "Beard", "FaceOccluded"):
            assert face[member]["Value"] is False, (name, member)
            assert face[member]["Confidence"] > 85, (name, member)
    faces = rek.detect_faces(Image=image("two_people.jpg"), Attributes=["ALL"])["FaceDetails"]
    assert len(faces) == 2
    assert all(_attributes(f) == set(ESTIMATED) for f in faces)


def test_index_faces_detection_attributes(rek: Any, image: Image, face_detail_shape: Any) -> None:
    collection = "attrs-" + secrets.token_hex(4)
    rek.create_collection(CollectionId=collection)
    plain = rek.index_faces(CollectionId=collection, Image=image("obama.jpg"))
    assert _attributes(plain["FaceRecords"][0]["FaceDetail"]) == set()
    rich = rek.index_faces(
        CollectionId=collection,
        Image=image("obama2.jpg"),
        DetectionAttributes=["ALL"],
        ExternalImageId="obama2",
    )
    detail = rich["FaceRecords"][0]["FaceDetail"]
    assert detail["EyesOpen"]["Value"] is True
    _check_shape(detail, face_detail_shape)
    assert _attributes(detail) == set(ESTIMATED)
    # attributes are answered, never stored: the stored face has none of them
    (stored,) = [
        f for f in rek.list_faces(CollectionId=collection)["Faces"]
        if f.get("ExternalImageId") == "obama2"
    ]  # fmt: skip
    assert _attributes(stored) == set()


def test_audit_record_names_the_attributes_never_their_values(
    server: LiveServer, rek: Any, image: Image
) -> None:
    reply = rek.detect_faces(Image=image("obama.jpg"), Attributes=["ALL"])
    decision = reply["ResponseMetadata"]["HTTPHeaders"]["x-facegate-decision-id"]
    record = audit_record(server, decision)
    assert record["attributes_requested"] == list(FACE_ATTRIBUTES)
    assert record["attributes_dropped"] == []
    assert set(record["result"]["attributes_inferred"]) == {
        a for a, member in ATTRIBUTE_MEMBERS.items() if member in ESTIMATED
    }
    text = json.dumps(record)
    assert "Confidence" not in text
    assert "Value" not in text
    plain = rek.detect_faces(Image=image("obama.jpg"))
    record = audit_record(
        server, plain["ResponseMetadata"]["HTTPHeaders"]["x-facegate-decision-id"]
    )
    assert record["attributes_requested"] == []
    assert record["result"]["attributes_inferred"] == []


# --- policies over inference --------------------------------------------------------------


@pytest.fixture(scope="module")
def governed(tmp_path_factory: pytest.TempPathFactory, store_env: StoreEnv) -> Iterator[LiveServer]:
    """The packs that govern attributes, with the attribute models on (when set up): what a
    policy drops would otherwise be answered."""
    root = tmp_path_factory.mktemp("attributes-policy")
    live = LiveServer(
        root / "data",
        workers=1,
        env={
            **store_env(),
            **(MODELS_ON if MODELS_READY else {}),
            "FACEGATE_POLICY_PACKS": (
                "amazon-2020-police-moratorium,eu-ai-act-art5,microsoft-limited-access"
            ),
        },
    )
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def employer(governed: LiveServer) -> dict[str, Credentials]:
    return register(governed, "attrs-employer", "commercial", ["access_control"], country="DE")


def _denied(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    return str(error["Message"])


def test_all_is_served_without_the_attributes_policies_drop(
    governed: LiveServer, employer: dict[str, Credentials], image: Image
) -> None:
    client = send_headers(
        governed.client(employer["access_control"]), {"X-Facegate-Setting": "workplace"}
    )
    reply = client.detect_faces(Image=image("obama.jpg"), Attributes=["ALL"])
    (face,) = reply["FaceDetails"]
    # Microsoft retired smile inference with age, gender, emotion and facial hair: dropped
    # before inference; eyes and mouth are not retired, nor is where the eyes look (neither an
    # emotion for the EU AI Act nor a Microsoft-retired capability)
    gaze = {"EyeDirection"} if MODELS_READY else set()
    assert (
        _attributes(face)
        == {
            "EyesOpen",
            "MouthOpen",
            "Eyeglasses",
            "Sunglasses",
            "FaceOccluded",
        }
        | gaze
    )
    record = audit_record(
        governed, reply["ResponseMetadata"]["HTTPHeaders"]["x-facegate-decision-id"]
    )
    assert record["attributes_dropped"] == [
        "AGE_RANGE", "BEARD", "EMOTIONS", "GENDER", "MUSTACHE", "SMILE"
    ]  # fmt: skip
    assert record["obligations"]["drop_attributes"] == record["attributes_dropped"]
    assert set(record["result"]["attributes_inferred"]) == {
        "EYEGLASSES", "EYES_OPEN", "FACE_OCCLUDED", "MOUTH_OPEN", "SUNGLASSES"
    } | ({"EYE_DIRECTION"} if MODELS_READY else set())  # fmt: skip
    assert "microsoft-limited-access.permit-without-limited-attributes" in record["policy_ids"]
    assert "eu-ai-act-art5.permit-without-emotions-workplace-education" in record["policy_ids"]


def test_naming_a_prohibited_attribute_is_refused_with_the_reason(
    governed: LiveServer, employer: dict[str, Credentials], image: Image
) -> None:
    client = send_headers(
        governed.client(employer["access_control"]), {"X-Facegate-Setting": "workplace"}
    )
    message = _denied(
        lambda: client.detect_faces(Image=image("obama.jpg"), Attributes=["EMOTIONS"])
    )
    assert "Art. 5(1)(f)" in message
    message = _denied(lambda: client.detect_faces(Image=image("obama.jpg"), Attributes=["SMILE"]))
    assert "SMILE" in message
    collection = "attrs-" + secrets.token_hex(4)
    client.create_collection(CollectionId=collection)
    _denied(
        lambda: client.index_faces(
            CollectionId=collection, Image=image("obama.jpg"), DetectionAttributes=["GENDER"]
        )
    )
    assert client.list_faces(CollectionId=collection)["Faces"] == []  # refused before any write
    (face,) = client.detect_faces(Image=image("obama.jpg"), Attributes=["EYES_OPEN"])["FaceDetails"]
    assert face["EyesOpen"]["Value"] is True
    # naming EYE_DIRECTION in a workplace is not refused (it is not emotion recognition)
    (face,) = client.detect_faces(Image=image("obama.jpg"), Attributes=["EYE_DIRECTION"])[
        "FaceDetails"
    ]
    assert _attributes(face) == ({"EyeDirection"} if MODELS_READY else set())


def test_an_unknown_setting_is_refused(
    governed: LiveServer, employer: dict[str, Credentials], image: Image
) -> None:
    client = send_headers(
        governed.client(employer["access_control"]), {"X-Facegate-Setting": "office"}
    )
    with pytest.raises(ClientError) as info:
        client.detect_faces(Image=image("obama.jpg"))
    assert info.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "X-Facegate-Setting" in info.value.response["Error"]["Message"]


def test_accessibility_gets_age_but_never_gender_or_emotions(
    governed: LiveServer, image: Image
) -> None:
    keys = register(governed, "attrs-assist", "commercial", ["accessibility"], country="DE")
    client = send_headers(
        governed.client(keys["accessibility"]),
        {"X-Facegate-Setting": "public", "X-Facegate-Purpose": "accessibility"},
    )
    reply = client.detect_faces(Image=image("obama.jpg"), Attributes=["ALL"])
    (face,) = reply["FaceDetails"]
    # Microsoft limits age, smile and facial hair to accessibility: kept; gender and emotion
    # are retired for every use: dropped before inference
    expected = set(ESTIMATED) | ({"AgeRange", "EyeDirection"} if MODELS_READY else set())
    assert _attributes(face) == expected
    record = audit_record(
        governed, reply["ResponseMetadata"]["HTTPHeaders"]["x-facegate-decision-id"]
    )
    assert record["attributes_dropped"] == ["EMOTIONS", "GENDER"]
    message = _denied(lambda: client.detect_faces(Image=image("obama.jpg"), Attributes=["GENDER"]))
    assert "GENDER" in message
    if MODELS_READY:
        (aged,) = client.detect_faces(Image=image("biden.jpg"), Attributes=["AGE_RANGE"])[
            "FaceDetails"
        ]
        assert _attributes(aged) == {"AgeRange"}


# --- the model-backed attributes (FACEGATE_ATTRIBUTE_MODELS) --------------------------------


@pytest.fixture(scope="module")
def modeled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if not MODELS_READY:
        pytest.skip("the converted face models are not set up (python3 tools/dev.py)")
    live = LiveServer(tmp_path_factory.mktemp("attributes-models") / "data", workers=1,
                      env=MODELS_ON)  # fmt: skip
    live.start()
    yield live
    live.stop()


def _check_model_shapes(detail: dict[str, Any], shape: Any) -> None:
    """AgeRange, Gender and Emotions have botocore's members, types, enums and ranges."""
    members = shape.members
    age = detail["AgeRange"]
    assert set(age) == set(members["AgeRange"].members) == {"Low", "High"}
    assert all(isinstance(age[k], int) for k in ("Low", "High"))
    assert 0 <= age["Low"] <= age["High"] <= 150
    gender = detail["Gender"]
    assert set(gender) == set(members["Gender"].members) == {"Value", "Confidence"}
    assert gender["Value"] in members["Gender"].members["Value"].enum
    assert 50.0 <= gender["Confidence"] <= 100.0
    emotion_shape = members["Emotions"].member
    types = [e["Type"] for e in detail["Emotions"]]
    assert set(types) <= set(emotion_shape.members["Type"].enum)
    assert len(types) == len(set(types)) == 7
    assert "CONFUSED" not in types  # no source for it: left out, not a made-up 0
    confidences = [e["Confidence"] for e in detail["Emotions"]]
    assert confidences == sorted(confidences, reverse=True)  # Emotions[0] is the top one
    assert all(0.0 <= c <= 100.0 for c in confidences)
    assert sum(confidences) == pytest.approx(100.0, abs=0.01)
    gaze = detail["EyeDirection"]
    gaze_shape = members["EyeDirection"].members
    assert set(gaze) == set(gaze_shape) == {"Yaw", "Pitch", "Confidence"}
    for key in ("Yaw", "Pitch", "Confidence"):
        assert isinstance(gaze[key], float)
        assert gaze_shape[key].metadata["min"] <= gaze[key] <= gaze_shape[key].metadata["max"]


@needs_models
def test_models_on_aws_example_access_pattern(
    modeled: LiveServer, image: Image, face_detail_shape: Any
) -> None:
    rek = modeled.client()
    response = rek.detect_faces(Image=image("obama.jpg"), Attributes=["ALL"])
    # as in AWS's DetectFaces examples
    for face_detail in response["FaceDetails"]:
        low, high = face_detail["AgeRange"]["Low"], face_detail["AgeRange"]["High"]
        assert (low, high) == (37, 51)  # Obama was 47-51 when photographed
        assert face_detail["Gender"]["Value"] == "Male"
        assert face_detail["Emotions"][0]["Type"] == "HAPPY"
        assert face_detail["Smile"]["Value"] is True
        _check_shape(face_detail, face_detail_shape)
        _check_model_shapes(face_detail, face_detail_shape)
        assert _attributes(face_detail) == set(ESTIMATED) | set(MODEL_MEMBERS)
        # an official portrait, looking into the camera: the eyes turn against the head, so
        # their direction in the camera's frame (EyeDirection + Pose) is near 0
        gaze, pose = face_detail["EyeDirection"], face_detail["Pose"]
        assert abs(gaze["Yaw"] + pose["Yaw"]) < 10
        assert abs(gaze["Pitch"] + pose["Pitch"]) < 15
    (biden,) = rek.detect_faces(Image=image("biden.jpg"), Attributes=["AGE_RANGE", "GENDER"])[
        "FaceDetails"
    ]
    assert _attributes(biden) == {"AgeRange", "Gender"}
    assert biden["AgeRange"]["Low"] <= 70
    assert biden["AgeRange"]["High"] >= 66
    (astronaut,) = rek.detect_faces(Image=image("astronaut.png"), Attributes=["GENDER"])[
        "FaceDetails"
    ]
    assert astronaut["Gender"]["Value"] == "Female"
    (plain,) = rek.detect_faces(Image=image("obama.jpg"))["FaceDetails"]
    assert _attributes(plain) == set()  # DEFAULT: nothing inferred


def _aws_style_report(rek: Any, photo: bytes) -> list[str]:
    """What client code written for Rekognition does with DetectFaces ALL, unchanged: AWS's
    DetectFaces example prints ``AgeRange['Low']``-``['High']`` and the gender; an AWS
    identity-verification sample checks ``face['Sunglasses']`` before accepting a selfie; gaze
    code reads ``EyeDirection['Yaw']``. Any missing member raises KeyError, as it did before
    the attributes existed."""
    lines = []
    for face in rek.detect_faces(Image={"Bytes": photo}, Attributes=["ALL"])["FaceDetails"]:
        lines.append(
            f"between {face['AgeRange']['Low']} and {face['AgeRange']['High']} years old, "
            f"{face['Gender']['Value']}, sunglasses: {face['Sunglasses']['Value']}, "
            f"eyes: yaw {face['EyeDirection']['Yaw']:.0f} pitch {face['EyeDirection']['Pitch']:.0f}"
        )
    return lines


@needs_models
def test_models_on_aws_example_code_runs_unchanged(modeled: LiveServer, image: Image) -> None:
    rek = modeled.client()
    for name, decade in (("obama.jpg", 4), ("biden.jpg", 6)):
        (line,) = _aws_style_report(rek, image(name)["Bytes"])
        low, high = (int(w) for w in line.split(" years old")[0].split()[1::2])
        assert low <= 10 * decade + 9  # Obama 47-51, Biden 66-70 when photographed
        assert high >= 10 * decade
        assert ", Male, sunglasses: False, eyes: yaw " in line
    lines = _aws_style_report(rek, image("two_people.jpg")["Bytes"])
    assert len(lines) == 2
    assert all("sunglasses: False" in line for line in lines)


@needs_models
def test_models_on_index_faces_answers_and_stores_nothing(
    modeled: LiveServer, image: Image
) -> None:
    rek = modeled.client()
    collection = "attrs-" + secrets.token_hex(4)
    rek.create_collection(CollectionId=collection)
    reply = rek.index_faces(
        CollectionId=collection, Image=image("biden.jpg"), DetectionAttributes=["ALL"]
    )
    detail = reply["FaceRecords"][0]["FaceDetail"]
    assert detail["Gender"]["Value"] == "Male"
    assert _attributes(detail) >= set(MODEL_MEMBERS)
    (stored,) = rek.list_faces(CollectionId=collection)["Faces"]
    assert _attributes(stored) == set()
    record = audit_record(
        modeled, reply["ResponseMetadata"]["HTTPHeaders"]["x-facegate-decision-id"]
    )
    assert {"AGE_RANGE", "GENDER", "EMOTIONS"} <= set(record["result"]["attributes_inferred"])
    assert "Male" not in json.dumps(record)  # names, never values


@needs_models
def test_models_on_transparency_says_which_and_why(modeled: LiveServer) -> None:
    doc = httpx.get(modeled.endpoint + "/transparency?format=json").json()["attributes"]
    estimated = {a["attribute"]: a for a in doc["estimated"]}
    assert {"AGE_RANGE", "GENDER", "EMOTIONS"} <= set(estimated)
    assert estimated["GENDER"]["version"].startswith("faceres-")
    models = doc["face_models"]
    assert models["enabled"] == ["emotion", "faceres", "iris"]
    assert "terms" in models["why_off_by_default"]
    assert {m["name"]: m["attributes"] for m in models["models"]} == {
        "emotion": ["EMOTIONS"], "faceres": ["AGE_RANGE", "GENDER"], "iris": ["EYE_DIRECTION"]
    }  # fmt: skip
    assert estimated["EYE_DIRECTION"]["version"].startswith("iris-")
    assert "held_out" in estimated["EYE_DIRECTION"]["measured"]


def test_models_off_by_default_on_the_transparency_page(server: LiveServer) -> None:
    doc = httpx.get(server.endpoint + "/transparency?format=json").json()["attributes"]
    assert doc["face_models"]["enabled"] == []
    assert {"AGE_RANGE", "GENDER", "EMOTIONS", "EYE_DIRECTION"} <= set(doc["not_estimated"])
