"""One organisation's heavy images against another's DetectFaces (issue 18, item 9), one run.

The attack: a 6324x6324 16-bit grey PNG (generated here: a few tens of kB, 40 MP, under the
pixel cap) sent by organisation A with ``--inflight`` requests in flight at all times (closed
loop: each of A's clients sends the next as soon as its last one is answered), while
organisation B sends DetectFaces (``descriptors=False``) of a 640x480 one-face photo, one at a
time, ``--requests`` times. Measured at the engine pool (``EnginePool``, ``--workers`` worker
processes, the server's engine), where the server queues each request as its organisation's
(``OpDeps.for_caller`` -> ``EnginePool.for_tenant``).

Conditions, each on a fresh pool: B alone; B under A's attack with turns between organisations
only (``tenant_workers=0``); and with the server's default, a worker kept for the others while
they use the engine (``tenant_workers = workers - 1``, FACEGATE_ENGINE_TENANT_WORKERS).
Reported: B's median and p90 latency (submit to result), the ratio to B alone, A's images per
second and median latency, and the peak resident memory of the busiest worker process (VmHWM).
The same script runs against the code before the fix (``PYTHONPATH=<old checkout>/src``):
without tenants in the pool, the attack condition is the single arrival-order queue. Writes
bench/results/engine_fairness.json (``--tag`` names the file).
"""

from __future__ import annotations

import argparse
import inspect
import io
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchlib import SAMPLES, cell, machine_info, machine_line, write_results
from engine_speed import letterbox
from facegate.engine.core import EngineConfig
from facegate.engine.image import encode_jpeg
from facegate.engine.pool import EnginePool

TENANTS = "tenant" in inspect.signature(EnginePool.submit).parameters


def attack_png(side: int = 6324) -> bytes:
    """The attacker's image: 16-bit grey, flat stripes (compresses to a few tens of kB)."""
    arr = np.zeros((side, side), dtype=np.uint16)
    arr[::7, :] = 40_000
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def victim_jpeg(samples: Path) -> bytes:
    source = Image.open(samples / "obama.jpg").convert("RGB")
    return encode_jpeg(np.asarray(letterbox(source, 640, 480), dtype=np.uint8), quality=92)


def _submit(pool: EnginePool, data: bytes, tenant: str) -> Any:
    if TENANTS:
        return pool.submit(data, descriptors=False, tenant=tenant)
    return pool.submit(data, descriptors=False)


def _peak_rss_mib(pool: EnginePool) -> float:
    """The largest VmHWM (peak resident set) among the pool's worker processes."""
    executor = pool._executor
    peaks = []
    for pid in list(getattr(executor, "_processes", {}) or {}):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024.0)
        except OSError:
            continue
    return max(peaks, default=float("nan"))


@dataclass
class Outcome:
    name: str
    victim_s: list[float]
    attack_s: list[float]
    attack_per_s: float
    peak_rss_mib: float


def run(
    name: str,
    *,
    workers: int,
    tenant_workers: int | None,
    attack: bytes | None,
    inflight: int,
    victim: bytes,
    requests: int,
) -> Outcome:
    pool = (
        EnginePool(EngineConfig(), workers=workers, tenant_workers=tenant_workers)
        if TENANTS
        else EnginePool(EngineConfig(), workers=workers)
    )
    with pool:
        pool.warm_up()
        for _ in range(2):
            _submit(pool, victim, "org-b").result()  # warm the detectors of every worker
        stop = threading.Event()
        attack_times: list[float] = []
        lock = threading.Lock()

        def attacker() -> None:
            assert attack is not None
            while not stop.is_set():
                started = time.perf_counter()
                _submit(pool, attack, "org-a").result()
                with lock:
                    attack_times.append(time.perf_counter() - started)

        threads = [threading.Thread(target=attacker) for _ in range(inflight if attack else 0)]
        for thread in threads:
            thread.start()
        began = time.perf_counter()
        if attack is not None:
            time.sleep(1.0)  # let the attack fill the pool
        victim_times = []
        for _ in range(requests):
            started = time.perf_counter()
            _submit(pool, victim, "org-b").result()
            victim_times.append(time.perf_counter() - started)
            time.sleep(0.2)  # B's requests arrive at varying phases of A's
        elapsed = time.perf_counter() - began
        stop.set()
        for thread in threads:
            thread.join()
        peak = _peak_rss_mib(pool)
    with lock:
        done = list(attack_times)
    return Outcome(name, victim_times, done, len(done) / elapsed if attack else 0.0, peak)


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--inflight", type=int, default=4)
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--tag", default="", help="results file suffix, e.g. 'before'")
    args = parser.parse_args()
    attack = attack_png()
    victim = victim_jpeg(SAMPLES)
    conditions: list[tuple[str, int | None, bytes | None]] = [
        ("B alone", 0, None),
        (f"B + A x{args.inflight}" + (", turns only" if TENANTS else ""), 0, attack),
    ]
    if TENANTS and args.workers > 1:
        conditions.append((f"B + A x{args.inflight}, server default", None, attack))
    outcomes = [
        run(
            name,
            workers=args.workers,
            tenant_workers=tenant_workers,
            attack=data,
            inflight=args.inflight,
            victim=victim,
            requests=args.requests,
        )
        for name, tenant_workers, data in conditions
    ]
    alone = statistics.median(outcomes[0].victim_s)
    info = machine_info()
    print(
        f"attack image: 6324x6324 16-bit grey PNG, {len(attack)} bytes; victim: 640x480 JPEG, "
        f"DetectFaces; {args.workers} workers; tenant-aware pool: {'yes' if TENANTS else 'no'}"
    )
    print(
        f"{'condition':<34} {'B p50 s':>8} {'B p90 s':>8} {'B x':>6} "
        f"{'A img/s':>8} {'A p50 s':>8} {'worker MiB':>10}"
    )
    rows = []
    for out in outcomes:
        p50 = statistics.median(out.victim_s)
        a50 = statistics.median(out.attack_s) if out.attack_s else None
        print(
            f"{out.name:<34} {cell(p50, 8, 3)} {cell(_p90(out.victim_s), 8, 3)} "
            f"{cell(p50 / alone, 6, 1)} {cell(out.attack_per_s or None, 8, 2)} "
            f"{cell(a50, 8, 2)} {cell(out.peak_rss_mib, 10, 0)}"
        )
        rows.append(
            {
                "condition": out.name,
                "victim_p50_s": p50,
                "victim_p90_s": _p90(out.victim_s),
                "victim_ratio_to_alone": p50 / alone,
                "attack_images_per_s": out.attack_per_s,
                "attack_p50_s": a50,
                "worker_peak_rss_mib": out.peak_rss_mib,
            }
        )
    print(machine_line(info))
    name = "engine_fairness" + (f"_{args.tag}" if args.tag else "")
    path = write_results(
        name,
        {
            "machine": info,
            "tenant_aware": TENANTS,
            "workers": args.workers,
            "inflight": args.inflight,
            "requests": args.requests,
            "attack_png_bytes": len(attack),
            "rows": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
