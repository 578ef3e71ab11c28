"""SearchFacesByImage latency split into engine time and search time, at 1k, 100k and 1M faces.

    .venv/bin/python bench/search_scale.py [--sizes 1000,100000,1000000] [--queries 200]
        [--identities 300] [--hnsw-max 100000] [--ef 64,128,256]

* Engine time: real probes (the sample portraits) through decode, detection and the descriptor
  of the largest face, as SearchFacesByImage does (median per probe).
* The collections are realistic in two ways. Real people are planted in them: for each of
  ``--identities`` LFW people with two or more photos, the first photo is indexed and a later one
  is a probe, so every query has a true mate. The remaining faces are synthetic, drawn from a
  Gaussian with the full covariance of those real descriptors (not a per-dimension spread), so
  strangers are as far apart, and as anisotropic, as real strangers are.
* Search time: the vector index answering the real probes at Rekognition's defaults
  (FaceMatchThreshold 80, MaxFaces 4096): the exact index (facegate's default) and HNSW (faiss,
  M=32) at each ``--ef``. Recall of HNSW is measured against exact search two ways: recall@10
  (the ten nearest, whatever their distance) and hit recall (the faces exact search returns at
  similarity >= 80: what a caller actually gets back).

Prints one table, states the machine, writes bench/results/search_scale.json. Target (issue 3):
exact search at 1M faces <= 40 ms median on the 2-core machine. LFW descriptors are cached in
bench/results/cache/ (computing them takes about two minutes).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from benchlib import ROOT, SAMPLES, cell, machine_info, machine_line, write_results
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.similarity import default_similarity
from facegate.store.vectors import ExactIndex, HnswIndex, VectorIndex

PROBES = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "astronaut.png", "32bit.png")
LFW = ROOT.parent / "shared" / "data" / "lfw" / "images"
CACHE = ROOT / "bench" / "results" / "cache"
Matrix = npt.NDArray[np.float32]


def lfw_pairs(engine: FaceEngine, identities: int) -> tuple[Matrix, Matrix]:
    """(enrolled, probes): one descriptor each for the first ``identities`` LFW people (sorted by
    name) with two photos in which the engine finds a face: the first photo and the last."""
    cache = CACHE / f"search_scale_lfw_{identities}.npz"
    if cache.exists():
        data = np.load(cache)
        return data["enrolled"], data["probes"]
    people = [d for d in sorted(LFW.iterdir()) if len(list(d.glob("*.jpg"))) >= 2]
    enrolled, probes = [], []
    with tqdm(total=identities, desc="LFW descriptors", unit="person") as bar:
        for person in people:
            photos = sorted(person.glob("*.jpg"))
            first = _largest(engine, photos[0])
            last = _largest(engine, photos[-1])
            if first is None or last is None:
                continue
            enrolled.append(first)
            probes.append(last)
            bar.update(1)
            if len(enrolled) == identities:
                break
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cache, enrolled=np.stack(enrolled), probes=np.stack(probes))
    return np.stack(enrolled), np.stack(probes)


def _largest(engine: FaceEngine, path: Path) -> Matrix | None:
    faces = engine.analyze(path.read_bytes(), max_faces=1).faces
    if not faces or faces[0].descriptor is None:
        return None
    return np.asarray(faces[0].descriptor, dtype=np.float32)


def synthetic(real: Matrix, n: int, seed: int) -> Matrix:
    """``n`` descriptors from a Gaussian with ``real``'s mean and full covariance (as wide as
    ``real``'s rows: 128 for dlib, any model's or a fused model's width)."""
    rng = np.random.default_rng(seed)
    dim = real.shape[1]
    mean = real.mean(axis=0, dtype=np.float64)
    cov = np.cov(real.astype(np.float64), rowvar=False) + 1e-6 * np.eye(dim)
    chol = np.linalg.cholesky(cov)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 200_000):
        stop = min(n, start + 200_000)
        z = rng.standard_normal((stop - start, dim))
        out[start:stop] = z @ chol.T + mean
    return out


def engine_times(engine: FaceEngine, samples: Path, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        for name in PROBES:
            data = (samples / name).read_bytes()
            t0 = time.perf_counter()
            engine.analyze(data, max_faces=1)
            times.append(time.perf_counter() - t0)
    return times


def search_all(
    index: VectorIndex, queries: Matrix, max_distance: float
) -> tuple[list[float], list[set[str]], list[set[str]]]:
    """Per query: time at the defaults, the hit ids at the threshold, the ten nearest ids."""
    times, hits, top = [], [], []
    for q in queries:
        t0 = time.perf_counter()
        found = index.search(q, 4096, max_distance)
        times.append(time.perf_counter() - t0)
        hits.append({h.face_id for h in found})
        top.append({h.face_id for h in index.search(q, 10, 10.0)})
    return times, hits, top


def recall(truth: list[set[str]], found: list[set[str]]) -> float | None:
    total = sum(len(t) for t in truth)
    if total == 0:
        return None
    return sum(len(t & f) for t, f in zip(truth, found, strict=True)) / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200, help="real LFW probes (<= identities)")
    parser.add_argument("--identities", type=int, default=300)
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="largest size to build HNSW")
    parser.add_argument("--ef", default="64,128,256", help="HNSW efSearch values to measure")
    args = parser.parse_args()
    engine = FaceEngine(EngineConfig())
    enrolled, probes = lfw_pairs(engine, args.identities)
    engine_ms = 1000 * statistics.median(engine_times(engine, args.samples, 3))
    threshold = default_similarity().distance_for(80.0)
    queries = probes[: args.queries]
    planted_ids = [f"lfw{i}" for i in range(len(enrolled))]
    ef_values = [int(e) for e in args.ef.split(",")]
    rows: list[dict[str, float | int | str | None]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        n_synthetic = max(0, size - len(enrolled))
        data = np.vstack([enrolled, synthetic(enrolled, n_synthetic, seed=size)])[:size]
        ids = (planted_ids + [f"s{i}" for i in range(n_synthetic)])[:size]
        exact = ExactIndex()
        t0 = time.perf_counter()
        exact.add(ids, data)
        build = time.perf_counter() - t0
        exact_t, exact_hits, exact_top = search_all(exact, queries, threshold)
        mates = sum(f"lfw{i}" in h for i, h in enumerate(exact_hits) if i < len(enrolled))
        base: dict[str, float | int | str | None] = {
            "faces": size,
            "engine_ms": engine_ms,
            "exact_build_s": build,
            "exact_search_ms": 1000 * statistics.median(exact_t),
            "exact_p90_ms": 1000 * float(np.percentile(exact_t, 90)),
            "hits_at_80_mean": float(np.mean([len(h) for h in exact_hits])),
            "mate_found_at_80": mates / len(queries),
        }
        rows.append({**base, "index": "exact"})
        del exact
        if size <= args.hnsw_max:
            hnsw = HnswIndex()
            t0 = time.perf_counter()
            for start in tqdm(range(0, size, 50_000), desc=f"HNSW build {size}", leave=False):
                hnsw.add(ids[start : start + 50_000], data[start : start + 50_000])
            hnsw_build = time.perf_counter() - t0
            for ef in ef_values:
                hnsw.ef_search = ef  # the bench sweeps efSearch on one built graph
                t, hits, top = search_all(hnsw, queries, threshold)
                rows.append(
                    {
                        **base,
                        "index": f"hnsw ef={ef}",
                        "hnsw_build_s": hnsw_build,
                        "search_ms": 1000 * statistics.median(t),
                        "p90_ms": 1000 * float(np.percentile(t, 90)),
                        "recall_at_10": recall(exact_top, top),
                        "hit_recall_at_80": recall(exact_hits, hits),
                    }
                )
            del hnsw
        del data
    info = machine_info()
    print(machine_line(info))
    print(
        f"SearchFacesByImage at FaceMatchThreshold 80 (distance {threshold:.3f}), MaxFaces 4096; "
        f"{len(queries)} real LFW probes, each with one mate planted in the collection; "
        f"engine {engine_ms:.0f} ms per probe (median); search medians in ms"
    )
    header = (
        f"{'faces':>9} {'index':>12} {'search':>8} {'p90':>8} {'recall@10':>10} "
        f"{'hit recall':>11} {'mate found':>11} {'hits/query':>11} {'build s':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        is_exact = r["index"] == "exact"
        print(
            f"{r['faces']:>9} {r['index']!s:>12} "
            f"{cell(r['exact_search_ms'] if is_exact else r['search_ms'], 8, 2)} "
            f"{cell(r['exact_p90_ms'] if is_exact else r['p90_ms'], 8, 2)} "
            f"{cell(1.0 if is_exact else r['recall_at_10'], 10, 3)} "
            f"{cell(1.0 if is_exact else r['hit_recall_at_80'], 11, 3)} "
            f"{cell(r['mate_found_at_80'], 11, 3)} {cell(r['hits_at_80_mean'], 11, 2)} "
            f"{cell(r['exact_build_s'] if is_exact else r['hnsw_build_s'], 8, 1)}"
        )
    write_results(
        "search_scale",
        {"machine": info, "queries": len(queries), "threshold_distance": threshold, "rows": rows},
    )


if __name__ == "__main__":
    main()
