"""dlib's face descriptor: dlib-bin against its ONNX export run with onnxruntime.

    .venv/bin/python bench/onnx_descriptor.py [--lfw-images 500] [--repeat 7] [--quick]

Chips: the first ``--lfw-images`` LFW images (sorted by path, from ../shared/data/lfw/images)
and every image of the first ``--pair-folds`` folds of View 2 (``pairs.txt``), decoded and
detected by ``FaceEngine`` (its default detector chain, as the server), the face nearest the
image centre aligned by ``engine.align.face_chip``: the same chips go to dlib and to ONNX.

Measured, in one process and one run:

* export: seconds to read the ``.dat`` and write the ONNX file (``onnx_export.build_onnx``);
* equivalence over every chip: the max absolute difference per face (over its 128 components)
  between ONNX and dlib, as a distribution (median, p90, p99, max) and the count above the 1e-4
  contract; and, over all pairs of those faces, the largest change in Euclidean distance and the
  number of pairs whose same/different decision at dlib's threshold 0.6 changes;
* LFW View 2 on the first ``--pair-folds`` folds (300 mated + 300 non-mated pairs each): accuracy
  at the fixed threshold 0.6 with each runtime (a pair with a missing face counts as an error)
  and the pairs whose decision differs. Not the 10-fold protocol: bench/lfw.py does that;
* speed on 32 chips, median of ``--repeat`` rounds (dlib and ONNX interleaved in each round, so
  machine noise hits both): dlib per face at batch 1 (one ``compute_face_descriptor`` call per
  chip, as the engine does for a one-face image) and batch 32; ONNX with 1 and 2 intra-op
  threads at batch 1, 8 and 32 (idle threads sleep), and with 2 spinning threads at batch 32
  (onnxruntime's default). The ratio column is dlib batch-1 time / this row's time.

Prints a table with the machine and writes bench/results/onnx_descriptor.json. ``--quick`` is a
smoke run (20 images, no pairs, 2 rounds): its numbers are not for quoting.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchlib import ROOT, cell, machine_info, machine_line, write_results
from facegate.bias.datasets import LfwPair, parse_lfw_pairs
from facegate.engine.align import face_chip
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.embed import DlibEmbedder
from facegate.engine.image import RGBImage
from facegate.engine.onnx_embed import OnnxEmbedder
from facegate.engine.onnx_export import build_onnx
from facegate.engine.types import DetectedFace
from facegate.errors import FacegateError

LFW_DIR = ROOT.parent / "shared" / "data" / "lfw"
TOLERANCE = 1e-4
THRESHOLD = 0.6
SPEED_CHIPS = 32
Embed = Callable[[Sequence[RGBImage]], npt.NDArray[np.float32]]


def central_face(faces: Sequence[DetectedFace], width: int, height: int) -> DetectedFace:
    """The face whose box centre is nearest the image centre (LFW's subject, as bench/lfw.py)."""

    def offset(f: DetectedFace) -> float:
        cx = f.box_px.left + f.box_px.width / 2 - width / 2
        cy = f.box_px.top + f.box_px.height / 2 - height / 2
        return cx * cx + cy * cy

    return min(faces, key=offset)


def lfw_chips(engine: FaceEngine, folder: Path, names: Sequence[str]) -> dict[str, RGBImage]:
    """The chip of the central face of each image (``images/``-relative name); images where the
    engine finds no face are left out."""
    chips: dict[str, RGBImage] = {}
    for name in names:
        try:
            image = engine.decode((folder / name).read_bytes())
        except (FacegateError, OSError):
            continue
        faces = engine.detect(image)
        if faces:
            face = central_face(faces, image.width_px, image.height_px)
            chips[name] = face_chip(image.pixels, face.box_px, face.points5_px)
    return chips


def pair_accuracy(
    pairs: Sequence[LfwPair], index: dict[str, int], vectors: npt.NDArray[np.float32]
) -> tuple[float, npt.NDArray[np.bool_]]:
    """Accuracy at dlib's threshold 0.6 (a pair with a missing face is an error) and the
    decision per pair (True: "same person")."""
    same = np.zeros(len(pairs), dtype=bool)
    correct = 0
    for i, p in enumerate(pairs):
        if p.left in index and p.right in index:
            d = float(np.linalg.norm(vectors[index[p.left]] - vectors[index[p.right]]))
            same[i] = d < THRESHOLD
            correct += int(same[i] == p.mated)
    return correct / len(pairs), same


def per_face_seconds(embed: Embed, chips: Sequence[RGBImage], batch: int) -> float:
    t0 = time.perf_counter()
    for start in range(0, len(chips), batch):
        embed(chips[start : start + batch])
    return (time.perf_counter() - t0) / len(chips)


def pairwise(v: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    x = v.astype(np.float64)
    sq = (x * x).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    return np.asarray(np.sqrt(d2), dtype=np.float64)


def equivalence(
    reference: npt.NDArray[np.float32], exported: npt.NDArray[np.float32]
) -> dict[str, Any]:
    diff = np.abs(exported.astype(np.float64) - reference.astype(np.float64))
    per_face = diff.max(axis=1)
    iu = np.triu_indices(len(reference), k=1)
    d_ref, d_onnx = pairwise(reference)[iu], pairwise(exported)[iu]
    return {
        "faces": len(reference),
        "per_face_max_abs": {
            "median": float(np.median(per_face)),
            "p90": float(np.percentile(per_face, 90)),
            "p99": float(np.percentile(per_face, 99)),
            "max": float(per_face.max()),
        },
        "component_abs_median": float(np.median(diff)),
        "faces_over_tolerance": int((per_face > TOLERANCE).sum()),
        "pairs": len(d_ref),
        "pair_distance_max_abs_change": float(np.abs(d_ref - d_onnx).max()),
        "pair_decisions_changed_at_0_6": int(((d_ref < THRESHOLD) != (d_onnx < THRESHOLD)).sum()),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lfw-images", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--pair-folds", type=int, default=1)
    parser.add_argument("--lfw", type=Path, default=LFW_DIR)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.lfw_images, args.repeat, args.pair_folds = 20, 2, 0

    engine = FaceEngine(EngineConfig())
    dat = engine.models.files.face_descriptor
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        onnx_path = Path(tmp) / "descriptor.onnx"
        build_onnx(dat, onnx_path)
        export_s = time.perf_counter() - t0
        onnx = {t: OnnxEmbedder(onnx_path, intra_op_threads=t, max_batch=32) for t in (1, 2)}
        spinning = OnnxEmbedder(onnx_path, intra_op_threads=2, max_batch=32, spin=True)

    images = args.lfw / "images"
    first = sorted(str(p.relative_to(images)) for p in images.rglob("*.jpg"))[: args.lfw_images]
    all_pairs = parse_lfw_pairs((args.lfw / "pairs.txt").read_text())
    pairs = [p for p in all_pairs if p.fold < args.pair_folds]
    names = sorted({*first, *(p.left for p in pairs), *(p.right for p in pairs)})
    t0 = time.perf_counter()
    by_name = lfw_chips(engine, images, names)
    chip_s = time.perf_counter() - t0
    index = {name: i for i, name in enumerate(by_name)}
    chips = list(by_name.values())
    dlib = DlibEmbedder(engine.models.descriptor)
    reference = np.concatenate([dlib.embed(chips[i : i + 32]) for i in range(0, len(chips), 32)])
    exported = onnx[2].embed(chips)
    eq = equivalence(reference, exported)
    view2: dict[str, Any] = {"folds": args.pair_folds, "pairs": len(pairs)}
    if pairs:
        acc_dlib, same_dlib = pair_accuracy(pairs, index, reference)
        acc_onnx, same_onnx = pair_accuracy(pairs, index, exported)
        view2 |= {
            "accuracy_at_0_6_dlib": acc_dlib,
            "accuracy_at_0_6_onnx": acc_onnx,
            "decisions_changed": int((same_dlib != same_onnx).sum()),
        }

    speed = chips[:SPEED_CHIPS]
    # (runtime, threads, batch) -> one timed run, seconds per face
    runs: dict[tuple[str, int, int], Callable[[], float]] = {
        ("dlib-bin", 1, 1): partial(per_face_seconds, dlib.embed, speed[:8], 1),
        ("dlib-bin", 1, 32): partial(per_face_seconds, dlib.embed, speed, 32),
    }
    for threads, emb in onnx.items():
        emb.embed(speed)  # warm-up: onnxruntime allocates its buffers on the first run
        for batch in (1, 8, 32):
            runs["onnxruntime", threads, batch] = partial(per_face_seconds, emb.embed, speed, batch)
    spinning.embed(speed)
    runs["onnxruntime+spin", 2, 32] = partial(per_face_seconds, spinning.embed, speed, 32)
    samples: dict[tuple[str, int, int], list[float]] = {key: [] for key in runs}
    for _ in range(args.repeat):
        for key, run in runs.items():
            samples[key].append(run())
    median_ms = {key: 1000.0 * statistics.median(v) for key, v in samples.items()}
    base = median_ms["dlib-bin", 1, 1]

    info = machine_info()
    info["onnxruntime"] = version("onnxruntime")
    info["onnx"] = version("onnx")
    rows = [
        {
            "runtime": runtime,
            "threads": threads,
            "batch": batch,
            "ms_per_face": ms,
            "faces_per_s": 1000.0 / ms,
            "speedup_vs_dlib_b1": base / ms,
        }
        for (runtime, threads, batch), ms in median_ms.items()
    ]
    document = {
        "machine": info,
        "settings": {
            "lfw_images": args.lfw_images,
            "repeat": args.repeat,
            "speed_chips": len(speed),
            "quick": args.quick,
        },
        "export_s": export_s,
        "chips_s": chip_s,
        "lfw_images": len(names),
        "lfw_images_without_face": len(names) - len(chips),
        "equivalence": eq,
        "view2_pairs": view2,
        "speed": rows,
    }
    print(machine_line(info) + f", onnxruntime {info['onnxruntime']}")
    print(
        f"export {export_s:.2f} s; {eq['faces']} LFW chips from {len(names)} images (the first "
        f"{args.lfw_images} by path and those of View 2 folds < {args.pair_folds}; "
        f"{len(names) - len(chips)} without a face), {chip_s:.1f} s to detect and align"
    )
    pf = eq["per_face_max_abs"]
    print(
        f"max |onnx - dlib| per face: median {pf['median']:.2e}, p90 {pf['p90']:.2e}, "
        f"p99 {pf['p99']:.2e}, max {pf['max']:.2e}; faces over {TOLERANCE:g}: "
        f"{eq['faces_over_tolerance']}"
    )
    print(
        f"{eq['pairs']} pairs: largest distance change {eq['pair_distance_max_abs_change']:.2e}, "
        f"decisions changed at {THRESHOLD}: {eq['pair_decisions_changed_at_0_6']}"
    )
    if pairs:
        print(
            f"LFW View 2, {len(pairs)} pairs of {args.pair_folds} fold(s), accuracy at "
            f"{THRESHOLD} (missing face = error): dlib {view2['accuracy_at_0_6_dlib']:.4f}, "
            f"onnx {view2['accuracy_at_0_6_onnx']:.4f}, decisions changed "
            f"{view2['decisions_changed']}"
        )
    print(f"\nspeed on {len(speed)} chips, median of {args.repeat} rounds")
    print(f"{'runtime':<16} {'threads':>7} {'batch':>5} {'ms/face':>8} {'faces/s':>8} {'ratio':>6}")
    for row in rows:
        print(
            f"{row['runtime']:<16} {row['threads']:>7} {row['batch']:>5} "
            f"{cell(row['ms_per_face'], 8, 2)} {cell(row['faces_per_s'], 8, 1)} "
            f"{cell(row['speedup_vs_dlib_b1'], 6, 1)}"
        )
    if not args.quick:
        print(f"wrote {write_results('onnx_descriptor', document)}")


if __name__ == "__main__":
    main()
