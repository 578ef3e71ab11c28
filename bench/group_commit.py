"""Group commit of the per-request writes: audit records and stored decisions, from several
threads at once, this tree against another side by side in one run.

    PYTHONPATH=src .venv/bin/python bench/group_commit.py --before /tmp/before/src \
        [--threads 1,2,4,8] [--each 200] [--rounds 3]

Every request the server answers appends one fsynced audit record (``AuditLog.append``) and,
once decided, stores its decision (``DecisionRepository.insert``: one SQLite transaction in WAL
mode with ``synchronous=FULL``, so one fsync of the WAL). Each runs in a worker thread of its
request. Here ``--threads`` threads each write ``--each`` realistic records as fast as they can
(the request path's worst case): writes per second, p50 and p99 latency of one write, and, for
the audit log, fsyncs per record (``os.fsync`` counted). With ``--before SRC`` the same
measurement runs in a subprocess on that tree's code (PYTHONPATH=SRC), alternating with this
tree's, ``--rounds`` times; the table gives medians over rounds. Files go to a fresh temporary
directory (fsync cost depends on its file system, printed). Writes
bench/results/group_commit.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib import ROOT, machine_info, machine_line, write_results


def audit_record(i: int) -> dict[str, Any]:
    from facegate.audit.record import RequestRecord, ResultSummary

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
        decision_id=f"dec-{i:012d}",
        policy_ids=("base.permit-registered-use", "amazon-2020.ngo-exemption"),
        input_sha256=("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",),
        result=ResultSummary(faces_detected=1, candidates=1, top_similarity_pct=99.4),
    ).to_json()


def hammer(write: Callable[[int], object], threads: int, each: int) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def work(t: int) -> None:
        mine = []
        start.wait()
        for i in range(each):
            t0 = time.perf_counter()
            write(t * each + i)
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    t0 = time.perf_counter()
    start.wait()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    ordered = sorted(latencies)
    return {
        "per_s": len(ordered) / wall,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


def measure(threads: list[int], each: int) -> dict[str, Any]:
    """This process's facegate (whatever PYTHONPATH gives): one row per thread count."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from facegate.audit.log import AuditLog
    from facegate.store.db import Database
    from facegate.store.decisions import DecisionRecord, DecisionRepository

    fsyncs = [0]
    real_fsync = os.fsync

    def counting(fd: Any) -> None:
        fsyncs[0] += 1
        real_fsync(fd)

    out: dict[str, Any] = {"audit": {}, "decisions": {}}
    with tempfile.TemporaryDirectory() as tmp:
        key = Ed25519PrivateKey.generate()
        for n in threads:
            log = AuditLog.open(Path(tmp) / f"audit-{n}", key, checkpoint_every=10**9)
            records = [audit_record(i) for i in range(n * each)]
            os.fsync = counting
            fsyncs[0] = 0

            def append(
                i: int, log: AuditLog = log, records: list[dict[str, Any]] = records
            ) -> None:
                log.append(records[i])

            try:
                row = hammer(append, n, each)
            finally:
                os.fsync = real_fsync
            row["fsyncs_per_record"] = fsyncs[0] / (n * each)
            log.close()
            out["audit"][str(n)] = row
            db = Database(Path(tmp) / f"db-{n}.sqlite3")
            repo = DecisionRepository(db)

            def decide(i: int, repo: DecisionRepository = repo) -> None:
                repo.insert(
                    DecisionRecord(
                        decision_id=f"dec-{i:020d}",
                        at=time.time(),
                        access_key_id="AKIAFACEGATE00000001",
                        org_id="org-missing-persons",
                        operation="SearchFacesByImage",
                        resource="missing-children",
                        purpose="missing_person_search",
                        allowed=True,
                        policy_ids=("base.permit-registered-use",),
                        reasons=(),
                        errors=(),
                        obligations={"min_similarity_pct": 99.0},
                    )
                )

            out["decisions"][str(n)] = hammer(decide, n, each)
            db.close()
    return out


def file_system(path: Path) -> str:
    best, kind = "", "unknown"
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if (
            len(parts) > 2
            and str(path.resolve()).startswith(parts[1])
            and len(parts[1]) > len(best)
        ):
            best, kind = parts[1], parts[2]
    return kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="the src/ folder of the code to compare with")
    parser.add_argument("--threads", default="1,2,4,8")
    parser.add_argument("--each", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    if args.measure_only:
        print(json.dumps(measure(threads, args.each)))
        return
    trees = {"after": ROOT / "src"}
    if args.before is not None:
        trees = {"before": args.before, **trees}
    load_start = f"{os.getloadavg()[0]:.2f}"
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for r in range(args.rounds):
        for name in trees if r % 2 == 0 else list(reversed(trees)):
            done = subprocess.run(
                [sys.executable, __file__, "--measure-only", "--threads", args.threads,
                 "--each", str(args.each)],
                env={**os.environ, "PYTHONPATH": f"{trees[name]}:{ROOT / 'bench'}"},
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1} {name} done", flush=True)
    info = machine_info()
    info["load_1m_at_start"] = load_start
    info["file_system"] = file_system(Path(tempfile.gettempdir()))
    print(machine_line(info) + f"; temp on {info['file_system']}; load {load_start} at the start")
    table: dict[str, Any] = {}
    for what in ("audit", "decisions"):
        print(
            f"{what}: writes/s, p50 ms, p99 ms" + (", fsyncs per record" if what == "audit" else "")
        )
        for n in threads:
            line = f"  {n} threads"
            for name in trees:
                rows = [run[what][str(n)] for run in runs[name]]
                cell = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
                table.setdefault(what, {}).setdefault(str(n), {})[name] = cell
                line += (
                    f" | {name}: {cell['per_s']:7.0f}/s {cell['p50_ms']:6.2f} {cell['p99_ms']:6.2f}"
                )
                if "fsyncs_per_record" in cell:
                    line += f" {cell['fsyncs_per_record']:.2f}"
            print(line)
    write_results(
        "group_commit",
        {
            "machine": info,
            "each": args.each,
            "rounds": args.rounds,
            "trees": {k: str(v) for k, v in trees.items()},
            "table": table,
        },
    )


if __name__ == "__main__":
    main()
