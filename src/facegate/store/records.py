"""Rows of the store as frozen dataclasses (snake_case, units in names)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class CollectionRecord:
    """A collection: its id, ARN, the model that made its vectors, index kind, creation time,
    owner and identity.

    ``collection_id`` is the name the owner gave it, unique only within ``org_id`` (two
    organisations may each hold a collection "staff"); ``uid`` is its internal identity,
    immutable and never reused (a collection deleted and created again under the same id has a
    new one). Faces, users and tags belong to the ``uid``; the store's methods take the record
    and check, inside each write transaction, that the collection with this ``uid`` and owner
    still exists, so a write resolved before a deletion never lands in a successor. The uid is
    internal: it never appears in a response or an error message.

    ``descriptor_space`` is the geometry of its vectors (``facegate.vectorspace``: length and
    metric, ``euclidean:128`` for dlib's model), fixed with its model at creation (migration
    12); the store checks every vector written against it.
    """

    collection_id: str
    arn: str
    face_model_version: str
    index_kind: str
    created_at: float
    org_id: str = ""
    uid: str = ""
    descriptor_space: str = "euclidean:128"


@dataclass(frozen=True)
class FaceRecord:
    """A stored face. ``box_*_ratio`` are Rekognition BoundingBox values of the source image."""

    face_id: str
    collection_uid: str  # the collection's identity (CollectionRecord.uid), not its id
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

    collection_uid: str  # the collection's identity (CollectionRecord.uid)
    user_id: str
    status: str
    created_at: float


@dataclass(frozen=True)
class SweptFace:
    """A face deleted by the retention sweep, with the id and owner its collection had then."""

    face: FaceRecord
    collection_id: str
    org_id: str


REKOGNITION_MAX_FACES_PER_COLLECTION = 20_000_000
REKOGNITION_MAX_FACES_PER_USER = 100
REKOGNITION_MAX_TAGS = 200


@dataclass(frozen=True)
class StoreLimits:
    """Quotas; Rekognition's by default. Tests lower them to exercise the errors."""

    max_faces_per_collection: int = REKOGNITION_MAX_FACES_PER_COLLECTION
    max_faces_per_user: int = REKOGNITION_MAX_FACES_PER_USER
    max_tags: int = REKOGNITION_MAX_TAGS
