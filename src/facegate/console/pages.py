"""The console's pages: each reads or changes state through
:class:`~facegate.admin.service.AdminService` (or the audit package's readers) and renders a
template. Routes and roles are listed in :data:`PAGES`."""

from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
import zipfile
from collections import deque
from pathlib import Path
from typing import Any

from starlette.responses import RedirectResponse, Response

from facegate import __version__
from facegate.admin import views
from facegate.admin.auth import ADMIN_ONLY, READERS, REVIEWERS
from facegate.admin.service import REVIEW_STATUSES
from facegate.audit.charts import column_chart, day_chart, hbar_chart
from facegate.audit.head import HeadStatement
from facegate.audit.layout import PUBLIC_KEY_NAME
from facegate.audit.log import iter_entries
from facegate.audit.query import AuditQueryError, Filters, iso, select
from facegate.audit.report import build_report, render_html, write_csv
from facegate.audit.report_model import Table, TransparencyReport, report_to_dict, tables
from facegate.audit.signing_key import read_public_key
from facegate.audit.verify import VerifyResult, verify
from facegate.console.routes import (
    ALL_ROLES,
    SECURITY_HEADERS,
    Console,
    Ctx,
    Handler,
    SignInRefused,
)
from facegate.errors import AccessDeniedException, InvalidParameterException
from facegate.policy.actions import ACTION_GROUPS
from facegate.policy.vocabulary import PURPOSES, SECTORS
from facegate.transparency import transparency_document
from facegate.wire.peers import client_address

DAY_S = 86400.0
OVERVIEW_DAYS = 14
AUDIT_ROWS = 200
FILTERS = ("since", "until", "org_id", "operation", "decision", "kind", "case_ref", "purpose",
           "policy_id")  # fmt: skip


# --- overview ------------------------------------------------------------------------------------


def _report(console: Console, since: Any, until: Any, verified: VerifyResult | None = None,
            title: str = "facegate transparency report") -> TransparencyReport:  # fmt: skip
    directory = console.services.settings.audit_dir
    summary = ""
    if verified is not None:
        summary = (
            f"{verified.entries} entries verified, signed up to seq {verified.signed_seq}; "
            + verified.summary()
            if verified.ok
            else f"verification failed: {verified.problem}"
        )
    return build_report(
        ({"seq": e.seq, "record": e.record} for e in iter_entries(directory)),
        since,
        until,
        title=title,
        verified=None if verified is None else verified.ok,
        verify_summary=summary,
    )


def chart(table: Table) -> str:
    """The inline SVG of a report table (as the report's HTML page draws it)."""
    pairs = [(str(r[0]), float(r[1] or 0)) for r in table.rows if isinstance(r[1], int | float)]
    desc = f"{table.title}: {len(pairs)} rows; the table beside it gives each value."
    if table.chart == "bands":
        return column_chart("c-" + table.name, table.title, desc, pairs, table.columns[0])
    if table.chart == "days":
        return day_chart("c-" + table.name, table.title, desc, pairs)
    return hbar_chart("c-" + table.name, table.title, desc, pairs)


async def overview(console: Console, ctx: Ctx) -> Response:
    services = console.services
    now = services.clock()

    def gather() -> dict[str, Any]:
        report = _report(console, now - OVERVIEW_DAYS * DAY_S, None)
        days = report.requests.per_day
        # every one of the last OVERVIEW_DAYS UTC days, 0 where nothing happened
        by_day = {d.day: d for d in days}
        calendar = [
            dt.datetime.fromtimestamp(now - k * DAY_S, dt.UTC).strftime("%Y-%m-%d")
            for k in range(OVERVIEW_DAYS - 1, -1, -1)
        ]
        return {
            "health": {
                "version": __version__,
                "engine_workers": services.engine.workers,
                "audit_ok": services.audit.failed is None,
                "audit_problem": services.audit.failed or "",
                "audit_last_seq": services.audit.last_seq,
            },
            "model": transparency_document(services)["model"],
            "gate": ctx.admin.model_gate(),
            "packs": ctx.admin.policies()[0],
            "totals": report.totals,
            "requests_chart": day_chart(
                "requests-per-day", "Requests per day",
                f"Requests per UTC day over the last {OVERVIEW_DAYS} days.",
                [(day, by_day[day].requests if day in by_day else 0) for day in calendar],
            ),
            "denials_chart": day_chart(
                "denials-per-day", "Denials per day",
                f"Requests denied by policy per UTC day over the last {OVERVIEW_DAYS} days.",
                [(day, by_day[day].denials if day in by_day else 0) for day in calendar],
            ),
            "days": days,
            "pending": [views.review(r, now) for r in ctx.admin.review_list("pending", 20)],
        }  # fmt: skip

    data = await console.run(gather)
    return console.render(ctx.request, "overview.html", ctx, page="overview", title="Overview",
                          days_shown=OVERVIEW_DAYS, **data)  # fmt: skip


# --- organisations and keys ----------------------------------------------------------------------


async def _orgs_page(console: Console, ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    now = console.services.clock()

    def gather() -> dict[str, Any]:
        key_records = ctx.admin.keys()
        return {
            "orgs": [views.org(o) for o in ctx.admin.orgs()],
            "keys": [views.key(k, now) for k in key_records],
        }

    data = await console.run(gather)
    return console.render(
        ctx.request, "orgs.html", ctx, status=status, page="orgs",
        title="Organisations and keys", sectors=sorted(SECTORS), purposes=sorted(PURPOSES),
        **data, **extra,
    )  # fmt: skip


async def orgs(console: Console, ctx: Ctx) -> Response:
    return await _orgs_page(console, ctx)


async def org_create(console: Console, ctx: Ctx) -> Response:
    f = ctx.form
    use_cases = tuple(u.strip() for u in f.get("use_cases", "").split(",") if u.strip())
    record = await console.run(
        lambda: ctx.admin.create_org(
            f.get("org_id", "").strip(), name=f.get("name", ""), sector=f.get("sector", ""),
            use_cases=use_cases, country=f.get("country", "").strip(),
            region=f.get("region", "").strip(), city=f.get("city", "").strip(),
        )
    )  # fmt: skip
    return await _orgs_page(console, ctx, message=f"Organisation {record.org_id} registered.")


def _days(raw: str) -> int | None:
    if not raw.strip():
        return None
    if not raw.strip().isdigit():
        raise InvalidParameterException("Key expiry is a whole number of days.")
    return int(raw)


async def key_issue(console: Console, ctx: Ctx) -> Response:
    f = ctx.form
    expires = _days(f.get("expires_in_days", ""))
    created = await console.run(
        lambda: ctx.admin.create_key(
            f.get("org_id", ""), f.get("use_case") or None, f.get("description", ""), expires
        )
    )
    return await _orgs_page(
        console, ctx, message=f"Key {created.access_key_id} issued.",
        new_key=views.new_key(created),
    )  # fmt: skip


async def key_revoke(console: Console, ctx: Ctx) -> Response:
    key_id = ctx.request.path_params["key_id"]
    await console.run(ctx.admin.revoke_key, key_id)
    return await _orgs_page(console, ctx, message=f"Key {key_id} revoked.")


async def key_rotate(console: Console, ctx: Ctx) -> Response:
    key_id = ctx.request.path_params["key_id"]
    created = await console.run(ctx.admin.rotate_key, key_id)
    return await _orgs_page(
        console, ctx, message=f"Key {key_id} revoked and replaced by {created.access_key_id}.",
        new_key=views.new_key(created),
    )  # fmt: skip


# --- policies and the decision simulator ---------------------------------------------------------


async def _policies_page(console: Console, ctx: Ctx, **extra: Any) -> Response:
    def gather() -> dict[str, Any]:
        packs, infos = ctx.admin.policies()
        return {
            "packs": [(p, [views.policy(i) for i in infos if i.pack == p]) for p in packs],
            "org_ids": [o.org_id for o in ctx.admin.orgs() if o.active],
        }

    data = await console.run(gather)
    return console.render(
        ctx.request, "policies.html", ctx, page="policies", title="Policies",
        actions=sorted(ACTION_GROUPS), purposes=sorted(PURPOSES),
        form=extra.pop("form", {}), result=extra.pop("result", None), **data, **extra,
    )  # fmt: skip


async def policies(console: Console, ctx: Ctx) -> Response:
    return await _policies_page(console, ctx)


async def simulate(console: Console, ctx: Ctx) -> Response:
    f = ctx.form
    context: dict[str, Any] = {
        name: f[name].strip()
        for name in ("purpose", "case_ref", "authorization_ref", "authorization_issuer", "now")
        if f.get(name, "").strip()
    }
    context.update(realtime="realtime" in f, exigent="exigent" in f)
    body: dict[str, Any] = {"org_id": f.get("org_id", ""), "action": f.get("action", ""),
                            "context": context}  # fmt: skip
    if f.get("use_case", "").strip():
        body["use_case"] = f["use_case"].strip()
    if f.get("collection", "").strip():
        body["collection"] = f["collection"].strip()
    explained = await console.run(ctx.admin.explain, body)
    result = views.explanation(explained)
    await console.event(
        ctx.operator.operator_id, "console.simulate", body["org_id"], operation=body["action"],
        decision=result["decision"], policy_ids=result["policy_ids"],
    )  # fmt: skip
    return await _policies_page(console, ctx, form=f, result=result)


# --- review queue --------------------------------------------------------------------------------


async def reviews(console: Console, ctx: Ctx) -> Response:
    status = ctx.request.query_params.get("status", "pending")
    now = console.services.clock()
    chosen = None if status == "all" else status
    records = await console.run(ctx.admin.review_list, chosen, 200)
    return console.render(
        ctx.request, "reviews.html", ctx, page="reviews", title="Review queue",
        reviews=[views.review(r, now) for r in records], chosen=status,
        statuses=[*REVIEW_STATUSES, "all"],
    )  # fmt: skip


async def _review_page(console: Console, ctx: Ctx, review_id: str, **extra: Any) -> Response:
    now = console.services.clock()
    detail = await console.run(ctx.admin.review, review_id)
    doc = views.review_detail(detail, now)
    voted = any(v["operator_id"] == ctx.operator.operator_id for v in doc["votes"])
    # the probe's face crop: reviewing roles only (auditors see no biometric images)
    crop = (
        ctx.can(*REVIEWERS)
        and detail.status == "pending"
        and await console.run(ctx.admin.has_review_crop, review_id)
    )
    return console.render(
        ctx.request, "review.html", ctx, page="reviews", title=f"Review {review_id}",
        review=doc, voted=voted, crop=crop, **extra,
    )  # fmt: skip


async def review(console: Console, ctx: Ctx) -> Response:
    return await _review_page(console, ctx, ctx.request.path_params["review_id"])


async def review_crop(console: Console, ctx: Ctx) -> Response:
    """The probe's face crop of a pending review (JPEG, never cached; 404 once closed)."""
    data = await console.run(ctx.admin.review_crop, ctx.request.path_params["review_id"])
    return Response(data, media_type="image/jpeg", headers=SECURITY_HEADERS)


async def review_vote(console: Console, ctx: Ctx) -> Response:
    review_id = ctx.request.path_params["review_id"]
    verdict = ctx.form.get("verdict", "")
    detail = await console.run(
        ctx.admin.vote, review_id, ctx.operator, verdict, ctx.form.get("note", "")
    )
    return await _review_page(
        console, ctx, review_id, message=f"Your verdict ({verdict}) is recorded; the review is "
        f"{detail.status}.",
    )  # fmt: skip


# --- audit ---------------------------------------------------------------------------------------


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    r = entry["record"]
    return {
        "seq": entry["seq"],
        "at": iso(r.get("at")),
        "kind": r.get("kind", ""),
        "what": r.get("operation") or r.get("action") or "",
        "org_id": r.get("org_id", ""),
        "decision": r.get("decision", ""),
        "who": r.get("actor") or r.get("access_key_id") or "",
        "subject": r.get("subject") or r.get("collection_id") or "",
        "policy_ids": ", ".join(r.get("policy_ids") or ()),
    }


async def _audit_page(console: Console, ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    query = {k: ctx.request.query_params.get(k, "").strip() for k in FILTERS}
    directory = console.services.settings.audit_dir

    def search() -> tuple[list[dict[str, Any]], int]:
        filters = Filters(**{k: (v or None) for k, v in query.items()})
        kept: deque[dict[str, Any]] = deque(maxlen=AUDIT_ROWS)
        found = 0
        entries = ({"seq": e.seq, "record": e.record} for e in iter_entries(directory))
        for item in select(entries, filters):
            found += 1
            kept.append(_row(dict(item)))
        return list(reversed(kept)), found

    try:
        rows, found = await console.run(search)
        error = ""
    except AuditQueryError as exc:
        rows, found, error, status = [], 0, str(exc), 400
    return console.render(
        ctx.request, "audit.html", ctx, status=status, page="audit", title="Audit",
        query=query, rows=rows, found=found, shown=AUDIT_ROWS, error=error,
        verification=extra.pop("verification", None), **extra,
    )  # fmt: skip


async def audit(console: Console, ctx: Ctx) -> Response:
    return await _audit_page(console, ctx)


def _verify(console: Console, trusted: tuple[HeadStatement, ...] = ()) -> VerifyResult:
    directory = console.services.settings.audit_dir
    return verify(directory, read_public_key(directory / PUBLIC_KEY_NAME), trusted)


async def audit_verify(console: Console, ctx: Ctx) -> Response:
    """Verify the chain, against a trusted head pasted into the form if one was: without one,
    the page says (as ``audit verify`` does) that a rollback cannot be detected, and shows the
    current head statement to keep elsewhere."""
    pasted = ctx.form.get("trusted_head", "").strip()
    trusted: tuple[HeadStatement, ...] = ()
    if pasted:
        try:
            trusted = (HeadStatement.parse(pasted.encode("utf-8")),)
        except ValueError as exc:
            return await _audit_page(
                console, ctx, 400, verify_error=f"The trusted head is not a head statement: {exc}"
            )
    result = await console.run(_verify, console, trusted)
    await console.event(ctx.operator.operator_id, "console.audit_verify", ok=result.ok,
                        entries=result.entries,
                        rollback_checked=result.rollback_checked)  # fmt: skip
    statement = result.head_statement() if result.ok else None
    return await _audit_page(
        console, ctx, verification=result.to_json(),
        head_statement=statement.to_bytes().decode("ascii").strip() if statement else "",
    )  # fmt: skip


async def audit_report(console: Console, ctx: Ctx) -> Response:
    params = ctx.request.query_params
    since, until = params.get("since", "").strip() or None, params.get("until", "").strip() or None
    fmt = params.get("format", "page")
    if fmt not in ("page", "html", "json", "csv"):
        raise InvalidParameterException("A report format is page, html, json or csv.")

    def make() -> TransparencyReport:
        return _report(console, since, until, _verify(console))

    try:
        report = await console.run(make)
    except AuditQueryError as exc:
        return await _audit_page(console, ctx, 400, report_error=str(exc))
    await console.event(ctx.operator.operator_id, "console.report", format=fmt,
                        since=report.period.since, until=report.period.until)  # fmt: skip
    name = "facegate-transparency-report"
    if fmt == "html":
        return _download(render_html(report).encode(), "text/html; charset=utf-8", name + ".html")
    if fmt == "json":
        body = json.dumps(report_to_dict(report), indent=2).encode()
        return _download(body, "application/json", name + ".json")
    if fmt == "csv":
        return _download(await console.run(_csv_zip, report), "application/zip", name + "-csv.zip")
    shown = [(t, chart(t) if t.chart != "none" else "") for t in tables(report)]
    return console.render(
        ctx.request, "report.html", ctx, page="audit", title="Transparency report",
        report=report, tables=shown, since=since or "", until=until or "",
    )  # fmt: skip


def _csv_zip(report: TransparencyReport) -> bytes:
    """The report's CSV tables (``write_csv``) in one zip file."""
    out = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(out, "w") as zf:
        for path in write_csv(report, Path(tmp)):
            zf.write(path, path.name)
    return out.getvalue()


def _download(body: bytes, media_type: str, filename: str) -> Response:
    headers = {**SECURITY_HEADERS, "content-disposition": f'attachment; filename="{filename}"'}
    return Response(body, media_type=media_type, headers=headers)


# --- bias and accuracy ---------------------------------------------------------------------------


async def bias(console: Console, ctx: Ctx) -> Response:
    def gather() -> dict[str, Any]:
        gate = ctx.admin.model_gate()
        return {"gate": views.model_gate(gate),
                "audits": [views.model_audit(r) for r in ctx.admin.model_audit_list()]}  # fmt: skip

    data = await console.run(gather)
    return console.render(ctx.request, "bias.html", ctx, page="bias", title="Bias and accuracy",
                          **data)  # fmt: skip


async def bias_audit(console: Console, ctx: Ctx) -> Response:
    record = await console.run(ctx.admin.model_audit, ctx.request.path_params["audit_id"])
    doc = views.model_audit(record)
    rows = doc["summary"]["thresholds"]

    def bars(chart_id: str, title: str, key: str) -> str:
        pairs = [(f"{r['similarity_pct']:g}", float(r[key])) for r in rows if r[key] is not None]
        desc = f"{title} at each Similarity threshold; the table gives each value."
        return column_chart(chart_id, title, desc, pairs, "Similarity threshold")

    charts = [
        bars("fmr-ratio", "FMR Max/GeoMean across groups", "fmr_max_geomean"),
        bars("fnmr-max", "Highest group FNMR", "max_group_fnmr"),
        bars("fmr-overall", "Overall false match rate", "overall_fmr"),
    ]
    gate = await console.run(ctx.admin.model_gate)
    return console.render(
        ctx.request, "bias_audit.html", ctx, page="bias", title=f"Bias audit {record.audit_id}",
        audit=doc, charts=charts, bounds=gate.bounds.to_json(),
    )  # fmt: skip


# --- collections ---------------------------------------------------------------------------------


async def collections(console: Console, ctx: Ctx) -> Response:
    stats = await console.run(ctx.admin.collection_stats)
    return console.render(
        ctx.request, "collections.html", ctx, page="collections", title="Collections",
        collections=[{**vars(s), "created_at": iso(s.created_at),
                      "next_deadline": iso(s.next_deadline) if s.next_deadline else ""}
                     for s in stats],
    )  # fmt: skip


# --- your account --------------------------------------------------------------------------------


async def _account_page(console: Console, ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    control = await console.run(ctx.admin.control, ctx.operator.operator_id)
    controllers = sorted(control.controllers)
    return console.render(
        ctx.request, "account.html", ctx, status=status, page="account", title="Your account",
        account=views.operator(ctx.operator),
        held=[(link.describe(), link.what) for link in control.held],
        controllers=[(c, control.path_to(c)) for c in controllers],
        cooling_off_days=f"{ctx.admin.cooling_off_s / DAY_S:g}", **extra,
    )  # fmt: skip


async def account(console: Console, ctx: Ctx) -> Response:
    changed = ctx.request.query_params.get("changed") == "1"
    return await _account_page(
        console, ctx, message="Your password is changed; your other sessions ended." if changed
        else "",
    )  # fmt: skip


async def account_password(console: Console, ctx: Ctx) -> Response:
    """Change your own console password (the current one proves it is you). Counted by the
    sign-in throttle and run in its hashing slots, like a sign-in; on success every session of
    yours ends and this one is replaced."""
    f = ctx.form
    new = f.get("new_password", "")
    if new != f.get("new_password_again", ""):
        return await _account_page(console, ctx, 400, error="The two new passwords differ.")
    operator_id = ctx.operator.operator_id
    client = client_address(ctx.request.scope)
    try:
        await console.password_work(
            operator_id, client, ctx.admin.change_own_password, operator_id,
            f.get("current_password", ""), new,
        )  # fmt: skip
    except SignInRefused as refused:
        await console.event(operator_id, refused.action, operator_id, client=client)
        return await _account_page(console, ctx, refused.status, error=refused.message)
    except AccessDeniedException as exc:
        await console.event(operator_id, "console.password_change_failed", operator_id,
                            client=client)  # fmt: skip
        return await _account_page(console, ctx, 403, error=exc.message)
    console.throttle.succeeded(operator_id, client)
    session_id, _ = await console.run(console.sessions.create, operator_id)
    response = RedirectResponse("/console/account?changed=1", 303, SECURITY_HEADERS)
    console.start_session(ctx.request, response, session_id)
    return response


PAGES: tuple[tuple[str, str, Handler, tuple[str, ...]], ...] = (
    ("/overview", "GET", overview, ALL_ROLES),
    ("/orgs", "GET", orgs, READERS),
    ("/orgs", "POST", org_create, ADMIN_ONLY),
    ("/keys", "POST", key_issue, ADMIN_ONLY),
    ("/keys/{key_id}/revoke", "POST", key_revoke, ADMIN_ONLY),
    ("/keys/{key_id}/rotate", "POST", key_rotate, ADMIN_ONLY),
    ("/policies", "GET", policies, READERS),
    ("/policies/simulate", "POST", simulate, READERS),
    ("/reviews", "GET", reviews, ALL_ROLES),
    ("/reviews/{review_id}", "GET", review, ALL_ROLES),
    ("/reviews/{review_id}/crop", "GET", review_crop, REVIEWERS),
    ("/reviews/{review_id}/vote", "POST", review_vote, REVIEWERS),
    ("/audit", "GET", audit, READERS),
    ("/audit/verify", "POST", audit_verify, READERS),
    ("/audit/report", "GET", audit_report, READERS),
    ("/bias", "GET", bias, READERS),
    ("/bias/{audit_id}", "GET", bias_audit, READERS),
    ("/collections", "GET", collections, READERS),
    ("/account", "GET", account, ALL_ROLES),
    ("/account/password", "POST", account_password, ALL_ROLES),
)
"""(path under /console, method, handler, roles). ``admin`` may do everything, ``auditor``
read (and simulate, verify, download), ``reviewer`` the overview and reviews."""
