"""Which pairs ``facegate bias verification|impostors|sweep`` score (``--pairs-per-group``).

``auto`` (default): every within-group pair when that is cheap, else a seeded sample grown until
the groups are ranked at the report's thresholds, up to ``--max-pairs-per-group``
(:mod:`facegate.bias.sampling`); ``N``: a fixed seeded sample of ``N`` per group and kind. LFW
View 2's 6,000 pairs are always used as they are.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from facegate.bias.datasets import Manifest, Pair
from facegate.bias.descriptors import DescriptorSet
from facegate.bias.sampling import DEFAULT_BUDGET, Sampling, choose_pairs, separated
from facegate.bias.verification import score_pairs
from facegate.cli.bias_data import DataSource
from facegate.engine.matching import PairScorer

AUTO = "auto"


def _per_group(text: str) -> int | None:
    if text == AUTO:
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a number of pairs: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be auto or at least 0")
    return value


def _budget(text: str) -> int:
    value = _per_group(text)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_pairs_options(p: argparse.ArgumentParser) -> None:
    """``--pairs-per-group auto|N`` and ``--max-pairs-per-group N``."""
    p.add_argument(
        "--pairs-per-group",
        type=_per_group,
        default=None,
        metavar="auto|N",
        help="auto: every within-group pair when cheap, else sample until the groups are ranked;"
        " N: a fixed seeded sample of N per group and kind (default: auto)",
    )
    p.add_argument(
        "--max-pairs-per-group",
        type=_budget,
        default=DEFAULT_BUDGET,
        metavar="N",
        help=f"the most auto samples per group and kind (default: {DEFAULT_BUDGET})",
    )


@dataclass(frozen=True)
class ChosenPairs:
    """The pairs to score, their counts by origin, and how they were chosen."""

    manifest: Manifest
    descriptors: DescriptorSet
    pairs: list[Pair]
    counts: dict[str, int]
    sampling: Sampling


def choose(
    args: argparse.Namespace,
    source: DataSource,
    *,
    mated: bool,
    kinds: Sequence[str],
    limits: Sequence[float],
    describe: Callable[[Manifest], DescriptorSet],
    scorer: PairScorer | None,
) -> ChosenPairs:
    """``lfw`` (when ``mated``): View 2's pairs plus different-subject pairs within each group; a
    manifest CSV: same-subject pairs (when ``mated``) and different-subject pairs within each
    group; other built-in sets (no identities): different-subject pairs only. ``kinds`` and
    ``limits`` (scores of the report's thresholds): where the groups must be ranked."""
    manifest, protocol = source.with_protocol()
    if not mated:
        protocol = []
    descriptors = describe(manifest)
    grows = [k for k in kinds if k == "fmr" or not protocol]  # View 2's mated pairs are fixed

    def ranked(pairs: list[Pair]) -> bool:
        scored = score_pairs(manifest, descriptors.vectors, pairs, args.group_by, scorer)
        return separated(scored, limits, grows, args.min_pairs)

    same, other, sampling = choose_pairs(
        manifest,
        args.group_by,
        mated=mated and not protocol,
        per_group=args.pairs_per_group,
        seed=args.seed,
        ranked=ranked,
        budget=args.max_pairs_per_group,
    )
    if protocol:
        counts = {"lfw_view2": len(protocol), "extra_impostors": len(other)}
    elif mated:
        counts = {"mated": len(same), "within_group": len(other)}
    else:
        counts = {"within_group": len(other)}
    return ChosenPairs(manifest, descriptors, protocol + same + other, counts, sampling)
