"""Fit and measure the geometric attribute estimators (EyesOpen, MouthOpen, Smile).

    .venv/bin/python bench/attributes_geometry.py collect [--pool 2000]
    .venv/bin/python bench/attributes_geometry.py sheets --out /tmp/sheets
    .venv/bin/python bench/attributes_geometry.py fit [--write]

1. ``collect``: a pool of LFW images (../shared/data/lfw, a fixed random sample of ``--pool``
   of its 8,120 images, seed 21), each through the engine (``FaceEngine``, default
   configuration); the face nearest the image centre (LFW centres its subject) gives the
   landmark features of ``facegate.engine.attributes.geometry``. Cached in
   bench/results/cache/attributes_geometry_pool.json.
2. The images to label (:func:`to_label`): a random 200 of the pool, plus the 40 with the
   smallest eye aspect ratio and the 40 with the largest lip gap (closed eyes and open mouths
   are rare in LFW: without them a fit sees few of them), shuffled together. ``sheets`` draws
   them on numbered contact sheets (face crops, no feature shown) for a person to label; the
   labels are kept in bench/labels/lfw_expressions.csv (image, eyes_open, mouth_open, smile,
   1/0; the file's header says who labelled them and by what rule).
3. ``fit``: images split by a salted hash of the person's name (``split_keys``, salt
   ``facegate-attributes-v1``: no person on both sides); a logistic rule per attribute is fitted
   on one half and measured on the other, on the random sample alone (what a random LFW face
   gives) and on all labelled held-out faces. Prints the table and writes
   bench/results/attributes_geometry.json; ``--write`` refits on every labelled face and writes
   the rules, with the held-out measurements, to
   src/facegate/engine/calibration/attributes-geometry.json: the file the engine ships.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from benchlib import RESULTS, ROOT, machine_info, machine_line, write_results
from facegate.bias.calibration import split_keys
from facegate.engine.attributes.geometry import CALIBRATION_FILE, features, fit_logistic
from facegate.engine.core import FaceEngine
from facegate.engine.landmarks import shape_points

LFW = ROOT.parent / "shared" / "data" / "lfw"
CACHE = RESULTS / "cache" / "attributes_geometry_pool.json"
LABELS = ROOT / "bench" / "labels" / "lfw_expressions.csv"
SHIPPED = ROOT / "src" / "facegate" / "engine" / "calibration" / CALIBRATION_FILE
SALT = "facegate-attributes-v1"
SEED = 21
RANDOM_LABELLED = 200
EXTREMES = 40

RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    # attribute -> (label column, features of its rule)
    "EYES_OPEN": ("eyes_open", ("eye_aspect",)),
    "MOUTH_OPEN": ("mouth_open", ("lip_gap",)),
    "SMILE": ("smile", ("corner_lift", "mouth_width")),
}


def _images() -> list[str]:
    return sorted(str(p.relative_to(LFW)) for p in (LFW / "images").glob("*/*.jpg"))


def _off_centre(b: Any, width: int, height: int) -> float:
    return float((b.left + b.width / 2 - width / 2) ** 2 + (b.top + b.height / 2 - height / 2) ** 2)


def collect(pool: int) -> dict[str, Any]:
    """Features (and the crop box) of the central face of ``pool`` LFW images."""
    if CACHE.is_file():
        cached: dict[str, Any] = json.loads(CACHE.read_text())
        if cached.get("pool") == pool:
            return cached
    names = _images()
    chosen = sorted(random.Random(SEED).sample(names, pool))
    engine = FaceEngine()
    faces: dict[str, Any] = {}
    for i, name in enumerate(chosen):
        image = engine.decode((LFW / name).read_bytes())
        found = engine.detect(image)
        if not found:
            continue
        face = min(found, key=lambda f: _off_centre(f.box_px, image.width_px, image.height_px))
        _, pts68 = shape_points(engine.models.shape_68, image.pixels, face.box_px)
        values = features(pts68)
        if values is None:
            continue
        b = face.box_px
        faces[name] = {
            "features": values,
            "yaw_deg": face.pose.yaw_deg,
            "box": [b.left, b.top, b.width, b.height],
        }
        if i % 200 == 0:
            print(f"{i}/{pool}", file=sys.stderr)
    doc = {"pool": pool, "seed": SEED, "faces": faces}
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps(doc))
    return doc


def to_label(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(image, stratum) of the faces to label, shuffled (module docstring, step 2)."""
    faces = doc["faces"]
    names = sorted(faces)
    rng = random.Random(SEED + 1)
    picked: dict[str, str] = dict.fromkeys(rng.sample(names, RANDOM_LABELLED), "random")
    by_eyes = sorted(names, key=lambda n: faces[n]["features"]["eye_aspect"])
    by_mouth = sorted(names, key=lambda n: -faces[n]["features"]["lip_gap"])
    for stratum, ranked in (("low_eye_aspect", by_eyes), ("high_lip_gap", by_mouth)):
        added = 0
        for n in ranked:
            if added >= EXTREMES:
                break
            if n not in picked:
                picked[n] = stratum
                added += 1
    order = sorted(picked, key=lambda n: hashlib.sha256(f"{SEED}\0{n}".encode()).hexdigest())
    return [(n, picked[n]) for n in order]


def sheets(doc: dict[str, Any], out: Path, per_sheet: int = 20, side: int = 240) -> None:
    """Numbered contact sheets of the faces to label (5 columns), no features shown."""
    out.mkdir(parents=True, exist_ok=True)
    items = to_label(doc)
    cols = 5
    for start in range(0, len(items), per_sheet):
        chunk = items[start : start + per_sheet]
        rows = -(-len(chunk) // cols)
        sheet = Image.new("RGB", (cols * side, rows * (side + 18)), "white")
        draw = ImageDraw.Draw(sheet)
        for k, (name, _) in enumerate(chunk):
            left, top, width, height = doc["faces"][name]["box"]
            pad = 0.25
            box = (
                int(left - pad * width),
                int(top - pad * height),
                int(left + (1 + pad) * width),
                int(top + (1 + pad) * height),
            )
            crop = Image.open(LFW / name).convert("RGB").crop(box).resize((side, side))
            x, y = (k % cols) * side, (k // cols) * (side + 18)
            sheet.paste(crop, (x, y + 18))
            draw.text((x + 4, y + 2), str(start + k), fill="black")
        sheet.save(out / f"sheet_{start // per_sheet:02d}.png")
    (out / "index.csv").write_text("".join(f"{i},{name}\n" for i, (name, _) in enumerate(items)))


def _labels() -> dict[str, dict[str, bool | None]]:
    """image -> label per column (None: the annotator could not tell, "x")."""
    rows: dict[str, dict[str, bool | None]] = {}
    with LABELS.open() as fh:
        for row in csv.DictReader(line for line in fh if not line.startswith("#")):
            rows[row["image"]] = {
                k: None if row[k] == "x" else row[k] == "1"
                for k in ("eyes_open", "mouth_open", "smile")
            }
    return rows


def _person(name: str) -> str:
    return name.split("/")[1]


def _measure(rule: tuple[tuple[float, ...], float], x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    weights, bias = rule
    p = 1.0 / (1.0 + np.exp(-(x @ np.asarray(weights) + bias)))
    predicted = p >= 0.5
    positives, negatives = y.sum(), (~y).sum()
    pos, neg = p[y], p[~y]
    auc = None
    if len(pos) and len(neg):  # probability that a positive face scores above a negative one
        above = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
        auc = float(above)
    return {
        "faces": len(y),
        "auc": auc,
        "positives": int(positives),
        "accuracy": float((predicted == y).mean()) if len(y) else None,
        "true_positive_rate": float((predicted & y).sum() / positives) if positives else None,
        "true_negative_rate": float((~predicted & ~y).sum() / negatives) if negatives else None,
        "majority_baseline": float(max(positives, negatives) / len(y)) if len(y) else None,
    }


def fit(doc: dict[str, Any], write: bool) -> int:
    labels = _labels()
    strata = dict(to_label(doc))
    labelled = sorted(n for n in labels if n in doc["faces"])
    results: dict[str, Any] = {}
    rules: dict[str, Any] = {}
    half = split_keys([_person(n) for n in labelled], SALT)
    print(f"{len(labelled)} labelled faces ({int(half.sum())} fit, {int((~half).sum())} held out)")
    print(
        f"{'attribute':<11} {'set':<17} {'faces':>5} {'pos':>4} "
        f"{'acc':>6} {'TPR':>6} {'TNR':>6} {'base':>6} {'AUC':>6}"
    )
    for attribute, (column, feats) in RULES.items():
        names = [n for n in labelled if labels[n][column] is not None]
        fit_mask = split_keys([_person(n) for n in names], SALT)
        x = np.array([[doc["faces"][n]["features"][f] for f in feats] for n in names])
        y = np.array([labels[n][column] for n in names])
        held = ~fit_mask
        split_rule = fit_logistic(x[fit_mask], y[fit_mask])
        random_held = held & np.array([strata.get(n) == "random" for n in names])
        measured = {
            "held_out_random": _measure(split_rule, x[random_held], y[random_held]),
            "held_out_all": _measure(split_rule, x[held], y[held]),
        }
        for label, m in measured.items():
            cells = [
                m["accuracy"],
                m["true_positive_rate"],
                m["true_negative_rate"],
                m["majority_baseline"],
                m["auc"],
            ]
            text = " ".join(f"{c:6.3f}" if c is not None else f"{'-':>6}" for c in cells)
            print(f"{attribute:<11} {label:<17} {m['faces']:>5} {m['positives']:>4} {text}")
        weights, bias = fit_logistic(x, y)
        rules[attribute] = {
            "features": list(feats),
            "weights": list(weights),
            "bias": bias,
            "label": column,
            "measured": measured,
        }
        results[attribute] = {
            "split_rule": {"weights": list(split_rule[0]), "bias": split_rule[1]},
            **measured,
        }
    info = machine_info()
    write_results(
        "attributes_geometry", {"machine": info, "labelled": len(labelled), "results": results}
    )
    print(machine_line(info))
    if write:
        body = json.dumps(rules, sort_keys=True)
        version = "geom-" + hashlib.sha256(body.encode()).hexdigest()[:8]
        SHIPPED.write_text(
            json.dumps(
                {
                    "version": version,
                    "command": "python bench/attributes_geometry.py fit --write",
                    "data": "LFW (../shared/data/lfw), faces labelled in "
                    "bench/labels/lfw_expressions.csv",
                    "split": f"by person, split_keys salt {SALT!r}; measured = fitted on one "
                    "half, measured on the other; shipped rules refitted on all labelled faces",
                    "rules": rules,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"wrote {SHIPPED} ({version})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("collect", "sheets", "fit"))
    parser.add_argument("--pool", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/attribute_sheets"))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    doc = collect(args.pool)
    if args.step == "sheets":
        sheets(doc, args.out)
    elif args.step == "fit":
        return fit(doc, args.write)
    print(f"{len(doc['faces'])} faces in the pool", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
