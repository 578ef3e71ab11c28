"""What running SQLAlchemy Core statements costs the store: a point query, both backends.

    .venv/bin/python bench/store_core.py [--rounds 30] [--calls 300]

One collection row looked up by its uid inside ``StoreDatabase.read()``, four ways, interleaved
(each round times ``--calls`` calls of each variant in turn; medians over ``--rounds`` rounds):

* ``text``: SQL text as a ``str`` (``SELECT arn FROM collections WHERE uid = :uid``), which the
  connection wraps in ``sqlalchemy.text()`` per call and compiles once (before the ``?`` path was
  removed, this variant ran ``?`` text on the driver directly);
* ``core, built per call``: ``select(collections.c.arn).where(collections.c.uid == uid)`` built
  on every call, compiled once per shape (store/core.py's cache), values extracted per call;
* ``core, module-level``: the statement built once with ``bindparam("uid")``;
* ``core, compiled every call``: the same as the second, compiled on every call (no cache): what
  the cache saves.

SQLite: a file in a temporary directory; PostgreSQL: a pgserver started in a temporary directory,
as the tests do (unix socket). Prints a table, states the machine, writes
bench/results/store_core.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, insert, select

from benchlib import ROOT, machine_info, machine_line, write_results
from facegate.store import core
from facegate.store.db import Database, StoreDatabase
from facegate.store.schema import collections

sys.path.insert(0, str(ROOT))
from tests.pg import PgCluster

BY_UID = select(collections.c.arn).where(collections.c.uid == bindparam("uid"))
TEXT = "SELECT arn FROM collections WHERE uid = :uid"


@contextmanager
def sqlite_backend() -> Iterator[StoreDatabase]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "store.sqlite3")
        yield db
        db.close()


@contextmanager
def postgres_backend() -> Iterator[StoreDatabase]:
    from facegate.store.pg import PostgresDatabase

    cluster = PgCluster.start()
    try:
        db = PostgresDatabase(cluster.create())
        yield db
        db.close()
    finally:
        cluster.stop()


def variants(db: StoreDatabase) -> dict[str, Callable[[str], Any]]:
    compiler = core.POSTGRESQL if db.dialect == "postgresql" else core.SQLITE

    def text(uid: str) -> Any:
        with db.read() as conn:
            return conn.execute(TEXT, {"uid": uid}).fetchone()[0]

    def per_call(uid: str) -> Any:
        with db.read() as conn:
            return conn.execute(
                select(collections.c.arn).where(collections.c.uid == uid)
            ).fetchone()[0]

    def module_level(uid: str) -> Any:
        with db.read() as conn:
            return conn.execute(BY_UID, {"uid": uid}).fetchone()[0]

    def uncached(uid: str) -> Any:
        statement = select(collections.c.arn).where(collections.c.uid == uid)
        compiled = statement.compile(dialect=compiler.dialect)
        sql = str(compiled.string)
        params = compiled.construct_params()
        with db.read() as conn:
            raw = conn._conn  # type: ignore[attr-defined]  # the driver's connection
            return raw.execute(sql, params).fetchone()[0]

    return {
        "text": text,
        "core, built per call": per_call,
        "core, module-level": module_level,
        "core, compiled every call": uncached,
    }


def measure(db: StoreDatabase, rounds: int, calls: int) -> dict[str, list[float]]:
    """Seconds per call of each variant, one entry per round."""
    with db.transaction() as conn:
        conn.executemany(
            insert(collections),
            [
                {
                    "uid": f"c{i}",
                    "collection_id": f"c{i}",
                    "arn": f"arn:c{i}",
                    "face_model_version": "6.0",
                    "created_at": 1.0,
                }
                for i in range(1000)
            ],
        )
    funcs = variants(db)
    for f in funcs.values():  # warm up: caches, the connection
        assert f("c1") == "arn:c1"
    out: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(rounds):
        for name, f in funcs.items():
            start = time.perf_counter()
            for i in range(calls):
                f(f"c{i % 1000}")
            out[name].append((time.perf_counter() - start) / calls)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    runs: dict[str, dict[str, list[float]]] = {}
    with sqlite_backend() as db:
        runs["sqlite"] = measure(db, args.rounds, args.calls)
    with postgres_backend() as db:
        runs["postgres"] = measure(db, args.rounds, args.calls)
    info = machine_info()
    print(machine_line(info))
    print(f"point query by uid in read(); medians of {args.rounds} rounds x {args.calls} calls")
    header = f"{'variant':<28} {'SQLite us':>10} {'ratio':>6} {'PostgreSQL us':>14} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    table: dict[str, Any] = {}
    base = {b: statistics.median(runs[b]["text"]) for b in runs}
    for name in runs["sqlite"]:
        s = statistics.median(runs["sqlite"][name])
        p = statistics.median(runs["postgres"][name])
        print(
            f"{name:<28} {1e6 * s:10.1f} {s / base['sqlite']:6.2f} {1e6 * p:14.1f} "
            f"{p / base['postgres']:6.2f}"
        )
        table[name] = {"sqlite_us": 1e6 * s, "postgres_us": 1e6 * p}
    write_results(
        "store_core", {"machine": info, "settings": vars(args), "medians": table, "runs_s": runs}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
