"""Measure EyeDirection (the ``iris`` model and the eyeball model) without gaze labels.

    PYTHONPATH=src .venv/bin/python bench/attribute_eye_direction.py [--write]

No data here has gaze labels. What can be checked: official portraits of the US Congress
(../shared/data/congress_2015, 879 GPO portraits) are photographed with the subject looking
into the camera, so the eyes' rotation in the head should be about minus the head's:
EyeDirection yaw ~ -Pose yaw and pitch ~ -Pose pitch, i.e. the eyes' direction in the camera's
frame (EyeDirection + Pose) ~ 0. Some members will not have looked exactly into the lens: the
errors below include them, so they bound the estimator's error from above, a little loosely.

1. Each portrait through the engine (``FaceEngine``, default configuration; the largest face),
   the iris model on both eyes (``engine.attributes.eye_direction``), each eye's offset (u, v)
   and the head pose cached in bench/results/cache/eye_direction_congress.json.
2. Split by a salted hash of the bioguide id (``split_keys``, salt ``facegate-eye-direction-v1``).
   Fitted on the fit half: the corners' depth ``D``, separately for yaw and pitch (a grid of
   0-8 mm by 0.5 mm, the value with the smallest mean absolute error), and for each ``D`` the
   rest offsets ``u0``, ``v0`` (where the iris sits with the eyes straight out of the head: the
   median offset that makes each portrait's expected eye rotation exact). The radius and the
   eye's width are fixed anatomy (module docstring of eye_direction.py). Also measured: the
   model with nothing fitted (``D`` 4 mm, an anatomical guess, and rest offsets 0).
3. On the held-out half: mean absolute error of yaw and pitch against (-Pose yaw, -Pose pitch),
   their Pearson correlation with it, the same for the baseline "eyes straight in the head"
   (0, 0), and the correlation of the camera-frame direction with the head pose (should be 0:
   the correlation with -Pose is partly built in, since the eyeball model subtracts the head's
   angle). Errors by Confidence band, faces withheld (eyes closed, turned away).
4. The sample photos (../shared/data/samples) with the direction each face gets.

``--write`` writes the rest offsets and the held-out measurements to
src/facegate/engine/calibration/attributes-eye-direction.json (the file the engine ships).
Prints tables and writes bench/results/attribute_eye_direction.json.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import math
import sys
from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image

from benchlib import RESULTS, ROOT, SAMPLES, machine_info, machine_line, write_results
from facegate.bias.calibration import split_keys
from facegate.engine.attributes.eye_direction import (
    CALIBRATION_FILE,
    IRIS,
    EyeballModel,
    EyeDirectionEstimator,
    EyeOffset,
    combine,
    eye_angles,
)
from facegate.engine.attributes.geometry import geometric
from facegate.engine.attributes.registry import AttributeRegistry
from facegate.engine.attributes.types import (
    Attribute,
    EstimatorSpec,
    EyeDirection,
    FaceInput,
)
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.human_models import load_onnx_model

CONGRESS = ROOT.parent / "shared" / "data" / "congress_2015"
CACHE = RESULTS / "cache" / "eye_direction_congress.json"
SHIPPED = ROOT / "src" / "facegate" / "engine" / "calibration" / CALIBRATION_FILE
SALT = "facegate-eye-direction-v1"
VERSION = "congress-half-v2"


class Recorder:
    """An EyeDirection 'estimator' that records each face's offsets and pose (returns None)."""

    attribute = Attribute.EYE_DIRECTION
    version = "recorder"

    def __init__(self, estimator: EyeDirectionEstimator) -> None:
        self.estimator = estimator
        self.records: list[dict[str, Any]] = []

    def estimate(self, face: FaceInput) -> EyeDirection | None:
        eyes_open = geometric(Attribute.EYES_OPEN).estimate(face)
        unchecked = EyeDirectionEstimator(
            self.estimator.model, self.estimator.eyeball, "bench", eyes_open=None
        )
        offsets = unchecked.offsets(face)
        self.records.append(
            {
                "yaw": face.pose.yaw_deg,
                "pitch": face.pose.pitch_deg,
                "box": [face.box_px.left, face.box_px.top, face.box_px.width, face.box_px.height],
                "eyes_open": None if eyes_open is None else eyes_open.value,
                "offsets": None if offsets is None else [[o.u, o.v] for o in offsets],
            }
        )
        return None


def recording_engine() -> tuple[FaceEngine, Recorder]:
    model = load_onnx_model(IRIS)
    if model is None:
        sys.exit("the iris model is not set up (facegate models list)")
    engine = FaceEngine(EngineConfig(attributes=frozenset()))
    recorder = Recorder(EyeDirectionEstimator(model, EyeballModel(), "bench"))
    spec = EstimatorSpec(Attribute.EYE_DIRECTION, "recorder", lambda _: recorder)
    engine.attributes = AttributeRegistry([(spec, recorder)])
    return engine, recorder


def record(engine: FaceEngine, recorder: Recorder, data: bytes) -> dict[str, Any] | None:
    recorder.records.clear()
    analysis = engine.analyze(data, descriptors=False, attributes=frozenset({"EYE_DIRECTION"}))
    if not analysis.faces or not recorder.records:
        return None
    return recorder.records[0]  # faces are largest first


def mirrored(data: bytes) -> bytes:
    """The image flipped left to right (PNG, lossless)."""
    with Image.open(io.BytesIO(data)) as im:
        out = io.BytesIO()
        im.convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(out, format="PNG")
    return out.getvalue()


def collect() -> dict[str, Any]:
    """Each portrait's record, and its mirror image's (``<id>/mirrored``)."""
    if CACHE.exists():
        cached: dict[str, Any] = json.loads(CACHE.read_text())
        return cached
    engine, recorder = recording_engine()
    out: dict[str, Any] = {}
    for path in sorted((CONGRESS / "images").glob("*.jpg")):
        data = path.read_bytes()
        out[path.stem] = record(engine, recorder, data)
        out[f"{path.stem}/mirrored"] = record(engine, recorder, mirrored(data))
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps(out))
    return out


def direction(rec: dict[str, Any], model: EyeballModel) -> EyeDirection:
    angles = [
        eye_angles(EyeOffset(u, v), rec["yaw"], rec["pitch"], model) for u, v in rec["offsets"]
    ]
    return combine(angles)


ANATOMY = EyeballModel(corner_depth_yaw_mm=4.0, corner_depth_pitch_mm=4.0)
"""Nothing fitted: the corners 4 mm in front of the centre of rotation, rest offsets 0."""
DEPTHS_MM = tuple(0.5 * i for i in range(17))


def fit(recs: list[dict[str, Any]]) -> EyeballModel:
    """The corners' depth for yaw and for pitch with the smallest mean absolute error on
    ``recs``, each with its rest offsets (:func:`fit_rest`)."""
    best: dict[str, tuple[float, float, float]] = {}
    for depth in DEPTHS_MM:
        trial = EyeballModel(corner_depth_yaw_mm=depth, corner_depth_pitch_mm=depth)
        rest_u, rest_v = fit_rest(recs, trial)
        trial = replace(trial, rest_u=rest_u, rest_v=rest_v)
        m = measure(recs, trial)
        for axis, rest in (("yaw", rest_u), ("pitch", rest_v)):
            error = m[f"{axis}_mae_deg"]
            if axis not in best or error < best[axis][0]:
                best[axis] = (error, depth, rest)
    return EyeballModel(
        corner_depth_yaw_mm=best["yaw"][1],
        corner_depth_pitch_mm=best["pitch"][1],
        rest_u=best["yaw"][2],
        rest_v=best["pitch"][2],
    )


def fit_rest(recs: list[dict[str, Any]], model: EyeballModel) -> tuple[float, float]:
    """The rest offsets that make the expected eye rotation (-head) exact, median over faces:
    the offset the model predicts for eyes turned by -head, subtracted from the one seen."""
    du, dv = [], []
    for rec in recs:
        h, p = math.radians(rec["yaw"]), math.radians(rec["pitch"])
        cos_h = math.cos(h)
        # eye rotation -head: sin(y + H) = 0, so the seen offset should be -D sin H / (W cos H)
        expect_u = -model.corner_depth_yaw_mm * math.sin(h) / (model.eye_width_mm * cos_h)
        expect_v = -model.corner_depth_pitch_mm * math.sin(p) / (model.eye_width_mm * cos_h)
        for u, v in rec["offsets"]:
            du.append(u - expect_u)
            dv.append(v - expect_v)
    return float(np.median(du)), float(np.median(dv))


def pearson(a: list[float], b: list[float]) -> float:
    return float(np.corrcoef(np.asarray(a), np.asarray(b))[0, 1])


def measure(recs: list[dict[str, Any]], model: EyeballModel) -> dict[str, Any]:
    est = [direction(r, model) for r in recs]
    yaw = [e.yaw_deg for e in est]
    pitch = [e.pitch_deg for e in est]
    want_yaw = [-r["yaw"] for r in recs]
    want_pitch = [-r["pitch"] for r in recs]
    err_yaw = np.abs(np.subtract(yaw, want_yaw))
    err_pitch = np.abs(np.subtract(pitch, want_pitch))
    camera_yaw = [y + r["yaw"] for y, r in zip(yaw, recs, strict=True)]
    camera_pitch = [p + r["pitch"] for p, r in zip(pitch, recs, strict=True)]
    bands: dict[str, Any] = {}
    conf = np.asarray([e.confidence_pct for e in est])
    for lo, hi in ((0, 50), (50, 75), (75, 90), (90, 101)):
        mask = (conf >= lo) & (conf < hi)
        if mask.any():
            bands[f"{lo}-{min(hi, 100)}"] = {
                "faces": int(mask.sum()),
                "yaw_mae_deg": float(err_yaw[mask].mean()),
                "pitch_mae_deg": float(err_pitch[mask].mean()),
            }
    return {
        "faces": len(recs),
        "yaw_mae_deg": float(err_yaw.mean()),
        "yaw_median_abs_deg": float(np.median(err_yaw)),
        "yaw_p90_abs_deg": float(np.quantile(err_yaw, 0.9)),
        "pitch_mae_deg": float(err_pitch.mean()),
        "pitch_median_abs_deg": float(np.median(err_pitch)),
        "pitch_p90_abs_deg": float(np.quantile(err_pitch, 0.9)),
        "yaw_r_with_minus_head": pearson(yaw, want_yaw),
        "pitch_r_with_minus_head": pearson(pitch, want_pitch),
        "baseline_straight_yaw_mae_deg": float(np.abs(want_yaw).mean()),
        "baseline_straight_pitch_mae_deg": float(np.abs(want_pitch).mean()),
        "camera_yaw_r_with_head": pearson(camera_yaw, [r["yaw"] for r in recs]),
        "camera_pitch_r_with_head": pearson(camera_pitch, [r["pitch"] for r in recs]),
        "head_yaw_sd_deg": float(np.std([r["yaw"] for r in recs])),
        "head_pitch_sd_deg": float(np.std([r["pitch"] for r in recs])),
        "by_confidence": bands,
    }


def mirror_check(ids: list[str], data: dict[str, Any], model: EyeballModel) -> dict[str, Any]:
    """A portrait and its mirror image should get opposite yaws and the same pitch (a
    consistency check of the whole chain, landmarks and crops included; not an accuracy)."""
    yaw_sum, pitch_diff = [], []
    for i in ids:
        flipped = data.get(f"{i}/mirrored")
        if not flipped or not flipped["offsets"]:
            continue
        a, b = direction(data[i], model), direction(flipped, model)
        yaw_sum.append(abs(a.yaw_deg + b.yaw_deg))
        pitch_diff.append(abs(a.pitch_deg - b.pitch_deg))
    return {
        "faces": len(yaw_sum),
        "yaw_plus_mirrored_yaw_mean_abs_deg": float(np.mean(yaw_sum)),
        "pitch_minus_mirrored_pitch_mean_abs_deg": float(np.mean(pitch_diff)),
    }


def samples(model: EyeballModel) -> list[dict[str, Any]]:
    engine, recorder = recording_engine()
    out = []
    for path in sorted(SAMPLES.glob("*.jpg")):
        recorder.records.clear()
        engine.analyze(
            path.read_bytes(), descriptors=False, attributes=frozenset({"EYE_DIRECTION"})
        )
        for face, rec in enumerate(list(recorder.records)):
            if rec["offsets"] is None:
                continue
            d = direction(rec, model)
            out.append(
                {
                    "image": path.name,
                    "face": face,
                    "box": rec["box"],
                    "head_yaw": round(rec["yaw"], 1),
                    "head_pitch": round(rec["pitch"], 1),
                    "eye_yaw": round(d.yaw_deg, 1),
                    "eye_pitch": round(d.pitch_deg, 1),
                    "confidence": round(d.confidence_pct, 1),
                    "eyes_open": rec["eyes_open"],
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="write the shipped calibration")
    args = parser.parse_args()
    data = collect()
    ids = sorted(i for i in data if not i.endswith("/mirrored"))
    no_face = [i for i in ids if data[i] is None]
    turned = [i for i in ids if data[i] and abs(data[i]["yaw"]) > 45]
    closed = [i for i in ids if data[i] and data[i]["eyes_open"] is False]
    usable = [
        i for i in ids if data[i] and data[i]["offsets"] and i not in turned and i not in closed
    ]
    fit_mask = split_keys(usable, SALT)
    fit_recs = [data[i] for i, m in zip(usable, fit_mask, strict=True) if m]
    held = [data[i] for i, m in zip(usable, fit_mask, strict=True) if not m]
    fitted = fit(fit_recs)
    rest_u, rest_v = fitted.rest_u, fitted.rest_v
    held_ids = [i for i, m in zip(usable, fit_mask, strict=True) if not m]
    results: dict[str, Any] = {
        "data": "US Congress official portraits (congress_2015, 879), subjects looking into the "
        "camera: expected eye rotation = -head pose",
        "withheld": {
            "no_face": len(no_face),
            "yaw_over_45": len(turned),
            "eyes_closed": len(closed),
        },
        "split": {"salt": SALT, "fit": len(fit_recs), "held_out": len(held)},
        "rest": {"u": rest_u, "v": rest_v},
        "corner_depth_mm": {
            "yaw": fitted.corner_depth_yaw_mm,
            "pitch": fitted.corner_depth_pitch_mm,
        },
        "held_out": measure(held, fitted),
        "held_out_nothing_fitted": measure(held, ANATOMY),
        "fit_half": measure(fit_recs, fitted),
        "mirror": mirror_check(held_ids, data, fitted),
        "samples": samples(fitted),
        "machine": machine_info(),
    }
    print(
        f"Congress portraits: {len(ids)}; no face {len(no_face)}, turned >45 deg "
        f"{len(turned)}, eyes closed {len(closed)}; fit {len(fit_recs)}, held out {len(held)}"
    )
    print(
        f"fitted on the fit half: u0 = {rest_u:+.4f}, v0 = {rest_v:+.4f}, corner depth "
        f"{fitted.corner_depth_yaw_mm} mm (yaw), {fitted.corner_depth_pitch_mm} mm (pitch)"
    )
    header = f"{'':34} {'yaw':>8} {'pitch':>8}"
    for name in ("held_out", "held_out_nothing_fitted", "fit_half"):
        m = results[name]
        print(f"\n{name} ({m['faces']} faces)\n{header}")
        print(f"{'MAE vs -head (deg)':34} {m['yaw_mae_deg']:8.2f} {m['pitch_mae_deg']:8.2f}")
        print(
            f"{'median |error| (deg)':34} {m['yaw_median_abs_deg']:8.2f} "
            f"{m['pitch_median_abs_deg']:8.2f}"
        )
        print(
            f"{'90th pct |error| (deg)':34} {m['yaw_p90_abs_deg']:8.2f} "
            f"{m['pitch_p90_abs_deg']:8.2f}"
        )
        print(
            f"{'Pearson r with -head':34} {m['yaw_r_with_minus_head']:8.3f} "
            f"{m['pitch_r_with_minus_head']:8.3f}"
        )
        print(
            f"{'baseline eyes straight: MAE':34} {m['baseline_straight_yaw_mae_deg']:8.2f} "
            f"{m['baseline_straight_pitch_mae_deg']:8.2f}"
        )
        print(
            f"{'camera-frame r with head':34} {m['camera_yaw_r_with_head']:8.3f} "
            f"{m['camera_pitch_r_with_head']:8.3f}"
        )
        print(
            f"{'head pose SD (deg)':34} {m['head_yaw_sd_deg']:8.2f} {m['head_pitch_sd_deg']:8.2f}"
        )
        for band, b in m["by_confidence"].items():
            print(
                f"  Confidence {band:>7}: {b['faces']:4d} faces, MAE yaw "
                f"{b['yaw_mae_deg']:.2f}, pitch {b['pitch_mae_deg']:.2f}"
            )
    mc = results["mirror"]
    print(
        f"\nmirror images ({mc['faces']} held-out faces): |yaw + mirrored yaw| "
        f"{mc['yaw_plus_mirrored_yaw_mean_abs_deg']:.2f} deg, |pitch - mirrored pitch| "
        f"{mc['pitch_minus_mirrored_pitch_mean_abs_deg']:.2f} deg (means)"
    )
    print("\nsamples (head yaw/pitch, eye yaw/pitch, confidence):")
    for s in results["samples"]:
        print(
            f"  {s['image']:24} {s['face']:2d} head {s['head_yaw']:+6.1f} "
            f"{s['head_pitch']:+6.1f}  eyes {s['eye_yaw']:+6.1f} {s['eye_pitch']:+6.1f}  "
            f"conf {s['confidence']:5.1f}"
        )
    print(machine_line(results["machine"]))
    write_results("attribute_eye_direction", results)
    if args.write:
        held_m = results["held_out"]
        doc = {
            "format": "facegate-eye-direction/1",
            "version": VERSION,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": "PYTHONPATH=src .venv/bin/python bench/attribute_eye_direction.py --write",
            "rest": {"u": rest_u, "v": rest_v},
            "corner_depth_mm": results["corner_depth_mm"],
            "eyeball": {
                "pupil_radius_mm": fitted.pupil_radius_mm,
                "eye_width_mm": fitted.eye_width_mm,
            },
            "measured": {
                "data": results["data"],
                "split": results["split"],
                "held_out": {k: v for k, v in held_m.items() if k != "by_confidence"},
                "summary": (
                    f"Congress portraits (subjects looking into the camera), "
                    f"{held_m['faces']} held-out faces: mean absolute error against minus the "
                    f"head pose {held_m['yaw_mae_deg']:.1f} deg yaw, "
                    f"{held_m['pitch_mae_deg']:.1f} deg pitch; no gaze-labelled data"
                ),
            },
        }
        SHIPPED.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {SHIPPED}")


if __name__ == "__main__":
    main()
