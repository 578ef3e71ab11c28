"""Engine speed: per-stage medians, faces per second with 1 and 2 workers, peak memory, and the
``face_recognition`` library (the same dlib models) doing the same work, side by side.

    .venv/bin/pip install --no-deps face_recognition==1.3.0   # once; dlib-bin provides dlib
    .venv/bin/python bench/engine_speed.py [--repeat 7] [--quick]

Test images are built from ../shared/data/samples: one face (obama-1080p.jpg) and six faces
(group_t1.jpg, padded to the aspect ratio) at 640x480 and 1920x1080, JPEG-encoded in memory.
Both libraries get the same upsampling (once for images up to 1 megapixel). Runs of the two
libraries are interleaved so machine noise hits both alike; medians are reported, with the ratio
face_recognition / facegate (above 1 means facegate is faster). Writes
bench/results/engine_speed.json.
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchlib import SAMPLES, machine_info, machine_line, write_results
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.image import decode_image, encode_jpeg
from facegate.engine.pool import EnginePool


def _fit(img: Image.Image, width: int, height: int) -> bytes:
    """Pad to the target aspect ratio (grey), then resize: no face is cropped away."""
    target = width / height
    w, h = img.size
    if w / h < target:
        canvas = Image.new("RGB", (round(h * target), h), (128, 128, 128))
        canvas.paste(img, ((canvas.width - w) // 2, 0))
    else:
        canvas = Image.new("RGB", (w, round(w / target)), (128, 128, 128))
        canvas.paste(img, (0, (canvas.height - h) // 2))
    resized = canvas.resize((width, height), Image.Resampling.LANCZOS)
    return encode_jpeg(np.asarray(resized, dtype=np.uint8), quality=92)


def test_images(samples: Path) -> dict[str, bytes]:
    one = Image.open(samples / "obama-1080p.jpg").convert("RGB")
    six = Image.open(samples / "group_t1.jpg").convert("RGB")
    return {
        "640x480, 1 face": _fit(one, 640, 480),
        "640x480, 6 faces": _fit(six, 640, 480),
        "1920x1080, 1 face": _fit(one, 1920, 1080),
        "1920x1080, 6 faces": _fit(six, 1920, 1080),
    }


def time_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def facegate_stages(engine: FaceEngine, data: bytes) -> dict[str, float]:
    t_decode, image = time_call(lambda: decode_image(data))
    before = (engine.times.detect_s, engine.times.landmarks_s)
    faces = engine.detect(image)
    t_detect = engine.times.detect_s - before[0]
    t_landmarks = engine.times.landmarks_s - before[1]
    t_desc, _ = time_call(lambda: engine.describe(image, faces))
    n = max(1, len(faces))
    return {
        "decode": t_decode,
        "detect": t_detect,
        "landmarks": t_landmarks,
        "descriptor/face": t_desc / n,
        "total": t_decode + t_detect + t_landmarks + t_desc,
        "faces": float(len(faces)),
    }


def face_recognition_stages(fr: Any, data: bytes) -> dict[str, float]:
    t_decode, pixels = time_call(lambda: fr.load_image_file(io.BytesIO(data)))
    upsample = 1 if pixels.shape[0] * pixels.shape[1] <= 1_000_000 else 0
    t_detect, boxes = time_call(
        lambda: fr.face_locations(pixels, number_of_times_to_upsample=upsample)
    )
    t_landmarks, _ = time_call(lambda: fr.face_landmarks(pixels, boxes))
    t_desc, _ = time_call(lambda: fr.face_encodings(pixels, boxes, model="small"))
    n = max(1, len(boxes))
    return {
        "decode": t_decode,
        "detect": t_detect,
        "landmarks": t_landmarks,
        "descriptor/face": t_desc / n,
        "total": t_decode + t_detect + t_landmarks + t_desc,
        "faces": float(len(boxes)),
    }


def throughput(data: bytes, workers: int, images: int) -> dict[str, float]:
    with EnginePool(EngineConfig(), workers=workers) as pool:
        pool.warm_up()
        t0 = time.perf_counter()
        faces = 0
        for result in pool.map_analyze(data for _ in range(images)):
            assert not isinstance(result, Exception)
            faces += len(result.faces)
        elapsed = time.perf_counter() - t0
    return {"images_per_s": images / elapsed, "faces_per_s": faces / elapsed}


def face_recognition_throughput(fr: Any, data: bytes, images: int) -> dict[str, float]:
    t0 = time.perf_counter()
    faces = 0
    for _ in range(images):
        pixels = fr.load_image_file(io.BytesIO(data))
        upsample = 1 if pixels.shape[0] * pixels.shape[1] <= 1_000_000 else 0
        boxes = fr.face_locations(pixels, number_of_times_to_upsample=upsample)
        faces += len(fr.face_encodings(pixels, boxes, model="small"))
    elapsed = time.perf_counter() - t0
    return {"images_per_s": images / elapsed, "faces_per_s": faces / elapsed}


def median_table(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--images", type=int, default=40, help="images per throughput run")
    parser.add_argument("--quick", action="store_true", help="2 repeats, 8 images")
    args = parser.parse_args()
    repeat, count = (2, 8) if args.quick else (args.repeat, args.images)
    try:
        import face_recognition as fr
    except ImportError:
        sys.exit(
            "install the baseline first: .venv/bin/pip install --no-deps face_recognition==1.3.0"
        )
    images = test_images(args.samples)
    engine = FaceEngine(EngineConfig())
    for data in images.values():  # warm caches and lazy loads of both libraries
        facegate_stages(engine, data)
        face_recognition_stages(fr, data)
    stages: dict[str, dict[str, dict[str, float]]] = {}
    for name, data in images.items():
        ours, theirs = [], []
        for _ in range(repeat):
            ours.append(facegate_stages(engine, data))
            theirs.append(face_recognition_stages(fr, data))
        stages[name] = {"facegate": median_table(ours), "face_recognition": median_table(theirs)}
    single = images["640x480, 1 face"]
    rates = {
        "facegate, 1 worker": throughput(single, 1, count),
        "facegate, 2 workers": throughput(single, 2, count),
        "face_recognition, 1 process": face_recognition_throughput(fr, single, count),
    }
    memory = {
        "parent_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "largest_worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    info = machine_info()
    print(f"{machine_line(info)}; medians of {repeat} runs, ms")
    header = f"{'image':<20} {'stage':<16} {'facegate':>9} {'face_rec.':>9} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for name, both in stages.items():
        for stage in ("decode", "detect", "landmarks", "descriptor/face", "total"):
            a, b = both["facegate"][stage], both["face_recognition"][stage]
            print(f"{name:<20} {stage:<16} {1000 * a:9.1f} {1000 * b:9.1f} {b / a:6.2f}")
        print(
            f"{'':<20} {'faces found':<16} {both['facegate']['faces']:9.0f} "
            f"{both['face_recognition']['faces']:9.0f}"
        )
    print()
    print(f"throughput on '640x480, 1 face' ({count} images per run, full pipeline):")
    for label, r in rates.items():
        print(f"  {label:<30} {r['images_per_s']:6.2f} images/s  {r['faces_per_s']:6.2f} faces/s")
    two, one = rates["facegate, 2 workers"], rates["facegate, 1 worker"]
    print(f"  2 workers / 1 worker: {two['faces_per_s'] / one['faces_per_s']:.2f}x")
    print(
        f"peak RSS: parent {memory['parent_peak_rss_mb']:.0f} MB (with both libraries loaded), "
        f"largest worker {memory['largest_worker_peak_rss_mb']:.0f} MB"
    )
    document = {
        "machine": info,
        "repeat": repeat,
        "stages_s": stages,
        "throughput": rates,
        "memory": memory,
    }
    write_results("engine_speed", document)


if __name__ == "__main__":
    main()
