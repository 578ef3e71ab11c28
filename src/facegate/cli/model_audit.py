"""``facegate model-audit register|list|revoke|status``: the deployment gate's bias audits.

* ``register REPORT.json [--note TEXT]``: register a ``facegate bias verification --json``
  report for the active model (refused if it measured another model or similarity mapping);
  prints the audit id and whether it is within the bounds.
* ``list``: every registration, newest first, revoked ones included.
* ``revoke ID``: revoke one; searches gated on it are denied from the next request.
* ``status``: the active model and similarity versions, the bounds (``FACEGATE_GATE_*``), the
  registered audit, and whether it is within bounds or why not.

Like ``facegate org`` and ``keys``, these work on the data directory's database directly, with
or without a running server; their audit events go through the outbox into the server's chain.
The model versions are those of the engine ``facegate serve`` would run with the same settings.
Errors print one line on stderr and exit 3.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from facegate.admin import views
from facegate.admin.service import summary_of
from facegate.cli.admin import EXIT_BAD_INPUT, EXIT_OK, open_admin
from facegate.model_audit import MAX_REPORT_BYTES, GateBounds, ThresholdSummary
from facegate.store.model_audits import ModelAuditRecord

if TYPE_CHECKING:  # subscriptable for type checkers only
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def register(sub: Sub) -> None:
    """Add ``model-audit`` to the subparsers ``sub``."""
    p = sub.add_parser("model-audit", help="bias audits of the active model (the deployment gate)")
    actions = p.add_subparsers(dest="model_audit_command", required=True, metavar="ACTION")
    reg = actions.add_parser("register", help="register a 'facegate bias verification' report")
    reg.add_argument("report", type=Path, metavar="REPORT.json")
    reg.add_argument("--note", default="", help="why these bounds / who ran the audit")
    listing = actions.add_parser("list", help="registered audits, newest first")
    revoke = actions.add_parser("revoke", help="revoke a registered audit")
    revoke.add_argument("audit_id", metavar="ID")
    status = actions.add_parser("status", help="the gate now: model, bounds, audit, verdict")
    for action in (reg, listing, revoke, status):
        action.add_argument(
            "--data-dir", type=Path, default=None, help="data directory (FACEGATE_DATA_DIR)"
        )
    for action in (listing, status):
        action.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_model_audit)


def _row_line(row: ThresholdSummary | None, bounds: GateBounds) -> str:
    if row is None:
        return f"  at Similarity {bounds.threshold_pct:g}: not measured\n"

    def num(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.6g}"

    return (
        f"  at Similarity {row.similarity_pct:g}: FMR Max/GeoMean {num(row.fmr_max_geomean)} "
        f"(bound {bounds.max_fmr_ratio:g}), highest group FNMR {num(row.max_group_fnmr)}"
        f"{f' ({row.max_group_fnmr_group})' if row.max_group_fnmr_group else ''} "
        f"(bound {bounds.max_fnmr:g}); overall FMR {num(row.overall_fmr)}, "
        f"FNMR {num(row.overall_fnmr)}; groups {row.groups_measured}/{row.groups} measured\n"
    )


def _audit_line(record: ModelAuditRecord) -> str:
    state = "active" if record.active else "revoked"
    return (
        f"{record.audit_id:<20} {state:<8} {record.model_version} / {record.similarity_version}"
        f"  {record.dataset}  sha256 {record.report_sha256[:16]}…  {record.note}\n"
    )


def _read_report(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_REPORT_BYTES:
            raise OSError(f"{size} bytes; at most {MAX_REPORT_BYTES} (16 MiB) are accepted")
        return path.read_bytes()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from exc


class ReportError(Exception):
    """The report file cannot be read."""


def cmd_model_audit(args: argparse.Namespace, out: TextIO) -> int:
    command = args.model_audit_command
    if command == "register":
        try:
            data = _read_report(args.report)
        except ReportError as exc:
            print(f"facegate: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    with open_admin(args) as admin:
        if command == "register":
            record = admin.register_model_audit(data, args.note)
            gate = admin.model_gate()
            out.write("registered " + _audit_line(record))
            out.write(_row_line(summary_of(record).at(gate.bounds.threshold_pct), gate.bounds))
            verdict = "within bounds" if gate.status.within_bounds else "NOT within bounds"
            out.write(f"gate: {verdict}\n")
            out.writelines(f"  - {reason}\n" for reason in gate.status.reasons)
        elif command == "list":
            records = admin.model_audit_list()
            if args.format == "json":
                json.dump([views.model_audit(r) for r in records], out, indent=2)
                out.write("\n")
            else:
                out.writelines(_audit_line(r) for r in records)
        elif command == "revoke":
            record = admin.revoke_model_audit(args.audit_id)
            out.write(f"revoked model audit {record.audit_id}\n")
        else:
            gate = admin.model_gate()
            if args.format == "json":
                json.dump(views.model_gate(gate), out, indent=2)
                out.write("\n")
                return EXIT_OK
            b = gate.bounds
            out.write(f"model:       {gate.model_version}\n")
            out.write(f"similarity:  {gate.similarity_version}\n")
            out.write(
                f"bounds:      at Similarity {b.threshold_pct:g}: FMR Max/GeoMean <= "
                f"{b.max_fmr_ratio:g}, highest group FNMR <= {b.max_fnmr:g} (FACEGATE_GATE_*)\n"
            )
            if gate.audit is None:
                out.write("audit:       none registered for this model\n")
            else:
                out.write("audit:       " + _audit_line(gate.audit))
                assert gate.summary is not None
                out.write(_row_line(gate.summary.at(b.threshold_pct), b))
            verdict = "within bounds" if gate.status.within_bounds else "NOT within bounds"
            out.write(f"gate:        {verdict}")
            if not gate.status.within_bounds:
                out.write(" (1:N search is denied where the deployment-gate pack is active)")
            out.write("\n")
            out.writelines(f"  - {reason}\n" for reason in gate.status.reasons)
    return EXIT_OK
