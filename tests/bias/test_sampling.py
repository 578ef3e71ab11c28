"""Pair sampling: every pair when cheap, else grown until the groups are ranked."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import numpy as np

from facegate.bias.datasets import Manifest, Pair, Sample
from facegate.bias.sampling import (
    BUDGET_REACHED,
    EVERY,
    FIXED,
    START,
    UNTIL_SEPARATED,
    choose_pairs,
    possible_pairs,
    separated,
)
from facegate.bias.verification import ScoredPairs


def _manifest(groups: dict[str, int], per_subject: int = 1) -> Manifest:
    samples = []
    for group, n in groups.items():
        for i in range(n):
            subject = f"{group}-{i // per_subject}" if per_subject > 1 else None
            attrs = MappingProxyType({"g": group})
            samples.append(Sample(Path(f"{group}/{i}.jpg"), subject, attrs, "test"))
    return Manifest("test", tuple(samples))


def test_every_pair_when_cheap_and_the_count_is_exact() -> None:
    manifest = _manifest({"a": 30, "b": 20}, per_subject=2)  # 15 and 10 subjects of 2 images
    assert possible_pairs(manifest, ("g",), mated=True) == 30 * 29 // 2 + 20 * 19 // 2
    assert possible_pairs(manifest, ("g",), mated=False) == 30 * 29 // 2 - 15 + 20 * 19 // 2 - 10
    same, other, how = choose_pairs(
        manifest, ("g",), mated=True, per_group=None, seed=0, ranked=lambda _: False
    )
    assert how.mode == EVERY
    assert len(same) == 25
    assert all(p.mated for p in same)
    assert len(other) == 30 * 29 // 2 - 15 + 20 * 19 // 2 - 10
    assert "every pair" in how.line()


def test_sampling_doubles_until_ranked_then_stops() -> None:
    manifest = _manifest({"a": 400, "b": 400})  # 79,800 pairs per group
    asked: list[int] = []

    def ranked(pairs: list[Pair]) -> bool:
        asked.append(len(pairs))
        return len(pairs) >= 4 * START  # ranked from 2 x START per group on

    _, other, how = choose_pairs(
        manifest, ("g",), mated=False, per_group=None, seed=1, ranked=ranked, every_pair_limit=0
    )
    assert how.mode == UNTIL_SEPARATED
    assert how.rounds == (START, 2 * START)
    assert asked == [2 * START, 4 * START]
    assert len(other) == 4 * START
    _, other, how = choose_pairs(
        manifest, ("g",), mated=False, per_group=None, seed=1, ranked=lambda _: False,
        budget=10_000, every_pair_limit=0,
    )  # fmt: skip
    assert how.mode == BUDGET_REACHED
    assert how.rounds == (START, 2 * START, 10_000)
    assert "could not be ranked" in how.line()
    _, other, how = choose_pairs(
        manifest, ("g",), mated=False, per_group=7, seed=1, ranked=lambda _: False
    )
    assert (how.mode, len(other)) == (FIXED, 14)


def _scored(errors: dict[str, tuple[int, int]]) -> ScoredPairs:
    """Non-mated pairs per group: (false matches at limit 0.5, pairs)."""
    d, g = [], []
    for group, (bad, n) in errors.items():
        d += [0.4] * bad + [0.9] * (n - bad)
        g += [group] * n
    return ScoredPairs(
        pairs=tuple(Pair(0, 1, False) for _ in d),
        distances=np.array(d),
        mated=np.zeros(len(d), dtype=np.bool_),
        groups=np.array(g, dtype=np.str_),
        clusters=np.array([f"#{i}" for i in range(len(d))], dtype=np.str_),
    )


def test_separated_needs_an_error_in_every_group_and_disjoint_extremes() -> None:
    assert separated(_scored({"a": (10, 1000), "b": (100, 1000)}), [0.5], ["fmr"], 100)
    # a zero group: Max/GeoMean would leave it out, so not ranked yet
    assert not separated(_scored({"a": (0, 1000), "b": (100, 1000)}), [0.5], ["fmr"], 100)
    # overlapping intervals
    assert not separated(_scored({"a": (10, 1000), "b": (14, 1000)}), [0.5], ["fmr"], 100)
    # a group below min_pairs is not ranked; one measurable group: nothing to rank
    assert separated(_scored({"a": (0, 50), "b": (100, 1000)}), [0.5], ["fmr"], 100)
