"""``facegate bias holdout``: is the calibration's promise kept where it was not fitted?

Reads LFW, FairFace val and the Congress portraits from ``--data`` (default ``../shared/data``),
computes or reads the cached descriptors, scores every pair as the shipped matcher does (its
cohort), and leaves each population out of the fit in turn: each data set, and each of
FairFace's race x gender groups (:mod:`facegate.bias.holdout`). Prints measured / promised FMR
at Similarity 80, 90 and 99 with Wilson 95% intervals, for the pooled fit (the shipped method)
and the two worst-population fits, the worst ratios and whether they are within 2x, and what
each fit costs on LFW's mated pairs; ``--json FILE`` writes the document, ``--summary FILE``
the part the transparency page publishes (:func:`facegate.bias.holdout.summary`). Bad options
and missing data exit 3.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import TextIO

from facegate.bias.calibration import DEFAULT_CAP, ZERO_DISTANCE, Source
from facegate.bias.calibration_run import calibration_source
from facegate.bias.datasets import DatasetError, load_congress, load_fairface, load_lfw
from facegate.bias.descriptors import DescriptorCache, compute_descriptors
from facegate.bias.holdout import holdout_document, render, summary
from facegate.engine.matching import default_matcher
from facegate.engine.similarity import PiecewiseSimilarity

EXIT_OK, EXIT_BAD_INPUT = 0, 3


def register(bias_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``holdout`` to the ``bias`` subcommands."""
    p = bias_sub.add_parser(
        "holdout", help="the calibration's promise on each population left out of the fit"
    )
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="data root folder")
    p.add_argument("--json", type=Path, default=None, help="write the document here")
    p.add_argument(
        "--summary",
        type=Path,
        default=None,
        help="write the transparency page's summary here (engine/calibration/"
        "<model>.<variant>.holdout.json beside the shipped calibration)",
    )
    p.add_argument("--cap", type=float, default=DEFAULT_CAP, help="largest impostor score kept")
    p.add_argument("--min-pairs", type=int, default=1000, help="fewest pairs to judge a group")
    p.add_argument("--cache", type=Path, default=None, help="descriptor cache (SQLite) file")
    p.add_argument("--workers", type=int, default=2, help="engine processes for uncached images")
    p.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_holdout, parser=p, bias_command="holdout")


def load_sources(args: argparse.Namespace) -> dict[str, Source]:
    """LFW, FairFace val and the Congress portraits under ``args.data`` as calibration sources,
    their descriptors read from (or computed into) the cache ``args.cache`` with
    ``args.workers`` processes. Raises ``DatasetError`` or ``OSError``."""
    lfw, _ = load_lfw(args.data / "lfw")
    manifests = {
        "lfw": lfw,
        "fairface": load_fairface(args.data / "fairface_val"),
        "congress": load_congress(args.data / "congress_2015"),
    }
    cache = DescriptorCache(args.cache)
    return {
        name: calibration_source(
            m,
            compute_descriptors(
                m, cache=cache, workers=args.workers, progress=not args.no_progress
            ),
        )
        for name, m in manifests.items()
    }


def cmd_holdout(args: argparse.Namespace, out: TextIO) -> int:
    """Run the check, print it, and optionally write the document."""
    if args.min_pairs < 1:
        print("facegate: --min-pairs must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not 0.0 < args.cap < ZERO_DISTANCE:
        print(f"facegate: --cap must be above 0 and below {ZERO_DISTANCE:g}", file=sys.stderr)
        return EXIT_BAD_INPUT
    matcher = default_matcher()
    mapping = getattr(matcher.similarity, "mapping", matcher.similarity)
    if not isinstance(mapping, PiecewiseSimilarity):
        print("facegate: the active Similarity is not a fitted calibration", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        sources = load_sources(args)
        doc = holdout_document(
            sources,
            matcher.scorer,
            mapping,
            args.cap,
            args.min_pairs,
            progress=None if args.no_progress else lambda t: print(t, file=sys.stderr),
        )
    except (DatasetError, OSError, ValueError) as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    doc["command"] = f"facegate bias holdout --data {args.data} --min-pairs {args.min_pairs}"
    print("\n".join(render(doc)), file=out)
    if args.json is not None:
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=out)
    if args.summary is not None:
        checked = datetime.datetime.now(datetime.UTC).date().isoformat()
        text = json.dumps(summary(doc, matcher.model_version, checked), indent=1)
        args.summary.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.summary}", file=out)
    return EXIT_OK
