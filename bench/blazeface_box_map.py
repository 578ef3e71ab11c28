"""Fit BlazeFace's map to dlib HOG's boxes on FairFace val, and check it on LFW.

    .venv/bin/python bench/blazeface_box_map.py [--workers 2] [--lfw-every 4] [--faces 800]
        [--models-dir DIR] [--write]

The search probes' BlazeFace (``engine.blazeface``) reports a square box larger than the one
dlib's landmark predictors were trained on; ``engine.boxmap``'s linear map (the one that maps
MTCNN's boxes) predicts HOG's box from BlazeFace's box and keypoints (eyes, nose, mouth centre).

1. On every FairFace val crop (the fit data) and every ``--lfw-every``-th LFW image (the check
   data, another source), runs dlib's HOG detector (the engine's settings) and BlazeFace (the
   engine's thresholds, no map). A face enters when HOG finds exactly one face and BlazeFace's
   box overlaps it (IoU >= 0.3). Cached under bench/results/cache/.
2. Fits the map on all FairFace faces.
3. On LFW: IoU with HOG's box (raw and mapped), and for ``--faces`` faces the descriptor (ONNX
   runtime, the engine's chip) of the HOG box against BlazeFace's raw and mapped boxes and, as
   the noise floor, HOG on the same image shifted by 3 px (how far HOG moves from itself).

Writes bench/results/blazeface_box_map.json; ``--write`` also writes the map the engine ships,
src/facegate/engine/calibration/blazeface-dlib-box.json (with these figures in its ``fit``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from benchlib import RESULTS, ROOT, machine_info, write_results
from box_map import Array, _describe, _hog_descriptor, _pixels, iou, summary
from facegate.bias.datasets import load_fairface, load_lfw
from facegate.engine.blazeface import (
    BOX_MAP_FILE,
    BlazeFaceConfig,
    BlazeFaceDetector,
    as_five_points,
)
from facegate.engine.boxmap import BoxMap, box_map_document, fit_box_map
from facegate.engine.detect import DetectorConfig, HogDetector
from facegate.engine.models import load_models
from facegate.engine.runtime import make_onnx_embedder

MIN_IOU = 0.3
DATA = ROOT.parent / "shared" / "data"
SHIPPED = ROOT / "src" / "facegate" / "engine" / "calibration" / BOX_MAP_FILE

_state: dict[str, Any] = {}


def _init(models_dir: str | None) -> None:
    models = load_models()
    _state["hog"] = HogDetector(models, DetectorConfig())
    folder = Path(models_dir) if models_dir else None
    _state["blaze"] = BlazeFaceDetector(BlazeFaceConfig(models_dir=folder))


def _collect_one(path: str) -> list[float] | None:
    """(HOG x1, y1, x2, y2, then BlazeFace's overlapping row in the map's 15-column layout)."""
    pixels = _pixels(Path(path))
    hog = _state["hog"].detect(pixels)
    rows = as_five_points(_state["blaze"].detect_rows(pixels))
    if len(hog) != 1 or rows.shape[0] == 0:
        return None
    b = hog[0].box_px
    hog_box = np.array([[b.left, b.top, b.left + b.width, b.top + b.height]], dtype=np.float64)
    overlaps = iou(np.repeat(hog_box, rows.shape[0], axis=0), rows[:, :4])
    best = int(np.argmax(overlaps))
    if overlaps[best] < MIN_IOU:
        return None
    return [*hog_box[0].tolist(), *rows[best].tolist()]


def collect(
    label: str, paths: list[Path], workers: int, models_dir: str | None
) -> tuple[list[int], Array]:
    """Indices into ``paths`` of the faces kept, and their (n, 19) rows (cached)."""
    key = hashlib.sha256("\n".join(str(p) for p in paths).encode()).hexdigest()[:12]
    cache = RESULTS / "cache" / f"blazeface_box_map-{label}-{len(paths)}-{key}.npz"
    if cache.exists():
        data = np.load(cache)
        return [int(i) for i in data["index"]], np.asarray(data["rows"], dtype=np.float64)
    index: list[int] = []
    rows: list[list[float]] = []
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(models_dir,)) as pool:
        results = pool.map(_collect_one, [str(p) for p in paths], chunksize=16)
        for i, row in enumerate(tqdm(results, total=len(paths), desc=label, unit="img")):
            if row is not None:
                index.append(i)
                rows.append(row)
    out = np.asarray(rows, dtype=np.float64).reshape(-1, 19)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, index=np.asarray(index), rows=out)
    return index, out


def distances(
    paths: list[Path], rows: Array, box_map: BoxMap, faces: int
) -> dict[str, list[float]]:
    """Descriptor distances to the HOG path for the first ``faces`` rows."""
    models = load_models()
    embedder = make_onnx_embedder(models, threads=1, flip_tta=False)
    mapped = box_map.apply(rows[:, 4:])
    out: dict[str, list[float]] = {
        "BlazeFace box": [],
        "BlazeFace box, mapped": [],
        "HOG, image shifted 3 px": [],
    }
    for k in tqdm(range(min(faces, rows.shape[0])), desc="describe", unit="face"):
        pixels = _pixels(paths[k])
        ref = _describe(models, embedder, pixels, rows[k, :4])
        raw = _describe(models, embedder, pixels, rows[k, 4:8])
        out["BlazeFace box"].append(float(np.linalg.norm(ref - raw)))
        fitted = _describe(models, embedder, pixels, mapped[k])
        out["BlazeFace box, mapped"].append(float(np.linalg.norm(ref - fitted)))
        hog_ref = _hog_descriptor(models, embedder, pixels)
        shifted = _hog_descriptor(models, embedder, np.ascontiguousarray(pixels[3:, 3:]))
        if hog_ref is not None and shifted is not None:
            out["HOG, image shifted 3 px"].append(float(np.linalg.norm(hog_ref - shifted)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lfw-every", type=int, default=4, help="every Nth LFW image")
    parser.add_argument("--faces", type=int, default=800, help="LFW faces to describe")
    parser.add_argument("--models-dir", default=None, help="converted models (FACEGATE_MODELS_DIR)")
    parser.add_argument("--write", action="store_true", help=f"write {SHIPPED.name}")
    args = parser.parse_args()

    fairface = [s.path for s in load_fairface(DATA / "fairface_val").samples]
    lfw_manifest, _ = load_lfw(DATA / "lfw")
    lfw = [s.path for s in lfw_manifest.samples][:: args.lfw_every]
    ff_index, ff = collect("fairface", fairface, args.workers, args.models_dir)
    lfw_index, lfw_rows = collect("lfw", lfw, args.workers, args.models_dir)

    def ltwh(a: Array) -> Array:
        return np.column_stack([a[:, 0], a[:, 1], a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]])

    box_map = fit_box_map(ff[:, 4:], ltwh(ff[:, :4]), name="blazeface-dlib-box")
    fit_iou = iou(box_map.apply(ff[:, 4:]), ff[:, :4])
    raw_iou = iou(lfw_rows[:, 4:8], lfw_rows[:, :4])
    map_iou = iou(box_map.apply(lfw_rows[:, 4:]), lfw_rows[:, :4])
    dist = distances([lfw[i] for i in lfw_index], lfw_rows, box_map, args.faces)
    fit: dict[str, Any] = {
        "data": (
            f"fitted on the FairFace val crops where HOG (upsample 1) finds one face and "
            f"BlazeFace (engine thresholds) the same face (IoU >= {MIN_IOU}): {len(ff_index)} of "
            f"{len(fairface)}; checked on every {args.lfw_every}th LFW image, the same way: "
            f"{len(lfw_index)} of {len(lfw)}"
        ),
        "fit_iou_with_hog": {"BlazeFace box, mapped": summary(fit_iou.tolist())},
        "lfw_iou_with_hog": {
            "BlazeFace box": summary(raw_iou.tolist()),
            "BlazeFace box, mapped": summary(map_iou.tolist()),
        },
        "lfw_descriptor_distance_to_hog_path": {k: summary(v) for k, v in dist.items()},
        "command": "python bench/blazeface_box_map.py --write",
    }
    print(f"box map {box_map.version}: {fit['data']}")
    print(
        f"IoU with HOG's box, median: FairFace (fit) mapped {np.median(fit_iou):.3f}; LFW "
        f"(check) raw {np.median(raw_iou):.3f}, mapped {np.median(map_iou):.3f}"
    )
    print("\n| LFW: descriptor distance to the HOG path | n | median | p90 | p99 | max |")
    print("|---|---|---|---|---|---|")
    for name, values in dist.items():
        s = summary(values)
        print(
            f"| {name} | {s['n']} | {s['median']:.4f} | {s['p90']:.4f} | {s['p99']:.4f} "
            f"| {s['max']:.4f} |"
        )
    write_results(
        "blazeface_box_map", {"machine": machine_info(), "version": box_map.version, **fit}
    )
    if args.write:
        SHIPPED.write_text(json.dumps(box_map_document(box_map, fit), indent=2) + "\n")
        print(f"wrote {SHIPPED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
