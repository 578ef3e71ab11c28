#!/usr/bin/env python3
"""Regenerate the measured tables of docs/bias.md (and docs/calibration.md's lineup,
docs/normalisation.md's targets) from the commands that measure them.

    PYTHONPATH=src python tools/bias_doc.py run [NAME...]  # run the commands, store JSON, render
    PYTHONPATH=src python tools/bias_doc.py render         # rewrite the tables from stored JSON
    PYTHONPATH=src python tools/bias_doc.py check          # exit 1 if a table drifted

``run`` calls ``facegate bias ...`` (in this process) for each entry of :data:`RUNS` (or the
names given) with ``--json bench/results/bias_doc/<name>.json``; descriptors come from the
toolkit's cache (``~/.cache/facegate/descriptors``) and the classifier's answers from
``~/.cache/facegate/attributes``, so a rerun takes minutes (3.5 on the shared 2 cores); the
first run on a new machine computes them (about an hour). Run it from anywhere; paths are the
project root's, with the data under ``../shared/data``. It also writes the LFW manifests the
1:N lineup reads (``lfw_probes.csv``, ``lfw_gallery.csv``: an auditor's CSVs, made from LFW's
``gender.csv``; not committed, ``run`` remakes them). The stored reports keep every number
the tables use (a lineup's match lists and declared mates are cut to 20). ``render`` and
``check`` read only those files (:mod:`facegate.bias.doc_tables`); the test
``tests/bias/test_doc_tables.py`` runs the same check, so CI fails when a document and the
stored reports disagree. A table's cache use (descriptors computed or read from the cache) is
left out: a rerun gives the same document.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from pathlib import Path

from facegate.bias.doc_tables import drift, rewrite
from facegate.cli import main as facegate

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path("bench/results/bias_doc")
DOCS: dict[Path, tuple[str, ...]] = {
    Path("docs/bias.md"): (
        "verification", "sweep", "impostors", "sampling", "detection", "lineup",
        "identification", "normalisation", "classifier",
    ),
    Path("docs/calibration.md"): ("lineup_raw",),
    Path("docs/normalisation.md"): ("normalisation_targets",),
}  # fmt: skip
"""Each generated document -> the tables it must contain (:data:`doc_tables.TABLES`)."""
DATA = Path("../shared/data")

RUNS: dict[str, list[str]] = {
    "lfw_gender": ["bias", "verification", "--dataset", "lfw", "--group-by", "gender"],
    "ff_race_gender": ["bias", "impostors", "--dataset", "fairface", "--group-by", "race,gender"],
    "ff_race_gender_3000": [
        "bias", "impostors", "--dataset", "fairface", "--group-by", "race,gender",
        "--pairs-per-group", "3000",
    ],
    "lineup_cf": [
        "bias", "lineup", "--probes", "congress", "--gallery", "fairface",
        "--max-expected-false-candidates", "0.01",
    ],
    "lineup_cf_raw": [
        "bias", "lineup", "--probes", "congress", "--gallery", "fairface", "--score", "raw",
        "--max-expected-false-candidates", "0.01",
    ],
    "lfw_1n": [
        "bias", "lineup", "--probes", str(RESULTS / "lfw_probes.csv"),
        "--gallery", str(RESULTS / "lfw_gallery.csv"), "--mates-by-subject",
        "--group-by", "gender", "--max-expected-false-candidates", "0.01",
    ],
    "sweep_lfw": ["bias", "sweep", "--dataset", "lfw", "--group-by", "gender"],
    "normalisation": ["bias", "normalisation"],
    "classifier_gender": [
        "bias", "classifier", "--estimate", "gender", "--dataset", "fairface",
        "--group-by", "race,gender",
    ],
}  # fmt: skip
"""Run name -> the command (after ``facegate``); its report is ``<name>.json``."""

KEEP_MATCHES = 20


def lfw_manifests() -> None:
    """An auditor's CSVs from LFW: each person with two or more images gives their first image
    as a probe and the rest to the gallery; everyone else's images are gallery distractors."""
    rows: dict[str, list[tuple[str, str]]] = {}
    with (DATA / "lfw" / "gender.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            path = DATA / "lfw" / "images" / row["image"]
            if path.is_file():
                gender = {"M": "male", "F": "female"}.get(row["gender"], "")
                rows.setdefault(row["identity"], []).append((row["image"], gender))
    probes, gallery = [], []
    for person, images in sorted(rows.items()):
        images.sort()
        rel = [os.path.relpath(DATA / "lfw" / "images" / i, RESULTS) for i, _ in images]
        if len(images) >= 2:
            probes.append((rel[0], person, images[0][1]))
            gallery += [(r, person, g) for r, (_, g) in zip(rel[1:], images[1:], strict=True)]
        else:
            gallery.append((rel[0], person, images[0][1]))
    for name, table in (("lfw_probes.csv", probes), ("lfw_gallery.csv", gallery)):
        with (RESULTS / name).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "subject_id", "gender"])
            writer.writerows(table)


def _trim(path: Path) -> None:
    report = json.loads(path.read_text(encoding="utf-8"))
    for t in report.get("thresholds", []):
        if isinstance(t, dict) and isinstance(t.get("matches"), list):
            t["matches"] = t["matches"][:KEEP_MATCHES]
    declared = report.get("declared_true")
    if isinstance(declared, dict) and len(declared) > KEEP_MATCHES:
        report["declared_true"] = dict(list(declared.items())[:KEEP_MATCHES])
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


def run(names: list[str]) -> None:
    """Run the named commands (all of :data:`RUNS` when none is named) and store their JSON."""
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        raise SystemExit(f"unknown run {', '.join(unknown)}; known: {', '.join(RUNS)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    lfw_manifests()
    for name in names or list(RUNS):
        out = RESULTS / f"{name}.json"
        start = time.monotonic()
        argv = [*RUNS[name], "--json", str(out), "--no-progress"]
        with open(os.devnull, "w", encoding="utf-8") as sink:
            code = facegate(argv, out=sink)
        if code != 0:
            raise SystemExit(f"{name}: facegate {' '.join(argv)} exited {code}")
        _trim(out)
        print(f"{name}: {time.monotonic() - start:.0f} s -> {out}")


def load_reports(results: Path = RESULTS) -> dict[str, dict[str, object]]:
    """The stored reports by run name."""
    return {
        name: json.loads((results / f"{name}.json").read_text(encoding="utf-8")) for name in RUNS
    }


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    if not argv or argv[0] not in ("run", "render", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "run":
        run(argv[1:])
    reports = load_reports()
    bad = False
    for path, expected in DOCS.items():
        doc = path.read_text(encoding="utf-8")
        if argv[0] == "check":
            drifted = drift(doc, reports, expected)
            if drifted:
                bad = True
                print(f"{path}: out of date: {', '.join(drifted)} (tools/bias_doc.py render)")
            else:
                print(f"{path}: every table matches {RESULTS}")
        else:
            path.write_text(rewrite(doc, reports), encoding="utf-8")
            print(f"rewrote {path}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
