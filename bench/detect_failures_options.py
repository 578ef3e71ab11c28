"""Failure to detect per race x gender on FairFace val, for each detector option, in one run.

    .venv/bin/python bench/detect_failures_options.py [--sample N] [--seed 0] [--workers 2]

An image "fails" when the option finds no face at all (every FairFace val image is a crop of one
face, as the descriptor cache counts it). Options, each run once per image, timed per image:

* HOG at the crop's own size (upsample 0) and upsampled once (upsample 1, the engine's setting
  for images up to 1 megapixel; it should reproduce the cache's "HOG" column), score >= 0.2;
* HOG on the crop padded by 25% or 50% of its side on every side, edge pixels replicated or
  black, upsample 0: tests whether misses come from the face filling the frame (no margin for
  HOG's 80x80 window);
* HOG on the crop shrunk to 0.5x, padded 25% (edge), upsampled once: a downscaled variant;
* MTCNN (``engine.mtcnn``, onnxruntime with 1 thread) with minimum face 20 px (the published
  default) and 40 px, and 40 px with lower stage thresholds (0.5, 0.6, 0.6); the 40 px options
  also on the crop padded by 25% (edge pixels replicated, ``MtcnnConfig.pad_ratio``);
* fallbacks, combined per image from the runs above: "A -> B" fails when both fail and costs
  A's time plus B's time on the images A misses;
* HOG upsample 1, then MMOD when HOG finds nothing: read from the bias toolkit's descriptor cache
  (``facegate bias impostors --dataset fairface`` fills it), never recomputed here. Its time is
  an estimate: the measured HOG upsample 1 time plus, on the images HOG misses, MMOD's median
  time on ``--mmod-timing`` (default 10) sampled images measured in this run. Chains
  "MTCNN -> HOG up 1 -> MMOD" combine the cache's outcome with MTCNN's (MMOD would run only
  where both miss).

Groups are race x gender (14). Each cell: failure rate with its Wilson 95% interval
(``facegate.bias.stats.wilson_interval``); per option the worst and best group, the worst/best
ratio with Katz's 95% interval (see :func:`ratio_interval` for its limits) and mean ms per
image (2 worker processes on 2 cores, one image at a time each, all options run in turn on each
image). ``--sample N`` uses a seeded sample stratified by group (the default 0 is all 5,000
images). Per-image outcomes are saved under bench/results/cache/ (``--reuse`` summarises them
again without measuring). Prints markdown tables and writes
bench/results/detect_failures_options.json.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import dlib
import numpy as np
from PIL import Image

from benchlib import RESULTS, ROOT, machine_info, write_results
from facegate.bias.datasets import Manifest, load_fairface
from facegate.bias.descriptors import FACE, DescriptorCache, config_key
from facegate.bias.groups import group_key
from facegate.bias.stats import wilson_interval
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.detect import DetectorConfig, MmodDetector
from facegate.engine.image import RGBImage
from facegate.engine.models import file_sha256, load_models
from facegate.engine.mtcnn import MtcnnConfig, MtcnnDetector

THRESHOLD = DetectorConfig().score_threshold
GROUP_BY = ("race", "gender")
HOG_OPTIONS: dict[str, tuple[float, float, str, int]] = {
    # name: (scale, pad fraction, pad mode, upsample)
    "HOG up 0": (1.0, 0.0, "edge", 0),
    "HOG up 1": (1.0, 0.0, "edge", 1),
    "HOG pad 25% edge, up 0": (1.0, 0.25, "edge", 0),
    "HOG pad 25% black, up 0": (1.0, 0.25, "constant", 0),
    "HOG pad 50% edge, up 0": (1.0, 0.5, "edge", 0),
    "HOG x0.5, pad 25% edge, up 1": (0.5, 0.25, "edge", 1),
}
MTCNN_OPTIONS: dict[str, MtcnnConfig] = {
    "MTCNN min 20": MtcnnConfig(min_face_px=20),
    "MTCNN min 40": MtcnnConfig(min_face_px=40),
    "MTCNN min 40, thr .5/.6/.6": MtcnnConfig(min_face_px=40, thresholds=(0.5, 0.6, 0.6)),
    "MTCNN min 40, pad 25%": MtcnnConfig(min_face_px=40, pad_ratio=0.25),
    "MTCNN min 40, thr .5/.6/.6, pad 25%": MtcnnConfig(
        min_face_px=40, thresholds=(0.5, 0.6, 0.6), pad_ratio=0.25
    ),
}
FALLBACKS = (
    ("HOG up 1", "MTCNN min 40"),
    ("MTCNN min 40", "HOG up 1"),
    ("HOG up 0", "MTCNN min 40"),
    ("HOG up 1", "MTCNN min 20"),
    ("MTCNN min 20", "HOG up 1"),
    ("MTCNN min 40, pad 25%", "HOG up 1"),
    ("MTCNN min 40", "MTCNN min 40, pad 25%"),
)
CACHE_HOG = "HOG up 1 (descriptor cache)"
CACHE_MMOD = "HOG up 1 -> MMOD (descriptor cache)"
SUMMARY_COLUMNS = (
    "HOG up 1",
    "HOG pad 25% edge, up 0",
    "MTCNN min 40",
    "MTCNN min 40, pad 25%",
    "MTCNN min 40, pad 25% -> HOG up 1",
    CACHE_MMOD,
    "MTCNN min 40 -> HOG up 1 -> MMOD (cache)",
)

Outcome = dict[str, tuple[bool, float]]
"""Per option: (found a face, seconds)."""


def _rgb(path: Path) -> RGBImage:
    with Image.open(path) as img:
        return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def _hog_found(hog: Any, pixels: RGBImage, option: tuple[float, float, str, int]) -> bool:
    scale, pad, mode, upsample = option
    image = pixels
    if scale != 1.0:
        h, w = image.shape[:2]
        size = (round(w * scale), round(h * scale))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
    border = round(pad * max(image.shape[:2]))
    if border:
        image = np.pad(image, ((border, border), (border, border), (0, 0)), mode=mode)  # type: ignore[call-overload]
    _, scores, _ = hog.run(np.ascontiguousarray(image), upsample, THRESHOLD)
    return any(float(s) >= THRESHOLD for s in scores)


def _measure(paths: Sequence[Path]) -> list[Outcome]:
    """Run every base option once on each image (in a worker process; models loaded per call)."""
    hog = dlib.get_frontal_face_detector()
    mtcnn = {name: MtcnnDetector(cfg) for name, cfg in MTCNN_OPTIONS.items()}
    out: list[Outcome] = []
    for path in paths:
        pixels = _rgb(path)
        outcome: Outcome = {}
        for name, option in HOG_OPTIONS.items():
            t0 = time.perf_counter()
            found = _hog_found(hog, pixels, option)
            outcome[name] = (found, time.perf_counter() - t0)
        for name, detector in mtcnn.items():
            t0 = time.perf_counter()
            found = bool(detector.detect(pixels))
            outcome[name] = (found, time.perf_counter() - t0)
        out.append(outcome)
    return out


def stratified_sample(manifest: Manifest, size: int, seed: int) -> list[int]:
    """Indices of a seeded sample with each group's share of ``size`` (all when size is 0)."""
    if size <= 0 or size >= len(manifest):
        return list(range(len(manifest)))
    groups: dict[str, list[int]] = {}
    for i, sample in enumerate(manifest.samples):
        groups.setdefault(group_key(sample, GROUP_BY), []).append(i)
    rng = random.Random(seed)
    chosen: list[int] = []
    for key in sorted(groups):
        members = groups[key]
        chosen.extend(rng.sample(members, max(1, round(size * len(members) / len(manifest)))))
    return sorted(chosen)


def _cached(manifest: Manifest, indices: Sequence[int]) -> dict[str, list[bool | None]]:
    """Found-a-face per image from the descriptor cache, with and without MMOD fallback (None:
    not cached). Reads only; computes nothing."""
    config = EngineConfig()
    version = FaceEngine(config).model_version
    cache = DescriptorCache()
    digests = [file_sha256(manifest.samples[i].path) for i in indices]
    out: dict[str, list[bool | None]] = {}
    for label, fallback in ((CACHE_HOG, False), (CACHE_MMOD, True)):
        records = cache.get_many(config_key(config, version, fallback), digests)
        out[label] = [(records[d].status == FACE) if d in records else None for d in digests]
    return out


def _mmod_seconds(manifest: Manifest, indices: Sequence[int], count: int, seed: int) -> float:
    """MMOD's median seconds per image (engine settings) on ``count`` sampled images."""
    detector = MmodDetector(load_models(), DetectorConfig())
    chosen = random.Random(seed).sample(list(indices), min(count, len(indices)))
    times = []
    for i in chosen:
        pixels = _rgb(manifest.samples[i].path)
        t0 = time.perf_counter()
        detector.detect(pixels)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ratio_interval(worst: tuple[int, int], best: tuple[int, int]) -> list[float] | None:
    """Katz's 95% interval for the ratio of two groups' rates, each (missed, images):
    ``exp(ln(r) +- 1.96 sqrt(1/a - 1/n1 + 1/b - 1/n2))``. None when either group has no miss.
    It treats the two groups as chosen in advance, so it understates the uncertainty of a ratio
    between the groups that happened to come out worst and best."""
    (a, n1), (b, n2) = worst, best
    if a == 0 or b == 0:
        return None
    ratio = (a / n1) / (b / n2)
    half = 1.96 * math.sqrt(1 / a - 1 / n1 + 1 / b - 1 / n2)
    return [ratio * math.exp(-half), ratio * math.exp(half)]


def _summarise(
    found: Sequence[bool], seconds: Sequence[float] | None, groups: Sequence[str]
) -> dict[str, Any]:
    per_group: dict[str, dict[str, Any]] = {}
    for key in sorted(set(groups)):
        flags = [f for f, g in zip(found, groups, strict=True) if g == key]
        missed, n = sum(not f for f in flags), len(flags)
        per_group[key] = {
            "missed": missed,
            "images": n,
            "rate": missed / n,
            "ci95": wilson_interval(missed, n),
        }
    rates = {k: v["rate"] for k, v in per_group.items()}
    worst, best = max(rates, key=rates.__getitem__), min(rates, key=rates.__getitem__)
    missed = sum(not f for f in found)
    return {
        "missed": missed,
        "images": len(found),
        "rate": missed / len(found),
        "ci95": wilson_interval(missed, len(found)),
        "worst_group": worst,
        "worst_rate": rates[worst],
        "best_group": best,
        "best_rate": rates[best],
        "worst_best_ratio": rates[worst] / rates[best] if rates[best] > 0 else None,
        "worst_best_ratio_ci95": ratio_interval(
            (per_group[worst]["missed"], per_group[worst]["images"]),
            (per_group[best]["missed"], per_group[best]["images"]),
        ),
        "ms_per_image": 1000 * statistics.fmean(seconds) if seconds is not None else None,
        "groups": per_group,
    }


def _pct(rate: float, ci: Sequence[float] | None = None) -> str:
    return f"{rate:.1%}" + (f" ({ci[0]:.1%}-{ci[1]:.1%})" if ci is not None else "")


def print_tables(results: dict[str, dict[str, Any]]) -> None:
    print(
        "\n| option | no face, all (95% CI) | worst group | worst (95% CI) | best group |"
        " best | worst/best (95% CI) | ms/image |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, r in results.items():
        worst_ci = r["groups"][r["worst_group"]]["ci95"]
        ratio = f"{r['worst_best_ratio']:.2f}" if r["worst_best_ratio"] is not None else "inf"
        if r["worst_best_ratio_ci95"] is not None:
            ratio += " ({:.1f}-{:.1f})".format(*r["worst_best_ratio_ci95"])
        ms = f"{r['ms_per_image']:.1f}" if r["ms_per_image"] is not None else "-"
        print(
            f"| {label} | {_pct(r['rate'], r['ci95'])} | {r['worst_group']} |"
            f" {_pct(r['worst_rate'], worst_ci)} | {r['best_group']} | {_pct(r['best_rate'])} |"
            f" {ratio} | {ms} |"
        )
    columns = [c for c in SUMMARY_COLUMNS if c in results]
    print("\n| group | images | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for group, g in results[columns[0]]["groups"].items():
        cells = [
            _pct(results[c]["groups"][group]["rate"], results[c]["groups"][group]["ci95"])
            for c in columns
        ]
        print(f"| {group} | {g['images']} | " + " | ".join(cells) + " |")


def _chunks(items: Sequence[Path], count: int) -> list[list[Path]]:
    return [list(items[i::count]) for i in range(count)]


def _measure_all(paths: Sequence[Path], workers: int, chunks: int) -> list[Outcome]:
    """Every base option on every image, in ``workers`` processes; outcomes in ``paths`` order."""
    # Interleaved chunks keep the original order recoverable: chunk c holds positions c, c+k, ...
    outcomes: list[Outcome | None] = [None] * len(paths)
    with ProcessPoolExecutor(workers) as pool:
        for c, chunk_out in enumerate(pool.map(_measure, _chunks(paths, chunks))):
            for j, outcome in enumerate(chunk_out):
                outcomes[c + j * chunks] = outcome
            print(f"  chunk {c + 1}/{chunks} done", file=sys.stderr)
    measured = [o for o in outcomes if o is not None]
    assert len(measured) == len(paths)
    return measured


def _raw_path(indices: Sequence[int]) -> Path:
    digest = hashlib.sha256(",".join(map(str, indices)).encode()).hexdigest()[:12]
    return RESULTS / "cache" / f"detect_failures_options-{len(indices)}-{digest}.npz"


def _save_raw(path: Path, measured: Sequence[Outcome], wall_s: float) -> None:
    names = list(measured[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        names=np.array(names),
        found=np.array([[o[n][0] for n in names] for o in measured], dtype=bool),
        seconds=np.array([[o[n][1] for n in names] for o in measured], dtype=np.float64),
        wall_s=np.array(wall_s),
    )


def _load_raw(path: Path) -> tuple[list[Outcome], float]:
    with np.load(path) as raw:
        names = [str(n) for n in raw["names"]]
        found, seconds, wall_s = raw["found"], raw["seconds"], float(raw["wall_s"])
    measured = [
        {n: (bool(found[i, j]), float(seconds[i, j])) for j, n in enumerate(names)}
        for i in range(found.shape[0])
    ]
    return measured, wall_s


def _combine(
    measured: Sequence[Outcome],
    cached_mmod: Sequence[bool] | None,
    mmod_s: float,
    groups: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """Each option's summary: base options, fallbacks, and (from the cache) the MMOD chains."""
    results: dict[str, dict[str, Any]] = {}
    for name in (*HOG_OPTIONS, *MTCNN_OPTIONS):
        found = [o[name][0] for o in measured]
        results[name] = _summarise(found, [o[name][1] for o in measured], groups)
    for first, second in FALLBACKS:
        found = [o[first][0] or o[second][0] for o in measured]
        secs = [o[first][1] + (0.0 if o[first][0] else o[second][1]) for o in measured]
        results[f"{first} -> {second}"] = _summarise(found, secs, groups)
    if cached_mmod is None:
        return results
    hog = "HOG up 1"
    secs = [o[hog][1] + (0.0 if o[hog][0] else mmod_s) for o in measured]
    results[CACHE_MMOD] = _summarise(cached_mmod, secs, groups)
    # The cache's fallback outcome is "HOG found, or MMOD found where HOG did not", so a chain
    # that adds MTCNN anywhere before MMOD finds a face where MTCNN or that outcome does.
    for mtcnn in (
        "MTCNN min 40",
        "MTCNN min 40, thr .5/.6/.6",
        "MTCNN min 40, pad 25%",
        "MTCNN min 40, thr .5/.6/.6, pad 25%",
    ):
        found = [o[mtcnn][0] or c for o, c in zip(measured, cached_mmod, strict=True)]
        secs = [
            o[mtcnn][1]
            + (0.0 if o[mtcnn][0] else o[hog][1])
            + (0.0 if o[mtcnn][0] or o[hog][0] else mmod_s)
            for o in measured
        ]
        results[f"{mtcnn} -> {hog} -> MMOD (cache)"] = _summarise(found, secs, groups)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data" / "fairface_val"
    )
    parser.add_argument("--sample", type=int, default=0, help="stratified sample size (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunks", type=int, default=8, help="tasks (models load once per task)")
    parser.add_argument("--mmod-timing", type=int, default=10, help="images to time MMOD on")
    parser.add_argument(
        "--reuse", action="store_true", help="summarise the saved per-image outcomes again"
    )
    args = parser.parse_args(argv)
    before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info = machine_info()
    print(f"machine: {info['cpu']}, {info['cores']} cores; load average before: {before}")
    manifest = load_fairface(args.data)
    indices = stratified_sample(manifest, args.sample, args.seed)
    scope = (
        f"all {len(indices)} images"
        if len(indices) == len(manifest)
        else f"a sample of {len(indices)} of {len(manifest)} images, stratified by race x gender,"
        f" seed {args.seed}"
    )
    print(f"FairFace val: {scope}")
    groups = [group_key(manifest.samples[i], GROUP_BY) for i in indices]
    raw = _raw_path(indices)
    if args.reuse and raw.is_file():
        measured, wall = _load_raw(raw)
        print(f"per-image outcomes read from {raw}")
    else:
        t0 = time.perf_counter()
        measured = _measure_all(
            [manifest.samples[i].path for i in indices], args.workers, args.chunks
        )
        wall = time.perf_counter() - t0
        _save_raw(raw, measured, wall)

    cached = _cached(manifest, indices)
    notes = [f"FairFace val: {scope}; measuring took {wall:.0f} s with {args.workers} workers"]
    hog_up1 = [o["HOG up 1"][0] for o in measured]
    if all(v is not None for v in cached[CACHE_HOG]):
        agree = sum(c == h for c, h in zip(cached[CACHE_HOG], hog_up1, strict=True))
        notes.append(f"cache HOG vs measured HOG up 1: same outcome on {agree}/{len(hog_up1)}")
    cached_mmod: list[bool] | None = None
    mmod_s = 0.0
    if all(v is not None for v in cached[CACHE_MMOD]):
        cached_mmod = [bool(v) for v in cached[CACHE_MMOD]]
        mmod_s = _mmod_seconds(manifest, indices, args.mmod_timing, args.seed)
        notes.append(
            f"MMOD outcomes from the descriptor cache (not rerun); MMOD time estimated with its"
            f" median {1000 * mmod_s:.0f} ms/image on {args.mmod_timing} images timed in this run"
        )
    else:
        notes.append("MMOD fallback: not in the descriptor cache for every image; left out")
    results = _combine(measured, cached_mmod, mmod_s, groups)
    after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average after: {after}")
    for note in notes:
        print(f"note: {note}")
    print_tables(results)
    document = {
        "machine": info,
        "load_average_before": before,
        "load_average_after": after,
        "settings": {
            "sample": args.sample,
            "seed": args.seed,
            "images": len(indices),
            "workers": args.workers,
            "group_by": list(GROUP_BY),
            "hog_threshold": THRESHOLD,
        },
        "notes": notes,
        "results": results,
    }
    print(f"\nwrote {write_results('detect_failures_options', document)}")


if __name__ == "__main__":
    main()
