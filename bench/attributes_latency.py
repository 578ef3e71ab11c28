"""What the facial attributes cost: DetectFaces with Attributes ALL against DEFAULT.

    PYTHONPATH=src .venv/bin/python bench/attributes_latency.py [--requests 60] [--calls 100]

One 640x480 JPEG with one face (``obama.jpg`` scaled and cropped), two ways, each in one run with
the conditions interleaved (so load from other work on the machine falls on all of them alike):

1. In process (``FaceEngine.analyze``, no descriptor, as DetectFaces): DEFAULT (no attribute);
   ALL with the opt-in models off (EyesOpen from the landmarks; MouthOpen, Smile, Eyeglasses,
   Sunglasses, Beard, Mustache, FaceOccluded from the classifiers, which need the aligned chip
   and the descriptor); ALL with ``FACEGATE_ATTRIBUTE_MODELS=faceres,emotion`` (adds AgeRange,
   Gender, Emotions); ALL with ``faceres,emotion,iris`` (adds EyeDirection). Also the engine's
   own time per stage.
2. Through ``facegate serve`` (1 engine worker; the default policy pack, the audit log), once
   with the opt-in models off and once with all three on: boto3 ``detect_faces`` with
   ``Attributes=["DEFAULT"]`` and ``["ALL"]``, alternating, one request at a time.

Medians, 90th percentiles and the ratios ALL / DEFAULT (target: at most 1.5). Prints a table and
writes ``bench/results/attributes_latency.json``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from benchlib import ROOT, SAMPLES, machine_info, machine_line, write_results
from facegate.engine.attributes.types import FaceModels
from facegate.engine.core import EngineConfig, FaceEngine, StageTimes
from facegate.operations import FACE_ATTRIBUTES

sys.path.insert(0, str(ROOT))
from tests.e2e.server import LiveServer

ALL = frozenset(FACE_ATTRIBUTES)
MODELS = FaceModels(enabled=frozenset({"faceres", "emotion"}))
WITH_IRIS = FaceModels(enabled=frozenset({"faceres", "emotion", "iris"}))


def image_640x480() -> bytes:
    """obama.jpg scaled to 640 wide and the middle 480 rows kept: one face, about 200 px."""
    with Image.open(SAMPLES / "obama.jpg") as im:
        rgb = im.convert("RGB")
        height = round(rgb.height * 640 / rgb.width)
        scaled = rgb.resize((640, height), Image.Resampling.BILINEAR)
        top = max(0, (height - 480) // 2)
        out = io.BytesIO()
        scaled.crop((0, top, 640, top + 480)).save(out, format="JPEG", quality=90)
    return out.getvalue()


def summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in seconds)
    return {
        "median_ms": statistics.median(ms),
        "p90_ms": ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))],
        "n": float(len(ms)),
    }


def in_process(data: bytes, calls: int) -> dict[str, Any]:
    engines = {
        "DEFAULT": (FaceEngine(EngineConfig(face_models=WITH_IRIS)), frozenset[str]()),
        "ALL, models off": (FaceEngine(EngineConfig()), ALL),
        "ALL, faceres+emotion": (FaceEngine(EngineConfig(face_models=MODELS)), ALL),
        "ALL, +iris": (FaceEngine(EngineConfig(face_models=WITH_IRIS)), ALL),
    }
    for engine, wanted in engines.values():  # warm up (first runs allocate)
        for _ in range(3):
            engine.analyze(data, descriptors=False, attributes=wanted)
        engine.times = StageTimes()
    runs: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(calls):
        for name, (engine, wanted) in engines.items():
            t0 = time.perf_counter()
            analysis = engine.analyze(data, descriptors=False, attributes=wanted)
            runs[name].append(time.perf_counter() - t0)
            assert len(analysis.faces) == 1
    out: dict[str, Any] = {name: summary(r) for name, r in runs.items()}
    for name, (engine, _) in engines.items():
        t = engine.times
        out[name]["stages_ms_per_call"] = {
            "decode": 1000 * t.decode_s / calls,
            "detect": 1000 * t.detect_s / calls,
            "landmarks_and_attributes": 1000 * t.landmarks_s / calls,
            "of_which_attributes": 1000 * t.attributes_s / calls,
        }
    return out


def through_server(data: bytes, requests: int, models: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer(
            Path(tmp) / "data",
            workers=1,
            env={"FACEGATE_ATTRIBUTE_MODELS": models, "FACEGATE_RATE_LIMIT_RPS": "0"},
        )
        server.start()
        try:
            rek = server.client()
            conditions = {"DEFAULT": ["DEFAULT"], "ALL": ["ALL"]}
            for attributes in conditions.values():
                for _ in range(3):
                    rek.detect_faces(Image={"Bytes": data}, Attributes=attributes)
            runs: dict[str, list[float]] = {name: [] for name in conditions}
            for _ in range(requests):
                for name, attributes in conditions.items():
                    t0 = time.perf_counter()
                    reply = rek.detect_faces(Image={"Bytes": data}, Attributes=attributes)
                    runs[name].append(time.perf_counter() - t0)
                    assert len(reply["FaceDetails"]) == 1
            check = rek.detect_faces(Image={"Bytes": data}, Attributes=["ALL"])["FaceDetails"][0]
            expected = {"Smile", "Sunglasses"} | (
                {"AgeRange", "Gender", "Emotions", "EyeDirection"} if models != "none" else set()
            )
            assert expected <= set(check), set(check)
        finally:
            server.stop()
    return {name: summary(r) for name, r in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100, help="in-process calls per condition")
    parser.add_argument("--requests", type=int, default=60, help="requests per condition")
    args = parser.parse_args()
    data = image_640x480()
    engine = in_process(data, args.calls)
    servers = {
        "models off": through_server(data, args.requests, "none"),
        "faceres,emotion,iris": through_server(data, args.requests, "faceres,emotion,iris"),
    }
    base_e = engine["DEFAULT"]["median_ms"]
    print(f"{'where':24} {'condition':20} {'median ms':>10} {'p90 ms':>8} {'x DEFAULT':>10}")
    for name, row in engine.items():
        ratio = row["median_ms"] / base_e
        row["ratio_to_default"] = ratio
        print(f"{'in process':24} {name:20} {row['median_ms']:10.1f} {row['p90_ms']:8.1f} "
              f"{ratio:10.2f}")  # fmt: skip
    for models, server in servers.items():
        base_s = server["DEFAULT"]["median_ms"]
        for name, row in server.items():
            ratio = row["median_ms"] / base_s
            row["ratio_to_default"] = ratio
            print(f"{'DetectFaces, ' + models:24} {name:20} {row['median_ms']:10.1f} "
                  f"{row['p90_ms']:8.1f} {ratio:10.2f}")  # fmt: skip
    print("in-process stages, mean ms per call:")
    for name, row in engine.items():
        stages = ", ".join(f"{k} {v:.1f}" for k, v in row["stages_ms_per_call"].items())
        print(f"  {name:20} {stages}")
    info = machine_info()
    print(machine_line(info))
    path = write_results(
        "attributes_latency",
        {
            "machine": info,
            "image": "obama.jpg scaled to 640x480, one face",
            "in_process": engine,
            "detect_faces": servers,
            "target_ratio": 1.5,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
