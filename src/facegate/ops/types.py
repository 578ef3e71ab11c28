"""Response building blocks shared by the operations (Rekognition shapes, snake_case fields).

Field order follows botocore's service model so encoded JSON reads like Rekognition's. Field names
carry units; ``wire.names.to_wire`` renames them (``similarity_pct`` -> ``Similarity``).
"""

from __future__ import annotations

from dataclasses import dataclass

from facegate.engine.attributes.types import (
    AgeRange,
    Emotion,
    EyeDirection,
    FaceAttributes,
    Flag,
    Gender,
)
from facegate.engine.types import DetectedFace
from facegate.store.records import FaceRecord


@dataclass(frozen=True)
class BoundingBox:
    width_ratio: float
    height_ratio: float
    left_ratio: float
    top_ratio: float


@dataclass(frozen=True)
class Landmark:
    type_name: str
    x_ratio: float
    y_ratio: float


@dataclass(frozen=True)
class PoseOut:
    roll_deg: float
    yaw_deg: float
    pitch_deg: float


@dataclass(frozen=True)
class QualityOut:
    brightness_pct: float
    sharpness_pct: float


@dataclass(frozen=True)
class FaceDetail:
    """Rekognition ``FaceDetail``: the default members, and the facial attributes the request
    asked for that the engine estimates (None, hence omitted on the wire, otherwise: never a
    made-up value). Members in botocore's order."""

    box_ratio: BoundingBox
    age_range: AgeRange | None = None
    smile: Flag | None = None
    eyeglasses: Flag | None = None
    sunglasses: Flag | None = None
    gender: Gender | None = None
    beard: Flag | None = None
    mustache: Flag | None = None
    eyes_open: Flag | None = None
    mouth_open: Flag | None = None
    emotions: tuple[Emotion, ...] | None = None
    landmarks: tuple[Landmark, ...] = ()
    pose: PoseOut | None = None
    quality: QualityOut | None = None
    confidence_pct: float | None = None
    face_occluded: Flag | None = None
    eye_direction: EyeDirection | None = None


@dataclass(frozen=True)
class ComparedFace:
    """Rekognition ``ComparedFace`` (CompareFaces)."""

    box_ratio: BoundingBox
    confidence_pct: float
    landmarks: tuple[Landmark, ...]
    pose: PoseOut
    quality: QualityOut


@dataclass(frozen=True)
class StoredFace:
    """Rekognition ``Face``: a face stored in a collection."""

    face_id: str
    box_ratio: BoundingBox
    image_id: str
    external_image_id: str | None
    confidence_pct: float
    index_faces_model_version: str
    user_id: str | None


@dataclass(frozen=True)
class FaceMatch:
    similarity_pct: float
    face: StoredFace


def bounding_box(face: DetectedFace) -> BoundingBox:
    b = face.box_ratio
    return BoundingBox(
        width_ratio=b.width, height_ratio=b.height, left_ratio=b.left, top_ratio=b.top
    )


def face_detail(face: DetectedFace) -> FaceDetail:
    """The face's ``FaceDetail``, with the attributes the engine estimated for it."""
    a = face.attributes or FaceAttributes()
    return FaceDetail(
        box_ratio=bounding_box(face),
        age_range=a.age_range,
        smile=a.smile,
        eyeglasses=a.eyeglasses,
        sunglasses=a.sunglasses,
        gender=a.gender,
        beard=a.beard,
        mustache=a.mustache,
        eyes_open=a.eyes_open,
        mouth_open=a.mouth_open,
        emotions=a.emotions,
        landmarks=tuple(Landmark(m.name, m.x_ratio, m.y_ratio) for m in face.landmarks),
        pose=PoseOut(face.pose.roll_deg, face.pose.yaw_deg, face.pose.pitch_deg),
        quality=QualityOut(face.quality.brightness_pct, face.quality.sharpness_pct),
        confidence_pct=face.confidence_pct,
        face_occluded=a.face_occluded,
        eye_direction=a.eye_direction,
    )


def compared_face(face: DetectedFace) -> ComparedFace:
    b = face
    return ComparedFace(
        bounding_box(b),
        b.confidence_pct,
        tuple(Landmark(m.name, m.x_ratio, m.y_ratio) for m in b.landmarks),
        PoseOut(b.pose.roll_deg, b.pose.yaw_deg, b.pose.pitch_deg),
        QualityOut(b.quality.brightness_pct, b.quality.sharpness_pct),
    )


def stored_face(record: FaceRecord) -> StoredFace:
    return StoredFace(
        face_id=record.face_id,
        box_ratio=BoundingBox(
            width_ratio=record.box_width_ratio,
            height_ratio=record.box_height_ratio,
            left_ratio=record.box_left_ratio,
            top_ratio=record.box_top_ratio,
        ),
        image_id=record.image_id,
        external_image_id=record.external_image_id,
        confidence_pct=record.confidence_pct,
        index_faces_model_version=record.model_version,
        user_id=record.user_id,
    )
