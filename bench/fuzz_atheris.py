"""Coverage-guided fuzzing (atheris, libFuzzer) of the three parsers hostile bytes reach first.

    .venv/bin/pip install atheris          # not a dependency of facegate: only this script uses it
    .venv/bin/python bench/fuzz_atheris.py --seconds 60            # each target for 60 s
    .venv/bin/python bench/fuzz_atheris.py --target sigv4 --seconds 600

Targets (each in a process of its own, instrumented so libFuzzer sees which branches an input
reached):

* ``image``: :func:`facegate.engine.image.decode_image` on arbitrary bytes, seeded with the
  smallest sample photos (JPEG and PNG). Allowed outcomes: a ``DecodedImage`` or a
  ``FacegateError`` (the modelled InvalidImageFormatException / ImageTooLargeException ...).
* ``json``: :func:`facegate.wire.protocol.decode_body`, then botocore-model validation of the
  result for an operation chosen by the input. Allowed: a dict, or a ``FacegateError``.
* ``sigv4``: :func:`facegate.wire.sigv4.verify` on an Authorization header, X-Amz-Date, a few
  other headers and a body taken from the input (a secret lookup that knows every key). Allowed:
  a ``FacegateError``; a random input accepted as validly signed counts as a crash.

A "crash" is any other exception (or an accepted forgery): the input is saved under
``--crash-dir`` and fuzzing goes on, so one run reports every distinct crash it found. The table
gives executions, executions per second and crashes per target; results go to
bench/results/fuzz_atheris.json with the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib import machine_info, machine_line, write_results

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "data" / "samples"
RESULTS = ROOT / "bench" / "results"
TARGETS = ("image", "json", "sigv4")
SEED_IMAGE_MAX_BYTES = 64_000  # small seeds keep each execution fast
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
HEADER_NAMES = ("host", "x-amz-content-sha256", "x-amz-security-token", "x-amz-target")


class Stats:
    """Executions and crashes of one target (one child process)."""

    def __init__(self, target: str, seconds: float, crash_dir: Path) -> None:
        self.target = target
        self.deadline = time.monotonic() + seconds
        self.started = time.monotonic()
        self.crash_dir = crash_dir
        self.executions = 0
        self.crashes = 0
        self.kinds: dict[str, int] = {}

    def crash(self, data: bytes, what: str) -> None:
        self.crashes += 1
        self.kinds[what] = self.kinds.get(what, 0) + 1
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        name = f"{self.target}-{hashlib.sha256(data).hexdigest()[:16]}"
        (self.crash_dir / name).write_bytes(data)

    def summary(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        return {
            "target": self.target,
            "seconds": round(elapsed, 1),
            "executions": self.executions,
            "executions_per_s": round(self.executions / elapsed, 1) if elapsed else 0.0,
            "crashes": self.crashes,
            "crash_kinds": self.kinds,
        }


def _image_target(atheris: Any) -> Callable[[bytes], str | None]:
    with atheris.instrument_imports():
        from facegate.engine.image import DecodedImage, decode_image
        from facegate.errors import FacegateError

    def one(data: bytes) -> str | None:
        try:
            out = decode_image(data)
        except FacegateError:
            return None
        return None if isinstance(out, DecodedImage) else f"returned {type(out).__name__}"

    return one


def _json_target(atheris: Any) -> Callable[[bytes], str | None]:
    with atheris.instrument_imports():
        from facegate.errors import FacegateError
        from facegate.wire.protocol import decode_body
        from facegate.wire.shapes import ServiceModel
    model = ServiceModel.load()
    operations = sorted(model.operation_names())

    def one(data: bytes) -> str | None:
        operation = operations[data[0] % len(operations)] if data else operations[0]
        try:
            body = decode_body(data[1:])
        except FacegateError:
            return None
        if not isinstance(body, dict):
            return f"decode_body returned {type(body).__name__}"
        try:
            out = model.validate_input(operation, body)
        except FacegateError:
            return None
        return None if isinstance(out, dict) else f"validate_input returned {type(out).__name__}"

    return one


def _sigv4_target(atheris: Any) -> Callable[[bytes], str | None]:
    with atheris.instrument_imports():
        from facegate.errors import FacegateError
        from facegate.wire.sigv4 import SignedRequest, verify

    def one(data: bytes) -> str | None:
        fdp = atheris.FuzzedDataProvider(data)
        headers = {"authorization": fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 400))}
        if fdp.ConsumeBool():
            headers["x-amz-date"] = (
                "20261123T120000Z" if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(20)
            )
        for name in HEADER_NAMES:
            if fdp.ConsumeBool():
                headers[name] = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 80))
        body = fdp.ConsumeBytes(fdp.remaining_bytes())
        request = SignedRequest("POST", "/", "", headers, body)
        try:
            verify(request, lambda key: "secret-" + key, now=NOW)
        except FacegateError:
            return None
        return "a random request was accepted as signed"

    return one


def child(target: str, seconds: float, crash_dir: Path, corpus: list[str], out: Path) -> None:
    """Fuzz one target until ``seconds`` have passed, then write the stats to ``out`` and exit."""
    atheris = importlib.import_module("atheris")
    one = {"image": _image_target, "json": _json_target, "sigv4": _sigv4_target}[target](atheris)
    stats = Stats(target, seconds, crash_dir)

    def test_one_input(data: bytes) -> None:
        stats.executions += 1
        try:
            problem = one(data)
        except Exception as exc:  # every unexpected exception is a finding
            problem = f"{type(exc).__name__}: {str(exc)[:80]}"
        if problem is not None:
            stats.crash(data, problem)
        if time.monotonic() >= stats.deadline:
            out.write_text(json.dumps(stats.summary()))
            os._exit(0)  # libFuzzer would run forever; its exit skips nothing we need

    atheris.Setup([sys.argv[0], "-rss_limit_mb=2048", *corpus], test_one_input)
    atheris.Fuzz()


def _seed_corpus(directory: Path) -> Path:
    """The smallest sample photos as the image target's starting corpus."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in sorted(SAMPLES.rglob("*")):
        small = path.is_file() and path.stat().st_size <= SEED_IMAGE_MAX_BYTES
        if small and path.suffix.lower() in (".jpg", ".jpeg", ".png"):
            (directory / path.name).write_bytes(path.read_bytes())
    return directory


def run(targets: list[str], seconds: float, crash_dir: Path) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="facegate-fuzz-") as tmp:
        for target in targets:
            out = Path(tmp) / f"{target}.json"
            corpus = Path(tmp) / f"corpus-{target}"
            corpus.mkdir()
            dirs = [str(corpus)]
            if target == "image":
                dirs.append(str(_seed_corpus(Path(tmp) / "seeds")))
            cmd = [sys.executable, __file__, "--child", target, "--seconds", str(seconds)]
            cmd += ["--crash-dir", str(crash_dir), "--out", str(out), *dirs]
            done = subprocess.run(
                cmd, capture_output=True, text=True, check=False, timeout=seconds + 300
            )
            if not out.exists():
                tail = done.stderr[-1500:]
                raise RuntimeError(
                    f"{target}: the fuzzer stopped early ({done.returncode}):\n{tail}"
                )
            rows.append(json.loads(out.read_text()))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    parser.add_argument("--seconds", type=float, default=30.0, help="per target")
    parser.add_argument("--crash-dir", type=Path, default=RESULTS / "fuzz_crashes")
    parser.add_argument("--child", choices=TARGETS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("corpus", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.seconds, args.crash_dir, args.corpus, args.out)
        return 0
    try:
        importlib.import_module("atheris")
    except ImportError:
        print("atheris is not installed: .venv/bin/pip install atheris", file=sys.stderr)
        return 2
    targets = list(TARGETS) if args.target == "all" else [args.target]
    rows = run(targets, args.seconds, args.crash_dir)
    info = machine_info()
    print(machine_line(info))
    print(f"{'target':8} {'seconds':>8} {'executions':>11} {'exec/s':>9} {'crashes':>8}")
    for row in rows:
        print(
            f"{row['target']:8} {row['seconds']:8.1f} {row['executions']:11d} "
            f"{row['executions_per_s']:9.1f} {row['crashes']:8d}"
        )
        for kind, count in sorted(row["crash_kinds"].items()):
            print(f"    {count:6d}  {kind}")
    write_results(
        "fuzz_atheris", {"machine": info, "seconds_per_target": args.seconds, "targets": rows}
    )
    return 1 if any(row["crashes"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
