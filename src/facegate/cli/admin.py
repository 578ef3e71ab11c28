"""``facegate operators|org|review``: operator accounts, organisations and human review.

These commands work on the data directory's database directly (like ``facegate keys``), so
they run with or without a server. Whoever can run ``operators`` and ``org`` on the data
directory is its administrator (they can read the master key too); ``review`` is different: it
acts for one person, authenticated by their own operator token, exactly as the admin API does
(:func:`facegate.admin.auth.authenticate`), so nobody can vote in someone else's name and the
two-person rule cannot be bypassed from the command line.

* ``operators create ID --name NAME --role admin|reviewer|auditor`` prints the new token
  once; ``operators list``; ``operators disable ID``; ``operators set-password ID
  [--password-stdin]`` sets the console password (scrypt hash stored; sessions end).
* ``org create ID --name NAME --sector SECTOR --use-case X [--use-case Y] [--country US
  --region US-WA --city seattle]``; ``org list``; ``org show ID``; ``org disable ID``.
* ``review list [--status pending]``; ``review show ID``; ``review confirm ID --note TEXT``;
  ``review reject ID --note TEXT``; ``review rotate-token`` replaces your own token (printed
  once), so that nobody else knows it. The token comes from ``--token-file FILE`` or the
  ``FACEGATE_OPERATOR_TOKEN`` environment variable (never from an argument: command lines are
  visible to other users of the machine).

Operators created here are created by ``cli``, the data directory's administrator, who is not an
operator account: the rule that a reviewer's confirmation does not count with one from an account
the same operator controls (:mod:`facegate.store.reviews`) concerns operator accounts, and
whoever runs these commands can change the store directly anyway.

Errors print one line on stderr and exit 3 (as ``facegate``'s other commands).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from facegate.admin import views
from facegate.admin.auth import REVIEWERS, authenticate, read_token_file, require_role
from facegate.admin.service import REVIEW_STATUSES, AdminService
from facegate.audit.record import EventRecord, EventSink
from facegate.config import Settings
from facegate.engine.matching import MatcherSet
from facegate.engine.pool import EnginePool
from facegate.errors import InvalidParameterException
from facegate.governance import Registry
from facegate.services import served_models
from facegate.store.db import StoreDatabase, open_database
from facegate.store.decisions import DecisionRepository
from facegate.store.keys import KeyRepository
from facegate.store.model_audits import ModelAuditRepository
from facegate.store.operators import ROLES, OperatorRecord, OperatorRepository
from facegate.store.orgs import OrganisationRecord, OrganisationRepository
from facegate.store.outbox import AuditOutbox
from facegate.store.reviews import ReviewRepository
from facegate.wire.keys import KeyService, load_master_key

# The same values as facegate.cli's EXIT_* (not imported: facegate.cli imports this module).
EXIT_OK = 0
EXIT_BAD_INPUT = 3
TOKEN_ENV = "FACEGATE_OPERATOR_TOKEN"  # noqa: S105 (a variable name, not a password)

if TYPE_CHECKING:  # subscriptable for type checkers only
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def register(sub: Sub) -> None:
    """Add ``operators``, ``org`` and ``review`` to the subparsers ``sub``."""
    _operators(sub)
    _org(sub)
    _review(sub)


def _data_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (FACEGATE_DATA_DIR, ./var)"
    )


def _format_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")


def _operators(sub: Sub) -> None:
    p = sub.add_parser("operators", help="manage operator accounts (admin API, human review)")
    actions = p.add_subparsers(dest="operators_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create an operator; prints the token once")
    create.add_argument("operator_id", metavar="ID")
    create.add_argument("--name", required=True, help="the person's name")
    create.add_argument("--role", required=True, choices=ROLES)
    listing = actions.add_parser("list", help="list operators (never tokens)")
    _format_option(listing)
    disable = actions.add_parser("disable", help="disable an operator (the token stops working)")
    disable.add_argument("operator_id", metavar="ID")
    password = actions.add_parser(
        "set-password", help="set an operator's console password (prompted, or from stdin)"
    )
    password.add_argument("operator_id", metavar="ID")
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    for action in (create, listing, disable, password):
        _data_option(action)
    p.set_defaults(func=cmd_operators)


def _org(sub: Sub) -> None:
    p = sub.add_parser("org", help="register and manage organisations")
    actions = p.add_subparsers(dest="org_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="register an organisation")
    create.add_argument("org_id", metavar="ID")
    create.add_argument("--name", required=True)
    create.add_argument("--sector", required=True, help="law_enforcement, ngo, commercial, ...")
    create.add_argument(
        "--use-case", action="append", required=True, dest="use_cases", help="repeatable"
    )
    create.add_argument("--country", default="", help="ISO 3166-1 alpha-2, e.g. US")
    create.add_argument("--region", default="", help="ISO 3166-2, e.g. US-WA")
    create.add_argument("--city", default="", help="lower case, e.g. seattle")
    listing = actions.add_parser("list", help="list organisations")
    _format_option(listing)
    show = actions.add_parser("show", help="an organisation and its keys")
    show.add_argument("org_id", metavar="ID")
    _format_option(show)
    disable = actions.add_parser("disable", help="disable an organisation (its keys stop)")
    disable.add_argument("org_id", metavar="ID")
    for action in (create, listing, show, disable):
        _data_option(action)
    p.set_defaults(func=cmd_org)


def _review(sub: Sub) -> None:
    p = sub.add_parser("review", help="human review of held results (operator token needed)")
    actions = p.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="reviews, newest first")
    listing.add_argument("--status", choices=[*REVIEW_STATUSES, "all"], default="pending")
    listing.add_argument("--limit", type=int, default=50)
    _format_option(listing)
    show = actions.add_parser("show", help="a review, its votes and held candidates")
    show.add_argument("review_id", metavar="ID")
    _format_option(show)
    votes = []
    for verdict in ("confirm", "reject"):
        vote = actions.add_parser(verdict, help=f"{verdict} the held results, with a note")
        vote.add_argument("review_id", metavar="ID")
        vote.add_argument("--note", required=True, help="what you checked, or why you reject")
        votes.append(vote)
    rotate = actions.add_parser(
        "rotate-token", help="replace your own token (printed once; the old one stops working)"
    )
    for action in (listing, show, *votes, rotate):
        _data_option(action)
        action.add_argument(
            "--token-file",
            type=Path,
            default=None,
            help=f"file holding your operator token (default: ${TOKEN_ENV})",
        )
    p.set_defaults(func=cmd_review)


@contextmanager
def open_admin(args: argparse.Namespace) -> Iterator[AdminService]:
    """The admin service over the data directory's database (no engine, no server)."""
    with admin_for(Settings.from_env(data_dir=getattr(args, "data_dir", None))) as admin:
        yield admin


@contextmanager
def admin_for(settings: Settings, actor: str = "cli") -> Iterator[AdminService]:
    """The admin service over ``settings``' database; its audit events go to the outbox."""
    db = open_database(settings.database_path, settings.database_url)
    try:
        keys = KeyService(
            KeyRepository(db), load_master_key(settings.data_dir, settings.master_key)
        )
        yield AdminService(
            registry=Registry(OrganisationRepository(db), keys),
            operators=OperatorRepository(db),
            reviews=ReviewRepository(db),
            decisions=DecisionRepository(db),
            clock=time.time,
            events=outbox_sink(db),
            actor=actor,
            model_audits=ModelAuditRepository(db),
            active_model=active_model(settings),
            served_models=_served_models(settings),
            gate=settings.gate,
            cooling_off_s=settings.review_cooling_off_s,
        )
    finally:
        db.close()


def active_model(settings: Settings) -> tuple[str, str]:
    """The versions the server started with ``settings`` uses (as ``Services.active_model``),
    without starting an engine: the pool names its model without loading it; the default
    descriptor model is ``FACEGATE_FACE_MODEL`` when it names another."""
    dlib = EnginePool(settings.engine, workers=1).model_version
    if not settings.face_model or settings.face_model == dlib:
        return dlib, settings.engine.matcher.version
    try:
        matcher = _matchers(settings).for_model(settings.face_model)
    except (KeyError, ValueError):  # the server refuses to start with it: nothing to audit
        return settings.face_model, ""
    return settings.face_model, matcher.version


def _matchers(settings: Settings) -> MatcherSet:
    return MatcherSet(
        settings.engine.registry(),
        settings.engine.matcher,
        "cohort" if settings.engine.matcher.normalised else "none",
    )


def _served_models(settings: Settings) -> tuple[tuple[str, str], ...]:
    """The descriptor models a server with ``settings`` serves collections with (as
    ``Services.served_models``), without starting an engine."""
    return served_models(_matchers(settings))


def outbox_sink(db: StoreDatabase) -> EventSink:
    """Event records of commands run beside the server: queued in the database's audit outbox,
    moved into the audit chain by the server (it is the chain's only writer)."""
    outbox = AuditOutbox(db)

    def put(record: EventRecord) -> None:
        outbox.put(record.to_json(), record.at)

    return put


def _json(doc: Any, out: TextIO) -> None:
    json.dump(doc, out, indent=2)
    out.write("\n")


def _read_password(from_stdin: bool) -> str:
    """The new password: the first line of stdin, or typed twice at a prompt (not echoed)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New console password: ")
    if getpass.getpass("Again: ") != first:
        raise InvalidParameterException("The two passwords differ.")
    return first


def cmd_operators(args: argparse.Namespace, out: TextIO) -> int:
    with open_admin(args) as admin:
        if args.operators_command == "create":
            record, token = admin.create_operator(args.operator_id, args.name, args.role)
            out.write(
                f"operator: {record.operator_id} ({record.display_name}), role {record.role}\n"
                f"token:    {token}\n"
                "The token is shown only now; give it to the operator over a safe channel.\n"
                f"They use it as 'Authorization: Bearer <token>' or in ${TOKEN_ENV}.\n"
            )
        elif args.operators_command == "list":
            records = admin.operator_list()
            if args.format == "json":
                _json([views.operator(r) for r in records], out)
            for r in records if args.format == "table" else ():
                state = "active" if r.active else "disabled"
                out.write(f"{r.operator_id:<24} {r.role:<9} {state:<9} {r.display_name}\n")
        elif args.operators_command == "set-password":
            admin.set_password(args.operator_id, _read_password(args.password_stdin))
            out.write(
                f"console password set for {args.operator_id}; their console sessions ended\n"
            )
        else:
            admin.disable_operator(args.operator_id)
            out.write(f"disabled operator {args.operator_id} (the token no longer works)\n")
    return EXIT_OK


def _org_line(org: OrganisationRecord) -> str:
    where = "/".join(x for x in (org.country, org.region, org.city) if x) or "-"
    state = "active" if org.active else "disabled"
    return (
        f"{org.org_id:<24} {state:<9} {org.sector:<16} {where:<22} "
        f"{','.join(org.use_cases):<30} {org.name}\n"
    )


def cmd_org(args: argparse.Namespace, out: TextIO) -> int:
    with open_admin(args) as admin:
        if args.org_command == "create":
            org = admin.create_org(
                args.org_id,
                name=args.name,
                sector=args.sector,
                use_cases=tuple(args.use_cases),
                country=args.country,
                region=args.region,
                city=args.city,
            )
            out.write("registered " + _org_line(org))
        elif args.org_command == "list":
            orgs = admin.orgs()
            if args.format == "json":
                _json([views.org(o) for o in orgs], out)
            else:
                out.writelines(_org_line(o) for o in orgs)
        elif args.org_command == "show":
            org = admin.org(args.org_id)
            keys = admin.keys(args.org_id)
            now = time.time()
            if args.format == "json":
                _json({**views.org(org), "keys": [views.key(k, now) for k in keys]}, out)
            else:
                out.write(_org_line(org))
                for k in keys:
                    state = views.key_state(k, now)
                    out.write(
                        f"  key {k.access_key_id}  {state:<8} {k.use_case:<22} {k.description}\n"
                    )
        else:
            admin.disable_org(args.org_id)
            out.write(f"disabled organisation {args.org_id} (its keys no longer work)\n")
    return EXIT_OK


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file is not None:
        try:
            return read_token_file(args.token_file)
        except (OSError, ValueError) as exc:
            print(f"facegate: {args.token_file}: cannot read the token: {exc}", file=sys.stderr)
            return None
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        print(
            f"facegate: review needs your operator token: set {TOKEN_ENV} or use --token-file",
            file=sys.stderr,
        )
        return None
    return token


def cmd_review(args: argparse.Namespace, out: TextIO) -> int:
    token = _token(args)
    if token is None:
        return EXIT_BAD_INPUT
    with open_admin(args) as admin:
        operator = authenticate(admin.operators, token)
        if args.review_command == "rotate-token":  # any role: it is their own credential
            record, new = admin.as_actor(operator.operator_id).rotate_own_token(operator)
            out.write(
                f"new token for {record.operator_id}: {new}\n"
                "It is shown only now; the old token no longer works.\n"
            )
            return EXIT_OK
        require_role(operator, REVIEWERS, "review held results")
        return _review_action(admin, operator, args, out)


def _review_action(
    admin: AdminService, operator: OperatorRecord, args: argparse.Namespace, out: TextIO
) -> int:
    now = time.time()
    if args.review_command == "list":
        if not 1 <= args.limit <= 1000:
            print("facegate: --limit must be between 1 and 1000", file=sys.stderr)
            return EXIT_BAD_INPUT
        status = None if args.status == "all" else args.status
        reviews = [views.review(r, now) for r in admin.review_list(status, args.limit)]
        if args.format == "json":
            _json(reviews, out)
        for r in reviews if args.format == "table" else ():
            out.write(
                f"{r['review_id']}  {r['status']:<8} {r['operation']:<20} {r['org_id']:<20} "
                f"{r['confirmations']}/{r['reviewers_required']} confirmed  "
                f"{r['candidates']} candidate(s)  {r['created_at']}\n"
            )
        return EXIT_OK
    if args.review_command == "show":
        doc = views.review_detail(admin.review(args.review_id), now)
    else:
        detail = admin.vote(args.review_id, operator, args.review_command, args.note)
        doc = views.review_detail(detail, now)
    if getattr(args, "format", "table") == "json":
        _json(doc, out)
    else:
        _review_text(doc, out)
    return EXIT_OK


def _review_text(doc: views.ReviewDetailDoc, out: TextIO) -> None:
    out.write(
        f"review {doc['review_id']}: {doc['status']} "
        f"({doc['confirmations']} of {doc['reviewers_required']} confirmations)\n"
        f"  {doc['operation']} by organisation {doc['org_id']} (key {doc['access_key_id']}), "
        f"decision {doc['decision_id']}, expires {doc['expires_at']}\n"
    )
    request = doc.get("request")
    if request:
        out.write(
            f"  collection {request['collection_id']}  purpose {request['purpose']}  "
            f"policies {', '.join(request['policy_ids'])}\n"
        )
    for c in doc["held_candidates"]:
        similarity = "-" if c["similarity_pct"] is None else f"{c['similarity_pct']:.2f}"
        out.write(
            f"  candidate {c['kind']:<5} similarity {similarity:>6}  face {c['face_id'] or '-'}  "
            f"user {c['user_id'] or '-'}  image {c['external_image_id'] or '-'}\n"
        )
    for v in doc["votes"]:
        out.write(f"  vote {v['verdict']:<7} by {v['operator_id']} at {v['at']}: {v['note']}\n")
