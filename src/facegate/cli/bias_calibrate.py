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

from facegate.bias.calibration import DEFAULT_CAP
from facegate.bias.calibration_run import calibrate, render
from facegate.bias.datasets import DatasetError, Manifest, load_fairface, load_lfw
from facegate.bias.descriptors import DescriptorCache, DescriptorSet, compute_descriptors
from facegate.bias.fusion_fit import fit_fusion
from facegate.bias.normalisation import compare
from facegate.bias.normalisation import render as render_comparison
from facegate.bias.report_html import render_html
from facegate.cli.bias_data import DATA_ROOT, add_data_root, add_dataset
from facegate.cli.bias_normalisation import comparison_inputs, normalisation_command
from facegate.engine.core import EngineConfig
from facegate.engine.descriptors import FUSED, DescriptorModel, DescriptorRegistry
from facegate.engine.human_models import default_models_dir
from facegate.engine.matching import default_matcher, raw_matcher
from facegate.vectorspace import DLIB_SPACE

EXIT_OK, EXIT_BAD_INPUT = 0, 3


def register(bias_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``calibrate`` to the ``bias`` subcommands."""
    p = bias_sub.add_parser("calibrate", help="fit the distance -> Similarity mapping on data")
    p.add_argument(
        "--data-root", "--data", dest="data", type=Path, default=DATA_ROOT, help="data root folder"
    )
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
    add_data_root(q)
    q.add_argument(  # deprecated spelling of --data-root
        "--data", type=Path, dest="data_root", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    add_dataset(q, "--mated", "lfw", "mated pairs that set the equal-FNMR threshold")
    add_dataset(q, "--impostors", "fairface", "grouped faces whose within-group FMR is compared")
    add_dataset(q, "--probes", "congress", "lineup probes, nobody in --impostors")
    q.add_argument(
        "--group-by",
        default="race,gender",
        metavar="ATTRS",
        help="comma-separated attributes of --impostors, intersectional (default: race,gender)",
    )
    q.add_argument("--json", type=Path, default=None, help="write the comparison here")
    q.add_argument("--html", type=Path, default=None, help="write a self-contained HTML page")
    q.add_argument(
        "--bound", type=float, default=0.01, help="max_expected_false_candidates of the lineup"
    )
    q.add_argument("--cache", type=Path, default=None, help="descriptor cache (SQLite) file")
    q.add_argument("--workers", type=int, default=2, help="engine processes for uncached images")
    q.add_argument(
        "--mmod-fallback", action="store_true", help="MMOD where the chain finds no face (slow)"
    )
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
            mmod_fallback=_fallback(args),
            progress=not args.no_progress,
            **extra,
        )
        for m in manifests
    ]


def _fallback(args: argparse.Namespace) -> bool:
    """MMOD where the chain finds no face: ``calibrate`` unless ``--no-mmod-fallback`` (the
    shipped calibrations were fitted so); ``normalisation`` only with ``--mmod-fallback``."""
    if hasattr(args, "mmod_fallback"):
        return bool(args.mmod_fallback)
    return not getattr(args, "no_mmod_fallback", False)


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
        inputs = comparison_inputs(args, lambda ms: _descriptors(args, ms))
        doc = compare(
            {"raw": raw_matcher(), "normalised": default_matcher()},
            inputs.mated,
            inputs.held,
            inputs.probes,
            grouping=inputs.grouping,
            bound=args.bound,
        )
    except (DatasetError, OSError, ValueError) as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    doc["data"] = inputs.names
    doc["command"] = normalisation_command(args)
    doc["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    doc["model_version"] = inputs.model_version
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
