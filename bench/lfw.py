"""LFW View 2 face verification with the standard 10-fold protocol.

    .venv/bin/python bench/lfw.py [--data ../shared/data/lfw] [--workers 2] [--limit-folds N]

For every image of ``pairs.txt`` the engine detects faces (HOG; MMOD as a fallback when HOG finds
none), takes the face nearest the image centre (LFW's subject), and computes the descriptor of
its aligned chip and of the mirrored chip. Descriptors are cached in bench/results/cache/, keyed
by image path and engine version, so a re-run takes seconds.

Reported per variant (raw or flip-averaged descriptor; HOG only or HOG + MMOD fallback):
* 10-fold accuracy: the distance threshold maximising accuracy on 9 folds is applied to the 10th;
  mean and standard deviation over the folds. A pair with an image where no face was found is
  counted as an error, never dropped;
* AUC over all 6,000 pairs (a pair without a face gets the worst score for its label);
* TAR at FAR = 1e-3 (threshold at the 0.1% quantile of non-mated distances);
* accuracy at dlib's customary fixed threshold 0.6.
The published figure for this descriptor is 99.38% (dlib's model card). Results go to stdout and
to bench/results/lfw.json.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import dlib
import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from benchlib import RESULTS, ROOT, machine_info, machine_line, write_results
from facegate.engine.align import face_chip
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.types import DetectedFace, DetectorKind

PUBLISHED_ACCURACY = 0.9938
CACHE_VERSION = "lfw-v1"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Pair:
    fold: int
    left: str
    right: str
    mated: bool


@dataclass(frozen=True)
class ImageResult:
    """Per image: HOG descriptor (+ flipped), MMOD fallback descriptor (+ flipped), face count."""

    hog: FloatArray | None
    hog_flip: FloatArray | None
    mmod: FloatArray | None
    mmod_flip: FloatArray | None
    faces: int


def read_pairs(path: Path, limit_folds: int | None) -> list[Pair]:
    lines = path.read_text().split("\n")
    folds, per_fold = (int(x) for x in lines[0].split())
    pairs: list[Pair] = []
    row = 1
    for fold in range(folds):
        for mated in (True, False):
            for _ in range(per_fold):
                parts = lines[row].split()
                row += 1
                if mated:
                    name, a, b = parts[0], int(parts[1]), int(parts[2])
                    pairs.append(Pair(fold, _image(name, a), _image(name, b), True))
                else:
                    pairs.append(
                        Pair(
                            fold,
                            _image(parts[0], int(parts[1])),
                            _image(parts[2], int(parts[3])),
                            False,
                        )
                    )
    if limit_folds is not None:
        pairs = [p for p in pairs if p.fold < limit_folds]
    return pairs


def _image(name: str, number: int) -> str:
    return f"{name}/{name}_{number:04d}.jpg"


# --- descriptor pass (in worker processes) ------------------------------------------------------

_WORKER: list[FaceEngine] = []


def _init() -> None:
    _WORKER.append(FaceEngine(EngineConfig()))


def _central(faces: tuple[DetectedFace, ...], width: int, height: int) -> DetectedFace | None:
    if not faces:
        return None

    def offset(f: DetectedFace) -> float:
        b = f.box_px
        return math.hypot(b.left + b.width / 2 - width / 2, b.top + b.height / 2 - height / 2)

    return min(faces, key=offset)


def _describe(
    engine: FaceEngine, pixels: npt.NDArray[np.uint8], face: DetectedFace
) -> tuple[FloatArray, FloatArray]:
    chip = face_chip(pixels, face.box_px, face.points5_px)
    net = engine.models.descriptor
    plain = np.array(net.compute_face_descriptor(chip), dtype=np.float64)
    mirrored = np.array(
        net.compute_face_descriptor(np.ascontiguousarray(chip[:, ::-1])), dtype=np.float64
    )
    return plain, mirrored


def _work(path: str) -> tuple[str, ImageResult]:
    engine = _WORKER[0]
    image = engine.decode(Path(path).read_bytes())
    hog = engine.detect(image)
    face = _central(hog, image.width_px, image.height_px)
    if face is not None:
        plain, mirrored = _describe(engine, image.pixels, face)
        return path, ImageResult(plain, mirrored, None, None, len(hog))
    mmod = engine.detect(image, detector=DetectorKind.MMOD)
    face = _central(mmod, image.width_px, image.height_px)
    if face is None:
        return path, ImageResult(None, None, None, None, 0)
    plain, mirrored = _describe(engine, image.pixels, face)
    return path, ImageResult(None, None, plain, mirrored, len(mmod))


def describe_all(images: list[Path], workers: int) -> dict[str, ImageResult]:
    ctx = multiprocessing.get_context("spawn")
    out: dict[str, ImageResult] = {}
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init) as pool:
        results: Iterator[tuple[str, ImageResult]] = pool.map(
            _work, [str(p) for p in images], chunksize=16
        )
        for path, result in tqdm(results, total=len(images), desc="descriptors", file=sys.stderr):
            out[path] = result
    return out


# --- cache --------------------------------------------------------------------------------------


def _cache_path(data: Path) -> Path:
    """Keyed by the data folder, dlib's version and the engine configuration."""
    key = f"{CACHE_VERSION}\0{data.resolve()}\0{dlib.__version__}\0{EngineConfig()!r}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path: Path = RESULTS / "cache" / f"lfw-{digest}.npz"
    return path


def load_cache(path: Path) -> dict[str, ImageResult]:
    if not path.is_file():
        return {}
    blob = np.load(path, allow_pickle=False)
    names = [str(n) for n in blob["names"]]
    out = {}
    for i, name in enumerate(names):
        kind = int(blob["kind"][i])  # 0 none, 1 hog, 2 mmod
        plain, flip = blob["plain"][i], blob["flip"][i]
        out[name] = ImageResult(
            plain if kind == 1 else None,
            flip if kind == 1 else None,
            plain if kind == 2 else None,
            flip if kind == 2 else None,
            int(blob["faces"][i]),
        )
    return out


def save_cache(path: Path, results: dict[str, ImageResult]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(results)
    plain = np.zeros((len(names), 128))
    flip = np.zeros((len(names), 128))
    kind = np.zeros(len(names), dtype=np.int8)
    faces = np.zeros(len(names), dtype=np.int16)
    for i, name in enumerate(names):
        r = results[name]
        faces[i] = r.faces
        if r.hog is not None and r.hog_flip is not None:
            plain[i], flip[i], kind[i] = r.hog, r.hog_flip, 1
        elif r.mmod is not None and r.mmod_flip is not None:
            plain[i], flip[i], kind[i] = r.mmod, r.mmod_flip, 2
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, names=np.array(names), plain=plain, flip=flip, kind=kind, faces=faces)
    os.replace(tmp, path)


# --- metrics ------------------------------------------------------------------------------------


def pair_distances(
    pairs: list[Pair], results: dict[str, ImageResult], data: Path, flip: bool, fallback: bool
) -> FloatArray:
    """Distance per pair; NaN where a face is missing in either image."""
    out = np.full(len(pairs), np.nan)
    for i, p in enumerate(pairs):
        a = _vector(results[str(data / "images" / p.left)], flip, fallback)
        b = _vector(results[str(data / "images" / p.right)], flip, fallback)
        if a is not None and b is not None:
            out[i] = float(np.linalg.norm(a - b))
    return out


def _vector(r: ImageResult, flip: bool, fallback: bool) -> FloatArray | None:
    plain, mirrored = (
        (r.hog, r.hog_flip)
        if r.hog is not None
        else ((r.mmod, r.mmod_flip) if fallback else (None, None))
    )
    if plain is None or mirrored is None:
        return None
    return (plain + mirrored) / 2.0 if flip else plain


def accuracy_at(d: FloatArray, mated: npt.NDArray[np.bool_], threshold: float) -> float:
    """Share of correct decisions; a pair without a distance is always wrong."""
    known = ~np.isnan(d)
    correct = known & ((d <= threshold) == mated)
    return float(correct.mean())


def best_threshold(d: FloatArray, mated: npt.NDArray[np.bool_]) -> float:
    candidates = np.unique(d[~np.isnan(d)])
    mids = (candidates[:-1] + candidates[1:]) / 2.0 if len(candidates) > 1 else candidates
    scores = [accuracy_at(d, mated, float(t)) for t in mids]
    return float(mids[int(np.argmax(scores))])


def auc(d: FloatArray, mated: npt.NDArray[np.bool_]) -> float:
    """ROC AUC with smaller distance = more similar; a missing face scores worst for its label."""
    worst_mated, worst_non = 1e9, -1e9
    score = -np.where(np.isnan(d), np.where(mated, worst_mated, worst_non), d)
    pos, neg = score[mated], score[~mated]
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    allv = np.concatenate([pos, neg])
    for value in np.unique(allv):  # average ranks of ties
        idx = allv == value
        if idx.sum() > 1:
            ranks[idx] = ranks[idx].mean()
    rank_pos = ranks[: len(pos)].sum()
    return float((rank_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def tar_at_far(d: FloatArray, mated: npt.NDArray[np.bool_], far: float) -> float:
    non = np.sort(np.where(np.isnan(d[~mated]), np.inf, d[~mated]))
    allowed = math.floor(far * len(non))
    threshold = non[allowed] if allowed < len(non) else np.inf
    accepted = (~np.isnan(d[mated])) & (d[mated] < threshold)
    return float(accepted.mean())


def evaluate(pairs: list[Pair], d: FloatArray) -> dict[str, float]:
    mated = np.array([p.mated for p in pairs])
    folds = np.array([p.fold for p in pairs])
    accs, thresholds = [], []
    for fold in sorted(set(folds.tolist())):
        train, test = folds != fold, folds == fold
        t = best_threshold(d[train], mated[train]) if train.any() else best_threshold(d, mated)
        thresholds.append(t)
        accs.append(accuracy_at(d[test], mated[test], t))
    return {
        "accuracy_mean": float(np.mean(accs)),
        "accuracy_std": float(np.std(accs)),
        "threshold_mean": float(np.mean(thresholds)),
        "auc": auc(d, mated),
        "tar_at_far_1e-3": tar_at_far(d, mated, 1e-3),
        "accuracy_at_0.6": accuracy_at(d, mated, 0.6),
        "pairs_without_face": int(np.isnan(d).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "lfw")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit-folds", type=int, default=None)
    args = parser.parse_args()
    data: Path = args.data.resolve()
    pairs = read_pairs(data / "pairs.txt", args.limit_folds)
    images = sorted({data / "images" / n for p in pairs for n in (p.left, p.right)})
    cache_path = _cache_path(data)
    results = load_cache(cache_path)
    todo = [p for p in images if str(p) not in results]
    started = time.perf_counter()
    if todo:
        results.update(describe_all(todo, args.workers))
        save_cache(cache_path, results)
    wall = time.perf_counter() - started
    hog_missing = sum(1 for p in images if results[str(p)].hog is None)
    all_missing = sum(
        1 for p in images if results[str(p)].hog is None and results[str(p)].mmod is None
    )
    rows = {}
    for label, flip, fallback in (
        ("raw, HOG only", False, False),
        ("flip-TTA, HOG only", True, False),
        ("raw, HOG + MMOD fallback", False, True),
        ("flip-TTA, HOG + MMOD fallback", True, True),
    ):
        rows[label] = evaluate(pairs, pair_distances(pairs, results, data, flip, fallback))
    info = machine_info()
    folds = len({p.fold for p in pairs})
    state = "cached" if not todo else "computed"
    print(f"LFW View 2: {len(pairs)} pairs, {len(images)} images, {folds} folds")
    print(machine_line(info))
    print(f"descriptor pass: {len(todo)} images, {wall:.1f} s, {args.workers} workers ({state})")
    print(f"no face: HOG {hog_missing} images, HOG + MMOD {all_missing} images")
    print()
    header = (
        f"{'variant':<32} {'acc mean':>9} {'± std':>7} {'AUC':>8} {'TAR@1e-3':>9} "
        f"{'acc@0.6':>8} {'thr':>6} {'no-face pairs':>14}"
    )
    print(header)
    print("-" * len(header))
    for label, r in rows.items():
        print(
            f"{label:<32} {100 * r['accuracy_mean']:8.2f}% {100 * r['accuracy_std']:6.2f} "
            f"{r['auc']:8.5f} {100 * r['tar_at_far_1e-3']:8.2f}% "
            f"{100 * r['accuracy_at_0.6']:7.2f}% {r['threshold_mean']:6.3f} "
            f"{r['pairs_without_face']:14d}"
        )
    print(f"published (dlib model card): {100 * PUBLISHED_ACCURACY:.2f}%")
    document = {
        "machine": info,
        "pairs": len(pairs),
        "images": len(images),
        "no_face_images_hog": hog_missing,
        "no_face_images_hog_mmod": all_missing,
        "descriptor_pass_s": wall,
        "computed_images": len(todo),
        "variants": rows,
        "published_accuracy": PUBLISHED_ACCURACY,
    }
    write_results("lfw", document)


if __name__ == "__main__":
    main()
