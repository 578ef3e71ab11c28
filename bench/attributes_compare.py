"""EyesOpen, MouthOpen and Smile: the landmark geometry rules against the trained classifiers,
measured on the same held-out LFW people.

    .venv/bin/python bench/attributes_compare.py

Two methods estimate these three attributes: the geometry rules shipped in
``engine/calibration/attributes-geometry.json`` (fitted on the 280 faces of
``bench/labels/lfw_expressions.csv``) and the classifiers of ``engine.attribute_classifiers``
(fitted by ``bench/attribute_fit.py`` on ``bench/labels/lfw_attributes/manual_2026.csv``). To
compare them fairly, every person in the geometry rules' 280 faces is left out; the
classifiers are fitted on the fit side of ``attribute_fit``'s identity split of the rest (the
project's own labels only) and both methods are measured on its held-out side: the same faces,
seen by neither. Prints a table (accuracy and balanced accuracy with Wilson 95% intervals);
writes ``bench/results/attributes_compare.json``.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from attribute_fit import DATA, LABELS, faces_for
from facegate.bias.attribute_data import lfw_identity, merge_labels, read_labels
from facegate.bias.attribute_fit import (
    USES,
    fit_models,
    identity_split,
    measure,
    model_document,
)
from facegate.bias.stats import wilson_interval
from facegate.engine.attribute_classifiers import AttributeModels, estimate
from facegate.engine.attributes.geometry import geometric
from facegate.engine.attributes.types import Attribute, FaceInput
from facegate.engine.pose import estimate_pose
from facegate.engine.types import BoxPx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
GEOMETRY_LABELS = ROOT / "bench" / "labels" / "lfw_expressions.csv"
COMPARED = {"eyes_open": Attribute.EYES_OPEN, "mouth_open": Attribute.MOUTH_OPEN,
            "smile": Attribute.SMILE}  # fmt: skip


def geometry_people() -> set[str]:
    """The people whose faces fitted the geometry rules."""
    with GEOMETRY_LABELS.open(encoding="utf-8") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return {lfw_identity(r["image"].removeprefix("images/")) for r in rows}


def cell(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    m = measure(truth, predicted)
    interval = wilson_interval(m.correct, m.n)
    assert interval is not None  # n > 0
    low, high = interval
    recall_yes = m.true_positives / m.positives if m.positives else None
    recall_no = m.true_negatives / m.negatives if m.negatives else None
    balanced = None if None in (recall_yes, recall_no) else (recall_yes + recall_no) / 2  # type: ignore[operator]
    return {"n": m.n, "yes": m.positives, "accuracy": m.correct / m.n, "ci": [low, high],
            "balanced": balanced, "recall_yes": recall_yes, "recall_no": recall_no}  # fmt: skip


def main() -> int:
    labels = merge_labels([read_labels(LABELS / "manual_2026.csv", list(COMPARED))])
    root = DATA / "lfw" / "images"
    excluded = geometry_people()
    images = [i for i in labels.images() if (root / i).exists() and lfw_identity(i) not in excluded]
    faces = faces_for(images, root, RESULTS / "cache")
    result = fit_models(faces, labels, uses={name: USES[name] for name in COMPARED})
    fitted = RESULTS / "cache" / "attributes-compare-model.json"
    fitted.write_text(
        json.dumps(model_document("compare", result.mean, result.scale, result.shipped, {}))
    )
    models = AttributeModels.load(fitted)
    found = [i for i, ok in enumerate(faces.found) if ok]
    held = identity_split([lfw_identity(faces.paths[i]) for i in found])
    rows: dict[str, Any] = {}
    for name, attribute in COMPARED.items():
        estimator = geometric(attribute)
        truth, rule, model = [], [], []
        for i, is_held in zip(found, held, strict=True):
            path = faces.paths[i]
            if not is_held or path not in labels.values[name]:
                continue
            points = faces.points68[i].astype(np.float64)
            face = FaceInput(
                pixels=faces.chips[i], box_px=BoxPx(0, 0, 1, 1), points68_px=points,
                pose=estimate_pose(points),
            )  # fmt: skip
            flag = estimator.estimate(face)
            # a face turned too far for the rule gets no estimate: counted as a wrong answer
            flag_value = not labels.values[name][path] if flag is None else flag.value
            truth.append(labels.values[name][path])
            rule.append(flag_value)
            value, _ = estimate(models, name, faces.chips[i], faces.descriptors[i], points)
            model.append(value)
        t = np.array(truth)
        rows[name] = {"geometry": cell(t, np.array(rule)), "classifier": cell(t, np.array(model))}
    print(f"held-out LFW people outside the geometry rules' labels; machine: {sys.platform}")
    print(f"{'attribute':<12}{'method':<12}{'n':>5}{'yes':>5}{'acc%':>7}{'95% CI':>13}{'bal%':>7}")
    for name, methods in rows.items():
        for method, c in methods.items():
            bal = "-" if c["balanced"] is None else f"{100 * c['balanced']:.1f}"
            ci = f"{100 * c['ci'][0]:.1f}-{100 * c['ci'][1]:.1f}"
            print(
                f"{name:<12}{method:<12}{c['n']:>5}{c['yes']:>5}{100 * c['accuracy']:>7.1f}"
                f"{ci:>13}{bal:>7}"
            )
    out = RESULTS / "attributes_compare.json"
    out.write_text(json.dumps({"command": "python bench/attributes_compare.py", "rows": rows},
                              indent=2) + "\n")  # fmt: skip
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
