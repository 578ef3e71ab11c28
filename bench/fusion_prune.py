"""The exact index's pruned screen for cosine parts (issue 19's search cost), side by side in one
run: the fused (and faceres) index before it (the previous code, :class:`LegacyIndex`), and
with a sketch of 128, 192 and 256 values per row (``ExactIndex(prune_dims=...)``; faceres alone
is no longer sketched, so its columns are the full read since).

    PYTHONPATH=src:bench nice -n 10 .venv/bin/python bench/fusion_prune.py [--faces 100000]
        [--probes 40] [--dims 0,128,192,256] [--json NAME]

Gallery: ``--faces`` synthetic vectors with the mean and full covariance of the fused model's
real vectors of 1,000 LFW and 1,000 FairFace val images (every k-th image; as
``fusion_e2e.py``, from the bias toolkit's descriptor cache; faceres' index gets their last 1,024
values). Probes: the fused vectors of ``--probes`` Congress portraits (another data set: the
basis is fitted on the gallery, never on a probe). Per probe, the reads the server makes:

* ``tail``: the probe's 101 nearest with no bound (the tail estimate's read, ``ops/search.py``);
* ``s80``: at most 4,096 faces within the distance bound of Similarity 80 (the fused model's
  cohort matcher, the probe's own statistic: what the request asks before a policy raises it).

Per column: median ms of each read (columns interleaved, after a warm-up probe), rows that
survive the sketch's bounds (the rows whose full vectors are read: all of them where more
than ``ExactIndex.full_read_share`` survive and the search falls back to a full read), the
sketch's bytes per face and its fit time, and whether every answer equals the previous code's
(same ids in the same order; distances within 1e-12: the previous code's float64 dot product
was BLAS's, now einsum's, which differs in the last bits). Prints the machine and the table; writes
``bench/results/fusion_prune.json``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchlib import machine_info, machine_line, write_results
from facegate.bias.datasets import load_congress
from facegate.bias.descriptors import FACE, DescriptorCache
from facegate.bias.model_descriptors import compute_fused_descriptors
from facegate.engine.core import EngineConfig
from facegate.engine.descriptors import FACERES_V1, FUSED_DLIB_FACERES_V1
from facegate.engine.matching import Matcher, matcher_for
from facegate.store.vectors import ExactIndex, Hit
from fusion_e2e import DATA, real_pool
from search_scale import synthetic

K_TAIL = 101
SIMILARITY = 80.0


class LegacyIndex(ExactIndex):
    """The fused index's search as it was before the sketch (commit 1b00f33): one float32
    screen of every row, the ``k`` smallest screened kept, their distances recomputed."""

    def __init__(self, space: Any) -> None:
        super().__init__(space, prune_dims=0)

    def _search_space(
        self, query: Any, k: int, max_distance: float, weights: Sequence[float] | None
    ) -> list[Hit]:
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        w = self.space.weights_or_ones(weights)
        n = self._size
        approx = self._approx(q, w, None)
        if math.isfinite(max_distance):
            rows = np.flatnonzero(approx <= max_distance + 1e-3 * sum(w))
        else:
            rows = np.arange(n)
        if len(rows) > k:
            rows = rows[np.argpartition(approx[rows], k - 1)[:k]]
        exact = self.space.distances_by_part(q, [block[rows] for block in self._blocks], w)
        ids = [self._ids[i] for i in rows]
        order = np.argsort(exact, kind="stable")
        return [Hit(ids[i], float(exact[i])) for i in order if exact[i] <= max_distance]


def survivors(index: ExactIndex, q: np.ndarray, k: int, bound: float, w: Any) -> int:
    """Rows whose full vectors a search reads after the sketch's bounds (every row without)."""
    if not index.sketched:
        return len(index)
    weights = index.space.weights_or_ones(w)
    margin = 1e-3 * sum(weights)
    limit = bound + margin if math.isfinite(bound) else math.inf
    lower, middle = index._bounds(q, weights, len(index))
    n = len(index)
    rows = np.flatnonzero(lower <= limit)
    if len(rows) > 2 * k and 2 * k <= index.full_read_share * n:
        first = rows[np.argpartition(middle[rows], 2 * k - 1)[: 2 * k]]
        approx = index._approx(q, weights, first)
        within = approx[approx <= limit] if math.isfinite(limit) else approx
        if len(within) >= k:
            kth = float(np.partition(within, k - 1)[k - 1])
            rows = rows[lower[rows] <= kth + 2.0 * margin]
    return len(rows) if len(rows) <= index.full_read_share * n else n  # else: a full read


def same(a: list[Hit], b: list[Hit]) -> bool:
    return [h.face_id for h in a] == [h.face_id for h in b] and all(
        abs(x.distance - y.distance) <= 1e-12 for x, y in zip(a, b, strict=True)
    )


def measure(
    model: str, matcher: Matcher, gallery: np.ndarray, probes: np.ndarray, dims: list[int]
) -> dict[str, Any]:
    """One model's columns (see the module docstring)."""
    ids = [f"f{i}" for i in range(len(gallery))]
    columns: dict[str, ExactIndex] = {"before": LegacyIndex(matcher.space)}
    fit_s: dict[str, float] = {}
    for d in dims:
        index = ExactIndex(matcher.space, prune_dims=d, prune_min_rows=len(gallery) + 1)
        index.add(ids, gallery)
        t0 = time.perf_counter()
        if d:
            index._fit_sketches()
        fit_s[str(d)] = time.perf_counter() - t0
        columns[str(d)] = index
    columns["before"].add(ids, gallery)
    reads = ("tail", "s80")
    times: dict[str, dict[str, list[float]]] = {r: {c: [] for c in columns} for r in reads}
    kept: dict[str, dict[str, list[int]]] = {r: {c: [] for c in columns} for r in reads}
    agree = dict.fromkeys(columns, True)
    hits: list[int] = []
    for i, q in enumerate(probes):
        bound = matcher.distance_bound(SIMILARITY, float(matcher.stats(q)[0]))
        for read, k, limit in (("tail", K_TAIL, math.inf), ("s80", 4096, bound)):
            answers = {}
            order = list(columns) if i % 2 else list(columns)[::-1]
            for c in order:
                t0 = time.perf_counter()
                answers[c] = columns[c].search(q, k, limit, matcher.weights)
                if i:  # the first probe warms up
                    times[read][c].append(1000.0 * (time.perf_counter() - t0))
                kept[read][c].append(survivors(columns[c], q, k, limit, matcher.weights))
            for c in columns:
                agree[c] = agree[c] and same(answers[c], answers["before"])
            if read == "s80":
                hits.append(len(answers["before"]))
    per_face = {
        c: 4 * sum(p.shape[1] + 1 for p in idx._proj.values()) for c, idx in columns.items()
    }
    return {
        "model": model,
        "faces": len(gallery),
        "probes": len(probes),
        "median_ms": {r: {c: statistics.median(v) for c, v in times[r].items()} for r in reads},
        "survivors_median": {
            r: {c: statistics.median(v) for c, v in kept[r].items()} for r in reads
        },
        "survivors_max": {r: {c: max(v) for c, v in kept[r].items()} for r in reads},
        "sketch_bytes_per_face": per_face,
        "vector_bytes_per_face": 4 * matcher.space.dim,
        "fit_s": fit_s,
        "same_answers_as_before": agree,
        "s80_hits_median": statistics.median(hits),
    }


def table(r: dict[str, Any]) -> list[str]:
    cols = list(r["median_ms"]["tail"])
    base = r["median_ms"]["tail"]["before"]
    lines = [
        f"{r['model']}, {r['faces']:,} faces, {r['probes']} Congress probes "
        f"(s80: {r['s80_hits_median']:g} hits, median)",
        "| column | tail read ms (ratio) | rows read fully (median/max) | s80 ms "
        "| rows read fully | sketch bytes/face | fit s | same answers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cols:
        t = r["median_ms"]["tail"][c]
        lines.append(
            f"| {'prune_dims ' + c if c != 'before' else 'before'} | {t:.1f} ({t / base:.2f}x) "
            f"| {r['survivors_median']['tail'][c]:,.0f} / {r['survivors_max']['tail'][c]:,} "
            f"| {r['median_ms']['s80'][c]:.1f} | {r['survivors_median']['s80'][c]:,.0f} "
            f"| {r['sketch_bytes_per_face'][c]:,} | {r['fit_s'].get(c, 0.0):.2f} "
            f"| {r['same_answers_as_before'][c]} |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--faces", type=int, default=100_000)
    ap.add_argument("--probes", type=int, default=40)
    ap.add_argument("--dims", default="0,128,192,256")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    started = time.time()
    dims = [int(d) for d in args.dims.split(",")]
    pool = real_pool(1000)
    gallery = synthetic(pool, args.faces, seed=19)
    congress = load_congress(DATA / "congress_2015")
    fused, _ = compute_fused_descriptors(
        [congress], FUSED_DLIB_FACERES_V1, cache=DescriptorCache(None), progress=False
    )
    faces = fused[0].vectors[list(fused[0].indices(FACE))]
    probes = faces[np.linspace(0, len(faces) - 1, args.probes).astype(np.intp)]
    registry = EngineConfig().registry()
    results = []
    for model, cut in ((FUSED_DLIB_FACERES_V1, slice(0, 1152)), (FACERES_V1, slice(128, 1152))):
        matcher = matcher_for(registry.get(model), "cohort")
        results.append(
            measure(
                model,
                matcher,
                np.ascontiguousarray(gallery[:, cut]),
                np.ascontiguousarray(probes[:, cut]),
                dims,
            )
        )
    info = machine_info()
    print(machine_line(info))
    for r in results:
        print("\n".join(table(r)))
    doc = {
        "kind": "fusion-prune",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "PYTHONPATH=src:bench nice -n 10 .venv/bin/python bench/fusion_prune.py "
        f"--faces {args.faces} --probes {args.probes} --dims {args.dims}",
        "machine": info,
        "results": results,
        "seconds": round(time.time() - started, 1),
    }
    print(f"wrote {write_results(args.json or 'fusion_prune', doc)}")


if __name__ == "__main__":
    main()
