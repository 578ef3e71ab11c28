"""Fit and measure the map from MTCNN's boxes to dlib HOG's (``facegate.engine.boxmap``).

    .venv/bin/python bench/box_map.py [--workers 2] [--faces 800] [--write]

1. On every FairFace val crop (../shared/data/fairface_val), runs dlib's HOG detector (the
   engine's settings: upsample 1 at this size, score >= 0.2) and MTCNN (40 px minimum face, its
   five landmarks). A face enters the data when HOG finds exactly one face and MTCNN's best box
   overlaps it (IoU >= 0.3): the same face, seen by both. Cached under bench/results/cache/.
2. Splits the faces by a salted hash of the image name (``facegate.bias.calibration.split_keys``,
   salt ``facegate-boxmap-v1``): the map is fitted on one half, measured on the other.
3. On ``--faces`` held-out faces, the descriptor (ONNX runtime, the engine's chip) of the HOG box
   against: MTCNN's raw box, the mapped box, and, as the noise floor, HOG on the same crop
   shifted by 3 px and rescaled by 5% (how far HOG moves from itself). Prints the distance
   distribution and box IoU for each, and writes bench/results/box_map.json.

``--write`` also writes the fitted map to src/facegate/engine/calibration/mtcnn-dlib-box.json
(with these measurements in its ``fit`` section): the file the engine ships.
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
import numpy.typing as npt
from PIL import Image
from tqdm import tqdm

from benchlib import RESULTS, ROOT, machine_info, write_results
from facegate.bias.calibration import split_keys
from facegate.bias.datasets import load_fairface
from facegate.engine.align import face_chip
from facegate.engine.boxmap import BOX_MAP_FILE, BoxMap, box_map_document, fit_box_map
from facegate.engine.detect import DetectorConfig, HogDetector
from facegate.engine.embed import Embedder
from facegate.engine.landmarks import shape_points
from facegate.engine.models import LoadedModels, load_models
from facegate.engine.mtcnn import MtcnnConfig, MtcnnDetector
from facegate.engine.runtime import make_onnx_embedder
from facegate.engine.types import BoxPx

SALT = "facegate-boxmap-v1"
MIN_IOU = 0.3
FAIRFACE = ROOT.parent / "shared" / "data" / "fairface_val"
SHIPPED = ROOT / "src" / "facegate" / "engine" / "calibration" / BOX_MAP_FILE

Array = npt.NDArray[np.float64]


def iou(a: Array, b: Array) -> Array:
    """Row-wise IoU of (x1, y1, x2, y2) boxes."""
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return np.asarray(inter / (area_a + area_b - inter), dtype=np.float64)


_state: dict[str, Any] = {}


def _init() -> None:
    models = load_models()
    _state["models"] = models
    _state["hog"] = HogDetector(models, DetectorConfig())
    _state["mtcnn"] = MtcnnDetector(MtcnnConfig(min_face_px=40))


def _pixels(path: Path) -> npt.NDArray[np.uint8]:
    with Image.open(path) as img:
        return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def _collect_one(path: str) -> list[float] | None:
    """(HOG x1, y1, x2, y2, then MTCNN's best row of 15) when both see the same one face."""
    pixels = _pixels(Path(path))
    hog = _state["hog"].detect(pixels)
    rows = _state["mtcnn"].detect_boxes(pixels)
    if len(hog) != 1 or rows.shape[0] == 0:
        return None
    b = hog[0].box_px
    hog_box = np.array([[b.left, b.top, b.left + b.width, b.top + b.height]], dtype=np.float64)
    overlaps = iou(np.repeat(hog_box, rows.shape[0], axis=0), rows[:, :4])
    best = int(np.argmax(overlaps))
    if overlaps[best] < MIN_IOU:
        return None
    return [*hog_box[0].tolist(), *rows[best, :15].tolist()]


def collect(paths: list[Path], workers: int) -> tuple[list[int], Array]:
    """Indices into ``paths`` of the faces kept, and their (n, 19) rows (cached)."""
    key = hashlib.sha256("\n".join(p.name for p in paths).encode()).hexdigest()[:12]
    cache = RESULTS / "cache" / f"box_map-{len(paths)}-{key}.npz"
    if cache.exists():
        data = np.load(cache)
        return [int(i) for i in data["index"]], np.asarray(data["rows"], dtype=np.float64)
    index: list[int] = []
    rows: list[list[float]] = []
    with ProcessPoolExecutor(workers, initializer=_init) as pool:
        results = pool.map(_collect_one, [str(p) for p in paths], chunksize=16)
        for i, row in enumerate(tqdm(results, total=len(paths), desc="detect", unit="img")):
            if row is not None:
                index.append(i)
                rows.append(row)
    out = np.asarray(rows, dtype=np.float64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, index=np.asarray(index), rows=out)
    return index, out


def _describe(models: LoadedModels, embedder: Embedder, pixels: Any, box: Array) -> Array:
    x1, y1, x2, y2 = (float(v) for v in box)
    b = BoxPx(left=round(x1), top=round(y1), width=round(x2 - x1), height=round(y2 - y1))
    _, points = shape_points(models.shape_5, pixels, b)
    chip = face_chip(pixels, b, [(float(x), float(y)) for x, y in points])
    return np.asarray(embedder.embed([chip])[0], dtype=np.float64)


def _hog_descriptor(models: LoadedModels, embedder: Embedder, pixels: Any) -> Array | None:
    found = HogDetector(models, DetectorConfig()).detect(pixels)
    if len(found) != 1:
        return None
    b = found[0].box_px
    box = np.array([b.left, b.top, b.left + b.width, b.top + b.height], dtype=np.float64)
    return _describe(models, embedder, pixels, box)


def distances(
    paths: list[Path], rows: Array, box_map: BoxMap, faces: int
) -> dict[str, list[float]]:
    """Descriptor distances to the HOG path for the first ``faces`` rows (see the docstring)."""
    models = load_models()
    embedder = make_onnx_embedder(models, threads=1, flip_tta=False)
    mapped = box_map.apply(rows[:, 4:])
    out: dict[str, list[float]] = {
        "MTCNN box": [],
        "MTCNN box, mapped": [],
        "HOG, crop shifted 3 px": [],
        "HOG, crop rescaled x1.05": [],
    }
    for k in tqdm(range(min(faces, rows.shape[0])), desc="describe", unit="face"):
        pixels = _pixels(paths[k])
        ref = _describe(models, embedder, pixels, rows[k, :4])
        out["MTCNN box"].append(
            float(np.linalg.norm(ref - _describe(models, embedder, pixels, rows[k, 4:8])))
        )
        out["MTCNN box, mapped"].append(
            float(np.linalg.norm(ref - _describe(models, embedder, pixels, mapped[k])))
        )
        hog_ref = _hog_descriptor(models, embedder, pixels)
        shifted = _hog_descriptor(models, embedder, np.ascontiguousarray(pixels[3:, 3:]))
        height, width = pixels.shape[:2]
        scaled = np.asarray(
            Image.fromarray(pixels).resize(
                (round(width * 1.05), round(height * 1.05)), Image.Resampling.BILINEAR
            ),
            dtype=np.uint8,
        )
        rescaled = _hog_descriptor(models, embedder, scaled)
        if hog_ref is not None and shifted is not None:
            out["HOG, crop shifted 3 px"].append(float(np.linalg.norm(hog_ref - shifted)))
        if hog_ref is not None and rescaled is not None:
            out["HOG, crop rescaled x1.05"].append(float(np.linalg.norm(hog_ref - rescaled)))
    return out


def summary(values: list[float]) -> dict[str, float]:
    p = np.percentile(values, [50, 90, 99, 100]) if values else [float("nan")] * 4
    return {
        "n": len(values),
        "median": float(p[0]),
        "p90": float(p[1]),
        "p99": float(p[2]),
        "max": float(p[3]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--faces", type=int, default=800, help="held-out faces to describe")
    parser.add_argument("--write", action="store_true", help=f"write {SHIPPED.name}")
    args = parser.parse_args()

    manifest = load_fairface(FAIRFACE)
    paths = [s.path for s in manifest.samples]
    index, data = collect(paths, args.workers)
    names = [paths[i].name for i in index]
    fit_mask = split_keys(names, SALT)
    hog = data[:, :4]
    rows = data[:, 4:]
    hog_ltwh = np.column_stack([hog[:, 0], hog[:, 1], hog[:, 2] - hog[:, 0], hog[:, 3] - hog[:, 1]])
    box_map = fit_box_map(rows[fit_mask], hog_ltwh[fit_mask])

    held = ~fit_mask
    held_paths = [paths[i] for i, h in zip(index, held, strict=True) if h]
    raw_iou = iou(rows[held, :4], hog[held])
    map_iou = iou(box_map.apply(rows[held]), hog[held])
    dist = distances(held_paths, data[held], box_map, args.faces)
    fit: dict[str, Any] = {
        "data": (
            f"FairFace val crops where HOG (upsample 1) finds one face and MTCNN (min 40 px) the "
            f"same face (IoU >= {MIN_IOU}): {len(index)} of {len(paths)}; fitted on "
            f"{int(fit_mask.sum())} (split_keys salt {SALT}), measured on {int(held.sum())}"
        ),
        "held_out_iou_with_hog": {
            "MTCNN box": summary(raw_iou.tolist()),
            "MTCNN box, mapped": summary(map_iou.tolist()),
        },
        "held_out_descriptor_distance_to_hog_path": {k: summary(v) for k, v in dist.items()},
        "command": "python bench/box_map.py --write",
    }
    print(f"box map {box_map.version}: {fit['data']}")
    print(
        f"IoU with HOG's box, median: raw {np.median(raw_iou):.3f}, mapped {np.median(map_iou):.3f}"
    )
    print("\n| descriptor distance to the HOG path | n | median | p90 | p99 | max |")
    print("|---|---|---|---|---|---|")
    for name, values in dist.items():
        s = summary(values)
        print(
            f"| {name} | {s['n']} | {s['median']:.4f} | {s['p90']:.4f} | {s['p99']:.4f} "
            f"| {s['max']:.4f} |"
        )
    write_results("box_map", {"machine": machine_info(), "version": box_map.version, **fit})
    if args.write:
        SHIPPED.write_text(json.dumps(box_map_document(box_map, fit), indent=2) + "\n")
        print(f"wrote {SHIPPED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
