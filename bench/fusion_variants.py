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
Vectors cached in ``~/.cache/facegate/fusion_variants/``; writes
``bench/results/fusion_variants.json``.
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


def _init() -> None:
    global _ENGINE  # one engine per worker process (bench only)
    _ENGINE = FaceEngine(EngineConfig())


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
    crops = [base, base[:, ::-1]]
    for s in SCALES:
        c = warp(image.pixels, points, base.shape[0], s)
        crops += [c, c[:, ::-1]]
    raw = faceres.embed_crops([np.ascontiguousarray(c) for c in crops])
    out = {"five-point": raw[0], "flip": _unit(raw[0] + raw[1])}
    for k, s in enumerate(SCALES):
        a, b = raw[2 + 2 * k], raw[3 + 2 * k]
        out[f"loose-{s:g}"] = a
        out[f"loose-{s:g}+flip"] = _unit(a + b)
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v.astype(np.float64))), 1e-12)).astype(np.float32)


def variant_vectors(paths: list[str], workers: int) -> dict[str, np.ndarray]:
    """Variant -> (images, 1024) float32, NaN rows where no face (cached by image list)."""
    CACHE.joinpath("fusion_variants").mkdir(parents=True, exist_ok=True)
    tag = f"{len(paths)}-{'-'.join(f'{s:g}' for s in SCALES)}"
    path = CACHE / "fusion_variants" / f"lfw-{tag}.npz"
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    with ProcessPoolExecutor(workers, initializer=_init) as pool:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--cached-only",
        action="store_true",
        help="no engine pass: faceres-v1 as cached only (the fusion weights' rows)",
    )
    args = ap.parse_args()
    started = time.time()
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
    doc: dict[str, Any] = {
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
