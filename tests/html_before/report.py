"""facegate/audit/report_html.py's f-string HTML before it became a Jinja2 template, verbatim,
kept only for the before/after test (tests/test_html_templates.py)."""

# ruff: noqa
# mypy: ignore-errors
from __future__ import annotations

from html import escape

from facegate.audit.charts import column_chart, day_chart, hbar_chart
from facegate.audit.report_model import Scalar, Table, TransparencyReport, tables

CSS = """
:root { color: #1a1a1a; background: #fff; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
  max-width: 60rem; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; } h2 { border-bottom: 2px solid #1f4e79;
  margin-top: 2.2rem; } h3 { margin-top: 1.6rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; min-width: 50%; }
caption { text-align: left; font-weight: 600; padding: .2rem 0; }
th, td { border: 1px solid #bbb; padding: .2rem .6rem; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
thead th { background: #e8eef5; }
figure { margin: 1rem 0 1.6rem; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-weight: 600; margin-bottom: .3rem; }
svg.chart { max-width: 100%; height: auto; display: block; }
.note, .meta { color: #444; font-size: .9rem; }
.ok { color: #145a32; font-weight: 600; } .bad { color: #922b21; font-weight: 600; }
dl.kv { display: grid; grid-template-columns: max-content auto; gap: .15rem 1.2rem; }
dl.kv dt { font-weight: 600; } dl.kv dd { margin: 0; font-variant-numeric: tabular-nums; }
nav ol { columns: 2; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  nav { display: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'"
)

CONTAINS = (
    "Counts of the requests this facegate server received in the period: by sector, purpose, "
    "operation, decision and organisation, and per day.",
    "Denials by the id of the policy that denied them, with the number of organisations concerned.",
    "Face-comparison searches: how many were performed, with and without candidates, the "
    "number of candidates found, the best similarity in bands, and how many had a case "
    "reference, a warrant or court order, an emergency (exigent) justification, or were "
    "real-time; the same per quarter.",
    "Human review of held results: held, released, rejected, expired, still pending, votes, "
    "the number of reviewers and the median time to a decision.",
    "Faces deleted at their retention deadline, by organisation; registry changes "
    "(organisations and access keys); errors by code; latency by operation.",
    "The integrity of the audit log the report was computed from.",
)

NEVER = (
    "No images and no face vectors (descriptors): the audit log never stores them.",
    "No FaceIds, no hashes of input images, no access key ids: only counts.",
    "No case or authorisation reference texts and no reviewer names: only how many there were.",
)

FORMATS = (
    (
        "Washington, RCW 43.386",
        "the accountability report (.020) and the annual report on use and compliance; use "
        "records sufficient to facilitate public reporting and auditing (.070); meaningful human "
        "review (.030); warrants, court orders and exigent circumstances for real-time "
        "identification (.080).",
    ),
    (
        "Massachusetts, M.G.L. c. 6 §220 (St. 2020 c. 253)",
        "per facial recognition search the date, the number of matches and the reason (court "
        "order or emergency), reported quarterly to EOPSS, which publishes an annual report.",
    ),
    (
        "EU AI Act, Regulation (EU) 2024/1689",
        "Art. 12 (automatic logging of each use, including who verified the result), Art. 14(5) "
        "(verification by two natural persons), Art. 26(6) (logs kept at least six months), "
        "Art. 5(4)-(7) (each use of real-time remote biometric identification notified; annual "
        "reports).",
    ),
)


NUMERIC = ' class="n"'
_HEADERS = {
    "policy_id": "policy",
    "with_authorization": "warrant or court order",
    "with_case_ref": "with a case reference",
    "median_ms": "median (ms)",
    "p90_ms": "90th percentile (ms)",
}
_X_LABELS = {
    "search_candidate_counts": "candidates found by the search",
    "search_top_similarity": "similarity of the best candidate (%)",
}


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _cell(value: Scalar) -> str:
    if value is None:
        return '<td class="n">–</td>'
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    if isinstance(value, float):
        return f'<td class="n">{value:,.1f}</td>'
    return f"<td>{_e(value)}</td>"


def _table(table: Table) -> str:
    numeric = [
        bool(table.rows) and all(isinstance(r[i], int | float) for r in table.rows)
        for i in range(len(table.columns))
    ]
    head = "".join(
        f'<th scope="col"{NUMERIC if numeric[i] else ""}>'
        f"{_e(_HEADERS.get(c, c.replace('_', ' ')))}</th>"
        for i, c in enumerate(table.columns)
    )
    if table.rows:
        body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in table.rows)
    else:
        body = f'<tr><td colspan="{len(table.columns)}">No records in this period.</td></tr>'
    note = f'<p class="note">{_e(table.note)}</p>' if table.note else ""
    return (
        f'<table id="tbl-{_e(table.name)}"><caption>{_e(table.title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
    )


def _chart(table: Table) -> str:
    pairs = [(str(r[0]), float(r[1] or 0)) for r in table.rows if isinstance(r[1], int | float)]
    total = sum(v for _, v in pairs)
    desc = f"{table.title}: {len(pairs)} rows, {total:,.0f} in total. "
    desc += "The table below gives each value."
    if table.chart == "bands":
        x_label = _X_LABELS.get(table.name, table.columns[0])
        return column_chart(table.name, table.title, desc, pairs, x_label)
    if table.chart == "days":
        desc = desc.replace("the table below", "the table in the appendix")
        return day_chart(table.name, table.title, desc, pairs)
    return hbar_chart(table.name, table.title, desc, pairs)


def _figure(table: Table) -> str:
    if table.chart == "none":
        return _table(table)
    if table.chart == "days":
        return (
            f'<figure id="fig-{_e(table.name)}" data-table="tbl-{_e(table.name)}">'
            f"<figcaption>{_e(table.title)}</figcaption>{_chart(table)}"
            f'<p class="note">The numbers per day are in <a href="#tbl-{_e(table.name)}">the '
            "appendix</a>.</p></figure>"
        )
    return (
        f'<figure id="fig-{_e(table.name)}" data-table="tbl-{_e(table.name)}">'
        f"<figcaption>{_e(table.title)}</figcaption>{_chart(table)}{_table(table)}</figure>"
    )


def _kv(pairs: list[tuple[str, object]]) -> str:
    items = []
    for label, value in pairs:
        shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
        items.append(f"<dt>{_e(label)}</dt><dd>{_e('–' if shown is None else shown)}</dd>")
    return '<dl class="kv">' + "".join(items) + "</dl>"


def _duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min" if minutes else f"{seconds:.0f} s"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if hours < 48 else f"{hours / 24:.1f} days"


def _section(sid: str, title: str, body: str) -> str:
    return (
        f'<section id="{sid}" aria-labelledby="{sid}-h"><h2 id="{sid}-h">{_e(title)}</h2>'
        f"{body}</section>"
    )


def render_html(report: TransparencyReport) -> str:
    """The whole page as a string (UTF-8 when written)."""
    by_name = {t.name: t for t in tables(report)}

    def figs(*names: str) -> str:
        return "".join(_figure(by_name[n]) for n in names)

    p, t, s, r = report.period, report.totals, report.searches, report.reviews
    period = (
        f"{p.since or 'the first record'} to {p.until or 'the last record'} (UTC, end excluded)"
    )
    sections = [
        _section("about", "About this report", _about()),
        _section(
            "summary",
            "Summary",
            _kv(
                [
                    ("Requests", t.requests),
                    ("Allowed", t.allowed),
                    ("Denied (policy decision)", t.denied),
                    ("Failed after being allowed", t.failed),
                    ("Refused before a decision", t.refused),
                    ("Organisations making requests", t.organisations),
                    ("Access keys used", t.access_keys),
                    ("Face-comparison searches performed", s.performed),
                    ("Candidates found", s.candidates_returned),
                    ("Results held for human review", r.held),
                    ("Faces deleted at their retention deadline", report.retention.faces_deleted),
                    ("Governance events", t.events),
                ]
            ),
        ),
        _section(
            "requests",
            "Requests",
            figs(
                "requests_per_day",
                "requests_by_sector",
                "requests_by_purpose",
                "requests_by_operation",
                "requests_by_decision",
                "requests_by_organisation",
            ),
        ),
        _section("denials", "Denials by policy", figs("denials_by_policy")),
        _section(
            "searches",
            "Face-comparison searches",
            _searches(report)
            + figs(
                "searches_by_sector",
                "search_candidate_counts",
                "search_top_similarity",
                "searches_by_quarter",
            ),
        ),
        _section("reviews", "Human review", _reviews(report)),
        _section(
            "retention",
            "Retention deletions",
            _kv([("Faces deleted", report.retention.faces_deleted)])
            + figs("retention_by_organisation"),
        ),
        _section("registry", "Registry changes", _registry(report) + figs("registry_by_action")),
        _section("errors", "Errors and latency", figs("errors_by_code", "latency_by_operation")),
        _section("integrity", "Integrity of the audit log", _integrity(report)),
        _section("appendix", "Appendix: requests per day", _table(by_name["requests_per_day"])),
    ]
    nav = "".join(
        f'<li><a href="#{sid}">{_e(title)}</a></li>'
        for sid, title in (
            ("about", "About this report"),
            ("summary", "Summary"),
            ("requests", "Requests"),
            ("denials", "Denials by policy"),
            ("searches", "Face-comparison searches"),
            ("reviews", "Human review"),
            ("retention", "Retention deletions"),
            ("registry", "Registry changes"),
            ("errors", "Errors and latency"),
            ("integrity", "Integrity of the audit log"),
            ("appendix", "Appendix: requests per day"),
        )
    )
    first_last = f"First record {p.first_record or '–'}, last record {p.last_record or '–'}."
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="facegate ({_e(report.format)})">'
        f"<title>{_e(report.title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{_e(report.title)}</h1>"
        f'<p class="meta">Period: {_e(period)}. {_e(first_last)} '
        f"{t.records:,} records in the period. Generated {_e(p.generated_at)}.</p></header>"
        f'<nav aria-label="Contents"><h2>Contents</h2><ol>{nav}</ol></nav>'
        f"<main>{''.join(sections)}</main>"
        f'<footer><p class="meta">Report format {_e(report.format)}, generated by facegate from '
        "its hash-chained audit log. JSON and CSV files with the same numbers are published "
        "alongside this page.</p></footer></body></html>\n"
    )


def _about() -> str:
    contains = "".join(f"<li>{_e(x)}</li>" for x in CONTAINS)
    never = "".join(f"<li>{_e(x)}</li>" for x in NEVER)
    formats = "".join(f"<li><strong>{_e(name)}</strong>: {_e(what)}</li>" for name, what in FORMATS)
    return (
        "<h3>What this report contains</h3><ul>" + contains + "</ul>"
        "<h3>What it never contains</h3><ul>" + never + "</ul>"
        "<h3>Formats it follows</h3><ul>" + formats + "</ul>"
        "<h3>How to read it</h3><p>A <em>request</em> is one API call. A <em>search performed</em> "
        "is a face-comparison request (CompareFaces, SearchFaces, SearchFacesByImage, SearchUsers, "
        "SearchUsersByImage) that was allowed and completed; its <em>candidates</em> are the "
        "matches it found, returned to the caller or held for human review (the Massachusetts "
        "&quot;number of matches&quot;). Similarity is "
        "facegate's 0-100 score, named by its mapping version in the server's start-up record "
        "(calibrated mappings say which false match rate each value stands for: see "
        "docs/calibration.md and GET /transparency); a band includes its lower "
        "bound. A denial decided by "
        "several policies counts once under each. Times are UTC; the period includes its start "
        "and excludes its end.</p>"
    )


def _searches(report: TransparencyReport) -> str:
    s = report.searches
    return _kv(
        [
            ("Face-comparison requests", s.attempted),
            ("Performed (allowed and completed)", s.performed),
            ("Denied by policy", s.denied),
            ("Failed or refused", s.failed),
            ("With at least one candidate", s.with_candidates),
            ("Without candidates", s.without_candidates),
            ("Candidates found (returned, or held for review)", s.candidates_returned),
            ("With a case reference", s.with_case_ref),
            ("Distinct case references", s.distinct_cases),
            ("With a warrant or court order", s.with_authorization),
            ("Exigent (emergency)", s.exigent),
            ("Exigent without a warrant or court order", s.exigent_without_authorization),
            ("Neither authorised nor exigent", s.neither),
            ("Real-time", s.realtime),
        ]
    )


def _reviews(report: TransparencyReport) -> str:
    r = report.reviews
    return _kv(
        [
            ("Results held for review", r.held),
            ("Released after confirmation", r.released),
            ("Rejected (results discarded)", r.rejected),
            ("Expired undecided", r.expired),
            ("Held in the period, undecided at its end", r.pending_at_end),
            ("Reviewer votes", r.votes),
            ("Distinct reviewers", r.reviewers),
            ("Median time from hold to decision", _duration(r.median_decision_s)),
        ]
    ) + (
        '<p class="note">Outcomes count the reviews decided in the period, including results '
        "held before it; a result is released only after the required number of distinct "
        "reviewers confirmed it, and a rejected or expired result is discarded.</p>"
    )


def _registry(report: TransparencyReport) -> str:
    g = report.registry
    return _kv(
        [
            ("Organisations created", g.orgs_created),
            ("Organisations disabled", g.orgs_disabled),
            ("Access keys created", g.keys_created),
            ("Access keys revoked", g.keys_revoked),
        ]
    )


def _integrity(report: TransparencyReport) -> str:
    i = report.integrity
    if i.verified is None:
        status = (
            '<p><span class="bad">Not verified.</span> The hash chain was not checked when this '
            "report was made.</p>"
        )
    elif i.verified:
        status = '<p><span class="ok">Verified.</span> The audit log passed verification.</p>'
    else:
        status = (
            '<p><span class="bad">Verification FAILED.</span> The numbers in this report come '
            "from a log that did not verify.</p>"
        )
    summary = f'<p class="note">{_e(i.verify_summary)}</p>' if i.verify_summary else ""
    seqs = f"{i.first_seq} to {i.last_seq}" if i.first_seq is not None else None
    return (
        status
        + summary
        + _kv(
            [
                ("Records read (whole log)", i.records_read),
                ("Sequence numbers", seqs),
                ("Signed checkpoints", i.checkpoints),
                ("Recovery records (after a crash or a write failure)", i.recoveries),
                ("Recoveries after an audit write failure", i.write_failures),
                ("Changes begun without their outcome on record", i.writes_without_outcome),
                ("Requests refused at authentication (counted)", i.refusals_counted),
                ("Starts that continued a damaged log (tamper suspected)", i.tamper_suspected),
                ("Records of unknown kinds", i.other_records),
                ("Server start-ups in the period", i.startups),
                ("Server shutdowns in the period", i.shutdowns),
            ]
        )
    )
