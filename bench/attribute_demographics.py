"""Fit and measure the default Gender and AgeRange estimators (dlib descriptor, FairFace).

    PYTHONPATH=src:bench .venv/bin/python bench/attribute_demographics.py [--write]

Method: ``facegate.bias.demographic_fit`` (module docstring). Descriptors come from the bias
toolkit's cache (``~/.cache/facegate/descriptors``), one per image, the largest face; faces the
server's chain would not find (those only dlib's MMOD fallback found) are left out, so the fit
sees what the server computes. Prints the Gender Shades table of the held-out half (all ages
and adults), the age table, LFW (another image source) and leave-one-race-out; writes
``bench/results/attribute_demographics.json`` and, with ``--write``, the shipped
``src/facegate/engine/calibration/attributes-demographics.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchlib import ROOT, machine_info, machine_line, write_results
from facegate.bias.datasets import Manifest, load_fairface, load_lfw
from facegate.bias.demographic_fit import (
    SALT,
    Labelled,
    fit_model,
    leave_one_race_out,
    measure_age,
    measure_gender,
    model_document,
    pct,
    split_names,
)
from facegate.bias.descriptors import FACE, compute_descriptors
from facegate.engine.attributes.demographics import CALIBRATION_FILE
from facegate.engine.core import EngineConfig

DATA = ROOT.parent / "shared" / "data"
SHIPPED = ROOT / "src" / "facegate" / "engine" / "calibration" / CALIBRATION_FILE
VERSION = "fairface-half-v1"
COMMAND = "PYTHONPATH=src:bench .venv/bin/python bench/attribute_demographics.py --write"


CHAIN = replace(EngineConfig(), detector=replace(EngineConfig().detector, search_blazeface=False))
"""The server's DetectFaces and IndexFaces detector (attributes are estimated there): the chain,
without the BlazeFace that only search probes try first."""


def labelled(manifest: Manifest, need_age: bool) -> tuple[Labelled, list[str]]:
    """The manifest's faces the server's chain finds, with their labels, and their names."""
    ds = compute_descriptors(manifest, config=CHAIN, progress=False)
    rows = [
        i
        for i in ds.indices(FACE)
        if ds.found_by[i] != "mmod"
        and manifest.samples[i].attributes.get("gender") in ("male", "female")
        and (not need_age or manifest.samples[i].attributes.get("age_band"))
    ]
    samples = [manifest.samples[i] for i in rows]
    data = Labelled(
        ds.vectors[rows].astype(np.float64),
        tuple(s.attributes["gender"] for s in samples),
        tuple(s.attributes.get("age_band", "") for s in samples),
        tuple(s.attributes.get("race", "") for s in samples),
    )
    return data, [s.path.name for s in samples]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="write the shipped model file")
    args = ap.parse_args()
    fairface, names = labelled(load_fairface(DATA / "fairface_val"), need_age=True)
    fit_mask = split_names(names)
    fit, held = fairface.take(fit_mask), fairface.take(~fit_mask)
    model = fit_model(fit, VERSION)
    lfw_manifest, _ = load_lfw(DATA / "lfw")
    lfw, _ = labelled(lfw_manifest, need_age=False)
    gender = measure_gender(model, held)
    age = measure_age(model, held)
    lfw_gender = measure_gender(model, lfw)
    loro = leave_one_race_out(fit, held, VERSION)
    info = machine_info()
    results: dict[str, Any] = {
        "data": "FairFace val (CC BY 4.0), faces the server's chain finds; split by SHA-256 of "
        f"salt {SALT!r} and the file name",
        "fit_faces": len(fit.gender),
        "held_out_faces": len(held.gender),
        "gender_held_out": gender,
        "age_held_out": age,
        "gender_lfw": {
            "data": "LFW View 2 images with gender labels (another image source)",
            **lfw_gender,
        },
        "gender_leave_one_race_out": loro,
        "machine": info,
    }
    print(machine_line(info))
    print(f"fit {len(fit.gender)} FairFace faces, held out {len(held.gender)}\n")
    print("Gender error, FairFace held-out half (Wilson 95%)")
    print(f"{'group':32} {'all ages':>26} {'adults (20+)':>26}")
    for name, row in gender["groups"].items():
        print(f"{name:32} {pct(row):>26} {pct(row['adults']):>26}")
    print(f"{'all':32} {pct(gender['all']):>26} {pct(gender['adults']):>26}")
    print(f"LFW (all images): {pct(lfw_gender['all'])}")
    print("\nleave one race out (gender error on its held-out faces; all ages / adults)")
    for race, row in loro.items():
        print(
            f"{race:20} left out {pct(row['left_out']['all']):>24} "
            f"{pct(row['left_out']['adults']):>24}   fitted with "
            f"{pct(row['fitted_with']['all']):>24}"
        )
    print("\nAgeRange, FairFace held-out half")
    print(f"{'group':32} {'median in band':>24} {'range touches band':>24} {'MAE y':>6}")
    for name, row in [*age["groups"].items(), ("all", age["all"])]:
        print(
            f"{name:32} {pct(row['median_in_band']):>24} "
            f"{pct(row['range_touches_band']):>24} {row['mean_abs_error_years']:6.1f}"
        )
    write_results("attribute_demographics", results)
    if args.write:
        worst = gender["worst_group"]
        worst_adults = max(
            gender["groups"], key=lambda k: gender["groups"][k]["adults"]["rate"] or 0.0
        )
        shift = max(
            row["left_out"]["all"]["rate"] - row["fitted_with"]["all"]["rate"]
            for row in loro.values()
        )
        age_worst = min(
            age["groups"], key=lambda k: age["groups"][k]["median_in_band"]["rate"] or 0.0
        )
        gender_text = (
            f"FairFace val held-out half (fitted on the other half), {gender['all']['n']} faces: "
            f"{pct(gender['all'])} error; worst group {worst} {pct(gender['groups'][worst])}. "
            f"Adults (20+): {pct(gender['adults'])}, worst {worst_adults} "
            f"{pct(gender['groups'][worst_adults]['adults'])}. LFW (another image source): "
            f"{pct(lfw_gender['all'])}. A race left out of the fit: its error rises by at most "
            f"{100 * shift:.1f} points."
        )
        age_text = (
            f"FairFace val held-out half, {age['all']['n']} faces: the range's median in the "
            f"labelled band {pct(age['all']['median_in_band'])}, the range touches it "
            f"{pct(age['all']['range_touches_band'])}; the median is "
            f"{age['all']['mean_abs_error_years']:.1f} years from the band's middle on average; "
            f"lowest {age_worst} "
            f"{pct(age['groups'][age_worst]['median_in_band'])}."
        )
        doc = model_document(
            model,
            {
                "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "command": COMMAND,
                "data": results["data"],
                "measured": {
                    "gender_summary": {
                        "summary": gender_text,
                        "data": "FairFace val held-out half",
                        "faces": gender["all"]["n"],
                        "error": gender["all"]["rate"],
                        "adults_error": gender["adults"]["rate"],
                        "worst_group": worst,
                        "worst_group_error": gender["groups"][worst]["rate"],
                        "lfw_error": lfw_gender["all"]["rate"],
                    },
                    "age_summary": {
                        "summary": age_text,
                        "data": "FairFace val held-out half",
                        "faces": age["all"]["n"],
                        "median_in_band": age["all"]["median_in_band"]["rate"],
                        "range_touches_band": age["all"]["range_touches_band"]["rate"],
                        "mean_abs_error_years": age["all"]["mean_abs_error_years"],
                    },
                },
            },
        )
        Path(SHIPPED).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {SHIPPED}")


if __name__ == "__main__":
    main()
