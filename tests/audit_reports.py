"""Bias audit reports for the deployment gate's tests, built by the real bias toolkit.

:func:`verification_report` scores synthetic pairs (two groups, 200 mated and 200 non-mated
pairs each, distances chosen so the rates at Similarity 99 are known) with
``facegate.bias.verification.analyse`` and ``threshold_json``, and wraps them in the top-level
layout of ``facegate bias verification --json`` (``_pair_report`` in ``facegate.cli.bias``).
Tests may import the bias toolkit; the server may not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facegate.bias.datasets import Pair
from facegate.bias.verification import ScoredPairs, analyse, threshold_json
from facegate.engine.embed import dlib_model_version
from facegate.engine.matching import default_matcher

PAIRS = 200
"""Mated and non-mated pairs per group (above the toolkit's default min_pairs of 100)."""


def verification_report(
    *,
    false_matches: tuple[int, int] = (2, 10),
    false_non_matches: tuple[int, int] = (20, 40),
    thresholds: tuple[float, ...] = (80.0, 99.0),
    model_version: str | None = None,
    similarity_version: str | None = None,
    kind: str | None = "verification",
) -> dict[str, Any]:
    """A report whose groups "a" and "b" have, at Similarity 99, ``false_matches[i]`` of 200
    non-mated pairs matched and ``false_non_matches[i]`` of 200 mated pairs missed.

    Defaults: FMR 0.01 and 0.05 (Max/GeoMean = 0.05 / sqrt(0.0005), about 2.24), FNMR 0.1 and
    0.2 (highest group FNMR 0.2). Versions default to the engine's."""
    similarity = default_matcher().similarity
    at99 = similarity.distance_for(99.0)
    close, far = at99 * 0.5, at99 * 1.5  # a match at 99, and no match at 99 (nor at 80 if > 0.6)
    far = max(far, similarity.distance_for(80.0) * 1.2)
    distances: list[float] = []
    mated: list[bool] = []
    groups: list[str] = []
    for g, name in enumerate(("a", "b")):
        misses, hits = false_non_matches[g], false_matches[g]
        distances += [far] * misses + [close] * (PAIRS - misses)
        mated += [True] * PAIRS
        distances += [close] * hits + [far] * (PAIRS - hits)
        mated += [False] * PAIRS
        groups += [name] * (2 * PAIRS)
    n = len(distances)
    scored = ScoredPairs(
        pairs=tuple(Pair(i, i + 1, m) for i, m in enumerate(mated)),
        distances=np.asarray(distances, dtype=np.float64),
        mated=np.asarray(mated, dtype=np.bool_),
        groups=np.asarray(groups, dtype=np.str_),
        clusters=np.asarray([f"s{i // 4}" for i in range(n)], dtype=np.str_),
    )
    results = analyse(scored, thresholds, min_pairs=100, n_boot=20, seed=0)
    report: dict[str, Any] = {
        "command": "facegate bias verification (synthetic, tests/audit_reports.py)",
        "model_version": model_version or dlib_model_version(False),
        "similarity_version": similarity_version or similarity.version,
        "dataset": "synthetic",
        "group_by": ["group"],
        "pairs": {"total": n},
        "thresholds": [threshold_json(r) for r in results],
    }
    if kind is not None:
        report["kind"] = kind
    return report
