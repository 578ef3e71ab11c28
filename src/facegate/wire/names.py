"""Rekognition's PascalCase member names <-> facegate's snake_case names, at the edge only.

Requests: ``pascal_to_snake`` turns validated request members into keyword arguments of the ops'
request dataclasses (``FaceMatchThreshold`` -> ``face_match_threshold``).

Responses: ops return frozen dataclasses whose field names carry units (``similarity_pct``,
``box_ratio``); ``to_wire`` walks them and names each field by ``RESPONSE_NAMES`` or, failing that,
by the PascalCase of the snake name. Fields that are ``None`` are omitted, as Rekognition omits
absent members.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")

RESPONSE_NAMES: Mapping[str, str] = {
    "similarity_pct": "Similarity",
    "confidence_pct": "Confidence",
    "brightness_pct": "Brightness",
    "sharpness_pct": "Sharpness",
    "roll_deg": "Roll",
    "yaw_deg": "Yaw",
    "pitch_deg": "Pitch",
    "box_ratio": "BoundingBox",
    "left_ratio": "Left",
    "top_ratio": "Top",
    "width_ratio": "Width",
    "height_ratio": "Height",
    "x_ratio": "X",
    "y_ratio": "Y",
    "type_name": "Type",
    "collection_arn_upper": "CollectionARN",
    "searched_face_confidence_pct": "SearchedFaceConfidence",
    "searched_face_box_ratio": "SearchedFaceBoundingBox",
    "source_image_face": "SourceImageFace",
    "face_model_version": "FaceModelVersion",
    "index_faces_model_version": "IndexFacesModelVersion",
    "low_years": "Low",
    "high_years": "High",
}


def pascal_to_snake(name: str) -> str:
    """``MaxFaces`` -> ``max_faces``, ``CollectionARN`` -> ``collection_arn``."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def snake_to_pascal(name: str) -> str:
    """``face_match_threshold`` -> ``FaceMatchThreshold`` (aliases in RESPONSE_NAMES win)."""
    alias = RESPONSE_NAMES.get(name)
    if alias is not None:
        return alias
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


# Request members that are structures whose member names are converted too. Maps (``Tags``) keep
# their keys: those are the caller's data, not Rekognition names.
_STRUCTURE_MEMBERS = frozenset({"Image", "SourceImage", "TargetImage", "S3Object"})


def request_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    """Request members as snake_case names; image structures are converted recursively."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in _STRUCTURE_MEMBERS and isinstance(value, Mapping):
            value = request_kwargs(value)
        out[pascal_to_snake(key)] = value
    return out


def to_wire(value: Any) -> Any:
    """A response dataclass (or list/dict/enum/scalar) as JSON-ready Rekognition members."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if item is None:
                continue
            out[snake_to_pascal(field.name)] = to_wire(item)
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    return value
