"""Audit log overhead: append latency with fsync, checkpoint cost, verify speed.

    .venv/bin/python bench/audit_overhead.py [--appends 3000] [--verify-records 100000]
                                             [--dir DIR]

* append: ``AuditLog.append`` of a realistic request record (the server's ``RequestRecord``),
  one at a time, each written and fsynced before the next; the default ``checkpoint_every``
  (1000), so a few appends also carry a checkpoint. Repeated with ``os.fsync`` replaced by a
  no-op to show what the fsync costs. Then 4 threads appending at once (appends/s: the lock is
  held across the fsync, so this is the log's throughput ceiling on this disk).
* checkpoint: ``AuditLog.checkpoint()`` (Ed25519 signature, the line and its fsync, HEAD.json
  written atomically: 3 fsyncs in all), after one append each time.
* verify: ``facegate.audit.verify.verify`` over a log of ``--verify-records`` request records
  with a checkpoint every 1000 (the log is generated with fsync off, which does not change its
  bytes), best and median of 3 runs; and ``iter_entries`` (what query/report read with).

The log is written under ``--dir`` (default: a fresh temporary directory; fsync cost depends on
its file system, printed with the machine). Prints one table, writes
bench/results/audit_overhead.json. Target (issue 5): append < 1 ms median.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchlib import machine_info, machine_line, write_results
from facegate.audit.chain import GENESIS, encode_entry
from facegate.audit.log import AuditLog, iter_entries
from facegate.audit.record import RequestRecord, ResultSummary
from facegate.audit.verify import verify


def record(i: int) -> dict[str, Any]:
    return RequestRecord(
        at=time.time(),
        request_id=f"5f0c6e1a-{i:08d}-4d2b-9a57-000000000000",
        operation="SearchFacesByImage",
        decision="allow",
        latency_ms=83.4,
        org_id="org-missing-persons",
        sector="ngo",
        access_key_id="AKIAFACEGATE00000001",
        use_case="missing_persons",
        collection_id="missing-children",
        purpose="missing_person_search",
        case_ref=f"case-{i % 97}",
        decision_id=f"dec-{i:012d}",
        policy_ids=("base.permit-registered-use", "amazon-2020.ngo-exemption"),
        obligations={"min_similarity_pct": 99.0, "max_candidates": 5},
        input_sha256=("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",),
        result=ResultSummary(
            faces_detected=1,
            candidates=2,
            top_similarity_pct=99.41,
            face_ids=(
                "2b6f1d2c-8e39-4a0b-b2c7-3f4a5e6d7c8b",
                "7c1e9a44-0d2f-4b7e-9c11-aa0b1c2d3e4f",
            ),
        ),
    ).to_json()


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[-1]


@contextmanager
def no_fsync() -> Iterator[None]:
    real = os.fsync
    os.fsync = lambda fd: None
    try:
        yield
    finally:
        os.fsync = real


def timed(fn: Callable[[], object], n: int) -> list[float]:
    """Milliseconds per call of ``fn``, ``n`` calls."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def measure_appends(root: Path, key: Ed25519PrivateKey, n: int, name: str) -> list[float]:
    records = iter([record(i) for i in range(n)])  # built outside the timing
    log = AuditLog.open(root / name, key)
    try:
        return timed(lambda: log.append(next(records)), n)
    finally:
        log.close()


def measure_threads(root: Path, key: Ed25519PrivateKey, threads: int, each: int) -> float:
    log = AuditLog.open(root / "threads", key)

    def work(base: int) -> None:
        for r in [record(base + i) for i in range(each)]:
            log.append(r)

    workers = [threading.Thread(target=work, args=(t * each,)) for t in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    log.close()
    return threads * each / elapsed


def measure_checkpoints(root: Path, key: Ed25519PrivateKey, n: int) -> list[float]:
    log = AuditLog.open(root / "checkpoints", key)
    out = []
    for i in range(n):
        log.append(record(i))
        t0 = time.perf_counter()
        log.checkpoint()
        out.append((time.perf_counter() - t0) * 1000)
    log.close()
    return out


def measure_verify(root: Path, key: Ed25519PrivateKey, records: int) -> dict[str, float]:
    path = root / "verify"
    with no_fsync():
        log = AuditLog.open(path, key)
        for i in range(records):
            log.append(record(i))
        log.close()
    size = sum(p.stat().st_size for p in path.glob("segment-*.jsonl"))
    runs = []
    for _ in range(3):
        result = verify(path, key.public_key())
        if not result.ok:
            raise SystemExit(f"verify failed on the generated log: {result.problem}")
        runs.append(result.elapsed_s)
    t0 = time.perf_counter()
    read = sum(1 for _ in iter_entries(path))
    iter_s = time.perf_counter() - t0
    return {
        "entries": float(result.entries),
        "bytes": float(size),
        "verify_best_s": min(runs),
        "verify_median_s": statistics.median(runs),
        "verify_entries_per_s": result.entries / statistics.median(runs),
        "iter_entries_per_s": read / iter_s,
    }


def file_system(path: Path) -> str:
    """The type of the file system holding ``path`` (from /proc/mounts)."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) > 2 and resolved.startswith(parts[1]) and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return kind


def row(name: str, values: list[float]) -> dict[str, float]:
    return {
        "n": float(len(values)),
        "median_ms": statistics.median(values),
        "p90_ms": p90(values),
        "p99_ms": p99(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=3000)
    parser.add_argument("--checkpoints", type=int, default=200)
    parser.add_argument("--verify-records", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the test logs")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="audit-bench-", dir=args.dir))
    key = Ed25519PrivateKey.generate()
    try:
        fs = file_system(root)
        append = row("append", measure_appends(root, key, args.appends, "fsync"))
        with no_fsync():
            nosync = row("append", measure_appends(root, key, args.appends, "nosync"))
        threads = measure_threads(root, key, 4, args.appends // 4)
        checkpoint = row("checkpoint", measure_checkpoints(root, key, args.checkpoints))
        verified = measure_verify(root, key, args.verify_records)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    info = machine_info()
    print(machine_line(info))
    line = len(encode_entry(1, GENESIS, record(0))[1])
    print(f"audit log on {fs} ({root.parent}); a request record's line: {line} bytes\n")
    header = f"{'operation':<34} {'n':>7} {'median ms':>10} {'p90 ms':>8} {'p99 ms':>8}"
    print(header)
    print("-" * len(header))
    for name, r in [
        ("append (write + fsync)", append),
        ("append, fsync disabled", nosync),
        ("checkpoint (sign + 3 fsyncs)", checkpoint),
    ]:
        print(
            f"{name:<34} {int(r['n']):>7} {r['median_ms']:>10.3f} {r['p90_ms']:>8.3f} "
            f"{r['p99_ms']:>8.3f}"
        )
    print(f"\n4 threads appending (with fsync):   {threads:,.0f} appends/s")
    print(
        f"verify {int(verified['entries']):,} entries ({verified['bytes'] / 1e6:.0f} MB): "
        f"{verified['verify_median_s']:.2f} s median of 3 = "
        f"{verified['verify_entries_per_s']:,.0f} entries/s "
        f"(iter_entries alone: {verified['iter_entries_per_s']:,.0f} entries/s)"
    )
    share = 1 - nosync["median_ms"] / append["median_ms"]
    print(
        f"fsync share of the median append: {share:.0%}; target append median < 1 ms: "
        f"{'met' if append['median_ms'] < 1 else 'NOT met'}"
    )
    path = write_results(
        "audit_overhead",
        {
            "machine": info,
            "file_system": fs,
            "append_fsync": append,
            "append_no_fsync": nosync,
            "threads4_appends_per_s": threads,
            "checkpoint": checkpoint,
            "verify": verified,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
