"""``facegate bias classifier PREDICTIONS.csv``: audit another system's attribute classifier.

facegate does not infer gender or skin type. This command audits a classifier that does, from
a CSV of its predictions plus ground truth and group attributes (format: the docstring of
:mod:`facegate.bias.classifier`), and prints the Gender Shades table: per intersectional group
and per single attribute, n, errors, error rate, 95% Wilson interval and the confusion counts;
then max - min, max / min, Max/GeoMean and Fisher's exact test of the worst group against the
best. ``--json OUT`` writes the same as JSON (``"kind": "classifier"``). Unusable input exits 3
with one line on stderr starting ``facegate: ``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
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

EXIT_OK = 0
EXIT_BAD_INPUT = 3  # as facegate.cli.EXIT_BAD_INPUT (not imported: facegate.cli imports this)


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


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(bias_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``classifier`` to the ``bias`` subparsers ``bias_sub``."""
    p = bias_sub.add_parser(
        "classifier", help="error table of another system's attribute classifier (Gender Shades)"
    )
    p.add_argument("predictions", type=Path, metavar="PREDICTIONS.csv", help="predictions CSV")
    p.add_argument(
        "--group-by",
        type=_names,
        default=("gender",),
        metavar="COLUMNS",
        help="comma-separated group columns, intersectional (default: gender)",
    )
    p.add_argument("--truth-column", default="truth", help="true label column (default: truth)")
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
    p.set_defaults(func=cmd_classifier, parser=p)


def command_line(args: argparse.Namespace) -> str:
    """The effective command line (defaults included), to reproduce the run."""
    words = [
        "facegate", "bias", "classifier", str(args.predictions),
        "--group-by", ",".join(args.group_by),
        "--truth-column", args.truth_column,
        "--predicted-column", args.predicted_column,
        "--image-column", args.image_column,
        "--min-n", str(args.min_n),
        "--list-errors", str(args.list_errors),
    ]  # fmt: skip
    if args.json is not None:
        words += ["--json", str(args.json)]
    return shlex.join(words)


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
        f"  summary over {len(s.groups)} groups: worst {', '.join(s.worst)} {_pct(s.max_rate)};"
        f" best {', '.join(s.best)} {_pct(s.min_rate)}; max-min {diff};"
        f" max/min {_num(s.ratio)}; Max/GeoMean {_num(s.max_geomean)}"
    )
    if s.zero_groups:
        lines.append(
            "  zero-error groups (left out of the geometric mean, so Max/GeoMean is a lower"
            " bound): " + ", ".join(s.zero_groups)
        )
    if s.fisher_groups is not None and s.fisher_p is not None:
        lines.append(
            f"  Fisher exact test, {s.fisher_groups[0]} vs {s.fisher_groups[1]}:"
            f" two-sided p = {s.fisher_p:.3g}"
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


def cmd_classifier(args: argparse.Namespace, out: TextIO) -> int:
    """Read the predictions, print the tables, optionally write the JSON report."""
    try:
        counts = read_predictions(
            args.predictions,
            args.group_by,
            truth_column=args.truth_column,
            predicted_column=args.predicted_column,
            image_column=args.image_column,
            keep_errors=args.list_errors,
        )
        result = audit(counts, args.min_n)
        command = command_line(args)
        print("\n".join(render(result, command)), file=out)
        if args.json is not None:
            text = json.dumps(report_json(result, command), indent=2) + "\n"
            args.json.write_text(text, encoding="utf-8")
    except (DatasetError, OSError) as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK
