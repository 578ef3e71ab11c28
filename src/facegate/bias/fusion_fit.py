"""Fit the fused model's constants (:class:`facegate.engine.fusion.Fusion`) and build its joint
descriptors.

The constants are the mean and standard deviation of each model's distance over the impostor
pairs of LFW's *fit* half (the calibration's split, :func:`facegate.bias.calibration.split_source`:
by person), every pair of two different people within that half (about 7.3 million): dlib's
Euclidean distance, faceres's cosine distance. Nothing of LFW's held-out half, FairFace or
Congress is seen, so every number measured there is out of sample for the fusion.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from facegate.bias.calibration import Source, split_source
from facegate.bias.calibration_run import calibration_source
from facegate.bias.datasets import Manifest
from facegate.bias.descriptors import FACE, DescriptorSet
from facegate.engine.cohort import squared_distances
from facegate.engine.fusion import FUSED_VERSION, Fusion, joint


def _moments(values: list[tuple[float, float, int]]) -> tuple[float, float]:
    total = sum(n for _, _, n in values)
    s1 = sum(a for a, _, _ in values)
    s2 = sum(b for _, b, _ in values)
    mean = s1 / total
    return mean, float(np.sqrt(max(s2 / total - mean * mean, 0.0)))


def impostor_moments(dlib: Source, faceres: Source, block: int = 512) -> dict[str, Any]:
    """Mean and deviation of dlib's distance and faceres's cosine distance over every impostor
    pair of the two sources (the same faces, in the same order)."""
    if dlib.subjects is None or dlib.subjects != faceres.subjects:
        raise ValueError("the two models must describe the same faces, with identities")
    x1 = dlib.vectors.astype(np.float64)
    x2 = faceres.vectors.astype(np.float64)
    _, subj = np.unique(np.asarray(dlib.subjects), return_inverse=True)
    n = len(x1)
    acc1: list[tuple[float, float, int]] = []
    acc2: list[tuple[float, float, int]] = []
    for start in range(0, n, block):
        stop = min(n, start + block)
        rows, cols = np.nonzero(np.arange(n)[None, :] > np.arange(start, stop)[:, None])
        impostor = subj[rows + start] != subj[cols]
        rows, cols = rows[impostor], cols[impostor]
        d = np.sqrt(squared_distances(x1[start:stop], x1))[rows, cols]
        c = squared_distances(x2[start:stop], x2)[rows, cols] / 2.0
        acc1.append((float(d.sum()), float((d * d).sum()), len(d)))
        acc2.append((float(c.sum()), float((c * c).sum()), len(c)))
    (m1, s1), (m2, s2) = _moments(acc1), _moments(acc2)
    return {"pairs": sum(k for _, _, k in acc1), "dlib": (m1, s1), "faceres": (m2, s2)}


def fit_fusion(
    lfw: Manifest, dlib: DescriptorSet, faceres: DescriptorSet
) -> tuple[Fusion, dict[str, Any]]:
    """The fusion constants from LFW's fit half, and a note of how they were fitted."""
    fit1, _ = split_source(calibration_source(lfw, dlib))
    fit2, _ = split_source(calibration_source(lfw, faceres))
    m = impostor_moments(fit1, fit2)
    fusion = Fusion(m["dlib"][0], m["dlib"][1], m["faceres"][0], m["faceres"][1])
    note = {
        "data": f"{lfw.name} fit half (calibration split): {len(fit1.vectors)} faces, "
        f"{m['pairs']} impostor pairs",
        "dlib": {"model_version": dlib.model_version, "descriptors": dlib.key},
        "faceres": {"model_version": faceres.model_version, "descriptors": faceres.key},
    }
    return fusion, note


def joint_set(dlib: DescriptorSet, faceres: DescriptorSet) -> DescriptorSet:
    """The fused model's descriptors: ``[dlib | faceres]`` rows (NaN where no face)."""
    if dlib.statuses != faceres.statuses:
        raise ValueError("the two models' descriptor sets do not describe the same faces")
    ok = [i for i, s in enumerate(dlib.statuses) if s == FACE]
    width = dlib.vectors.shape[1] + faceres.vectors.shape[1]
    vectors = np.full((len(dlib.statuses), width), np.nan)
    if ok:
        vectors[ok] = joint(dlib.vectors[ok], faceres.vectors[ok])
    return replace(
        dlib,
        model_version=FUSED_VERSION,
        key=f"{dlib.key}+{faceres.key}",
        vectors=vectors.astype(np.float32),
    )
