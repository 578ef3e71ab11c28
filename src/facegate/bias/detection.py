"""Failure to detect per group: the images where no face was found, and which detector found
the others. A face that is never found is never matched (failure to enrol), so bias reports show
this beside FMR and FNMR (ISO/IEC 19795-1 calls it the failure-to-acquire rate)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from facegate.bias.datasets import Manifest
from facegate.bias.descriptors import ERROR, FACE, DescriptorSet
from facegate.bias.groups import group_samples
from facegate.bias.stats import wilson_interval


def failure_to_detect(
    manifest: Manifest, descriptors: DescriptorSet, group_by: Sequence[str]
) -> dict[str, Any]:
    """Per group (and ``overall``): images, images without a face, the rate with its Wilson 95%
    interval, and faces found per detector; images that could not be decoded are left out and
    counted. ``worst_best_ratio`` compares the highest and lowest group rates (None when the
    lowest is 0 or there are fewer than two groups)."""

    def row(indices: Sequence[int]) -> dict[str, Any]:
        usable = [i for i in indices if descriptors.statuses[i] != ERROR]
        missed = sum(1 for i in usable if descriptors.statuses[i] != FACE)
        ci = wilson_interval(missed, len(usable))
        found_by = Counter(
            descriptors.found_by[i] for i in usable if descriptors.statuses[i] == FACE
        )
        return {
            "images": len(usable),
            "no_face": missed,
            "rate": missed / len(usable) if usable else None,
            "ci": list(ci) if ci else None,
            "undecodable": len(indices) - len(usable),
            "found_by": dict(sorted(found_by.items())),
        }

    groups = {name: row(idx) for name, idx in group_samples(manifest, group_by).items()}
    rates = [g["rate"] for g in groups.values() if g["rate"] is not None]
    ratio = max(rates) / min(rates) if len(rates) >= 2 and min(rates) > 0 else None
    return {
        "overall": row(range(len(manifest))),
        "groups": groups,
        "worst_best_ratio": ratio,
    }


def render(doc: dict[str, Any]) -> list[str]:
    """Text lines for a report."""
    lines = ["failure to detect (no face found), per group:"]
    for name, g in [("overall", doc["overall"]), *doc["groups"].items()]:
        if g["rate"] is None:
            continue
        by = ", ".join(f"{k} {v}" for k, v in g["found_by"].items()) or "none"
        lines.append(
            f"  {name:<28} {g['no_face']}/{g['images']} = {g['rate']:.2%} "
            f"[{g['ci'][0]:.2%}, {g['ci'][1]:.2%}]  (found by: {by})"
        )
    if doc["worst_best_ratio"] is not None:
        lines.append(f"  worst/best group ratio: {doc['worst_best_ratio']:.2f}")
    return lines
