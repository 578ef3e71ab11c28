"""The facial attribute vocabulary (issue 21): Rekognition's, closed, and free of the
categories of EU AI Act Art. 5(1)(g); Rekognition's rules for combining DEFAULT and ALL."""

from __future__ import annotations

import botocore.session
import pytest

from facegate.engine.attributes.types import Attribute, FaceAttributes
from facegate.operations import (
    ATTRIBUTE_MEMBERS,
    FACE_ATTRIBUTES,
    OPERATIONS,
    named_attributes,
    requested_attributes,
)
from facegate.ops.types import FaceDetail
from facegate.wire.names import snake_to_pascal


def _model() -> botocore.model.ServiceModel:
    return botocore.session.get_session().get_service_model("rekognition")


def test_attributes_are_rekognitions() -> None:
    enum = _model().shape_for("Attribute").enum
    assert set(FACE_ATTRIBUTES) == set(enum) - {"DEFAULT", "ALL"}
    assert {a.value for a in Attribute} == set(FACE_ATTRIBUTES)
    members = _model().shape_for("FaceDetail").members
    assert set(ATTRIBUTE_MEMBERS) == set(FACE_ATTRIBUTES)
    assert set(ATTRIBUTE_MEMBERS.values()) <= set(members)
    # the engine's fields and the response's members are named alike
    for attribute in FACE_ATTRIBUTES:
        assert hasattr(FaceAttributes(), attribute.lower())
        assert snake_to_pascal(attribute.lower()) == ATTRIBUTE_MEMBERS[attribute]


def test_face_detail_members_in_botocores_order() -> None:
    members = list(_model().shape_for("FaceDetail").members)
    ours = [snake_to_pascal(f) for f in FaceDetail.__dataclass_fields__]
    assert ours == members


def test_no_attribute_is_a_sensitive_category() -> None:
    """EU AI Act Art. 5(1)(g): race, political opinions, trade-union membership, religious or
    philosophical beliefs, sex life or sexual orientation. None can be asked for."""
    sensitive = ("RACE", "ETHNIC", "RELIGIO", "POLITIC", "UNION", "SEXUAL", "ORIENTATION")
    for attribute in FACE_ATTRIBUTES:
        assert not any(word in attribute for word in sensitive), attribute


@pytest.mark.parametrize(
    ("given", "requested", "named"),
    [
        (None, set(), set()),
        ([], set(), set()),
        (["DEFAULT"], set(), set()),
        (["ALL"], set(FACE_ATTRIBUTES), set()),
        (["ALL", "DEFAULT"], set(FACE_ATTRIBUTES), set()),
        (["DEFAULT", "FACE_OCCLUDED"], {"FACE_OCCLUDED"}, {"FACE_OCCLUDED"}),
        (["FACE_OCCLUDED"], {"FACE_OCCLUDED"}, {"FACE_OCCLUDED"}),
        (["ALL", "EMOTIONS"], set(FACE_ATTRIBUTES), {"EMOTIONS"}),
        (["SMILE", "SMILE"], {"SMILE"}, {"SMILE"}),
    ],
)
def test_rekognitions_combination_rules(
    given: object, requested: set[str], named: set[str]
) -> None:
    assert requested_attributes(given) == requested
    assert named_attributes(given) == named


def test_operations_with_attributes() -> None:
    with_param = {n: op.attributes_param for n, op in OPERATIONS.items() if op.attributes_param}
    assert with_param == {"DetectFaces": "attributes", "IndexFaces": "detection_attributes"}
    model = _model()
    for name, param in with_param.items():
        members = model.operation_model(name).input_shape.members
        wire = snake_to_pascal(param)
        assert wire in members
        assert members[wire].member.name == "Attribute"
