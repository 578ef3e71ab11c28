"""``facegate policy test|explain|list``: check, explain and show the Cedar policy packs.

* ``policy test [PACK...]`` runs each pack's ALLOW/DENY request fixtures, with ``base`` alone and
  with the default packs added, and prints PASS/FAIL per fixture with the deciding policies
  (no PACK: every pack). Exit 0 only if every check passes, 1 if any fails.
* ``policy explain --request FILE.json [--packs a,b]`` decides one request (the fixture format,
  see :mod:`facegate.policy.fixtures`) and prints the decision, the determining policies with
  their reasons and sources, the obligations and any errors. Exit 0 on Allow, 1 on Deny.
* ``policy list`` shows every pack and its policies (``--source`` adds the policy text).

A pack, schema or request file that cannot be used exits 3 with one line on stderr, like the other
commands. ``register(sub)`` adds the ``policy`` command to ``facegate``'s argument parser.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from facegate.isotime import iso_seconds
from facegate.policy.engine import DEFAULT_PACKS, PolicyEngine
from facegate.policy.errors import FixtureError, PolicyLoadError
from facegate.policy.fixtures import check, pack_fixtures, pack_sets, read_json, request_from_json
from facegate.policy.loader import (
    BASE_PACK,
    PACKS_DIR,
    PolicyInfo,
    available_packs,
    load_pack,
    load_schema,
    schema_text,
)
from facegate.policy.model import Decision, PolicyRequest
from facegate.policy.obligations import describe

# The same values as facegate.cli's EXIT_* (not imported: facegate.cli imports this module).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 3


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``policy`` (``test``, ``explain``, ``list``, ``schema``) to the subparsers ``sub``."""
    policy = sub.add_parser("policy", help="test, explain and list the Cedar policy packs")
    actions = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")

    def packs_dir_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--packs-dir", type=Path, default=PACKS_DIR, help="directory of policy packs"
        )

    test = actions.add_parser("test", help="run packs' ALLOW/DENY request fixtures")
    test.add_argument("packs", nargs="*", metavar="PACK", help="packs to test (default: all)")
    packs_dir_option(test)
    test.set_defaults(func=cmd_policy_test)

    explain = actions.add_parser(
        "explain", help="decide one request and say why, or show a stored decision"
    )
    which = explain.add_mutually_exclusive_group(required=True)
    which.add_argument("--request", type=Path, metavar="FILE.json")
    which.add_argument(
        "--decision", metavar="DEC_ID", help="a decision the server made (x-facegate-decision-id)"
    )
    explain.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (FACEGATE_DATA_DIR, ./var)"
    )
    explain.add_argument(
        "--packs",
        type=_pack_list,
        default=DEFAULT_PACKS,
        help=f"comma-separated packs besides base (default: {','.join(DEFAULT_PACKS)})",
    )
    packs_dir_option(explain)
    explain.set_defaults(func=cmd_policy_explain)

    listing = actions.add_parser("list", help="list packs and their policies")
    listing.add_argument("--source", action="store_true", help="print each policy's text")
    packs_dir_option(listing)
    listing.set_defaults(func=cmd_policy_list)

    schema = actions.add_parser(
        "schema", help="print the Cedar schema policies are validated against (with the actions)"
    )
    schema.set_defaults(func=cmd_policy_schema)


def _pack_list(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _fail(exc: Exception) -> int:
    print(f"facegate: {exc}", file=sys.stderr)
    return EXIT_BAD_INPUT


def cmd_policy_test(args: argparse.Namespace, out: TextIO) -> int:
    packs_dir: Path = args.packs_dir
    try:
        packs = list(args.packs) or list(available_packs(packs_dir))
        total = failed = 0
        for pack in packs:
            engines = [
                PolicyEngine.load(names, packs_dir) for names in pack_sets(pack, DEFAULT_PACKS)
            ]
            fixtures = pack_fixtures(pack, packs_dir)
            if not fixtures:
                out.write(f"{pack}: FAIL no fixtures (add ALLOW/*.json and DENY/*.json)\n")
                total, failed = total + 1, failed + 1
                continue
            for engine in engines:
                out.write(f"{' + '.join(engine.packs)}\n")
                width = max(len(f.name) for f in fixtures)
                for fixture in fixtures:
                    decision = engine.decide(fixture.request)
                    problem = check(fixture, decision)
                    total += 1
                    failed += bool(problem)
                    verdict = "FAIL" if problem else "PASS"
                    line = f"  {verdict}  {fixture.name:<{width}}  {_summary(decision)}"
                    out.write(line + (f"\n        {problem}" if problem else "") + "\n")
    except (PolicyLoadError, FixtureError) as exc:
        return _fail(exc)
    out.write(f"{total} checks, {total - failed} passed, {failed} failed\n")
    return EXIT_FAILED if failed or not total else EXIT_OK


def _summary(decision: Decision) -> str:
    verdict = "Allow" if decision.allowed else "Deny "
    why = list(decision.policy_ids) or (["(error)"] if decision.errors else ["(default deny)"])
    obliges = "" if decision.obligations.empty else f"  [{describe(decision.obligations)}]"
    return f"{verdict}  {', '.join(why)}{obliges}"


def cmd_policy_explain(args: argparse.Namespace, out: TextIO) -> int:
    if args.decision is not None:
        return explain_stored(args, out)
    try:
        request = request_from_json(read_json(args.request), str(args.request))
        engine = PolicyEngine.load(args.packs, args.packs_dir)
    except (PolicyLoadError, FixtureError) as exc:
        return _fail(exc)
    decision = engine.decide(request)
    out.write(explain_text(engine, request, decision))
    return EXIT_OK if decision.allowed else EXIT_FAILED


def explain_text(engine: PolicyEngine, request: PolicyRequest, decision: Decision) -> str:
    """The ``policy explain`` report for one decided request."""
    org = request.principal.organisation
    ctx = request.context
    where = ", ".join(x for x in (org.sector, org.country, org.region, org.city) if x)
    resource = (
        f"collection {request.resource.collection_id!r} of {request.resource.organisation_id!r}"
        if request.resource
        else "the service"
    )
    flags = [f for f, on in (("realtime", ctx.realtime), ("exigent", ctx.exigent)) if on]
    refs = [
        f"{name} {value!r}"
        for name, value in (
            ("case", ctx.case_ref),
            ("authorisation", ctx.authorization_ref),
            ("consent", ctx.consent_ref),
            ("camera", ctx.camera),
        )
        if value
    ]
    lines = [
        f"decision     {'ALLOW' if decision.allowed else 'DENY'}  ({decision.decision_id})",
        f"packs        {', '.join(engine.packs)}",
        f"principal    key {request.principal.key_id} of {org.name!r} ({where}), "
        f"use case {request.principal.use_case}",
        f"request      {request.action} on {resource}",
        f"context      purpose {ctx.purpose} at {ctx.now.isoformat()}"
        + "".join(f", {item}" for item in [*flags, *refs]),
    ]
    if decision.determining:
        lines.append("determining")
        for ref in decision.determining:
            lines.append(f"  {ref.effect} {ref.policy_id}  [pack {ref.pack}]")
            if ref.reason:
                lines.append(f"    reason: {ref.reason}")
            lines.append(f"    source: {ref.source}")
            obligations = engine.policy(ref.policy_id).obligations
            if not obligations.empty:
                lines.append(f"    obliges: {describe(obligations)}")
    elif not decision.allowed and not decision.errors:
        lines.append("determining  none: no permit applied (default deny)")
    lines.append(f"obligations  {describe(decision.obligations)}")
    lines.append(f"errors       {'; '.join(decision.errors) if decision.errors else 'none'}")
    lines.append(f"evaluated in {decision.eval_ms:.3f} ms")
    return "\n".join(lines) + "\n"


def cmd_policy_list(args: argparse.Namespace, out: TextIO) -> int:
    packs_dir: Path = args.packs_dir
    try:
        schema = load_schema()
        names = sorted(available_packs(packs_dir), key=_list_order)
        loaded = [load_pack(name, packs_dir, schema) for name in names]
    except PolicyLoadError as exc:
        return _fail(exc)
    for pack in loaded:
        out.write(f"{pack.name}{_status(pack.name)}\n  {_title(pack.path.parent)}\n")
        out.write(_policy_lines(pack.policies, args.source))
    out.write(f"{len(loaded)} packs, {sum(len(p.policies) for p in loaded)} policies\n")
    return EXIT_OK


def cmd_policy_schema(args: argparse.Namespace, out: TextIO) -> int:
    """The whole Cedar schema: entity and context types, and the actions with their groups as
    generated from the table of operations."""
    try:
        out.write(schema_text())
    except PolicyLoadError as exc:
        return _fail(exc)
    return EXIT_OK


def _list_order(name: str) -> tuple[int, str]:
    """base first, then the default packs, then the rest by name."""
    if name == BASE_PACK:
        return (0, "")
    return (1, name) if name in DEFAULT_PACKS else (2, name)


def _status(name: str) -> str:
    if name == BASE_PACK:
        return " (always active)"
    return " (active by default)" if name in DEFAULT_PACKS else ""


def _title(pack_dir: Path) -> str:
    readme = pack_dir / "README.md"
    try:
        first = readme.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError):
        return "(no README.md)"
    # "# name: what it encodes (active by default)" -> "what it encodes"
    title = first.lstrip("#").strip().removeprefix(f"{pack_dir.name}:").strip()
    return re.sub(r"\s*\((always active|active by default)\)$", "", title)


def _policy_lines(policies: Sequence[PolicyInfo], source: bool) -> str:
    lines = []
    for info in policies:
        lines.append(f"  {info.effect:<6} {info.policy_id}")
        if info.reason:
            lines.append(f"           reason: {info.reason}")
        if not info.obligations.empty:
            lines.append(f"           obliges: {describe(info.obligations)}")
        lines.append(f"           source: {info.source}")
        if source:
            lines.extend(f"           | {text}" for text in info.text.splitlines())
    return "\n".join(lines) + "\n"


def explain_stored(args: argparse.Namespace, out: TextIO) -> int:
    """``policy explain --decision ID``: a decision the server stored, with the reasons and
    sources of its policies as the server's configured packs give them now."""
    from facegate.config import Settings
    from facegate.services import load_policy
    from facegate.store.db import open_database
    from facegate.store.decisions import DecisionRepository

    settings = Settings.from_env(data_dir=args.data_dir)
    if settings.database_url is None and not settings.database_path.exists():
        return _fail(FileNotFoundError(f"{settings.database_path}: no database (use --data-dir)"))
    db = open_database(settings.database_path, settings.database_url)
    try:
        record = DecisionRepository(db).get(args.decision)
    finally:
        db.close()
    if record is None:
        return _fail(LookupError(f"no decision {args.decision} in {settings.database_name}"))
    try:
        engine: PolicyEngine | None = load_policy(settings)
    except PolicyLoadError:
        engine = None
    known = {info.policy_id: info for info in engine.policies()} if engine else {}
    when = iso_seconds(record.at)
    lines = [
        f"decision    {record.decision_id}  {'ALLOW' if record.allowed else 'DENY'}  at {when}",
        f"request     {record.operation} on {record.resource or '(no collection)'} by key "
        f"{record.access_key_id} of {record.org_id}, purpose {record.purpose}",
    ]
    if record.policy_ids:
        lines.append("policies")
        for policy_id in record.policy_ids:
            info = known.get(policy_id)
            lines.append(
                f"  {policy_id}" + (f"  ({info.effect}, pack {info.pack})" if info else "")
            )
            if info is not None and info.annotations.get("reason"):
                lines.append(f"      reason: {info.annotations['reason']}")
            if info is not None and info.annotations.get("source"):
                lines.append(f"      source: {info.annotations['source']}")
    elif not record.allowed:
        lines.append("policies    none permitted the request (default deny)")
    lines += [f"error       {e}" for e in record.errors]
    obligations = {k: v for k, v in record.obligations.items() if v not in (None, [], 0)}
    if obligations:
        lines.append("obligations " + ", ".join(f"{k}={v}" for k, v in sorted(obligations.items())))
    if record.review_id:
        lines.append(f"review      {record.review_id}")
    out.write("\n".join(lines) + "\n")
    return EXIT_OK if record.allowed else EXIT_FAILED
