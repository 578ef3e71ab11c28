"""Rows of the store as frozen dataclasses (snake_case, units in names)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class CollectionRecord:
    """A collection: its id, ARN, the model that made its vectors, index kind, creation time."""

    collection_id: str
    arn: str
    face_model_version: str
    index_kind: str
    created_at: float
    org_id: str = ""


@dataclass(frozen=True)
class FaceRecord:
    """A stored face. ``box_*_ratio`` are Rekognition BoundingBox values of the source image."""

    face_id: str
    collection_id: str
    image_id: str
    image_sha256: str
    external_image_id: str | None
    box_left_ratio: float
    box_top_ratio: float
    box_width_ratio: float
    box_height_ratio: float
    confidence_pct: float
    model_version: str
    user_id: str | None
    indexed_at: float
    consent_ref: str | None = None
    retain_until: float | None = None


@dataclass(frozen=True)
class NewFace:
    """A face about to be stored (the record plus its descriptor)."""

    record: FaceRecord
    descriptor: npt.NDArray[np.float32]


@dataclass(frozen=True)
class UserRecord:
    """A user of a collection: an identity that aggregates up to 100 faces."""

    collection_id: str
    user_id: str
    status: str
    created_at: float
