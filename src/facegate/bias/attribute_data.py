"""Faces for fitting and measuring the attribute classifiers: one aligned chip, descriptor and
68 landmarks per labelled image, and the labels that go with them.

For each image the engine's default detector chain runs and the face whose box centre is nearest
the image centre is kept (LFW's subject, as in bench/lfw.py). Its aligned 150x150 chip is the one
the descriptor network sees (``engine.align``), so the classifiers read exactly what the server
computes. Images where no face is found are counted, not silently dropped.

Labels come from CSV files with an ``image`` column (path relative to the data folder) and one
column per attribute holding ``1``, ``0`` or empty (not labelled); see
``bench/labels/lfw_attributes/README.md`` for the files this project uses and their sources.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facegate.engine.align import CHIP_SIZE_PX, face_chip
from facegate.engine.core import FaceEngine
from facegate.engine.landmarks import shape_points
from facegate.engine.types import DetectedFace
from facegate.errors import FacegateError

EXTRACT_FORMAT = "attribute-faces-v1"


@dataclass(frozen=True)
class FaceSet:
    """Aligned faces of a list of images, row ``i`` for ``paths[i]``.

    ``found[i]`` is False where no face was found (the arrays then hold zeros there).
    ``chips``: (n, 150, 150, 3) uint8; ``descriptors``: (n, 128) float32; ``points68``:
    (n, 68, 2) float32 in the image's pixels.
    """

    paths: tuple[str, ...]
    found: npt.NDArray[np.bool_]
    chips: npt.NDArray[np.uint8]
    descriptors: npt.NDArray[np.float32]
    points68: npt.NDArray[np.float32]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            format=np.array(EXTRACT_FORMAT),
            paths=np.array(self.paths),
            found=self.found,
            chips=self.chips,
            descriptors=self.descriptors,
            points68=self.points68,
        )

    @classmethod
    def load(cls, path: Path) -> FaceSet:
        with np.load(path) as data:
            if str(data["format"]) != EXTRACT_FORMAT:
                raise ValueError(f"{path}: not a {EXTRACT_FORMAT} file")
            return cls(
                paths=tuple(str(p) for p in data["paths"]),
                found=data["found"].astype(bool),
                chips=data["chips"].astype(np.uint8),
                descriptors=data["descriptors"].astype(np.float32),
                points68=data["points68"].astype(np.float32),
            )

    def subset(self, rows: Sequence[int]) -> FaceSet:
        idx = np.asarray(rows, dtype=np.int64)
        return FaceSet(
            paths=tuple(self.paths[i] for i in idx),
            found=self.found[idx],
            chips=self.chips[idx],
            descriptors=self.descriptors[idx],
            points68=self.points68[idx],
        )


def central_face(faces: Sequence[DetectedFace], width_px: int, height_px: int) -> int | None:
    """Index of the face whose box centre is nearest the image centre (None: no face)."""
    if not faces:
        return None

    def offset(i: int) -> float:
        box = faces[i].box_px
        return math.hypot(
            box.left + box.width / 2 - width_px / 2, box.top + box.height / 2 - height_px / 2
        )

    return min(range(len(faces)), key=offset)


def extract_faces(
    root: Path,
    paths: Sequence[str],
    engine: FaceEngine,
    progress: Callable[[int], None] | None = None,
) -> FaceSet:
    """Chip, descriptor and 68 points of the central face of each ``root / path``.

    One engine, one process: deterministic, and the same chips the server aligns.
    """
    n = len(paths)
    found = np.zeros(n, dtype=bool)
    chips = np.zeros((n, CHIP_SIZE_PX, CHIP_SIZE_PX, 3), dtype=np.uint8)
    descriptors = np.zeros((n, 128), dtype=np.float32)
    points68 = np.zeros((n, 68, 2), dtype=np.float32)
    for i, rel in enumerate(paths):
        if progress is not None:
            progress(i)
        try:
            image = engine.decode((root / rel).read_bytes())
        except (OSError, FacegateError):
            continue
        faces = engine.detect(image)
        pick = central_face(faces, image.width_px, image.height_px)
        if pick is None:
            continue
        # LFW-sized images are never reduced by the decoder, so the detected face's box and
        # points are in image.pixels' coordinates.
        face = faces[pick]
        chip = face_chip(image.pixels, face.box_px, face.points5_px)
        _, pts = shape_points(engine.models.shape_68, image.pixels, face.box_px)
        chips[i] = chip
        descriptors[i] = engine.embedder.embed([chip])[0]
        points68[i] = pts
        found[i] = True
    return FaceSet(tuple(paths), found, chips, descriptors, points68)


def cache_key(paths: Iterable[str], model_version: str) -> str:
    """A short digest of the image list, the descriptor model and this module's format."""
    digest = hashlib.sha256()
    for part in (EXTRACT_FORMAT, model_version, *paths):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class LabelTable:
    """Per-image labels: ``values[attribute][image]`` is True or False; missing = unlabelled."""

    values: dict[str, dict[str, bool]]

    def images(self) -> tuple[str, ...]:
        return tuple(sorted({img for col in self.values.values() for img in col}))


def read_labels(path: Path, attributes: Sequence[str] | None = None) -> LabelTable:
    """Read a label CSV (``image`` column plus one 1/0/empty column per attribute)."""
    values: dict[str, dict[str, bool]] = {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "image" not in reader.fieldnames:
            raise ValueError(f"{path}: needs an 'image' column")
        names = [c for c in reader.fieldnames if c != "image"]
        if attributes is not None:
            names = [c for c in names if c in attributes]
        for name in names:
            values[name] = {}
        for row in reader:
            for name in names:
                cell = (row.get(name) or "").strip()
                if cell in ("1", "0"):
                    values[name][row["image"]] = cell == "1"
                elif cell:
                    raise ValueError(f"{path}: {row['image']}: {name} must be 1, 0 or empty")
    return LabelTable(values)


def merge_labels(tables: Sequence[LabelTable]) -> LabelTable:
    """Union of label tables; a later table's label for the same image and attribute wins."""
    merged: dict[str, dict[str, bool]] = {}
    for table in tables:
        for name, column in table.values.items():
            merged.setdefault(name, {}).update(column)
    return LabelTable(merged)


def lfw_identity(path: str) -> str:
    """The LFW identity of ``<Name>/<Name>_NNNN.jpg``."""
    return path.split("/", 1)[0]
