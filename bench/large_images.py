"""Large images: what decoding them reduced (``engine.image``, above ``work_pixels``) costs and
changes, one run, in process (one ``FaceEngine``).

Inputs: real photos from ../shared/data/samples enlarged (Lanczos) to 6.7-16.6 MP and saved as
JPEG (quality 92): the samples hold no photo above 3.3 MP, and an enlarged photo has a known
answer, the same faces as the photo at its own size. Plus the issue's attack image, a 6324x6324
16-bit grey PNG (generated here). For each: median decode and analyze (decode, detect, describe)
seconds over ``--repeat`` runs, the faces found at the large and at the photo's own size, the
mean IoU of their BoundingBox ratios (faces paired by best IoU) and the median descriptor
distance between the pairs. Run it against the code before the fix too
(``PYTHONPATH=<old checkout>/src``; ``--tag before``). Writes bench/results/large_images.json.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchlib import SAMPLES, cell, machine_info, machine_line, write_results
from engine_fairness import attack_png
from facegate.engine.core import FaceEngine
from facegate.engine.image import decode_image
from facegate.engine.types import Analysis

PHOTOS: tuple[tuple[str, float], ...] = (
    ("two_people.jpg", 3.0),
    ("group_t1.jpg", 3.0),
    ("obama3.jpg", 2.0),
    ("obama.jpg", 4.0),
)


def enlarged(path: Path, factor: float) -> bytes:
    with Image.open(path) as img:
        source = img.convert("RGB")
    size = (round(source.width * factor), round(source.height * factor))
    buf = io.BytesIO()
    source.resize(size, Image.Resampling.LANCZOS).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _iou(a: Any, b: Any) -> float:
    x0, y0 = max(a.left, b.left), max(a.top, b.top)
    x1 = min(a.left + a.width, b.left + b.width)
    y1 = min(a.top + a.height, b.top + b.height)
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def compare(large: Analysis, small: Analysis) -> tuple[float | None, float | None]:
    """Mean IoU of the small image's faces with their best match in the large one, and the
    median descriptor distance of those pairs."""
    ious, distances = [], []
    for face in small.faces:
        if not large.faces:
            break
        twin = max(large.faces, key=lambda f: _iou(f.detected.box_ratio, face.detected.box_ratio))
        ious.append(_iou(twin.detected.box_ratio, face.detected.box_ratio))
        if twin.descriptor is not None and face.descriptor is not None:
            distances.append(float(np.linalg.norm(twin.descriptor - face.descriptor)))
    return (
        statistics.fmean(ious) if ious else None,
        statistics.median(distances) if distances else None,
    )


def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    engine = FaceEngine()
    engine.analyze((SAMPLES / "obama.jpg").read_bytes())  # load and warm every stage
    inputs: list[tuple[str, bytes, Path | None]] = [
        (f"{name} x{factor:g}", enlarged(SAMPLES / name, factor), SAMPLES / name)
        for name, factor in PHOTOS
    ]
    inputs.append(("16-bit grey PNG 6324x6324", attack_png(), None))
    print(
        f"{'image':<26} {'MP':>5} {'work MP':>7} {'decode s':>8} {'analyze s':>9} "
        f"{'faces':>5} {'own':>4} {'IoU':>5} {'dist':>5}"
    )
    rows = []
    for label, data, own in inputs:
        decode_s, image = timed(lambda d=data: decode_image(d), args.repeat)
        analyze_s, large = timed(lambda d=data: engine.analyze(d), args.repeat)
        small = engine.analyze(own.read_bytes()) if own is not None else None
        iou, dist = compare(large, small) if small is not None else (None, None)
        mp = large.width_px * large.height_px / 1e6
        work_mp = image.pixels.shape[0] * image.pixels.shape[1] / 1e6
        print(
            f"{label:<26} {cell(mp, 5, 1)} {cell(work_mp, 7, 1)} {cell(decode_s, 8, 2)} "
            f"{cell(analyze_s, 9, 2)} {len(large.faces):>5} "
            f"{(len(small.faces) if small else '-'):>4} {cell(iou, 5, 2)} {cell(dist, 5, 3)}"
        )
        rows.append(
            {
                "image": label,
                "megapixels": mp,
                "work_megapixels": work_mp,
                "decode_s": decode_s,
                "analyze_s": analyze_s,
                "faces": len(large.faces),
                "faces_at_own_size": len(small.faces) if small else None,
                "mean_iou": iou,
                "median_descriptor_distance": dist,
            }
        )
    info = machine_info()
    print(machine_line(info))
    name = "large_images" + (f"_{args.tag}" if args.tag else "")
    print(f"wrote {write_results(name, {'machine': info, 'rows': rows})}")


if __name__ == "__main__":
    main()
