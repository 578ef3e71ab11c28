"""``facegate bias classifier``: the Gender Shades table of an attribute classifier.

Two sources of predictions, one table:

* ``facegate bias classifier PREDICTIONS.csv``: another system's predictions, with ground truth
  and group attributes (format: the docstring of :mod:`facegate.bias.classifier`).
* ``facegate bias classifier --estimate gender|age|happy|smile --dataset ...``: facegate's own
  attribute estimators, run on a labelled data set as the server runs them
  (:mod:`facegate.cli.bias_attributes`; the model-backed ones need
  ``FACEGATE_ATTRIBUTE_MODELS``' models set up).

The table, per intersectional group and per single attribute: n, errors, error rate, 95%
Wilson interval and the confusion counts; then max - min, max / min, Max/GeoMean and Fisher's
exact test of the worst group against the best. ``--json OUT`` writes the same as JSON
(``"kind": "classifier"``), ``--html OUT`` a self-contained page with the plots. Unusable input
exits 3 with one line on stderr starting ``facegate: ``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from facegate.bias.classifier import (
    DEFAULT_MIN_N,
    ClassifierAudit,
    ClassifierTable,
    GroupRow,
    audit,
    audit_json,
    read_predictions,
)
from facegate.bias.datasets import DatasetError
from facegate.cli.bias_data import METAVAR, add_data_root, dataset_spec

EXIT_OK = 0
EXIT_BAD_INPUT = 3  # as facegate.cli.EXIT_BAD_INPUT (not imported: facegate.cli imports this)

ESTIMATE_KINDS = ("gender", "age", "happy", "smile")
"""What ``--estimate`` audits (``facegate.bias.attribute_audit.ESTIMATES``)."""
ESTIMATE_DATASETS = ("fairface", "lfw", "csv")
DEFAULT_TRUTH = {"gender": "gender", "age": "age_band", "happy": "smile", "smile": "smile"}
AUDIT_MODELS = ("faceres", "emotion")
"""The face models an ``--estimate`` audit enables unless ``--attribute-models`` says otherwise
(so Gender and AgeRange are faceres', Emotions the emotion model's)."""
KNOWN_MODELS = ("faceres", "emotion", "iris")
"""What ``--attribute-models`` may name (``engine.attributes.registry.ATTRIBUTE_MODELS``)."""


def _models(text: str) -> tuple[str, ...]:
    """``--attribute-models``: comma-separated face models, or ``none``."""
    if text.strip().lower() == "none":
        return ()
    names = tuple(sorted({n.strip() for n in text.split(",") if n.strip()}))
    unknown = [n for n in names if n not in KNOWN_MODELS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"expected none or some of {', '.join(KNOWN_MODELS)}, got {text!r}"
        )
    return names


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected column names, e.g. skin,gender")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a column is named twice in {text!r}")
    return names


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _where(text: str) -> tuple[str, tuple[str, ...]]:
    name, sep, values = text.partition("=")
    kept = tuple(v.strip() for v in values.split("|") if v.strip())
    if not sep or not name.strip() or not kept:
        raise argparse.ArgumentTypeError(f"expected ATTR=VALUE[|VALUE...], got {text!r}")
    return name.strip(), kept


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(bias_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``classifier`` to the ``bias`` subparsers ``bias_sub``."""
    p = bias_sub.add_parser(
        "classifier",
        help="error table of an attribute classifier, another system's or facegate's own "
        "(Gender Shades)",
    )
    p.add_argument(
        "predictions",
        type=Path,
        nargs="?",
        default=None,
        metavar="PREDICTIONS.csv",
        help="another system's predictions (or --estimate: facegate's own)",
    )
    p.add_argument(
        "--estimate",
        choices=ESTIMATE_KINDS,
        default=None,
        help="audit facegate's own estimator instead of a predictions CSV: gender (Gender), "
        "age (AgeRange), happy (HAPPY as the top of Emotions, against smile labels), smile "
        "(Smile)",
    )
    p.add_argument(
        "--dataset",
        type=dataset_spec,
        default="fairface",
        metavar=METAVAR,
        help="with --estimate: fairface (gender, race, race4, age_band), lfw (every image of "
        "gender.csv, or of --labels), or a manifest CSV (default: fairface)",
    )
    add_data_root(p)
    p.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)  # deprecated
    p.add_argument(
        "--labels",
        type=Path,
        default=None,
        metavar="FILE.csv",
        help="with --dataset lfw: per-image labels (image,<attributes>), e.g. smile labels",
    )
    p.add_argument(
        "--where",
        type=_where,
        action="append",
        default=None,
        metavar="ATTR=V1|V2",
        help="with --estimate: only images whose ATTR is one of the values (repeatable), "
        "e.g. 'age_band=20-29|30-39'",
    )
    p.add_argument(
        "--one-per-subject",
        action="store_true",
        help="with --estimate: the first image of each subject only (independent rows)",
    )
    p.add_argument(
        "--attribute-models",
        type=_models,
        default=AUDIT_MODELS,
        metavar="NAMES|none",
        help="with --estimate: the face models the audited engine runs (default: "
        "faceres,emotion, so Gender and AgeRange are faceres'; none: the server's defaults, "
        "AgeRange and Gender from the descriptor models fitted on half of FairFace)",
    )
    p.add_argument("--cache", type=Path, default=None, help="with --estimate: attribute cache")
    p.add_argument("--workers", type=_positive, default=2, help="with --estimate: engines")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--group-by",
        type=_names,
        default=("gender",),
        metavar="COLUMNS",
        help="comma-separated group columns, intersectional (default: gender)",
    )
    p.add_argument(
        "--truth-column",
        default=None,
        help="true label column (default: truth; with --estimate the data set's attribute: "
        "gender, age_band or smile)",
    )
    p.add_argument(
        "--predicted-column",
        default="predicted",
        help="predicted label column (default: predicted)",
    )
    p.add_argument("--image-column", default="image", help="row identifier column, optional")
    p.add_argument(
        "--min-n",
        type=_positive,
        default=DEFAULT_MIN_N,
        help=f"fewest rows for a group to be in the summaries (default: {DEFAULT_MIN_N})",
    )
    p.add_argument(
        "--list-errors", type=_count, default=20, metavar="N", help="misclassified rows to list"
    )
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write a JSON report")
    p.add_argument(
        "--html", type=Path, default=None, metavar="OUT", help="write a self-contained HTML page"
    )
    p.set_defaults(func=cmd_classifier, parser=p)


def command_line(args: argparse.Namespace) -> str:
    """The effective command line (defaults included), to reproduce the run (the cache,
    workers and progress bar change no result and are left out)."""
    if getattr(args, "estimate", None):
        words = ["facegate", "bias", "classifier", "--estimate", args.estimate,
                 "--dataset", args.dataset]  # fmt: skip
        if args.dataset in ESTIMATE_DATASETS[:2]:
            words += ["--data-root", str(args.data_root)]
        for flag, value in (("--data", args.data), ("--labels", args.labels)):
            if value is not None:
                words += [flag, str(value)]
        for name, values in args.where or ():
            words += ["--where", f"{name}={'|'.join(values)}"]
        if args.one_per_subject:
            words.append("--one-per-subject")
        if tuple(args.attribute_models) != AUDIT_MODELS:
            words += ["--attribute-models", ",".join(args.attribute_models) or "none"]
        words += ["--truth-column", _truth_column(args), "--group-by", ",".join(args.group_by)]
    else:
        words = [
            "facegate", "bias", "classifier", str(args.predictions),
            "--group-by", ",".join(args.group_by),
            "--truth-column", _truth_column(args),
            "--predicted-column", args.predicted_column,
            "--image-column", args.image_column,
        ]  # fmt: skip
    words += ["--min-n", str(args.min_n), "--list-errors", str(args.list_errors)]
    for flag, value in (("--json", args.json), ("--html", getattr(args, "html", None))):
        if value is not None:
            words += [flag, str(value)]
    return shlex.join(words)


def _truth_column(args: argparse.Namespace) -> str:
    if args.truth_column:
        return str(args.truth_column)
    estimate = getattr(args, "estimate", None)
    return DEFAULT_TRUTH[estimate] if estimate else "truth"


# --- rendering -----------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _row_line(row: GroupRow, width: int, small: bool) -> str:
    ci = row.interval
    interval = "-" if ci is None else f"[{100 * ci[0]:.2f}%, {100 * ci[1]:.2f}%]"
    mark = "*" if small else " "
    return (
        f"  {row.group:<{width}} {row.n:>9} {row.errors:>9} {_pct(row.error_rate):>10}{mark}"
        f" {interval:>20}"
    )


def _confusion(row: GroupRow) -> str:
    return ", ".join(f"{t} -> {p} {c}" for t, p, c in row.confusion) or "-"


def render_table(table: ClassifierTable, title: str) -> list[str]:
    """One table as text: rows, unlabelled, overall, confusion, summary."""
    width = max([28, *(len(r.group) for r in table.groups)])
    lines = [
        "",
        f"{title}: {' x '.join(table.attributes)}",
        f"  {'group':<{width}} {'n':>9} {'errors':>9} {'error rate':>10}  {'95% CI (Wilson)':>20}",
    ]
    lines += [_row_line(r, width, r.too_small) for r in table.groups]
    lines.append(_row_line(table.unlabelled, width, False))
    lines.append(_row_line(table.overall, width, False))
    lines.append("  confusion (truth -> predicted):")
    for row in (*table.groups, table.unlabelled):
        if row.n:
            lines.append(f"    {row.group:<{width}} {_confusion(row)}")
    s = table.summary
    if s.too_small:
        lines.append(
            f"  * too small (< {table.min_n} rows), not in the summary: {', '.join(s.too_small)}"
        )
    if not s.groups:
        lines.append("  summary: no group has enough rows")
        return lines
    diff = "-" if s.difference is None else f"{100 * s.difference:.2f} points"
    lines.append(
        f"  summary over {len(s.groups)} groups: worst {', '.join(s.max_groups)}"
        f" {_pct(s.group_max)}; best {', '.join(s.min_groups)} {_pct(s.group_min)};"
        f" max-min {diff};"
        f" max/min {_num(s.ratio)}; Max/GeoMean {_num(s.max_geomean)}"
    )
    if s.zero_groups:
        lines.append(
            "  zero-error groups (left out of the geometric mean, so Max/GeoMean is a lower"
            " bound): " + ", ".join(s.zero_groups)
        )
    if table.fisher is not None:
        lines.append(
            f"  Fisher exact test, {table.fisher.groups[0]} vs {table.fisher.groups[1]}:"
            f" two-sided p = {table.fisher.p_value:.3g}"
        )
    return lines


def render(result: ClassifierAudit, command: str) -> list[str]:
    """The whole text report."""
    counts = result.counts
    lines = [
        f"command: {command}",
        f"input: {counts.source} ({counts.rows} rows, sha256 {counts.sha256})",
        "error = truth != predicted (labels compared case-insensitively);"
        " * = too small, shown but not in the summary",
    ]
    lines += render_table(result.intersectional, "Error rate by group")
    for table in result.marginals:
        lines += render_table(table, "Error rate by single attribute")
    listed = counts.listed_errors
    total = result.intersectional.overall.errors
    lines += ["", f"Misclassified rows: {total} (first {len(listed)} listed)"]
    for e in listed:
        lines.append(
            f"  line {e.line:>7}  {e.group:<28} {e.truth} -> {e.predicted}  {e.image or ''}"
        )
    return lines


def report_json(result: ClassifierAudit, command: str) -> dict[str, Any]:
    """The JSON report: kind, command, input identity, the tables."""
    counts = result.counts
    return {
        "kind": "classifier",
        "command": command,
        "inputs": [{"path": counts.source, "sha256": counts.sha256, "rows": counts.rows}],
        "group_by": list(counts.group_by),
        "error_definition": "truth != predicted, labels stripped and compared case-insensitively",
        **audit_json(result),
    }


# --- command -------------------------------------------------------------------------------------


def write_reports(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """``--json`` and ``--html`` of one report (the page is made from the JSON alone)."""
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if getattr(args, "html", None) is not None:
        from facegate.bias.report_html import render_html

        args.html.write_text(render_html(report), encoding="utf-8")


def cmd_classifier(args: argparse.Namespace, out: TextIO) -> int:
    """Read the predictions (or make them: ``--estimate``), print the tables, optionally write
    the JSON report and the HTML page."""
    if getattr(args, "estimate", None):
        from facegate.cli.bias_attributes import cmd_estimate

        return cmd_estimate(args, out)
    try:
        if args.predictions is None:
            raise DatasetError("give a predictions CSV, or --estimate to audit facegate's own")
        counts = read_predictions(
            args.predictions,
            args.group_by,
            truth_column=_truth_column(args),
            predicted_column=args.predicted_column,
            image_column=args.image_column,
            keep_errors=args.list_errors,
        )
        result = audit(counts, args.min_n)
        command = command_line(args)
        print("\n".join(render(result, command)), file=out)
        report = report_json(result, command)
        report["created"] = datetime.now(UTC).isoformat(timespec="seconds")
        write_reports(args, report)
    except (DatasetError, OSError) as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK
