"""Run a calibration: descriptors -> halves -> fitted mapping -> held-out table -> document.

:func:`calibrate` builds the calibration document (the JSON the engine ships as
``engine/calibration/<model>.json``); :func:`render` prints it. Method and scale:
:mod:`facegate.bias.calibration`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from tqdm import tqdm

from facegate.bias.calibration import (
    SCALE_TEXT,
    TABLE_SIMILARITIES,
    PairTail,
    Source,
    fit,
    pair_tail,
    pooled_fmr,
    split_keys,
    split_source,
    table,
)
from facegate.bias.cohort_fit import cohort_json, cohort_sizes, fit_cohort, fit_parts_cohort
from facegate.bias.datasets import Manifest
from facegate.bias.descriptors import FACE, DescriptorSet
from facegate.bias.groups import group_key
from facegate.engine.cohort import CohortNormaliser
from facegate.engine.matching import PairScorer, PartsCohort
from facegate.engine.similarity import LOGISTIC_V0
from facegate.isotime import iso_seconds
from facegate.vectorspace import DLIB_SPACE, VectorSpace

GROUPINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "lfw": {"gender": ("gender",), "race": ("race",)},
    "fairface_val": {"race x gender": ("race", "gender"), "gender": ("gender",), "race": ("race",)},
}
"""The groupings measured per data set (by manifest name); other data sets get none."""


def calibration_source(manifest: Manifest, desc: DescriptorSet) -> Source:
    """A data set's found faces with subjects and groupings, as the calibration reads them."""
    ok = [i for i, s in enumerate(desc.statuses) if s == FACE]
    samples = [manifest.samples[i] for i in ok]
    with_ids = any(s.subject_id is not None for s in samples)
    return Source(
        manifest.name,
        desc.vectors[ok],
        # a sample without a subject id is a person of its own (as in facegate.bias.groups)
        tuple(s.subject_id or f"\0sample-{i}" for i, s in zip(ok, samples, strict=True))
        if with_ids
        else None,
        {
            g: tuple(group_key(s, attrs) for s in samples)
            for g, attrs in GROUPINGS.get(manifest.name, {}).items()
        },
    )


def _tails(
    sources: Sequence[Source],
    cap: float,
    progress: bool,
    scorer: PairScorer | None = None,
    space: VectorSpace = DLIB_SPACE,
    weights: Sequence[float] | None = None,
) -> list[PairTail]:
    out = []
    for source in sources:
        with tqdm(
            total=len(source.vectors), desc=f"pairs {source.name}", unit="row", disable=not progress
        ) as bar:
            out.append(
                pair_tail(
                    source, cap, progress=bar.update, scorer=scorer, space=space, weights=weights
                )
            )
    return out


COHORT_SOURCE = "fairface_val"
"""The data set whose fit half also supplies the normalisation cohort (it has no identities, so
every pair of it is an impostor pair: the cohort is other people by construction)."""
COHORT_SALT = "facegate-cohort-v1"


def _cohort_split(
    halves: list[tuple[Source, Source]],
    space: VectorSpace = DLIB_SPACE,
    weights: Sequence[float] | None = None,
) -> tuple[CohortNormaliser | PartsCohort, list[tuple[Source, Source]], dict[str, Any]]:
    """Split the cohort source's fit half into cohort faces and calibration faces; fit the
    cohort (constants from every data set's calibration faces). The held-out halves stay
    untouched, so the cohort, the calibration fit and the measurement are three disjoint sets.
    A fused model's cohort is one per part on the same faces (:func:`fit_parts_cohort`)."""
    names = [fit_half.name for fit_half, _ in halves]
    if COHORT_SOURCE not in names:
        raise ValueError(f"normalisation needs the {COHORT_SOURCE} data set for its cohort")
    i = names.index(COHORT_SOURCE)
    fit_half, held = halves[i]
    in_cohort = split_keys([f"face-{j}" for j in range(len(fit_half.vectors))], COHORT_SALT)
    cohort, calibration = fit_half.take(in_cohort), fit_half.take(~in_cohort)
    out = list(halves)
    out[i] = (calibration, held)
    reference = np.vstack([f.vectors for f, _ in out])
    scorer: CohortNormaliser | PartsCohort
    if space.simple:
        scorer = fit_cohort(cohort.vectors, reference, metric=space.parts[0].metric)
    else:
        scorer = fit_parts_cohort(cohort.vectors, reference, space, space.weights_or_ones(weights))
    note = {
        "source": COHORT_SOURCE,
        "faces": len(cohort.vectors),
        "centroids": len(cohort_sizes(scorer)),
        "smallest_centroid": min(cohort_sizes(scorer)),
        "reference_faces": len(reference),
        "split": f"{COHORT_SOURCE} fit half by salted hash ({COHORT_SALT}): cohort / calibration",
    }
    return scorer, out, note


def _fmt(rate: dict[str, Any] | None) -> str:
    if rate is None or rate["rate"] is None:
        return "-"
    interval = f"[{rate['ci_low']:.1e}, {rate['ci_high']:.1e}]"
    text = f"{rate['rate']:.2e} {interval} ({rate['errors']}/{rate['pairs']})"
    return text + (" too small" if rate["too_small"] else "")


def render(doc: dict[str, Any]) -> list[str]:
    """The calibration table as text lines."""
    lines = [
        f"calibration {doc['version']} of {doc['model_version']}: scale: {doc['scale']['formula']}",
        f"command: {doc['fitted']['command']}",
    ]
    for name, info in doc["fitted"]["data"].items():
        lines.append(f"data: {name}: {info['descriptors']}")
        lines.append(
            f"  fit half: {info['fit']['faces']} faces, {info['fit']['impostor_pairs']} impostor /"
            f" {info['fit']['mated_pairs']} mated pairs; held-out half: {info['held_out']['faces']}"
            f" faces, {info['held_out']['impostor_pairs']} / {info['held_out']['mated_pairs']}"
        )
    lines += ["", "Held-out error rates (Wilson 95% intervals):"]
    unit = "score" if doc.get("scorer") else "distance"
    for row in doc["table"]:
        lines.append(
            f"Similarity {row['similarity_pct']:g} = {unit} {row['distance']:.4f}: target FMR "
            f"{row['target_fmr']:.1e}, pooled held-out {row['pooled_fmr']:.2e} "
            f"(fit half {row['fit_pooled_fmr']:.2e})"
        )
        for ds, entry in row["datasets"].items():
            lines.append(f"  {ds}: FMR {_fmt(entry['fmr'])}   FNMR {_fmt(entry['fnmr'])}")
            for g, grouped in entry["groups"].items():
                ratio = grouped["fmr_max_geomean"]
                lines.append(
                    f"    by {g}: FMR Max/GeoMean "
                    + ("-" if ratio is None else f"{ratio:.2f}")
                    + (
                        f", FNMR Max/GeoMean {grouped['fnmr_max_geomean']:.2f}"
                        if grouped.get("fnmr_max_geomean") is not None
                        else ""
                    )
                )
                for group, rate in grouped["fmr"].items():
                    fnmr = grouped.get("fnmr", {}).get(group)
                    lines.append(
                        f"      {group:<28} FMR {_fmt(rate)}"
                        + (f"   FNMR {_fmt(fnmr)}" if fnmr else "")
                    )
    if doc["legacy_v0"]:
        lines += [
            "",
            "For comparison, the uncalibrated mapping dlib-logistic-v0 on the held-out half:",
        ]
    for row in doc["legacy_v0"]:
        rates = ", ".join(f"{ds} FMR {v['fmr']:.2e}" for ds, v in row["datasets"].items())
        lines.append(
            f"  Similarity {row['similarity_pct']:g} (distance {row['distance']:.4f}): {rates}"
        )
    return lines


AUTO_CAP_FMR = 0.2
"""With no cap given, tails are kept up to each fit half's impostor quantile of this FMR
(:func:`auto_cap`): past Similarity 70's FMR of 10%, the last calibrated knot."""


def auto_cap(
    fit_halves: Sequence[Source],
    scorer: PairScorer | None,
    space: VectorSpace,
    weights: Sequence[float] | None,
    *,
    fmr: float = AUTO_CAP_FMR,
    sample: int = 200_000,
    seed: int = 0,
) -> float:
    """The largest, over the fit halves, ``fmr`` quantile of the distance (or score) of
    ``sample`` random impostor pairs of each half (a fixed seed; fit data only)."""
    rng = np.random.default_rng(seed)
    caps = []
    for source in fit_halves:
        n = len(source.vectors)
        i, j = rng.integers(0, n, sample), rng.integers(0, n, sample)
        keep = i != j
        if source.subjects is not None:
            subjects = np.asarray(source.subjects)
            keep &= subjects[i] != subjects[j]
        i, j = i[keep], j[keep]
        x = source.vectors.astype(np.float64)
        d = space.paired(x[i], x[j], weights)
        if scorer is not None:
            stats = scorer.stats(x)
            d = scorer.scores(d, stats[i], stats[j])
        caps.append(float(np.quantile(d, fmr)))
    return round(max(caps), 3)


def calibrate(
    manifests: Sequence[Manifest],
    descs: Sequence[DescriptorSet],
    cap: float | None,
    min_pairs: int,
    command: str,
    progress: bool,
    normalise: bool = False,
    space: VectorSpace = DLIB_SPACE,
    weights: Sequence[float] | None = None,
    fusion_note: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The calibration document (fit on one half of each data set, measured on the other).

    ``normalise``: calibrate the cohort-normalised score instead of the raw distance; the
    cohort is fitted on part of FairFace's fit half (:func:`_cohort_split`) and shipped in the
    document (``cohort``), the knots and the table are then in score units. ``space``: the
    descriptor model's (``facegate.vectorspace``); any other than dlib's is named in the
    document (``"distance"``), so the engine refuses it for a model of another space. A fused
    model's (several parts) needs ``weights`` (:func:`facegate.bias.fusion_fit.fit_fusion`),
    shipped as ``"fusion": {"weights": [...], "fit": fusion_note}``; its cohort is one per part
    (:func:`fit_parts_cohort`). ``cap``: None picks it from the fit halves (:func:`auto_cap`).
    """
    if not space.simple and weights is None:
        raise ValueError(f"a fused model ({space}) needs its fusion weights")
    fused_weights = None if space.simple else space.weights_or_ones(weights)
    model_version = descs[0].model_version
    sources = [calibration_source(m, d) for m, d in zip(manifests, descs, strict=True)]
    halves = [split_source(s) for s in sources]
    scorer: CohortNormaliser | PartsCohort | None = None
    cohort_note: dict[str, Any] | None = None
    if normalise:
        scorer, halves, cohort_note = _cohort_split(halves, space, fused_weights)
    if cap is None:
        cap = auto_cap([h[0] for h in halves], scorer, space, fused_weights)
    fit_tails = _tails([h[0] for h in halves], cap, progress, scorer, space, fused_weights)
    held_tails = _tails([h[1] for h in halves], cap, progress, scorer, space, fused_weights)
    fitted = fit(fit_tails, "unnamed")
    # the version names the knots (and the cohort): a refit that moves any is a new version
    digest = hashlib.sha256(json.dumps([fitted.distances, fitted.similarities]).encode())
    stem = f"{model_version}.{scorer.version}" if scorer is not None else model_version
    mapping = replace(fitted, version=f"{stem}.fmr-{digest.hexdigest()[:8]}")
    rows = table(held_tails, mapping, TABLE_SIMILARITIES, min_pairs)
    for row in rows:  # the fit half's pooled FMR at the same distance, for the held-out check
        row["fit_pooled_fmr"] = pooled_fmr(fit_tails, mapping.distance_for(row["similarity_pct"]))
    legacy = []
    # v0 maps raw dlib distances, not scores nor another model's distances
    for s in () if normalise or space != DLIB_SPACE else (80.0, 99.0):
        d = LOGISTIC_V0.distance_for(s)
        legacy.append(
            {
                "similarity_pct": s,
                "distance": round(d, 6),
                "datasets": {
                    t.name: {
                        "fmr": t.fmr(d)[0] / t.impostors,
                        "fnmr": float(np.mean(t.mated > d)) if len(t.mated) else None,
                    }
                    for t in held_tails
                },
            }
        )
    data = {}
    for (fit_src, held_src), desc, fit_t, held_t in zip(
        halves, descs, fit_tails, held_tails, strict=True
    ):
        data[fit_src.name] = {
            "descriptors": desc.summary(),
            "fit": {
                "faces": len(fit_src.vectors),
                "impostor_pairs": fit_t.impostors,
                "mated_pairs": len(fit_t.mated),
            },
            "held_out": {
                "faces": len(held_src.vectors),
                "impostor_pairs": held_t.impostors,
                "mated_pairs": len(held_t.mated),
            },
        }
    extra: dict[str, Any] = {} if space == DLIB_SPACE else {"distance": str(space)}
    if fused_weights is not None:
        extra["fusion"] = {"weights": list(fused_weights), "fit": fusion_note}
    if scorer is not None:
        extra |= {
            "scorer": scorer.version,
            "cohort": cohort_json(scorer),
            "cohort_fit": cohort_note,
        }
    return {
        "model_version": model_version,
        "version": mapping.version,
        **extra,
        "scale": {
            "formula": SCALE_TEXT,
            "weighting": "each data set weighs equally in the pooled FMR",
        },
        "knots": [
            [round(d, 6), s] for d, s in zip(mapping.distances, mapping.similarities, strict=True)
        ],
        "fitted": {
            "command": command,
            "cap": cap,
            "date": iso_seconds(time.time()),
            "split": "salted SHA-256 of the subject (LFW) or image (FairFace), low bit",
            "data": data,
        },
        "table": rows,
        "legacy_v0": legacy,
    }
