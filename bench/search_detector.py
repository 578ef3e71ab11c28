"""The search probe's detector: MTCNN's coarse pyramid levels first against the full pyramid, on
FairFace val (failure to detect per race x gender) and LFW View 2 (10-fold accuracy), one run.

    PYTHONPATH=src .venv/bin/python bench/search_detector.py [--workers 2] [--skip 2]

A search probe keeps only its largest face (``analyze(max_faces=1)``, as SearchFacesByImage,
CompareFaces' source and the bias toolkit take it). With ``DetectorConfig.mtcnn_coarse_skip``
(default 2) the engine then runs MTCNN's cascade on the pyramid without its ``skip`` finest
levels first (faces from about 80 px at the 40 px minimum), and on every level only where that
finds no face (reusing the coarse levels: the result is then the full pyramid's, bit for bit).
``--skip 0`` is the engine before the change: the full pyramid every time (the same code path
and the same boxes as the code before, tests/engine/test_mtcnn.py).

Both configurations go through the bias toolkit's descriptor pass (``compute_descriptors``: an
engine pool of ``--workers`` processes, the default chain: MTCNN, then HOG, then padded MTCNN; no
MMOD), so the figures are the ones ``facegate bias`` would report. Printed, and written to
bench/results/search_detector.json:

* FairFace val (5,000 crops): failure to detect per race x gender and overall, with Wilson 95%
  intervals, for each configuration;
* LFW View 2 (6,000 pairs, 7,701 images): 10-fold accuracy of the raw distance (a pair with no
  face is an error), as ``facegate bias normalisation`` computes it;
* how many images get the same descriptor bit for bit, and the distance between the two for the
  others (median, p90, p99, max);
* engine time for the 640x480 one-face probe (bench/search_throughput.py) and per LFW image,
  medians of in-process ``analyze(max_faces=1)`` calls, both configurations interleaved.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from typing import Any

import numpy as np

from benchlib import ROOT, machine_info, machine_line, write_results
from facegate.bias.datasets import load_fairface, load_lfw
from facegate.bias.descriptors import FACE, DescriptorSet, compute_descriptors
from facegate.bias.folds import cross_validate
from facegate.bias.groups import group_key
from facegate.bias.stats import wilson_interval
from facegate.bias.verification import pair_distances
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.detect import DetectorConfig
from search_throughput import probe_640x480

DATA = ROOT.parent / "shared" / "data"


def config(skip: int) -> EngineConfig:
    return EngineConfig(detector=DetectorConfig(mtcnn_coarse_skip=skip))


def cell(missed: int, n: int) -> str:
    ci = wilson_interval(missed, n)
    assert ci is not None
    return f"{missed / n:.2%} ({ci[0]:.1%}-{ci[1]:.1%})"


def agreement(a: DescriptorSet, b: DescriptorSet) -> dict[str, Any]:
    both = np.isfinite(a.vectors).all(axis=1) & np.isfinite(b.vectors).all(axis=1)
    d = np.linalg.norm(a.vectors[both].astype(np.float64) - b.vectors[both], axis=1)
    moved = d[d > 0]
    return {
        "images_with_a_face_in_both": int(both.sum()),
        "identical": int((d == 0).sum()),
        "found_in_one_only": int(
            (np.isfinite(a.vectors).all(axis=1) != np.isfinite(b.vectors).all(axis=1)).sum()
        ),
        "moved_median": float(np.median(moved)) if moved.size else 0.0,
        "moved_p90": float(np.percentile(moved, 90)) if moved.size else 0.0,
        "moved_p99": float(np.percentile(moved, 99)) if moved.size else 0.0,
        "moved_max": float(moved.max()) if moved.size else 0.0,
    }


def engine_times(skips: list[int], lfw_paths: list[Any], rounds: int) -> dict[str, Any]:
    engines = {s: FaceEngine(config(s)) for s in skips}
    probe = probe_640x480()
    lfw = [p.read_bytes() for p in lfw_paths]
    probe_t: dict[int, list[float]] = {s: [] for s in skips}
    lfw_t: dict[int, list[float]] = {s: [] for s in skips}
    for r in range(rounds + 3):
        for s in skips if r % 2 == 0 else list(reversed(skips)):
            t0 = time.perf_counter()
            engines[s].analyze(probe, max_faces=1)
            if r >= 3:
                probe_t[s].append(time.perf_counter() - t0)
    for data in lfw:
        for s in skips:
            t0 = time.perf_counter()
            engines[s].analyze(data, max_faces=1)
            lfw_t[s].append(time.perf_counter() - t0)
    return {
        str(s): {
            "probe_640x480_ms": 1000 * statistics.median(probe_t[s]),
            "lfw_image_ms": 1000 * statistics.median(lfw_t[s]),
        }
        for s in skips
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip", type=int, default=2, help="coarse_skip to compare with 0")
    parser.add_argument("--rounds", type=int, default=40, help="probe timings per configuration")
    args = parser.parse_args()
    load_start = f"{os.getloadavg()[0]:.2f}"
    skips = [0, args.skip]
    names = {0: "full pyramid (before)", args.skip: f"coarse first (skip {args.skip})"}
    doc: dict[str, Any] = {"skips": skips}

    fairface = load_fairface(DATA / "fairface_val")
    ff = {
        s: compute_descriptors(
            fairface, config=config(s), workers=args.workers, mmod_fallback=False
        )
        for s in skips
    }
    total: Counter[str] = Counter()
    missed: dict[int, Counter[str]] = {s: Counter() for s in skips}
    for i, sample in enumerate(fairface.samples):
        group = group_key(sample, ("race", "gender"))
        total[group] += 1
        for s in skips:
            missed[s][group] += ff[s].statuses[i] != FACE
    print("FairFace val, failure to detect (no face), default chain without MMOD")
    print("| group | images | " + " | ".join(names[s] for s in skips) + " |")
    print("|---|---|" + "---|" * len(skips))
    rows = []
    for group in sorted(total):
        print(
            f"| {group} | {total[group]} | "
            + " | ".join(cell(missed[s][group], total[group]) for s in skips)
            + " |"
        )
        rows.append(
            {"group": group, "images": total[group], **{str(s): missed[s][group] for s in skips}}
        )
    n = sum(total.values())
    print(f"| all | {n} | " + " | ".join(cell(sum(missed[s].values()), n) for s in skips) + " |")
    doc["fairface"] = {
        "rows": rows,
        "all": {str(s): sum(missed[s].values()) for s in skips},
        "images": n,
        "agreement": agreement(ff[0], ff[args.skip]),
    }

    manifest, pairs = load_lfw(DATA / "lfw")
    lfw = {
        s: compute_descriptors(
            manifest, config=config(s), workers=args.workers, mmod_fallback=False
        )
        for s in skips
    }
    mated = np.array([p.mated for p in pairs])
    folds = np.array([p.fold for p in pairs])
    doc["lfw"] = {"pairs": len(pairs), "images": len(manifest.samples)}
    print("LFW View 2, 10-fold accuracy (raw distance; a pair without a face is an error)")
    for s in skips:
        d = pair_distances(lfw[s].vectors, pairs)
        cv = cross_validate(d, mated, folds)
        no_face = int(sum(st != FACE for st in lfw[s].statuses))
        acc = float(np.mean(cv.accuracies))
        std = float(np.std(cv.accuracies, ddof=1))
        doc["lfw"][str(s)] = {"accuracy": acc, "std": std, "images_without_face": no_face}
        print(f"   {names[s]:28s} {acc:.2%} (std {std:.2%}), images without a face {no_face}")
    doc["lfw"]["agreement"] = agreement(lfw[0], lfw[args.skip])
    doc["fairface"]["agreement"] = agreement(ff[0], ff[args.skip])
    for name in ("fairface", "lfw"):
        a = doc[name]["agreement"]
        print(
            f"{name}: identical descriptors {a['identical']} of {a['images_with_a_face_in_both']}; "
            f"the others moved median {a['moved_median']:.4f}, p90 {a['moved_p90']:.4f}, "
            f"p99 {a['moved_p99']:.4f}, max {a['moved_max']:.4f}; a face in one only: "
            f"{a['found_in_one_only']}"
        )
    timed = [s.path for s in manifest.samples[:: max(1, len(manifest.samples) // 200)]]
    doc["engine_ms"] = engine_times(skips, timed, args.rounds)
    for s in skips:
        t = doc["engine_ms"][str(s)]
        print(
            f"engine, analyze(max_faces=1), {names[s]}: 640x480 probe {t['probe_640x480_ms']:.1f} "
            f"ms, LFW image {t['lfw_image_ms']:.1f} ms (medians)"
        )
    info = machine_info()
    info["load_1m_at_start"] = load_start
    doc["machine"] = info
    print(machine_line(info) + f" (load average {load_start} at the start)")
    write_results("search_detector", doc)


if __name__ == "__main__":
    main()
