"""Fit a fused model's weights: each part's distance z-scored by LFW's impostor pairs.

A fused descriptor model (``engine.descriptors``: ``fused-dlib-faceres-v1``) stores its parts'
vectors end to end, and its distance is ``sum_i w_i d_i`` (:mod:`facegate.vectorspace`). The
z-scored sum of the parts' distances, ``sum_i (d_i - mean_i) / sd_i``, orders pairs exactly as
the weighted sum with ``w_i`` proportional to ``1 / sd_i`` (the means only shift it), so the
weights are fitted as ``w_i = (1 / sd_i) / sum_j (1 / sd_j)`` (they sum to 1, so the fused
distance stays on the scale of the parts' distances). ``mean_i`` and ``sd_i`` are the mean and
standard deviation of part ``i``'s distance (its own metric: Euclidean for dlib, ``1 - cos``
for faceres) over every impostor pair of LFW's *fit* half (the calibration's split by person,
:func:`facegate.bias.calibration.split_source`): about 7.3 million pairs of two different
people. Nothing of LFW's held-out half, of FairFace or of Congress is seen, so every number
measured there is out of sample for the weights as for the calibration.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facegate.bias.calibration import Source, split_source
from facegate.bias.calibration_run import calibration_source
from facegate.bias.datasets import Manifest
from facegate.bias.descriptors import DescriptorSet
from facegate.vectorspace import SpacePart, VectorSpace

WEIGHTS_SOURCE = "lfw"


def impostor_moments(
    source: Source, space: VectorSpace, block: int = 512
) -> list[tuple[float, float, int]]:
    """(mean, standard deviation, pairs) of each part's distance over every impostor pair
    ``i < j`` of ``source`` (different subjects; ``ValueError`` without subjects or pairs)."""
    if source.subjects is None:
        raise ValueError(f"{source.name} has no subjects: impostor pairs are not known")
    x = source.vectors.astype(np.float64)
    _, subj = np.unique(np.asarray(source.subjects), return_inverse=True)
    n = len(x)
    sums = np.zeros((len(space.parts), 2))
    count = 0
    for start in range(0, n, block):
        stop = min(n, start + block)
        upper = np.arange(n)[None, :] > np.arange(start, stop)[:, None]
        impostor = upper & (subj[start:stop, None] != subj[None, :])
        count += int(impostor.sum())
        for k, (part, cut) in enumerate(zip(space.parts, space.slices(), strict=True)):
            d = VectorSpace((SpacePart(part.metric, part.dim),)).pairwise(
                x[start:stop, cut], x[:, cut]
            )[impostor]
            sums[k] += (d.sum(), (d * d).sum())
    if count < 2:
        raise ValueError(f"{source.name}: too few impostor pairs to fit fusion weights")
    out = []
    for total, squares in sums:
        mean = total / count
        var = max(squares / count - mean * mean, 0.0) * count / (count - 1)
        out.append((float(mean), float(np.sqrt(var)), count))
    return out


def fit_fusion(
    manifest: Manifest, desc: DescriptorSet, space: VectorSpace
) -> tuple[tuple[float, ...], dict[str, Any]]:
    """(weights, the document's note) from LFW's fit half (see the module docstring):
    ``manifest`` and ``desc`` are LFW's with the fused model's descriptors."""
    if manifest.name != WEIGHTS_SOURCE:
        raise ValueError(f"fusion weights are fitted on {WEIGHTS_SOURCE}, not {manifest.name}")
    if space.simple:
        raise ValueError(f"{space} has one part: nothing to fuse")
    fit_half, _ = split_source(calibration_source(manifest, desc))
    moments = impostor_moments(fit_half, space)
    if any(sd <= 0 for _, sd, _ in moments):
        raise ValueError("a part's impostor distances do not vary: cannot z-score it")
    inverse = [1.0 / sd for _, sd, _ in moments]
    weights = tuple(v / sum(inverse) for v in inverse)
    note = {
        "method": "z-scored sum: w_i = (1/sd_i) / sum_j (1/sd_j), sd_i the standard deviation "
        "of part i's distance over the impostor pairs of LFW's fit half",
        "source": f"{WEIGHTS_SOURCE} fit half",
        "faces": len(fit_half.vectors),
        "impostor_pairs": moments[0][2],
        "parts": [
            {"distance": str(part), "impostor_mean": mean, "impostor_sd": sd}
            for part, (mean, sd, _) in zip(space.parts, moments, strict=True)
        ],
    }
    return weights, note
