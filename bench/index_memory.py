"""Memory per million faces: the in-memory vector index (exact and HNSW) and the store's rows.

    .venv/bin/python bench/index_memory.py [--exact 1000000] [--hnsw 200000] [--store 20000]

Each measurement runs in a fresh child process and reports the growth of its resident set
(VmRSS) while building the structure, scaled to one million faces; the store row size is the
SQLite file size per indexed face (descriptor, box, ids, indexes). Vectors are random unit-norm
128-d float32 (memory does not depend on their values). Prints a table and writes
bench/results/index_memory.json.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from benchlib import machine_info, machine_line, write_results

DIM = 128


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _vectors(n: int) -> np.ndarray:
    v = np.random.default_rng(0).normal(size=(n, DIM)).astype(np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def _index_growth(kind: str, n: int, queue: multiprocessing.Queue[tuple[int, float]]) -> None:
    from facegate.store.vectors import make_index

    ids = [str(uuid.uuid4()) for _ in range(n)]
    vectors = _vectors(n)
    before = _rss_bytes()
    start = time.perf_counter()
    index = make_index(kind)
    for s in range(0, n, 50_000):
        index.add(ids[s : s + 50_000], vectors[s : s + 50_000])
    queue.put((_rss_bytes() - before, time.perf_counter() - start))


def _store_bytes(n: int, queue: multiprocessing.Queue[tuple[int, float]]) -> None:
    from facegate.store.db import Database
    from facegate.store.records import FaceRecord, NewFace, StoreLimits
    from facegate.store.store import FaceStore

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "db.sqlite3"
        store = FaceStore(Database(path), StoreLimits(max_faces_per_collection=n + 1))
        c = store.create_collection("c", "arn:c", "dlib-resnet-v1")
        vectors = _vectors(n)
        start = time.perf_counter()
        for s in range(0, n, 1000):
            faces = [
                NewFace(
                    FaceRecord(
                        str(uuid.uuid4()), c.uid, str(uuid.uuid4()), "0" * 64, f"img-{i}.jpg",
                        0.1, 0.1, 0.5, 0.5, 99.9, "dlib-resnet-v1", None, time.time(),
                    ),
                    vectors[i],
                )
                for i in range(s, min(n, s + 1000))
            ]  # fmt: skip
            store.add_faces(c, faces)
        store.db.close()
        queue.put((path.stat().st_size, time.perf_counter() - start))


def _child(target: object, *args: object) -> tuple[int, float]:
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[tuple[int, float]] = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))  # type: ignore[arg-type]
    proc.start()
    result = queue.get(timeout=3600)
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exact", type=int, default=1_000_000)
    parser.add_argument("--hnsw", type=int, default=200_000)
    parser.add_argument("--store", type=int, default=20_000)
    args = parser.parse_args()
    info = machine_info()
    print(machine_line(info))
    rows = []
    for what, n, (grown, seconds) in (
        ("exact index (numpy float32)", args.exact, _child(_index_growth, "exact", args.exact)),
        ("HNSW index (faiss, M=32)", args.hnsw, _child(_index_growth, "hnsw", args.hnsw)),
        ("SQLite store rows", args.store, _child(_store_bytes, args.store)),
    ):
        per_million = grown / n * 1_000_000
        rows.append(
            {"what": what, "faces": n, "bytes": grown, "seconds": seconds,
             "mib_per_million": per_million / 2**20}
        )  # fmt: skip
    print("| structure | faces measured | build s | MiB per million faces |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['what']} | {r['faces']:,} | {r['seconds']:.1f} | {r['mib_per_million']:,.0f} |"
        )
    write_results("index_memory", {"machine": info, "rows": rows})


if __name__ == "__main__":
    main()
