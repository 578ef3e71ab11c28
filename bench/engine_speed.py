"""Engine speed: the dlib and ONNX descriptor runtimes side by side, and (with
``--face-recognition``) per-stage medians, faces per second with 1 and 2 workers, peak memory, and
the ``face_recognition`` library (the same dlib models) doing the same work in the same run.

    .venv/bin/python bench/engine_speed.py [--repeat 7] [--rounds 3] [--images 24] [--quick]
    .venv/bin/pip install --no-deps face_recognition==1.3.0   # once; dlib-bin provides dlib
    .venv/bin/python bench/engine_speed.py --face-recognition  # also the baseline comparison

Always: the runtime comparison of ``bench/runtime_speed.py`` (dlib path vs fast path, as ratios:
descriptor time per face at batch 1/8/32 with 1 and 2 threads and with two processes, HOG
detection at 640x480 with and without upsampling, ``analyze`` per 640x480 image, images/s through a
pool of 2 workers). It prints the machine (CPU model from /proc/cpuinfo) and the load average
before and after, and writes bench/results/engine_speed_runtimes.json.

With ``--face-recognition``, on four test images built in memory from ``--samples`` (default
../shared/data/samples): one face (obama-1080p.jpg) and six faces (group_t1.jpg), each letterboxed
(grey bars, no face cropped away) to 640x480 and to 1920x1080 and JPEG-encoded:

* per-stage wall time, median of ``--repeat`` runs, in one process: decode, detect (HOG),
  landmarks (facegate: 68 + 5 points, pose, quality; face_recognition: ``face_landmarks``, 68
  points) and descriptor per face (facegate: aligned chip + ResNet; face_recognition:
  ``face_encodings``, which predicts its own 5 points first). Both libraries upsample exactly
  as facegate's detector does (once for images up to ``upsample_max_pixels``, 1 megapixel);
* faces per second for the full pipeline, median of ``--rounds`` runs of ``--images`` copies of
  each image: ``FaceEngine.analyze`` and face_recognition in this process (compared), and
  facegate's ``EnginePool`` with 1 and 2 worker processes (face_recognition has no pool);
* memory: the parent's RSS growth when each library loads its models, the parent's peak RSS
  (both libraries loaded), and each worker's peak RSS (``VmHWM`` in /proc/<pid>/status);
* agreement: faces found by each library and the largest descriptor difference for faces whose
  boxes match (0 means the same computation).

facegate and face_recognition runs are interleaved (alternating which goes first) so machine
noise affects both alike. The ratio column is facegate / face_recognition: below 1 means facegate
is faster for times, above 1 means facegate is faster for faces/s. facegate runs with its default
descriptor runtime (``auto``). Prints one table with the machine and writes
bench/results/engine_speed.json. ``--quick`` is a smoke run (2 repeats, 1 round of 4 images, 8
chips): its numbers are not for quoting.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import io
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import dlib
import numpy as np
from PIL import Image

import runtime_speed
from benchlib import SAMPLES, machine_info, machine_line, write_results
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.image import encode_jpeg
from facegate.engine.pool import EnginePool
from facegate.engine.types import BoxPx

INSTALL_HINT = ".venv/bin/pip install --no-deps face_recognition==1.3.0"
SIZES: tuple[tuple[int, int], ...] = ((640, 480), (1920, 1080))
SOURCES: tuple[tuple[str, str], ...] = (("obama-1080p.jpg", "1 face"), ("group_t1.jpg", "6 faces"))
STAGES: tuple[str, ...] = ("decode", "detect", "landmarks", "descriptor/face", "total")
POOLS: tuple[tuple[str, int], ...] = (("facegate, 1 worker", 1), ("facegate, 2 workers", 2))
CONFIGS: tuple[str, ...] = (
    "facegate, in process",
    "face_recognition",
    "facegate, 1 worker",
    "facegate, 2 workers",
)


# --- test images ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchImage:
    name: str
    data: bytes
    width_px: int
    height_px: int


def letterbox(img: Image.Image, width: int, height: int) -> Image.Image:
    """Pad with grey to the target aspect ratio, then resize: every face stays in the frame."""
    w, h = img.size
    if w * height < h * width:
        canvas = Image.new("RGB", (round(h * width / height), h), (128, 128, 128))
        canvas.paste(img, ((canvas.width - w) // 2, 0))
    else:
        canvas = Image.new("RGB", (w, round(w * height / width)), (128, 128, 128))
        canvas.paste(img, (0, (canvas.height - h) // 2))
    return canvas.resize((width, height), Image.Resampling.LANCZOS)


def build_images(samples: Path) -> list[BenchImage]:
    """The four test images, JPEG bytes (quality 92) built in memory."""
    out = []
    for (width, height), (filename, label) in ((s, f) for s in SIZES for f in SOURCES):
        source = Image.open(samples / filename).convert("RGB")
        pixels = np.asarray(letterbox(source, width, height), dtype=np.uint8)
        data = encode_jpeg(pixels, quality=92)
        out.append(BenchImage(f"{width}x{height}, {label}", data, width, height))
    return out


def upsample_for(image: BenchImage, config: EngineConfig) -> int:
    """How often facegate's HOG detector upsamples this image; face_recognition gets the same."""
    if max(image.width_px, image.height_px) > config.detector.detect_max_side_px:
        sys.exit(f"{image.name}: facegate would downscale it; the comparison would not be fair")
    return 1 if image.width_px * image.height_px <= config.detector.upsample_max_pixels else 0


# --- face_recognition -------------------------------------------------------------------------


def require_face_recognition() -> None:
    """Exit with the install command unless face_recognition and its models are installed."""
    for module in ("face_recognition", "face_recognition_models"):
        if importlib.util.find_spec(module) is None:
            sys.exit(f"{module} is not installed; install the baseline with: {INSTALL_HINT}")


def import_face_recognition() -> ModuleType:
    """Import the baseline, or exit with the install command."""
    try:
        import face_recognition
    except (ImportError, SystemExit) as exc:  # its api module calls quit() without the models
        sys.exit(f"face_recognition is not importable ({exc!r}); install it with: {INSTALL_HINT}")
    module: ModuleType = face_recognition
    return module


# --- one run of the stages --------------------------------------------------------------------


@dataclass(frozen=True)
class StageRun:
    """Seconds per stage for one image; ``descriptor_s`` covers all its faces."""

    decode_s: float
    detect_s: float
    landmarks_s: float
    descriptor_s: float
    total_s: float
    faces: int

    def value(self, stage: str) -> float:
        return {
            "decode": self.decode_s,
            "detect": self.detect_s,
            "landmarks": self.landmarks_s,
            "descriptor/face": self.descriptor_s / max(1, self.faces),
            "total": self.total_s,
        }[stage]


def facegate_run(engine: FaceEngine, data: bytes) -> StageRun:
    """decode -> detect (+ landmarks, pose, quality) -> describe, timed by the engine itself."""
    before = replace(engine.times)
    t0 = time.perf_counter()
    image = engine.decode(data)
    faces = engine.detect(image)
    engine.describe(image, faces)
    total = time.perf_counter() - t0
    after = engine.times
    return StageRun(
        decode_s=after.decode_s - before.decode_s,
        detect_s=after.detect_s - before.detect_s,
        landmarks_s=after.landmarks_s - before.landmarks_s,
        descriptor_s=after.descriptor_s - before.descriptor_s,
        total_s=total,
        faces=len(faces),
    )


def face_recognition_run(fr: ModuleType, data: bytes, upsample: int) -> StageRun:
    """The same work with face_recognition's public API (5-point alignment, its default)."""
    t0 = time.perf_counter()
    pixels = fr.load_image_file(io.BytesIO(data))
    t1 = time.perf_counter()
    boxes = fr.face_locations(pixels, number_of_times_to_upsample=upsample)
    t2 = time.perf_counter()
    fr.face_landmarks(pixels, boxes)
    t3 = time.perf_counter()
    fr.face_encodings(pixels, boxes, model="small")
    t4 = time.perf_counter()
    return StageRun(t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, len(boxes))


def paired_runs(
    engine: FaceEngine, fr: ModuleType, image: BenchImage, upsample: int, repeat: int
) -> tuple[list[StageRun], list[StageRun]]:
    """``repeat`` runs of each library on one image, interleaved, alternating which goes first."""
    ours: list[StageRun] = []
    theirs: list[StageRun] = []
    for i in range(repeat):
        if i % 2 == 0:
            ours.append(facegate_run(engine, image.data))
            theirs.append(face_recognition_run(fr, image.data, upsample))
        else:
            theirs.append(face_recognition_run(fr, image.data, upsample))
            ours.append(facegate_run(engine, image.data))
    return ours, theirs


def stage_medians(runs: Sequence[StageRun]) -> dict[str, float]:
    medians = {stage: statistics.median(r.value(stage) for r in runs) for stage in STAGES}
    medians["faces"] = statistics.median(r.faces for r in runs)
    return medians


# --- agreement --------------------------------------------------------------------------------


def agreement(
    engine: FaceEngine, fr: ModuleType, image: BenchImage, upsample: int
) -> dict[str, Any]:
    """Faces found by each library; max |difference| of descriptors for identical boxes."""
    ours = engine.analyze(image.data)
    pixels = fr.load_image_file(io.BytesIO(image.data))
    locations = fr.face_locations(pixels, number_of_times_to_upsample=upsample)
    encodings = fr.face_encodings(pixels, locations, model="small")
    theirs = {
        BoxPx(left=left, top=top, width=right - left + 1, height=bottom - top + 1): enc
        for (top, right, bottom, left), enc in zip(locations, encodings, strict=True)
    }
    diffs = [
        float(
            np.max(np.abs(np.asarray(f.descriptor, dtype=np.float64) - theirs[f.detected.box_px]))
        )
        for f in ours.faces
        if f.detected.box_px in theirs and f.descriptor is not None
    ]
    return {
        "facegate_faces": len(ours.faces),
        "face_recognition_faces": len(locations),
        "matched_boxes": len(diffs),
        "max_abs_descriptor_diff": max(diffs) if diffs else None,
    }


# --- throughput -------------------------------------------------------------------------------


def pool_rate(pool: EnginePool, image: BenchImage, images: int) -> float:
    """Faces per second for ``images`` copies of one image through the pool."""
    t0 = time.perf_counter()
    faces = 0
    for result in pool.map_analyze(image.data for _ in range(images)):
        if isinstance(result, Exception):
            raise result
        faces += len(result.faces)
    return faces / (time.perf_counter() - t0)


def face_recognition_rate(fr: ModuleType, data: bytes, upsample: int, images: int) -> float:
    """Faces per second for the same full pipeline with face_recognition, in this process."""
    t0 = time.perf_counter()
    faces = sum(face_recognition_run(fr, data, upsample).faces for _ in range(images))
    return faces / (time.perf_counter() - t0)


def engine_rate(engine: FaceEngine, data: bytes, images: int) -> float:
    """Faces per second for ``FaceEngine.analyze`` in this process (no pool, no pickling)."""
    t0 = time.perf_counter()
    faces = sum(len(engine.analyze(data).faces) for _ in range(images))
    return faces / (time.perf_counter() - t0)


def rate_functions(
    engine: FaceEngine,
    fr: ModuleType,
    pools: dict[str, EnginePool],
    upsamples: dict[str, int],
    count: int,
) -> dict[str, Callable[[BenchImage], float]]:
    """For each configuration in CONFIGS: image -> faces/s over ``count`` copies of it."""
    rates: dict[str, Callable[[BenchImage], float]] = {
        "facegate, in process": lambda img: engine_rate(engine, img.data, count),
        "face_recognition": lambda img: face_recognition_rate(
            fr, img.data, upsamples[img.name], count
        ),
    }
    for name, pool in pools.items():
        rates[name] = partial(pool_rate, pool, images=count)
    return rates


def throughput_rounds(
    rate_of: dict[str, Callable[[BenchImage], float]], images: Sequence[BenchImage], rounds: int
) -> dict[str, dict[str, list[float]]]:
    """faces/s per image and configuration, one value per round; order reversed every round."""
    rates: dict[str, dict[str, list[float]]] = {
        img.name: {c: [] for c in CONFIGS} for img in images
    }
    for r in range(rounds):
        for img in images:
            for config in CONFIGS if r % 2 == 0 else tuple(reversed(CONFIGS)):
                rates[img.name][config].append(rate_of[config](img))
    return rates


def warm_pool(pool: EnginePool, images: Sequence[BenchImage]) -> None:
    """Start the workers and give each image to every worker once (first calls are slower)."""
    pool.warm_up()
    for result in pool.map_analyze(img.data for img in images for _ in range(pool.workers)):
        if isinstance(result, Exception):
            raise result


# --- memory -----------------------------------------------------------------------------------


def status_mb(pid: int | str, field: str) -> float:
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_pids() -> set[int]:
    """Child processes of this one started by multiprocessing's spawn (the engine workers)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
        if int(ppid) == os.getpid() and b"spawn_main" in cmdline:
            pids.add(int(entry.name))
    return pids


def start_pools(
    stack: ExitStack, images: Sequence[BenchImage]
) -> tuple[dict[str, EnginePool], dict[str, list[int]]]:
    """Warm pools with 1 and 2 workers (closed by ``stack``) and the worker pids of each."""
    pools: dict[str, EnginePool] = {}
    pids: dict[str, list[int]] = {}
    for name, workers in POOLS:
        known = worker_pids()
        pool = stack.enter_context(EnginePool(EngineConfig(), workers=workers))
        warm_pool(pool, images)
        pools[name] = pool
        pids[name] = sorted(worker_pids() - known)
    return pools, pids


# --- report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    image: str
    measure: str
    facegate: float | None
    face_recognition: float | None = None
    digits: int = 1


def ratio(row: Row) -> float | None:
    if row.facegate is None or not row.face_recognition:
        return None
    return row.facegate / row.face_recognition


def num(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.{digits}f}"


def image_rows(
    name: str, upsample: int, stages: dict[str, dict[str, float]], rates: dict[str, float]
) -> Iterator[Row]:
    ours, theirs = stages["facegate"], stages["face_recognition"]
    labels = {
        "decode": "decode, ms",
        "detect": f"detect (upsample {upsample}), ms",
        "landmarks": "landmarks, ms",
        "descriptor/face": "descriptor, ms per face",
        "total": "total, ms",
    }
    for stage in STAGES:
        yield Row(name, labels[stage], 1000 * ours[stage], 1000 * theirs[stage])
    yield Row(name, "faces found", ours["faces"], theirs["faces"], digits=0)
    one, two = rates["facegate, 1 worker"], rates["facegate, 2 workers"]
    yield Row(
        name, "faces/s, in process", rates["facegate, in process"], rates["face_recognition"], 2
    )
    yield Row(name, "faces/s, pool of 1 worker", one, None, 2)
    yield Row(name, "faces/s, pool of 2 workers", two, None, 2)
    yield Row(name, "2 workers / 1 worker", two / one, None, 2)


def memory_rows(memory: dict[str, Any]) -> Iterator[Row]:
    name = "memory, MB"
    yield Row(
        name,
        "parent RSS added by models",
        memory["facegate_models_rss_mb"],
        memory["face_recognition_models_rss_mb"],
        0,
    )
    for pool, peaks in memory["worker_peak_rss_mb"].items():
        for i, peak in enumerate(peaks, start=1):
            label = f"worker {i}/{len(peaks)} peak RSS" if len(peaks) > 1 else "worker peak RSS"
            yield Row(name, f"{label} ({pool.split(', ')[1]})", peak, None, 0)


def print_table(rows: Sequence[Row]) -> None:
    header = f"{'image':<19} {'measure':<31} {'facegate':>9} {'face_rec':>9} {'fg/fr':>6}"
    print(header)
    print("-" * len(header))
    previous = ""
    for row in rows:
        image = row.image if row.image != previous else ""
        previous = row.image
        print(
            f"{image:<19} {row.measure:<31} {num(row.facegate, 9, row.digits)} "
            f"{num(row.face_recognition, 9, row.digits)} {num(ratio(row), 6, 2)}"
        )


# --- main -------------------------------------------------------------------------------------


@dataclass
class Measurements:
    """Everything one run measures (raw values; medians are taken when reporting)."""

    images: list[BenchImage]
    upsamples: dict[str, int]
    memory: dict[str, Any]
    agreement: dict[str, dict[str, Any]]
    runs: dict[str, tuple[list[StageRun], list[StageRun]]]
    rates: dict[str, dict[str, list[float]]]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--samples", type=Path, default=SAMPLES, help="sample images folder")
    parser.add_argument("--repeat", type=int, default=7, help="stage runs per image and library")
    parser.add_argument("--rounds", type=int, default=3, help="throughput runs per config")
    parser.add_argument("--images", type=int, default=24, help="images per throughput run")
    parser.add_argument(
        "--descriptor-repeat", type=int, default=5, help="descriptor runs per runtime and batch"
    )
    parser.add_argument("--chips", type=int, default=32, help="chips per descriptor run")
    parser.add_argument(
        "--face-recognition", action="store_true", help="also compare with face_recognition"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 repeats, 1 round of 4")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.rounds, args.images = 2, 1, 4
        args.descriptor_repeat, args.chips = 2, 8
    if min(args.repeat, args.rounds, args.images, args.descriptor_repeat, args.chips) < 1:
        parser.error("counts must be positive")
    return args


def rss_mb() -> float:
    return status_mb("self", "VmRSS")


def load_libraries(config: EngineConfig, memory: dict[str, Any]) -> tuple[FaceEngine, ModuleType]:
    """facegate's engine, then face_recognition (which loads its models on import)."""
    start = memory["parent_rss_before_models_mb"] = rss_mb()
    engine = FaceEngine(config)
    loaded = rss_mb()
    memory["facegate_models_rss_mb"] = loaded - start
    fr = import_face_recognition()  # HOG, 5 + 68 points, ResNet and also the MMOD CNN
    memory["face_recognition_models_rss_mb"] = rss_mb() - loaded
    return engine, fr


def measure(args: argparse.Namespace) -> Measurements:
    """Stage runs in this process, then throughput through warm pools; memory along the way."""
    config = EngineConfig()
    images = build_images(args.samples)
    up = {img.name: upsample_for(img, config) for img in images}
    memory: dict[str, Any] = {}
    engine, fr = load_libraries(config, memory)
    agree = {img.name: agreement(engine, fr, img, up[img.name]) for img in images}
    runs = {img.name: paired_runs(engine, fr, img, up[img.name], args.repeat) for img in images}
    memory["parent_peak_rss_mb"] = status_mb("self", "VmHWM")
    with ExitStack() as stack:
        pools, pids = start_pools(stack, images)
        rate_of = rate_functions(engine, fr, pools, up, args.images)
        rates = throughput_rounds(rate_of, images, args.rounds)
        memory["worker_peak_rss_mb"] = {
            name: [status_mb(pid, "VmHWM") for pid in pool_pids] for name, pool_pids in pids.items()
        }
    return Measurements(images, up, memory, agree, runs, rates)


def summarise(m: Measurements) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stage medians and faces/s medians, per image."""
    stages = {
        name: {"facegate": stage_medians(ours), "face_recognition": stage_medians(theirs)}
        for name, (ours, theirs) in m.runs.items()
    }
    rates = {
        name: {c: statistics.median(v) for c, v in per.items()} for name, per in m.rates.items()
    }
    return stages, rates


def machine() -> dict[str, str]:
    return machine_info() | {
        "dlib_lapack": str(getattr(dlib, "DLIB_USE_LAPACK", "unknown")),
        "numpy": np.__version__,
        "face_recognition": importlib.metadata.version("face_recognition"),
    }


def report(
    args: argparse.Namespace,
    m: Measurements,
    info: dict[str, str],
    stages: dict[str, Any],
    rates: dict[str, Any],
) -> None:
    """Print the machine, the table, and the agreement check."""
    print(
        f"{machine_line(info)}, LAPACK: {info['dlib_lapack']}; "
        f"numpy {info['numpy']}; face_recognition {info['face_recognition']}"
    )
    print(
        f"stage times: medians of {args.repeat} interleaved runs per image and library; faces/s: "
        f"median of {args.rounds} rounds x {args.images} images; fg/fr = facegate/face_recognition"
    )
    rows = [
        row
        for img in m.images
        for row in image_rows(img.name, m.upsamples[img.name], stages[img.name], rates[img.name])
    ]
    print_table([*rows, *memory_rows(m.memory)])
    print(
        f"parent peak RSS, both libraries loaded (in-process stage runs): "
        f"{m.memory['parent_peak_rss_mb']:.0f} MB"
    )
    for name, a in m.agreement.items():
        diff = a["max_abs_descriptor_diff"]
        print(
            f"agreement {name}: faces {a['facegate_faces']} vs {a['face_recognition_faces']}, "
            f"{a['matched_boxes']} identical boxes, max |descriptor difference| "
            f"{'-' if diff is None else f'{diff:.2g}'}"
        )


def document(
    args: argparse.Namespace,
    m: Measurements,
    info: dict[str, str],
    stages: dict[str, Any],
    rates: dict[str, Any],
) -> dict[str, Any]:
    """The JSON written to bench/results/engine_speed.json (medians and every raw value)."""
    return {
        "machine": info,
        "settings": {
            "repeat": args.repeat,
            "rounds": args.rounds,
            "images_per_round": args.images,
            "quick": args.quick,
        },
        "images": {
            img.name: {"jpeg_bytes": len(img.data), "upsample": m.upsamples[img.name]}
            for img in m.images
        },
        "stage_medians_s": stages,
        "faces_per_s_median": rates,
        "memory_mb": m.memory,
        "agreement": m.agreement,
        "stage_runs_s": {
            name: {"facegate": [asdict(r) for r in o], "face_recognition": [asdict(r) for r in t]}
            for name, (o, t) in m.runs.items()
        },
        "faces_per_s_runs": m.rates,
    }


def compare_runtimes(args: argparse.Namespace) -> None:
    """The dlib path and the ONNX path side by side; prints the table, writes the JSON."""
    before = runtime_speed.load_average()
    info = machine_info()
    del info["load_1m_at_end"]  # the load before and after are recorded below
    print(f"machine: {info['cpu']}, {info['cores']} cores; load average before: {before}")
    settings = runtime_speed.Settings(
        repeat=args.repeat,
        descriptor_repeat=args.descriptor_repeat,
        chips=args.chips,
        rounds=args.rounds,
        images=args.images,
    )
    measured = runtime_speed.measure(
        build_images(args.samples), settings, lambda line: print(line, file=sys.stderr)
    )
    after = runtime_speed.load_average()
    print(f"load average after: {after}")
    print(
        f"medians: descriptor {args.descriptor_repeat} runs of {args.chips} chips, detect and "
        f"analyse {args.repeat} runs, pool {args.rounds} rounds x {args.images} images; ratio = "
        "dlib/onnx for times, onnx/dlib for images/s (above 1: onnx is faster)"
    )
    rows = runtime_speed.lines(measured)
    runtime_speed.print_lines(rows)
    for line in runtime_speed.thread_lines(measured):
        print(line)
    document = {
        "machine": info | {"onnxruntime": importlib.metadata.version("onnxruntime")},
        "load_average_before": before,
        "load_average_after": after,
        "settings": asdict(settings) | {"quick": args.quick},
        "medians": [asdict(r) | {"ratio": r.ratio()} for r in rows],
        "raw": measured,
    }
    print(f"wrote {write_results('engine_speed_runtimes', document)}")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.face_recognition:
        require_face_recognition()
    compare_runtimes(args)
    if not args.face_recognition:
        return
    m = measure(args)
    stages, rates = summarise(m)
    info = machine()
    report(args, m, info, stages, rates)
    print(f"wrote {write_results('engine_speed', document(args, m, info, stages, rates))}")


if __name__ == "__main__":
    main()
