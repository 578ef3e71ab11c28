"""Leave one population out: the calibration's promise measured where it was not fitted
(facegate/bias/holdout.py; the same as ``facegate bias holdout``), on the bias toolkit's
cached descriptors.

    PYTHONPATH=src .venv/bin/python bench/holdout.py [--cache-key KEY]

Populations: LFW, FairFace val, the 879 Congress portraits, and FairFace's 14 race x gender
groups (within-group pairs). Each is left out of the fit in turn (the pooled fit, the shipped
method; the worst-population fit; and the worst-population fit over populations with the pairs
to resolve each knot), then its false match rate at Similarity 80, 90 and 99 is measured, with
Wilson 95% intervals; and each fit on all the data is applied to LFW's mated pairs (its FNMR).
About 1.5 min on 2 cores with the descriptor cache. Prints the tables and writes
bench/results/holdout.json.
"""

from __future__ import annotations

import argparse
import sys

from benchlib import machine_info, machine_line, write_results
from facegate.bias.calibration import DEFAULT_CAP
from facegate.bias.holdout import holdout_document, render
from facegate.engine.matching import default_matcher
from facegate.engine.similarity import PiecewiseSimilarity
from sources import add_arguments, load_sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    parser.add_argument("--min-pairs", type=int, default=1000, help="fewest pairs to judge")
    args = parser.parse_args()
    sources, _ = load_sources(args.data, args.cache_key)
    matcher = default_matcher()
    shipped = matcher.similarity
    mapping = getattr(shipped, "mapping", shipped)
    assert isinstance(mapping, PiecewiseSimilarity)
    doc = holdout_document(
        sources,
        matcher.scorer,
        mapping,
        DEFAULT_CAP,
        args.min_pairs,
        progress=lambda text: print(text, file=sys.stderr, flush=True),
    )
    for line in render(doc):
        print(line)
    info = machine_info()
    doc["machine"] = info
    write_results("holdout", doc)
    print(machine_line(info))


if __name__ == "__main__":
    main()
