"""The search probe's detector: BlazeFace first (then the MTCNN chain where it finds no face)
against the chain alone, on FairFace val (failure to detect per race x gender) and LFW View 2
(10-fold accuracy), one run.

    PYTHONPATH=src .venv/bin/python bench/search_blazeface.py [--workers 2] [--models-dir DIR]

A search probe keeps only its largest face (``analyze(max_faces=1)``, as SearchFacesByImage,
CompareFaces' source and the bias toolkit take it). With ``DetectorConfig.search_blazeface``
(default on) the engine runs BlazeFace (``engine.blazeface``: the short-range model on the image
letterboxed to 128x128, its box mapped to dlib HOG's geometry) and uses its largest face; only
where it finds none does the probe go to the chain as before (MTCNN's coarse levels first, then
HOG, then padded MTCNN). "before" is ``search_blazeface=False``: the engine before the change.

Both configurations go through the bias toolkit's descriptor pass (``compute_descriptors``: an
engine pool of ``--workers`` processes, no MMOD), so the figures are the ones ``facegate bias``
would report (its cache holds "before" already on a machine that ran the toolkit). Printed, and
written to bench/results/search_blazeface.json:

* FairFace val (5,000 crops): failure to detect per race x gender and overall (Wilson 95%
  intervals), and which detector found the faces after;
* LFW View 2 (6,000 pairs, 7,701 images): 10-fold accuracy of the raw distance (a pair with no
  face is an error);
* LFW "mixed": each pair's left image as a probe with BlazeFace, its right image as enrolled by
  the chain (IndexFaces never uses BlazeFace), the server's situation with BlazeFace on;
* FairFace impostor pairs within each race x gender group (FairFace has one image per person):
  the false match rate at the distances where the chain's is 1% and 0.1%, for the chain, for
  BlazeFace probes and for BlazeFace probes against chain-enrolled faces (the shipped
  calibrations were fitted on the chain's descriptors);
* how many images get the same descriptor bit for bit, and the distance between the two for the
  others (median, p90, p99, max);
* faces found in the face-less samples (coffee.png, no_face_white.png, dlib_voc/dogs.jpg);
* engine time for the 640x480 one-face probe (bench/search_throughput.py), per LFW image and per
  FairFace image: medians of in-process ``analyze(max_faces=1)`` calls and of their detection
  step alone, both configurations interleaved, and the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchlib import ROOT, SAMPLES, machine_info, machine_line, write_results
from facegate.bias.datasets import load_fairface, load_lfw
from facegate.bias.descriptors import FACE, compute_descriptors
from facegate.bias.folds import cross_validate
from facegate.bias.groups import group_key
from facegate.bias.verification import pair_distances
from facegate.engine.attributes.types import FaceModels
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.detect import DetectorConfig
from facegate.errors import FacegateError
from search_detector import agreement, cell
from search_throughput import probe_640x480

DATA = ROOT.parent / "shared" / "data"
NO_FACE = ("coffee.png", "no_face_white.png", "dlib_voc/dogs.jpg")
NAMES = {"before": "chain (before)", "after": "BlazeFace first"}
Floats = npt.NDArray[np.float64]


def config(which: str, models_dir: Path | None) -> EngineConfig:
    return EngineConfig(
        detector=DetectorConfig(search_blazeface=which == "after"),
        face_models=FaceModels(models_dir=models_dir),
    )


def mixed_distances(probe: npt.NDArray[Any], enrolled: npt.NDArray[Any], pairs: Any) -> Floats:
    """Each pair's distance with its left image from ``probe`` and its right from ``enrolled``
    (NaN where either has no face)."""
    left = np.array([p.left for p in pairs])
    right = np.array([p.right for p in pairs])
    diff = probe[left].astype(np.float64) - enrolled[right].astype(np.float64)
    return np.asarray(np.sqrt(np.einsum("ij,ij->i", diff, diff)), dtype=np.float64)


def impostor_fmr(
    vectors: dict[str, npt.NDArray[Any]], groups: list[str], rates: tuple[float, ...]
) -> dict[str, Any]:
    """FMR of the within-group impostor pairs at the chain's distance thresholds for ``rates``:
    "before" (chain x chain), "after" (BlazeFace x BlazeFace), "mixed" (BlazeFace probe x
    chain-enrolled: both orders of each pair). Images without a face in any set are left out."""
    found = np.ones(len(groups), dtype=bool)
    for v in vectors.values():
        found &= np.isfinite(v).all(axis=1)
    labels = np.array(groups)
    d: dict[str, list[Floats]] = {"before": [], "after": [], "mixed": []}
    for group in sorted(set(groups)):
        idx = np.flatnonzero((labels == group) & found)
        iu = np.triu_indices(len(idx), k=1)
        b, a = (vectors[w][idx].astype(np.float64) for w in ("before", "after"))

        def dist(x: Floats, y: Floats) -> Floats:
            sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T
            return np.asarray(np.sqrt(np.maximum(sq, 0.0)), dtype=np.float64)

        d["before"].append(dist(b, b)[iu])
        d["after"].append(dist(a, a)[iu])
        cross = dist(a, b)
        d["mixed"].append(np.concatenate([cross[iu], cross.T[iu]]))
    pooled = {w: np.concatenate(v) for w, v in d.items()}
    out: dict[str, Any] = {"pairs": {w: int(v.size) for w, v in pooled.items()}}
    for rate in rates:
        threshold = float(np.quantile(pooled["before"], rate))
        out[f"fmr_{rate:g}"] = {
            "distance": threshold,
            **{w: float(np.mean(v <= threshold)) for w, v in pooled.items()},
        }
    return out


def engine_times(
    engines: dict[str, FaceEngine], images: dict[str, list[bytes]], rounds: dict[str, int]
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Median ms of ``analyze(max_faces=1)`` per kind of image, and of its detection step alone
    (``FaceEngine.times.detect_s``: BlazeFace, and the chain where BlazeFace found nothing),
    configurations interleaved."""
    times: dict[str, dict[str, list[float]]] = {w: {k: [] for k in images} for w in engines}
    detect: dict[str, dict[str, list[float]]] = {w: {k: [] for k in images} for w in engines}
    order = list(engines)
    for kind, datas in images.items():
        for r in range(rounds[kind]):
            for data in datas:
                for which in order if r % 2 == 0 else order[::-1]:
                    engine = engines[which]
                    d0 = engine.times.detect_s
                    t0 = time.perf_counter()
                    engine.analyze(data, max_faces=1)
                    times[which][kind].append(time.perf_counter() - t0)
                    detect[which][kind].append(engine.times.detect_s - d0)

    def medians(per: dict[str, list[float]]) -> dict[str, float]:
        return {k: 1000 * statistics.median(v) for k, v in per.items()}

    return (
        {w: medians(per) for w, per in times.items()},
        {w: medians(per) for w, per in detect.items()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--models-dir", type=Path, default=None, help="FACEGATE_MODELS_DIR")
    parser.add_argument("--rounds", type=int, default=40, help="probe timings per configuration")
    args = parser.parse_args()
    load_start = f"{os.getloadavg()[0]:.2f}"
    which_all = ["before", "after"]
    configs = {w: config(w, args.models_dir) for w in which_all}
    doc: dict[str, Any] = {}

    fairface = load_fairface(DATA / "fairface_val")
    ff = {
        w: compute_descriptors(fairface, config=c, workers=args.workers, mmod_fallback=False)
        for w, c in configs.items()
    }
    total: Counter[str] = Counter()
    missed: dict[str, Counter[str]] = {w: Counter() for w in which_all}
    for i, sample in enumerate(fairface.samples):
        group = group_key(sample, ("race", "gender"))
        total[group] += 1
        for w in which_all:
            missed[w][group] += ff[w].statuses[i] != FACE
    print("FairFace val, failure to detect (no face), default chain without MMOD")
    print("| group | images | " + " | ".join(NAMES[w] for w in which_all) + " |")
    print("|---|---|" + "---|" * len(which_all))
    rows = []
    for group in sorted(total):
        print(
            f"| {group} | {total[group]} | "
            + " | ".join(cell(missed[w][group], total[group]) for w in which_all)
            + " |"
        )
        rows.append(
            {"group": group, "images": total[group], **{w: missed[w][group] for w in which_all}}
        )
    n = sum(total.values())
    print(
        f"| all | {n} | " + " | ".join(cell(sum(missed[w].values()), n) for w in which_all) + " |"
    )
    found_by = {w: dict(Counter(f for f in ff[w].found_by if f)) for w in which_all}
    print("FairFace val, found by: " + "; ".join(f"{NAMES[w]} {found_by[w]}" for w in which_all))
    doc["fairface"] = {
        "rows": rows,
        "all": {w: sum(missed[w].values()) for w in which_all},
        "images": n,
        "found_by": found_by,
        "agreement": agreement(ff["before"], ff["after"]),
    }

    manifest, pairs = load_lfw(DATA / "lfw")
    lfw = {
        w: compute_descriptors(manifest, config=c, workers=args.workers, mmod_fallback=False)
        for w, c in configs.items()
    }
    mated = np.array([p.mated for p in pairs])
    folds = np.array([p.fold for p in pairs])
    doc["lfw"] = {"pairs": len(pairs), "images": len(manifest.samples)}
    print("LFW View 2, 10-fold accuracy (raw distance; a pair without a face is an error)")
    for w in which_all:
        d = pair_distances(lfw[w].vectors, pairs)
        cv = cross_validate(d, mated, folds)
        no_face = int(sum(st != FACE for st in lfw[w].statuses))
        acc = float(np.mean(cv.accuracies))
        std = float(np.std(cv.accuracies, ddof=1))
        by = dict(Counter(f for f in lfw[w].found_by if f))
        doc["lfw"][w] = {
            "accuracy": acc,
            "std": std,
            "images_without_face": no_face,
            "found_by": by,
        }
        print(f"   {NAMES[w]:20s} {acc:.2%} (std {std:.2%}), no face {no_face}, found by {by}")
    d = mixed_distances(lfw["after"].vectors, lfw["before"].vectors, pairs)
    cv = cross_validate(d, mated, folds)
    acc, std = float(np.mean(cv.accuracies)), float(np.std(cv.accuracies, ddof=1))
    doc["lfw"]["mixed"] = {"accuracy": acc, "std": std}
    print(f"   {'BlazeFace probe x chain-enrolled':20s} {acc:.2%} (std {std:.2%})")
    doc["lfw"]["agreement"] = agreement(lfw["before"], lfw["after"])
    groups = [group_key(s, ("race", "gender")) for s in fairface.samples]
    fmr = impostor_fmr({w: ff[w].vectors for w in which_all}, groups, (0.01, 0.001))
    doc["fairface"]["impostor_fmr"] = fmr
    print("FairFace within-group impostor pairs, FMR at the chain's thresholds:")
    for key, row in fmr.items():
        if key.startswith("fmr_"):
            print(
                f"   chain FMR {key[4:]} (distance {row['distance']:.4f}): BlazeFace "
                f"{row['after']:.4%}, BlazeFace probe x chain-enrolled {row['mixed']:.4%}"
            )
    for name in ("fairface", "lfw"):
        a = doc[name]["agreement"]
        print(
            f"{name}: identical descriptors {a['identical']} of {a['images_with_a_face_in_both']}; "
            f"the others moved median {a['moved_median']:.4f}, p90 {a['moved_p90']:.4f}, "
            f"p99 {a['moved_p99']:.4f}, max {a['moved_max']:.4f}; a face in one only: "
            f"{a['found_in_one_only']}"
        )

    engines = {w: FaceEngine(c) for w, c in configs.items()}
    false_faces: dict[str, dict[str, int]] = {w: {} for w in which_all}
    for rel in NO_FACE:
        data = (SAMPLES / rel).read_bytes()
        for w in which_all:
            try:
                false_faces[w][rel] = len(engines[w].analyze(data, max_faces=1).faces)
            except FacegateError:
                false_faces[w][rel] = 0
    doc["faces_in_face_less_samples"] = false_faces
    print("faces found in face-less samples: " + str(false_faces))
    step = max(1, len(manifest.samples) // 100)
    images = {
        "probe_640x480": [probe_640x480()],
        "lfw_image": [s.path.read_bytes() for s in manifest.samples[::step]],
        "fairface_image": [
            s.path.read_bytes() for s in fairface.samples[:: len(fairface.samples) // 100]
        ],
    }
    rounds = {"probe_640x480": args.rounds, "lfw_image": 2, "fairface_image": 2}
    for engine in engines.values():  # warm up: first sessions runs are slow
        for _ in range(3):
            engine.analyze(images["probe_640x480"][0], max_faces=1)
    doc["engine_ms"], doc["detect_ms"] = engine_times(engines, images, rounds)
    doc["engine_ms_rounds"] = rounds
    for measure in ("engine_ms", "detect_ms"):
        what = "analyze(max_faces=1)" if measure == "engine_ms" else "its detection step"
        for w in which_all:
            t = doc[measure][w]
            print(
                f"{what}, {NAMES[w]}: 640x480 probe {t['probe_640x480']:.1f} ms, LFW image "
                f"{t['lfw_image']:.1f} ms, FairFace image {t['fairface_image']:.1f} ms (medians)"
            )
        ratio = {k: doc[measure]["before"][k] / doc[measure]["after"][k] for k in images}
        doc[f"{measure}_ratio_before_to_after"] = ratio
        print(
            f"{what}, chain / BlazeFace first: "
            + ", ".join(f"{k} {v:.2f}x" for k, v in ratio.items())
        )
    info = machine_info()
    info["load_1m_at_start"] = load_start
    doc["machine"] = info
    print(machine_line(info) + f" (load average {load_start} at the start)")
    write_results("search_blazeface", doc)


if __name__ == "__main__":
    main()
