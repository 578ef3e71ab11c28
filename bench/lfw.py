"""LFW View 2 face verification: the standard 10-fold protocol, four engine variants.

Run from the project root::

    .venv/bin/python bench/lfw.py                                   # full View 2 (6,000 pairs)
    .venv/bin/python bench/lfw.py --limit-folds 2 --pairs-per-fold 20   # smoke run, ~1 minute
    .venv/bin/python bench/lfw.py --data /elsewhere/lfw --workers 4

Data: ``pairs.txt`` (View 2: 10 folds x 300 mated + 300 non-mated pairs) and the original,
unaligned 250x250 images under ``images/<Name>/<Name>_NNNN.jpg``; by default
``<project>/../shared/data/lfw`` (Huang et al., "Labeled Faces in the Wild", UMass 2007).

Descriptor pass (``--workers`` spawned processes, one ``FaceEngine`` each, loaded once): for every
distinct image, HOG detection; the face whose box centre is nearest the image centre (LFW's
subject); the descriptor of its aligned chip and of the mirrored chip, so flip test-time
augmentation (the mean of the two) costs no second detection. When HOG finds no face, MMOD runs
as a fallback and its descriptor is kept apart, so "HOG only" and "HOG + MMOD fallback" are both
measured from one pass. Results are cached in ``bench/results/cache/lfw-<key>.npz`` (key: engine
configuration, dlib version, model file digests; entries by image path), so a re-run takes
seconds; an interrupted pass resumes.

Measured per variant (raw or flip-TTA descriptor x HOG only or HOG + MMOD fallback):

* 10-fold accuracy: for each fold, the Euclidean distance threshold that maximises accuracy on the
  other nine folds decides the held-out fold; mean and sample standard deviation over folds.
  A pair with an image where no face was found is counted as an error, never dropped;
* accuracy at dlib's customary fixed threshold 0.6 (no fitting; failures are errors);
* ROC AUC over all pairs, a pair without a face getting the worst score for its label;
* TAR at FAR = 1e-3: threshold below the 4th-smallest of 3,000 non-mated distances. Here a
  missing face is a rejection (ISO/IEC 19795-1 "generalised" rates): it lowers TAR for mated
  pairs and cannot cause a false accept;
* images and pairs affected by failure to detect.

Prints the machine, the descriptor pass's wall time and a table; writes bench/results/lfw.json
(full protocol only, or ``--json PATH``). Reference: dlib reports 99.38% for this descriptor with
100 jittered copies per face and 99.13% without jitter (dlib's python_examples/face_recognition.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dlib
import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from benchlib import RESULTS, ROOT, machine_info, machine_line, write_results
from facegate.engine.align import face_chip
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.image import DecodedImage, RGBImage
from facegate.engine.models import ModelFiles
from facegate.engine.types import DetectedFace, DetectorKind
from facegate.errors import FacegateError

PUBLISHED_ACCURACY = 0.9938
"""dlib's LFW figure for dlib_face_recognition_resnet_model_v1, averaging 100 jittered copies."""
PUBLISHED_NO_JITTER = 0.9913
"""dlib's figure for the same model without jitter (python_examples/face_recognition.py)."""
DLIB_THRESHOLD = 0.6
FAR_TARGET = 1e-3
DIM = 128
CACHE_FORMAT = "lfw-cache-v2"
SAVE_EVERY = 500

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
PairVectors = npt.NDArray[np.float32]
"""Shape (2, 128): the chosen face's descriptor and its mirrored chip's descriptor."""


# --- pairs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One View 2 pair; ``left``/``right`` are image paths relative to ``images/``."""

    fold: int
    left: str
    right: str
    mated: bool


def image_name(person: str, number: str) -> str:
    return f"{person}/{person}_{int(number):04d}.jpg"


def parse_pairs(text: str) -> list[Pair]:
    """Parse View 2's ``pairs.txt``: "folds per_fold", then per fold the mated, the non-mated."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    folds, per_fold = int(lines[0][0]), int(lines[0][1])
    if len(lines) != 1 + 2 * folds * per_fold:
        raise ValueError(f"pairs.txt: expected {2 * folds * per_fold} pairs, got {len(lines) - 1}")
    pairs = []
    for row, parts in enumerate(lines[1:]):
        fold, mated = row // (2 * per_fold), (row % (2 * per_fold)) < per_fold
        if mated:
            left, right = image_name(parts[0], parts[1]), image_name(parts[0], parts[2])
        else:
            left, right = image_name(parts[0], parts[1]), image_name(parts[2], parts[3])
        pairs.append(Pair(fold, left, right, mated))
    return pairs


def select_pairs(pairs: list[Pair], limit_folds: int | None, per_fold: int | None) -> list[Pair]:
    """The first ``limit_folds`` folds; of each, the first ``per_fold`` mated and non-mated."""
    kept: list[Pair] = []
    seen: dict[tuple[int, bool], int] = {}
    for p in pairs:
        if limit_folds is not None and p.fold >= limit_folds:
            continue
        count = seen.get((p.fold, p.mated), 0)
        if per_fold is None or count < per_fold:
            kept.append(p)
            seen[(p.fold, p.mated)] = count + 1
    return kept


# --- descriptor pass (runs in worker processes) --------------------------------------------------


@dataclass(frozen=True)
class ImageRecord:
    """What the descriptor pass learns about one image.

    ``hog`` is set when HOG found a face; ``mmod`` only when HOG found none and MMOD found one.
    ``mmod_faces`` is -1 when MMOD was not run. ``picked_rank`` is the chosen face's position in
    the engine's largest-first order (-1: no face). ``error`` is set when the file was unreadable.
    """

    path: str
    hog_faces: int
    mmod_faces: int
    picked_rank: int
    hog: PairVectors | None
    mmod: PairVectors | None
    seconds: float
    error: str = ""


# Per-process state of a worker: the engine it was initialised with. Set once by the initializer in
# each spawned child, never in the parent (the exception to "no mutable module globals" that
# engine/pool.py documents: a process pool has no other place for a per-process object).
_WORKER_ENGINE: list[FaceEngine] = []


def _init_worker(config: EngineConfig) -> None:
    _WORKER_ENGINE.append(FaceEngine(config))


def central_index(faces: Sequence[DetectedFace], width_px: int, height_px: int) -> int | None:
    """Index of the face whose box centre is nearest the image centre (LFW's subject)."""
    if not faces:
        return None

    def offset(i: int) -> float:
        box = faces[i].box_px
        dx = box.left + box.width / 2 - width_px / 2
        dy = box.top + box.height / 2 - height_px / 2
        return math.hypot(dx, dy)

    return min(range(len(faces)), key=offset)


def describe_with_mirror(engine: FaceEngine, pixels: RGBImage, face: DetectedFace) -> PairVectors:
    """Descriptors of the aligned chip and of its mirror image (one batched network call)."""
    chip = face_chip(pixels, face.box_px, face.points5_px)
    mirrored = np.ascontiguousarray(chip[:, ::-1])
    vectors = engine.models.descriptor.compute_face_descriptor([chip, mirrored])
    return np.array([np.array(v) for v in vectors], dtype=np.float32)


def _central_descriptors(
    engine: FaceEngine, image: DecodedImage, kind: DetectorKind
) -> tuple[int, int, PairVectors | None]:
    """(faces found, chosen face's rank, its descriptors or None) with one detector."""
    faces = engine.detect(image, detector=kind)
    rank = central_index(faces, image.width_px, image.height_px)
    if rank is None:
        return len(faces), -1, None
    return len(faces), rank, describe_with_mirror(engine, image.pixels, faces[rank])


def analyse_image(path: str) -> ImageRecord:
    """The worker task: decode, HOG (MMOD if HOG finds nothing), describe the central face."""
    engine = _WORKER_ENGINE[0]
    started = time.perf_counter()
    try:
        image = engine.decode(Path(path).read_bytes())
    except (OSError, FacegateError) as exc:
        elapsed = time.perf_counter() - started
        return ImageRecord(path, 0, -1, -1, None, None, elapsed, error=str(exc))
    hog_faces, rank, hog = _central_descriptors(engine, image, DetectorKind.HOG)
    mmod_faces, mmod = -1, None
    if hog is None:
        mmod_faces, rank, mmod = _central_descriptors(engine, image, DetectorKind.MMOD)
    elapsed = time.perf_counter() - started
    return ImageRecord(path, hog_faces, mmod_faces, rank, hog, mmod, elapsed)


def descriptor_pass(
    paths: list[str],
    config: EngineConfig,
    workers: int,
    sink: Callable[[ImageRecord], None],
    checkpoint: Callable[[], None],
) -> float:
    """Analyse ``paths`` in ``workers`` spawned processes; returns the wall time in seconds.

    Every result goes to ``sink`` in input order; ``checkpoint`` runs every ``SAVE_EVERY`` images.
    The wall time includes starting the workers and loading their models (about 2 s).
    """
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(config,)
    ) as pool:
        results = pool.map(analyse_image, paths, chunksize=8)
        progress = tqdm(results, total=len(paths), desc="descriptors", unit="img", file=sys.stderr)
        for done, record in enumerate(progress, start=1):
            sink(record)
            if done % SAVE_EVERY == 0:
                checkpoint()
    return time.perf_counter() - started
