"""Can the fused model reach LFW 98.6%? faceres variants and fusion weights, side by side in one
run, on LFW (issue 19; measured, not shipped).

    PYTHONPATH=src:bench nice -n 10 .venv/bin/python bench/fusion_variants.py [--workers 2]

One engine pass over LFW's 7,701 images as the bias toolkit describes them (a search probe:
``analyze(max_faces=1)``, BlazeFace first, the server's chain where it finds none), and for each
face faceres (``faceres-v1``'s describer) on several crops of the same detection:

* ``five-point``: faceres-v1 as shipped (ArcFace's 112 px template scaled to 224 px); checked
  bit for bit against the descriptor cache's faceres-v1 vectors of the current chain;
* ``flip``: the mean of the crop's and its mirror's descriptors (test-time flip augmentation:
  a second faceres run per face);
* ``loose-S``: the template shrunk by S about the crop's centre (more of the head in view;
  faceres' network was trained on VGGFace2's loose crops, not ArcFace's tight ones);
* ``loose-S+flip``.

dlib's part: the cache's ``dlib-resnet-v1`` vectors of the current chain (the same faces).
Per variant, measured on LFW View 2 (10-fold accuracy, threshold learnt on nine folds; TAR at
FAR 1e-3) and on every pair of LFW's held-out half (TAR at FMR 1e-3): faceres alone, and fused
with dlib (a) with the z-scored weights (``bias/fusion_fit.py``: each part's impostor standard
deviation on LFW's fit half) and (b) with the weight that maximises TAR at FMR 1e-3 over every
pair of LFW's *fit* half (grid of 41 weights). View 2 mixes people of both halves: its rows with
fitted weights are also given on the View 2 pairs whose people are all in the held-out half.
``--cached-only``: no engine pass, faceres-v1's cached vectors only (the weights' rows).
``--targets``: a FairFace pass too (five-point and loose-0.9), then issue 19's LFW and FairFace
targets of both crops with a cohort (:func:`targets`). Vectors cached in
``~/.cache/facegate/fusion_variants/``; writes ``bench/results/fusion_variants.json`` (or
``_cached``, ``_targets``).
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchlib import ROOT, machine_info, machine_line, write_results
from facegate.bias.calibration import Source, split_keys, split_source
from facegate.bias.calibration_run import calibration_source
from facegate.bias.datasets import load_lfw
from facegate.bias.descriptors import FACE, DescriptorCache, DescriptorSet, _assemble, config_key
from facegate.bias.folds import cross_validate
from facegate.bias.fusion_fit import impostor_moments
from facegate.engine.align5 import ARCFACE_TEMPLATE_112, five_points, similarity_transform
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.describers import OnnxDescriber
from facegate.engine.descriptors import DLIB_RESNET_V1, FACERES_V1, FUSED_DLIB_FACERES_V1
from facegate.engine.models import file_sha256
from facegate.vectorspace import VectorSpace
from lfw import tar_at_far

SCALES = (0.9, 0.8)
FAR = 1e-3
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "facegate"

_ENGINE: FaceEngine | None = None
_CROPS: tuple[tuple[float, ...], bool] = (SCALES, True)


def warp(pixels: np.ndarray, points: np.ndarray, size: int, scale: float) -> np.ndarray:
    """``align5.aligned_face`` with the template shrunk by ``scale`` about the crop's centre
    (scale 1: the same affine map; Pillow warps the whole image here, not a window)."""
    centre = np.array([56.0, 56.0])
    template = (centre + scale * (ARCFACE_TEMPLATE_112 - centre)) * (size / 112.0)
    forward = similarity_transform(points, template)
    inverse = np.linalg.inv(forward[:, :2])
    shift = -inverse @ forward[:, 2]
    offset = shift - inverse @ np.array([0.5, 0.5]) + 0.5
    data = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    image = Image.fromarray(np.ascontiguousarray(pixels[:, :, :3], dtype=np.uint8))
    out = image.transform((size, size), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


def _init(scales: tuple[float, ...] = SCALES, flips: bool = True) -> None:
    global _ENGINE, _CROPS  # one engine per worker process, and its crops (bench only)
    _ENGINE = FaceEngine(EngineConfig())
    _CROPS = (scales, flips)


def describe(path: str) -> dict[str, np.ndarray] | None:
    """The variants' faceres vectors of the image's search-probe face (None: no face)."""
    engine = _ENGINE
    assert engine is not None
    data = Path(path).read_bytes()
    analysis = engine.analyze(data, descriptors=False, max_faces=1)
    if not analysis.faces:
        return None
    image = engine.decode(data)
    face = analysis.faces[0].detected
    faceres = engine.describer(FACERES_V1)
    assert isinstance(faceres, OnnxDescriber)
    base = faceres.crops([(image, face)])[0]
    points = five_points(face.landmarks, image.width_px, image.height_px)
    scales, flips = _CROPS
    step = 2 if flips else 1
    crops = [base, base[:, ::-1]][:step]
    for s in scales:
        c = warp(image.pixels, points, base.shape[0], s)
        crops += [c, c[:, ::-1]][:step]
    raw = faceres.embed_crops([np.ascontiguousarray(c) for c in crops])
    out = {"five-point": raw[0]}
    if flips:
        out["flip"] = _unit(raw[0] + raw[1])
    for k, s in enumerate(scales):
        out[f"loose-{s:g}"] = raw[step * (k + 1)]
        if flips:
            out[f"loose-{s:g}+flip"] = _unit(raw[step * (k + 1)] + raw[step * (k + 1) + 1])
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v.astype(np.float64))), 1e-12)).astype(np.float32)


def variant_vectors(
    paths: list[str],
    workers: int,
    name: str = "lfw",
    scales: tuple[float, ...] = SCALES,
    flips: bool = True,
) -> dict[str, np.ndarray]:
    """Variant -> (images, 1024) float32, NaN rows where no face (cached by image list)."""
    CACHE.joinpath("fusion_variants").mkdir(parents=True, exist_ok=True)
    tag = f"{len(paths)}-{'-'.join(f'{s:g}' for s in scales)}" + ("" if flips else "-noflip")
    path = CACHE / "fusion_variants" / f"{name}-{tag}.npz"
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(scales, flips)) as pool:
        found = list(pool.map(describe, paths, chunksize=16))
    names = next(f for f in found if f is not None).keys()
    out = {n: np.full((len(paths), 1024), np.nan, dtype=np.float32) for n in names}
    for i, f in enumerate(found):
        if f is not None:
            for n in names:
                out[n][i] = f[n]
    np.savez(path, **out)  # type: ignore[arg-type]
    return out


def view2_scores(vectors: np.ndarray, space: VectorSpace, weights: Any, pairs: Any) -> np.ndarray:
    left, right = pairs
    return space.paired(vectors[left], vectors[right], weights)


def all_pairs_tar(source: Source, space: VectorSpace, weights: Any) -> float:
    """TAR at FMR 1e-3 over every pair of ``source``."""
    x = source.vectors.astype(np.float64)
    _, subj = np.unique(np.asarray(source.subjects), return_inverse=True)
    d = space.pairwise(x, x, weights)
    upper = np.triu(np.ones(d.shape, dtype=bool), 1)
    same = subj[:, None] == subj[None, :]
    imp = np.sort(d[upper & ~same])
    threshold = imp[int(np.floor(FAR * len(imp)))]
    return float(np.mean(d[upper & same] < threshold))


def best_weight(fit: Source, space: VectorSpace) -> tuple[float, float]:
    """The dlib weight (faceres: 1 - it) of 41 on [0, 1] maximising TAR at FMR 1e-3 over every
    pair of ``fit`` (ties: the one nearest 0.5)."""
    x = fit.vectors.astype(np.float64)
    _, subj = np.unique(np.asarray(fit.subjects), return_inverse=True)
    parts = [
        VectorSpace((p,)).pairwise(x[:, c], x[:, c])
        for p, c in zip(space.parts, space.slices(), strict=True)
    ]
    upper = np.triu(np.ones(parts[0].shape, dtype=bool), 1)
    same = subj[:, None] == subj[None, :]
    imp_mask, mated_mask = upper & ~same, upper & same
    d0i, d1i = parts[0][imp_mask], parts[1][imp_mask]
    d0m, d1m = parts[0][mated_mask], parts[1][mated_mask]
    best = (-1.0, 0.5)
    k = int(np.floor(FAR * len(d0i)))
    for w in np.linspace(0.0, 1.0, 41):
        imp = w * d0i + (1 - w) * d1i
        threshold = np.partition(imp, k)[k]
        tar = float(np.mean(w * d0m + (1 - w) * d1m < threshold))
        if tar > best[0] or (tar == best[0] and abs(w - 0.5) < abs(best[1] - 0.5)):
            best = (tar, float(w))
    return best[1], best[0]


TARGET_VARIANTS = ("five-point", "loose-0.9")
CALIBRATION_FACES = "five-point, the calibration's FairFace faces"


def targets(data: Path, workers: int) -> dict[str, Any]:
    """``--targets``: issue 19's LFW and FairFace targets for the fused model with faceres'
    ``five-point`` (as shipped) and ``loose-0.9`` crops, side by side: z-scored weights fitted
    on LFW's fit half, a cohort fitted as ``bias calibrate --normalise`` fits one (part of
    FairFace's fit half; ``calibration_run._cohort_split``), LFW View 2 10-fold and TAR at FAR
    1e-3, and FairFace's held-out half per race x gender group at LFW FNMR 5%
    (``normalisation.equal_fnmr``). FairFace's faces are this pass's (no MMOD fallback), so its
    halves are not the shipped calibrations'; both crops share them. A third row refits the
    five-point model's cohort on the calibration's own faces (faceres-v1's cached FairFace
    vectors of the current chain, with the MMOD fallback: the shipped halves)."""
    from facegate.bias.calibration_run import _cohort_split
    from facegate.bias.datasets import load_fairface
    from facegate.bias.normalisation import LfwPairs, equal_fnmr, lfw_scores
    from facegate.engine.matching import Matcher, PairScorer, RawScorer
    from facegate.engine.similarity import CalibratedSimilarity

    lfw_m, pairs = load_lfw(data / "lfw")
    ff_m = load_fairface(data / "fairface_val")
    lfw_v = variant_vectors([str(s.path) for s in lfw_m.samples], workers)
    ff_v = variant_vectors([str(s.path) for s in ff_m.samples], workers, "fairface", (0.9,), False)
    config, cache = EngineConfig(), DescriptorCache()
    dlib = []
    for m in (lfw_m, ff_m):
        digests = [file_sha256(s.path) for s in m.samples]
        key = config_key(config, DLIB_RESNET_V1, True)
        dlib.append(_assemble(DLIB_RESNET_V1, key, digests, cache.get_many(key, digests), 0, 0))
    digests = [file_sha256(s.path) for s in ff_m.samples]
    key = config_key(config, FACERES_V1, True)
    cached_ff = _assemble(FACERES_V1, key, digests, cache.get_many(key, digests), 0, 0).vectors
    crops = {name: (lfw_v[name], ff_v[name]) for name in TARGET_VARIANTS}
    # the calibration's own faces (the cache's, with the MMOD fallback): the cohort refitted
    crops[CALIBRATION_FACES] = (lfw_v["five-point"], cached_ff)
    space = config.registry().get(FUSED_DLIB_FACERES_V1).space
    left = np.array([p.left for p in pairs])
    right = np.array([p.right for p in pairs])
    mated = np.array([p.mated for p in pairs])
    folds = np.array([-1 if p.fold is None else p.fold for p in pairs])
    out: dict[str, Any] = {}
    for name, (lfw_x, ff_x) in crops.items():
        sets = []
        for d, v in ((dlib[0], lfw_x), (dlib[1], ff_x)):
            x = np.concatenate([d.vectors, v], axis=1)
            st = tuple(FACE if r else "no_face" for r in np.isfinite(x).all(axis=1))
            sets.append(DescriptorSet(FUSED_DLIB_FACERES_V1, "", x, st, ("",) * len(st), {}, 0, 0))
        halves = [
            split_source(calibration_source(m, s)) for m, s in zip((lfw_m, ff_m), sets, strict=True)
        ]
        inv = [1.0 / sd for _, sd, _ in impostor_moments(halves[0][0], space)]
        w = (inv[0] / sum(inv), inv[1] / sum(inv))
        cohort, _, _ = _cohort_split(halves, space, w)
        view2 = LfwPairs(sets[0].vectors.astype(np.float64), left, right, mated, folds)
        scorers: dict[str, PairScorer] = {"raw": RawScorer(), "cohort": cohort}
        entry: dict[str, Any] = {"weights": w, "fairface_faces": len(halves[1][1].vectors)}
        for label, scorer in scorers.items():
            mt = Matcher(CalibratedSimilarity(), scorer, space, w, FUSED_DLIB_FACERES_V1)
            scores = lfw_scores(mt, view2)
            eq = equal_fnmr(mt, scores, view2, halves[1][1], "race x gender")
            errors = sum(g["errors"] for g in eq["groups"].values())
            total = sum(g["total"] for g in eq["groups"].values())
            entry[label] = {
                "lfw_accuracy": float(np.mean(cross_validate(scores, mated, folds).accuracies)),
                "tar_view2": tar_at_far(scores, mated, FAR)[0],
                "overall_fmr": errors / total,
                "worst_group": eq["worst_group"],
                "worst_group_fmr": eq["groups"][eq["worst_group"]]["rate"],
                "max_geomean": eq["max_geomean"],
            }
        out[name] = entry
    return out


def render_targets(rows: dict[str, Any]) -> list[str]:
    """``--targets``' table."""
    lines = [
        "| faceres crop | scorer | LFW 10-fold | TAR @ FAR 1e-3 | FairFace FMR overall "
        "| worst group | Max/GeoMean |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in rows.items():
        for label in ("raw", "cohort"):
            r = entry[label]
            lines.append(
                f"| {name} | {label} | {100 * r['lfw_accuracy']:.2f}% "
                f"| {100 * r['tar_view2']:.1f}% | {100 * r['overall_fmr']:.2f}% "
                f"| {100 * r['worst_group_fmr']:.2f}% "
                f"({r['worst_group']}) | {r['max_geomean']:.2f} |"
            )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--cached-only",
        action="store_true",
        help="no engine pass: faceres-v1 as cached only (the fusion weights' rows)",
    )
    ap.add_argument(
        "--targets",
        action="store_true",
        help="issue 19's LFW and FairFace targets, five-point against loose-0.9 (a FairFace pass)",
    )
    args = ap.parse_args()
    started = time.time()
    if args.targets:
        found = targets(args.data, args.workers)
        doc: dict[str, Any] = {
            "kind": "fusion-variants-targets",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": "PYTHONPATH=src:bench nice -n 10 .venv/bin/python "
            "bench/fusion_variants.py --targets",
            "results": found,
            "machine": machine_info(),
            "seconds": round(time.time() - started, 1),
        }
        print(machine_line(doc["machine"]))
        print("\n".join(render_targets(found)))
        print(f"wrote {write_results('fusion_variants_targets', doc)}")
        return
    lfw_m, pairs = load_lfw(args.data / "lfw")
    paths = [str(s.path) for s in lfw_m.samples]
    digests = [file_sha256(s.path) for s in lfw_m.samples]
    config = EngineConfig()
    cache = DescriptorCache()

    def cached(model: str) -> DescriptorSet:
        key = config_key(config, model, True)
        records = cache.get_many(key, digests)
        return _assemble(model, key, digests, records, 0, len(records))

    dlib, faceres = cached(DLIB_RESNET_V1), cached(FACERES_V1)
    t0 = time.time()
    if args.cached_only:
        variants = {"five-point": faceres.vectors}
    else:
        variants = variant_vectors(paths, args.workers)
    pass_s = time.time() - t0
    ok = np.isfinite(variants["five-point"]).all(axis=1)
    same = np.isfinite(faceres.vectors).all(axis=1) & ok
    bitwise = int(np.sum(np.all(variants["five-point"][same] == faceres.vectors[same], axis=1)))
    left = np.array([p.left for p in pairs])
    right = np.array([p.right for p in pairs])
    mated = np.array([p.mated for p in pairs])
    folds = np.array([-1 if p.fold is None else p.fold for p in pairs])
    held_person = ~split_keys(
        [s.subject_id or f"\0sample-{i}" for i, s in enumerate(lfw_m.samples)]
    )
    held_pairs = held_person[left] & held_person[right]
    space = EngineConfig().registry().get(FUSED_DLIB_FACERES_V1).space
    faceres_space = VectorSpace((space.parts[1],))
    rows: dict[str, Any] = {}
    for name, v in variants.items():
        fused = np.concatenate([dlib.vectors, v], axis=1)
        statuses = tuple(FACE if r else "no_face" for r in np.isfinite(fused).all(axis=1))
        full = DescriptorSet(
            FUSED_DLIB_FACERES_V1, "", fused, statuses, ("",) * len(statuses), {}, 0, 0
        )
        fit_half, held_half = split_source(calibration_source(lfw_m, full))
        moments = impostor_moments(fit_half, space)
        inv = [1.0 / sd for _, sd, _ in moments]
        z = (inv[0] / sum(inv), inv[1] / sum(inv))
        w_best, fit_tar = best_weight(fit_half, space)
        entry: dict[str, Any] = {
            "zscore_weights": z,
            "tar_weight": [w_best, 1 - w_best],
            "fit_half_tar_at_tar_weight": fit_tar,
        }
        scorers = {
            "faceres": (faceres_space, None, v),
            "fused z-scored": (space, z, fused),
            "fused TAR-fitted": (space, (w_best, 1 - w_best), fused),
        }
        for label, (sp, w, x) in scorers.items():
            d = view2_scores(x.astype(np.float64), sp, w, (left, right))
            cv = cross_validate(d, mated, folds)
            tar, _, _ = tar_at_far(d, mated, FAR)
            held_cv = cross_validate(d[held_pairs], mated[held_pairs], folds[held_pairs])
            src = Source(
                held_half.name,
                held_half.vectors if sp is space else held_half.vectors[:, 128:],
                held_half.subjects,
                {},
            )
            entry[label] = {
                "lfw_accuracy": float(np.mean(cv.accuracies)),
                "lfw_accuracy_held_out_pairs": float(np.mean(held_cv.accuracies)),
                "tar_view2": tar,
                "tar_all_pairs_held_out": all_pairs_tar(src, sp, w),
            }
        rows[name] = entry
        print(f"{name}: done ({time.time() - started:.0f} s)", flush=True)
    dlib_d = view2_scores(
        dlib.vectors.astype(np.float64), VectorSpace((space.parts[0],)), None, (left, right)
    )
    doc = {
        "kind": "fusion-variants",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "PYTHONPATH=src:bench nice -n 10 .venv/bin/python bench/fusion_variants.py"
        + (" --cached-only" if args.cached_only else ""),
        "images": len(paths),
        "faces": int(ok.sum()),
        "five_point_equals_cache": [bitwise, int(same.sum())],
        "pass_seconds": round(pass_s, 1),
        "view2_pairs_held_out_people": int(held_pairs.sum()),
        "dlib": {
            "lfw_accuracy": float(np.mean(cross_validate(dlib_d, mated, folds).accuracies)),
            "lfw_accuracy_held_out_pairs": float(
                np.mean(
                    cross_validate(
                        dlib_d[held_pairs], mated[held_pairs], folds[held_pairs]
                    ).accuracies
                )
            ),
            "tar_view2": tar_at_far(dlib_d, mated, FAR)[0],
        },
        "variants": rows,
    }
    doc["machine"] = machine_info()
    doc["seconds"] = round(time.time() - started, 1)
    print(machine_line(doc["machine"]))
    print("\n".join(render(doc)))
    name = "fusion_variants_cached" if args.cached_only else "fusion_variants"
    print(f"wrote {write_results(name, doc)}")


def render(doc: dict[str, Any]) -> list[str]:
    """One row per variant and scorer."""
    d = doc["dlib"]
    lines = [
        f"faces {doc['faces']}/{doc['images']}; five-point = cache bit for bit: "
        f"{doc['five_point_equals_cache'][0]}/{doc['five_point_equals_cache'][1]}; "
        f"View 2 pairs of held-out people: {doc['view2_pairs_held_out_people']}",
        "| variant | scorer | weights (dlib, faceres) | LFW 10-fold "
        "| same, held-out people's pairs | TAR @ FAR 1e-3 View 2 | TAR @ FMR 1e-3 held-out half |",
        "|---|---|---|---|---|---|---|",
        f"| - | dlib | - | {100 * d['lfw_accuracy']:.2f}% "
        f"| {100 * d['lfw_accuracy_held_out_pairs']:.2f}% "
        f"| {100 * d['tar_view2']:.1f}% | - |",
    ]
    for name, entry in doc["variants"].items():
        for label in ("faceres", "fused z-scored", "fused TAR-fitted"):
            r = entry[label]
            w = {
                "faceres": "-",
                "fused z-scored": entry["zscore_weights"],
                "fused TAR-fitted": entry["tar_weight"],
            }[label]
            wt = w if isinstance(w, str) else f"{w[0]:.3f}, {w[1]:.3f}"
            lines.append(
                f"| {name} | {label} | {wt} | {100 * r['lfw_accuracy']:.2f}% "
                f"| {100 * r['lfw_accuracy_held_out_pairs']:.2f}% | {100 * r['tar_view2']:.1f}% "
                f"| {100 * r['tar_all_pairs_held_out']:.1f}% |"
            )
    return lines


if __name__ == "__main__":
    main()
