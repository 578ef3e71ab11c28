"""IndexFaces images per second through boto3, with 1 and 2 engine workers and 1-4 clients.

    .venv/bin/python bench/index_throughput.py [--images 40] [--clients 1,2,4] [--workers 1,2]
        [--models dlib-resnet-v1,faceres-v1,fused-dlib-faceres-v1] [--json index_throughput]

Starts a real ``facegate serve`` on a free loopback port for each worker count, signs every
request with SigV4 through boto3 (one client per thread), and indexes copies of a 640x480
single-face photo (group_t1 for the multi-face row) into a fresh collection. With ``--models``,
each row's collection is pinned to one descriptor model (the CreateCollection tag
``facegate:face-model``), the models interleaved in the same server. Reports images/s and the
median request latency. Writes bench/results/<--json>.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchlib import ROOT, SAMPLES, machine_info, machine_line, write_results
from facegate.engine.image import encode_jpeg

sys.path.insert(0, str(ROOT))
from tests.e2e.server import LiveServer


def photo(name: str, size: tuple[int, int]) -> bytes:
    img = Image.open(SAMPLES / name).convert("RGB").resize(size, Image.Resampling.LANCZOS)
    return encode_jpeg(np.asarray(img, dtype=np.uint8), quality=92)


def run(
    server: LiveServer, data: bytes, images: int, clients: int, model: str | None = None
) -> dict[str, float]:
    setup = server.client()
    collection = f"bench-{time.monotonic_ns()}"
    tags = {"Tags": {"facegate:face-model": model}} if model else {}
    setup.create_collection(CollectionId=collection, **tags)
    local = [server.client() for _ in range(clients)]
    latencies: list[float] = []

    def one(i: int) -> int:
        client: Any = local[i % clients]
        t0 = time.perf_counter()
        out = client.index_faces(
            CollectionId=collection, Image={"Bytes": data}, ExternalImageId=f"img-{i}"
        )
        latencies.append(time.perf_counter() - t0)
        return len(out["FaceRecords"])

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        faces = sum(pool.map(one, range(images)))
    elapsed = time.perf_counter() - t0
    return {
        "images_per_s": images / elapsed,
        "faces_per_s": faces / elapsed,
        "median_latency_ms": 1000 * statistics.median(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--clients", default="1,2,4")
    parser.add_argument("--workers", default="1,2", help="engine worker counts, one server each")
    parser.add_argument(
        "--models", default="", help="descriptor models to pin collections to (default: none)"
    )
    parser.add_argument("--json", default="index_throughput", help="results file name")
    args = parser.parse_args()
    models: list[str | None] = [m for m in args.models.split(",") if m] or [None]
    single = photo("obama-1080p.jpg", (640, 360))
    group = photo("group_t1.jpg", (640, 443))
    rows: list[dict[str, Any]] = []
    for workers in (int(w) for w in args.workers.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            server = LiveServer(Path(tmp) / "data", workers=workers)
            server.start()
            try:
                for model in models:  # warm up the workers, each model and the connections
                    run(server, single, 4, 2, model)
                for clients in (int(c) for c in args.clients.split(",")):
                    for label, data in (("1 face", single), ("6 faces", group)):
                        for model in models:
                            r = run(server, data, args.images, clients, model)
                            rows.append(
                                {
                                    "workers": workers,
                                    "clients": clients,
                                    "image": label,
                                    "model": model or "default",
                                    **r,
                                }
                            )
            finally:
                server.stop()
    info = machine_info()
    print(machine_line(info))
    print(f"IndexFaces through boto3, {args.images} images per row, 640 px wide JPEGs")
    header = (
        f"{'workers':>7} {'clients':>7} {'image':<8} {'model':<22} {'images/s':>9} "
        f"{'faces/s':>8} {'p50 ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['workers']:>7} {r['clients']:>7} {r['image']:<8} {r['model']:<22} "
            f"{r['images_per_s']:9.2f} "
            f"{r['faces_per_s']:8.2f} {r['median_latency_ms']:8.1f}"
        )
    write_results(args.json, {"machine": info, "images": args.images, "rows": rows})


if __name__ == "__main__":
    main()
