"""The Gender Shades audit of facegate's model-backed attributes: every published number, rerun.

    PYTHONPATH=src .venv/bin/python bench/attribute_audit.py [--out DIR] [--write]

Runs ``facegate bias classifier --estimate ...`` (the commands are listed in :data:`RUNS` and
printed) for Gender (FairFace val by race x gender, race4 x gender, adults only, age band x
gender; LFW, one image per person), AgeRange (FairFace by race x gender, race4 x gender, age
band) and HAPPY / Smile against three sets of hand-labelled smiles on LFW. The engine's answers
are cached (``~/.cache/facegate/attributes``): the first run analyses about 13,000 images (about
10 minutes on 2 cores), a rerun takes seconds. Also the Gender confidence against accuracy on
FairFace (is a Confidence of 90 right 90% of the time?).

Writes each full report (``--out``, default ``/tmp/facegate-attribute-audit``: JSON and HTML, as
``facegate bias classifier --json --html`` does), a summary table on stdout, the summary as
``bench/results/attribute_audit.json`` and, with ``--write``, the measurements the server
publishes with each estimator (``src/facegate/engine/calibration/attributes-models.json``,
shown at ``/transparency``; only for the estimator versions measured here).
"""

from __future__ import annotations

import argparse
import io
import json
import os
from collections import Counter
from contextlib import redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib import ROOT, machine_info, machine_line, write_results
from facegate.bias.attributes import FACE, compute_attributes
from facegate.bias.datasets import load_fairface
from facegate.bias.stats import wilson_interval
from facegate.cli import main as facegate
from facegate.cli.bias_attributes import audit_config
from facegate.engine.attributes.face_models import MEASUREMENTS_FILE

ADULTS = "age_band=20-29|30-39|40-49|50-59|60-69|more than 70"
MANUAL = "../shared/data/lfw_attributes/manual_2026.csv"
MORISHITA = "../shared/data/lfw_attributes/smile_morishita.csv"
EXPRESSIONS = "bench/labels/lfw_expressions.csv"
FAIRFACE = ["--dataset", "fairface"]
LFW = ["--dataset", "lfw", "--one-per-subject"]

RUNS: dict[str, list[str]] = {
    "gender_fairface_race_gender": ["--estimate", "gender", *FAIRFACE, "--group-by", "race,gender"],
    "gender_fairface_race4_gender": [
        "--estimate", "gender", *FAIRFACE, "--group-by", "race4,gender",
    ],
    "gender_fairface_adults_race_gender": [
        "--estimate", "gender", *FAIRFACE, "--where", ADULTS, "--group-by", "race,gender",
    ],
    "gender_fairface_age_gender": [
        "--estimate", "gender", *FAIRFACE, "--group-by", "age_band,gender",
    ],
    "gender_lfw": ["--estimate", "gender", *LFW, "--group-by", "gender"],
    "age_fairface_race_gender": ["--estimate", "age", *FAIRFACE, "--group-by", "race,gender"],
    "age_fairface_race4_gender": ["--estimate", "age", *FAIRFACE, "--group-by", "race4,gender"],
    "age_fairface_age_band": ["--estimate", "age", *FAIRFACE, "--group-by", "age_band"],
    "happy_lfw_manual": ["--estimate", "happy", *LFW, "--labels", MANUAL, "--group-by", "gender"],
    "happy_lfw_morishita": [
        "--estimate", "happy", *LFW, "--labels", MORISHITA, "--group-by", "gender",
    ],
    "happy_lfw_expressions": [
        "--estimate", "happy", *LFW, "--labels", EXPRESSIONS, "--group-by", "gender",
    ],
    "smile_lfw_manual": ["--estimate", "smile", *LFW, "--labels", MANUAL, "--group-by", "gender"],
    "smile_lfw_morishita": [
        "--estimate", "smile", *LFW, "--labels", MORISHITA, "--group-by", "gender",
    ],
    "smile_lfw_expressions": [
        "--estimate", "smile", *LFW, "--labels", EXPRESSIONS, "--group-by", "gender",
    ],
}  # fmt: skip


def run(name: str, argv: list[str], out: Path) -> dict[str, Any]:
    json_path, html_path = out / f"{name}.json", out / f"{name}.html"
    words = ["bias", "classifier", *argv, "--no-progress", "--json", str(json_path),
             "--html", str(html_path)]  # fmt: skip
    with redirect_stdout(io.StringIO()):
        code = facegate(words)
    if code != 0:
        raise SystemExit(f"facegate {' '.join(words)} exited {code}")
    report: dict[str, Any] = json.loads(json_path.read_text(encoding="utf-8"))
    return report


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("group", "n", "errors", "error_rate", "ci_low", "ci_high")}


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    table = report["intersectional"]
    s = table["summary"]
    rows = {r["group"]: r for r in table["groups"]}
    out: dict[str, Any] = {
        "command": report["command"],
        "estimator": report["estimator"]["version"],
        "dataset": report["dataset"],
        "overall": _row(table["overall"]),
        "worst": [_row(rows[g]) for g in s["worst"]],
        "best": [_row(rows[g]) for g in s["best"]],
        "max_geomean": s["max_geomean"],
        "fisher_p": (s.get("fisher") or {}).get("p_value"),
        "groups": [_row(r) for r in table["groups"]],
        "too_small": s["too_small"],
        "no_face": report["images"]["no_face"],
        "images": report["images"]["per_group"],
    }
    if report.get("age"):
        out["age"] = report["age"][0]["groups"]
    return out


def confidence_bands() -> list[dict[str, Any]]:
    """Gender accuracy per band of Gender.Confidence on FairFace (all ages)."""
    manifest = load_fairface(ROOT.parent / "shared" / "data" / "fairface_val")
    results = compute_attributes(manifest, audit_config(), progress=False)
    right: Counter[int] = Counter()
    total: Counter[int] = Counter()
    for sample, record in zip(manifest.samples, results.records, strict=True):
        truth = sample.attributes.get("gender")
        if record.status != FACE or record.gender is None or truth not in ("male", "female"):
            continue
        band = min(9, int(record.gender[1] // 10))
        total[band] += 1
        right[band] += record.gender[0].lower() == truth
    bands = []
    for band in sorted(total):
        low, high = wilson_interval(right[band], total[band], 0.95) or (None, None)
        bands.append(
            {
                "confidence": f"{10 * band}-{10 * band + 10}",
                "faces": total[band],
                "accuracy": right[band] / total[band],
                "ci_low": low,
                "ci_high": high,
            }
        )
    return bands


def _pct(row: dict[str, Any]) -> str:
    return (
        f"{row['group']} {100 * row['error_rate']:.1f}% "
        f"({100 * row['ci_low']:.1f}-{100 * row['ci_high']:.1f}, {row['errors']}/{row['n']})"
    )


def _cmd(summary: dict[str, Any]) -> str:
    return str(summary["command"]).split(" --json")[0]


def measurements(s: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What the server publishes with each estimator (the ``measured`` of /transparency)."""
    g, ga, gl = (s["gender_fairface_race_gender"], s["gender_fairface_adults_race_gender"],
                 s["gender_lfw"])  # fmt: skip
    gl_rows = {r["group"]: r for r in gl["groups"]}
    a = s["age_fairface_race_gender"]
    a_overall = a["age"][-1]
    a_rows = [r for r in a["age"] if r["group"] != "overall" and not r["too_small"]]
    a_worst = min(a_rows, key=lambda r: r["middle_inside_rate"])
    h = s["happy_lfw_morishita"]
    hm, he = s["happy_lfw_manual"], s["happy_lfw_expressions"]

    def acc(summary: dict[str, Any]) -> str:
        o = summary["overall"]
        return f"{100 * (1 - o['error_rate']):.1f}% of {o['n']}"

    return {
        "format": "facegate-attribute-measurements/1",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "PYTHONPATH=src .venv/bin/python bench/attribute_audit.py --write",
        "attributes": {
            "GENDER": {
                "version": g["estimator"],
                "summary": (
                    f"FairFace val, {g['overall']['n']} faces: "
                    f"{100 * g['overall']['error_rate']:.1f}% error; worst group "
                    f"{_pct(g['worst'][0])}, best {_pct(g['best'][0])}. "
                    f"Adults only: worst {_pct(ga['worst'][0])}, best {_pct(ga['best'][0])}. "
                    "Gender Shades (2018) measured 34.7% for darker-skinned women (IBM), Raji & "
                    "Buolamwini (2019) 31.37% for Amazon Rekognition. LFW, one image per person: "
                    f"{_pct(gl_rows['female'])}, {_pct(gl_rows['male'])}."
                ),
                "data": "FairFace validation (race and gender labels of its annotators); LFW "
                "gender.csv (held out: nothing was fitted on either)",
                "commands": [_cmd(g), _cmd(ga), _cmd(gl)],
                "worst_group": g["worst"][0],
                "adults_worst_group": ga["worst"][0],
                "overall": g["overall"],
            },
            "AGE_RANGE": {
                "version": a["estimator"],
                "summary": (
                    f"FairFace val, {a_overall['n']} faces: the middle of AgeRange is in the "
                    f"labelled 10-year bin for {100 * a_overall['middle_inside_rate']:.1f}% and "
                    "the "
                    f"range overlaps it for {100 * a_overall['overlap_rate']:.1f}% (median width "
                    f"{a_overall['width_median']:g} years); worst group {a_worst['group']}: "
                    f"{100 * a_worst['middle_inside_rate']:.1f}% "
                    f"({100 * a_worst['middle_inside_ci'][0]:.1f}-"
                    f"{100 * a_worst['middle_inside_ci'][1]:.1f}) and "
                    f"{100 * a_worst['overlap_rate']:.1f}%."
                ),
                "data": "FairFace validation age bins (held out)",
                "commands": [_cmd(a), _cmd(s["age_fairface_age_band"])],
                "overall": a_overall,
                "worst_group": a_worst,
            },
            "EMOTIONS": {
                "version": h["estimator"],
                "summary": (
                    "Only HAPPY is measured, and only as a visible smile: HAPPY is the top "
                    f"expression exactly when LFW faces are labelled smiling for {acc(h)} "
                    f"(labels of yusuke-morishita/lecture), {acc(hm)} (manual_2026) and "
                    f"{acc(he)} (bench/labels). SAD, ANGRY, DISGUSTED, SURPRISED, FEAR and "
                    "CALM are not measured: no labelled data here. CONFUSED is never returned."
                ),
                "data": "LFW smile labels (three sets, one image per person)",
                "commands": [_cmd(h), _cmd(hm), _cmd(he)],
                "overall": h["overall"],
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/facegate-attribute-audit"))
    parser.add_argument("--write", action="store_true", help=f"write {MEASUREMENTS_FILE}")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)  # the commands name ../shared/data and bench/labels from the project root
    summaries: dict[str, dict[str, Any]] = {}
    print(f"{'run':36} {'overall error':>14}  worst group (95% CI, errors/n)")
    for name, argv in RUNS.items():
        summaries[name] = summarise(run(name, argv, out))
        s = summaries[name]
        worst = "; ".join(_pct(w) for w in s["worst"])
        print(f"{name:36} {100 * s['overall']['error_rate']:13.2f}%  {worst}", flush=True)
    for name, s in summaries.items():
        if "age" in s:
            o = s["age"][-1]
            print(
                f"{name}: middle in bin {100 * o['middle_inside_rate']:.1f}%, range overlaps "
                f"{100 * o['overlap_rate']:.1f}%, median width {o['width_median']:g} years"
            )
    bands = confidence_bands()
    print("Gender confidence against accuracy (FairFace, all ages):")
    for b in bands:
        print(
            f"  Confidence {b['confidence']:>7}: {b['faces']:5} faces, accuracy "
            f"{100 * b['accuracy']:.1f}% ({100 * b['ci_low']:.1f}-{100 * b['ci_high']:.1f})"
        )
    print("commands:")
    for s in summaries.values():
        print("  " + _cmd(s))
    info = machine_info()
    print(machine_line(info))
    path = write_results(
        "attribute_audit",
        {"machine": info, "runs": summaries, "gender_confidence_fairface": bands},
    )
    print(f"wrote {path} and the full reports in {out}")
    if args.write:
        target = ROOT / "src" / "facegate" / "engine" / "calibration" / MEASUREMENTS_FILE
        target.write_text(json.dumps(measurements(summaries), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
