"""Real fused descriptors for the index tests: the engine's fused-dlib-faceres-v1 vectors of
LFW images (every 97th of the sorted list, so many people), computed once per test session."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.descriptors import FUSED_DLIB_FACERES_V1
from facegate.engine.human_models import default_models_dir
from tests.conftest import SHARED_DATA

needs_faceres = pytest.mark.skipif(
    not (default_models_dir() / "faceres.onnx").is_file(), reason="faceres is not converted"
)


@cache
def fused_gallery(images: int = 60) -> np.ndarray:
    """``(faces, 1152)`` float32: the fused vector of the largest face of up to ``images`` LFW
    images (fewer where no face is found)."""
    engine = FaceEngine(EngineConfig())
    paths = sorted((SHARED_DATA / "lfw" / "images").rglob("*.jpg"))[::97][:images]
    rows = []
    for path in paths:
        faces = engine.analyze(path.read_bytes(), max_faces=1, model=FUSED_DLIB_FACERES_V1).faces
        if faces and faces[0].descriptor is not None:
            rows.append(np.asarray(faces[0].descriptor, dtype=np.float32))
    out = np.stack(rows)
    out.flags.writeable = False
    return out
