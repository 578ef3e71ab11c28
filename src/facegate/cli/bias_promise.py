"""``facegate bias promise``: fit the promise curve and check it where it was not fitted.

Reads LFW, FairFace val and the Congress portraits from ``--data`` (default ``../shared/data``)
as ``facegate bias holdout`` does (cached descriptors, scored by the shipped matcher), runs the
nested leave-one-population-out check of every rule of :mod:`facegate.bias.promise` (the mapping
and the promise refitted without each population; the population's false match rate over the
rate promised there, at Similarity 80, 90 and 99), prints it, and fits the curve of ``--rule``
on every population for the shipped mapping. ``--out FILE`` writes the data file the server
loads (``engine/calibration/<model>.<variant>.promise.json`` beside the calibration), ``--json
FILE`` the whole run. Bad options and missing data exit 3.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import TextIO

from facegate.bias.calibration import DEFAULT_CAP, ZERO_DISTANCE
from facegate.bias.datasets import DatasetError
from facegate.bias.promise import RULES, promise_file, promise_run, render
from facegate.cli.bias_holdout import load_sources
from facegate.engine.matching import default_matcher
from facegate.engine.similarity import CalibratedSimilarity, PiecewiseSimilarity

EXIT_OK, EXIT_BAD_INPUT = 0, 3
DEFAULT_RULE = "worst_resolved"


def register(bias_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``promise`` to the ``bias`` subcommands."""
    p = bias_sub.add_parser(
        "promise", help="fit the promise curve; check it on each population left out"
    )
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="data root folder")
    p.add_argument("--rule", choices=RULES, default=DEFAULT_RULE, help="the rule --out ships")
    p.add_argument("--out", type=Path, default=None, help="write the promise data file here")
    p.add_argument("--json", type=Path, default=None, help="write the whole run here")
    p.add_argument("--cap", type=float, default=DEFAULT_CAP, help="largest impostor score kept")
    p.add_argument("--min-pairs", type=int, default=1000, help="fewest pairs to judge a group")
    p.add_argument("--cache", type=Path, default=None, help="descriptor cache (SQLite) file")
    p.add_argument("--workers", type=int, default=2, help="engine processes for uncached images")
    p.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_promise, parser=p, bias_command="promise")


def cmd_promise(args: argparse.Namespace, out: TextIO) -> int:
    """Run the check, print it, and optionally write the data file and the run."""
    if args.min_pairs < 1:
        print("facegate: --min-pairs must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not 0.0 < args.cap < ZERO_DISTANCE:
        print(f"facegate: --cap must be above 0 and below {ZERO_DISTANCE:g}", file=sys.stderr)
        return EXIT_BAD_INPUT
    matcher = default_matcher()
    similarity = matcher.similarity
    if not isinstance(similarity, CalibratedSimilarity) or not isinstance(
        similarity.mapping, PiecewiseSimilarity
    ):
        print("facegate: the active Similarity is not a fitted calibration", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        sources = load_sources(args)
        run = promise_run(
            sources,
            matcher.scorer,
            similarity.mapping,
            args.cap,
            args.min_pairs,
            progress=None if args.no_progress else lambda t: print(t, file=sys.stderr),
        )
    except (DatasetError, OSError, ValueError) as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    command = f"facegate bias promise --data {args.data} --rule {args.rule}"
    run["command"] = command
    print("\n".join(render(run)), file=out)
    if args.json is not None:
        args.json.write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=out)
    if args.out is not None:
        checked = datetime.datetime.now(datetime.UTC).date().isoformat()
        doc = promise_file(run, args.rule, matcher.model_version, checked, command)
        args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out} ({doc['version']})", file=out)
    return EXIT_OK
