"""``facegate models list|show|verify|add`` for descriptor models (``engine.descriptors``).

What a model is, whether its weights are the recorded ones, whether it is calibrated (a model
without a calibration cannot be a collection's model and serves no search), and adding an
operator's own ONNX model. Errors print one line on stderr and exit 3; ``verify`` exits 1 when
a model fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from PIL import Image

from facegate.engine.describers import (
    DescriptorModelUnavailable,
    OnnxDescriber,
    onnx_session,
    verify_model,
)
from facegate.engine.descriptors import (
    FUSED,
    ONNX,
    DescriptorModel,
    DescriptorRegistry,
    add_operator_model,
    operator_models,
)
from facegate.engine.matching import MatcherSet, UncalibratedModel, default_matcher, matcher_for
from facegate.engine.runtime import self_check_chip

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 3


def _allow_unpinned() -> bool:
    return os.environ.get("FACEGATE_MODELS_ALLOW_UNPINNED") == "1"


def _registry(folder: Path) -> DescriptorRegistry:
    registry = DescriptorRegistry.discover(folder)
    default = os.environ.get("FACEGATE_FACE_MODEL", "").strip()
    return DescriptorRegistry(registry.models, default or registry.default_version)


def _calibration(model: DescriptorModel) -> dict[str, str | None]:
    """The Similarity version a model's matcher would use (cohort, else raw), or why none."""
    try:
        matcher = matcher_for(model, "cohort")
    except UncalibratedModel:
        return {"similarity_version": None, "problem": "no calibration"}
    except (ValueError, KeyError, OSError) as exc:
        return {"similarity_version": None, "problem": f"calibration unusable: {exc}"}
    return {"similarity_version": matcher.version, "problem": None}


def descriptor_rows(folder: Path) -> list[dict[str, Any]]:
    """One row per descriptor model for ``list``."""
    registry = _registry(folder)
    matchers = MatcherSet(registry, default_matcher())
    rows = []
    for model in registry.models:
        reason = matchers.servable(model.version)
        if reason is None:
            try:
                for part in [registry.get(v) for v in model.parts] or [model]:
                    verify_model(part, allow_unpinned=_allow_unpinned())
            except DescriptorModelUnavailable as exc:
                reason = str(exc)
        rows.append(
            {
                "version": model.version,
                "kind": model.kind,
                "source": model.source,
                "space": str(model.space),
                "default": model.version == registry.default_version,
                "calibrated": {
                    "raw": model.calibrated(""),
                    "cohort": model.calibrated("cohort"),
                },
                "servable": reason is None,
                "reason": reason,
            }
        )
    for name, problem in operator_models(folder)[1].items():
        rows.append({"version": name, "servable": False, "reason": f"spec unreadable: {problem}"})
    return rows


def render_descriptor_rows(folder: Path) -> str:
    """The ``list`` table of descriptor models."""
    lines = ["", "descriptor models (a collection keeps its model; facegate models show NAME):"]
    for row in descriptor_rows(folder):
        if "space" not in row:
            lines.append(f"{row['version']:24} NOT USABLE: {row['reason']}")
            continue
        calibrated = [k for k, v in row["calibrated"].items() if v] or ["none"]
        state = "serves searches" if row["servable"] else f"NOT USABLE: {row['reason']}"
        default = " (default)" if row["default"] else ""
        lines.append(
            f"{row['version'] + default:34} {row['kind']:6} {row['space']:28} "
            f"calibrated: {'+'.join(calibrated):11} {state}"
        )
    return "\n".join(lines) + "\n"


def _model(args: argparse.Namespace, folder: Path, name: str) -> DescriptorModel | None:
    registry = _registry(folder)
    if name not in registry:
        known = ", ".join(registry.versions())
        print(f"facegate: no descriptor model {name} (known: {known})", file=sys.stderr)
        return None
    return registry.get(name)


def show_model(args: argparse.Namespace, folder: Path, out: TextIO) -> int:
    """``models show NAME``."""
    model = _model(args, folder, args.name)
    if model is None:
        return EXIT_BAD_INPUT
    doc = model.describe() | _calibration(model)
    if args.format == "json":
        out.write(json.dumps(doc, indent=2) + "\n")
        return EXIT_OK
    for key, value in doc.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "-"
        out.write(f"{key:18} {value if value not in (None, '') else '-'}\n")
    return EXIT_OK


def _run_once(model: DescriptorModel) -> str:
    """Load ``model``'s ONNX weights and describe one synthetic aligned face."""
    session = onnx_session(model, threads=1, allow_unpinned=_allow_unpinned())
    describer = OnnxDescriber(model, session)
    size = describer.pre.input_size_px
    crop = np.asarray(Image.fromarray(self_check_chip()).resize((size, size)), dtype=np.uint8)
    vector = describer.embed_crops([crop])
    if vector.shape != (1, model.output_dim) or not np.all(np.isfinite(vector)):
        raise DescriptorModelUnavailable(
            f"{model.version} gave {vector.shape[1]} values (finite: "
            f"{bool(np.all(np.isfinite(vector)))}) for one face; its spec says {model.output_dim}"
        )
    return f"runs ({model.output_dim} values per face)"


def _verify(model: DescriptorModel, registry: DescriptorRegistry) -> list[str]:
    """Problems of one model (empty: none); prints what was checked."""
    problems = []
    parts = [registry.get(v) for v in model.parts] if model.kind == FUSED else [model]
    for part in parts:
        try:
            verify_model(part, allow_unpinned=_allow_unpinned())
            if part.kind == ONNX:
                _run_once(part)
        except DescriptorModelUnavailable as exc:
            problems.append(f"weights of {part.version}: {exc}")
    calibration = _calibration(model)
    if calibration["problem"] is not None:
        problems.append(str(calibration["problem"]))
    return problems


def verify_models(args: argparse.Namespace, folder: Path, out: TextIO) -> int:
    """``models verify [NAME ...]``."""
    registry = _registry(folder)
    names = args.names or list(registry.versions())
    failed = 0
    for name in names:
        if name not in registry:
            print(f"facegate: no descriptor model {name}", file=sys.stderr)
            return EXIT_BAD_INPUT
        model = registry.get(name)
        problems = _verify(model, registry)
        if problems:
            failed += 1
            out.write(f"{name:24} FAILED: {'; '.join(problems)}\n")
        else:
            version = _calibration(model)["similarity_version"]
            out.write(f"{name:24} ok: weights verified, {version}\n")
    return EXIT_FAILED if failed else EXIT_OK


def add_model(args: argparse.Namespace, folder: Path, out: TextIO) -> int:
    """``models add NAME --onnx FILE --spec SPEC.json``."""
    try:
        spec = json.loads(args.spec.read_text(encoding="utf-8"))
        if not isinstance(spec, dict):
            raise ValueError(f"{args.spec} is not a JSON object")
        if not args.onnx.is_file():
            raise ValueError(f"{args.onnx}: file not found")
        model = add_operator_model(folder, args.name, args.onnx, spec, again=args.replace)
    except (OSError, ValueError) as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        ran = _run_once(model)
    except DescriptorModelUnavailable as exc:
        shutil.rmtree(model.calibration_dir or folder / "missing", ignore_errors=True)
        print(f"facegate: {exc}; nothing was added", file=sys.stderr)
        return EXIT_BAD_INPUT
    out.write(
        f"added {model.version}: {model.space}, SHA-256 {model.onnx_sha256}, {ran}\n"
        f"in {model.calibration_dir}\n"
        f"not calibrated: it serves no search until "
        f"facegate bias calibrate --model {model.version} [--normalise] writes its calibration\n"
    )
    return EXIT_OK
