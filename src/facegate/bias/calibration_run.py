"""Run a calibration: descriptors -> halves -> fitted mapping -> held-out table -> document.

:func:`calibrate` builds the calibration document (the JSON the engine ships as
``engine/calibration/<model>.json``); :func:`render` prints it. Method and scale:
:mod:`facegate.bias.calibration`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
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
    split_source,
    table,
)
from facegate.bias.datasets import Manifest
from facegate.bias.descriptors import FACE, DescriptorSet
from facegate.bias.groups import group_key
from facegate.engine.similarity import LOGISTIC_V0

GROUPINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "lfw": {"gender": ("gender",), "race": ("race",)},
    "fairface_val": {"race x gender": ("race", "gender"), "gender": ("gender",), "race": ("race",)},
}
"""The groupings measured per data set (by manifest name); other data sets get none."""


def _source(manifest: Manifest, desc: DescriptorSet) -> Source:
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


def _tails(sources: Sequence[Source], cap: float, progress: bool) -> list[PairTail]:
    out = []
    for source in sources:
        with tqdm(
            total=len(source.vectors), desc=f"pairs {source.name}", unit="row", disable=not progress
        ) as bar:
            out.append(pair_tail(source, cap, progress=bar.update))
    return out


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
    for row in doc["table"]:
        lines.append(
            f"Similarity {row['similarity_pct']:g} = distance {row['distance']:.4f}: target FMR "
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
    lines += ["", "For comparison, the uncalibrated mapping dlib-logistic-v0 on the held-out half:"]
    for row in doc["legacy_v0"]:
        rates = ", ".join(f"{ds} FMR {v['fmr']:.2e}" for ds, v in row["datasets"].items())
        lines.append(
            f"  Similarity {row['similarity_pct']:g} (distance {row['distance']:.4f}): {rates}"
        )
    return lines


def calibrate(
    manifests: Sequence[Manifest],
    descs: Sequence[DescriptorSet],
    cap: float,
    min_pairs: int,
    command: str,
    progress: bool,
) -> dict[str, Any]:
    """The calibration document (fit on one half of each data set, measured on the other)."""
    model_version = descs[0].model_version
    sources = [_source(m, d) for m, d in zip(manifests, descs, strict=True)]
    halves = [split_source(s) for s in sources]
    fit_tails = _tails([h[0] for h in halves], cap, progress)
    held_tails = _tails([h[1] for h in halves], cap, progress)
    fitted = fit(fit_tails, "unnamed")
    # the version names the knots: a refit that moves any knot is a new version
    digest = hashlib.sha256(json.dumps([fitted.distances, fitted.similarities]).encode())
    mapping = replace(fitted, version=f"{model_version}.fmr-{digest.hexdigest()[:8]}")
    rows = table(held_tails, mapping, TABLE_SIMILARITIES, min_pairs)
    for row in rows:  # the fit half's pooled FMR at the same distance, for the held-out check
        row["fit_pooled_fmr"] = pooled_fmr(fit_tails, mapping.distance_for(row["similarity_pct"]))
    legacy = []
    for s in (80.0, 99.0):
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
    return {
        "model_version": model_version,
        "version": mapping.version,
        "scale": {
            "formula": SCALE_TEXT,
            "weighting": "each data set weighs equally in the pooled FMR",
        },
        "knots": [
            [round(d, 6), s] for d, s in zip(mapping.distances, mapping.similarities, strict=True)
        ],
        "fitted": {
            "command": command,
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "split": "salted SHA-256 of the subject (LFW) or image (FairFace), low bit",
            "data": data,
        },
        "table": rows,
        "legacy_v0": legacy,
    }
