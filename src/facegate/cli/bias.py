"""``facegate bias ...``: accuracy and bias audits over descriptors.

* ``bias verification --dataset lfw``: LFW View 2's 6,000 pairs plus seeded impostor pairs within
  each group; FNMR and FMR per group at each Similarity threshold, with Wilson intervals,
  max - min, ratio, Max/GeoMean (bootstrap interval, clustered by subject) and FDR.
* ``bias impostors --dataset fairface``: FMR per (intersectional) group over seeded pairs
  presumed to be two different people, and the highest-similarity pairs for human review.
* ``bias lineup --probes congress --gallery fairface``: every probe searched against the whole
  gallery (the ACLU experiment); per threshold, the probes with at least one false match.
* ``bias sweep --dataset lfw``: error rates per group across a Similarity range and the lowest
  threshold without a significant group imbalance (the UK NPL study's method).
* ``bias html REPORT.json --out OUT.html``: the HTML page of a saved JSON report.
* ``bias calibrate``: fit the distance -> Similarity mapping (:mod:`facegate.cli.bias_calibrate`).
* ``bias classifier PREDICTIONS.csv``: a Gender-Shades-style error table of another system's
  attribute classifier (:mod:`facegate.cli.bias_classifier`).

Every JSON report has a ``"kind"`` (``verification``, ``impostors``, ``lineup``, ``sweep``) and
a ``"created"`` time; ``--html OUT`` writes a self-contained HTML page made from that JSON
(:func:`facegate.bias.report_html.render_html`).

Descriptors come from :func:`facegate.bias.descriptors.compute_descriptors` (cached: a second run
is instant). ``--score`` picks what is measured: ``normalised`` (default, what the server runs:
the cohort-normalised score of :mod:`facegate.engine.cohort` with its calibration) or ``raw``
(the raw distance with its calibration). Thresholds are Similarity percentages, converted to
scores (or distances) with that versioned calibration. Every report starts with the
effective command line, the model version and the similarity mapping version. Unusable input
(unknown data set, missing folder or file) exits 3 with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from facegate.bias.datasets import DatasetError, Manifest, Pair
from facegate.bias.descriptors import FACE, DescriptorCache, DescriptorSet, compute_descriptors
from facegate.bias.detection import failure_to_detect
from facegate.bias.detection import render as render_detection
from facegate.bias.groups import group_key
from facegate.bias.identification import DEFAULT_FPIRS, DEFAULT_RANK, identification
from facegate.bias.identification import render as render_identification
from facegate.bias.impostors import REVIEW_NOTE, cross_group_pairs, top_pairs
from facegate.bias.lineup import load_declared, match_rows, mates_by_subject, search, summarise
from facegate.bias.rates import ErrorType
from facegate.bias.report_html import render_html
from facegate.bias.stats import wilson_interval
from facegate.bias.verification import (
    ThresholdResult,
    analyse,
    curves_json,
    score_pairs,
    sweep_json,
    threshold_json,
)
from facegate.cli.bias_calibrate import register as register_calibrate
from facegate.cli.bias_classifier import register as register_classifier
from facegate.cli.bias_data import (
    DataSource,
    add_data_root,
    add_dataset,
    add_hidden,
    resolve_side,
    resolve_single,
)
from facegate.cli.bias_holdout import register as register_holdout
from facegate.cli.bias_pairs import ChosenPairs, add_pairs_options, choose
from facegate.cli.bias_promise import register as register_promise
from facegate.enforce import size_aware_threshold
from facegate.engine.matching import Matcher, PairScorer, matcher_named

EXIT_OK = 0
EXIT_BAD_INPUT = 3  # as facegate.cli.EXIT_BAD_INPUT (not imported: facegate.cli imports this)

DEFAULT_THRESHOLDS = (80.0, 99.0)
SWEEP_RANGE = (50.0, 99.0, 1.0)  # from, to, step (Similarity %): 50 thresholds
MAX_SWEEP_POINTS = 2000


class UsageError(Exception):
    """Options that parse but do not make sense together (exit 3, one line on stderr)."""


Handler = Callable[[argparse.Namespace, TextIO], int]


# --- argument parsing ----------------------------------------------------------------------------


def _attributes(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected attribute names, e.g. race,gender")
    return names


def _similarity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value < 100.0:
        raise argparse.ArgumentTypeError("a Similarity threshold must be between 0 and 100")
    return value


def _rate_arg(text: str) -> float:
    value = _positive_float(text)
    if not value < 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0.0:
        raise argparse.ArgumentTypeError("must be above 0")
    return value


def _common(p: argparse.ArgumentParser, group_by: str, *, thresholds: bool = True) -> None:
    if thresholds:
        p.add_argument(
            "--threshold",
            type=_similarity,
            action="append",
            metavar="PCT",
            help="Similarity threshold, repeatable (default: 80 and 99)",
        )
    p.add_argument(
        "--group-by",
        type=_attributes,
        default=_attributes(group_by),
        metavar="ATTRS",
        help=f"comma-separated attributes, intersectional (default: {group_by})",
    )
    add_data_root(p)
    p.add_argument("--cache", type=Path, default=None, help="descriptor cache (SQLite) file")
    p.add_argument("--workers", type=int, default=2, help="engine processes for uncached images")
    p.add_argument(
        "--mmod-fallback",
        action="store_true",
        help="also try dlib's MMOD detector where the server's chain finds no face (slow: "
        "seconds per image; the server does not, so the default measures what it does)",
    )
    # deprecated: not falling back is now the default
    p.add_argument("--no-mmod-fallback", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help="seed for pairs and the bootstrap")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write a JSON report")
    p.add_argument(
        "--html", type=Path, default=None, metavar="OUT", help="write a self-contained HTML report"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    p.add_argument(
        "--score",
        choices=SCORES,
        default="normalised",
        help="normalised: the server's default cohort-normalised score and its calibration; "
        "raw: the raw distance and its calibration (default: normalised)",
    )


SCORES = ("normalised", "raw")


def _matcher(args: argparse.Namespace) -> Matcher:
    """The matcher whose scores and Similarity a report measures (``--score``)."""
    return matcher_named("none" if getattr(args, "score", "normalised") == "raw" else "cohort")


def _scorer(args: argparse.Namespace) -> PairScorer | None:
    matcher = _matcher(args)
    return matcher.scorer if matcher.normalised else None


def _unit(args: argparse.Namespace) -> str:
    return "score" if _matcher(args).normalised else "distance"


def _stats_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--min-pairs", type=int, default=100, help="fewest pairs for a group to be measured"
    )
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bias`` (with ``verification``, ``impostors``, ``lineup``) to the subparsers ``sub``."""
    bias = sub.add_parser("bias", help="accuracy and bias audits over face descriptors")
    actions = bias.add_subparsers(dest="bias_command", required=True, metavar="ACTION")

    ver = actions.add_parser(
        "verification", help="FNMR/FMR per group (LFW View 2, or a CSV)", allow_abbrev=False
    )
    add_dataset(ver, "--dataset", "lfw", "faces with identities", builtins=("lfw",))
    add_hidden(ver, "--data")
    add_pairs_options(ver)
    _common(ver, "gender")
    _stats_options(ver)
    ver.set_defaults(func=cmd_verification, parser=ver)

    imp = actions.add_parser(
        "impostors", help="FMR per group over presumed-impostor pairs", allow_abbrev=False
    )
    add_dataset(imp, "--dataset", "fairface", "the faces")
    add_hidden(imp, "--data")
    add_pairs_options(imp)
    imp.add_argument("--cross-group", type=int, default=0, help="extra pairs across groups")
    imp.add_argument("--top", type=int, default=20, help="highest-similarity pairs to list")
    _common(imp, "race,gender")
    _stats_options(imp)
    imp.set_defaults(func=cmd_impostors, parser=imp)

    lin = actions.add_parser(
        "lineup", help="search every probe against a gallery (ACLU)", allow_abbrev=False
    )
    add_dataset(lin, "--probes", "congress", "the faces searched")
    add_dataset(lin, "--gallery", "fairface", "the faces searched among")
    for side in ("probes", "gallery"):
        add_hidden(lin, f"--{side}-data")
        add_hidden(lin, f"--{side}-csv")
    lin.add_argument("--declare-true", type=Path, default=None, metavar="FILE.csv")
    lin.add_argument("--keep", type=int, default=10, help="matches listed per probe")
    lin.add_argument(
        "--mates-by-subject",
        action="store_true",
        help="a gallery image with the probe's subject_id is its mate (manifest CSVs)",
    )
    lin.add_argument(
        "--fpir",
        type=_rate_arg,
        action="append",
        metavar="F",
        help="FNIR is reported at the threshold giving this FPIR, repeatable "
        f"(default: {', '.join(f'{f:g}' for f in DEFAULT_FPIRS)})",
    )
    lin.add_argument(
        "--rank", type=int, default=DEFAULT_RANK, metavar="K", help="rank-K identification rate"
    )
    lin.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    lin.add_argument(
        "--max-expected-false-candidates",
        type=_positive_float,
        default=None,
        metavar="N",
        help="also measure the threshold the server's obligation @max_expected_false_candidates"
        "(N) sets for a collection of the gallery's size",
    )
    _common(lin, "gender")
    lin.set_defaults(func=cmd_lineup, parser=lin)

    swp = actions.add_parser(
        "sweep", help="error rates per group across a Similarity range", allow_abbrev=False
    )
    add_dataset(swp, "--dataset", "lfw", "the faces", builtins=("lfw", "fairface"))
    add_hidden(swp, "--data")
    add_hidden(swp, "--manifest")
    swp.add_argument(
        "--from", dest="sim_from", type=_similarity, default=SWEEP_RANGE[0], metavar="PCT",
        help=f"lowest Similarity swept (default: {SWEEP_RANGE[0]:g})",
    )  # fmt: skip
    swp.add_argument(
        "--to", dest="sim_to", type=_similarity, default=SWEEP_RANGE[1], metavar="PCT",
        help=f"highest Similarity swept (default: {SWEEP_RANGE[1]:g})",
    )  # fmt: skip
    swp.add_argument(
        "--step", type=float, default=SWEEP_RANGE[2], metavar="PCT",
        help=f"Similarity step (default: {SWEEP_RANGE[2]:g}); --to is always included",
    )  # fmt: skip
    add_pairs_options(swp)
    swp.add_argument(
        "--alpha", type=float, default=0.05, help="significance level of the balance test"
    )
    swp.add_argument(
        "--no-bonferroni",
        action="store_true",
        help="test each group pair at alpha (default: alpha / number of group pairs)",
    )
    _common(swp, "gender", thresholds=False)
    swp.add_argument(
        "--min-pairs", type=int, default=100, help="fewest pairs for a group to be tested"
    )
    swp.set_defaults(func=cmd_sweep, parser=swp)

    htm = actions.add_parser("html", help="the HTML page of a saved JSON report")
    htm.add_argument("report", type=Path, metavar="REPORT.json")
    htm.add_argument("--out", type=Path, required=True, metavar="OUT.html")
    htm.set_defaults(func=cmd_html, parser=htm)

    register_calibrate(actions)
    register_classifier(actions)
    register_holdout(actions)
    register_promise(actions)


def command_line(args: argparse.Namespace) -> str:
    """The effective command line (defaults included), to reproduce the run."""
    parser: argparse.ArgumentParser = args.parser
    words = ["facegate", "bias", args.bias_command]
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if action.dest == "threshold":
            value = _thresholds(args)
        if action.dest == "pairs_per_group" and value is None:
            value = "auto"
        if not action.option_strings or action.dest == "help" or value in (None, False):
            continue
        flag = action.option_strings[0]
        if value is True:
            words.append(flag)
        elif isinstance(value, list):
            for item in value:
                words += [flag, f"{item:g}" if isinstance(item, float) else str(item)]
        elif isinstance(value, tuple):
            words += [flag, ",".join(value)]
        else:
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join(words)


# --- loading -------------------------------------------------------------------------------------


def _descriptors(manifest: Manifest, args: argparse.Namespace) -> DescriptorSet:
    """The manifest's descriptors as the server computes them (its detector chain), with dlib's
    MMOD detector as a fallback only under ``--mmod-fallback``; the cache key says which."""
    if args.no_mmod_fallback:
        args.no_mmod_fallback = False  # once, and out of the recorded command line
        print("facegate: --no-mmod-fallback is deprecated; it is the default", file=sys.stderr)
    return compute_descriptors(
        manifest,
        cache=DescriptorCache(args.cache),
        workers=args.workers,
        mmod_fallback=args.mmod_fallback,
        progress=not args.no_progress,
    )


def _thresholds(args: argparse.Namespace) -> list[float]:
    values: list[float] = getattr(args, "threshold", None) or list(DEFAULT_THRESHOLDS)
    return values


def _header(
    args: argparse.Namespace,
    sets: Sequence[tuple[Manifest, DescriptorSet]],
    thresholds: Sequence[float] | None = None,
) -> list[str]:
    sim = _matcher(args).similarity
    shown = _thresholds(args) if thresholds is None else thresholds
    lines = [
        f"command: {command_line(args)}",
        f"model: {sets[0][1].model_version}",
        "similarity mapping: "
        + sim.version
        + " ("
        + ", ".join(
            f"Similarity {t:g} = {_unit(args)} {sim.distance_for(min(t, 100 - 1e-9)):.4f}"
            for t in shown
        )
        + ")",
    ]
    for manifest, descriptors in sets:
        # an operator CSV gives each sample "<file> line N": name the file once
        provenance = sorted({re.sub(r" line \d+$", "", s.provenance) for s in manifest.samples})
        lines.append(f"data: {manifest.name}: {len(manifest)} images; {'; '.join(provenance)}")
        lines.append(f"  descriptors: {descriptors.summary()}")
    return lines


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _start(kind: str, args: argparse.Namespace, model_version: str) -> dict[str, Any]:
    """The fields every JSON report starts with."""
    return {
        "kind": kind,
        "created": _now(),
        "command": command_line(args),
        "model_version": model_version,
        "similarity_version": _matcher(args).version,
        "score": getattr(args, "score", "normalised"),
        "unit": _unit(args),
    }


def _write_reports(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """``--json`` and ``--html`` outputs (the HTML is made from the JSON dict alone)."""
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    if args.html is not None:
        args.html.write_text(render_html(report, rendered_at=_now()), encoding="utf-8")


def _guard(handler: Handler) -> Handler:
    def run(args: argparse.Namespace, out: TextIO) -> int:
        try:
            return handler(args, out)
        except (DatasetError, OSError, UsageError) as exc:
            print(f"facegate: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT

    return run


# --- rendering -----------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.3f}%"


def _ci(interval: tuple[float, float] | None, scale: float = 100.0, unit: str = "%") -> str:
    if interval is None:
        return "-"
    return f"[{scale * interval[0]:.3f}{unit}, {scale * interval[1]:.3f}{unit}]"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def render_thresholds(
    results: Sequence[ThresholdResult], kinds: Sequence[ErrorType], unit: str = "distance"
) -> list[str]:
    """Per-threshold group tables with summaries (``kinds``: ``fnmr`` and/or ``fmr``; ``unit``:
    ``score`` for the cohort-normalised score, ``distance`` for the raw distance)."""
    lines: list[str] = []
    for res in results:
        lines.append("")
        lines.append(f"Similarity {res.similarity_pct:g} (match when {unit} <= {res.distance:.4f})")
        table = res.table
        if table is None:
            lines.append("  no scored within-group pairs")
            continue
        ci = {(g.kind, g.group): g.interval for g in (*res.fmr_ci, *res.fnmr_ci)}
        head = f"  {'group':<28}"
        for kind in kinds:
            head += f" {kind.upper() + ' errors/pairs':>18} {kind.upper():>9} {'95% CI':>22}"
        lines.append(head)
        rows = [(r.group, r.rates, r) for r in table.groups]
        for name, rates, row in [*rows, ("overall", table.overall, None)]:
            line = f"  {name:<28}"
            for kind in kinds:
                k = kind
                errors, total = rates.errors(k)
                small = row is not None and total > 0 and not row.measurable(k)
                mark = "*" if small else " "
                interval = ci.get((k, name)) if row is not None else wilson_interval(errors, total)
                line += (
                    f" {f'{errors}/{total}':>18} {_pct(rates.rate(k)):>9}{mark}{_ci(interval):>22}"
                )
            lines.append(line)
        if res.cross is not None:
            c = res.cross
            lines.append(
                f"  {'(cross-group, not in summaries)':<28} FMR {c.false_matches}/"
                f"{c.nonmated_pairs} = {_pct(c.fmr)}"
            )
        for kind in kinds:
            disp = table.fmr if kind == "fmr" else table.fnmr
            boot = res.fmr_max_geomean_ci if kind == "fmr" else res.fnmr_max_geomean_ci
            lines.append(
                f"  {kind.upper()}: max {next(iter(disp.max_groups), None)}"
                f" {_pct(disp.group_max)}, min {next(iter(disp.min_groups), None)}"
                f" {_pct(disp.group_min)},"
                f" max-min {_pct(disp.difference)}, ratio {_num(disp.ratio)},"
                f" Max/GeoMean {_num(disp.max_geomean)} {_ci(boot, 1.0, '')}"
            )
            if disp.zero_groups:
                lines.append(
                    "    zero-rate groups (left out of the geometric mean): "
                    + ", ".join(disp.zero_groups)
                )
            if disp.too_small:
                lines.append(
                    f"    * too small to measure (< {table.min_pairs} pairs): "
                    + ", ".join(disp.too_small)
                )
        if len(kinds) == 2:
            lines.append(f"  FDR (alpha 0.5): {_num(table.fdr)}")
    return lines


def _unscored_lines(counts: dict[str, dict[str, int]]) -> list[str]:
    missing = {g: c for g, c in counts.items() if c["mated"] or c["nonmated"]}
    if not missing:
        return ["pairs without a face descriptor: none"]
    lines = ["pairs without a face descriptor (not scored, not in the rates):"]
    for group, c in missing.items():
        lines.append(f"  {group:<28} mated {c['mated']}, non-mated {c['nonmated']}")
    return lines


# --- commands ------------------------------------------------------------------------------------


def _choose(
    args: argparse.Namespace,
    source: DataSource,
    *,
    mated: bool,
    kinds: Sequence[str],
    thresholds: Sequence[float],
) -> ChosenPairs:
    sim = _matcher(args).similarity
    return choose(
        args,
        source,
        mated=mated,
        kinds=kinds,
        limits=[sim.distance_for(t) for t in thresholds],
        describe=lambda m: _descriptors(m, args),
        scorer=_scorer(args),
    )


def _pair_report(
    args: argparse.Namespace,
    chosen: ChosenPairs,
    pairs: list[Pair],
    kinds: Sequence[ErrorType],
    extra: dict[str, Any],
) -> tuple[list[str], dict[str, Any], Any]:
    manifest, descriptors = chosen.manifest, chosen.descriptors
    scored = score_pairs(manifest, descriptors.vectors, pairs, args.group_by, _scorer(args))
    results = analyse(
        scored,
        _thresholds(args),
        min_pairs=args.min_pairs,
        n_boot=args.n_boot,
        seed=args.seed,
        similarity=_matcher(args).similarity,
    )
    unscored = scored.unscored_counts()
    lines = _header(args, [(manifest, descriptors)])
    lines += [f"pairs: {len(pairs)} ({', '.join(f'{k} {v}' for k, v in extra.items())})"]
    lines.append(chosen.sampling.line())
    detection = failure_to_detect(manifest, descriptors, args.group_by)
    lines += _unscored_lines(unscored)
    lines += render_detection(detection)
    lines += render_thresholds(results, kinds, _unit(args))
    kind = "verification" if "fnmr" in kinds else "impostors"
    report: dict[str, Any] = _start(kind, args, descriptors.model_version) | {
        "dataset": manifest.name,
        "group_by": list(args.group_by),
        "descriptors": descriptors.summary(),
        "pairs": {"total": len(pairs), **extra},
        "sampling": chosen.sampling.json(),
        "unscored_pairs": unscored,
        "failure_to_detect": detection,
        "thresholds": [threshold_json(r) for r in results],
    }
    report |= curves_json(scored, similarity=_matcher(args).similarity)
    return lines, report, scored


@_guard
def cmd_verification(args: argparse.Namespace, out: TextIO) -> int:
    """LFW View 2 pairs + seeded within-group impostors: FNMR and FMR per group."""
    kinds: tuple[ErrorType, ...] = ("fnmr", "fmr")
    source = resolve_single(args, ("lfw",))
    chosen = _choose(args, source, mated=True, kinds=kinds, thresholds=_thresholds(args))
    if not any(p.mated for p in chosen.pairs):
        raise UsageError(
            f"{chosen.manifest.name}: no two images of one subject within a group, so no mated "
            "pairs "
            "(FNMR needs them; for FMR alone use bias impostors)"
        )
    lines, report, _ = _pair_report(args, chosen, chosen.pairs, kinds, chosen.counts)
    print("\n".join(lines), file=out)
    _write_reports(args, report)
    return EXIT_OK


@_guard
def cmd_impostors(args: argparse.Namespace, out: TextIO) -> int:
    """Presumed-impostor pairs within (and optionally across) groups: FMR per group, top pairs."""
    source = resolve_single(args)
    chosen = _choose(args, source, mated=False, kinds=("fmr",), thresholds=_thresholds(args))
    manifest = chosen.manifest
    cross = cross_group_pairs(manifest, args.group_by, args.cross_group, args.seed)
    counts = chosen.counts | {"cross_group": len(cross)}
    lines, report, scored = _pair_report(args, chosen, chosen.pairs + cross, ("fmr",), counts)
    top = top_pairs(manifest, scored, args.top, similarity=_matcher(args).similarity)
    lines += ["", f"Top {len(top)} highest-similarity pairs, for human review:", f"  {REVIEW_NOTE}"]
    lines.append(f"  {'Similarity':>10}  {_unit(args):>8}  {'group':<24} left  right")
    for t in top:
        lines.append(
            f"  {t.similarity_pct:10.4f}  {t.distance:8.4f}  {t.group:<24} {t.left}  {t.right}"
        )
    report["review_note"] = REVIEW_NOTE
    report["top_pairs"] = [vars(t) for t in top]
    print("\n".join(lines), file=out)
    _write_reports(args, report)
    return EXIT_OK


@_guard
def cmd_lineup(args: argparse.Namespace, out: TextIO) -> int:
    """Every probe searched against the gallery; probes with a false match per group."""
    probes = resolve_side(args, "probes").manifest()
    gallery = resolve_side(args, "gallery").manifest()
    declared = load_declared(args.declare_true, probes, gallery) if args.declare_true else {}
    if args.mates_by_subject:
        for p, mates in mates_by_subject(probes, gallery).items():
            declared.setdefault(p, set()).update(mates)
    p_desc = _descriptors(probes, args)
    g_desc = _descriptors(gallery, args)
    sim = _matcher(args).similarity
    faces = int(sum(s == FACE for s in g_desc.statuses))  # what IndexFaces would have stored
    thresholds = list(_thresholds(args))
    size_aware = None
    if args.max_expected_false_candidates is not None:
        # the server's own computation (facegate.enforce), for a collection of this size
        size_aware = size_aware_threshold(args.max_expected_false_candidates, faces, sim)
        thresholds.append(size_aware)
    # Similarity 100 (nothing promised, or nothing strict enough): only a perfect score matches
    limits = [sim.distance_for(min(t, 100.0 - 1e-9)) for t in thresholds]
    result = search(
        p_desc.vectors,
        g_desc.vectors,
        limits,
        declared=declared,
        keep=args.keep,
        progress=not args.no_progress,
        scorer=_scorer(args),
    )
    ok = np.array([s == FACE for s in p_desc.statuses], dtype=np.bool_)
    lines = _header(args, [(probes, p_desc), (gallery, g_desc)], thresholds)
    lines.append(
        f"gallery searched: {faces} of {len(gallery)} "
        f"images (the rest have no face descriptor); declared true pairs: "
        f"{sum(len(v) for v in declared.values())} for {len(declared)} probes"
    )
    per_threshold = []
    for i, (pct, limit) in enumerate(zip(thresholds, limits, strict=True)):
        groups = summarise(probes, ok, result, declared, args.group_by, i)
        rows = match_rows(probes, gallery, result, limit, sim)
        aware = size_aware is not None and i == len(thresholds) - 1
        fmr = sim.fmr_at(pct)
        promised = None if fmr is None else faces * fmr
        searched = result.false_counts[np.isfinite(p_desc.vectors).all(axis=1), i]
        observed = float(searched.mean()) if searched.size else None
        lines += ["", f"Similarity {pct:g} (match when {_unit(args)} <= {limit:.4f})"]
        if aware:
            lines.append(
                f"  size-aware: the threshold @max_expected_false_candidates"
                f"({args.max_expected_false_candidates:g}) sets for a collection of {faces} faces"
            )
        lines.append(
            "  false candidates per search: promised by the calibration "
            + ("-" if promised is None else f"{promised:.4g}")
            + ", observed (mean over searched probes, declared pairs apart) "
            + ("-" if observed is None else f"{observed:.4g}")
        )
        lines.append(
            f"  {'probe group':<24} {'probes':>7} {'no face':>8} {'declared':>9} {'searched':>9}"
            f" {'with false match':>17} {'share':>9} {'95% CI':>22} {'declared found':>15}"
        )
        for g in groups:
            lines.append(
                f"  {g.group:<24} {g.probes:>7} {g.no_face:>8} {g.declared_present:>9}"
                f" {g.searched:>9} {g.with_false_match:>17} {_pct(g.false_match_share):>9}"
                f" {_ci(g.interval):>22} {g.declared_found:>15}"
            )
        lines.append(f"  matches (up to {args.keep} per probe, plus declared):")
        lines.append(f"    {'Similarity':>10}  {_unit(args):>8}  kind")
        for r in rows:
            kind = "TRUE (declared)" if r["declared_true"] else "false"
            lines.append(
                f"    {r['similarity_pct']:10.4f}  {r['distance']:8.4f}  {kind:<15}"
                f" {r['probe']}  {r['gallery']}"
            )
        per_threshold.append(
            {
                "similarity_pct": pct,
                "distance": round(limit, 6),
                "size_aware": {
                    "max_expected_false_candidates": args.max_expected_false_candidates,
                    "collection_faces": faces,
                }
                if aware
                else None,
                "expected_false_candidates": promised,
                "mean_false_candidates": observed,
                "groups": [vars(g) for g in groups],
                "matches": rows,
            }
        )
    ident = None
    if declared:
        keys = np.array([group_key(s, args.group_by) for s in probes.samples], dtype=np.str_)
        ident = identification(
            result,
            ok,
            keys,
            list(zip(thresholds, limits, strict=True)),
            sim.similarity_pct,
            fpirs=args.fpir or DEFAULT_FPIRS,
            rank=args.rank,
            n_boot=args.n_boot,
            seed=args.seed,
        )
        lines += render_identification(ident)
    print("\n".join(lines), file=out)
    _write_reports(
        args,
        _start("lineup", args, p_desc.model_version)
        | {
            "probes": {"dataset": probes.name, "descriptors": p_desc.summary()},
            "gallery": {"dataset": gallery.name, "descriptors": g_desc.summary()},
            "declared_true": {
                str(probes.samples[p].path): [str(gallery.samples[g].path) for g in sorted(gs)]
                for p, gs in sorted(declared.items())
            },
            "thresholds": per_threshold,
            "identification": ident,
        },
    )
    return EXIT_OK


def _sweep_points(args: argparse.Namespace) -> list[float]:
    lo, hi, step = args.sim_from, args.sim_to, args.step
    if not lo < hi:
        raise UsageError(f"--from {lo:g} must be below --to {hi:g}")
    if not step > 0:
        raise UsageError(f"--step must be positive, got {step:g}")
    count = int((hi - lo) / step + 1e-9) + 1
    if count > MAX_SWEEP_POINTS:
        raise UsageError(f"{count} thresholds; at most {MAX_SWEEP_POINTS} (raise --step)")
    points = [round(lo + i * step, 9) for i in range(count)]
    return points if points[-1] >= hi else [*points, hi]


def _sweep_lines(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    points = report["points"]
    names = [g["group"] for g in points[0]["groups"]] if points else []
    for kind in ("fmr", "fnmr"):
        pairs_key = "nonmated_pairs" if kind == "fmr" else "mated_pairs"
        if not any(g[pairs_key] for g in (points[0]["groups"] if points else [])):
            continue
        head = f"  {'Similarity':>10} {report['unit']:>9}"
        for i, name in enumerate(names):
            n = points[0]["groups"][i][pairs_key]
            head += f" {f'{name} ({n})':>22}"
        lines += ["", f"{kind.upper()} per group (pairs in brackets; * too small to test)", head]
        for p in points:
            line = f"  {p['similarity_pct']:>10g} {p['distance']:>9.4f}"
            for g in p["groups"]:
                mark = "*" if g[pairs_key] and not g[f"{kind}_measurable"] else " "
                line += f" {_pct(g[kind]):>21}{mark}"
            lines.append(line)
    test = report["test"]
    lines += [
        "",
        f"balance test: {test['name']}, alpha {test['alpha']:g}, "
        + ("Bonferroni over group pairs" if test["bonferroni"] else "no correction"),
    ]
    for kind, b in report["balance"].items():
        if b is None:
            lines.append(f"  {kind.upper()}: no group with {report['min_pairs']} pairs; not tested")
            continue
        low, bad = b["lowest_balanced_similarity_pct"], b["first_imbalanced_similarity_pct"]
        text = "none (imbalanced at the highest)" if low is None else f"Similarity {low:g}"
        text += "" if bad is None else f"; first imbalance at Similarity {bad:g}"
        if bad is not None:
            check = next(c for c in b["checks"] if c["similarity_pct"] == bad)
            pair = " vs ".join(check["worst_pair"] or [])
            text += f" ({pair}, p = {check['min_p']:.3g} < {b['level']:.3g})"
        if b["comparisons"] == 0:
            text += " (fewer than two measurable groups: nothing was compared)"
        lines.append(f"  {kind.upper()}: lowest balanced threshold: {text}")
        if b["too_small"]:
            lines.append(f"    too small to test: {', '.join(b['too_small'])}")
    return lines


@_guard
def cmd_sweep(args: argparse.Namespace, out: TextIO) -> int:
    """Error rates per group across a Similarity range; the lowest balanced threshold (NPL)."""
    if not 0.0 < args.alpha < 1.0:
        raise UsageError(f"--alpha must be between 0 and 1, got {args.alpha:g}")
    points = _sweep_points(args)
    source = resolve_single(args, ("lfw", "fairface"))
    # ranked at both ends of the sweep
    ends = [points[0], points[-1]]
    chosen = _choose(args, source, mated=True, kinds=("fmr", "fnmr"), thresholds=ends)
    manifest, descriptors, pairs = chosen.manifest, chosen.descriptors, chosen.pairs
    counts = chosen.counts
    scored = score_pairs(manifest, descriptors.vectors, pairs, args.group_by, _scorer(args))
    unscored = scored.unscored_counts()
    report: dict[str, Any] = _start("sweep", args, descriptors.model_version) | {
        "dataset": manifest.name,
        "group_by": list(args.group_by),
        "descriptors": descriptors.summary(),
        "pairs": {"total": len(pairs), **counts},
        "sampling": chosen.sampling.json(),
        "unscored_pairs": unscored,
    }
    report |= sweep_json(
        scored,
        points,
        min_pairs=args.min_pairs,
        significance=args.alpha,
        bonferroni=not args.no_bonferroni,
        similarity=_matcher(args).similarity,
    )
    lines = _header(args, [(manifest, descriptors)], [points[0], points[-1]])
    lines += [f"pairs: {len(pairs)} ({', '.join(f'{k} {v}' for k, v in counts.items())})"]
    lines.append(chosen.sampling.line())
    lines += _unscored_lines(unscored)
    lines += _sweep_lines(report)
    print("\n".join(lines), file=out)
    _write_reports(args, report)
    return EXIT_OK


def cmd_html(args: argparse.Namespace, out: TextIO) -> int:
    """Re-make the HTML page of a saved JSON report."""
    try:
        report = json.loads(args.report.read_text(encoding="utf-8"))
        if not isinstance(report, dict):
            raise ValueError("not a JSON object")
        page = render_html(report, rendered_at=_now())
        args.out.write_text(page, encoding="utf-8")
    except OSError as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        problem = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        print(f"facegate: {args.report}: not a usable bias report: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {args.out}", file=out)
    return EXIT_OK
