"""``facegate bias calibrate``: fit the distance -> Similarity mapping and measure what it means.

Reads LFW (identities: mated and impostor pairs) and FairFace (impostor pairs only) from
``--data`` (default ``../shared/data``), computes or reads the cached descriptors, fits the
mapping on one half of each data set and measures FMR and FNMR on the other half (method:
:mod:`facegate.bias.calibration`). Prints the table; ``--out FILE`` writes the calibration
document the engine ships (``src/facegate/engine/calibration/<model>.json`` in a checkout;
with ``--normalise``, ``<model>.cohort.json``: the cohort-normalised score's calibration and the
cohort itself, see :mod:`facegate.engine.cohort`).

``--model`` picks the descriptor model: ``dlib`` (``dlib-resnet-v1``, the default), ``faceres``
(``faceres-v1``: HSE FaceRes on the ArcFace-aligned 224x224 crop of the same face,
:mod:`facegate.bias.model_descriptors`; ``--crop hse-box`` measures HSE's own loose crop
instead) or ``fused`` (``fused-dlib-faceres-v1``: both, :mod:`facegate.engine.fusion`; its
constants are fitted on LFW's fit half first and shipped in the document, and with
``--normalise`` the fused cohort, :func:`facegate.bias.cohort_fit.fit_fused_cohort`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from facegate.bias.calibration import DEFAULT_CAP, split_source
from facegate.bias.calibration_run import calibrate, calibration_source, render
from facegate.bias.cohort_fit import fit_fused_cohort
from facegate.bias.datasets import DatasetError, Manifest, load_congress, load_fairface, load_lfw
from facegate.bias.descriptors import FACE, DescriptorCache, DescriptorSet, compute_descriptors
from facegate.bias.fusion_fit import fit_fusion, joint_set
from facegate.bias.model_descriptors import (
    FaceresDescriber,
    compute_model_descriptors,
    detect_faces,
)
from facegate.bias.normalisation import LfwPairs, compare
from facegate.bias.normalisation import render as render_comparison
from facegate.bias.report_html import render_html
from facegate.engine.align5 import ALIGNMENTS, ARCFACE_224
from facegate.engine.matching import default_matcher, raw_matcher

EXIT_OK, EXIT_BAD_INPUT = 0, 3
MODEL_CAPS = {"dlib": DEFAULT_CAP, "faceres": 1.35, "fused": 0.9}
"""The default ``--cap`` per model: past the distance (score) of FMR 10% on every data set."""


def register(bias_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``calibrate`` to the ``bias`` subcommands."""
    p = bias_sub.add_parser("calibrate", help="fit the distance -> Similarity mapping on data")
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="data root folder")
    p.add_argument("--out", type=Path, default=None, help="write the calibration document here")
    p.add_argument(
        "--model",
        choices=tuple(MODEL_CAPS),
        default="dlib",
        help="descriptor model: dlib (default), faceres, or fused (dlib + faceres)",
    )
    p.add_argument(
        "--crop",
        choices=ALIGNMENTS,
        default=ARCFACE_224,
        help="faceres's crop: arcface224 (5-point similarity alignment, default) or hse-box",
    )
    p.add_argument(
        "--models-dir", type=Path, default=None, help="converted face models (faceres) folder"
    )
    p.add_argument(
        "--cap",
        type=float,
        default=None,
        help="largest impostor distance kept (default per model: "
        + ", ".join(f"{k} {v:g}" for k, v in MODEL_CAPS.items())
        + ")",
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


def _descriptors(args: argparse.Namespace, manifests: list[Manifest]) -> list[DescriptorSet]:
    cache = DescriptorCache(args.cache)
    return [
        compute_descriptors(
            m,
            cache=cache,
            workers=args.workers,
            mmod_fallback=not getattr(args, "no_mmod_fallback", False),
            progress=not args.no_progress,
        )
        for m in manifests
    ]


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


def model_descriptors(
    args: argparse.Namespace, manifests: list[Manifest]
) -> tuple[list[DescriptorSet], list[DescriptorSet]]:
    """(dlib's, faceres's) descriptors of the same faces, from the cache or computed."""
    cache = DescriptorCache(args.cache)
    describer = FaceresDescriber(args.crop, args.models_dir)
    fallback = not getattr(args, "no_mmod_fallback", False)
    dlib, faceres = [], []
    for m in manifests:
        dlib.append(
            detect_faces(
                m,
                cache=cache,
                workers=args.workers,
                mmod_fallback=fallback,
                progress=not args.no_progress,
            )[0]
        )
        faceres.append(
            compute_model_descriptors(
                m,
                describer,
                cache=cache,
                workers=args.workers,
                mmod_fallback=fallback,
                progress=not args.no_progress,
            )
        )
    return dlib, faceres


def cmd_calibrate(args: argparse.Namespace, out: TextIO) -> int:
    """Fit, measure, print, and optionally write the calibration document."""
    cap = args.cap if args.cap is not None else MODEL_CAPS[args.model]
    try:
        lfw, _ = load_lfw(args.data / "lfw")
        fairface = load_fairface(args.data / "fairface_val")
        command = (
            "facegate bias calibrate --data "
            + str(args.data)
            + ("" if args.model == "dlib" else f" --model {args.model}")
            + (f" --crop {args.crop}" if args.model != "dlib" and args.crop != ARCFACE_224 else "")
            + (" --no-mmod-fallback" if args.no_mmod_fallback else "")
            + f" --cap {cap:g} --min-pairs {args.min_pairs}"
            + (" --normalise" if args.normalise else "")
        )
        fit = functools.partial(
            calibrate,
            [lfw, fairface],
            cap=cap,
            min_pairs=args.min_pairs,
            command=command,
            progress=not args.no_progress,
            normalise=args.normalise,
        )
        if args.model == "dlib":
            doc = fit(descs=_descriptors(args, [lfw, fairface]))
        else:
            dlib, faceres = model_descriptors(args, [lfw, fairface])
            if args.model == "faceres":
                doc = fit(descs=faceres, legacy_v0=False)
            else:
                fusion, note = fit_fusion(lfw, dlib[0], faceres[0])
                doc = fit(
                    descs=[joint_set(a, b) for a, b in zip(dlib, faceres, strict=True)],
                    metric=fusion,
                    cohort_fitter=functools.partial(fit_fused_cohort, fusion=fusion),
                    extra={"fusion": fusion.to_json(), "fusion_fit": note},
                )
    except (DatasetError, OSError, ValueError) as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print("\n".join(render(doc)), file=out)
    if args.out is not None:
        args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}", file=out)
    return EXIT_OK
