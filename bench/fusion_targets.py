"""Issue 19's targets, side by side in one run: dlib, faceres and their fusion, each raw and with
its own cohort, every number from one descriptor cache and the shipped calibration files.

    PYTHONPATH=src .venv/bin/python bench/fusion_targets.py [--cache FILE] [--cost-faces 200]
    PYTHONPATH=src:bench nice -n 10 .venv/bin/python bench/fusion_targets.py --cost-only

``--cost-only`` measures only the last two rows below, for each describer before and after the
cost work (faceres' pinned graph as converted, the fused parts one after the other; see
docs/benchmarks.md), side by side in one run, with the search split into the probe's engine,
the index search and the scoring of its hits; it writes ``bench/results/fusion_cost.json``.

Descriptors: one engine pass of ``fused-dlib-faceres-v1`` per data set (each image as a search
probe: BlazeFace first, the server's detector chain where it finds none, the largest face, the
bias toolkit's MMOD fallback, then the engine's describers), each
part's slice filed under the part's own key (:mod:`facegate.bias.model_descriptors`): the three
models see the same face in every image. Matchers: the engine's own (``matcher_for``: the
model's distance from ``facegate.vectorspace``, its calibration and cohort as shipped in
``engine/calibration/``).

Measured per model and scorer (raw distance / cohort-normalised score):

* LFW View 2 10-fold accuracy (threshold learnt on nine folds; a pair without a face is an error);
* TAR at FAR 1e-3 on View 2 (below the 4th-smallest of 3,000 non-mated scores, as
  ``bench/lfw.py``), and TAR at FMR 1e-3 over every pair of LFW's held-out half (about 7.5
  million impostor pairs: the stable version of the same number);
* at the threshold where 5% of View 2's mated pairs fail: FMR of every within-group pair of
  FairFace's held-out half per race x gender group (Wilson 95%), overall (pooled within-group
  pairs), worst group and Max/GeoMean (:func:`facegate.bias.normalisation.equal_fnmr`);
* lineup: the Congress portraits against FairFace's held-out half at the size-aware threshold of
  1 expected false candidate (``similarity_for_fmr(1 / gallery size)`` of the model's own
  calibration): probes with a false candidate, and the LFW FNMR that threshold costs;
* SearchFacesByImage's engine and search in process (:func:`search_proxy`): the 640x480
  one-face probe against 100,000 faces per model;
* cost per face: the engine's describer of each model (alignment + network, the server's
  runtime and thread settings), one face at a time, interleaved, median over ``--cost-faces``
  LFW faces after a warm-up pass.

What is fitted on what (docs/calibration.md): the fusion weights on LFW's fit half, the cohorts
on part of FairFace's fit half, the Similarity knots on the fit halves; every number here is on
View 2, LFW's held-out half, FairFace's held-out half or Congress.

Prints the machine and the tables; writes ``bench/results/fusion_targets.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchlib import ROOT, SAMPLES, machine_info, machine_line, write_results
from engine_speed import build_images
from facegate.bias.calibration import Source, pair_tail, split_source
from facegate.bias.calibration_run import calibration_source
from facegate.bias.datasets import Manifest, Pair, load_congress, load_fairface, load_lfw
from facegate.bias.descriptors import FACE, DescriptorCache, DescriptorSet, compute_descriptors
from facegate.bias.model_descriptors import compute_fused_descriptors
from facegate.bias.normalisation import LfwPairs, equal_fnmr, lfw_accuracy, lfw_scores, lineup
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.describers import FusedDescriber, OnnxDescriber
from facegate.engine.descriptors import DLIB_RESNET_V1, FACERES_V1, FUSED_DLIB_FACERES_V1
from facegate.engine.human_models import load_onnx_model
from facegate.engine.matching import (
    Matcher,
    PartsCohort,
    default_matcher,
    matcher_for,
    raw_matcher,
)
from facegate.store.vectors import ExactIndex, Hit
from facegate.vectorspace import EUCLIDEAN, VectorSpace
from lfw import tar_at_far

FAR = 1e-3
BOUND = 1.0
GROUPING = "race x gender"
MODELS = (DLIB_RESNET_V1, FACERES_V1, FUSED_DLIB_FACERES_V1)
TARGETS = {
    "lfw_accuracy": 0.986,
    "tar_view2": 0.95,
    "worst_group_fmr": 0.010,
    "max_geomean": 2.5,
    "lineup_fnmr_vs_dlib": 2.0 / 3.0,
}
ISSUE = {  # measured outside the project (issue 19), raw scores
    DLIB_RESNET_V1: {"tar_view2": 0.906, "overall": 0.113, "worst": 0.405},
    FACERES_V1: {"lfw": 0.9753, "tar_view2": 0.895, "overall": 0.052, "worst": 0.141},
    FUSED_DLIB_FACERES_V1: {"lfw": 0.9860, "tar_view2": 0.950, "overall": 0.043},
}


def _view2(lfw_set: DescriptorSet, pairs: list[Pair]) -> LfwPairs:
    return LfwPairs(
        lfw_set.vectors.astype(np.float64),
        np.array([p.left for p in pairs]),
        np.array([p.right for p in pairs]),
        np.array([p.mated for p in pairs]),
        np.array([-1 if p.fold is None else p.fold for p in pairs]),
    )


def _tar_all_pairs(held: Source, matcher: Matcher) -> dict[str, Any]:
    tail = pair_tail(
        held, cap=np.inf, scorer=matcher.scorer, space=matcher.space, weights=matcher.weights
    )
    k = int(np.floor(FAR * tail.impostors))
    threshold = float(tail.tail[k])
    return {
        "tar": float(np.mean(tail.mated < threshold)),
        "mated_pairs": len(tail.mated),
        "impostor_pairs": tail.impostors,
        "threshold": threshold,
    }


def measure(
    matchers: dict[str, Matcher],
    sets: tuple[DescriptorSet, ...],
    manifests: tuple[Any, ...],
    pairs: list[Pair],
) -> dict[str, Any]:
    """Every target for one model's matchers (see the module docstring)."""
    lfw_m, ff_m, _ = manifests
    lfw_set, ff_set, congress_set = sets
    view2 = _view2(lfw_set, pairs)
    _, lfw_held = split_source(calibration_source(lfw_m, lfw_set))
    _, ff_held = split_source(calibration_source(ff_m, ff_set))
    probes = congress_set.vectors[list(congress_set.indices(FACE))].astype(np.float64)
    out: dict[str, Any] = {}
    for scorer, m in matchers.items():
        scores = lfw_scores(m, view2)
        tar, _, far = tar_at_far(scores, view2.mated, FAR)
        eq = equal_fnmr(m, scores, view2, ff_held, GROUPING)
        errors = sum(g["errors"] for g in eq["groups"].values())
        total = sum(g["total"] for g in eq["groups"].values())
        out[scorer] = {
            "similarity_version": m.version,
            "lfw_accuracy": lfw_accuracy(scores, view2),
            "tar_view2": tar,
            "far_view2": far,
            "tar_all_pairs_held_out": _tar_all_pairs(lfw_held, m),
            "equal_fnmr": eq
            | {"overall": {"errors": errors, "total": total, "rate": errors / total}},
            "lineup": lineup(m, probes, ff_held.vectors.astype(np.float64), scores, view2, BOUND),
        }
    return out


PINNED = " (before)"
"""Suffix of --cost-only's columns before the cost work: faceres' graph as converted (ReLU6 as
Relu, Min, Max), the fused model's parts one after the other, its index's parts in one wide
matrix and its cohort statistics of strided slices (:class:`WideIndex`, :func:`strided_stats`)."""


def pinned_engine() -> FaceEngine:
    """An engine whose faceres and fused describers are those before the cost work: faceres'
    session of the pinned graph as converted (no ReLU6 fusion), the fused parts in turn."""
    engine = FaceEngine(EngineConfig())
    spec = engine.descriptors.get(FACERES_V1)
    loaded = load_onnx_model(
        "faceres",
        engine.config.face_models.models_dir,
        intra_op_threads=engine.config.descriptor_threads,
    )
    if loaded is None:
        raise SystemExit("faceres is not converted (python3 tools/dev.py)")
    faceres = OnnxDescriber(spec, loaded.session)
    fused = FusedDescriber(
        FUSED_DLIB_FACERES_V1, (engine.describer(DLIB_RESNET_V1), faceres), concurrent=False
    )
    engine._describers[FACERES_V1] = faceres  # bench only: the engine's per-model cache
    engine._describers[FUSED_DLIB_FACERES_V1] = fused
    return engine


def variants(before: bool) -> list[tuple[str, str, FaceEngine | None]]:
    """(label, model, engine: None for the current one) of each measured column."""
    rows: list[tuple[str, str, FaceEngine | None]] = [(m, m, None) for m in MODELS]
    if before:
        old = pinned_engine()
        rows.insert(1, (FACERES_V1 + PINNED, FACERES_V1, old))
        rows.insert(3, (FUSED_DLIB_FACERES_V1 + PINNED, FUSED_DLIB_FACERES_V1, old))
    return rows


def cost(lfw_m: Any, statuses: list[str], faces: int, before: bool = False) -> dict[str, Any]:
    """Median ms per face of each model's engine describer, one face at a time, interleaved
    (``before``: also the describers before the cost work, :func:`pinned_engine`)."""
    engine = FaceEngine(EngineConfig())
    items = []
    for i in [i for i, s in enumerate(statuses) if s == FACE]:
        image = engine.decode(lfw_m.samples[i].path.read_bytes())
        found = engine.detect(image)
        if found:
            items.append((image, found[:1]))
        if len(items) >= faces:
            break
    columns = variants(before)
    times: dict[str, list[float]] = {label: [] for label, _, _ in columns}
    cpu: dict[str, list[float]] = {label: [] for label, _, _ in columns}
    for rep in range(2):  # the first pass warms up (and loads each model)
        for image, face in items:
            for label, model, other in columns:
                t0, c0 = time.perf_counter(), time.process_time()
                (other or engine).describe(image, face, model)
                if rep:
                    times[label].append((time.perf_counter() - t0) * 1000.0)
                    cpu[label].append((time.process_time() - c0) * 1000.0)
    med = {m: statistics.median(v) for m, v in times.items()}
    return {
        "faces": len(items),
        "median_ms": med,
        # CPU time of the process, all threads: above the wall time where parts overlapped
        "cpu_median_ms": {m: statistics.median(v) for m, v in cpu.items()},
        "over_dlib": {m: med[m] / med[DLIB_RESNET_V1] for m in med},
        "descriptor_runtime": str(engine.config.descriptor_runtime),
        "descriptor_threads": engine.config.descriptor_threads,
    }


def search_proxy(
    matchers: dict[str, Matcher],
    pools: dict[str, np.ndarray],
    faces: int,
    queries: int,
    before: bool = False,
) -> dict[str, Any]:
    """SearchFacesByImage's engine and search in process, per model (the server's request path,
    policy and audit excluded: the same for every model): ``FaceEngine.analyze`` of the 640x480
    one-face probe (largest face), then the store's exact index (``store.vectors.ExactIndex``,
    as for a fused collection, which HNSW does not index) over ``faces`` vectors at Similarity
    80 and MaxFaces 4096, the hits scored by the model's cohort matcher (``ops.search``: their
    vectors read back, their cohort statistics, their Similarity). The gallery: the model's real
    vectors (``pools``) resampled with small noise (the distances to a probe follow the real
    impostor distribution). Median ms, columns interleaved; ``before``: also the describers
    before the cost work (:func:`pinned_engine`)."""
    probe = next(img for img in build_images(SAMPLES) if img.name == "640x480, 1 face").data
    engine = FaceEngine(EngineConfig())
    rng = np.random.default_rng(0)
    indexes: dict[str, Any] = {}
    for model in MODELS:
        real = pools[model]
        rows = real[rng.integers(0, len(real), faces)].astype(np.float64)
        rows += rng.normal(scale=0.01, size=rows.shape)
        index = ExactIndex(matchers[model].space)
        index.add([f"f{i}" for i in range(faces)], rows.astype(np.float32))
        indexes[model] = index
    columns = variants(before)
    for label, model, _ in columns:
        if label != model:  # before the cost work: the same vectors in the previous layout
            current = indexes[model]
            if len(current.space.parts) > 1:
                _, wide = current.vectors([f"f{i}" for i in range(faces)])
                current = WideIndex(current.space, wide)
            indexes[label] = current
    labels = [label for label, _, _ in columns]
    parts = ("total", "engine", "index", "scoring")
    times: dict[str, dict[str, list[float]]] = {p: {c: [] for c in labels} for p in parts}
    hits: dict[str, int] = {}
    answers: dict[str, list[tuple[str, float]]] = {}
    for rep in range(queries + 1):  # the first round warms up
        for label, model, other in columns if rep % 2 else columns[::-1]:
            m = matchers[model]
            t0 = time.perf_counter()
            analysis = (other or engine).analyze(probe, max_faces=1, model=model)
            t1 = time.perf_counter()
            vector = np.asarray(analysis.faces[0].descriptor, dtype=np.float32)
            stat = float(m.stats(vector)[0])
            found = indexes[label].search(
                vector, 4096, m.distance_bound(80.0, stat), weights=m.weights
            )
            t2 = time.perf_counter()
            if found:
                _, stored = indexes[label].vectors([h.face_id for h in found])
                stats = strided_stats(m, stored) if label != model else m.stats(stored)
                m.similarities([h.distance for h in found], stat, stats)
            t3 = time.perf_counter()
            hits[label] = len(found)
            answers[label] = [(h.face_id, h.distance) for h in found]
            if rep:
                for part, ms in zip(parts, (t3 - t0, t1 - t0, t2 - t1, t3 - t2), strict=True):
                    times[part][label].append(ms * 1000.0)
    med = {p: {c: statistics.median(v) for c, v in times[p].items()} for p in parts}
    return {
        "faces": faces,
        "queries": queries,
        "median_ms": med["total"],
        "engine_median_ms": med["engine"],
        "index_median_ms": med["index"],
        "scoring_median_ms": med["scoring"],
        "over_dlib": {c: med["total"][c] / med["total"][DLIB_RESNET_V1] for c in labels},
        "hits_within_bound": hits,
        "same_hits_as_after": {c: answers[c] == answers[m] for c, m, _ in columns if c != m},
    }


class WideIndex:
    """The exact index of a space of several parts as it was before the cost work, for
    --cost-only's before columns: the parts end to end in one float32 matrix, each part's
    matrix-vector product read a column slice at a time (strided), the distances of the
    screened rows recomputed from slices of the wide rows. The same hits as ``ExactIndex``
    (tests/store/test_vectors.py checks the current one against brute force)."""

    def __init__(self, space: VectorSpace, rows: np.ndarray) -> None:
        self.space = space
        self._vectors = np.ascontiguousarray(rows, dtype=np.float32)
        self._part_norms = np.stack(
            [np.einsum("ij,ij->i", rows[:, c], rows[:, c]) for c in space.slices()], axis=1
        ).astype(np.float32)

    def search(self, q: np.ndarray, k: int, max_distance: float, weights: Any = None) -> list[Hit]:
        w = self.space.weights_or_ones(weights)
        n = len(self._vectors)
        approx = np.zeros(n, dtype=np.float32)
        for j, (part, cut) in enumerate(zip(self.space.parts, self.space.slices(), strict=True)):
            qp = q[cut]
            dots = self._vectors[:n, cut] @ qp
            qq = float(np.dot(qp.astype(np.float64), qp.astype(np.float64)))
            sq = self._part_norms[:n, j]
            if part.metric == EUCLIDEAN:
                d = np.sqrt(np.maximum(sq - 2.0 * dots + np.float32(qq), 0.0))
            else:
                norms = np.sqrt(sq) * np.float32(np.sqrt(qq))
                cos = np.where(norms > 0, dots / np.where(norms > 0, norms, 1), 0)
                d = 1.0 - cos
            approx += np.float32(w[j]) * d.astype(np.float32)
        rows = np.flatnonzero(approx <= max_distance + 1e-3 * sum(w))
        if len(rows) > k:
            rows = rows[np.argpartition(approx[rows], k - 1)[:k]]
        exact = self.space.distances(q, self._vectors[rows], w)
        order = np.argsort(exact, kind="stable")
        return [Hit(f"f{rows[i]}", float(exact[i])) for i in order if exact[i] <= max_distance]

    def vectors(self, face_ids: list[str]) -> tuple[list[str], np.ndarray]:
        rows = np.fromiter((int(f[1:]) for f in face_ids), dtype=np.intp, count=len(face_ids))
        return face_ids, self._vectors[rows]


def strided_stats(m: Matcher, vectors: np.ndarray) -> np.ndarray:
    """A fused matcher's cohort statistics as before the cost work (each part's statistic of a
    strided slice of the wide rows); the same numbers as ``m.stats``."""
    cohort = getattr(m.scorer, "normaliser", None)
    if not isinstance(cohort, PartsCohort):
        return m.stats(vectors)
    x = np.asarray(vectors, dtype=np.float64)
    total = np.zeros(len(x))
    for part, cut, w in zip(cohort.parts, cohort._slices(), cohort.weights, strict=True):
        total += w * part.stats(x[:, cut])
    return total


def cost_table(doc: dict[str, Any]) -> list[str]:
    """The --cost-only table (markdown): one row per describer column."""
    c, p = doc["cost"], doc["search"]
    lines = [
        "| describer | descriptor per face, ms (ratio) | its CPU time, ms | probe engine, ms "
        "| index search, ms "
        f"| hits scoring, ms | engine + search of {p['faces']:,} faces, ms (ratio) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in c["median_ms"]:
        lines.append(
            f"| {label} | {c['median_ms'][label]:.1f} ({c['over_dlib'][label]:.2f}x) "
            f"| {c['cpu_median_ms'][label]:.1f} | {p['engine_median_ms'][label]:.0f} "
            f"| {p['index_median_ms'][label]:.0f} "
            f"| {p['scoring_median_ms'][label]:.0f} "
            f"| {p['median_ms'][label]:.0f} ({p['over_dlib'][label]:.2f}x) |"
        )
    return lines


def pools_of(sets: dict[str, tuple[DescriptorSet, ...]]) -> dict[str, np.ndarray]:
    """Each model's real vectors of the faces of its first two data sets (LFW, FairFace)."""
    return {m: np.vstack([s.vectors[list(s.indices(FACE))] for s in sets[m][:2]]) for m in MODELS}


def _pct(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}%"


def _size_aware(r: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = next(
        x for x in r["lineup"]["rows"] if x["threshold"].startswith("size-aware")
    )
    return row


def render(doc: dict[str, Any]) -> list[str]:
    """The side-by-side table (markdown)."""
    res = doc["results"]
    cols = [(m, s) for m in res for s in res[m]]
    head = " | ".join(f"{m} {s}" for m, s in cols)
    lines = [f"| measure | {head} | target (new default) |", "|---|" + "---|" * (len(cols) + 1)]

    def row(label: str, fn: Any, target: str = "") -> None:
        cells = [fn(m, s, res[m][s]) for m, s in cols]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {target} |")

    def worst(r: dict[str, Any]) -> str:
        eq = r["equal_fnmr"]
        return f"{_pct(eq['groups'][eq['worst_group']]['rate'])} ({eq['worst_group']})"

    row("LFW 10-fold accuracy", lambda m, s, r: _pct(r["lfw_accuracy"]["mean"]), ">= 98.60%")
    row("TAR @ FAR 1e-3 (View 2)", lambda m, s, r: _pct(r["tar_view2"], 1), ">= 95.0%")
    row(
        "TAR @ FMR 1e-3 (LFW held-out half, all pairs)",
        lambda m, s, r: _pct(r["tar_all_pairs_held_out"]["tar"], 1),
    )
    row(
        "FairFace within-group FMR, overall (LFW FNMR 5%)",
        lambda m, s, r: _pct(r["equal_fnmr"]["overall"]["rate"]),
    )
    row("worst race x gender group FMR", lambda m, s, r: worst(r), "<= 1.00%")
    row("Max/GeoMean", lambda m, s, r: f"{r['equal_fnmr']['max_geomean']:.2f}", "<= 2.5")
    row(
        "lineup, size-aware (1 expected): Similarity",
        lambda m, s, r: f"{_size_aware(r)['similarity_pct']:.2f}",
    )
    row(
        "lineup: probes with a false candidate",
        lambda m, s, r: (
            f"{_size_aware(r)['probes_with_false_candidate']['errors']}/"
            f"{_size_aware(r)['probes_with_false_candidate']['total']}"
        ),
    )
    row(
        "lineup: LFW FNMR at that threshold",
        lambda m, s, r: _pct(_size_aware(r)["lfw_fnmr"], 1),
        "<= 2/3 of dlib cohort's",
    )
    c, p = doc["cost"], doc["search"]
    row(
        "descriptor per face, ms (median; ratio to dlib)",
        lambda m, s, r: f"{c['median_ms'][m]:.1f} ({c['over_dlib'][m]:.2f}x)",
    )
    row(
        f"probe engine + search of {p['faces']:,} faces, ms (median; ratio)",
        lambda m, s, r: f"{p['median_ms'][m]:.0f} ({p['over_dlib'][m]:.2f}x)",
        "<= 1.5x dlib's",
    )
    return lines


def group_table(doc: dict[str, Any]) -> list[str]:
    """FMR per race x gender group, every model and scorer."""
    names = [(m, s) for m in doc["results"] for s in doc["results"][m]]
    first = doc["results"][names[0][0]][names[0][1]]["equal_fnmr"]["groups"]
    lines = [
        "| group | " + " | ".join(f"{m} {s}" for m, s in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for g in first:
        cells = []
        for m, s in names:
            r = doc["results"][m][s]["equal_fnmr"]["groups"][g]
            cells.append(f"{_pct(r['rate'])} [{_pct(r['ci'][0])}, {_pct(r['ci'][1])}]")
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=None, help="descriptor cache (SQLite)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cost-faces", type=int, default=200)
    ap.add_argument("--search-faces", type=int, default=100_000)
    ap.add_argument("--search-queries", type=int, default=15)
    ap.add_argument("--json", default=None, help="results name (default: by mode)")
    ap.add_argument(
        "--cost-only",
        action="store_true",
        help="only the cost and the search, each describer before and after the cost work",
    )
    ap.add_argument(
        "--gallery-images",
        type=int,
        default=1000,
        help="--cost-only: LFW and FairFace images (each) whose vectors seed the gallery",
    )
    args = ap.parse_args()
    started = time.time()
    if args.cost_only:
        cost_only(args, started)
        return
    lfw_m, pairs = load_lfw(args.data / "lfw")
    manifests = (
        lfw_m,
        load_fairface(args.data / "fairface_val"),
        load_congress(args.data / "congress_2015"),
    )
    cache = DescriptorCache(args.cache)
    fused, fills = compute_fused_descriptors(
        manifests, FUSED_DLIB_FACERES_V1, cache=cache, workers=args.workers, progress=False
    )
    sets: dict[str, tuple[DescriptorSet, ...]] = {FUSED_DLIB_FACERES_V1: tuple(fused)}
    for model in (DLIB_RESNET_V1, FACERES_V1):
        sets[model] = tuple(
            compute_descriptors(
                m,
                cache=cache,
                workers=args.workers,
                progress=False,
                model=None if model == DLIB_RESNET_V1 else model,
            )
            for m in manifests
        )
    registry = EngineConfig().registry()
    matchers: dict[str, dict[str, Matcher]] = {
        DLIB_RESNET_V1: {"raw": raw_matcher(), "cohort": default_matcher()},
    }
    for model in (FACERES_V1, FUSED_DLIB_FACERES_V1):
        spec = registry.get(model)
        matchers[model] = {"raw": matcher_for(spec, "none"), "cohort": matcher_for(spec, "cohort")}
    results = {m: measure(matchers[m], sets[m], manifests, pairs) for m in MODELS}
    doc: dict[str, Any] = {
        "kind": "fusion-targets",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "PYTHONPATH=src .venv/bin/python bench/fusion_targets.py",
        "descriptors": {m: [s.summary() for s in sets[m]] for m in MODELS},
        "part_agreement": [
            [
                {"part": f.version, "same_vector": f.same_vector, "compared": f.compared}
                for f in fill
            ]
            for fill in fills
        ],
        "fusion_weights": list(matchers[FUSED_DLIB_FACERES_V1]["raw"].weights or ()),
        "results": results,
        "cost": cost(lfw_m, list(sets[DLIB_RESNET_V1][0].statuses), args.cost_faces),
        "search": search_proxy(
            {m: matchers[m]["cohort"] for m in MODELS},
            pools_of(sets),
            args.search_faces,
            args.search_queries,
        ),
        "targets": TARGETS,
        "issue_measured_outside": ISSUE,
    }
    doc["machine"] = machine_info()
    doc["seconds"] = round(time.time() - started, 1)
    print(machine_line(doc["machine"]))
    print("\n".join(render(doc)))
    print()
    print(f"FMR per {GROUPING} group at LFW FNMR 5% (FairFace held-out half, Wilson 95%):")
    print("\n".join(group_table(doc)))
    print(f"wrote {write_results(args.json or 'fusion_targets', doc)}")


def cost_only(args: argparse.Namespace, started: float) -> None:
    """--cost-only: the cost and search rows for every describer, before and after the cost
    work, side by side in one run; the gallery seeded by the fused model's vectors of
    ``--gallery-images`` LFW and FairFace images each (every k-th image; the parts' vectors
    are the fused vector's slices, the same vectors as each part's own)."""
    lfw_m, _ = load_lfw(args.data / "lfw")
    subsets = []
    for manifest in (lfw_m, load_fairface(args.data / "fairface_val")):
        step = max(1, len(manifest.samples) // args.gallery_images)
        samples = manifest.samples[::step][: args.gallery_images]
        subsets.append(Manifest(f"{manifest.name}[::{step}]", samples))
    fused, _ = compute_fused_descriptors(
        subsets,
        FUSED_DLIB_FACERES_V1,
        cache=DescriptorCache(args.cache),
        workers=args.workers,
        progress=False,
    )
    real = np.vstack([s.vectors[list(s.indices(FACE))] for s in fused])
    pools = {DLIB_RESNET_V1: real[:, :128], FACERES_V1: real[:, 128:], FUSED_DLIB_FACERES_V1: real}
    registry = EngineConfig().registry()
    matchers = {DLIB_RESNET_V1: default_matcher()} | {
        m: matcher_for(registry.get(m), "cohort") for m in (FACERES_V1, FUSED_DLIB_FACERES_V1)
    }
    doc: dict[str, Any] = {
        "kind": "fusion-cost",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "PYTHONPATH=src:bench nice -n 10 .venv/bin/python bench/fusion_targets.py "
        f"--cost-only --cost-faces {args.cost_faces} --search-queries {args.search_queries}",
        "gallery_seed": [s.summary() for s in fused],
        "cost": cost(lfw_m, [FACE] * len(lfw_m.samples), args.cost_faces, before=True),
        "search": search_proxy(matchers, pools, args.search_faces, args.search_queries, True),
    }
    doc["machine"] = machine_info() | {
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")
    }
    doc["seconds"] = round(time.time() - started, 1)
    print(
        machine_line(doc["machine"]), f"OPENBLAS_NUM_THREADS {doc['machine']['openblas_threads']}"
    )
    print("\n".join(cost_table(doc)))
    print(f"same hits and distances before and after: {doc['search']['same_hits_as_after']}")
    print(f"wrote {write_results(args.json or 'fusion_cost', doc)}")


if __name__ == "__main__":
    main()
