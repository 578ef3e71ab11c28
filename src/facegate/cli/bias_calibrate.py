"""``facegate bias calibrate``: fit the distance -> Similarity mapping and measure what it means.

Reads LFW (identities: mated and impostor pairs) and FairFace (impostor pairs only) from
``--data`` (default ``../shared/data``), computes or reads the cached descriptors, fits the
mapping on one half of each data set and measures FMR and FNMR on the other half (method:
:mod:`facegate.bias.calibration`). Prints the table; ``--out FILE`` writes the calibration
document the engine ships (``src/facegate/engine/calibration/<model>.json`` in a checkout;
with ``--normalise``, ``<model>.cohort.json``: the cohort-normalised score's calibration and the
cohort itself, see :mod:`facegate.engine.cohort`).

``--model NAME`` calibrates another descriptor model (``engine.descriptors``: ``faceres-v1``, an
operator's model added with ``facegate models add``): its descriptors, its distance (cosine
for faceres), its cohort. A fused model's (``fused-dlib-faceres-v1``) fusion weights are fitted
first (:func:`facegate.bias.fusion_fit.fit_fusion`: each part's distance z-scored by the
impostor pairs of LFW's fit half), then its calibration on the fused distance and, with
``--normalise``, a cohort per part combined with those weights; the weights are shipped in both
documents (``"fusion"``). Unless ``--out`` says otherwise, an operator's model's document is
written into its own folder, and a built-in model's the package does not calibrate into the
models folder's ``calibration/``; from then on (after a restart) it can serve searches.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from facegate.bias.calibration import DEFAULT_CAP, split_source
from facegate.bias.calibration_run import calibrate, calibration_source, render
from facegate.bias.datasets import DatasetError, Manifest, load_congress, load_fairface, load_lfw
from facegate.bias.descriptors import FACE, DescriptorCache, DescriptorSet, compute_descriptors
from facegate.bias.fusion_fit import fit_fusion
from facegate.bias.normalisation import LfwPairs, compare
from facegate.bias.normalisation import render as render_comparison
from facegate.bias.report_html import render_html
from facegate.engine.core import EngineConfig
from facegate.engine.descriptors import FUSED, DescriptorModel, DescriptorRegistry
from facegate.engine.human_models import default_models_dir
from facegate.engine.matching import default_matcher, raw_matcher
from facegate.vectorspace import DLIB_SPACE

EXIT_OK, EXIT_BAD_INPUT = 0, 3


def register(bias_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``calibrate`` to the ``bias`` subcommands."""
    p = bias_sub.add_parser("calibrate", help="fit the distance -> Similarity mapping on data")
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="data root folder")
    p.add_argument("--out", type=Path, default=None, help="write the calibration document here")
    p.add_argument(
        "--cap",
        type=float,
        default=None,
        help=f"largest impostor distance kept (dlib's: {DEFAULT_CAP:g}; another model's: the "
        "fit halves' 20%% impostor quantile)",
    )
    p.add_argument("--min-pairs", type=int, default=100, help="fewest pairs to measure a group")
    p.add_argument("--cache", type=Path, default=None, help="descriptor cache (SQLite) file")
    p.add_argument("--workers", type=int, default=2, help="engine processes for uncached images")
    p.add_argument("--no-mmod-fallback", action="store_true", help="HOG only (faster, fewer faces)")
    p.add_argument(
        "--normalise",
        action="store_true",
        help="calibrate the cohort-normalised score (fits and ships the cohort too)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="the descriptor model to calibrate (facegate models list; default dlib's)",
    )
    p.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="the models folder (default FACEGATE_MODELS_DIR, else the environment's)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    p.set_defaults(func=cmd_calibrate, parser=p, bias_command="calibrate")
    q = bias_sub.add_parser(
        "normalisation", help="raw distance vs cohort-normalised score, side by side"
    )
    q.add_argument("--data", type=Path, default=Path("../shared/data"), help="data root folder")
    q.add_argument("--json", type=Path, default=None, help="write the comparison here")
    q.add_argument("--html", type=Path, default=None, help="write a self-contained HTML page")
    q.add_argument(
        "--bound", type=float, default=0.01, help="max_expected_false_candidates of the lineup"
    )
    q.add_argument("--cache", type=Path, default=None, help="descriptor cache (SQLite) file")
    q.add_argument("--workers", type=int, default=2, help="engine processes for uncached images")
    q.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    q.set_defaults(func=cmd_normalisation, parser=q, bias_command="normalisation")


def _descriptors(
    args: argparse.Namespace, manifests: list[Manifest], model: DescriptorModel | None = None
) -> list[DescriptorSet]:
    cache = DescriptorCache(args.cache)
    config = EngineConfig()
    extra: dict[str, Any] = {}
    if model is not None:
        config = replace(config, descriptors=_registry(args))
        extra = {"model": model.version}
    return [
        compute_descriptors(
            m,
            cache=cache,
            config=config,
            workers=args.workers,
            mmod_fallback=not getattr(args, "no_mmod_fallback", False),
            progress=not args.no_progress,
            **extra,
        )
        for m in manifests
    ]


def _registry(args: argparse.Namespace) -> DescriptorRegistry:
    folder = getattr(args, "models_dir", None) or env_models_dir()
    return DescriptorRegistry.discover(folder)


def env_models_dir() -> Path:
    """``FACEGATE_MODELS_DIR``, else the environment's models folder."""
    value = os.environ.get("FACEGATE_MODELS_DIR")
    return Path(value) if value else default_models_dir()


def cmd_normalisation(args: argparse.Namespace, out: TextIO) -> int:
    """Compare the shipped raw and normalised matchers (:mod:`facegate.bias.normalisation`)."""
    try:
        lfw, pairs = load_lfw(args.data / "lfw")
        fairface = load_fairface(args.data / "fairface_val")
        congress = load_congress(args.data / "congress_2015")
        lfw_d, ff_d, congress_d = _descriptors(args, [lfw, fairface, congress])
        view2 = LfwPairs(
            lfw_d.vectors.astype(np.float64),
            np.array([p.left for p in pairs]),
            np.array([p.right for p in pairs]),
            np.array([p.mated for p in pairs]),
            np.array([-1 if p.fold is None else p.fold for p in pairs]),
        )
        _, held = split_source(calibration_source(fairface, ff_d))
        probes = congress_d.vectors[list(congress_d.indices(FACE))].astype(np.float64)
        doc = compare(
            {"raw": raw_matcher(), "normalised": default_matcher()},
            view2,
            held,
            probes,
            bound=args.bound,
        )
    except (DatasetError, OSError, ValueError) as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    doc["command"] = f"facegate bias normalisation --data {args.data} --bound {args.bound:g}"
    doc["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    doc["model_version"] = lfw_d.model_version
    print("\n".join(render_comparison(doc)), file=out)
    if args.json is not None:
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=out)
    if args.html is not None:
        args.html.write_text(render_html(doc), encoding="utf-8")
        print(f"wrote {args.html}", file=out)
    return EXIT_OK


def cmd_calibrate(args: argparse.Namespace, out: TextIO) -> int:
    """Fit, measure, print, and optionally write the calibration document."""
    model: DescriptorModel | None = None
    try:
        if args.model is not None:
            model = _registry(args).get(args.model)
        lfw, _ = load_lfw(args.data / "lfw")
        fairface = load_fairface(args.data / "fairface_val")
        descs = _descriptors(args, [lfw, fairface], model)
        cap = args.cap if args.cap is not None or model is not None else DEFAULT_CAP
        weights, note = None, None
        if model is not None and model.kind == FUSED:
            weights, note = fit_fusion(lfw, descs[0], model.space)
        command = (
            "facegate bias calibrate --data "
            + str(args.data)
            + (f" --model {model.version}" if model is not None else "")
            + (" --no-mmod-fallback" if args.no_mmod_fallback else "")
            + ("" if cap is None else f" --cap {cap:g}")
            + f" --min-pairs {args.min_pairs}"
            + (" --normalise" if args.normalise else "")
        )
        doc = calibrate(
            [lfw, fairface],
            descs,
            cap,
            args.min_pairs,
            command,
            not args.no_progress,
            normalise=args.normalise,
            space=DLIB_SPACE if model is None else model.space,
            weights=weights,
            fusion_note=note,
        )
    except KeyError as exc:
        print(
            f"facegate: no descriptor model {exc.args[0]} (facegate models list)", file=sys.stderr
        )
        return EXIT_BAD_INPUT
    except (DatasetError, OSError, ValueError) as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print("\n".join(render(doc)), file=out)
    if args.out is None and model is not None and model.calibration_dir is not None:
        # an operator's model (its calibration lives beside its weights), or a built-in one the
        # package does not calibrate (the models folder's calibration/)
        model.calibration_dir.mkdir(parents=True, exist_ok=True)
        args.out = model.calibration_dir / model.calibration_file(
            "cohort" if args.normalise else ""
        )
    if args.out is not None:
        args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}", file=out)
    return EXIT_OK
