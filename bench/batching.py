"""Opportunistic batching in ``EnginePool``: throughput and latency with it on and off, one run.

An ``EnginePool`` of 2 workers with the default descriptor runtime (ONNX when its self-check
passes, as the server runs it) analyses a 640x480 photo with one face and one with six (built
from ../shared/data/samples as ``engine_speed.py`` builds its 640x480 images: letterboxed and
JPEG-encoded in memory). ``concurrency`` threads each submit one image, wait for its result and
submit the next (a closed loop, like that many clients each with one request in flight), until
``--images`` results came back. Two warm pools run side by side, batching on (``max_batch`` 8)
and off (``max_batch`` 1), interleaved per measurement with alternating order so machine noise
hits both.

Reported per image and concurrency (1, 2, 4, 8): images/s, p50 and p99 latency of a request
(submit to result; nearest rank over every request of every round), the mean requests per
worker task with batching on, and the ratios on / off (images/s above 1: batching helps;
latency below 1: batching is faster). Concurrency 1 is the lone request: with fewer requests in
flight than workers nothing ever waits, so on and off should take the same time there (the
pool adds no timer). Writes bench/results/batching.json.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchlib import SAMPLES, cell, machine_info, machine_line, write_results
from engine_speed import SOURCES, letterbox
from facegate.engine.core import EngineConfig
from facegate.engine.image import encode_jpeg
from facegate.engine.pool import EnginePool, PoolStats

CONCURRENCY: tuple[int, ...] = (1, 2, 4, 8)
MODES: dict[str, int] = {"off": 1, "on": 8}  # name -> max_batch
WORKERS = 2


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes


def build_photos(samples: Path) -> list[Photo]:
    """The 640x480 one-face and six-face photos (JPEG quality 92, as ``engine_speed.py``)."""
    out = []
    for filename, label in SOURCES:
        source = Image.open(samples / filename).convert("RGB")
        pixels = np.asarray(letterbox(source, 640, 480), dtype=np.uint8)
        out.append(Photo(f"640x480, {label}", encode_jpeg(pixels, quality=92)))
    return out


@dataclass(frozen=True)
class Run:
    """One closed-loop run: wall seconds, each request's latency, what the pool sent."""

    wall_s: float
    latencies_s: list[float]
    batches: int
    items: int


def closed_loop(pool: EnginePool, data: bytes, concurrency: int, images: int) -> Run:
    """``concurrency`` threads submit ``data`` one request at a time until ``images`` are done."""
    latencies: list[float] = []
    lock = threading.Lock()
    left = [images]
    errors: list[BaseException] = []

    def client() -> None:
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            t0 = time.perf_counter()
            try:
                pool.analyze(data)
            except BaseException as exc:  # reported after the run
                errors.append(exc)
                return
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)

    before = pool.stats
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    after: PoolStats = pool.stats
    return Run(wall, latencies, after.batches - before.batches, after.items - before.items)


def measure(
    photos: Sequence[Photo], images: int, rounds: int, log: Callable[[str], None]
) -> dict[str, dict[str, dict[str, list[Run]]]]:
    """Runs per photo, concurrency and mode (``MODES``), ``rounds`` each, interleaved."""
    pools = {mode: EnginePool(EngineConfig(), WORKERS, max_batch=b) for mode, b in MODES.items()}
    try:
        for pool in pools.values():
            pool.warm_up()
            closed_loop(pool, photos[0].data, WORKERS, 2 * WORKERS)  # first calls allocate
        out: dict[str, dict[str, dict[str, list[Run]]]] = {
            p.name: {str(c): {m: [] for m in MODES} for c in CONCURRENCY} for p in photos
        }
        step = 0
        for r in range(rounds):
            log(f"round {r + 1} of {rounds}")
            for photo in photos:
                for c in CONCURRENCY:
                    order = list(pools.items())
                    for mode, pool in order if step % 2 == 0 else reversed(order):
                        out[photo.name][str(c)][mode].append(
                            closed_loop(pool, photo.data, c, images)
                        )
                    step += 1
        return out
    finally:
        for pool in pools.values():
            pool.close()


def percentile_ms(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, milliseconds."""
    ordered = sorted(values)
    rank = max(1, int(np.ceil(q / 100 * len(ordered))))
    return 1000 * ordered[rank - 1]


def summarise(runs: list[Run]) -> dict[str, float]:
    latencies = [t for run in runs for t in run.latencies_s]
    return {
        "images_per_s": statistics.median(len(run.latencies_s) / run.wall_s for run in runs),
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
        "mean_batch": sum(run.items for run in runs) / max(1, sum(run.batches for run in runs)),
    }


def summary(
    measured: dict[str, dict[str, dict[str, list[Run]]]],
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    return {
        photo: {c: {mode: summarise(runs) for mode, runs in per.items()} for c, per in by_c.items()}
        for photo, by_c in measured.items()
    }


def ratio(on: float, off: float) -> float | None:
    return on / off if off else None


def print_table(table: dict[str, dict[str, dict[str, dict[str, float]]]]) -> None:
    header = (
        f"{'image':<17} {'conc':>4} {'img/s off':>9} {'on':>7} {'on/off':>6} "
        f"{'p50 ms off':>10} {'on':>7} {'on/off':>6} {'p99 ms off':>10} {'on':>7} "
        f"{'on/off':>6} {'batch on':>8}"
    )
    print(header)
    print("-" * len(header))
    for photo, by_c in table.items():
        for c, modes in by_c.items():
            off, on = modes["off"], modes["on"]
            print(
                f"{photo:<17} {c:>4} {cell(off['images_per_s'], 9, 2)} "
                f"{cell(on['images_per_s'], 7, 2)} "
                f"{cell(ratio(on['images_per_s'], off['images_per_s']), 6, 2)} "
                f"{cell(off['p50_ms'], 10, 1)} {cell(on['p50_ms'], 7, 1)} "
                f"{cell(ratio(on['p50_ms'], off['p50_ms']), 6, 2)} "
                f"{cell(off['p99_ms'], 10, 1)} {cell(on['p99_ms'], 7, 1)} "
                f"{cell(ratio(on['p99_ms'], off['p99_ms']), 6, 2)} "
                f"{cell(on['mean_batch'], 8, 2)}"
            )
    for photo, by_c in table.items():
        off, on = by_c["1"]["off"], by_c["1"]["on"]
        print(
            f"lone request, {photo}: p50 {on['p50_ms']:.1f} ms with batching on, "
            f"{off['p50_ms']:.1f} ms off ({on['p50_ms'] / off['p50_ms']:.2f}x)"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--samples", type=Path, default=SAMPLES, help="sample images folder")
    parser.add_argument("--rounds", type=int, default=3, help="runs per photo, concurrency, mode")
    parser.add_argument("--images", type=int, default=48, help="requests per run")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 8 images")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.images = 1, 8
    if min(args.rounds, args.images) < 1:
        parser.error("counts must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    photos = build_photos(args.samples)
    measured = measure(photos, args.images, args.rounds, lambda m: print(m, flush=True))
    table = summary(measured)
    info = machine_info()
    print(machine_line(info))
    print(
        f"EnginePool of {WORKERS} workers, default descriptor runtime; {args.rounds} round(s) "
        f"of {args.images} requests per photo, concurrency and mode; batching on: max_batch "
        f"{MODES['on']}, off: max_batch {MODES['off']}"
    )
    print_table(table)
    document: dict[str, Any] = {
        "machine": info,
        "settings": {
            "workers": WORKERS,
            "rounds": args.rounds,
            "images_per_run": args.images,
            "concurrency": list(CONCURRENCY),
            "max_batch": MODES,
            "quick": args.quick,
        },
        "summary": table,
        "runs": {
            photo: {
                c: {
                    mode: [
                        {
                            "wall_s": run.wall_s,
                            "latencies_s": run.latencies_s,
                            "batches": run.batches,
                            "items": run.items,
                        }
                        for run in runs
                    ]
                    for mode, runs in per.items()
                }
                for c, per in by_c.items()
            }
            for photo, by_c in measured.items()
        },
    }
    print(f"wrote {write_results('batching', document)}")


if __name__ == "__main__":
    main()
