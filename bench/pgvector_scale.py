"""In-memory exact index vs pgvector on one PostgreSQL, at 100k and 1M faces, side by side.

    .venv/bin/python bench/pgvector_scale.py [--sizes 100000,1000000] [--queries 200]
        [--ef 100,400,1000] [--m 32] [--ef-construction 128] [--name pgvector_scale]
        [--pgdata DIR [--build-only] [--shared-buffers 4GB]] [--build-until HH:MM]
        [--search-until HH:MM]

The collection is built as bench/search_scale.py builds it: for each of 300 LFW people with two
or more photos, the first photo is enrolled and the last is a probe (a true mate in the
collection); the other faces are synthetic strangers drawn from a Gaussian with the full
covariance of those real descriptors. Descriptors are the dlib ones the bias toolkit cached
(~/.cache/facegate/descriptors), or the engine's when the cache is absent.

For each size, on one pgserver PostgreSQL (pgvector 0.6.2) started in a temporary directory:

* the faces are bulk-loaded into ``faces`` and the collection's ``face_vectors`` partition (COPY)
  and its HNSW index is built (``--m``, ``--ef-construction``: by default facegate's graph,
  ``pgvectors.HNSW_M``, ``HNSW_EF_CONSTRUCTION``; maintenance_work_mem 3 GB, one parallel
  maintenance worker; build time reported). The build's progress
  (``pg_stat_progress_create_index``: tuples loaded into the graph) is sampled every 30 s; with
  ``--build-until HH:MM`` (UTC) a build still running then is cancelled, and the results record
  how far it got and at what rate (that size's pgvector rows are then not measured, the exact
  index's are; ``--no-build`` builds no graph and measures only those);
* start-up of a server, each in a fresh process: ``FaceStore`` in-memory (loads every descriptor
  from ``faces``: ``FACEGATE_VECTOR_INDEX=memory``, the default, and SQLite's way) and
  ``FaceStore`` on pgvector (loads nothing), time to the first answered search (one probe at
  Similarity 80, so it includes that search) and resident memory after it;
* search at Rekognition's defaults (MaxFaces 4096) at Similarity 80 and 99 (``--similarities``;
  the raw distance the shipped calibration gives) and at the threshold the base policy pack's
  default bound of one expected false candidate raises a search of that many faces to
  (:func:`facegate.enforce.size_aware_threshold`: Similarity 99.9 at 100k, 99.99 at 1M), the
  levels measured from the highest (fastest) down, the real probes: the exact in-memory index
  (``ExactIndex``) and pgvector (``FaceStore.nearest``: HNSW shortlist, exact re-ranking, then the
  threshold) at each ``--ef`` (hnsw.ef_search: the first candidate list, widened as
  ``PgVectorIndex.search`` widens it). Hit recall = the faces pgvector returns among those
  the exact index returns, over all probes; "equal" checks that every returned distance equals
  the exact index's for that face; "scans" counts the probes that ended in a sequential scan
  (``PgVectorIndex.search_traced``), ``longest_list`` those that read a list of 1,000.

With ``--pgdata DIR`` the PostgreSQL data survive the run and a database loaded before is reused
(its load time is then null: the run that loaded it, or ``--build-only``, printed it); its graph
is reused if it was built with the ``--m`` and ``--ef-construction`` asked for (build time null
too), and rebuilt on the stored rows otherwise. The truth is always the exact index of the rows
stored, and the probes those of the cache chain whose enrolled faces match them. With
``--search-until HH:MM`` (UTC) each pgvector row takes probes for an equal share of the time
left (a fast row leaves its unused share to the next) and records how many it measured (the
exact index's answers for the same probes are its truth); server start-up is measured after the
searches, and skipped past that time. ``--shared-buffers`` (with a kept ``--pgdata``) starts
PostgreSQL with that ``shared_buffers`` instead of its default 128 MB (the setting in use is
recorded and printed).

The results file is rewritten after the build and after every row (``"complete": false`` until
the end), so a run stopped early leaves what it measured.

Prints one table, states the machine, writes bench/results/pgvector_scale.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from benchlib import ROOT, cell, machine_info, machine_line, write_results
from facegate.enforce import size_aware_threshold
from facegate.engine.similarity import default_similarity
from facegate.store import pgvectors
from facegate.store.pg import PostgresDatabase
from facegate.store.store import FaceStore
from facegate.store.vectors import DIM, ExactIndex
from search_scale import lfw_pairs, synthetic

LFW = ROOT.parent / "shared" / "data" / "lfw" / "images"
CACHE = Path.home() / ".cache" / "facegate" / "descriptors" / "descriptors.sqlite3"
Matrix = npt.NDArray[np.float32]
COLLECTION = "scale"
MAINTENANCE_WORK_MEM = "3GB"
"""The build's memory: the graph at 1M faces (about 1.4 GB with m 32) is built in memory."""
PARALLEL_MAINTENANCE_WORKERS = 1
"""One worker besides the leader: the two cores of the measuring machine."""
PROGRESS_EVERY_S = 30.0
BOUND = 1.0
"""The base policy pack's default bound on expected false candidates of a 1:N search."""


def cache_keys() -> list[str]:
    """The dlib descriptor chains in the bias toolkit's cache, the most complete first."""
    if not CACHE.exists():
        return []
    conn = sqlite3.connect(f"file:{CACHE}?mode=ro", uri=True)
    return [
        r[0]
        for r in conn.execute(
            "SELECT key FROM descriptors WHERE key LIKE 'dlib-resnet-v1|%' GROUP BY key "
            "ORDER BY COUNT(*) DESC"
        )
    ]


def cached_pairs(identities: int, key: str | None = None) -> tuple[Matrix, Matrix] | None:
    """(enrolled, probes) from the bias toolkit's descriptor cache (``key``: a chain of
    :func:`cache_keys`, by default the most complete), or None if it lacks them."""
    keys = [key] if key is not None else cache_keys()[:1]
    if not keys:
        return None
    conn = sqlite3.connect(f"file:{CACHE}?mode=ro", uri=True)
    enrolled, probes = [], []
    for person in (d for d in sorted(LFW.iterdir()) if len(list(d.glob("*.jpg"))) >= 2):
        photos = sorted(person.glob("*.jpg"))
        pair = []
        for photo in (photos[0], photos[-1]):
            digest = hashlib.sha256(photo.read_bytes()).hexdigest()
            row = conn.execute(
                "SELECT vector FROM descriptors WHERE sha256 = ? AND key = ? AND status = 'face'",
                (digest, keys[0]),
            ).fetchone()
            if row is None:
                break
            pair.append(np.frombuffer(row[0], dtype=np.float32))
        if len(pair) == 2:
            enrolled.append(pair[0])
            probes.append(pair[1])
        if len(enrolled) == identities:
            return np.stack(enrolled), np.stack(probes)
    return None


def start_pg(directory: Path, keep: bool, shared_buffers: str | None = None) -> tuple[str, Any]:
    """A pgserver on ``directory`` (``keep``: its files survive :meth:`cleanup`). With
    ``shared_buffers`` (a kept, stopped data directory) the server starts with that setting,
    written where ``ALTER SYSTEM`` writes (``postgresql.auto.conf``); without it, any such
    setting of an earlier run is removed (PostgreSQL's default, 128 MB, applies)."""
    auto = directory / "postgresql.auto.conf"
    if auto.exists():
        lines = [x for x in auto.read_text().splitlines() if not x.startswith("shared_buffers")]
        if shared_buffers is not None:
            lines.append(f"shared_buffers = '{shared_buffers}'")
        auto.write_text("\n".join(lines) + "\n")  # the file keeps its owner (the server's)
    elif shared_buffers is not None:
        raise SystemExit("--shared-buffers needs --pgdata with a data directory made before")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server

        server = get_server(directory, cleanup_mode="stop" if keep else "delete")
    return server.get_uri(), server


def database(admin_dsn: str, size: int, graph: dict[str, int]) -> tuple[str, str]:
    """(DSN, state) of the database ``scale_<size>``: "new" (created empty), "rows" (a kept
    ``--pgdata`` database whose collection holds ``size`` faces, without the ``graph`` asked
    for) or "ready" (rows and that graph)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"scale_{size}"
    params = conninfo_to_dict(admin_dsn)
    params["dbname"] = name
    dsn = make_conninfo("", **params)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            with psycopg.connect(dsn) as db:
                row = db.execute("SELECT uid, faces FROM collections JOIN face_vector_counts "
                                 "ON collection_uid = uid").fetchone()  # fmt: skip
                built = None if row is None else graph_options(db, row[0])
            if row is not None and row[1] == size:
                return dsn, "ready" if built == graph else "rows"
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return dsn, "new"


def graph_options(conn: psycopg.Connection[Any], uid: str) -> dict[str, int] | None:
    """The m and ef_construction of collection ``uid``'s HNSW index (None: it has none)."""
    row = conn.execute(
        "SELECT reloptions FROM pg_class WHERE relname = %s",
        (pgvectors.partition_name(uid) + "_hnsw",),
    ).fetchone()
    if row is None:
        return None
    options = {"m": 16, "ef_construction": 64}  # pgvector's defaults
    for option in row[0] or []:
        key, _, value = option.partition("=")
        options[key] = int(value)
    return options


def bulk_load(dsn: str, ids: list[str], data: Matrix) -> float:
    """Store the faces (COPY) without a graph; returns the load's seconds."""
    db = PostgresDatabase(dsn)
    db.enable_vectors()  # FACEGATE_VECTOR_INDEX=pgvector
    store = FaceStore(db)
    collection = store.create_collection(COLLECTION, "arn", "dlib-resnet-v1")
    store.db.close()
    uid = collection.uid
    partition = pgvectors.partition_name(uid)
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP INDEX IF EXISTS {partition}_hnsw")  # built after the rows
        with conn.cursor() as cur:
            columns = (
                "face_id, collection_uid, image_id, image_sha256, box_left, box_top, box_width, "
                "box_height, confidence, model_version, indexed_at, descriptor"
            )
            with cur.copy(f"COPY faces ({columns}) FROM STDIN") as copy:
                for face_id, vector in zip(ids, data, strict=True):
                    copy.write_row(
                        (face_id, uid, face_id, "0" * 64, 0.1, 0.1, 0.5, 0.5, 99.0,
                         "dlib-resnet-v1", 1.0, vector.tobytes())
                    )  # fmt: skip
            with cur.copy(f"COPY {partition} (collection_uid, face_id, ann) FROM STDIN") as copy:
                for face_id, key in zip(
                    ids, pgvectors.ann_keys(collection_space(), data), strict=True
                ):
                    copy.write_row((uid, face_id, key))
        conn.execute(
            "UPDATE face_vector_counts SET faces = %s WHERE collection_uid = %s", (len(ids), uid)
        )
        conn.execute("VACUUM ANALYZE faces")
        conn.execute(f"VACUUM ANALYZE {partition}")
    return time.perf_counter() - t0


def build_graph(
    dsn: str,
    graph: dict[str, int],
    until: float | None,
    workers: int = PARALLEL_MAINTENANCE_WORKERS,
) -> dict[str, Any]:
    """(Re)build the collection's HNSW index with ``graph`` (m, ef_construction), ``workers``
    parallel maintenance workers besides the leader, cancelled at ``until`` (epoch seconds; None:
    never). Returns the settings, whether it finished, its time
    and the progress samples (seconds since the start, phase, tuples done, tuples total)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        (uid,) = one(conn.execute("SELECT uid FROM collections").fetchone())
        partition = pgvectors.partition_name(uid)
        conn.execute(f"DROP INDEX IF EXISTS {partition}_hnsw")
        conn.execute(f"SET maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
        conn.execute(f"SET max_parallel_maintenance_workers = {int(workers)}")
        settings = {
            name: one(conn.execute(f"SHOW {name}").fetchone())[0]
            for name in ("maintenance_work_mem", "max_parallel_maintenance_workers",
                         "shared_buffers")
        }  # fmt: skip
        if until is not None:
            conn.execute(f"SET statement_timeout = {max(1, int(1000 * (until - time.time())))}")
        samples: list[dict[str, Any]] = []
        notices: list[str] = []  # pgvector says when the graph outgrows maintenance_work_mem
        conn.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
        load_at_start = os.getloadavg()[0]
        stop = threading.Event()
        t0 = time.perf_counter()
        watcher = threading.Thread(target=watch_build, args=(dsn, t0, samples, stop), daemon=True)
        watcher.start()
        finished = True
        try:
            conn.execute(
                f"CREATE INDEX {partition}_hnsw ON {partition} USING hnsw "
                f"((ann::vector({DIM})) vector_l2_ops) "
                f"WITH (m = {graph['m']}, ef_construction = {graph['ef_construction']})"
            )
        except psycopg.errors.QueryCanceled:
            finished = False
        elapsed = time.perf_counter() - t0
        stop.set()
        watcher.join()
        conn.execute("RESET statement_timeout")
    return {**graph, **settings, "finished": finished, "seconds": elapsed,
            "load_1m_at_start": load_at_start, "notices": notices,
            "progress": samples}  # fmt: skip


def watch_build(dsn: str, t0: float, samples: list[dict[str, Any]], stop: threading.Event) -> None:
    """Sample ``pg_stat_progress_create_index`` every :data:`PROGRESS_EVERY_S` until ``stop``."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.wait(PROGRESS_EVERY_S):
            row = conn.execute(
                "SELECT phase, tuples_done FROM pg_stat_progress_create_index "
                "WHERE datname = current_database()"
            ).fetchone()
            if row is None:
                continue
            # pgvector 0.6 counts the tuples loaded into the graph (its tuples_total stays 0)
            sample = {"s": time.perf_counter() - t0, "phase": row[0], "tuples_done": row[1],
                      "load_1m": os.getloadavg()[0]}  # fmt: skip
            samples.append(sample)
            print(f"  build {sample['s']:.0f} s: {row[0]} {row[1]} tuples, "
                  f"load {sample['load_1m']:.2f}", flush=True)  # fmt: skip


def stored_exact(dsn: str, enrolled: int) -> tuple[ExactIndex, Matrix]:
    """The exact in-memory index of the collection's stored rows, and its first ``enrolled``
    descriptors (the planted mates, ids 1..enrolled)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT face_id, descriptor FROM faces").fetchall()
    ids = [r[0] for r in rows]
    matrix = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype=np.float32)
    matrix = matrix.reshape(-1, DIM)
    exact = ExactIndex()
    exact.add(ids, matrix)
    position = {f: i for i, f in enumerate(ids)}
    mates = [position[str(uuid.UUID(int=i + 1))] for i in range(enrolled)]
    return exact, matrix[mates]


def matching_probes(stored: Matrix, identities: int, default: Matrix) -> Matrix:
    """The probes of the cache chain whose enrolled faces are ``stored`` (else ``default``)."""
    for key in cache_keys():
        pairs = cached_pairs(identities, key)
        if pairs is not None and np.array_equal(pairs[0][: len(stored)], stored):
            return pairs[1]
    return default


def collection_space() -> Any:
    from facegate.vectorspace import DLIB_SPACE

    return DLIB_SPACE


def start_probe(dsn: str, mode: str, probe: list[float], bound: float) -> dict[str, float]:
    """In this (fresh) process: open the store as a server does, answer one search; the time
    and the resident memory then (``mode``: "memory" or "pgvector")."""
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    store = FaceStore(PostgresDatabase(dsn), vectors_in_db=(mode == "pgvector"))
    collection = store.get_collection("", COLLECTION)
    store.nearest(collection, np.asarray(probe, dtype=np.float32), 4096, bound)
    elapsed = time.perf_counter() - t0
    return {"start_s": elapsed, "rss_growth_mib": (rss_bytes() - rss0) / 2**20}


def rss_bytes() -> int:
    """This process's resident set size (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def run_start(dsn: str, mode: str, probe: Matrix, bound: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--start-probe", dsn, mode, json.dumps(probe.tolist()),
         str(bound)],
        check=True, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def timed(
    index: ExactIndex | pgvectors.PgVectorIndex,
    queries: Matrix,
    bound: float,
    until: float | None = None,
) -> tuple[list[float], list[dict[str, float]], list[list[pgvectors.SearchPass]]]:
    """Per query: the time of a search at MaxFaces 4096 within ``bound``, its answer and (on
    pgvector) the candidate lists it read; the queries in order, stopping at ``until`` (epoch
    seconds; at least one query is measured)."""
    times: list[float] = []
    answers: list[dict[str, float]] = []
    traces: list[list[pgvectors.SearchPass]] = []
    for q in queries:
        if until is not None and times and time.time() > until:
            break
        t0 = time.perf_counter()
        if isinstance(index, pgvectors.PgVectorIndex):
            hits, passes = index.search_traced(q, 4096, bound)
        else:
            hits, passes = index.search(q, 4096, bound), []
        times.append(time.perf_counter() - t0)
        answers.append({h.face_id: h.distance for h in hits})
        traces.append(passes)
    return times, answers, traces


def lists_read(traces: list[list[pgvectors.SearchPass]]) -> dict[str, Any]:
    """How the searches of a row went: probes ending in a scan, probes that read pgvector's
    longest list (1,000), the mean number of lists read."""
    return {
        "scans": sum(any(p.kind == "scan" for p in t) for t in traces),
        "longest_list": sum(any(p.asked == pgvectors.EF_MAX for p in t) for t in traces),
        "lists_mean": float(np.mean([len(t) for t in traces])) if traces else 0.0,
    }


def compare(truth: list[dict[str, float]], found: list[dict[str, float]]) -> tuple[float, bool]:
    """(hit recall, every found distance equals the exact one and no face beyond is found)."""
    truth = truth[: len(found)]  # a row stopped early measured the first probes only
    total = sum(len(t) for t in truth)
    got = sum(len(t.keys() & f.keys()) for t, f in zip(truth, found, strict=True))
    equal = all(
        f.keys() <= t.keys() and all(f[i] == t[i] for i in f)
        for t, f in zip(truth, found, strict=True)
    )
    return (got / total if total else 1.0), equal


def one(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    if row is None:
        raise RuntimeError("no row")
    return row


def seconds(value: float | None) -> str:
    """A time in seconds, or where it was printed (a database loaded by an earlier run)."""
    return "(an earlier run)" if value is None else f"{value:.1f} s"


def ms(times: list[float], q: float) -> float:
    return 1000 * float(np.percentile(times, q))


def mean_hits(answers: list[dict[str, float]]) -> float:
    return float(np.mean([len(a) for a in answers]))


def share(until: float | None, rows: int) -> float | None:
    """When the next of ``rows`` rows must stop for each to have an equal share of the time
    left before ``until`` (None: no limit)."""
    if until is None:
        return None
    now = time.time()
    return now + max(0.0, until - now) / max(rows, 1)


def epoch_at(hhmm: str | None) -> float | None:
    """Today's ``HH:MM`` UTC as epoch seconds (None: none)."""
    if hhmm is None:
        return None
    hour, minute = (int(x) for x in hhmm.split(":"))
    now = datetime.now(UTC)
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--identities", type=int, default=300)
    parser.add_argument("--ef", default="100,400,1000", help="hnsw.ef_search values to measure")
    parser.add_argument("--m", type=int, default=pgvectors.HNSW_M, help="the graph's m")
    parser.add_argument(
        "--ef-construction", type=int, default=pgvectors.HNSW_EF_CONSTRUCTION,
        help="the graph's ef_construction",
    )  # fmt: skip
    parser.add_argument("--name", default="pgvector_scale", help="results file name")
    parser.add_argument(
        "--pgdata", type=Path, help="keep PostgreSQL's data here and reuse loaded collections"
    )
    parser.add_argument("--build-only", action="store_true", help="load and index, no search")
    parser.add_argument(
        "--no-build", action="store_true",
        help="build no graph: without one (a kept database), measure the exact index only",
    )  # fmt: skip
    parser.add_argument("--build-until", help="HH:MM UTC: cancel a graph build still running")
    parser.add_argument("--search-until", help="HH:MM UTC: stop taking probes")
    parser.add_argument(
        "--parallel-workers", type=int, default=PARALLEL_MAINTENANCE_WORKERS,
        help="max_parallel_maintenance_workers of the graph build (0: the leader alone)",
    )  # fmt: skip
    parser.add_argument(
        "--similarities", default="99,80",
        help="Similarity levels measured besides the base pack's (80 always: start-up uses it)",
    )  # fmt: skip
    parser.add_argument(
        "--shared-buffers", help="PostgreSQL's shared_buffers (with a kept --pgdata), e.g. 4GB"
    )
    args = parser.parse_args()
    build_until, search_until = epoch_at(args.build_until), epoch_at(args.search_until)
    graph = {"m": args.m, "ef_construction": args.ef_construction}
    pairs = cached_pairs(args.identities)
    if pairs is None:
        from facegate.engine.core import EngineConfig, FaceEngine

        pairs = lfw_pairs(FaceEngine(EngineConfig()), args.identities)
    enrolled, probes = pairs
    queries = probes[: args.queries]
    similarity = default_similarity()
    efs = [int(e) for e in args.ef.split(",")]
    levels_asked = sorted({float(t) for t in args.similarities.split(",")} | {80.0}, reverse=True)
    keep = args.pgdata is not None
    if args.pgdata is not None:
        args.pgdata.parent.mkdir(parents=True, exist_ok=True)
    directory = args.pgdata or Path(tempfile.mkdtemp(prefix="facegate-pgv-bench-")) / "data"
    admin, server = start_pg(directory, keep, args.shared_buffers)
    rows: list[dict[str, Any]] = []
    builds: dict[int, dict[str, Any]] = {}
    levels: dict[int, dict[str, float]] = {}
    with psycopg.connect(admin) as conn:
        buffers = str(one(conn.execute("SHOW shared_buffers").fetchone())[0])
    document: dict[str, Any] = {
        "complete": False, "load_1m_at_start": os.getloadavg()[0], "graph": graph,
        "shared_buffers": buffers,
        "command": " ".join(sys.argv[1:]), "builds": builds, "levels": levels, "rows": rows,
    }  # fmt: skip

    def save() -> None:
        write_results(args.name, {"machine": machine_info(), "queries": len(queries), **document})

    try:
        for size in (int(s) for s in args.sizes.split(",")):
            n_synthetic = max(0, size - len(enrolled))
            data = np.vstack([enrolled, synthetic(enrolled, n_synthetic, seed=size)])[:size]
            data = np.ascontiguousarray(data, dtype=np.float32)
            ids = [str(uuid.UUID(int=i + 1)) for i in range(size)]
            dsn, state = database(admin, size, graph)
            load_s = bulk_load(dsn, ids, data) if state == "new" else None  # None: loaded before
            ready = state == "ready"
            build = {**graph, "finished": ready, "seconds": None, "reused": ready}
            if state != "ready" and not args.no_build:
                print(f"{size}: building the graph m {args.m}, ef_construction "
                      f"{args.ef_construction}", flush=True)  # fmt: skip
                build = build_graph(dsn, graph, build_until, args.parallel_workers)
            builds[size] = {"load_s": load_s, **build}
            save()
            print(f"{size}: loaded in {seconds(load_s)}, HNSW "
                  f"{'built' if build['finished'] else 'not built'} after "
                  f"{seconds(build['seconds'])}", flush=True)  # fmt: skip
            if args.build_only:
                continue
            graphed = bool(build["finished"])  # without a graph: the exact index's rows only
            with psycopg.connect(dsn) as conn:
                (uid,) = one(conn.execute("SELECT uid FROM collections").fetchone())
                part = pgvectors.partition_name(uid)
                sizes = one(
                    conn.execute(
                        f"SELECT pg_relation_size('{part}'), "
                        f"COALESCE(pg_relation_size(to_regclass('{part}_hnsw')), 0)"
                    ).fetchone()
                )
            # the truth is the exact index of the rows stored (a reused database may have been
            # loaded from another cache chain: its probes are the chain whose enrolled faces
            # match the stored ones)
            exact, stored_enrolled = stored_exact(dsn, len(enrolled))
            queries = matching_probes(stored_enrolled, args.identities, probes)[: args.queries]
            store = FaceStore(PostgresDatabase(dsn))
            collection = store.get_collection("", COLLECTION)
            index = store.index(collection)
            assert isinstance(index, pgvectors.PgVectorIndex)
            efs_here = efs if graphed else []
            raised = size_aware_threshold(BOUND, size, similarity)
            # the raised threshold's distance (100: nothing is promised, only identical faces)
            bounds = {raised: similarity.distance_for(raised) if raised < 100 else 0.0}
            bounds.update({t: similarity.distance_for(t) for t in levels_asked})
            levels[size] = {str(t): d for t, d in bounds.items()}
            base = {"faces": size, "load_s": load_s, "hnsw_build_s": build["seconds"],
                    "table_mib": sizes[0] / 2**20, "hnsw_mib": sizes[1] / 2**20}  # fmt: skip
            first = len(rows)
            left = len(bounds) * len(efs_here)  # pgvector rows still to measure
            for threshold, bound in sorted(bounds.items(), reverse=True):  # fastest first
                t_exact, truth, _ = timed(exact, queries, bound)
                mates = sum(str(uuid.UUID(int=i + 1)) in a for i, a in enumerate(truth))
                level = "base pack, bound 1" if threshold == raised else ""
                rows.append({**base, "index": "exact (memory)", "similarity": threshold,
                             "level": level, "distance": bound, "queries": len(queries),
                             "median_ms": ms(t_exact, 50), "p99_ms": ms(t_exact, 99),
                             "hit_recall": 1.0, "equal": True,
                             "hits_per_query": mean_hits(truth),
                             "mates_found": mates / len(queries)})  # fmt: skip
                for ef in efs_here:
                    index.ef_search = ef
                    t_pg, found, traces = timed(index, queries, bound, share(search_until, left))
                    left -= 1
                    recall, equal = compare(truth, found)
                    rows.append({**base, "index": f"pgvector ef={ef}", "similarity": threshold,
                                 "level": level, "distance": bound, "queries": len(found),
                                 "median_ms": ms(t_pg, 50), "p99_ms": ms(t_pg, 99),
                                 "hit_recall": recall, "equal": equal,
                                 "truth_hits": sum(len(t) for t in truth[: len(found)]),
                                 "hits_per_query": mean_hits(found),
                                 **lists_read(traces)})  # fmt: skip
                    print(rows[-1], flush=True)
                    save()
            store.db.close()
            past = not graphed or (search_until is not None and time.time() > search_until)
            starts = {
                m: run_start(dsn, m, queries[0], bounds[80.0]) if not past else {}
                for m in ("memory", "pgvector")
            }
            for r in rows[first:]:
                mode = "memory" if r["index"].startswith("exact") else "pgvector"
                r.update({f"start_{k}": v for k, v in starts[mode].items()})
            save()
    finally:
        server.cleanup()  # with --pgdata: stops PostgreSQL, its files stay for the next run
        if not keep:
            shutil.rmtree(directory.parent, ignore_errors=True)
    document["complete"] = True
    save()
    if args.build_only:
        return
    info = machine_info()
    print(machine_line(info))
    print(
        f"{len(queries)} real LFW probes, each with one mate planted; MaxFaces 4096; graph m "
        f"{args.m}, ef_construction {args.ef_construction}; pgvector 0.6.2 on PostgreSQL 16 "
        f"(pgserver, default settings but shared_buffers {buffers})"
    )
    header = (
        f"{'faces':>9} {'index':>16} {'sim':>6} {'dist':>6} {'median':>8} {'p99':>8} "
        f"{'hit recall':>11} {'equal':>6} {'hits/q':>7} {'probes':>6} {'start s':>8} "
        f"{'RSS MiB':>8} {'scans':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['faces']:>9} {r['index']:>16} {r['similarity']:>6g} {r['distance']:>6.3f} "
            f"{cell(r['median_ms'], 8, 2)} {cell(r['p99_ms'], 8, 2)} "
            f"{cell(r['hit_recall'], 11, 4)} {r['equal']!s:>6} "
            f"{cell(r['hits_per_query'], 7, 2)} {r['queries']:>6} "
            f"{cell(r.get('start_start_s'), 8, 2)} {cell(r.get('start_rss_growth_mib'), 8, 0)} "
            f"{r.get('scans', ''):>5}"
        )
    for size, b in builds.items():
        sized = [x for x in rows if x["faces"] == size]
        where = "".join(
            f", partition {x['table_mib']:.0f} MiB, HNSW index {x['hnsw_mib']:.0f} MiB"
            for x in sized[:1]
        )
        last = b.get("progress", [])[-1:] or [{}]
        how = (
            "built" if b["finished"]
            else f"cancelled at {last[0].get('tuples_done')} of {size} tuples" if "progress" in b
            else "not built (--no-build)"
        )  # fmt: skip
        took = "" if how.startswith("not") else f" after {seconds(b['seconds'])}"
        print(f"{size} faces: bulk load {seconds(b['load_s'])}, HNSW (m {b['m']}, ef_construction "
              f"{b['ef_construction']}) {how}{took}{where}")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--start-probe":
        probe_vector = json.loads(sys.argv[4])
        print(json.dumps(start_probe(sys.argv[2], sys.argv[3], probe_vector, float(sys.argv[5]))))
    else:
        main()
