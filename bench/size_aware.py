"""What the size-aware 1:N bound costs: for collection sizes and bounds on expected false
candidates, the threshold ``@max_expected_false_candidates`` raises a search to (never below
99, as ``aws-public-safety-terms`` demands) and the share of LFW View 2's 3,000 mated pairs
missed there.

    .venv/bin/python bench/size_aware.py

Reads the descriptors from the bias toolkit's cache (``facegate bias verification --dataset lfw``
fills it); prints a markdown table.
"""

from __future__ import annotations

import numpy as np

from benchlib import ROOT
from facegate.bias.datasets import load_lfw
from facegate.bias.descriptors import compute_descriptors
from facegate.engine.similarity import default_similarity, scale_similarity

SIZES = (4_650, 25_000, 1_000_000)
BOUNDS = (0.01, 0.1, 1.0)


def main() -> None:
    manifest, pairs = load_lfw(ROOT.parent / "shared" / "data" / "lfw")
    vectors = compute_descriptors(manifest).vectors.astype(np.float64)
    mated = np.array([np.linalg.norm(vectors[p.left] - vectors[p.right]) for p in pairs if p.mated])
    mapping = default_similarity()
    print(f"mapping {mapping.version}; {len(mated)} mated pairs")
    print("| collection size | bound | threshold | distance | LFW FNMR |")
    print("|---|---|---|---|---|")
    for n in SIZES:
        for bound in BOUNDS:
            pct = max(99.0, scale_similarity(bound / n))
            distance = mapping.distance_for(min(pct, 99.99999))
            fnmr = np.mean(mated > distance)
            print(f"| {n:,} | {bound:g} | {pct:.4f} | {distance:.4f} | {fnmr:.1%} |")
    for pct in (80.0, 99.0):
        distance = mapping.distance_for(pct)
        print(f"| plain | - | {pct:g} | {distance:.4f} | {np.mean(mated > distance):.1%} |")


if __name__ == "__main__":
    main()
