"""Failure to detect per race x gender on FairFace val: the share of crops where no face is
found with HOG alone, with HOG first (HOG, then MTCNN, then MTCNN on a padded image, each only
where the previous found nothing: the chain before MTCNN led), with the engine's default chain
(MTCNN, then HOG, then padded MTCNN) and with that chain then the bias toolkit's MMOD fallback,
with Wilson 95% intervals.

    .venv/bin/python bench/detect_failures.py

Reads the bias toolkit's descriptor cache (``facegate bias impostors --dataset fairface`` fills
the last column); computes what is missing (a few minutes per column). Prints a markdown table.
"""

from __future__ import annotations

from collections import Counter

from benchlib import ROOT
from facegate.bias.datasets import load_fairface
from facegate.bias.descriptors import FACE, compute_descriptors
from facegate.bias.groups import group_key
from facegate.bias.stats import wilson_interval
from facegate.engine.core import EngineConfig
from facegate.engine.detect import HOG_FIRST, DetectorConfig
from facegate.engine.types import DetectorKind


def _cell(missed: int, n: int) -> str:
    ci = wilson_interval(missed, n)
    assert ci is not None
    return f"{missed / n:.1%} ({ci[0]:.1%}-{ci[1]:.1%})"


def main() -> None:
    manifest = load_fairface(ROOT.parent / "shared" / "data" / "fairface_val")
    hog_only = EngineConfig(detector=DetectorConfig(kind=DetectorKind.HOG, fallback=()))
    hog_first = EngineConfig(detector=HOG_FIRST)
    columns = {
        "HOG alone": compute_descriptors(manifest, config=hog_only, mmod_fallback=False),
        "HOG first": compute_descriptors(manifest, config=hog_first, mmod_fallback=False),
        "default chain": compute_descriptors(manifest, mmod_fallback=False),
        "default chain + MMOD": compute_descriptors(manifest, mmod_fallback=True),
    }
    total: Counter[str] = Counter()
    missed: dict[str, Counter[str]] = {name: Counter() for name in columns}
    for i, sample in enumerate(manifest.samples):
        group = group_key(sample, ("race", "gender"))
        total[group] += 1
        for name, desc in columns.items():
            missed[name][group] += desc.statuses[i] != FACE
    print("| group | images | " + " | ".join(f"{c}: no face (95% CI)" for c in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for group in sorted(total):
        cells = " | ".join(_cell(missed[c][group], total[group]) for c in columns)
        print(f"| {group} | {total[group]} | {cells} |")
    n = sum(total.values())
    print(f"| all | {n} | " + " | ".join(_cell(sum(missed[c].values()), n) for c in columns) + " |")
    for name in columns:
        rates = [missed[name][g] / total[g] for g in total]
        worst = max(total, key=lambda g: missed[name][g] / total[g])
        ratio = max(rates) / min(rates) if min(rates) > 0 else float("inf")
        print(f"{name}: worst group {worst} {max(rates):.1%}; worst/best {ratio:.2f}")


if __name__ == "__main__":
    main()
