"""What the change feed costs a server that shares the store: catch-up time, both backends.

    .venv/bin/python bench/feed_catchup.py [--faces 20000] [--batch 1,10,100] [--repeat 50]

Two ``FaceStore`` objects on one database play two servers: A writes, B keeps its in-memory index
fresh from ``face_changes`` (``FaceStore.catch_up``, run before every search and face count).
Both backends in one run: SQLite (a file in a temporary directory) and PostgreSQL (a pgserver
started in a temporary directory, as the tests do; loopback unix socket).

* ``empty``: B's catch-up when nothing changed (the cost every search pays): median of
  ``--repeat`` calls.
* ``after N adds``: A adds N faces to a collection of ``--faces`` faces (B has it loaded), then
  B catches up (reads N feed rows and N descriptors, adds them to its index): median per call
  and per face.
* ``after N deletes``: the same for N deletions.

Descriptors are random unit vectors (the feed's cost does not depend on their values). Prints a
table, states the machine, writes bench/results/feed_catchup.json.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchlib import ROOT, machine_info, machine_line, write_results
from facegate.store.db import Database, StoreDatabase
from facegate.store.records import NewFace
from facegate.store.store import FaceStore

sys.path.insert(0, str(ROOT))
from tests.pg import PgCluster
from tests.store.factory import new_face

COLLECTION = "feed"


_numbers = itertools.count(1)


def face(descriptor: np.ndarray) -> NewFace:
    """A new face of the collection with ``descriptor`` (ids from a counter, as the tests')."""
    made = new_face(COLLECTION, next(_numbers))
    return NewFace(made.record, np.asarray(descriptor, dtype=np.float32))


def vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 128)).astype(np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


@contextmanager
def sqlite_backend() -> Iterator[Callable[[], StoreDatabase]]:
    with tempfile.TemporaryDirectory() as tmp:
        yield lambda: Database(Path(tmp) / "store.sqlite3")


@contextmanager
def postgres_backend() -> Iterator[Callable[[], StoreDatabase]]:
    from facegate.store.pg import PostgresDatabase

    cluster = PgCluster.start()
    try:
        dsn = cluster.create()
        yield lambda: PostgresDatabase(dsn)
    finally:
        cluster.stop()


def measure(
    connect: Callable[[], StoreDatabase], faces: int, batches: list[int], repeat: int
) -> dict[str, list[float]]:
    """Seconds per B.catch_up for each case (see the module docstring)."""
    rng = np.random.default_rng(0)
    db_a, db_b = connect(), connect()
    try:
        a, b = FaceStore(db_a), FaceStore(db_b)
        c = a.create_collection(COLLECTION, f"arn:{COLLECTION}", "dlib-resnet-v1", org_id="bench")
        for start in range(0, faces, 5000):
            a.add_faces(c, [face(v) for v in vectors(rng, min(5000, faces - start))])
        b.index(c)  # B has the collection loaded, as a serving server would
        b.catch_up()
        out: dict[str, list[float]] = {"empty": []}
        for _ in range(repeat):
            t0 = time.perf_counter()
            b.catch_up()
            out["empty"].append(time.perf_counter() - t0)
        for n in batches:
            adds, deletes = f"after {n} adds", f"after {n} deletes"
            out[adds], out[deletes] = [], []
            for _ in range(max(3, repeat // max(1, n // 10))):
                new = [face(v) for v in vectors(rng, n)]
                a.add_faces(c, new)
                t0 = time.perf_counter()
                b.catch_up()
                out[adds].append(time.perf_counter() - t0)
                a.delete_faces(c, [f.record.face_id for f in new])
                t0 = time.perf_counter()
                b.catch_up()
                out[deletes].append(time.perf_counter() - t0)
        assert b.face_count(c) == faces  # B ended where A is
        return out
    finally:
        db_a.close()
        db_b.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=20_000)
    parser.add_argument("--batch", default="1,10,100")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    batches = [int(b) for b in args.batch.split(",")]
    runs: dict[str, dict[str, list[float]]] = {}
    with sqlite_backend() as connect:
        runs["sqlite"] = measure(connect, args.faces, batches, args.repeat)
    with postgres_backend() as connect:
        runs["postgres"] = measure(connect, args.faces, batches, args.repeat)
    info = machine_info()
    print(machine_line(info))
    print(f"collection of {args.faces:,} faces loaded on server B; medians of B.catch_up()")
    header = (
        f"{'case':<22} {'SQLite ms':>10} {'PostgreSQL ms':>14} {'SQLite ms/face':>15} "
        f"{'PG ms/face':>11}"
    )
    print(header)
    print("-" * len(header))
    table: dict[str, Any] = {}
    for case in runs["sqlite"]:
        n = int(case.split()[1]) if case != "empty" else 0
        s = 1000 * statistics.median(runs["sqlite"][case])
        p = 1000 * statistics.median(runs["postgres"][case])
        per = (f"{s / n:15.3f} {p / n:11.3f}") if n else f"{'-':>15} {'-':>11}"
        print(f"{case:<22} {s:10.2f} {p:14.2f} {per}")
        table[case] = {"sqlite_ms": s, "postgres_ms": p}
    write_results(
        "feed_catchup",
        {"machine": info, "settings": vars(args), "medians": table, "runs_s": runs},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
