"""SearchFacesByImage latency split into engine time and search time, at 1k, 100k and 1M faces.

    .venv/bin/python bench/search_scale.py [--sizes 1000,100000,1000000] [--queries 50]

* Engine time: real probes (the sample portraits) through decode, detection and the descriptor
  of the largest face, as SearchFacesByImage does (median per probe).
* Search time: the collection's vector index answering a query at Rekognition's defaults
  (FaceMatchThreshold 80, MaxFaces 4096), for the exact index (facegate's default) and HNSW
  (faiss, M=32, efSearch=128), with HNSW's recall@10 against exact search.
* Collections are synthetic: descriptors drawn from a Gaussian with the per-dimension mean and
  spread of real descriptors (the sample photos), so distances between them look like distances
  between strangers. Queries are real descriptors with a little noise.

Prints one table, states the machine, writes bench/results/search_scale.json. Target (issue 3):
exact search at 1M faces <= 40 ms median on the 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from benchlib import SAMPLES, cell, machine_info, machine_line, write_results
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.similarity import DEFAULT_SIMILARITY
from facegate.store.vectors import DIM, ExactIndex, HnswIndex, VectorIndex

PROBES = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "astronaut.png", "32bit.png")


def real_descriptors(engine: FaceEngine, samples: Path) -> npt.NDArray[np.float32]:
    vectors = []
    for path in sorted(samples.rglob("*")):
        if path.suffix.lower() not in (".jpg", ".png"):
            continue
        for face in engine.analyze(path.read_bytes()).faces:
            assert face.descriptor is not None
            vectors.append(face.descriptor)
    return np.stack(vectors)


def synthetic(real: npt.NDArray[np.float32], n: int, seed: int) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    mean, std = real.mean(axis=0), real.std(axis=0)
    noise = rng.standard_normal((n, DIM), dtype=np.float32)
    out: npt.NDArray[np.float32] = (noise * std + mean).astype(np.float32)
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


def search_times(
    index: VectorIndex, queries: npt.NDArray[np.float32], max_distance: float
) -> tuple[list[float], list[list[str]], list[int]]:
    """Per query: search time at the defaults, the top 10 ids, the number of candidates."""
    times, results, candidates = [], [], []
    for q in queries:
        t0 = time.perf_counter()
        hits = index.search(q, 4096, max_distance)
        times.append(time.perf_counter() - t0)
        candidates.append(len(hits))
        results.append([h.face_id for h in index.search(q, 10, 10.0)])
    return times, results, candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--no-hnsw", action="store_true")
    args = parser.parse_args()
    engine = FaceEngine(EngineConfig())
    real = real_descriptors(engine, args.samples)
    engine_ms = 1000 * statistics.median(engine_times(engine, args.samples, 3))
    threshold = DEFAULT_SIMILARITY.distance_for(80.0)
    rng = np.random.default_rng(5)
    queries = (
        real[rng.integers(0, len(real), args.queries)] + rng.normal(0, 0.02, (args.queries, DIM))
    ).astype(np.float32)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        data = synthetic(real, size, seed=size)
        ids = [f"f{i}" for i in range(size)]
        exact = ExactIndex()
        t0 = time.perf_counter()
        exact.add(ids, data)
        exact_build = time.perf_counter() - t0
        exact_t, exact_top, candidates = search_times(exact, queries, threshold)
        row: dict[str, float | int | None] = {
            "faces": size,
            "engine_ms": engine_ms,
            "exact_build_s": exact_build,
            "exact_search_ms": 1000 * statistics.median(exact_t),
            "exact_p90_ms": 1000 * float(np.percentile(exact_t, 90)),
            "candidates_at_80_median": float(statistics.median(candidates)),
            "hnsw_build_s": None,
            "hnsw_search_ms": None,
            "hnsw_recall_at_10": None,
        }
        if not args.no_hnsw:
            hnsw = HnswIndex()
            t0 = time.perf_counter()
            for start in range(0, size, 100_000):
                hnsw.add(ids[start : start + 100_000], data[start : start + 100_000])
            row["hnsw_build_s"] = time.perf_counter() - t0
            hnsw_t, hnsw_top, _ = search_times(hnsw, queries, threshold)
            row["hnsw_search_ms"] = 1000 * statistics.median(hnsw_t)
            found = sum(len(set(a) & set(b)) for a, b in zip(exact_top, hnsw_top, strict=True))
            row["hnsw_recall_at_10"] = found / sum(len(a) for a in exact_top)
            del hnsw
        rows.append(row)
        del exact, data
    info = machine_info()
    print(machine_line(info))
    print(
        f"SearchFacesByImage at FaceMatchThreshold 80 (distance {threshold:.3f}), MaxFaces 4096; "
        f"{args.queries} queries; medians in ms"
    )
    header = (
        f"{'faces':>9} {'engine':>8} {'exact':>8} {'exact p90':>10} {'total':>8} "
        f"{'hnsw':>8} {'recall@10':>10} {'hnsw build s':>13} {'cands@80':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        total = float(r["engine_ms"] or 0) + float(r["exact_search_ms"] or 0)
        print(
            f"{r['faces']:>9} {cell(r['engine_ms'], 8, 1)} {cell(r['exact_search_ms'], 8, 2)} "
            f"{cell(r['exact_p90_ms'], 10, 2)} {total:8.1f} {cell(r['hnsw_search_ms'], 8, 2)} "
            f"{cell(r['hnsw_recall_at_10'], 10, 3)} {cell(r['hnsw_build_s'], 13, 1)} "
            f"{cell(r['candidates_at_80_median'], 9, 0)}"
        )
    write_results("search_scale", {"machine": info, "queries": args.queries, "rows": rows})


if __name__ == "__main__":
    main()
