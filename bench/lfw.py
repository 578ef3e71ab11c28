"""LFW View 2 face verification: the standard 10-fold protocol, four engine variants.

Run from the project root::

    .venv/bin/python bench/lfw.py                                   # full View 2 (6,000 pairs)
    .venv/bin/python bench/lfw.py --limit-folds 2 --pairs-per-fold 20   # smoke run, ~1 minute
    .venv/bin/python bench/lfw.py --data /elsewhere/lfw --workers 4
    .venv/bin/python bench/lfw.py --runtime onnx                    # descriptors in onnxruntime

Data: ``pairs.txt`` (View 2: 10 folds x 300 mated + 300 non-mated pairs) and the original,
unaligned 250x250 images under ``images/<Name>/<Name>_NNNN.jpg``; by default
``<project>/../shared/data/lfw`` (Huang et al., "Labeled Faces in the Wild", UMass 2007).

Descriptor pass (``--workers`` spawned processes, one ``FaceEngine`` each, loaded once): for every
distinct image, HOG detection; the face whose box centre is nearest the image centre (LFW's
subject); the descriptor of its aligned chip and of the mirrored chip, so flip test-time
augmentation (the mean of the two) costs no second detection. When HOG finds no face, MMOD runs
as a fallback and its descriptor is kept apart, so "HOG only" and "HOG + MMOD fallback" are both
measured from one pass. Results are cached in ``bench/results/cache/lfw-<key>.npz`` (key: engine
configuration, including the descriptor runtime, dlib version, model file digests; entries by
image path), so a re-run takes seconds; an interrupted pass resumes.

``--runtime`` picks where the descriptor network runs: ``dlib`` (dlib-bin, the recorded figure in
bench/results/lfw.json) or ``onnx`` (the same network exported by ``engine.onnx_export`` and run
by onnxruntime, one intra-op thread per worker; results in bench/results/lfw_onnx.json). The two
have separate caches, so comparing them always means two full detection passes.

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
(``lfw_onnx.json`` with ``--runtime onnx``; full protocol only, or ``--json PATH``). Reference:
dlib reports 99.38% for this descriptor with 100 jittered copies per face and 99.13% without
jitter (dlib's python_examples/face_recognition.py).
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
from facegate.bias.datasets import LfwPair as Pair
from facegate.bias.datasets import parse_lfw_pairs as parse_pairs
from facegate.bias.folds import CrossValidation, correct_decisions, cross_validate
from facegate.engine.align import face_chip
from facegate.engine.core import DescriptorRuntime, EngineConfig, FaceEngine
from facegate.engine.embed import dlib_model_version
from facegate.engine.image import DecodedImage, RGBImage
from facegate.engine.models import ModelFiles, file_sha256
from facegate.engine.types import DetectedFace, DetectorKind
from facegate.errors import FacegateError

PUBLISHED_ACCURACY = 0.9938
"""dlib's LFW figure for dlib_face_recognition_resnet_model_v1, averaging 100 jittered copies."""
PUBLISHED_NO_JITTER = 0.9913
"""dlib's figure for the same model without jitter (python_examples/face_recognition.py)."""
DLIB_THRESHOLD = 0.6
FAR_TARGET = 1e-3
DIM = 128
CACHE_FORMAT = "lfw-cache-v3"
SAVE_EVERY = 500

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
PairVectors = npt.NDArray[np.float32]
"""Shape (2, 128): the chosen face's descriptor and its mirrored chip's descriptor."""


# --- pairs ---------------------------------------------------------------------------------------


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
    """Descriptors of the aligned chip and of its mirror image (one batched call to the engine's
    embedder, dlib or ONNX as configured; the engine is built without flip TTA)."""
    chip = face_chip(pixels, face.box_px, face.points5_px)
    mirrored = np.ascontiguousarray(chip[:, ::-1])
    return engine.embedder.embed([chip, mirrored])


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


# --- cache ---------------------------------------------------------------------------------------


def cache_key(config: EngineConfig) -> str:
    """Identifies everything that changes a record: pass format, dlib, engine config, models."""
    files = config.model_files or ModelFiles.from_package()
    digests = [file_sha256(Path(p)) for p in asdict(files).values()]
    parts = [CACHE_FORMAT, dlib.__version__, dlib_model_version(False), repr(config), *digests]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _stack(vectors: Sequence[PairVectors | None]) -> npt.NDArray[np.float32]:
    out = np.full((len(vectors), 2, DIM), np.nan, dtype=np.float32)
    for i, v in enumerate(vectors):
        if v is not None:
            out[i] = v
    return out


@dataclass(frozen=True)
class PassStats:
    """One descriptor pass that computed images (kept in the cache with its records)."""

    images: int
    wall_s: float
    workers: int


def save_cache(
    path: Path, key: str, records: dict[str, ImageRecord], passes: Sequence[PassStats]
) -> None:
    """Write all records and the pass history atomically (a crash keeps the previous file)."""
    rows = [records[name] for name in sorted(records)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(
        tmp,
        key=np.array(key),
        path=np.array([r.path for r in rows], dtype=str),
        hog_faces=np.array([r.hog_faces for r in rows], dtype=np.int16),
        mmod_faces=np.array([r.mmod_faces for r in rows], dtype=np.int16),
        picked_rank=np.array([r.picked_rank for r in rows], dtype=np.int16),
        hog=_stack([r.hog for r in rows]),
        mmod=_stack([r.mmod for r in rows]),
        seconds=np.array([r.seconds for r in rows], dtype=np.float64),
        error=np.array([r.error for r in rows], dtype=str),
        passes=np.array([[q.images, q.wall_s, q.workers] for q in passes], dtype=np.float64),
    )
    os.replace(tmp, path)


def _vectors_or_none(row: npt.NDArray[np.float32]) -> PairVectors | None:
    return None if bool(np.isnan(row).any()) else row.copy()


def load_cache(path: Path, key: str) -> tuple[dict[str, ImageRecord], list[PassStats]]:
    """Records by image path and the pass history; empty for no cache or another key."""
    if not path.is_file():
        return {}, []
    with np.load(path, allow_pickle=False) as blob:
        arrays = {name: blob[name] for name in blob.files}  # each access re-reads: read once
    if str(arrays["key"]) != key:
        return {}, []
    records = {
        str(name): ImageRecord(
            path=str(name),
            hog_faces=int(arrays["hog_faces"][i]),
            mmod_faces=int(arrays["mmod_faces"][i]),
            picked_rank=int(arrays["picked_rank"][i]),
            hog=_vectors_or_none(arrays["hog"][i]),
            mmod=_vectors_or_none(arrays["mmod"][i]),
            seconds=float(arrays["seconds"][i]),
            error=str(arrays["error"][i]),
        )
        for i, name in enumerate(arrays["path"])
    }
    passes = [PassStats(int(n), float(w), int(k)) for n, w, k in arrays["passes"].reshape(-1, 3)]
    return records, passes


# --- metrics -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """Which descriptor a pair is compared with."""

    name: str
    flip_tta: bool
    mmod_fallback: bool


VARIANTS = (
    Variant("raw, HOG only", flip_tta=False, mmod_fallback=False),
    Variant("flip-TTA, HOG only", flip_tta=True, mmod_fallback=False),
    Variant("raw, HOG+MMOD fallback", flip_tta=False, mmod_fallback=True),
    Variant("flip-TTA, HOG+MMOD fallback", flip_tta=True, mmod_fallback=True),
)


def descriptor_matrix(records: Sequence[ImageRecord], variant: Variant) -> FloatArray:
    """One row per image (float64); NaN rows where the variant has no face for the image."""
    out = np.full((len(records), DIM), np.nan)
    for i, r in enumerate(records):
        vectors = r.hog if r.hog is not None else (r.mmod if variant.mmod_fallback else None)
        if vectors is not None:
            both = vectors.astype(np.float64)
            out[i] = (both[0] + both[1]) / 2.0 if variant.flip_tta else both[0]
    return out


def roc_auc(d: FloatArray, mated: BoolArray) -> float:
    """ROC AUC of "smaller distance = same person" (Mann-Whitney U, ties count half).

    A pair without a distance gets the worst value for its label: +inf if mated, -inf if not.
    """
    dist = np.where(np.isnan(d), np.where(mated, np.inf, -np.inf), d)
    _, inverse, counts = np.unique(dist, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2.0)[inverse]  # ascending distance, ties averaged
    n_mated, n_non = int(mated.sum()), int((~mated).sum())
    u_non = ranks[~mated].sum() - n_non * (n_non + 1) / 2.0  # non-mated farther than mated
    return float(u_non / (n_mated * n_non))


def tar_at_far(d: FloatArray, mated: BoolArray, far: float) -> tuple[float, float, float]:
    """(TAR, threshold, realised FAR): accept ``d < threshold``, at most ``far`` non-mated.

    The threshold is the (floor(far * n) + 1)-th smallest non-mated distance, exclusive. A pair
    without a distance is rejected (ISO/IEC 19795-1 generalised rates).
    """
    non = np.sort(np.where(np.isnan(d[~mated]), np.inf, d[~mated]))
    allowed = math.floor(far * len(non) + 1e-9)
    threshold = float(non[allowed]) if allowed < len(non) else math.inf
    accepted = ~np.isnan(d) & (d < threshold)
    return float(accepted[mated].mean()), threshold, float(accepted[~mated].mean())


@dataclass(frozen=True)
class VariantResult:
    name: str
    flip_tta: bool
    mmod_fallback: bool
    accuracy_mean: float
    accuracy_std: float
    fold_accuracies: list[float]
    fold_thresholds: list[float]
    threshold_mean: float
    accuracy_at_dlib_threshold: float
    auc: float
    tar_at_far: float
    tar_threshold: float
    far_realised: float
    no_face_images: int
    no_face_pairs: int
    no_face_pairs_mated: int
    false_rejects: int
    false_accepts: int
    pairs_with_mmod_image: int
    errors_with_mmod_image: int
    errors: list[dict[str, Any]]


@dataclass(frozen=True)
class PairTable:
    """The selected pairs as arrays over an image index."""

    pairs: list[Pair]
    left: IntArray
    right: IntArray
    mated: BoolArray
    folds: IntArray

    @classmethod
    def build(cls, pairs: list[Pair], index: dict[str, int]) -> PairTable:
        return cls(
            pairs=pairs,
            left=np.array([index[p.left] for p in pairs], dtype=np.int64),
            right=np.array([index[p.right] for p in pairs], dtype=np.int64),
            mated=np.array([p.mated for p in pairs], dtype=bool),
            folds=np.array([p.fold for p in pairs], dtype=np.int64),
        )


def error_list(table: PairTable, d: FloatArray, cv: CrossValidation) -> list[dict[str, Any]]:
    """Every pair decided wrongly at its fold's threshold, with the reason."""
    out = []
    for i in np.flatnonzero(~cv.correct):
        p = table.pairs[int(i)]
        missing = bool(np.isnan(d[i]))
        kind = "no face" if missing else ("false reject" if p.mated else "false accept")
        out.append(
            {
                "fold": p.fold,
                "left": p.left,
                "right": p.right,
                "mated": p.mated,
                "distance": None if missing else round(float(d[i]), 4),
                "threshold": round(float(cv.pair_thresholds[i]), 4),
                "kind": kind,
            }
        )
    return out


def evaluate(
    variant: Variant, records: Sequence[ImageRecord], table: PairTable
) -> tuple[VariantResult, BoolArray]:
    """All metrics of one variant, and its per-pair correctness at the fold thresholds."""
    vectors = descriptor_matrix(records, variant)
    d: FloatArray = np.linalg.norm(vectors[table.left] - vectors[table.right], axis=1)
    mated = table.mated
    cv = cross_validate(d, mated, table.folds)
    tar, tar_threshold, far = tar_at_far(d, mated, FAR_TARGET)
    missing = np.isnan(d)
    fallback_image = np.array([r.hog is None and r.mmod is not None for r in records])
    with_mmod = fallback_image[table.left] | fallback_image[table.right]
    result = VariantResult(
        name=variant.name,
        flip_tta=variant.flip_tta,
        mmod_fallback=variant.mmod_fallback,
        accuracy_mean=statistics.fmean(cv.accuracies),
        accuracy_std=statistics.stdev(cv.accuracies) if len(cv.accuracies) > 1 else 0.0,
        fold_accuracies=cv.accuracies,
        fold_thresholds=cv.thresholds,
        threshold_mean=statistics.fmean(cv.thresholds),
        accuracy_at_dlib_threshold=float(correct_decisions(d, mated, DLIB_THRESHOLD).mean()),
        auc=roc_auc(d, mated),
        tar_at_far=tar,
        tar_threshold=tar_threshold,
        far_realised=far,
        no_face_images=int(np.isnan(vectors[:, 0]).sum()),
        no_face_pairs=int(missing.sum()),
        no_face_pairs_mated=int((missing & mated).sum()),
        false_rejects=int((~cv.correct & ~missing & mated).sum()),
        false_accepts=int((~cv.correct & ~missing & ~mated).sum()),
        pairs_with_mmod_image=int(with_mmod.sum()),
        errors_with_mmod_image=int((with_mmod & ~cv.correct).sum()),
        errors=error_list(table, d, cv),
    )
    return result, cv.correct


def decision_changes(before: BoolArray, after: BoolArray) -> dict[str, int]:
    """How many pairs a change fixed and broke (both at their own fold thresholds)."""
    return {"fixed": int((~before & after).sum()), "broken": int((before & ~after).sum())}


# --- report --------------------------------------------------------------------------------------


def detection_summary(records: Sequence[ImageRecord], names: Sequence[str]) -> dict[str, Any]:
    """Failure-to-detect lists (image names relative to ``images/``) and face-count facts."""
    hog_missed = [n for n, r in zip(names, records, strict=True) if r.hog is None]
    both_missed = [
        n for n, r in zip(names, records, strict=True) if r.hog is None and r.mmod is None
    ]
    return {
        "images": len(records),
        "hog_no_face": hog_missed,
        "hog_and_mmod_no_face": both_missed,
        "unreadable": [n for n, r in zip(names, records, strict=True) if r.error],
        "hog_several_faces": sum(1 for r in records if r.hog_faces > 1),
        "central_face_not_largest": sum(1 for r in records if r.picked_rank > 0),
        "mmod_several_faces": sum(1 for r in records if r.mmod_faces > 1),
    }


def timing_summary(
    records: Sequence[ImageRecord], computed: int, passes: Sequence[PassStats]
) -> dict[str, Any]:
    """This run's cache use, every pass that computed the cached records, per-image medians."""
    hog = [r.seconds for r in records if r.hog is not None]
    fallback = [r.seconds for r in records if r.hog is None]
    return {
        "computed_this_run": computed,
        "cached_this_run": len(records) - computed,
        "passes": [
            {**asdict(q), "images_per_s": q.images / q.wall_s if q.wall_s else None} for q in passes
        ],
        "worker_s_per_image_median_hog": statistics.median(hog) if hog else None,
        "worker_s_per_image_median_mmod_fallback": statistics.median(fallback)
        if fallback
        else None,
    }


def _pct(x: float) -> str:
    return f"{100 * x:6.2f}%"


def format_table(results: Sequence[VariantResult]) -> list[str]:
    header = (
        f"{'variant':<28} {'10-fold acc':>11} {'± std':>6} {'acc@0.6':>8} {'thr':>6} "
        f"{'AUC':>8} {'TAR@FAR=1e-3':>13} {'FR':>4} {'FA':>4} {'no-face img/pairs':>17}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.name:<28} {_pct(r.accuracy_mean):>11} {100 * r.accuracy_std:6.2f} "
            f"{_pct(r.accuracy_at_dlib_threshold):>8} {r.threshold_mean:6.3f} {r.auc:8.5f} "
            f"{_pct(r.tar_at_far):>13} {r.false_rejects:4d} {r.false_accepts:4d} "
            f"{f'{r.no_face_images}/{r.no_face_pairs}':>17}"
        )
    return lines


def print_report(document: dict[str, Any], results: Sequence[VariantResult]) -> None:
    det, timing = document["detection"], document["descriptor_pass"]
    print(
        f"LFW View 2: {document['pairs']} pairs in {document['folds']} folds, "
        f"{det['images']} images ({document['data']})"
    )
    print(machine_line(document["machine"]))
    print(
        f"descriptor pass: {timing['computed_this_run']} images computed this run, "
        f"{timing['cached_this_run']} from the cache; passes that computed them:"
    )
    for q in timing["passes"]:
        print(
            f"  {q['images']} images, {q['workers']} workers, wall {q['wall_s']:.1f} s "
            f"({q['images_per_s']:.2f} images/s, including worker start-up)"
        )
    print(
        "  per image in one worker (median, when computed): "
        f"{_seconds(timing['worker_s_per_image_median_hog'])} with a HOG face, "
        f"{_seconds(timing['worker_s_per_image_median_mmod_fallback'])} with MMOD fallback"
    )
    print(
        f"detection: HOG found no face in {len(det['hog_no_face'])} images; "
        f"{len(det['hog_and_mmod_no_face'])} remain without a face after MMOD; "
        f"{det['hog_several_faces']} images with >1 HOG face, central face not the largest "
        f"in {det['central_face_not_largest']}"
    )
    if det["hog_and_mmod_no_face"]:
        print(f"  no face at all: {', '.join(det['hog_and_mmod_no_face'][:10])}")
    print()
    for line in format_table(results):
        print(line)
    print(
        "FR/FA: false rejects/accepts at the fold thresholds (no-face pairs counted apart, "
        "also as errors); std is the sample std over folds."
    )
    _print_comparison(document, results)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def _print_comparison(document: dict[str, Any], results: Sequence[VariantResult]) -> None:
    best = max(results, key=lambda r: r.accuracy_mean)
    gap = 100 * (best.accuracy_mean - PUBLISHED_ACCURACY)
    gap_plain = 100 * (best.accuracy_mean - PUBLISHED_NO_JITTER)
    print(
        f"published: {_pct(PUBLISHED_ACCURACY).strip()} (dlib, 100 jittered copies per face); "
        f"{_pct(PUBLISHED_NO_JITTER).strip()} without jitter. Best here: "
        f"{_pct(best.accuracy_mean).strip()} ({best.name}), {gap:+.2f} pp vs 99.38, "
        f"{gap_plain:+.2f} pp vs 99.13"
    )
    for label, change in document["flip_tta_changes"].items():
        print(
            f"flip-TTA vs raw ({label}): {change['fixed']} pairs fixed, {change['broken']} broken"
        )
    for r in results:
        if r.mmod_fallback:
            print(
                f"{r.name}: {r.pairs_with_mmod_image} pairs use an MMOD-fallback image, "
                f"{r.errors_with_mmod_image} of them wrong"
            )


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="LFW View 2 verification benchmark (10-fold).", allow_abbrev=False
    )
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data" / "lfw", help="LFW folder"
    )
    parser.add_argument("--workers", type=int, default=2, help="engine processes (default 2)")
    parser.add_argument("--limit-folds", type=int, default=None, help="use the first N folds")
    parser.add_argument(
        "--pairs-per-fold", type=int, default=None, help="first K mated + K non-mated per fold"
    )
    parser.add_argument(
        "--runtime",
        choices=[DescriptorRuntime.DLIB.value, DescriptorRuntime.ONNX.value],
        default=DescriptorRuntime.DLIB.value,
        help="where the descriptor network runs (default dlib; each has its own cache)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args(argv)
    if args.limit_folds is not None and args.limit_folds < 2:
        parser.error("--limit-folds must be at least 2 (thresholds are fitted on other folds)")
    if args.pairs_per_fold is not None and args.pairs_per_fold < 1:
        parser.error("--pairs-per-fold must be positive")
    if args.workers < 1:
        parser.error("--workers must be positive")
    return args


def load_records(
    paths: list[str], config: EngineConfig, workers: int
) -> tuple[list[ImageRecord], int, list[PassStats]]:
    """Records for ``paths`` (in order), how many were computed now, and the pass history."""
    key = cache_key(config)
    path = RESULTS / "cache" / f"lfw-{key}.npz"
    cache, passes = load_cache(path, key)
    todo = [p for p in paths if p not in cache]
    if todo:

        def checkpoint() -> None:
            save_cache(path, key, cache, passes)

        wall = descriptor_pass(
            todo, config, workers, lambda r: cache.__setitem__(r.path, r), checkpoint
        )
        passes.append(PassStats(images=len(todo), wall_s=wall, workers=workers))
        checkpoint()
    return [cache[p] for p in paths], len(todo), passes


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    data: Path = args.data.resolve()
    pairs = select_pairs(
        parse_pairs((data / "pairs.txt").read_text()), args.limit_folds, args.pairs_per_fold
    )
    names = sorted({n for p in pairs for n in (p.left, p.right)})
    runtime = DescriptorRuntime(args.runtime)
    config = EngineConfig(descriptor_runtime=runtime)
    paths = [str(data / "images" / n) for n in names]
    records, computed, passes = load_records(paths, config, args.workers)
    table = PairTable.build(pairs, {n: i for i, n in enumerate(names)})
    evaluated = [evaluate(v, records, table) for v in VARIANTS]
    results = [r for r, _ in evaluated]
    correct = {v.name: c for v, (_, c) in zip(VARIANTS, evaluated, strict=True)}
    full = args.limit_folds is None and args.pairs_per_fold is None
    document: dict[str, Any] = {
        "benchmark": "LFW View 2, 10-fold verification",
        "data": str(data),
        "full_protocol": full,
        "pairs": len(pairs),
        "folds": len({p.fold for p in pairs}),
        "machine": machine_info(),
        "engine": {
            "config": repr(config),
            "descriptor_runtime": runtime.value,
            "model_version": dlib_model_version(False),
        },
        "descriptor_pass": timing_summary(records, computed, passes),
        "detection": detection_summary(records, names),
        "published": {
            "accuracy_100_jitters": PUBLISHED_ACCURACY,
            "accuracy_no_jitter": PUBLISHED_NO_JITTER,
        },
        "flip_tta_changes": {
            "HOG only": decision_changes(correct[VARIANTS[0].name], correct[VARIANTS[1].name]),
            "HOG+MMOD": decision_changes(correct[VARIANTS[2].name], correct[VARIANTS[3].name]),
        },
        "variants": [asdict(r) for r in results],
    }
    print_report(document, results)
    name = "lfw" if runtime is DescriptorRuntime.DLIB else f"lfw_{runtime.value}"
    out = args.json if args.json is not None else (RESULTS / f"{name}.json" if full else None)
    if out is None:
        print("partial run: JSON not written (pass --json PATH to keep it)")
    elif out == RESULTS / f"{name}.json":
        print(f"wrote {write_results(name, document)}")
    else:
        out.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
