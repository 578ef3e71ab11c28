"""SearchFacesByImage per second through boto3, this tree against another, side by side in one run.

    PYTHONPATH=src .venv/bin/python bench/search_throughput.py --before /tmp/before/src \
        [--clients 2,4,8] [--duration 15] [--rounds 2] [--before-env KEY=VALUE ...]

Two settings of this tree side by side (BlazeFace for search probes on and off):

    PYTHONPATH=src .venv/bin/python bench/search_throughput.py --before src \
        --before-env FACEGATE_SEARCH_BLAZEFACE=0 --before-name chain --after-name blazeface \
        --out search_throughput_blazeface

Starts one ``facegate serve`` (2 engine workers, default settings but a per-key rate high
enough not to interfere) per code tree: this one (``src/`` beside this script) and, with
``--before``, the ``src`` folder of another checkout (for example ``git archive`` of main's HEAD
unpacked in /tmp, or this one's ``src`` with other settings: ``--before-env``, ``--after-env``),
each on its own loopback port and data directory. Each server gets one
collection of four faces (biden.jpg, two_people.jpg, obama2.jpg). Then, for every round and
client count, each server in turn (the order alternating, so load from other work on the
machine falls on both alike) serves ``--duration`` seconds of SearchFacesByImage from that many
client threads, closed loop, each with its own access key and one request in flight, every
request sent once (no botocore retries). The probe is the 640x480 one-face photo of
bench/engine_speed.py (obama-1080p.jpg letterboxed with grey to 4:3, JPEG 92, a face of about
110 px). Per server and client count: searches/s (successful answers over wall time, all rounds
pooled), p50 and p99 latency of the successful ones, the count of each answer code, and the
CPU seconds the client process spent per search (the clients share the machine's two cores with
the server). Writes bench/results/search_throughput.json.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from botocore.exceptions import ClientError
from PIL import Image

from benchlib import ROOT, SAMPLES, machine_info, machine_line, write_results
from facegate.engine.image import encode_jpeg

sys.path.insert(0, str(ROOT))
from tests.e2e.server import Credentials, LiveServer

COLLECTION = "search"
ENROLLED = ("biden.jpg", "two_people.jpg", "obama2.jpg")


def probe_640x480() -> bytes:
    """obama-1080p.jpg letterboxed with grey to 4:3 and resized to 640x480 (Lanczos), JPEG 92:
    the 640x480 one-face image of bench/engine_speed.py (no part of the face cropped away)."""
    img = Image.open(SAMPLES / "obama-1080p.jpg").convert("RGB")
    w, h = img.size
    canvas = Image.new("RGB", (w, round(w * 480 / 640)), (128, 128, 128))
    canvas.paste(img, (0, (canvas.height - h) // 2))
    small = canvas.resize((640, 480), Image.Resampling.LANCZOS)
    return encode_jpeg(np.asarray(small, dtype=np.uint8), quality=92)


def new_key(server: LiveServer) -> Credentials:
    """A fresh key of the local (research) organisation, read from the command's output."""
    out = server.facegate("keys", "create", "--description", "search throughput")
    fields = dict(
        line.split(":", 1)
        for line in out.splitlines()
        if line.startswith(("access key id", "secret"))
    )
    return Credentials(fields["access key id"].strip(), fields["secret access key"].strip())


def client(server: LiveServer, creds: Credentials) -> Any:
    return server.client(
        creds, retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=16
    )


class Target:
    """One server of one code tree, with its keys and its clients (made once, kept warm)."""

    def __init__(
        self,
        name: str,
        src: Path,
        data_dir: Path,
        max_clients: int,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.src = src
        self.settings = settings or {}
        env = {
            "PYTHONPATH": str(src),
            "FACEGATE_RATE_LIMIT_RPS": "10000",
            "FACEGATE_RATE_LIMIT_BURST": "10000",
            **self.settings,
        }
        self.server = LiveServer(data_dir, workers=2, env=env)
        self.max_clients = max_clients
        self.clients: list[Any] = []

    def start(self) -> None:
        self.server.start()
        keys = [new_key(self.server) for _ in range(self.max_clients)]
        self.clients = [client(self.server, k) for k in keys]
        setup = self.clients[0]
        setup.create_collection(CollectionId=COLLECTION)
        for name in ENROLLED:
            setup.index_faces(
                CollectionId=COLLECTION, Image={"Bytes": (SAMPLES / name).read_bytes()}
            )

    def stop(self) -> None:
        self.server.stop()


def run(target: Target, image: bytes, clients: int, duration_s: float) -> dict[str, Any]:
    latencies: list[float] = []
    codes: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(n: int) -> None:
        rek = target.clients[n]
        mine: list[float] = []
        counted: collections.Counter[str] = collections.Counter()
        start.wait()
        while time.monotonic() < stop_at[0]:
            t0 = time.perf_counter()
            try:
                rek.search_faces_by_image(CollectionId=COLLECTION, Image={"Bytes": image})
                code = "OK"
            except ClientError as exc:
                code = str(exc.response["Error"]["Code"])
            elapsed = time.perf_counter() - t0
            counted[code] += 1
            if code == "OK":
                mine.append(elapsed)
        with lock:
            latencies.extend(mine)
            codes.update(counted)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    cpu0 = time.process_time()
    stop_at[0] = time.monotonic() + duration_s
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    return {"wall_s": wall, "client_cpu_s": cpu, "latencies_s": latencies, "codes": dict(codes)}


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """All rounds of one server and client count together."""
    lat = sorted(x for r in runs for x in r["latencies_s"])
    wall = sum(r["wall_s"] for r in runs)
    codes: collections.Counter[str] = collections.Counter()
    for r in runs:
        codes.update(r["codes"])
    return {
        "searches_per_s": len(lat) / wall if wall else 0.0,
        "per_round_per_s": [len(r["latencies_s"]) / r["wall_s"] for r in runs],
        "p50_ms": 1000 * statistics.median(lat) if lat else None,
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None,
        "n": len(lat),
        "codes": dict(codes),
        "client_cpu_ms_per_search": 1000 * sum(r["client_cpu_s"] for r in runs) / max(1, len(lat)),
    }


def settings(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` arguments as a dict (a server's extra environment)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("FACEGATE_"):
            raise SystemExit(f"expected FACEGATE_NAME=VALUE, got {pair!r}")
        out[key] = value
    return out


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="the src/ folder of the code to compare with")
    parser.add_argument("--before-name", default="before")
    parser.add_argument("--after-name", default="after")
    parser.add_argument("--clients", default="2,4,8")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="search_throughput", help="results file name")
    parser.add_argument("--before-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--after-env", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    image = probe_640x480()
    load_start = f"{os.getloadavg()[0]:.2f}"
    with tempfile.TemporaryDirectory() as tmp:
        after = settings(args.after_env)
        targets = [Target(args.after_name, ROOT / "src", Path(tmp) / "after", max(counts), after)]
        if args.before is not None:
            before = settings(args.before_env)
            targets.insert(
                0, Target(args.before_name, args.before, Path(tmp) / "before", max(counts), before)
            )
        try:
            for t in targets:
                t.start()
            for t in targets:  # warm: the first searches pay for lazy start-up work
                for rek in t.clients[:2]:
                    rek.search_faces_by_image(CollectionId=COLLECTION, Image={"Bytes": image})
            raw: dict[tuple[str, int], list[dict[str, Any]]] = collections.defaultdict(list)
            for r in range(args.rounds):
                for i, n in enumerate(counts):
                    order = targets if (r + i) % 2 == 0 else list(reversed(targets))
                    for t in order:
                        result = run(t, image, n, args.duration)
                        raw[(t.name, n)].append(result)
                        rate = len(result["latencies_s"]) / result["wall_s"]
                        print(
                            f"round {r + 1} {t.name:>8} {n} clients: {rate:6.2f}/s "
                            f"{result['codes']}",
                            flush=True,
                        )
        finally:
            for t in targets:
                t.stop()
    info = machine_info()
    info["load_1m_at_start"] = load_start
    print(machine_line(info) + f" (load average {load_start} at the start)")
    rows = []
    header = f"{'clients':>7} " + " ".join(
        f"{t.name + ' /s':>12} {'p50 ms':>8} {'p99 ms':>8}" for t in targets
    )
    if len(targets) == 2:
        header += f" {'ratio':>6}"
    print(header)
    for n in counts:
        row: dict[str, Any] = {"clients": n}
        line = f"{n:>7} "
        for t in targets:
            p = pooled(raw[(t.name, n)])
            row[t.name] = p
            line += f"{p['searches_per_s']:12.2f} {fmt(p['p50_ms']):>8} {fmt(p['p99_ms']):>8} "
        if len(targets) == 2:
            a, b = (row[t.name]["searches_per_s"] for t in targets)
            row["ratio"] = b / a if a else None
            line += f"{fmt(row['ratio'], 2):>6}"
        rows.append(row)
        print(line)
    write_results(
        args.out,
        {
            "machine": info,
            "image": "obama-1080p.jpg letterboxed to 640x480, JPEG 92, one face",
            "collection_faces": "4 (biden.jpg, two_people.jpg, obama2.jpg)",
            "duration_s": args.duration,
            "rounds": args.rounds,
            "targets": {t.name: str(t.src) for t in targets},
            "settings": {t.name: t.settings for t in targets},
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
