"""Fit the attribute classifiers on labelled LFW faces and measure them on held-out people.

    .venv/bin/python bench/attribute_fit.py                    # fit + measure, print the table
    .venv/bin/python bench/attribute_fit.py --write-model      # ... and write the shipped weights
    .venv/bin/python bench/attribute_fit.py --limit 300        # smoke run on the first 300 images

Data: LFW images from ``../shared/data/lfw``; the project's own labels in
``bench/labels/lfw_attributes/*.csv`` (see the README there: ``image`` column plus 1/0/empty per
attribute; a ``use`` column with ``fit`` marks rows that are only ever fitted on, never held
out) and, when present, the third-party smile labels ``../shared/data/lfw_attributes/
smile_morishita.csv``; gender from ``lfw/gender.csv`` and race from ``lfw/race_by_identity.json``
for the per-group rows.

For each labelled image the engine (default detector chain, one process) finds the face nearest
the image centre and computes its aligned chip, descriptor and 68 landmarks (cached in
``bench/results/cache/attribute-faces-<key>.npz``). The split is by identity (one third of the
people held out, by hash); see ``facegate.bias.attribute_fit`` for the method. Prints the machine
and a table; writes ``bench/results/attribute_fit.json``; with ``--write-model`` also
``src/facegate/engine/calibration/attributes-v1.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import RESULTS, ROOT, cell, machine_info, machine_line, write_results
from facegate.bias.attribute_data import (
    FaceSet,
    LabelTable,
    cache_key,
    extract_faces,
    lfw_identity,
    merge_labels,
    read_labels,
)
from facegate.bias.attribute_fit import (
    DEFAULT_COMPONENTS,
    USES,
    AttributeReport,
    fit_models,
    model_document,
)
from facegate.bias.datasets import lfw_race, load_lfw_gender
from facegate.engine.attribute_classifiers import ATTRIBUTES, DEFAULT_MODEL_FILE
from facegate.engine.core import EngineConfig, FaceEngine

DATA = ROOT.parent / "shared" / "data"
LABELS = ROOT / "bench" / "labels" / "lfw_attributes"
"""The labels made for this project (README.md there)."""
OWN = frozenset(p.name for p in LABELS.glob("*.csv"))
MODEL_PATH = ROOT / "src" / "facegate" / "engine" / "calibration" / DEFAULT_MODEL_FILE
VERSION = "attributes-v1"
COMMAND = "python bench/attribute_fit.py --write-model"


def fit_only_images(paths: list[Path]) -> set[str]:
    """Images of rows whose ``use`` column says ``fit`` (never held out)."""
    out: set[str] = set()
    for path in paths:
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if (row.get("use") or "").strip() == "fit":
                    out.add(row["image"])
    return out


def load_groups(data: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Gender by image (female/male; the 5 ambiguous entries are ``unknown`` and left out) and
    race by identity (``bias.datasets.lfw_race``: several labels -> ``multiple``)."""
    gender = {
        image: g
        for image, g in load_lfw_gender(data / "lfw" / "gender.csv").items()
        if g in ("female", "male")
    }
    race = json.loads((data / "lfw" / "race_by_identity.json").read_text())
    return gender, {str(k): lfw_race(str(v)) for k, v in race.items()}


def faces_for(images: list[str], root: Path, cache_dir: Path) -> FaceSet:
    """The faces of ``images``: from the cache of these images, or of the whole folder
    (as bench/attribute_fit.py names it), else extracted now and cached."""
    engine = FaceEngine(EngineConfig())
    key = cache_key(images, engine.model_version)
    path = cache_dir / f"attribute-faces-{key}.npz"
    if path.exists():
        return FaceSet.load(path)
    everything = sorted(str(p.relative_to(root)) for p in root.glob("*/*.jpg"))
    whole = cache_dir / f"attribute-faces-{cache_key(everything, engine.model_version)}.npz"
    if whole.exists():
        faces = FaceSet.load(whole)
        index = {p: i for i, p in enumerate(faces.paths)}
        return faces.subset([index[i] for i in images])
    started = time.perf_counter()

    def progress(i: int) -> None:
        if i % 500 == 0:
            print(f"  faces: {i}/{len(images)} ({time.perf_counter() - started:.0f} s)")

    faces = extract_faces(root, images, engine, progress)
    faces.save(path)
    return faces


def run(args: argparse.Namespace) -> dict[str, Any]:
    # the project's own labels (bench/labels), and the third-party smile labels when present
    label_files = sorted(LABELS.glob("*.csv")) + sorted(
        p for p in (args.data / "lfw_attributes").glob("*.csv") if p.name not in OWN
    )
    if args.labels:
        label_files = [Path(p) for p in args.labels]
    labels: LabelTable = merge_labels([read_labels(p, ATTRIBUTES) for p in label_files])
    root = args.data / "lfw" / "images"
    images = [i for i in labels.images() if (root / i).exists()]
    if args.limit:
        images = images[: args.limit]
    faces = faces_for(images, root, args.cache)
    print(f"labelled images: {len(images)}, face found in {int(faces.found.sum())}")
    gender, race = load_groups(args.data)
    uses = {
        name: tuple(g for g in groups if args.descriptor or g != "descriptor")
        for name, groups in USES.items()
    }
    result = fit_models(
        faces,
        labels,
        fit_only=fit_only_images(label_files),
        groups={"gender": gender, "race": {p: race.get(lfw_identity(p), "") for p in images}},
        uses=uses,
        components=args.components,
    )
    provenance = {
        "command": COMMAND,
        "label_files": [p.name for p in label_files],
        "images": len(images),
        **result.provenance,
    }
    document = model_document(VERSION, result.mean, result.scale, result.shipped, provenance)
    return {"document": document, "reports": result.reports, "provenance": provenance}


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def print_table(reports: dict[str, AttributeReport], min_group: int = 20) -> None:
    """The held-out table, then accuracy per gender and race group with at least ``min_group``
    held-out faces (the JSON has every group)."""
    head = f"{'attribute':<14}{'n':>5}{'pres':>6}{'acc%':>7}{'95% CI':>14}{'bal%':>7}"
    print(head + f"{'rec+%':>7}{'rec-%':>7}{'major%':>8}")
    for name, r in reports.items():
        t = r.test
        ci = t.accuracy_ci
        ci_text = "-" if ci is None else f"{100 * ci[0]:.1f}-{100 * ci[1]:.1f}"
        print(
            f"{name:<14}{t.n:>5}{t.positives:>6}{cell(100 * (t.accuracy or 0), 7, 1)}"
            f"{ci_text:>14}{pct(t.balanced_accuracy):>7}{pct(t.recall_present):>7}"
            f"{pct(t.recall_absent):>7}{pct(r.majority_accuracy):>8}"
        )
    print(f"per group: accuracy % [95% CI] (held-out n, present); groups with n >= {min_group}")
    for name, r in reports.items():
        parts = []
        for key in ("gender", "race"):
            for g, m in r.by_group.get(key, {}).items():
                ci = m.accuracy_ci
                if m.n >= min_group and ci is not None:
                    parts.append(
                        f"{g} {pct(m.accuracy)} [{100 * ci[0]:.0f}-{100 * ci[1]:.0f}]"
                        f" ({m.n}, {m.positives})"
                    )
        print(f"  {name:<14}" + "; ".join(parts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="shared data folder")
    parser.add_argument(
        "--labels",
        nargs="*",
        help="label CSVs (default: bench/labels/lfw_attributes/*.csv and the shared smile labels)",
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N labelled images")
    parser.add_argument("--components", type=int, default=DEFAULT_COMPONENTS)
    parser.add_argument(
        "--no-descriptor", dest="descriptor", action="store_false", help="chip features only"
    )
    parser.add_argument("--cache", type=Path, default=RESULTS / "cache")
    parser.add_argument("--write-model", action="store_true", help=f"write {MODEL_PATH.name}")
    parser.add_argument("--model-path", type=Path, default=MODEL_PATH)
    parser.add_argument("--results-name", default="attribute_fit")
    args = parser.parse_args(argv)
    info = machine_info()
    started = time.perf_counter()
    out = run(args)
    elapsed = time.perf_counter() - started
    print(machine_line(info))
    print_table(out["reports"])
    print(f"fit + measure: {elapsed:.0f} s")
    results = {
        "machine": info,
        "provenance": out["provenance"],
        "attributes": {name: r.as_json() for name, r in out["reports"].items()},
    }
    if not args.limit:
        print(f"wrote {write_results(args.results_name, results)}")
    if args.write_model:
        args.model_path.write_text(json.dumps(out["document"], separators=(",", ":")) + "\n")
        print(f"wrote {args.model_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
