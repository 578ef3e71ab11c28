"""The transparency report as files: one JSON document, or a folder of CSV tables.

JSON: ``report.json`` is :func:`~facegate.audit.report_model.report_to_dict` (UTF-8, keys in
field order, indented); :func:`read_json` reads it back into the same typed report.

CSV (RFC 4180, UTF-8, header row, one file per table, chosen so each file loads as one tidy
table in a spreadsheet or ``pandas.read_csv``):

* ``summary.csv``: columns ``section,field,value``, one row per single number (totals, search
  counts, reviews, integrity...); empty ``value`` means none (e.g. no median without reviews).
* ``<table>.csv`` for each table of :func:`~facegate.audit.report_model.tables` (e.g.
  ``requests_by_sector.csv`` with columns ``sector,count``; ``denials_by_policy.csv`` with
  ``policy_id,denials,organisations``), rows in the report's order.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return is written with
a leading ``'`` so that a spreadsheet shows it as text instead of running it as a formula
(OWASP "CSV injection"; organisation ids and policy ids are chosen by users). Numbers are never
altered. Files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from facegate.atomicfile import write_atomic
from facegate.audit.report_model import (
    Scalar,
    TransparencyReport,
    report_from_dict,
    report_to_dict,
    summary_rows,
    tables,
)

SUMMARY_CSV = "summary.csv"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_text_atomic(path: Path, content: str) -> Path:
    """Write ``content`` (UTF-8) to ``path`` through a temporary file in the same folder and an
    atomic rename; returns ``path``. The file is readable by everyone (0644: a report is meant
    to be published), or keeps the mode of the file it replaces."""
    path = Path(path)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    write_atomic(path, content.encode("utf-8"), mode)
    return path


def write_json(report: TransparencyReport, path: Path) -> Path:
    """Write the report as one JSON document at ``path``; returns ``path``."""
    text = json.dumps(report_to_dict(report), indent=2, ensure_ascii=False, allow_nan=False)
    return write_text_atomic(Path(path), text + "\n")


def read_json(path: Path) -> TransparencyReport:
    """Read a report written by :func:`write_json`. Raises ``ValueError`` (``json`` errors
    included) when the file is not such a report, ``OSError`` when it cannot be read."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return report_from_dict(data)


def csv_cell(value: Scalar) -> str:
    """One CSV cell: ``None`` is empty, booleans ``true``/``false``, floats in Python's shortest
    round-trip form, formula-like text neutralised with a leading ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv(header: tuple[str, ...], rows: tuple[tuple[Scalar, ...], ...]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return buffer.getvalue()


def write_csv(report: TransparencyReport, directory: Path) -> list[Path]:
    """Write ``summary.csv`` and one CSV per table into ``directory`` (created if missing);
    returns the paths written, summary first."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = [
        write_text_atomic(
            folder / SUMMARY_CSV, _csv(("section", "field", "value"), summary_rows(report))
        )
    ]
    for table in tables(report):
        written.append(
            write_text_atomic(folder / f"{table.name}.csv", _csv(table.columns, table.rows))
        )
    return written
