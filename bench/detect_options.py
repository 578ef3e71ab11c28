"""Face detection options side by side: recall, false detections and time, in one run.

    .venv/bin/python bench/detect_options.py [--repeat 5] [--lfw 300] [--no-mmod] [--no-mtcnn]

Options (dlib's with score threshold 0.2 as the engine's default ``DetectorConfig``):

* HOG at the image's own size (upsample 0), and upsampled once by dlib (upsample 1, the engine's
  default for images up to 1 megapixel);
* HOG on the image enlarged by 1.25x, 1.5x and 1.75x with PIL (bilinear) and no upsampling: an
  image pyramid level between dlib's 1x and 2x, cheaper than 2x (cost grows with the area); boxes
  are mapped back to the original pixels;
* HOG on the image padded by 25% of its longer side on every side (edge pixels replicated), so
  a face that fills the frame gets the margin HOG's 80x80 window needs; boxes mapped back;
* HOG on the image shrunk to 0.5x (PIL bilinear), upsampled 0 or 1 times: cheap, big faces only;
* MTCNN (``engine.mtcnn``, onnxruntime, 1 thread) with minimum face 20 px (published default)
  and 40 px, and 40 px with its boxes mapped to HOG's geometry (``engine.boxmap``: the engine's
  first detector), with lower stage thresholds (0.5, 0.6, 0.6) or on the image padded by 25%
  (edge pixels replicated, for tight crops);
* MMOD (dlib's CNN, as the engine runs it), for reference: one run per image, not on LFW.

Ground truth, from ../shared/data/samples (see its MANIFEST.md):

* ``dlib_voc``: the images present with their boxes in training.xml/testing.xml; a box is found
  when a detection overlaps it with IoU >= 0.4; a detection overlapping no box is false;
* group photos with known face counts, scaled to 640 px wide as a search probe would be
  (group_t1: 6 faces of about 53 px; bbt/group_bbt1: 4) and two_people.jpg (2); detections beyond
  the count are false;
* images without a face (coffee.png, dlib_voc/dogs.jpg, no_face_white.png): every detection is
  false;
* time only, at 640x480: obama.jpg, group_t1.jpg and dlib_voc/dogs.jpg centre-cropped to 4:3 and
  resized to 640x480 (the "Currently HOG upsample 1 costs ~133 ms at 640x480" reference);
* with ``--lfw N``: the first N LFW images (sorted by name) from ../shared/data/lfw, 250x250, one
  subject each; found when a detection's centre is within 30 px of the image centre.

Time: median of ``--repeat`` runs per image (the options interleaved), averaged over each set's
images. Prints the machine and the load average before and after, and writes
bench/results/detect_options.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchlib import ROOT, SAMPLES, machine_info, write_results
from facegate.engine.boxmap import load_box_map
from facegate.engine.detect import DetectorConfig, MmodDetector
from facegate.engine.image import RGBImage
from facegate.engine.models import LoadedModels, load_models
from facegate.engine.mtcnn import MtcnnConfig, MtcnnDetector

Box = tuple[float, float, float, float]
"""left, top, width, height in pixels."""
Detect = Callable[[RGBImage], list[Box]]

THRESHOLD = DetectorConfig().score_threshold
IOU_MIN = 0.4
GROUPS = (("group_t1.jpg", 6), ("bbt/group_bbt1.jpg", 4), ("two_people.jpg", 2))
NO_FACE = ("coffee.png", "dlib_voc/dogs.jpg", "no_face_white.png")
FRAMES_640X480 = ("obama.jpg", "group_t1.jpg", "dlib_voc/dogs.jpg")
LFW_CENTRE_PX = 30.0


def rgb(path: Path, width: int | None = None) -> RGBImage:
    img = Image.open(path).convert("RGB")
    if width is not None and img.width != width:
        img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def pad_image(pixels: RGBImage, fraction: float, mode: str) -> tuple[RGBImage, int]:
    """The image with a border of ``fraction`` x its longer side on every side (``mode``:
    ``edge`` replicates the edge pixels, ``constant`` is black); returns (image, border px)."""
    border = round(fraction * max(pixels.shape[:2]))
    if border == 0:
        return pixels, 0
    padded = np.pad(pixels, ((border, border), (border, border), (0, 0)), mode=mode)  # type: ignore[call-overload]
    return np.ascontiguousarray(padded), border


def hog_option(
    models: LoadedModels, scale: float, upsample: int, pad: float = 0.0, pad_mode: str = "edge"
) -> Detect:
    """HOG on the image resized by ``scale`` (PIL bilinear), then padded by ``pad`` of its longer
    side on every side, and upsampled ``upsample`` times; boxes in the original pixels."""

    def detect(pixels: RGBImage) -> list[Box]:
        image = pixels
        if scale != 1.0:
            h, w = pixels.shape[:2]
            size = (round(w * scale), round(h * scale))
            image = np.asarray(
                Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR), dtype=np.uint8
            )
        image, border = pad_image(image, pad, pad_mode)
        rects, scores, _ = models.hog.run(image, upsample, THRESHOLD)
        return [
            (
                (r.left() - border) / scale,
                (r.top() - border) / scale,
                (r.right() + 1 - r.left()) / scale,
                (r.bottom() + 1 - r.top()) / scale,
            )
            for r, s in zip(rects, scores, strict=True)
            if float(s) >= THRESHOLD
        ]

    return detect


def mtcnn_option(config: MtcnnConfig) -> Detect:
    detector = MtcnnDetector(config)

    def detect(pixels: RGBImage) -> list[Box]:
        return [
            (d.box_px.left, d.box_px.top, d.box_px.width, d.box_px.height)
            for d in detector.detect(pixels)
        ]

    return detect


def mmod_option(models: LoadedModels) -> Detect:
    detector = MmodDetector(models, DetectorConfig())

    def detect(pixels: RGBImage) -> list[Box]:
        return [
            (d.box_px.left, d.box_px.top, d.box_px.width, d.box_px.height)
            for d in detector.detect(pixels)
        ]

    return detect


def iou(a: Box, b: Box) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    return inter / (aw * ah + bw * bh - inter)


@dataclass(frozen=True)
class Case:
    """One image and how to score what a detector returns on it: (found, expected, false)."""

    set_name: str
    name: str
    pixels: RGBImage
    score: Callable[[list[Box]], tuple[int, int, int]]


def box_score(truth: list[Box]) -> Callable[[list[Box]], tuple[int, int, int]]:
    def score(dets: list[Box]) -> tuple[int, int, int]:
        found = sum(1 for t in truth if any(iou(t, d) >= IOU_MIN for d in dets))
        false = sum(1 for d in dets if all(iou(t, d) < IOU_MIN for t in truth))
        return found, len(truth), false

    return score


def count_score(expected: int) -> Callable[[list[Box]], tuple[int, int, int]]:
    def score(dets: list[Box]) -> tuple[int, int, int]:
        return min(len(dets), expected), expected, max(0, len(dets) - expected)

    return score


def centre_score(width: int, height: int) -> Callable[[list[Box]], tuple[int, int, int]]:
    def score(dets: list[Box]) -> tuple[int, int, int]:
        near = any(
            np.hypot(x + w / 2 - width / 2, y + h / 2 - height / 2) <= LFW_CENTRE_PX
            for x, y, w, h in dets
        )
        return int(near), 1, 0

    return score


def voc_cases(folder: Path) -> list[Case]:
    boxes: dict[str, list[Box]] = {}
    for xml in ("training.xml", "testing.xml"):
        for image in ET.parse(folder / xml).getroot().iter("image"):
            name = image.attrib["file"]
            if (folder / name).is_file():
                boxes.setdefault(name, []).extend(
                    tuple(float(b.attrib[k]) for k in ("left", "top", "width", "height"))  # type: ignore[misc]
                    for b in image.iter("box")
                )
    return [
        Case("dlib_voc boxes", n, rgb(folder / n), box_score(b)) for n, b in sorted(boxes.items())
    ]


def frame_640x480(path: Path) -> RGBImage:
    """The image centre-cropped to 4:3 and resized to 640x480 (Lanczos)."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    cw, ch = (w, round(w * 3 / 4)) if w * 3 <= h * 4 else (round(h * 4 / 3), h)
    left, top = (w - cw) // 2, (h - ch) // 2
    img = img.crop((left, top, left + cw, top + ch)).resize((640, 480), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def time_only(dets: list[Box]) -> tuple[int, int, int]:
    return 0, 0, 0


def cases(samples: Path, lfw: Path, lfw_count: int) -> list[Case]:
    out = voc_cases(samples / "dlib_voc")
    for name, expected in GROUPS:
        out.append(Case("groups at 640 px", name, rgb(samples / name, 640), count_score(expected)))
    for name in NO_FACE:
        out.append(Case("no face", name, rgb(samples / name), count_score(0)))
    for name in FRAMES_640X480:
        out.append(Case("640x480 (time only)", name, frame_640x480(samples / name), time_only))
    if lfw_count:
        paths = sorted((lfw / "images").rglob("*.jpg"))[:lfw_count]
        for p in paths:
            pixels = rgb(p)
            h, w = pixels.shape[:2]
            out.append(Case(f"LFW first {lfw_count}", p.name, pixels, centre_score(w, h)))
    return out


def run(options: dict[str, Detect], all_cases: Sequence[Case], repeat: int) -> dict[str, Any]:
    """Per option and set: found, expected, false, the sum of per-image median seconds.

    Options are interleaved (for each image, each repeat runs every option in turn), so a change
    in the machine's load during the run affects all options alike. MMOD runs once per image and
    skips LFW (seconds per image; bench/lfw.py measures it there)."""
    result: dict[str, dict[str, dict[str, float]]] = {label: {} for label in options}
    last_set = ""
    for case in all_cases:
        if case.set_name != last_set:
            print(f"  measuring {case.set_name}", file=sys.stderr)
            last_set = case.set_name
        times: dict[str, list[float]] = {label: [] for label in options}
        dets: dict[str, list[Box]] = {}
        for run_index in range(repeat):
            for label, detect in options.items():
                mmod = label.startswith("MMOD")
                if mmod and (run_index > 0 or case.set_name.startswith("LFW")):
                    continue
                t0 = time.perf_counter()
                dets[label] = detect(case.pixels)
                times[label].append(time.perf_counter() - t0)
        for label in dets:
            found, expected, false = case.score(dets[label])
            s = result[label].setdefault(
                case.set_name, {"found": 0, "expected": 0, "false": 0, "seconds": 0.0, "images": 0}
            )
            s["found"] += found
            s["expected"] += expected
            s["false"] += false
            s["seconds"] += statistics.median(times[label])
            s["images"] += 1
    return dict(result)


def print_table(result: dict[str, Any]) -> None:
    set_names = list(next(iter(result.values())))
    for set_name in set_names:
        print(f"\n{set_name}")
        header = f"  {'option':<26} {'recall':>12} {'false':>6} {'ms/image':>9} {'vs up1':>7}"
        print(header)
        base = result["HOG upsample 1"][set_name]
        for label, sets in result.items():
            if set_name not in sets:
                continue
            s = sets[set_name]
            ms = 1000 * s["seconds"] / s["images"]
            recall = f"{int(s['found'])}/{int(s['expected'])}" if s["expected"] else "-"
            print(
                f"  {label:<26} {recall:>12} {int(s['false']):>6} {ms:9.1f} "
                f"{s['seconds'] / base['seconds']:7.2f}"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--lfw-data", type=Path, default=ROOT.parent / "shared" / "data" / "lfw")
    parser.add_argument("--lfw", type=int, default=300, help="LFW images (0: none)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per image and option")
    parser.add_argument("--no-mmod", action="store_true", help="skip MMOD (seconds per image)")
    parser.add_argument("--no-mtcnn", action="store_true", help="skip MTCNN")
    args = parser.parse_args(argv)
    before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info = machine_info()
    print(f"machine: {info['cpu']}, {info['cores']} cores; load average before: {before}")
    models = load_models()
    options: dict[str, Detect] = {
        "HOG upsample 0": hog_option(models, 1.0, 0),
        "HOG x1.25, upsample 0": hog_option(models, 1.25, 0),
        "HOG x1.5, upsample 0": hog_option(models, 1.5, 0),
        "HOG x1.75, upsample 0": hog_option(models, 1.75, 0),
        "HOG upsample 1": hog_option(models, 1.0, 1),
        "HOG pad 25% edge, up 0": hog_option(models, 1.0, 0, pad=0.25),
        "HOG x0.5, upsample 0": hog_option(models, 0.5, 0),
        "HOG x0.5, upsample 1": hog_option(models, 0.5, 1),
    }
    if not args.no_mtcnn:
        options["MTCNN min 20 px"] = mtcnn_option(MtcnnConfig(min_face_px=20))
        options["MTCNN min 40 px"] = mtcnn_option(MtcnnConfig(min_face_px=40))
        mapped = MtcnnConfig(min_face_px=40, box_map=load_box_map())
        options["MTCNN min 40, mapped boxes (default)"] = mtcnn_option(mapped)
        low = MtcnnConfig(min_face_px=40, thresholds=(0.5, 0.6, 0.6))
        options["MTCNN min 40, thr .5/.6/.6"] = mtcnn_option(low)
        padded = MtcnnConfig(min_face_px=40, pad_ratio=0.25)
        options["MTCNN min 40, pad 25%"] = mtcnn_option(padded)
    if not args.no_mmod:
        options["MMOD (engine settings)"] = mmod_option(models)
    all_cases = cases(args.samples, args.lfw_data, args.lfw)
    result = run(options, all_cases, args.repeat)
    after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average after: {after}; ms/image: mean of per-image medians of {args.repeat} runs")
    print_table(result)
    document = {
        "machine": info,
        "load_average_before": before,
        "load_average_after": after,
        "settings": {
            "repeat": args.repeat,
            "lfw": args.lfw,
            "mmod": not args.no_mmod,
            "mtcnn": not args.no_mtcnn,
        },
        "results": result,
    }
    print(f"\nwrote {write_results('detect_options', document)}")


if __name__ == "__main__":
    main()
