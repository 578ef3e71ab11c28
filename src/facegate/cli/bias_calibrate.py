"""``facegate bias calibrate``: fit the distance -> Similarity mapping and measure what it means.

Reads LFW (identities: mated and impostor pairs) and FairFace (impostor pairs only) from
``--data`` (default ``../shared/data``), computes or reads the cached descriptors, fits the
mapping on one half of each data set and measures FMR and FNMR on the other half (method:
:mod:`facegate.bias.calibration`). Prints the table; ``--out FILE`` writes the calibration
document the engine ships (``src/facegate/engine/calibration/<model>.json`` in a checkout).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from facegate.bias.calibration import DEFAULT_CAP
from facegate.bias.calibration_run import calibrate, render
from facegate.bias.datasets import DatasetError, load_fairface, load_lfw
from facegate.bias.descriptors import DescriptorCache, compute_descriptors

EXIT_OK, EXIT_BAD_INPUT = 0, 3


def register(bias_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``calibrate`` to the ``bias`` subcommands."""
    p = bias_sub.add_parser("calibrate", help="fit the distance -> Similarity mapping on data")
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="data root folder")
    p.add_argument("--out", type=Path, default=None, help="write the calibration document here")
    p.add_argument("--cap", type=float, default=DEFAULT_CAP, help="largest impostor distance kept")
    p.add_argument("--min-pairs", type=int, default=100, help="fewest pairs to measure a group")
    p.add_argument("--cache", type=Path, default=None, help="descriptor cache (SQLite) file")
    p.add_argument("--workers", type=int, default=2, help="engine processes for uncached images")
    p.add_argument("--no-mmod-fallback", action="store_true", help="HOG only (faster, fewer faces)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    p.set_defaults(func=cmd_calibrate, parser=p, bias_command="calibrate")


def cmd_calibrate(args: argparse.Namespace, out: TextIO) -> int:
    """Fit, measure, print, and optionally write the calibration document."""
    try:
        lfw, _ = load_lfw(args.data / "lfw")
        fairface = load_fairface(args.data / "fairface_val")
        cache = DescriptorCache(args.cache)
        descs = [
            compute_descriptors(
                m,
                cache=cache,
                workers=args.workers,
                mmod_fallback=not args.no_mmod_fallback,
                progress=not args.no_progress,
            )
            for m in (lfw, fairface)
        ]
        command = (
            "facegate bias calibrate --data "
            + str(args.data)
            + (" --no-mmod-fallback" if args.no_mmod_fallback else "")
            + f" --cap {args.cap:g} --min-pairs {args.min_pairs}"
        )
        doc = calibrate(
            [lfw, fairface], descs, args.cap, args.min_pairs, command, not args.no_progress
        )
    except (DatasetError, OSError, ValueError) as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print("\n".join(render(doc)), file=out)
    if args.out is not None:
        args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}", file=out)
    return EXIT_OK
