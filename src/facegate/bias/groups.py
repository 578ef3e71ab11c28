"""Demographic groups of a manifest, and seeded impostor pairs within each group.

A group is named by the values of one or more attributes joined with `` x `` (intersectional
groups, as in Gender Shades: ``group_by=("race", "gender")`` gives ``"Black x female"``).
A sample without an attribute, or with an empty one, has the value ``unknown`` there: it forms
groups of its own (``"unknown x female"``), reported like any other, never dropped.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

from facegate.bias.datasets import UNKNOWN, Manifest, Pair, Sample

GROUP_SEPARATOR = " x "


def group_key(sample: Sample, group_by: Sequence[str]) -> str:
    """The sample's group name under ``group_by`` (attribute names, in order); ``""`` for none."""
    return GROUP_SEPARATOR.join(sample.attributes.get(name) or UNKNOWN for name in group_by)


def group_samples(manifest: Manifest, group_by: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Sample indices per group, groups sorted by name, indices in manifest order."""
    groups: dict[str, list[int]] = {}
    for i, sample in enumerate(manifest.samples):
        groups.setdefault(group_key(sample, group_by), []).append(i)
    return {key: tuple(groups[key]) for key in sorted(groups)}


def _subject(manifest: Manifest, index: int) -> str:
    """The subject of a sample; a sample without a subject id is a subject of its own."""
    subject = manifest.samples[index].subject_id
    return f"\0sample-{index}" if subject is None else subject


def _group_impostors(
    manifest: Manifest, members: Sequence[int], per_group: int, rng: random.Random
) -> list[Pair]:
    """Up to ``per_group`` distinct unordered pairs of different subjects among ``members``."""
    n = len(members)
    possible = n * (n - 1) // 2
    if possible <= 4 * per_group:
        # Small group: list every valid pair and sample without replacement.
        valid = [
            (a, b)
            for a, b in itertools.combinations(members, 2)
            if _subject(manifest, a) != _subject(manifest, b)
        ]
        chosen = rng.sample(valid, min(per_group, len(valid)))
    else:
        # Large group: rejection sampling. At most a quarter of the possible pairs is wanted, so
        # repeats stay rare; the attempt cap ends the loop when most pairs are same-subject.
        picked: set[tuple[int, int]] = set()
        chosen = []
        for _ in range(50 * per_group + 1000):
            if len(chosen) == per_group:
                break
            a, b = sorted(rng.sample(members, 2))
            if (a, b) in picked or _subject(manifest, a) == _subject(manifest, b):
                continue
            picked.add((a, b))
            chosen.append((a, b))
    return [Pair(a, b, mated=False) for a, b in sorted(chosen)]


def impostor_pairs(
    manifest: Manifest, group_by: Sequence[str], per_group: int, seed: int
) -> dict[str, list[Pair]]:
    """Seeded non-mated pairs within each group: two samples of different subjects.

    Returns, per group (sorted by name), up to ``per_group`` distinct pairs (``left < right``,
    sorted, ``mated=False``, ``fold=None``); fewer when the group has fewer valid pairs, none for
    a group of one subject. Samples without a subject id count as distinct subjects (FairFace).
    Each group draws from its own generator seeded by ``seed`` and the group name, so a group's
    pairs do not change when other groups are added or removed, and the same ``seed`` always
    gives the same pairs.

    Choosing ``per_group``: the smallest FMR a group can show is about 1 / ``per_group``; to
    measure FMR near 1e-3 with a usable interval take at least 10,000 pairs per group (pairs
    share images, so they are not independent: the bootstrap should resample images or
    subjects, not pairs).
    """
    if per_group < 0:
        raise ValueError(f"per_group must be >= 0, got {per_group}")
    out: dict[str, list[Pair]] = {}
    for key, members in group_samples(manifest, group_by).items():
        # Reproducible sampling, not security; a str seed is hashed with SHA-512, so it is stable
        # across runs and Python processes (unlike hash()).
        rng = random.Random(f"{seed}\0{key}")  # noqa: S311
        out[key] = _group_impostors(manifest, members, per_group, rng) if per_group else []
    return out
