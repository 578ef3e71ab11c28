"""``facegate audit query`` and ``facegate audit report``: read the audit log.

* ``audit query [--since T] [--until T] [--org ID] [--operation OP] [--decision D] [--case REF]
  [--kind K] [--purpose P] [--policy ID] [--limit N] [--json]``: matching records, one line
  each (or JSON lines), oldest first.
* ``audit report --from T --to T --out DIR [--title TEXT] [--public-key FILE]``: verifies the
  log, then writes the transparency report for the period as ``report.json``, CSV tables and a
  self-contained ``report.html`` into DIR. Times are ISO 8601 (``2026-11-01`` or
  ``2026-11-01T12:00:00Z``); a date-only ``--to`` includes that day.

Exit codes: 0 done; 1 (report) the log did not verify (the report is still written, and says
so); 3 unusable input (no log, bad time, unreadable key).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from facegate.audit.errors import AuditKeyError, AuditReadError
from facegate.audit.layout import PUBLIC_KEY_NAME
from facegate.audit.log import iter_entries
from facegate.audit.query import AuditQueryError, Filters, select, write_lines
from facegate.audit.report import build_report, write_csv, write_html, write_json
from facegate.audit.signing_key import read_public_key
from facegate.audit.verify import verify
from facegate.cli.audit import audit_dir, data_dir_option

EXIT_OK = 0
EXIT_BROKEN = 1
EXIT_BAD_INPUT = 3


def register(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``query`` and ``report`` to the ``audit`` command's subparsers."""
    query = actions.add_parser("query", help="list audit records that match filters")
    data_dir_option(query)
    query.add_argument("--since", default=None, help="from this time (ISO 8601)")
    query.add_argument("--until", default=None, help="up to this time, excluded (ISO 8601)")
    query.add_argument("--org", dest="org_id", default=None, help="organisation id")
    query.add_argument("--operation", default=None, help="e.g. SearchFacesByImage")
    query.add_argument("--decision", default=None, help="allow, deny, error or none")
    query.add_argument("--case", dest="case_ref", default=None, help="case reference")
    query.add_argument("--kind", default=None, help="request, review, registry, retention...")
    query.add_argument("--purpose", default=None, help="e.g. missing_persons")
    query.add_argument("--policy", dest="policy_id", default=None, help="a deciding policy @id")
    query.add_argument("--limit", type=int, default=None, help="at most this many lines")
    query.add_argument("--json", action="store_true", help="JSON lines instead of text")
    query.set_defaults(func=cmd_audit_query)

    report = actions.add_parser("report", help="write a transparency report (JSON, CSV, HTML)")
    data_dir_option(report)
    report.add_argument("--from", dest="since", required=True, help="period start (ISO 8601)")
    report.add_argument("--to", dest="until", required=True, help="period end (ISO 8601)")
    report.add_argument("--out", type=Path, required=True, help="directory for the report")
    report.add_argument("--title", default="facegate transparency report")
    report.add_argument("--public-key", type=Path, default=None, help="trusted public key file")
    report.set_defaults(func=cmd_audit_report)


def _fail(message: str) -> int:
    print(f"facegate: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def cmd_audit_query(args: argparse.Namespace, out: TextIO) -> int:
    directory = audit_dir(args)
    if not directory.is_dir():
        return _fail(f"{directory}: no audit log here (use --data-dir)")
    try:
        filters = Filters(
            since=args.since,
            until=args.until,
            org_id=args.org_id,
            operation=args.operation,
            decision=args.decision,
            case_ref=args.case_ref,
            kind=args.kind,
            purpose=args.purpose,
            policy_id=args.policy_id,
        )
        entries = ({"seq": e.seq, "record": e.record} for e in iter_entries(directory))
        write_lines(select(entries, filters), out, as_json=args.json, limit=args.limit)
    except (AuditQueryError, AuditReadError) as exc:
        return _fail(str(exc))
    return EXIT_OK


def cmd_audit_report(args: argparse.Namespace, out: TextIO) -> int:
    directory = audit_dir(args)
    if not directory.is_dir():
        return _fail(f"{directory}: no audit log here (use --data-dir)")
    key_path: Path = args.public_key or directory / PUBLIC_KEY_NAME
    try:
        result = verify(directory, read_public_key(key_path))
        summary = (
            f"{result.entries} entries verified, signed up to seq {result.signed_seq}; "
            + result.summary()  # says what a report without a trusted head cannot rule out
            if result.ok
            else f"verification failed: {result.problem}"
        )
        report = build_report(
            ({"seq": e.seq, "record": e.record} for e in iter_entries(directory)),
            args.since,
            args.until,
            title=args.title,
            verified=result.ok,
            verify_summary=summary,
        )
    except (AuditQueryError, AuditReadError, AuditKeyError) as exc:
        return _fail(str(exc))
    args.out.mkdir(parents=True, exist_ok=True)
    written = [
        write_json(report, args.out / "report.json"),
        write_html(report, args.out / "report.html"),
    ]
    written += write_csv(report, args.out)
    out.write(f"{summary}\n")
    for path in written:
        out.write(f"wrote {path}\n")
    return EXIT_OK if result.ok else EXIT_BROKEN
