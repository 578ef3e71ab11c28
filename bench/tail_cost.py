"""What the per-search tail estimate costs a 1:N search: the search as before; with the
probe's 101 nearest faces read once more, scored (cohort-normalised) and fitted, reported only
(no bound: the same threshold, so the same work after); and with the default bound of one
expected false candidate (the threshold may rise, and fewer hits are then scored); side by side
in one run over the same probes (ops/search.py ``_tail_threshold``).

    PYTHONPATH=src .venv/bin/python bench/tail_cost.py

Collections of random 128-d vectors at dlib's scale (the cost does not depend on who is in
them), exact index, Similarity 80 (Rekognition's default: these vectors draw hundreds of
candidates there) and 99, MaxFaces 4096 (the API's maximum); 200 probes per size, median and
90th percentile. When the tail's 101 nearest faces reach past the search's distance bound the
search takes its hits from them (one pass over the vectors instead of two). Writes
bench/results/tail_cost.json.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import replace
from typing import Any, cast

import numpy as np

from benchlib import machine_info, machine_line, write_results
from facegate.engine.matching import default_matcher
from facegate.ops.common import OpDeps
from facegate.ops.estimates import FalseCandidates
from facegate.ops.search import scored_hits
from facegate.store.records import CollectionRecord, FaceRecord
from facegate.store.vectors import ExactIndex

C = CollectionRecord("c", "arn", "dlib-resnet-v1", "exact", 0.0, "acme", "col-c")
SIZES = (1_000, 25_000, 100_000)
THRESHOLDS = (80.0, 99.0)
PROBES = 200


class IndexStore:
    """The store calls a search makes, over one :class:`ExactIndex` (no database)."""

    def __init__(self, index: ExactIndex) -> None:
        self.index = index

    def indexed_count(self, collection: CollectionRecord) -> int:
        return len(self.index)

    def nearest(self, collection: CollectionRecord, query: Any, k: int, bound: float) -> Any:
        return self.index.search(np.asarray(query, dtype=np.float32), k, bound)

    def indexed_vectors(self, collection: CollectionRecord, ids: list[str]) -> Any:
        return self.index.vectors(ids)

    def get_faces(self, collection: CollectionRecord, ids: list[str]) -> dict[str, FaceRecord]:
        return {
            f: FaceRecord(f, "c", "i", "s", None, 0, 0, 1, 1, 99.0, "dlib-resnet-v1", None, 0)
            for f in ids
        }


def _time(deps: OpDeps, probes: np.ndarray, mode: str, threshold: float) -> list[float]:
    out = []
    for p in probes:
        estimate = None
        if mode != "plain":
            estimate = FalseCandidates(bound=1.0 if mode == "bound" else None)
        use = replace(deps, false_candidates=estimate)
        started = time.perf_counter()
        asyncio.run(scored_hits(use, C, p, threshold, 4096))
        out.append((time.perf_counter() - started) * 1000.0)
    return out


def main() -> None:
    rng = np.random.default_rng(4)
    matcher = default_matcher()
    rows = []
    print(
        "| faces | threshold | search ms (median, p90) | + tail, report only | ratio | "
        "+ tail, bound 1 | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in SIZES:
        base = rng.normal(scale=0.09, size=128)
        vectors = (base + rng.normal(scale=0.05, size=(n, 128))).astype(np.float32)
        index = ExactIndex()
        index.add([f"f{i}" for i in range(n)], vectors)
        deps = OpDeps(
            store=cast(Any, IndexStore(index)),
            matcher=matcher,
            region="r",
            account_id="a",
            **cast(dict[str, Any], {"engine": None, "idempotency": None, "pages": None}),
        )
        probes = (base + rng.normal(scale=0.05, size=(PROBES, 128))).astype(np.float32)
        # interleaved halves so load drifts hit both alike
        for threshold in THRESHOLDS:
            times: dict[str, list[float]] = {"plain": [], "report": [], "bound": []}
            for half in (probes[: PROBES // 2], probes[PROBES // 2 :]):
                for mode, out in times.items():
                    out += _time(deps, half, mode, threshold)
            row: dict[str, float] = {"faces": n, "threshold": threshold}
            for mode, out in times.items():
                row[f"{mode}_ms_median"] = statistics.median(out)
                row[f"{mode}_ms_p90"] = float(np.percentile(out, 90))
            for mode in ("report", "bound"):
                row[f"{mode}_ratio"] = row[f"{mode}_ms_median"] / row["plain_ms_median"]
            rows.append(row)
            cells = " | ".join(
                f"{row[f'{m}_ms_median']:.2f}, {row[f'{m}_ms_p90']:.2f}"
                + ("" if m == "plain" else f" | {row[f'{m}_ratio']:.2f}x")
                for m in times
            )
            print(f"| {n:,} | {threshold:g} | {cells} |", flush=True)
    info = machine_info()
    write_results("tail_cost", {"machine": info, "rows": rows})
    print(machine_line(info))


if __name__ == "__main__":
    main()
