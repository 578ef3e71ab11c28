"""Issue 19's cost target end to end: SearchFacesByImage (640x480, one face, 100,000 faces) per
face model through one live server, side by side in one run.

    PYTHONPATH=src:bench nice -n 10 .venv/bin/python bench/fusion_e2e.py [--faces 100000]
        [--probes 40] [--clients 1,2] [--no-in-process] [--json NAME] [--smoke]
        [--before-src OTHER_CHECKOUT/src]

The target (issue 19): "SearchFacesByImage end to end (640x480, one face, 100k faces) at most
1.5x dlib's time". ``bench/fusion_targets.py --cost-only`` measures the model-dependent part in
process (the probe's engine and the exact search); this measures the whole request, which also
pays what is the same for every model: HTTP, SigV4, JSON, the Cedar decision and obligations,
the tail estimate, the audit record (fsync).

Set-up: one ``facegate serve`` (``tests.e2e.server.LiveServer``: uvicorn, 2 engine workers,
SQLite, the default policy pack, the audit log; ``FACEGATE_RATE_LIMIT_RPS=0`` so the limiter does
not throttle a bench) and three collections, one per model, pinned at CreateCollection with the
tag ``facegate:face-model``. Each collection holds:

* planted mates: for each of ``--probes`` LFW people with two or more photos (sorted by name),
  the first photo indexed for real (IndexFaces through the server, the collection's model);
* strangers up to ``--faces``: synthetic vectors written straight into the store (IndexFaces of
  300,000 photos would take hours), drawn from a Gaussian with the full covariance of the fused
  model's real vectors of 1,000 LFW and 1,000 FairFace images (the bias toolkit's descriptor
  cache, as ``fusion_targets.py --cost-only``): each stranger is one 1,152-d fused draw, and the
  dlib and faceres collections get its two slices, so the three collections hold the same
  strangers, each in its model's space.

The server is then restarted so it loads the three collections. Probes: each person's last photo
(not the indexed one) letterboxed to 640x480 (``engine_speed.letterbox``, JPEG quality 92). With
boto3 (SigV4), SearchFacesByImage at Rekognition's defaults (FaceMatchThreshold 80, MaxFaces
4096), round robin over the models (the first model of each round rotates); the first pass over
every probe and model warms up and is not timed. Then, with ``--clients 2``, two clients at
once, each its own half of the probes in the same round robin. Per model: median and p90 ms,
the ratio of medians to dlib's in the same run, the hits per search, how often the planted mate
was among them, and the threshold the policy raised the request to (the base pack's bound on
expected false candidates: ``x-facegate-threshold-raised-to``).

With ``--before-src``, a second server serves a copy of the same store with the facegate
package of that folder (the code before a change: another worktree's ``src``), started beside
the first; every request goes to both in turn (which first alternates by probe), so both are
measured under the same load, side by side in one run.

After the server stops, the same probes on the same store in process (``--no-in-process``
skips it): the engine and the server's search step apart (:func:`in_process`), so the request's
model-independent share is the server's median minus their sum.

Prints the tables with the machine (load average before and after); writes
``bench/results/fusion_e2e.json`` (``--smoke``: 2,000 faces, 6 probes, 1 client;
``fusion_e2e_smoke.json``).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from benchlib import ROOT, machine_info, machine_line, write_results
from engine_speed import letterbox
from facegate.bias.datasets import Manifest, load_fairface, load_lfw
from facegate.bias.descriptors import FACE, DescriptorCache
from facegate.bias.model_descriptors import compute_fused_descriptors
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.descriptors import DLIB_RESNET_V1, FACERES_V1, FUSED_DLIB_FACERES_V1
from facegate.engine.image import encode_jpeg
from facegate.engine.matching import MatcherSet
from facegate.ops.common import MODEL_TAG
from facegate.ops.estimates import FalseCandidates
from facegate.ops.search import _scored
from facegate.store.db import open_database
from facegate.store.records import NewFace
from facegate.store.store import FaceStore
from search_scale import LFW, synthetic

sys.path.insert(0, str(ROOT))
from tests.e2e.server import LiveServer

MODELS = (DLIB_RESNET_V1, FACERES_V1, FUSED_DLIB_FACERES_V1)
THRESHOLD = 80.0
MAX_FACES = 4096
DATA = ROOT.parent / "shared" / "data"
RAISED = "x-facegate-threshold-raised-to"


def collection_id(model: str) -> str:
    return f"e2e-{model}"


def real_pool(images: int) -> np.ndarray:
    """The fused model's vectors of ``images`` LFW and FairFace images each (every k-th image),
    from the descriptor cache (computed by the engine where absent)."""
    lfw_m, _ = load_lfw(DATA / "lfw")
    subsets = []
    for manifest in (lfw_m, load_fairface(DATA / "fairface_val")):
        step = max(1, len(manifest.samples) // images)
        subsets.append(Manifest(f"{manifest.name}[::{step}]", manifest.samples[::step][:images]))
    fused, _ = compute_fused_descriptors(
        subsets, FUSED_DLIB_FACERES_V1, cache=DescriptorCache(None), progress=False
    )
    return np.vstack([s.vectors[list(s.indices(FACE))] for s in fused])


def people(n: int) -> list[tuple[str, Path, bytes]]:
    """(name, first photo, last photo letterboxed to a 640x480 JPEG) of the first ``n`` LFW
    people with two or more photos, by name."""
    out = []
    for person in sorted(LFW.iterdir()):
        photos = sorted(person.glob("*.jpg"))
        if len(photos) < 2:
            continue
        pixels = np.asarray(letterbox(Image.open(photos[-1]).convert("RGB"), 640, 480))
        out.append((person.name, photos[0], encode_jpeg(pixels.astype(np.uint8), quality=92)))
        if len(out) == n:
            break
    return out


def part_of(model: str, fused: np.ndarray) -> np.ndarray:
    """The columns of fused vectors that are ``model``'s (dlib: the first 128)."""
    if model == DLIB_RESNET_V1:
        return fused[:, :128]
    if model == FACERES_V1:
        return fused[:, 128:]
    return fused


def seed(
    data_dir: Path, faces: int, persons: list[tuple[str, Path, bytes]], strangers: np.ndarray
) -> dict[str, dict[str, str]]:
    """Create the three collections through a live server, index each person's first photo in
    each, stop the server, then write the strangers into the store. Returns, per model, the
    planted face id of each person."""
    server = LiveServer(data_dir, workers=2, env={"FACEGATE_RATE_LIMIT_RPS": "0"})
    server.start()
    planted: dict[str, dict[str, str]] = {m: {} for m in MODELS}
    try:
        rek = server.client()
        for model in MODELS:
            rek.create_collection(CollectionId=collection_id(model), Tags={MODEL_TAG: model})
            for name, first, _ in tqdm(persons, desc=f"IndexFaces {model}", leave=False):
                out = rek.index_faces(
                    CollectionId=collection_id(model),
                    Image={"Bytes": first.read_bytes()},
                    ExternalImageId=name,
                    MaxFaces=1,
                )
                if out["FaceRecords"]:
                    planted[model][name] = str(out["FaceRecords"][0]["Face"]["FaceId"])
    finally:
        server.stop()
    db = open_database(data_dir / "facegate.sqlite3")
    try:
        store = FaceStore(db)
        for model in MODELS:
            collection = store.get_collection("local", collection_id(model))
            assert collection is not None
            template = store.get_faces(collection, [next(iter(planted[model].values()))])
            record = next(iter(template.values()))
            vectors = part_of(model, strangers[: max(0, faces - len(planted[model]))])
            for start in tqdm(range(0, len(vectors), 5000), desc=f"store {model}", leave=False):
                store.add_faces(
                    collection,
                    [
                        NewFace(
                            replace(
                                record,
                                face_id=str(uuid.uuid4()),
                                image_id=str(uuid.uuid4()),
                                external_image_id=None,
                            ),
                            np.ascontiguousarray(v, dtype=np.float32),
                        )
                        for v in vectors[start : start + 5000]
                    ],
                )
    finally:
        db.close()
    return planted


def search(rek: Any, model: str, probe: bytes) -> tuple[float, list[str], str | None]:
    """One SearchFacesByImage: (seconds, matched face ids, the raised threshold or None)."""
    t0 = time.perf_counter()
    reply = rek.search_faces_by_image(
        CollectionId=collection_id(model),
        Image={"Bytes": probe},
        FaceMatchThreshold=THRESHOLD,
        MaxFaces=MAX_FACES,
    )
    elapsed = time.perf_counter() - t0
    ids = [str(m["Face"]["FaceId"]) for m in reply["FaceMatches"]]
    return elapsed, ids, reply["ResponseMetadata"]["HTTPHeaders"].get(RAISED)


def run_client(
    clients: dict[str, Any],
    probes: list[tuple[str, bytes]],
    planted: dict[str, dict[str, str]],
    offset: int,
    sink: dict[str, dict[str, list[dict[str, Any]]]],
) -> None:
    """Round robin over the models for each probe (the first model rotates with ``offset``),
    each model's request sent to every server in turn (``clients``: one boto3 client per
    server label; the first label alternates between probes)."""
    labels = list(clients)
    for i, (name, probe) in enumerate(probes):
        k = (i + offset) % len(MODELS)
        for model in MODELS[k:] + MODELS[:k]:
            for label in labels if i % 2 == 0 else labels[::-1]:
                rek = clients[label]
                try:
                    seconds, ids, raised = search(rek, model, probe)
                except rek.exceptions.InvalidParameterException:
                    continue  # no face found in the probe
                mate = planted[model].get(name)
                sink[label][model].append(
                    {
                        "s": seconds,
                        "hits": len(ids),
                        "mate_found": mate is not None and mate in ids,
                        "raised_to": raised,
                    }
                )


def measure(
    servers: dict[str, LiveServer],
    probes: list[tuple[str, bytes]],
    planted: dict[str, dict[str, str]],
    clients: int,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``clients`` client threads at once, each its share of the probes, each sending every
    request to every server in turn (see run_client). Per server label, per model."""
    sinks: list[dict[str, dict[str, list[dict[str, Any]]]]] = [
        {label: {m: [] for m in MODELS} for label in servers} for _ in range(clients)
    ]
    threads = [
        threading.Thread(
            target=run_client,
            args=(
                {label: server.client() for label, server in servers.items()},
                probes[c::clients],
                planted,
                c,
                sinks[c],
            ),
        )
        for c in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        label: {m: [r for s in sinks for r in s[label][m]] for m in MODELS} for label in servers
    }


def in_process(
    data_dir: Path, probes: list[tuple[str, bytes]]
) -> dict[str, dict[str, list[float]]]:
    """The model-dependent part alone, on the same store after the server stopped, in this
    process: ``FaceEngine.analyze`` of each probe (largest face, the collection's model) and the
    search step the server runs (``ops.search._scored``: the tail estimate with the base pack's
    bound of 1 expected false candidate, the index search, the hits' scoring and records), at
    Similarity 80, round robin as :func:`run_client`, after a warm-up pass; then the same search
    without the tail estimate, at the threshold the tail raised it to (``search_no_tail``: what
    the tail itself costs). Seconds per stage."""
    config = EngineConfig()
    engine = FaceEngine(config)
    matchers = MatcherSet(config.registry(), config.matcher, "cohort")
    db = open_database(data_dir / "facegate.sqlite3")
    try:
        store = FaceStore(db)
        collections = {m: store.get_collection("local", collection_id(m)) for m in MODELS}
        for c in collections.values():
            assert c is not None
            store.index(c)  # load the vectors before timing
        times: dict[str, dict[str, list[float]]] = {
            m: {"engine": [], "search": [], "search_no_tail": []} for m in MODELS
        }
        for rep in range(2):
            for i, (_, probe) in enumerate(probes):
                k = i % len(MODELS)
                for model in MODELS[k:] + MODELS[:k]:
                    t0 = time.perf_counter()
                    pinned = None if model == DLIB_RESNET_V1 else model  # as ops.common.model_of
                    faces = engine.analyze(probe, max_faces=1, model=pinned).faces
                    t1 = time.perf_counter()
                    if not faces or faces[0].descriptor is None:
                        continue
                    vector = np.asarray(faces[0].descriptor, dtype=np.float32)
                    collection = collections[model]
                    assert collection is not None
                    matcher = matchers.for_model(model)
                    estimate = FalseCandidates(bound=1.0)
                    _scored(store, matcher, collection, vector, THRESHOLD, MAX_FACES, estimate)
                    t2 = time.perf_counter()
                    # the same search without the tail, at the threshold the tail raised it to
                    raised = estimate.raised_to_pct or THRESHOLD
                    _scored(store, matcher, collection, vector, raised, MAX_FACES)
                    t3 = time.perf_counter()
                    if rep:  # the first pass warms up
                        times[model]["engine"].append(t1 - t0)
                        times[model]["search"].append(t2 - t1)
                        times[model]["search_no_tail"].append(t3 - t2)
    finally:
        db.close()
    return times


def summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per model: median and p90 ms, ratio of medians to dlib's, hits, mates, raised thresholds."""
    out: dict[str, dict[str, Any]] = {}
    for model in MODELS:
        rows = runs[model]
        ms = [1000 * r["s"] for r in rows]
        out[model] = {
            "requests": len(rows),
            "median_ms": statistics.median(ms),
            "p90_ms": float(np.percentile(ms, 90)),
            "hits_median": statistics.median(r["hits"] for r in rows),
            "hits_mean": float(np.mean([r["hits"] for r in rows])),
            "mate_found": float(np.mean([r["mate_found"] for r in rows])),
            "raised_to": sorted({str(r["raised_to"]) for r in rows}),
        }
    base = out[DLIB_RESNET_V1]["median_ms"]
    for model in MODELS:
        out[model]["over_dlib"] = out[model]["median_ms"] / base
    return out


def table(clients: int, rows: dict[str, dict[str, Any]]) -> list[str]:
    """The printed rows: hits, mate and other are per search (other: hits that are not the
    probe's planted mate)."""
    lines = [
        f"{clients} client(s): {'model':<24} {'n':>4} {'median ms':>10} {'p90 ms':>8} "
        f"{'x dlib':>7} {'hits':>6} {'mate':>6} {'other':>6}  threshold raised to"
    ]
    for model, r in rows.items():
        lines.append(
            f"{'':<13}{model:<24} {r['requests']:>4} {r['median_ms']:10.1f} {r['p90_ms']:8.1f} "
            f"{r['over_dlib']:7.2f} {r['hits_mean']:6.2f} {r['mate_found']:6.2f} "
            f"{r['hits_mean'] - r['mate_found']:6.2f}  "
            f"{', '.join(r['raised_to'])}"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=100_000, help="faces per collection")
    parser.add_argument("--probes", type=int, default=40, help="probes (and planted people)")
    parser.add_argument("--clients", default="1,2", help="client counts to measure, in order")
    parser.add_argument("--pool-images", type=int, default=1000)
    parser.add_argument(
        "--no-in-process", action="store_true", help="skip the in-process engine/search split"
    )
    parser.add_argument("--json", default=None, help="results name (default: fusion_e2e)")
    parser.add_argument(
        "--before-src",
        type=Path,
        default=None,
        help="also serve a copy of the store with the facegate package at this src folder "
        "(e.g. another checkout's src: the code before a change), every request sent to both",
    )
    parser.add_argument("--smoke", action="store_true", help="2,000 faces, 6 probes, 1 client")
    args = parser.parse_args()
    if args.smoke:
        args.faces, args.probes, args.clients = 2000, 6, "1"
    started = time.time()
    before = machine_info()["load_1m_at_end"]
    persons = people(args.probes)
    pool = real_pool(args.pool_images)
    strangers = synthetic(pool, max(0, args.faces - len(persons)), seed=19)
    probes = [(name, probe) for name, _, probe in persons]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        t0 = time.perf_counter()
        planted = seed(data_dir, args.faces, persons, strangers)
        seed_s = time.perf_counter() - t0
        del strangers
        env = {"FACEGATE_RATE_LIMIT_RPS": "0"}
        servers = {"after": LiveServer(data_dir, workers=2, env=env)}
        if args.before_src:
            # the same store, copied, served by the code at --before-src
            shutil.copytree(data_dir, Path(tmp) / "before")
            servers["before"] = LiveServer(
                Path(tmp) / "before",
                workers=2,
                env=env | {"PYTHONPATH": str(args.before_src.resolve())},
            )
        t0 = time.perf_counter()
        for server in servers.values():
            server.start(timeout_s=900)
        start_s = time.perf_counter() - t0
        try:
            measure(servers, probes, planted, 1)  # warm-up: every probe on every model
            for clients in (int(c) for c in args.clients.split(",")):
                runs = measure(servers, probes, planted, clients)
                for label, by_model in runs.items():
                    results.setdefault(label, {})[str(clients)] = {
                        "summary": summary(by_model),
                        "runs": by_model,
                    }
        finally:
            for server in servers.values():
                server.stop()
        if not args.no_in_process:
            local = in_process(data_dir, probes)
    info = machine_info()
    info["load_1m_before"] = before
    print(machine_line(info), f"(before: {before})")
    print(
        f"SearchFacesByImage via boto3 and one live server (2 engine workers, SQLite, default "
        f"policy pack, audit log); {args.faces:,} faces per collection ({len(persons)} planted "
        f"LFW mates); {len(probes)} LFW probes letterboxed to 640x480; FaceMatchThreshold "
        f"{THRESHOLD:g}, MaxFaces {MAX_FACES}; round robin over the models after a warm-up pass"
    )
    for label, by_count in results.items():
        if len(results) > 1:
            print(f"{label}: {args.before_src if label == 'before' else 'this checkout'}")
        for count, r in by_count.items():
            print("\n".join(table(int(count), r["summary"])))
    split: dict[str, dict[str, float]] = {}
    if not args.no_in_process:
        one = results["after"][args.clients.split(",")[0]]["summary"]
        print(
            f"in process, same store and probes after the server stopped: {'model':<24} "
            f"{'engine ms':>9} {'search ms':>9} {'sum':>6} {'x dlib':>7} {'server - sum':>12} "
            f"{'search w/o tail':>15}"
        )
        for model in MODELS:
            engine_ms = 1000 * statistics.median(local[model]["engine"])
            search_ms = 1000 * statistics.median(local[model]["search"])
            split[model] = {"engine_median_ms": engine_ms, "search_median_ms": search_ms}
            no_tail_ms = 1000 * statistics.median(local[model]["search_no_tail"])
            split[model]["search_no_tail_median_ms"] = no_tail_ms
        for model in MODELS:
            total = split[model]["engine_median_ms"] + split[model]["search_median_ms"]
            dlib = split[DLIB_RESNET_V1]
            base = dlib["engine_median_ms"] + dlib["search_median_ms"]
            print(
                f"{'':<57}{model:<24} {split[model]['engine_median_ms']:9.1f} "
                f"{split[model]['search_median_ms']:9.1f} {total:6.1f} {total / base:7.2f} "
                f"{one[model]['median_ms'] - total:12.1f} "
                f"{split[model]['search_no_tail_median_ms']:15.1f}"
            )
    print(f"seeding {seed_s:.0f} s, server start with three collections {start_s:.1f} s")
    path = write_results(
        args.json or ("fusion_e2e_smoke" if args.smoke else "fusion_e2e"),
        {
            "kind": "fusion-e2e",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": "PYTHONPATH=src:bench nice -n 10 .venv/bin/python bench/fusion_e2e.py "
            f"--faces {args.faces} --probes {args.probes} --clients {args.clients}"
            + (f" --json {args.json}" if args.json else "")
            + (f" --before-src {args.before_src}" if args.before_src else ""),
            "machine": info,
            "faces_per_collection": args.faces,
            "planted": {m: len(p) for m, p in planted.items()},
            "threshold": THRESHOLD,
            "max_faces": MAX_FACES,
            "seed_s": seed_s,
            "in_process": split,
            "server_start_s": start_s,
            "seconds": round(time.time() - started, 1),
            "before_src": str(args.before_src) if args.before_src else None,
            "results": {
                label: {
                    c: {
                        "summary": r["summary"],
                        "runs_ms": {
                            m: [round(1000 * x["s"], 3) for x in r["runs"][m]] for m in MODELS
                        },
                    }
                    for c, r in by_count.items()
                }
                for label, by_count in results.items()
            },
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
