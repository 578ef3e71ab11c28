"""First look at the converted attribute models on FairFace: which input convention, how accurate.

    PYTHONPATH=src python bench/attribute_inputs.py [--faces 400]

Not a bias audit (that is ``facegate bias``'s job, once an attribute is wired): a check of the
facts ``docs/models.md`` could not establish from the sources, on facegate's own crops
(``face_square`` of the engine's largest face, ``prepare_batch``):

* ``faceres``: human feeds RGB 0-255, HSE's own code BGR with the ImageNet means subtracted.
  Gender accuracy and age error under each say which one the weights expect.
* gender accuracy of ``gender``, ``gear`` and ``faceres`` overall and per FairFace race4 group
  (with the number of faces, so small groups are read as such), and the age error of ``age``,
  ``faceres`` and ``gear`` against FairFace's age bins.

Uses the first ``--faces`` FairFace validation images (in file-name order) whose face the engine
finds. Prints tables and writes ``bench/results/attribute_inputs.json``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchlib import ROOT, machine_info, machine_line, write_results
from facegate.engine.convert.package import convert_model, read_package
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.human_catalogue import model_spec
from facegate.engine.human_models import (
    LoadedModel,
    ModelStatus,
    default_models_dir,
    face_square,
    fraction_crop,
    prepare_batch,
)
from facegate.errors import FacegateError

FAIRFACE = ROOT.parent / "shared" / "data" / "fairface_val"
GEAR_AGES = np.array([15, 23, 28, 35.5, 45.5, 55.5, 65])  # human's gear.ts bin values
Crop = npt.NDArray[np.uint8]


def age_bin_bounds(label: str) -> tuple[float, float]:
    if label == "more than 70":
        return 70.0, 90.0
    low, high = label.split("-")
    return float(low), float(high) + 1


def age_error(estimate: float, label: str) -> float:
    """Years outside the labelled bin (0 inside it)."""
    low, high = age_bin_bounds(label)
    return max(low - estimate, 0.0, estimate - high)


def session(name: str, source: Path) -> LoadedModel:
    import onnxruntime as ort  # type: ignore[import-untyped]

    files, _ = read_package(source, [name])
    data, _ = convert_model(model_spec(name), lambda rel: files[f"models/{rel}"])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sess = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    return LoadedModel(model_spec(name), sess, ModelStatus(name, True, "bench"))


def faceres_age(distribution: npt.NDArray[np.float32]) -> float:
    """human's reading: interpolate from the argmax towards its larger neighbour."""
    i = int(distribution.argmax())
    before = distribution[i - 1] if i > 0 else 0.0
    after = distribution[i + 1] if i + 1 < len(distribution) else 0.0
    if before > after:
        return float(i - 10 * before)
    return float(i + 10 * after)


def gear_age(bins: npt.NDArray[np.float32]) -> float:
    """human's reading: start at the most likely bin's value, pull towards the others."""
    order = np.argsort(-bins)
    age = float(GEAR_AGES[order[0]])
    for j in order[1:]:
        age += float(bins[j]) * (float(GEAR_AGES[j]) - age)
    return age


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=400)
    parser.add_argument("--source", type=Path, default=default_models_dir() / "source")
    args = parser.parse_args()
    with (FAIRFACE / "labels.csv").open() as fh:
        labels = {row["image"]: row for row in csv.DictReader(fh)}
    engine = FaceEngine(EngineConfig())
    crops: list[tuple[Crop, dict[str, str]]] = []
    for name in sorted(labels):
        if len(crops) >= args.faces:
            break
        try:
            image = engine.decode((FAIRFACE / "images" / name).read_bytes())
            found = engine.detect(image)
        except FacegateError:
            continue
        if found:
            crops.append((face_square(found[0].box_px).crop(image.pixels), labels[name]))
    print(f"{len(crops)} FairFace faces", file=sys.stderr, flush=True)
    models = {n: session(n, args.source) for n in ("faceres", "gender", "gear", "age")}
    faces = [c for c, _ in crops]
    hse = model_spec("faceres").input  # the catalogue's: BGR minus the ImageNet means
    bgr_mean = prepare_batch(hse, faces)
    rgb255 = prepare_batch(replace(hse, channel_order="RGB", channel_means=(0.0, 0.0, 0.0)), faces)
    predictions: dict[str, list[tuple[str, float]]] = defaultdict(list)  # (gender, age)
    for key, batch in (("faceres rgb 0-255", rgb255), ("faceres bgr-mean", bgr_mean)):
        out = models["faceres"].run(batch)
        for p_man, dist in zip(out["gender"][:, 0], out["age_distribution"], strict=True):
            predictions[key].append(("Male" if p_man > 0.5 else "Female", faceres_age(dist)))
    gender = models["gender"].run(prepare_batch(model_spec("gender").input, faces))
    for p in gender["probabilities"]:
        predictions["gender"].append(("Female" if p[0] > p[1] else "Male", float("nan")))
    gear_in = prepare_batch(
        model_spec("gear").input, [fraction_crop(f, 0.0, 0.1, 0.9, 0.9) for f in faces]
    )
    gear = models["gear"].run(gear_in)
    for g, bins in zip(gear["gender"], gear["age_bins"], strict=True):
        predictions["gear"].append(("Male" if g[0] > g[1] else "Female", gear_age(bins)))
    ages = models["age"].run(prepare_batch(model_spec("age").input, faces))["age_years"][:, 0]
    predictions["age (SSR-Net)"] = [("", float(a)) for a in ages]

    groups = sorted({row["race4"] for _, row in crops})
    results: dict[str, Any] = {}
    print(f"{'model':20} {'gender acc':>10} " + " ".join(f"{g:>8}" for g in groups)
          + f" {'age: years outside bin (median, mean)':>38}")  # fmt: skip
    for key, preds in predictions.items():
        row: dict[str, Any] = {}
        if preds[0][0]:
            hits = [p[0] == lab["gender"] for p, (_, lab) in zip(preds, crops, strict=True)]
            row["gender_accuracy"] = float(np.mean(hits))
            by_group: dict[str, Any] = {}
            for g in groups:
                mine = [h for h, (_, lab) in zip(hits, crops, strict=True) if lab["race4"] == g]
                by_group[g] = {"accuracy": float(np.mean(mine)), "faces": len(mine)}
            row["gender_accuracy_by_race4"] = by_group
        if not np.isnan(preds[0][1]):
            errors = [age_error(p[1], lab["age"]) for p, (_, lab) in zip(preds, crops, strict=True)]
            row["age_years_outside_bin_median"] = float(np.median(errors))
            row["age_years_outside_bin_mean"] = float(np.mean(errors))
            row["age_within_bin"] = float(np.mean([e == 0 for e in errors]))
        results[key] = row
        acc = f"{row['gender_accuracy']:10.3f}" if "gender_accuracy" in row else f"{'-':>10}"
        per = " ".join(
            f"{row['gender_accuracy_by_race4'][g]['accuracy']:8.3f}" if "gender_accuracy" in row
            else f"{'-':>8}"
            for g in groups
        )  # fmt: skip
        age = (
            f"{row['age_years_outside_bin_median']:6.1f} {row['age_years_outside_bin_mean']:6.1f}"
            f" ({row['age_within_bin']:.0%} in bin)"
            if "age_within_bin" in row
            else "-"
        )
        print(f"{key:20} {acc} {per} {age:>38}")
    counts = {g: sum(1 for _, lab in crops if lab["race4"] == g) for g in groups}
    print("faces per race4 group: " + ", ".join(f"{g} {n}" for g, n in counts.items()))
    info = machine_info()
    print(machine_line(info))
    path = write_results(
        "attribute_inputs",
        {"machine": info, "faces": len(crops), "faces_per_race4": counts, "models": results},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
