"""Policy decision time: per-decision latency with the default packs and with every pack.

    .venv/bin/python bench/policy_decision.py [--rounds 300]

The request mix is every ALLOW/DENY fixture of every shipped pack (police, NGO, commercial,
government; US, EU, UK; real-time and not; every action group), decided in a shuffled order,
``--rounds`` times, after one warm-up round. Two policy sets: the default (``base`` + the Amazon
moratorium) and all seven packs. Per set: load time, the share of allows, median and p90 of
``PolicyEngine.decide`` (wall time around the call, including building the Cedar entities and
the vocabulary checks), and the median of building the Cedar request alone.

Prints one table, states the machine, writes bench/results/policy_decision.json.
Target (issue 4): decide < 1 ms median.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from benchlib import machine_info, machine_line, write_results
from facegate.policy.engine import DEFAULT_PACKS, PolicyEngine
from facegate.policy.entities import to_cedar
from facegate.policy.fixtures import pack_fixtures
from facegate.policy.loader import PACKS_DIR, available_packs
from facegate.policy.model import PolicyRequest


def mix() -> list[PolicyRequest]:
    """Every fixture request of every shipped pack."""
    return [f.request for pack in available_packs() for f in pack_fixtures(pack, PACKS_DIR)]


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def measure(packs: tuple[str, ...], requests: list[PolicyRequest], rounds: int) -> dict[str, float]:
    t0 = time.perf_counter()
    engine = PolicyEngine.load(packs)
    load_ms = (time.perf_counter() - t0) * 1000
    rng = random.Random(4)
    order = list(requests)
    for request in order:  # warm-up
        engine.decide(request)
    decide_ms: list[float] = []
    build_ms: list[float] = []
    allowed = 0
    for _ in range(rounds):
        rng.shuffle(order)
        for request in order:
            t0 = time.perf_counter()
            decision = engine.decide(request)
            t1 = time.perf_counter()
            to_cedar(request)
            t2 = time.perf_counter()
            decide_ms.append((t1 - t0) * 1000)
            build_ms.append((t2 - t1) * 1000)
            allowed += decision.allowed
    return {
        "policies": float(len(engine.policies())),
        "load_ms": load_ms,
        "decisions": float(len(decide_ms)),
        "allow_share": allowed / len(decide_ms),
        "decide_median_ms": statistics.median(decide_ms),
        "decide_p90_ms": p90(decide_ms),
        "build_median_ms": statistics.median(build_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300, help="passes over the request mix")
    args = parser.parse_args()
    requests = mix()
    sets = {
        "default": ("base", *DEFAULT_PACKS),
        "all packs": tuple(available_packs()),
    }
    results = {name: measure(packs, requests, args.rounds) for name, packs in sets.items()}
    info = machine_info()
    print(machine_line(info))
    print(f"{len(requests)} requests (every pack fixture) x {args.rounds} rounds per set\n")
    header = (
        f"{'policy set':<10} {'packs':>5} {'policies':>8} {'load ms':>8} {'allow':>6} "
        f"{'decide median ms':>16} {'p90 ms':>7} {'build median ms':>15}"
    )
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        print(
            f"{name:<10} {len(sets[name]):>5} {int(r['policies']):>8} {r['load_ms']:>8.1f} "
            f"{r['allow_share']:>6.0%} {r['decide_median_ms']:>16.3f} {r['decide_p90_ms']:>7.3f} "
            f"{r['build_median_ms']:>15.3f}"
        )
    ratio = results["all packs"]["decide_median_ms"] / results["default"]["decide_median_ms"]
    print(f"\nall packs / default, median decide time: {ratio:.2f}x (target: median < 1 ms)")
    path = write_results(
        "policy_decision",
        {
            "machine": info,
            "requests": len(requests),
            "rounds": args.rounds,
            "sets": {name: {"packs": list(sets[name]), **r} for name, r in results.items()},
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
