"""The dlib path and the fast path side by side, measured in one run (``engine_speed.py``).

The dlib path is the engine before the fast path: dlib's descriptor and HOG (upsampled once at
640x480) first in the detector chain (``detect.HOG_FIRST``, ``FACEGATE_DESCRIPTOR_RUNTIME=dlib
FACEGATE_DETECTOR=hog``). The fast path is the default: the ONNX export of the same descriptor
network and MTCNN first, its boxes mapped to HOG's geometry (``engine.boxmap``).

Measures, interleaving the two paths (alternating which goes first) so machine noise hits both:

* descriptor time per face on aligned chips of real faces, batch 1/8/32: dlib-bin (single-
  threaded; its "2 threads" row repeats its 1-thread figure, it cannot use a second one) and
  onnxruntime with 1 and 2 intra-op threads; and with both cores busy the way the pool uses them
  (two processes, one thread each, each describing its own batches at the same time);
* detection at 640x480: HOG upsample 1 (the dlib path's first detector; upsample 0 is printed
  for reference) against MTCNN with mapped boxes (the fast path's), on one thread each;
* end-to-end ``FaceEngine.analyze`` per 640x480 image (decode, detect, landmarks, descriptor)
  in this process, and images/s through an ``EnginePool`` of 2 workers (IndexFaces' engine work),
  also with 2 onnxruntime threads per worker (what a second thread buys when both cores already
  run a worker).

Ratios are dlib path / fast path for times (above 1: the fast path is faster) and fast / dlib for
rates.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol

from facegate.engine.align import face_chip
from facegate.engine.core import DescriptorRuntime, EngineConfig, FaceEngine
from facegate.engine.detect import HOG_FIRST, Detector, DetectorConfig, HogDetector, make_detector
from facegate.engine.embed import DlibEmbedder, Embedder
from facegate.engine.image import RGBImage
from facegate.engine.models import LoadedModels, load_models
from facegate.engine.onnx_embed import OnnxEmbedder
from facegate.engine.pool import EnginePool
from facegate.engine.runtime import choose_embedder

BATCHES: tuple[int, ...] = (1, 8, 32)
THREADS: tuple[int, ...] = (1, 2)
DLIB, ONNX = DescriptorRuntime.DLIB, DescriptorRuntime.ONNX


class SpeedImage(Protocol):
    """A test image as ``engine_speed.build_images`` makes it: JPEG bytes and their size."""

    @property
    def name(self) -> str: ...

    @property
    def data(self) -> bytes: ...

    @property
    def width_px(self) -> int: ...


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def median_ms(values: Sequence[float]) -> float:
    return 1000 * statistics.median(values)


# --- descriptor ---------------------------------------------------------------------------------


def bench_chips(engine: FaceEngine, images: Sequence[SpeedImage], count: int) -> list[RGBImage]:
    """Aligned chips of every face in ``images``, repeated to ``count`` chips."""
    chips: list[RGBImage] = []
    for img in images:
        decoded = engine.decode(img.data)
        chips += [face_chip(decoded.pixels, f.box_px, f.points5_px) for f in engine.detect(decoded)]
    if not chips:
        raise SystemExit("no face found in the benchmark images")
    return [chips[i % len(chips)] for i in range(count)]


def seconds_per_face(embedder: Embedder, chips: Sequence[RGBImage], batch: int) -> float:
    """Describe ``chips`` in batches of ``batch``; wall seconds per face."""
    t0 = time.perf_counter()
    for start in range(0, len(chips), batch):
        embedder.embed(chips[start : start + batch])
    return (time.perf_counter() - t0) / len(chips)


def descriptor_runs(
    models: LoadedModels, chips: Sequence[RGBImage], repeat: int
) -> dict[str, list[float]]:
    """Seconds per face, ``repeat`` values per "runtime/threads/batch" key, interleaved."""
    embedders: dict[tuple[DescriptorRuntime, int], Embedder] = {
        (DLIB, 1): DlibEmbedder(models.descriptor)
    }
    for threads in THREADS:
        embedders[(ONNX, threads)] = OnnxEmbedder.from_model_files(
            models.files, intra_op_threads=threads
        )
    for embedder in embedders.values():
        embedder.embed(chips[:2])  # first calls allocate
    runs: dict[str, list[float]] = {}
    for r in range(repeat):
        order = list(embedders.items())
        for batch in BATCHES:
            for (runtime, threads), embedder in order if r % 2 == 0 else reversed(order):
                key = f"{runtime.value}/{threads}/{batch}"
                runs.setdefault(key, []).append(seconds_per_face(embedder, chips, batch))
    return runs


# Per-process state of a descriptor worker (the exception engine/pool.py documents).
_WORKER_EMBEDDER: list[Embedder] = []


def _init_descriptor_worker(runtime: DescriptorRuntime) -> None:
    embedder, _ = choose_embedder(runtime, load_models(), threads=1, flip_tta=False)
    _WORKER_EMBEDDER.append(embedder)


def _describe_in_worker(chips: list[RGBImage], batch: int) -> int:
    seconds_per_face(_WORKER_EMBEDDER[0], chips, batch)
    return os.getpid()


def two_process_runs(
    chips: Sequence[RGBImage], repeat: int, batch: int = 8
) -> dict[str, list[float]]:
    """Seconds per face with two processes (one thread each) describing at the same time: the
    wall time for both to finish their ``chips`` divided by all faces described."""
    context = multiprocessing.get_context("spawn")
    executors = {
        runtime: ProcessPoolExecutor(
            2, mp_context=context, initializer=_init_descriptor_worker, initargs=(runtime,)
        )
        for runtime in (DLIB, ONNX)
    }
    try:
        for executor in executors.values():  # start both workers and warm them
            warm = [executor.submit(_describe_in_worker, list(chips[:2]), 2) for _ in range(4)]
            for f in warm:
                f.result()
        runs: dict[str, list[float]] = {}
        for r in range(repeat):
            order = list(executors.items())
            for runtime, executor in order if r % 2 == 0 else reversed(order):
                t0 = time.perf_counter()
                futures = [
                    executor.submit(_describe_in_worker, list(chips), batch) for _ in range(2)
                ]
                for f in futures:
                    f.result()
                wall = time.perf_counter() - t0
                runs.setdefault(f"{runtime.value}/2proc/{batch}", []).append(
                    wall / (2 * len(chips))
                )
        return runs
    finally:
        for executor in executors.values():
            executor.shutdown(wait=True, cancel_futures=True)


# --- detection ----------------------------------------------------------------------------------


def detection_runs(
    engine: FaceEngine, images: Sequence[SpeedImage], repeat: int
) -> dict[str, dict[str, Any]]:
    """Seconds and faces found per detector (HOG never and always upsampled, and the default
    engine's MTCNN with mapped boxes) at the images' own size, interleaved."""
    never = replace(HOG_FIRST, upsample_max_pixels=0)
    always = replace(HOG_FIRST, upsample_max_pixels=10**9)
    detectors: dict[str, Detector] = {
        "HOG upsample 0": HogDetector(engine.models, never),
        "HOG upsample 1": HogDetector(engine.models, always),
        "MTCNN, mapped boxes": make_detector(engine.models, DetectorConfig()),
    }
    out: dict[str, dict[str, Any]] = {}
    for img in images:
        pixels = engine.decode(img.data).pixels
        found = {label: len(d.detect(pixels)) for label, d in detectors.items()}
        times: dict[str, list[float]] = {label: [] for label in detectors}
        for i in range(repeat):
            order = list(detectors.items())
            for label, detector in order if i % 2 == 0 else reversed(order):
                t0 = time.perf_counter()
                detector.detect(pixels)
                times[label].append(time.perf_counter() - t0)
        for label in detectors:
            out[f"{img.name}, {label}"] = {"faces": found[label], "runs_s": times[label]}
    return out


# --- end to end ---------------------------------------------------------------------------------


def analyse_runs(
    engines: dict[DescriptorRuntime, FaceEngine], images: Sequence[SpeedImage], repeat: int
) -> dict[str, dict[str, list[float]]]:
    """Seconds per ``FaceEngine.analyze`` for each image and runtime, interleaved."""
    out: dict[str, dict[str, list[float]]] = {}
    for img in images:
        per: dict[str, list[float]] = {r.value: [] for r in engines}
        for engine in engines.values():
            engine.analyze(img.data)  # warm
        for i in range(repeat):
            order = list(engines.items())
            for runtime, engine in order if i % 2 == 0 else reversed(order):
                t0 = time.perf_counter()
                engine.analyze(img.data)
                per[runtime.value].append(time.perf_counter() - t0)
        out[img.name] = per
    return out


def pool_images_per_s(pool: EnginePool, data: bytes, images: int) -> float:
    t0 = time.perf_counter()
    for result in pool.map_analyze(data for _ in range(images)):
        if isinstance(result, Exception):
            raise result
    return images / (time.perf_counter() - t0)


POOLS: dict[str, EngineConfig] = {
    "dlib": EngineConfig(descriptor_runtime=DLIB, detector=HOG_FIRST),
    "onnx": EngineConfig(descriptor_runtime=ONNX),
    "onnx, 2 threads per worker": EngineConfig(descriptor_runtime=ONNX, descriptor_threads=2),
}


def pool_runs(
    images: Sequence[SpeedImage], count: int, rounds: int
) -> dict[str, dict[str, list[float]]]:
    """Images/s through warm pools of 2 workers (``POOLS``), ``count`` copies of each image,
    ``rounds`` runs, interleaved."""
    pools = {name: EnginePool(config, workers=2) for name, config in POOLS.items()}
    try:
        for pool in pools.values():
            pool.warm_up()
            pool_images_per_s(pool, images[0].data, 4)
        out: dict[str, dict[str, list[float]]] = {
            img.name: {n: [] for n in pools} for img in images
        }
        for img in images:
            for i in range(rounds):
                order = list(pools.items())
                for name, pool in order if i % 2 == 0 else reversed(order):
                    out[img.name][name].append(pool_images_per_s(pool, img.data, count))
        return out
    finally:
        for pool in pools.values():
            pool.close()


# --- the whole comparison -----------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    repeat: int
    descriptor_repeat: int
    chips: int
    rounds: int
    images: int


def measure(
    images: Sequence[SpeedImage], s: Settings, log: Callable[[str], None]
) -> dict[str, Any]:
    """Every measurement of the runtime comparison; raw values (seconds) in the result."""
    models = load_models()
    engines = {
        DLIB: FaceEngine(EngineConfig(descriptor_runtime=DLIB, detector=HOG_FIRST), models=models),
        ONNX: FaceEngine(EngineConfig(descriptor_runtime=ONNX), models=models),
    }
    small = [img for img in images if img.width_px == 640]
    chips = bench_chips(engines[DLIB], images, s.chips)
    log(f"descriptor: {len(chips)} chips x {s.descriptor_repeat} repeats")
    desc = descriptor_runs(models, chips, s.descriptor_repeat)
    log("descriptor: two processes")
    desc |= two_process_runs(chips, s.descriptor_repeat)
    log("detection")
    det = detection_runs(engines[DLIB], small, s.repeat)
    log("analyse")
    analyse = analyse_runs(engines, small, s.repeat)
    log("pool")
    pools = pool_runs(small, s.images, s.rounds)
    return {
        "descriptor_s_per_face": desc,
        "detection": det,
        "analyse_s": analyse,
        "pool_images_per_s": {"workers": 2, "runs": pools},
    }


@dataclass(frozen=True)
class Line:
    measure: str
    dlib: float | None
    onnx: float | None
    digits: int = 1
    rate: bool = False

    def ratio(self) -> float | None:
        if self.dlib is None or self.onnx is None or not self.dlib or not self.onnx:
            return None
        return self.onnx / self.dlib if self.rate else self.dlib / self.onnx


def lines(m: dict[str, Any]) -> list[Line]:
    """The table: medians, one line per measure."""
    desc = m["descriptor_s_per_face"]
    out: list[Line] = []
    for threads in THREADS:
        for batch in BATCHES:
            label = (
                f"descriptor ms/face, {threads} thread{'s' if threads > 1 else ''}, batch {batch}"
            )
            out.append(
                Line(
                    label,
                    median_ms(desc[f"dlib/1/{batch}"]),
                    median_ms(desc[f"onnx/{threads}/{batch}"]),
                    2,
                )
            )
    out.append(
        Line(
            "descriptor ms/face, 2 processes x 1 thread, batch 8",
            median_ms(desc["dlib/2proc/8"]),
            median_ms(desc["onnx/2proc/8"]),
            2,
        )
    )
    det = m["detection"]
    for name in dict.fromkeys(k.rsplit(", ", 1)[0] for k in det if "HOG upsample 0" in k):
        zero, hog, mtcnn = (
            det[f"{name}, {label}"]
            for label in ("HOG upsample 0", "HOG upsample 1", "MTCNN, mapped boxes")
        )
        out.append(
            Line(
                f"HOG upsample 0 detect ms, {name} ({zero['faces']} faces)",
                median_ms(zero["runs_s"]),
                None,
            )
        )
        out.append(
            Line(
                f"detect ms, {name}: HOG up 1 / MTCNN ({hog['faces']} / {mtcnn['faces']} faces)",
                median_ms(hog["runs_s"]),
                median_ms(mtcnn["runs_s"]),
            )
        )
    for name, per in m["analyse_s"].items():
        out.append(Line(f"analyse ms, {name}", median_ms(per["dlib"]), median_ms(per["onnx"])))
    for name, runs in m["pool_images_per_s"]["runs"].items():
        out.append(
            Line(
                f"images/s, pool of 2, {name}",
                statistics.median(runs["dlib"]),
                statistics.median(runs["onnx"]),
                2,
                rate=True,
            )
        )
    return out


def thread_lines(m: dict[str, Any]) -> list[str]:
    """ONNX pools with 1 and 2 intra-op threads per worker: images/s medians and their ratio."""
    out = []
    for name, runs in m["pool_images_per_s"]["runs"].items():
        one = statistics.median(runs["onnx"])
        two = statistics.median(runs["onnx, 2 threads per worker"])
        out.append(
            f"onnx pool of 2, {name}: {one:.2f} images/s with 1 thread per worker, {two:.2f} "
            f"with 2 ({two / one:.2f}x)"
        )
    return out


def num(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.{digits}f}"


def print_lines(rows: Sequence[Line]) -> None:
    header = f"{'measure':<58} {'dlib path':>9} {'fast path':>9} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.measure:<58} {num(row.dlib, 9, row.digits)} {num(row.onnx, 9, row.digits)} "
            f"{num(row.ratio(), 7, 2)}"
        )
