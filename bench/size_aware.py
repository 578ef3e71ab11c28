"""What the size-aware 1:N bound costs: for collection sizes and bounds on expected false
candidates, the threshold ``@max_expected_false_candidates`` raises a search to (never below
99, as ``aws-public-safety-terms`` demands) and the share of LFW View 2's 3,000 mated pairs
missed there, for the raw distance and the cohort-normalised score (each with its own shipped
calibration), side by side.

    .venv/bin/python bench/size_aware.py

Reads the descriptors from the bias toolkit's cache (``facegate bias verification --dataset lfw``
fills it); prints a markdown table.
"""

from __future__ import annotations

import numpy as np

from benchlib import ROOT
from facegate.bias.datasets import load_lfw
from facegate.bias.descriptors import compute_descriptors
from facegate.engine.matching import Matcher, default_matcher, raw_matcher
from facegate.engine.similarity import scale_similarity

SIZES = (4_650, 25_000, 1_000_000)
BOUNDS = (0.01, 0.1, 1.0)


def _mated_similarities(
    matcher: Matcher, vectors: np.ndarray, pairs: list[tuple[int, int]]
) -> np.ndarray:
    left = vectors[[a for a, _ in pairs]]
    right = vectors[[b for _, b in pairs]]
    distances = np.linalg.norm(left - right, axis=1)
    stats_l, stats_r = matcher.stats(left), matcher.stats(right)
    return np.array(
        [
            matcher.similarities([d], float(a), [b])[0]
            for d, a, b in zip(distances, stats_l, stats_r, strict=True)
        ]
    )


def main() -> None:
    manifest, pairs = load_lfw(ROOT.parent / "shared" / "data" / "lfw")
    vectors = compute_descriptors(manifest).vectors.astype(np.float64)
    mated_pairs = [(p.left, p.right) for p in pairs if p.mated]
    matchers = {"raw": raw_matcher(), "normalised": default_matcher()}
    sims = {name: _mated_similarities(m, vectors, mated_pairs) for name, m in matchers.items()}
    for name, m in matchers.items():
        print(f"{name}: {m.version}")
    print(f"{len(mated_pairs)} mated pairs; missed: Similarity below the threshold")
    print("| collection size | bound | threshold | LFW FNMR raw | LFW FNMR normalised |")
    print("|---|---|---|---|---|")
    rows = [(f"{n:,}", f"{b:g}", max(99.0, scale_similarity(b / n))) for n in SIZES for b in BOUNDS]
    rows += [("plain", "-", 80.0), ("plain", "-", 99.0)]
    for size, bound, pct in rows:
        cells = " | ".join(f"{np.mean(sims[k] + 1e-9 < pct):.1%}" for k in matchers)
        print(f"| {size} | {bound} | {pct:.4f} | {cells} |")


if __name__ == "__main__":
    main()
