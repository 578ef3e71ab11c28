"""Impostor-only audits: FMR per group where every pair is presumed two different people.

For data sets without identities (FairFace), any two images are presumed to show different
people, so every pair is non-mated and only FMR (share of pairs that match) is defined. Pairs
are seeded: :func:`facegate.bias.groups.impostor_pairs` within each group, and optionally
:func:`cross_group_pairs` between groups (reported apart from the group table). Rates,
intervals and Max/GeoMean come from :func:`facegate.bias.verification.analyse`.

The presumption fails for duplicates (the same photo, or the same person, twice in the data):
such a pair is a *data bug*, not a false match. :func:`top_pairs` lists the highest-similarity
pairs so a person can review them before any FMR is quoted.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facegate.bias.datasets import Manifest, Pair
from facegate.bias.groups import group_key
from facegate.bias.verification import ScoredPairs
from facegate.engine.similarity import SimilarityModel, default_similarity

REVIEW_NOTE = (
    "Every pair is presumed to show two different people. Review the highest-similarity pairs: "
    "a duplicate image or the same person twice is a data bug, not a false match; remove it "
    "from the data before quoting the false match rate."
)


def _subject(manifest: Manifest, index: int) -> str:
    subject = manifest.samples[index].subject_id
    return f"\0sample-{index}" if subject is None else subject


def cross_group_pairs(manifest: Manifest, group_by: Sequence[str], n: int, seed: int) -> list[Pair]:
    """Up to ``n`` distinct seeded non-mated pairs whose samples are in different groups.

    Sorted, ``left < right``; fewer when the attempt cap (``50 n + 1000`` draws) is reached
    (e.g. a single group). Deterministic for a given ``seed``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    keys = [group_key(s, group_by) for s in manifest.samples]
    size = len(manifest)
    rng = random.Random(f"{seed}\0cross-group")  # noqa: S311 - reproducible sampling
    picked: set[tuple[int, int]] = set()
    if size < 2 or n == 0:
        return []
    for _ in range(50 * n + 1000):
        if len(picked) == n:
            break
        a, b = sorted(rng.sample(range(size), 2))
        if keys[a] == keys[b] or _subject(manifest, a) == _subject(manifest, b):
            continue
        picked.add((a, b))
    return [Pair(a, b, mated=False) for a, b in sorted(picked)]


@dataclass(frozen=True)
class TopPair:
    """One high-similarity presumed-impostor pair, for human review."""

    left: str
    right: str
    group: str
    distance: float
    similarity_pct: float


def top_pairs(
    manifest: Manifest,
    scored: ScoredPairs,
    n: int,
    similarity: SimilarityModel | None = None,
) -> list[TopPair]:
    """The ``n`` scored non-mated pairs with the smallest distance (ties: pair order).

    ``similarity``: the distance -> Similarity mapping (default: the engine's).
    """
    similarity = similarity or default_similarity()
    candidates = np.flatnonzero(scored.scored & ~scored.mated)
    if n <= 0 or candidates.size == 0:
        return []
    order = candidates[np.argsort(scored.distances[candidates], kind="stable")[:n]]
    out = []
    for i in order.tolist():
        pair = scored.pairs[i]
        distance = float(scored.distances[i])
        out.append(
            TopPair(
                left=str(manifest.samples[pair.left].path),
                right=str(manifest.samples[pair.right].path),
                group=str(scored.groups[i]),
                distance=distance,
                similarity_pct=similarity.similarity_pct(distance),
            )
        )
    return out


def mated_pairs(
    manifest: Manifest, group_by: Sequence[str], per_group: int, seed: int
) -> list[Pair]:
    """Mated pairs of an operator manifest: two samples with the same ``subject_id`` in one group.

    Every such pair, or a seeded sample of ``per_group`` of them in a group that has more.
    Samples without a subject id are in no mated pair. Sorted, ``left < right``.
    """
    if per_group < 0:
        raise ValueError(f"per_group must be >= 0, got {per_group}")
    by_subject: dict[tuple[str, str], list[int]] = {}
    for i, sample in enumerate(manifest.samples):
        if sample.subject_id is not None:
            key = (group_key(sample, group_by), sample.subject_id)
            by_subject.setdefault(key, []).append(i)
    per: dict[str, list[tuple[int, int]]] = {}
    for (group, _), members in sorted(by_subject.items()):
        per.setdefault(group, []).extend(
            (a, b) for k, a in enumerate(members) for b in members[k + 1 :]
        )
    rng = random.Random(f"{seed}\0mated")  # noqa: S311 - reproducible sampling
    picked: list[tuple[int, int]] = []
    for group in sorted(per):
        found = per[group]
        picked += found if len(found) <= per_group else rng.sample(found, per_group)
    return [Pair(a, b, mated=True) for a, b in sorted(picked)]
