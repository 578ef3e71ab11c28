"""Failure to detect per race x gender on FairFace val: the share of crops where no face is
found, with the HOG detector alone and with the MMOD fallback, with Wilson 95% intervals.

    .venv/bin/python bench/detect_failures.py

Reads the bias toolkit's descriptor cache (``facegate bias impostors --dataset fairface`` with
and without ``--no-mmod-fallback`` fills it); computes what is missing. Prints a markdown table.
"""

from __future__ import annotations

from collections import Counter

from benchlib import ROOT
from facegate.bias.datasets import load_fairface
from facegate.bias.descriptors import FACE, compute_descriptors
from facegate.bias.groups import group_key
from facegate.bias.stats import wilson_interval


def _cell(missed: int, n: int) -> str:
    ci = wilson_interval(missed, n)
    assert ci is not None
    return f"{missed / n:.1%} ({ci[0]:.1%}-{ci[1]:.1%})"


def main() -> None:
    manifest = load_fairface(ROOT.parent / "shared" / "data" / "fairface_val")
    hog = compute_descriptors(manifest, mmod_fallback=False)
    fallback = compute_descriptors(manifest, mmod_fallback=True)
    total: Counter[str] = Counter()
    missed_hog: Counter[str] = Counter()
    missed_fallback: Counter[str] = Counter()
    for i, sample in enumerate(manifest.samples):
        group = group_key(sample, ("race", "gender"))
        total[group] += 1
        missed_hog[group] += hog.statuses[i] != FACE
        missed_fallback[group] += fallback.statuses[i] != FACE
    print("| group | images | HOG: no face (95% CI) | HOG + MMOD fallback: no face (95% CI) |")
    print("|---|---|---|---|")
    for group in sorted(total):
        n = total[group]
        hog_cell, fallback_cell = _cell(missed_hog[group], n), _cell(missed_fallback[group], n)
        print(f"| {group} | {n} | {hog_cell} | {fallback_cell} |")
    n = sum(total.values())
    print(
        f"| all | {n} | {_cell(sum(missed_hog.values()), n)} |"
        f" {_cell(sum(missed_fallback.values()), n)} |"
    )
    for name, missed in (("HOG", missed_hog), ("fallback", missed_fallback)):
        rates = [missed[g] / total[g] for g in total]
        print(f"worst/best {name}: {max(rates) / min(rates):.2f}")


if __name__ == "__main__":
    main()
