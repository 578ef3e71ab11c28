"""Auditing another system's attribute classifier: a Gender-Shades-style error table.

facegate never infers gender or skin type itself. This module audits a classifier that does,
from a CSV of its predictions with ground truth and group attributes, and builds the table
Buolamwini & Gebru published (Gender Shades, FAT* 2018 [B1][B2]: classification error per
intersectional subgroup, e.g. darker female / darker male / lighter female / lighter male, and
per single attribute). Sources: ``shared/reference/governance-rules.md`` sections 2 and 2a.

CSV format (UTF-8, comma-separated, header row required)::

    image,truth,predicted,confidence,skin,gender
    ppb/0001.jpg,female,male,0.91,darker,female
    ppb/0002.jpg,Male,male,0.99,lighter,male
    ppb/0003.jpg,female,female,,,female

* ``truth`` and ``predicted`` (names configurable) are required: the true and the predicted
  label. They are compared case-insensitively after stripping spaces (``Male`` = ``male``) and
  reported in lower case. An empty label is an error, not a guess.
* The group attribute columns are named by ``group_by`` (e.g. ``skin,gender``); values are kept
  as written (stripped, case-sensitive). A row with an empty value in any grouping column is
  counted as *unlabelled*: reported on its own line, in the overall figures, never dropped.
* ``image`` (optional) identifies the row in the list of errors; ``confidence`` and any other
  column are ignored. Column names are matched after stripping; duplicates are an error.
* Bounds: at most :data:`MAX_ROWS` data rows and :data:`MAX_LINE_BYTES` bytes per line. Blank
  lines are skipped. Every problem raises :class:`ClassifierInputError` naming file and line.

Per group: ``n`` rows, ``errors`` (``truth != predicted``), error rate with a 95% Wilson
interval, and the confusion counts ``truth -> predicted`` (so "female classified as male" is
visible). Groups with fewer than ``min_n`` rows are kept, marked ``too_small`` and left out of
the summaries. Summaries over the measured groups: max - min, max / min, Max/GeoMean (NIST
draft NISTIR 8429 [B10]), all by :class:`facegate.bias.rates.Disparity`, the class the
verification audit uses (zero rates are left out of the geometric mean and listed), and a
two-sided Fisher exact test of the worst against the best group (:class:`FisherTest`). Ties for
worst (best) are all listed; the test uses the first by name.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Generator, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facegate.bias.datasets import DatasetError
from facegate.bias.groups import GROUP_SEPARATOR
from facegate.bias.rates import Disparity
from facegate.bias.stats import fisher_exact, wilson_interval

MAX_ROWS = 1_000_000
"""The most data rows a predictions CSV may hold."""

MAX_LINE_BYTES = 64 * 1024
"""The longest line (bytes, line ending included) a predictions CSV may hold."""

UNLABELLED = "(unlabelled)"
"""The name of the line counting rows with an empty grouping value."""

DEFAULT_MIN_N = 30

#: (group values in ``group_by`` order, "" for empty; truth; predicted) -> rows
CellKey = tuple[tuple[str, ...], str, str]


class ClassifierInputError(DatasetError):
    """The predictions CSV is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class ListedError:
    """One misclassified row, for review."""

    line: int
    image: str | None
    group: str
    truth: str
    predicted: str


@dataclass(frozen=True)
class PredictionCounts:
    """Predictions aggregated by (group values, truth, predicted); the input's identity.

    ``cells`` maps :data:`CellKey` to a count; a group value ``""`` means empty (unlabelled).
    ``listed_errors`` holds the first ``errors_listed_max`` misclassified rows in file order.
    """

    source: str
    sha256: str | None
    group_by: tuple[str, ...]
    rows: int
    cells: Mapping[CellKey, int]
    listed_errors: tuple[ListedError, ...]


def normalise_label(value: str) -> str:
    """How labels are compared: stripped and case-folded."""
    return value.strip().casefold()


def group_name(values: Sequence[str]) -> str:
    """A group's name: its values joined with `` x `` (as :mod:`facegate.bias.groups`)."""
    return GROUP_SEPARATOR.join(values)


class _Accumulator:
    """Builds a :class:`PredictionCounts` one row at a time (local to one read)."""

    def __init__(self, group_by: tuple[str, ...], keep_errors: int) -> None:
        self.group_by = group_by
        self.keep_errors = keep_errors
        self.rows = 0
        self.cells: Counter[CellKey] = Counter()
        self.errors: list[ListedError] = []

    def add(
        self, truth: str, predicted: str, values: Sequence[str], line: int, image: str | None
    ) -> None:
        t, p = normalise_label(truth), normalise_label(predicted)
        key = tuple(v.strip() for v in values)
        self.rows += 1
        self.cells[(key, t, p)] += 1
        if t != p and len(self.errors) < self.keep_errors:
            name = UNLABELLED if "" in key else group_name(key)
            self.errors.append(ListedError(line, image, name, t, p))

    def result(self, source: str, sha256: str | None) -> PredictionCounts:
        return PredictionCounts(
            source, sha256, self.group_by, self.rows, dict(self.cells), tuple(self.errors)
        )


def count_predictions(
    rows: Iterable[tuple[str, str, Sequence[str]]],
    group_by: Sequence[str],
    *,
    keep_errors: int = 0,
    source: str = "<memory>",
    images: Sequence[str] | None = None,
) -> PredictionCounts:
    """Aggregate in-memory ``(truth, predicted, group values)`` rows (line = position + 1);
    ``images``, when given, names each row (in the list of errors).

    Labels must be non-empty (``ValueError`` otherwise); an empty group value is unlabelled.
    """
    acc = _Accumulator(tuple(group_by), keep_errors)
    for i, (truth, predicted, values) in enumerate(rows, 1):
        if len(values) != len(acc.group_by):
            raise ValueError(f"row {i}: {len(values)} group values for {len(acc.group_by)} names")
        if not truth.strip() or not predicted.strip():
            raise ValueError(f"row {i}: empty label")
        acc.add(truth, predicted, values, i, None if images is None else images[i - 1])
    return acc.result(source, None)


def _lines(path: Path, digest: Any) -> Generator[str, None, None]:
    """Decoded lines of ``path``, bounded in length, feeding ``digest`` with the raw bytes."""
    with path.open("rb") as fh:
        number = 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise ClassifierInputError(
                    f"{path} line {number}: line longer than {MAX_LINE_BYTES} bytes"
                )
            digest.update(raw)
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise ClassifierInputError(f"{path} line {number}: not UTF-8 text") from None
            yield text


def read_predictions(
    path: Path,
    group_by: Sequence[str] = ("gender",),
    *,
    truth_column: str = "truth",
    predicted_column: str = "predicted",
    image_column: str = "image",
    keep_errors: int = 20,
) -> PredictionCounts:
    """Read and aggregate a predictions CSV in the module's format, streaming (bounded memory).

    ``keep_errors`` is how many misclassified rows to keep for listing. The SHA-256 is of the
    file's bytes. Raises :class:`ClassifierInputError` naming the file and line of the first
    problem: missing file, missing or duplicate column, wrong field count, empty label, line
    too long, too many rows, no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise ClassifierInputError(f"{path}: file not found")
    if not group_by:
        raise ClassifierInputError(f"{path}: no grouping column given")
    digest = hashlib.sha256()
    # closing(): a bad row leaves the generator suspended; close the file now, not at GC
    with closing(_lines(path, digest)) as lines:
        acc = _aggregate(
            path, csv.reader(lines), tuple(group_by), truth_column, predicted_column,
            image_column, keep_errors,
        )  # fmt: skip
    return acc.result(str(path), digest.hexdigest())


def _aggregate(
    path: Path,
    reader: Any,
    group_by: tuple[str, ...],
    truth_column: str,
    predicted_column: str,
    image_column: str,
    keep_errors: int,
) -> _Accumulator:
    """Check the header and aggregate the rows read by the ``csv.reader`` ``reader``."""
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ClassifierInputError(f"{path} line 1: empty file; expected a header") from None
    except csv.Error as exc:
        raise ClassifierInputError(f"{path} line {reader.line_num}: bad CSV: {exc}") from None
    dupes = sorted(n for n, c in Counter(header).items() if c > 1)
    if dupes:
        raise ClassifierInputError(f"{path} line 1: duplicate column(s) {', '.join(dupes)}")
    required = [truth_column, predicted_column, *group_by]
    missing = [c for c in dict.fromkeys(required) if c not in header]
    if missing:
        raise ClassifierInputError(
            f"{path} line 1: missing column(s) {', '.join(missing)} (header: {','.join(header)})"
        )
    at = {name: i for i, name in enumerate(header)}
    t_i, p_i = at[truth_column], at[predicted_column]
    g_i = [at[g] for g in group_by]
    img_i = at.get(image_column)
    acc = _Accumulator(tuple(group_by), keep_errors)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ClassifierInputError(f"{path} line {reader.line_num}: bad CSV: {exc}") from None
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != len(header):
            raise ClassifierInputError(
                f"{path} line {line}: expected {len(header)} fields, got {len(row)}"
            )
        for col, i in ((truth_column, t_i), (predicted_column, p_i)):
            if not row[i].strip():
                raise ClassifierInputError(f"{path} line {line}: empty label in column {col!r}")
        if acc.rows >= MAX_ROWS:
            raise ClassifierInputError(f"{path} line {line}: more than {MAX_ROWS} rows")
        image = (row[img_i].strip() or None) if img_i is not None else None
        acc.add(row[t_i], row[p_i], [row[i] for i in g_i], line, image)
    if acc.rows == 0:
        raise ClassifierInputError(f"{path}: no data rows after the header")
    return acc


# --- tables ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupRow:
    """One group's classification errors.

    ``confusion`` lists ``(truth, predicted, count)`` for every combination seen, sorted.
    ``too_small`` is true when ``n < min_n``: the row is shown but not in the summaries.
    """

    group: str
    n: int
    errors: int
    too_small: bool
    confusion: tuple[tuple[str, str, int], ...]

    @property
    def error_rate(self) -> float | None:
        """errors / n, ``None`` for an empty group."""
        return self.errors / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """95% Wilson interval of the error rate (``None`` for an empty group)."""
        return wilson_interval(self.errors, self.n, 0.95)


@dataclass(frozen=True)
class FisherTest:
    """Fisher's exact test (two-sided) of the worst group's errors against the best's:
    ``groups`` is (worst, best), the first of each in group order that are not the same group."""

    groups: tuple[str, str]
    p_value: float


@dataclass(frozen=True)
class ClassifierTable:
    """Error rates per group of ``attributes`` (one attribute: a marginal table); ``summary``
    compares the groups that are not too small (``max_groups`` are the worst, ``min_groups``
    the best), ``fisher`` tests the worst against the best (``None`` with fewer than two)."""

    attributes: tuple[str, ...]
    min_n: int
    groups: tuple[GroupRow, ...]
    unlabelled: GroupRow
    overall: GroupRow
    summary: Disparity
    fisher: FisherTest | None

    def group(self, name: str) -> GroupRow:
        """The row of one group (``KeyError`` when absent)."""
        for row in self.groups:
            if row.group == name:
                return row
        raise KeyError(name)


def _row(name: str, confusion: Counter[tuple[str, str]], min_n: int) -> GroupRow:
    n = sum(confusion.values())
    errors = sum(c for (t, p), c in confusion.items() if t != p)
    cells = tuple(sorted((t, p, c) for (t, p), c in confusion.items()))
    return GroupRow(name, n, errors, n < min_n, cells)


def summarise(rows: Sequence[GroupRow]) -> tuple[Disparity, FisherTest | None]:
    """How the error rate varies over the rows that are not too small, and Fisher's test of the
    worst against the best of them (``None`` with fewer than two)."""
    used = [r for r in rows if not r.too_small and r.n > 0]
    summary = Disparity(
        {r.group: r.errors / r.n for r in used}, tuple(r.group for r in rows if r.too_small)
    )
    if len(used) < 2:
        return summary, None
    w = next(r for r in used if r.group == summary.max_groups[0])
    b = next(r for r in used if r.group in summary.min_groups and r.group != w.group)
    return summary, FisherTest((w.group, b.group), fisher_exact(w.errors, w.n, b.errors, b.n))


def classifier_table(
    counts: PredictionCounts, attributes: Sequence[str], min_n: int = DEFAULT_MIN_N
) -> ClassifierTable:
    """The error table over the groups of ``attributes`` (a subset of ``counts.group_by``).

    A row is unlabelled for this table when any of ``attributes`` is empty in it; ``overall``
    covers every row of the input, unlabelled ones included. Groups are sorted by name.
    """
    if min_n < 1:
        raise ValueError("min_n must be at least 1")
    index = [counts.group_by.index(a) for a in attributes]
    per_group: dict[str, Counter[tuple[str, str]]] = {}
    unlabelled: Counter[tuple[str, str]] = Counter()
    overall: Counter[tuple[str, str]] = Counter()
    for (values, truth, predicted), c in counts.cells.items():
        chosen = [values[i] for i in index]
        overall[(truth, predicted)] += c
        if "" in chosen:
            unlabelled[(truth, predicted)] += c
        else:
            per_group.setdefault(group_name(chosen), Counter())[(truth, predicted)] += c
    rows = tuple(_row(name, per_group[name], min_n) for name in sorted(per_group))
    over = _row("overall", overall, 1)
    summary, fisher = summarise(rows)
    return ClassifierTable(
        attributes=tuple(attributes),
        min_n=min_n,
        groups=rows,
        unlabelled=_row(UNLABELLED, unlabelled, 1),
        overall=over,
        summary=summary,
        fisher=fisher,
    )


@dataclass(frozen=True)
class ClassifierAudit:
    """The intersectional table over all of ``group_by`` and, with two or more attributes, one
    marginal table per attribute (Gender Shades reports both)."""

    counts: PredictionCounts
    intersectional: ClassifierTable
    marginals: tuple[ClassifierTable, ...]


def audit(counts: PredictionCounts, min_n: int = DEFAULT_MIN_N) -> ClassifierAudit:
    """All the tables of one input."""
    marginals = (
        tuple(classifier_table(counts, (a,), min_n) for a in counts.group_by)
        if len(counts.group_by) > 1
        else ()
    )
    return ClassifierAudit(counts, classifier_table(counts, counts.group_by, min_n), marginals)


# --- JSON ----------------------------------------------------------------------------------------


def row_json(row: GroupRow) -> dict[str, Any]:
    """A group row, self-describing (the HTML report reads these keys)."""
    ci = row.interval
    return {
        "group": row.group,
        "n": row.n,
        "errors": row.errors,
        "error_rate": row.error_rate,
        "ci_low": None if ci is None else ci[0],
        "ci_high": None if ci is None else ci[1],
        "too_small": row.too_small,
        "confusion": [{"truth": t, "predicted": p, "count": c} for t, p, c in row.confusion],
    }


def summary_json(s: Disparity, fisher: FisherTest | None) -> dict[str, Any]:
    """The summary of a table (``worst``/``best``: the groups at the highest/lowest rate)."""
    return {
        "groups": list(s.groups),
        "too_small": list(s.too_small),
        "worst": list(s.max_groups),
        "best": list(s.min_groups),
        "max_error_rate": s.group_max,
        "min_error_rate": s.group_min,
        "difference": s.difference,
        "ratio": s.ratio,
        "geomean": s.geomean,
        "max_geomean": s.max_geomean,
        "zero_groups": list(s.zero_groups),
        "fisher": None
        if fisher is None
        else {"worst": fisher.groups[0], "best": fisher.groups[1], "p_value": fisher.p_value},
    }


def table_json(t: ClassifierTable) -> dict[str, Any]:
    """One table: attributes, min_n, group rows, unlabelled, overall, summary."""
    return {
        "attributes": list(t.attributes),
        "min_n": t.min_n,
        "groups": [row_json(r) for r in t.groups],
        "unlabelled": row_json(t.unlabelled),
        "overall": row_json(t.overall),
        "summary": summary_json(t.summary, t.fisher),
    }


def audit_json(a: ClassifierAudit) -> dict[str, Any]:
    """The tables and listed errors (the CLI adds kind, command and inputs)."""
    return {
        "intersectional": table_json(a.intersectional),
        "marginals": [table_json(t) for t in a.marginals],
        "listed_errors": [vars(e) for e in a.counts.listed_errors],
    }
