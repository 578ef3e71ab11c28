"""SearchFacesByImage end to end on a 640x480 one-face photo against 100,000 faces: the dlib path
and the fast path side by side, in process and through a live server.

    .venv/bin/python bench/search_e2e.py [--faces 100000] [--queries 30] [--rounds 3] [--quick]

The two paths differ only in the engine's two settings:

* dlib path: ``FACEGATE_DESCRIPTOR_RUNTIME=dlib FACEGATE_DETECTOR=hog`` (dlib's descriptor, HOG
  upsampled once first in the detector chain: the engine before the fast path);
* fast path: the defaults (the ONNX export of the same network, MTCNN first with its boxes
  mapped to HOG's geometry).

The collection: ``--faces`` faces in one collection of a real server's SQLite store. The probe's
person is indexed for real (obama2.jpg through IndexFaces). The rest are synthetic descriptors
drawn with the full covariance of real LFW descriptors (``search_scale.synthetic``), written
straight into the store: enrolling 100,000 photos through IndexFaces would take over an hour, and
search time depends on the vectors, not on where they came from. The probe is the 640x480
one-face image of ``engine_speed.py`` (obama-1080p.jpg letterboxed), at Rekognition's defaults
(FaceMatchThreshold 80, MaxFaces 4096).

Measured, interleaving the paths (alternating which goes first):

1. In process: ``FaceEngine.analyze`` (largest face only, as SearchFacesByImage) and the search
   (``ops.search.scored_hits``: the exact index, cohort normalisation, calibrated Similarity) over
   the store's 100,000 faces. Median ms of ``--queries`` x ``--rounds`` runs each.
2. Through ``facegate serve`` (2 engine worker processes, the default policy pack, the audit log)
   with boto3, one request at a time: the whole request (SigV4, policy decision, engine in a
   worker process, search, audit record, JSON), at MaxFaces 4096 and, alternating with it, at
   MaxFaces 1 (the same search, one match in the answer: what the answer's size costs). The two
   servers share the data dir, so they take turns: each round starts one, warms it with one
   search, times ``--queries`` requests of each kind and stops it.

Prints a table with ratios and the machine, writes bench/results/search_e2e.json. The issue's
target: fast path engine + search under 60 ms median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from benchlib import ROOT, SAMPLES, machine_info, machine_line, write_results
from engine_speed import build_images
from facegate.config import Settings
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.matching import default_matcher
from facegate.engine.models import load_models
from facegate.engine.pool import EnginePool
from facegate.ops.common import OpDeps, PageTokens
from facegate.ops.search import scored_hits
from facegate.store.db import open_database
from facegate.store.idempotency import IdempotencyRepository
from facegate.store.records import NewFace
from facegate.store.store import FaceStore
from search_scale import lfw_pairs, synthetic

sys.path.insert(0, str(ROOT))
from tests.e2e.server import LiveServer

COLLECTION = "bench-100k"
THRESHOLD = 80.0
MAX_FACES = 4096
PATHS: dict[str, dict[str, str]] = {
    "dlib path": {"FACEGATE_DESCRIPTOR_RUNTIME": "dlib", "FACEGATE_DETECTOR": "hog"},
    "fast path": {},
}
CONFIGS: dict[str, EngineConfig] = {
    name: Settings.from_env(env).engine for name, env in PATHS.items()
}
"""The engines the servers run with ``PATHS``' settings, for the in-process measurements."""


def populate(data_dir: Path, faces: int, engine: FaceEngine) -> str:
    """Create the collection through a live server (IndexFaces of the probe's person), then add
    synthetic faces straight into its store; returns the real face's id."""
    server = LiveServer(data_dir, workers=1)
    server.start()
    try:
        rek = server.client()
        rek.create_collection(CollectionId=COLLECTION)
        out = rek.index_faces(
            CollectionId=COLLECTION, Image={"Bytes": (SAMPLES / "obama2.jpg").read_bytes()}
        )
        real_id = str(out["FaceRecords"][0]["Face"]["FaceId"])
    finally:
        server.stop()
    enrolled, _ = lfw_pairs(engine, 300)
    vectors = synthetic(enrolled, faces - 1, seed=1)
    db = open_database(data_dir / "facegate.sqlite3")
    try:
        store = FaceStore(db)
        collection = store.get_collection("local", COLLECTION)
        template = store.get_faces(collection, [real_id])[real_id]
        for start in tqdm(range(0, len(vectors), 5000), desc="store", unit="5k faces"):
            block = vectors[start : start + 5000]
            store.add_faces(
                collection,
                [
                    NewFace(
                        replace(
                            template,
                            face_id=str(uuid.uuid4()),
                            image_id=str(uuid.uuid4()),
                            external_image_id=None,
                        ),
                        np.asarray(v, dtype=np.float32),
                    )
                    for v in block
                ],
            )
    finally:
        db.close()
    return real_id


def in_process(data_dir: Path, probe: bytes, queries: int, rounds: int) -> dict[str, Any]:
    """Engine and search medians per path (see the module docstring)."""
    db = open_database(data_dir / "facegate.sqlite3")
    store = FaceStore(db)
    collection = store.get_collection("local", COLLECTION)
    store.index(collection)  # build the in-memory index before timing
    models = load_models()
    engines = {name: FaceEngine(config, models=models) for name, config in CONFIGS.items()}
    deps = OpDeps(
        engine=EnginePool(EngineConfig(), workers=1),  # never started: the engine runs here
        store=store,
        idempotency=IdempotencyRepository(db),
        matcher=default_matcher(),
        pages=PageTokens(b"\0" * 32),
        region="us-east-1",
        account_id="000000000000",
    )
    times: dict[str, dict[str, list[float]]] = {
        n: {"engine": [], "search": [], "total": []} for n in engines
    }
    found: dict[str, int] = {}
    # One event loop for every search, as in the server (a loop per search would also time
    # starting its thread pool).
    loop = asyncio.new_event_loop()
    for engine in engines.values():
        engine.analyze(probe, max_faces=1)  # warm
    for i in range(queries * rounds):
        order = list(engines.items())
        for name, engine in order if i % 2 == 0 else reversed(order):
            t0 = time.perf_counter()
            analysis = engine.analyze(probe, max_faces=1)
            t1 = time.perf_counter()
            descriptor = analysis.faces[0].descriptor
            assert descriptor is not None
            hits = loop.run_until_complete(
                scored_hits(deps, collection, descriptor, THRESHOLD, MAX_FACES)
            )
            t2 = time.perf_counter()
            times[name]["engine"].append(t1 - t0)
            times[name]["search"].append(t2 - t1)
            times[name]["total"].append(t2 - t0)
            found[name] = len(hits)
    loop.close()
    faces = store.face_count(collection)
    db.close()
    return {"runs_s": times, "matches": found, "faces": faces}


def through_servers(data_dir: Path, probe: bytes, queries: int, rounds: int) -> dict[str, Any]:
    """SearchFacesByImage latency through a live server per path, one request at a time."""
    servers = {
        name: LiveServer(data_dir, workers=2, env={**env, "FACEGATE_RATE_LIMIT_RPS": "0"})
        for name, env in PATHS.items()
    }
    # One data dir (one audit chain, one writer): the servers take turns, each started per round.
    out: dict[str, Any] = {
        "runs_s": {n: [] for n in servers},
        "runs_s_max_faces_1": {n: [] for n in servers},
        "matches": {},
        "start_s": {},
    }
    for r in range(rounds):
        order = list(servers.items())
        for name, server in order if r % 2 == 0 else reversed(order):
            t0 = time.perf_counter()
            server.start()
            out["start_s"][name] = time.perf_counter() - t0
            try:
                rek = server.client()
                reply = rek.search_faces_by_image(
                    CollectionId=COLLECTION, Image={"Bytes": probe}, MaxFaces=MAX_FACES
                )  # warm-up, not timed
                out["matches"][name] = len(reply["FaceMatches"])
                for i in range(2 * queries):
                    max_faces = MAX_FACES if i % 2 == 0 else 1
                    t0 = time.perf_counter()
                    rek.search_faces_by_image(
                        CollectionId=COLLECTION, Image={"Bytes": probe}, MaxFaces=max_faces
                    )
                    key = "runs_s" if max_faces == MAX_FACES else "runs_s_max_faces_1"
                    out[key][name].append(time.perf_counter() - t0)
            finally:
                server.stop()
    return out


def ms(values: list[float]) -> float:
    return 1000 * statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1,000 faces, 3 queries, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.faces, args.queries, args.rounds = 1000, 3, 1
    probe = next(img for img in build_images(SAMPLES) if img.name == "640x480, 1 face").data
    info = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        models_engine = FaceEngine()
        populate(data_dir, args.faces, models_engine)
        local = in_process(data_dir, probe, args.queries, args.rounds)
        served = through_servers(data_dir, probe, args.queries, args.rounds)
    info["load_1m_at_end"] = machine_info()["load_1m_at_end"]
    rows = []
    for label, key in (("engine", "engine"), ("search", "search"), ("engine + search", "total")):
        dlib = ms(local["runs_s"]["dlib path"][key])
        fast = ms(local["runs_s"]["fast path"][key])
        rows.append((f"in process: {label} ms", dlib, fast))
    dlib = ms(served["runs_s"]["dlib path"])
    fast = ms(served["runs_s"]["fast path"])
    rows.append(("SearchFacesByImage via boto3 and the server, ms", dlib, fast))
    dlib = ms(served["runs_s_max_faces_1"]["dlib path"])
    fast = ms(served["runs_s_max_faces_1"]["fast path"])
    rows.append(("the same with MaxFaces=1 (one match in the answer), ms", dlib, fast))
    print(machine_line(info))
    print(
        f"{local['faces']:,} faces in the collection; 640x480 one-face probe; "
        f"{args.queries * args.rounds} queries per path in process, {args.queries * args.rounds} "
        "through each server; medians"
    )
    header = f"{'measure':<56} {'dlib path':>10} {'fast path':>10} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for label, d, f in rows:
        print(f"{label:<56} {d:10.1f} {f:10.1f} {d / f:7.2f}")
    print(f"matches at Similarity >= 80: in process {local['matches']}, served {served['matches']}")
    write_results(
        "search_e2e",
        {
            "machine": info,
            "settings": vars(args),
            "faces": local["faces"],
            "medians_ms": {label: {"dlib path": d, "fast path": f} for label, d, f in rows},
            "matches": {"in_process": local["matches"], "served": served["matches"]},
            "server_start_s": served["start_s"],
            "runs_s": {
                "in_process": local["runs_s"],
                "served": served["runs_s"],
                "served_max_faces_1": served["runs_s_max_faces_1"],
            },
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
