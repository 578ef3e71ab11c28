"""Faces for store tests: deterministic records and descriptors from one number."""

from __future__ import annotations

import uuid

import numpy as np

from facegate.store.records import FaceRecord, NewFace
from facegate.store.vectors import DIM


def face_id(i: int) -> str:
    """The FaceId of :func:`new_face` number ``i``."""
    return str(uuid.UUID(int=i + 1))


def new_face(
    collection_uid: str,
    i: int,
    *,
    user: str | None = None,
    consent_ref: str | None = None,
    retain_until: float | None = None,
) -> NewFace:
    """Face number ``i``: ids, hash and descriptor all derived from ``i`` (seeded). The store
    files it under the collection given to ``add_faces``, whatever ``collection_uid`` says."""
    return NewFace(
        record=FaceRecord(
            face_id=face_id(i),
            collection_uid=collection_uid,
            image_id=str(uuid.UUID(int=10_000 + i)),
            image_sha256=f"{i:064x}",
            external_image_id=f"img-{i}",
            box_left_ratio=0.1,
            box_top_ratio=0.2,
            box_width_ratio=0.3,
            box_height_ratio=0.4,
            confidence_pct=99.5,
            model_version="dlib-resnet-v1",
            user_id=user,
            indexed_at=1.0,
            consent_ref=consent_ref,
            retain_until=retain_until,
        ),
        descriptor=np.random.default_rng(i).normal(0, 0.1, DIM).astype(np.float32),
    )
