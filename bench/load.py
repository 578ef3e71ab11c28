"""Sustained mixed traffic against a live server: throughput, latency, errors, and what happens
past saturation.

    .venv/bin/python bench/load.py [--duration 20] [--clients 1,2,4,8,16] [--max-inflight 8]

Starts ``facegate serve`` (2 engine workers) on a free loopback port with the in-flight ceiling
set by ``--max-inflight`` and a per-key rate high enough not to interfere, seeds one collection,
then for each client count runs that many threads for ``--duration`` seconds. Each thread sends
a fixed mix on a 640-pixel-wide one-face photo (40% SearchFacesByImage, 30% IndexFaces with the
face deleted again, 30% ListFaces) with its own access key, every request once (no botocore
retries, no backoff: the worst case for the server). Per row: successful requests/s, p50 and
p99 latency of the successful ones, and the count of each answer code. Below saturation there
must be no error; above it the server should refuse at once with ThrottlingException instead of
queueing. Writes bench/results/load.json.
"""

from __future__ import annotations

import argparse
import collections
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

MIX = (("search", 0.4), ("index", 0.3), ("list", 0.3))


def photo(name: str, width: int) -> bytes:
    """The sample scaled to ``width`` pixels wide, aspect kept, as JPEG."""
    img = Image.open(SAMPLES / name).convert("RGB")
    height = round(img.height * width / img.width)
    img = img.resize((width, height), Image.Resampling.LANCZOS)
    return encode_jpeg(np.asarray(img, dtype=np.uint8), quality=92)


def client(server: LiveServer, creds: Credentials) -> Any:
    """A client that sends each request once (no botocore retries)."""
    return server.client(
        creds, retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=64
    )


def new_key(server: LiveServer) -> Credentials:
    """A fresh key of the local (research) organisation, read from the command's output."""
    out = server.facegate("keys", "create", "--description", "load test")
    fields = dict(
        line.split(":", 1)
        for line in out.splitlines()
        if line.startswith(("access key id", "secret"))
    )
    return Credentials(fields["access key id"].strip(), fields["secret access key"].strip())


def run(server: LiveServer, keys: list[Credentials], collection: str, image: bytes,
        clients: int, duration_s: float) -> dict[str, Any]:  # fmt: skip
    latencies: list[float] = []
    codes: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    stop = time.monotonic() + duration_s

    def worker(n: int) -> None:
        rek = client(server, keys[n % len(keys)])
        rng = np.random.default_rng(n)
        ops = [name for name, _ in MIX]
        weights = [w for _, w in MIX]
        while time.monotonic() < stop:
            op = ops[int(rng.choice(len(ops), p=weights))]
            t0 = time.perf_counter()
            try:
                if op == "search":
                    rek.search_faces_by_image(CollectionId=collection, Image={"Bytes": image})
                elif op == "index":
                    out = rek.index_faces(CollectionId=collection, Image={"Bytes": image})
                    ids = [r["Face"]["FaceId"] for r in out["FaceRecords"]]
                    if ids:
                        rek.delete_faces(CollectionId=collection, FaceIds=ids)
                else:
                    rek.list_faces(CollectionId=collection, MaxResults=100)
                code = "OK"
            except ClientError as exc:
                code = str(exc.response["Error"]["Code"])
            elapsed = time.perf_counter() - t0
            with lock:
                codes[code] += 1
                if code == "OK":
                    latencies.append(elapsed)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = sorted(latencies)
    return {
        "clients": clients,
        "ok_per_s": len(ok) / wall,
        "p50_ms": 1000 * statistics.median(ok) if ok else None,
        "p99_ms": 1000 * ok[min(len(ok) - 1, int(0.99 * len(ok)))] if ok else None,
        "codes": dict(codes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--clients", default="1,2,4,8,16")
    parser.add_argument("--max-inflight", type=int, default=8)
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    info = machine_info()
    print(machine_line(info))
    image = photo("obama.jpg", 640)
    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer(
            Path(tmp) / "data",
            workers=2,
            env={
                "FACEGATE_MAX_INFLIGHT": str(args.max_inflight),
                "FACEGATE_RATE_LIMIT_RPS": "1000",
                "FACEGATE_RATE_LIMIT_BURST": "1000",
            },
        )
        server.start()
        try:
            keys = [new_key(server) for _ in range(max(counts))]
            setup = client(server, keys[0])
            setup.create_collection(CollectionId="load")
            for name in ("biden.jpg", "two_people.jpg", "obama2.jpg"):
                setup.index_faces(
                    CollectionId="load", Image={"Bytes": (SAMPLES / name).read_bytes()}
                )
            rows = []
            for n in counts:
                row = run(server, keys, "load", image, n, args.duration)
                rows.append(row)
                print(
                    f"{n:>3} clients  {row['ok_per_s']:6.2f} ok/s  p50 {row['p50_ms'] or 0:7.1f} ms"
                    f"  p99 {row['p99_ms'] or 0:7.1f} ms  {row['codes']}",
                    flush=True,
                )
        finally:
            server.stop()
    write_results(
        "load",
        {
            "machine": info,
            "duration_s": args.duration,
            "max_inflight": args.max_inflight,
            "mix": dict(MIX),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
