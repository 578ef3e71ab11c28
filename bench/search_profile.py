"""Where a SearchFacesByImage spends its time: the engine's stages, the request path's steps, and
the CPU each process spends per search through a live server.

    PYTHONPATH=src .venv/bin/python bench/search_profile.py [--requests 200] [--clients 4]
        [--duration 20] [--before /tmp/before/src]

Three views of the same request (the 640x480 one-face probe of bench/search_throughput.py
against a collection of four faces):

1. **Engine stages, in process** (one ``FaceEngine``, one thread, as a worker runs it): decode,
   MTCNN's P-Net pyramid, R-Net and O-Net (on the full pyramid, and on the coarse levels a search
   probe starts with), detection as the engine runs it (every face; the largest face only),
   landmarks (68 and 5 points), pose and quality, the face chip and the descriptor, and
   ``analyze`` whole; medians of ``--requests`` calls.
2. **Request path, in process** (``pipeline.handle`` on the service graph ``facegate serve``
   builds, engine in 2 worker processes, one request at a time, SigV4-signed as boto3 signs):
   wall time of each step, found by wrapping the functions the pipeline calls: SigV4 (key
   lookup and verification), the key's registration, JSON decode, validation against
   botocore's model, the decision (entities and Cedar), the stored decision row, the engine
   round trip (image to a worker and back; the worker's own time is view 1), the vector search,
   response encoding, the audit append (write + fsync) and the rest. Also the CPU time of the
   server process per request (its threads, without the workers).
3. **Through a live server** (``facegate serve``, uvicorn, boto3 clients): the CPU milliseconds
   per search of the server process, of each engine worker, and of the client process, under
   ``--clients`` closed-loop clients for ``--duration`` seconds (read from /proc), for this tree
   and, with ``--before``, another tree's ``src`` in the same run. With ``--py-spy PATH`` (the
   py-spy binary; ``pip install py-spy``), the server process is also sampled while it holds
   the GIL (``py-spy record --gil``) and its CPU per search is split by what the samples were
   doing (:data:`CATEGORIES`: HTTP, thread hops, SigV4, JSON, validation, decision, engine IPC,
   search, audit...).

Writes bench/results/search_profile.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchlib import ROOT, SAMPLES, machine_info, machine_line, write_results

sys.path.insert(0, str(ROOT))
from tests.signed import local_key, signed_request

from facegate import pipeline
from facegate.config import Settings
from facegate.engine.align import face_chip
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.landmarks import shape_points
from facegate.engine.pose import estimate_pose
from facegate.engine.quality import face_quality
from facegate.ops import search as search_ops
from facegate.services import Services
from facegate.wire import protocol
from search_throughput import COLLECTION, ENROLLED, Target, probe_640x480, run

Timings = dict[str, list[float]]


def median_ms(values: list[float]) -> float:
    return 1000.0 * statistics.median(values) if values else 0.0


# --- 1. engine stages ---------------------------------------------------------------------------


def engine_stages(data: bytes, n: int) -> dict[str, float]:
    engine = FaceEngine(EngineConfig())
    det: Any = engine._detector(engine.detector_chain[0])
    skip = det.config.coarse_skip
    times: Timings = defaultdict(list)

    def timed(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args)
        times[name].append(time.perf_counter() - t0)
        return out

    def pyramid(px: Any, first: int) -> Any:
        image = Image.fromarray(px)
        scales = det.scales(px.shape[1], px.shape[0])
        return det._candidates([det._level(image, s) for s in scales[first:]])

    for i in range(n + 5):
        if i == 5:
            times.clear()
        image = timed("decode", engine.decode, data)
        px = image.pixels
        for label, first in (("full pyramid", 0), (f"coarse levels (skip {skip})", skip)):
            rows = timed(f"MTCNN P-Net, {label} (+ NMS)", pyramid, px, first)
            rows = timed(f"MTCNN R-Net, {label}", det._refine, px, rows, "rnet", 24)
            rows[:, :4] = np.fix(rows[:, :4])
            timed(f"MTCNN O-Net, {label}", det._refine, px, rows, "onet", 48)
        timed("detection, every face (MTCNN + box map)", det.detect, px)
        raw = timed("detection, largest face (coarse first + box map)", det.detect_largest, px)
        box = raw[0].box_px
        _, p68 = timed("landmarks, 68 points", shape_points, engine.models.shape_68, px, box)
        _, p5 = timed("landmarks, 5 points", shape_points, engine.models.shape_5, px, box)
        timed("pose + quality", lambda p=p68, x=px, b=box: (estimate_pose(p), face_quality(x, b)))
        pts5 = tuple((float(x), float(y)) for x, y in p5)
        chip = timed("face chip (alignment)", face_chip, px, box, pts5)
        timed("descriptor (ONNX)", engine.embedder.embed, [chip])
        timed("analyze(), every face", lambda: engine.analyze(data))
        timed("analyze(max_faces=1), the search probe", lambda: engine.analyze(data, max_faces=1))
    return {k: median_ms(v) for k, v in times.items()}


# --- 2. the request path in process --------------------------------------------------------------


def _wrap(times: Timings, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if asyncio.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def awrapped(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(*a, **k)
            finally:
                times[name].append(time.perf_counter() - t0)

        return awrapped

    @functools.wraps(fn)
    def wrapped(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            times[name].append(time.perf_counter() - t0)

    return wrapped


def pipeline_steps(data: bytes, n: int) -> dict[str, Any]:
    times: Timings = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        services = Services.open(Settings(data_dir=Path(tmp) / "data", engine_workers=2))
        try:
            key = local_key(services)
            enrol = [
                signed_request(key, "CreateCollection", {"CollectionId": COLLECTION}),
                *(
                    signed_request(
                        key,
                        "IndexFaces",
                        {
                            "CollectionId": COLLECTION,
                            "Image": {
                                "Bytes": base64.b64encode((SAMPLES / name).read_bytes()).decode()
                            },
                        },
                    )
                    for name in ENROLLED
                ),
            ]
            for req in enrol:
                assert asyncio.run(handle_once(services, req)).status == 200
            body = {"CollectionId": COLLECTION, "Image": {"Bytes": base64.b64encode(data).decode()}}
            patches: list[tuple[Any, str, Any]] = []

            def patch(owner: Any, attr: str, name: str) -> None:
                original = getattr(owner, attr)
                patches.append((owner, attr, original))
                setattr(owner, attr, _wrap(times, name, original))

            patch(pipeline, "verify", "SigV4 verify (canonical request, HMAC)")
            patch(services.keys, "secret_for", "key secret lookup (SQLite + Fernet)")
            patch(services.registry, "principal", "key registration -> principal")
            patch(protocol, "decode_body", "JSON decode")
            patch(services.model, "validate_input", "validation (botocore model, base64)")
            patch(pipeline, "input_hashes", "input hashes (SHA-256 of the image)")
            patch(pipeline, "_resource", "collection lookup + face count")
            patch(services, "gate_status", "deployment gate (model audit)")
            patch(services.policy, "decide", "policy decision (entities + Cedar)")
            patch(pipeline, "_store_decision", "decision row (SQLite commit)")
            patch(services.engine, "analyze_async", "engine round trip (to a worker and back)")
            patch(search_ops, "_scored", "vector search + scoring + face rows")
            patch(protocol, "encode_body", "response JSON encode")
            patch(services.audit, "append", "audit append (write + fsync)")
            patch(pipeline, "_record", "metrics + request log line")
            cpu: list[float] = []
            for i in range(n + 5):
                if i == 5:
                    times.clear()
                    cpu.clear()
                req = signed_request(key, "SearchFacesByImage", body)
                c0 = time.process_time()
                t0 = time.perf_counter()
                response = asyncio.run(handle_once(services, req))
                times["handle(), whole request"].append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                assert response.status == 200, response.body[:300]
            for owner, attr, original in patches:
                setattr(owner, attr, original)
        finally:
            services.close()
    steps = {k: median_ms(v) for k, v in times.items()}
    return {
        "steps_ms": steps,
        "server_cpu_ms_per_request": median_ms(cpu),
    }


async def handle_once(services: Services, req: pipeline.RawRequest) -> pipeline.RawResponse:
    return await pipeline.handle(services, req)


# --- 3. CPU per process through a live server ----------------------------------------------------


CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # (category, substrings of a stack frame); a sample goes to the deepest frame that matches
    (
        "HTTP: uvicorn (h11), Starlette, body read",
        ("h11_impl.py", "_readers.py", "_connection.py", "selector_events.py", "routing.py",
         "applications.py", "middleware/", "bodies.py", "peers.py", "responses.py",
         "_read_bounded", "rekognition (facegate/app.py"),
    ),
    (
        "thread hops: to_thread submit, wake-ups, futures",
        ("run_in_executor", "ThreadPoolExecutor.submit", "call_soon_threadsafe", "_write_to_self",
         "_read_from_self", "wrap_future", "_chain_future", "_call_set_state",
         "Future.set_result", "_invoke_callbacks", "concurrent/futures/thread.py"),
    ),
    ("SigV4 verification", ("sigv4.py",)),
    ("key secret lookup (SQLite + Fernet)", ("secret_for", "fernet.py")),
    ("key registration -> principal", ("Registry.principal",)),
    ("JSON decode (strict)", ("decode_body", "jsonin.py")),
    ("validation (botocore model)", ("shapes.py", "request_kwargs")),
    ("policy decision (entities + Cedar)", ("PolicyEngine.decide",)),
    ("decision row (SQLite)", ("_store_decision", "decisions.py", "store/group.py")),
    ("collection lookup, deployment gate", ("_resource", "gate_status", "FaceStore.refresh")),
    (
        "engine IPC (pool submit, pickling, results)",
        ("engine/pool.py", "futures/process.py", "multiprocessing/queues.py",
         "multiprocessing/connection.py", "reduction.py"),
    ),
    ("vector search", ("_scored", "ops/search.py")),
    ("response encode", ("encode_body", "to_wire", "enforce.py", "summarise", "recording.py")),
    ("audit append", ("audit/log.py",)),
    (
        "metrics + request log",
        ("_record (facegate/pipeline", "facegate/logs.py", "prometheus_client", "logging/"),
    ),
    ("event loop select", ("EpollSelector.select", "selectors.py")),
)  # fmt: skip


def categorise(collapsed: Path) -> dict[str, float]:
    """Shares of py-spy's collapsed ("raw") samples by :data:`CATEGORIES` (the rest: other)."""
    counts: dict[str, int] = defaultdict(int)
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        category = "other"
        for frame in stack.split(";"):
            for name, keys in CATEGORIES:
                if any(k in frame for k in keys):
                    category = name
        counts[category] += int(n)
    return {k: v / total for k, v in sorted(counts.items(), key=lambda kv: -kv[1])} if total else {}


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(
    src: Path, name: str, data: bytes, clients: int, duration_s: float, py_spy: Path | None
) -> dict[str, Any]:
    shares: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        target = Target(name, src, Path(tmp) / "data", clients)
        target.start()
        try:
            for rek in target.clients[:2]:
                rek.search_faces_by_image(CollectionId=COLLECTION, Image={"Bytes": data})
            assert target.server.process is not None
            pid = target.server.process.pid
            children = subprocess.run(
                ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
            ).stdout.split()
            pids = [pid, *(int(c) for c in children)]
            spy = None
            if py_spy is not None:
                spy = subprocess.Popen(
                    [str(py_spy), "record", "-p", str(pid), "-d", str(int(duration_s)), "-r",
                     "200", "-f", "raw", "--gil", "--nonblocking", "-o", f"{tmp}/spy.txt"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            before = [_cpu_s(p) for p in pids]
            result = run(target, data, clients, duration_s)
            after = [_cpu_s(p) for p in pids]
            if spy is not None:
                spy.wait(timeout=60)
                shares = categorise(Path(tmp) / "spy.txt")
        finally:
            target.stop()
    searches = len(result["latencies_s"])
    per = [1000.0 * (b - a) / max(1, searches) for a, b in zip(before, after, strict=True)]
    workers = [p for p in per[1:] if p > 0.5]  # the resource tracker spends ~nothing
    return {
        "searches_per_s": searches / result["wall_s"],
        "server_ms": per[0],
        "workers_ms": sum(workers),
        "client_ms": 1000.0 * result["client_cpu_s"] / max(1, searches),
        "total_ms": per[0] + sum(workers) + 1000.0 * result["client_cpu_s"] / max(1, searches),
        "server_shares": shares,
        "server_ms_by_category": {k: v * per[0] for k, v in shares.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--before", type=Path)
    parser.add_argument("--skip", default="", help="comma-separated views to skip: 1,2,3")
    parser.add_argument("--py-spy", type=Path, help="the py-spy binary: split server CPU (view 3)")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    data = probe_640x480()
    doc: dict[str, Any] = {"requests": args.requests}
    load_start = f"{os.getloadavg()[0]:.2f}"
    if "1" not in skip:
        doc["engine_stages_ms"] = engine_stages(data, args.requests)
        print("1. engine stages in process, medians (ms)")
        for k, v in doc["engine_stages_ms"].items():
            print(f"   {k:55s} {v:7.2f}")
    if "2" not in skip:
        doc["pipeline"] = pipeline_steps(data, args.requests)
        print("2. request path in process, one at a time, medians (ms)")
        for k, v in sorted(doc["pipeline"]["steps_ms"].items(), key=lambda kv: -kv[1]):
            print(f"   {k:55s} {v:7.2f}")
        cpu = doc["pipeline"]["server_cpu_ms_per_request"]
        print(f"   server process CPU per request: {cpu:.2f} ms")
    if "3" not in skip:
        trees = [("after", ROOT / "src")]
        if args.before is not None:
            trees.insert(0, ("before", args.before))
        doc["server_cpu"] = {}
        print(f"3. CPU ms per search through a live server, {args.clients} clients")
        for name, src in trees:
            row = server_cpu(src, name, data, args.clients, args.duration, args.py_spy)
            doc["server_cpu"][name] = row
            print(
                f"   {name:>7}: {row['searches_per_s']:6.2f}/s  server {row['server_ms']:5.1f}  "
                f"workers {row['workers_ms']:5.1f}  client {row['client_ms']:4.1f}  "
                f"total {row['total_ms']:5.1f}"
            )
        for name, _ in trees:
            cats = doc["server_cpu"][name]["server_ms_by_category"]
            if cats:
                print(f"   server process CPU ms per search by what it was doing ({name}):")
                for k, v in cats.items():
                    print(f"      {k:50s} {v:5.2f}")
    info = machine_info()
    info["load_1m_at_start"] = load_start
    doc["machine"] = info
    print(machine_line(info) + f" (load average {load_start} at the start)")
    write_results("search_profile", json.loads(json.dumps(doc)))


if __name__ == "__main__":
    main()
