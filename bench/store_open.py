"""What opening a SQLite store costs: importing the store, creating a new store, reopening one.

    .venv/bin/python bench/store_open.py [--stores 15] [--before DIR]

Each tree is measured in a subprocess of its own (``PYTHONPATH=<tree>/src``): the time to import
``facegate.store.db`` (a fresh interpreter, once), then, for ``--stores`` new files in a temporary
directory, the time to create each (``Database(path)``: the schema migrations) and to reopen it
(an up-to-date store). ``--before`` names another checkout (for example
``git archive <commit> src | tar -x -C /tmp/before``) measured in the same run, side by side.
Prints medians and ratios and the machine; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, statistics, sys, tempfile, time
from pathlib import Path
t0 = time.perf_counter()
from facegate.store.db import Database
imported = time.perf_counter() - t0
new, reopen = [], []
with tempfile.TemporaryDirectory() as tmp:
    for i in range(int(sys.argv[1])):
        path = Path(tmp) / f"s{i}.sqlite3"
        t = time.perf_counter(); Database(path).close(); new.append(time.perf_counter() - t)
        t = time.perf_counter(); Database(path).close(); reopen.append(time.perf_counter() - t)
print(json.dumps({"import": imported, "new": statistics.median(new),
                  "reopen": statistics.median(reopen)}))
"""


def measure(tree: Path, stores: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(stores)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {k: float(v) for k, v in json.loads(out.stdout).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=15)
    parser.add_argument("--before", type=Path)
    args = parser.parse_args()
    trees = {"this tree": ROOT}
    if args.before:
        trees = {"before": args.before, **trees}
    results = {name: measure(tree, args.stores) for name, tree in trees.items()}
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; medians of {args.stores} stores"
    )
    print(f"{'tree':<10} {'import ms':>10} {'new store ms':>13} {'reopen ms':>10}")
    for name, r in results.items():
        print(
            f"{name:<10} {r['import'] * 1e3:>10.0f} {r['new'] * 1e3:>13.1f} "
            f"{r['reopen'] * 1e3:>10.2f}"
        )
    if "before" in results:
        b, a = results["before"], results["this tree"]
        print(
            f"{'ratio':<10} {a['import'] / b['import']:>10.2f} {a['new'] / b['new']:>13.2f} "
            f"{a['reopen'] / b['reopen']:>10.2f}"
        )


if __name__ == "__main__":
    main()
