"""How many pairs an audit scores per group: every pair when that is cheap, otherwise a seeded
sample grown until the groups can be ranked. Every report says which (:class:`Sampling`).

Why: a fixed sample of a few thousand pairs per group cannot show a false match rate much below
1 / sample. At a strict threshold some groups then have no false match at all, they drop out of
Max/GeoMean, and the disparity looks smaller than it is (on a held-out set at Similarity 99, 3,000
pairs per group gave Max/GeoMean 2.56 with a zero group left out; every pair gave 12.0).

The rule (``--pairs-per-group auto``, the default):

1. **Every pair** of each kind within each group (same-subject pairs when the data set has
   identities, different-subject pairs always), when all groups together have at most
   ``every_pair_limit`` of them (default :data:`EVERY_PAIR_LIMIT`).
2. Otherwise **sample until separated**: start with :data:`START` pairs per group and kind,
   double until, at every threshold and for every error rate the sample can change, the groups
   are *ranked*: every group with at least ``min_pairs`` pairs has at least one error, and the
   highest and lowest groups' 95% Wilson intervals do not overlap. A group with fewer possible
   pairs than the sample size gives all of them.
3. Stop at ``budget`` pairs per group and kind (**budget reached**: the groups could not be
   ranked with that many; the report says so, and the intervals show how far apart they are).

``--pairs-per-group N`` gives a **fixed** seeded sample of ``N`` (the old behaviour).
LFW View 2's own 6,000 pairs are always used as they are; only the added pairs are sampled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facegate.bias.datasets import Manifest, Pair
from facegate.bias.groups import group_samples, impostor_pairs
from facegate.bias.impostors import mated_pairs
from facegate.bias.stats import wilson_interval
from facegate.bias.verification import CROSS_GROUP, ScoredPairs

EVERY_PAIR_LIMIT = 1_000_000
"""Most pairs (all groups, both kinds) scored as "every pair"; above it, sample."""
START = 3_000
"""First sample size per group and kind."""
DEFAULT_BUDGET = 200_000
"""Largest sample per group and kind."""

EVERY, UNTIL_SEPARATED, BUDGET_REACHED, FIXED = (
    "every pair",
    "sampled until separated",
    "budget reached",
    "fixed sample",
)


@dataclass(frozen=True)
class Sampling:
    """What was scored: ``mode`` (one of the four above), ``per_group`` (the last sample size
    per group and kind; None for every pair) and ``rounds`` (the sizes tried, in order)."""

    mode: str
    per_group: int | None
    rounds: tuple[int, ...]
    possible: int

    def json(self) -> dict[str, Any]:
        """For the JSON report's ``sampling``."""
        return {
            "mode": self.mode,
            "per_group": self.per_group,
            "rounds": list(self.rounds),
            "possible_pairs": self.possible,
        }

    def line(self) -> str:
        """One line for the text report."""
        if self.mode == EVERY:
            return f"sampling: every pair within each group ({self.possible:,} possible)"
        sizes = ", ".join(f"{n:,}" for n in self.rounds)
        text = {
            UNTIL_SEPARATED: "sampled until the groups were ranked",
            BUDGET_REACHED: "sampled to the budget; the groups could not be ranked",
            FIXED: "a fixed seeded sample",
        }[self.mode]
        return (
            f"sampling: {text}: {self.per_group:,} pairs per group and kind "
            f"(tried {sizes}; {self.possible:,} possible)"
        )


def possible_pairs(manifest: Manifest, group_by: Sequence[str], mated: bool) -> int:
    """Within-group pairs there are: different-subject ones, and same-subject ones if ``mated``."""
    total = 0
    for members in group_samples(manifest, group_by).values():
        n = len(members)
        subjects: dict[str, int] = {}
        for i in members:
            s = manifest.samples[i].subject_id
            if s is not None:
                subjects[s] = subjects.get(s, 0) + 1
        same = sum(k * (k - 1) // 2 for k in subjects.values())
        total += n * (n - 1) // 2 - (0 if mated else same)
    return total


def every_pair(manifest: Manifest, group_by: Sequence[str], mated: bool) -> list[Pair]:
    """Every within-group pair (same-subject ones only if ``mated``), sorted."""
    out: list[Pair] = []
    subjects = [s.subject_id for s in manifest.samples]
    for members in group_samples(manifest, group_by).values():
        idx = np.asarray(members, dtype=np.int64)
        a, b = np.triu_indices(len(idx), 1)
        for left, right in zip(idx[a].tolist(), idx[b].tolist(), strict=True):
            same = subjects[left] is not None and subjects[left] == subjects[right]
            if same and not mated:
                continue
            out.append(Pair(left, right, same))
    out.sort(key=lambda p: (p.left, p.right))
    return out


def separated(
    scored: ScoredPairs, limits: Sequence[float], kinds: Sequence[str], min_pairs: int
) -> bool:
    """True when, at every limit and for each of ``kinds`` (``fmr``/``fnmr``), the groups with
    at least ``min_pairs`` pairs all have an error and the extremes' Wilson intervals are apart
    (fewer than two such groups: nothing to rank, True)."""
    ok = scored.scored & (scored.groups != CROSS_GROUP)
    for kind in kinds:
        want = scored.mated if kind == "fnmr" else ~scored.mated
        rows = ok & want
        names = sorted(set(scored.groups[rows].tolist()))
        for limit in limits:
            rates: list[tuple[float, int, int]] = []
            for name in names:
                d = scored.distances[rows & (scored.groups == name)]
                if d.size < min_pairs:
                    continue
                errors = int((d > limit).sum() if kind == "fnmr" else (d <= limit).sum())
                rates.append((errors / d.size, errors, int(d.size)))
            if len(rates) < 2:
                continue
            if any(errors == 0 for _, errors, _ in rates):
                return False
            high, low = max(rates), min(rates)
            hi_ci, lo_ci = wilson_interval(high[1], high[2]), wilson_interval(low[1], low[2])
            if hi_ci is None or lo_ci is None or hi_ci[0] <= lo_ci[1]:
                return False
    return True


def choose_pairs(
    manifest: Manifest,
    group_by: Sequence[str],
    *,
    mated: bool,
    per_group: int | None,
    seed: int,
    ranked: Callable[[list[Pair]], bool],
    budget: int = DEFAULT_BUDGET,
    every_pair_limit: int = EVERY_PAIR_LIMIT,
) -> tuple[list[Pair], list[Pair], Sampling]:
    """(same-subject pairs, different-subject pairs, how they were chosen).

    ``mated``: also same-subject pairs (an operator's manifest with identities); ``per_group``:
    a fixed sample size, or None for the rule in the module docstring; ``ranked(pairs)`` scores
    the pairs and says whether the groups are ranked (:func:`separated`).
    """
    possible = possible_pairs(manifest, group_by, mated)

    def draw(n: int) -> tuple[list[Pair], list[Pair]]:
        same = mated_pairs(manifest, group_by, n, seed) if mated else []
        other = impostor_pairs(manifest, group_by, n, seed)
        return same, [p for group in other.values() for p in group]

    if per_group is not None:
        same, other = draw(per_group)
        return same, other, Sampling(FIXED, per_group, (per_group,), possible)
    if possible <= every_pair_limit:
        pairs = every_pair(manifest, group_by, mated)
        same = [p for p in pairs if p.mated]
        other = [p for p in pairs if not p.mated]
        return same, other, Sampling(EVERY, None, (), possible)
    rounds: list[int] = []
    n = min(START, budget)
    while True:
        rounds.append(n)
        same, other = draw(n)
        if ranked(same + other):
            return same, other, Sampling(UNTIL_SEPARATED, n, tuple(rounds), possible)
        if n >= budget:
            return same, other, Sampling(BUDGET_REACHED, n, tuple(rounds), possible)
        n = min(2 * n, budget)
