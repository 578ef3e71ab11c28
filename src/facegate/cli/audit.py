"""``facegate audit verify|pubkey``: check the tamper-evident audit log and publish its key.

* ``audit verify [--data-dir D] [--public-key FILE] [--format table|json]`` walks every segment,
  link, checkpoint signature and ``HEAD.json`` (see :mod:`facegate.audit.verify`) and prints
  counts, the time range, warnings (the unsigned tail) and the result. Exit 0 if the log
  verifies, 1 if it is broken (the first problem on one line: kind, segment file, line, seq),
  3 if the input is unusable (no audit directory, no or malformed public key).
  ``--public-key`` takes a trusted copy (``facegate audit pubkey > trusted.pub`` on a day you
  trust); without it the ``public.key`` inside the audit directory is used, which someone able
  to rewrite the log could replace too, and the output says which was used.
* ``audit verify --anchors --data-dir A --data-dir B ... [--public-key FILE ...]`` checks the
  anchor chain in the store (``FACEGATE_DATABASE_URL``, else the SQLite file of the first data
  directory) against the audit chains of the servers whose data directories are given (see
  :mod:`facegate.cli.audit_anchors`). Same output formats and exit codes.
* ``audit pubkey [--data-dir D]`` prints the signing key's public half as one base64 line (the
  ``public.key`` format) on stdout and its key id on stderr; it never creates a key.
* ``audit head [--data-dir D] [--public-key FILE] [--export [FILE]]`` verifies the log and
  prints its head: the last checkpoint as a signed head statement
  (:mod:`facegate.audit.head`). ``--export FILE`` writes the statement to FILE (``-`` or no
  FILE: stdout, the statement alone). Keep it where whoever holds the data directory cannot
  change it; ``audit verify --trusted-head FILE`` (repeatable) then fails (exit 1,
  ``rollback`` or ``trusted head mismatch``) unless the log still holds it. Without a
  trusted head, exit 0 means the log is consistent up to its last seq, NOT that it was not
  rolled back to an earlier signed state: the verdict line says so.

The data directory is ``--data-dir``, else ``FACEGATE_DATA_DIR``, else ``./var``; the log is in
its ``audit/`` folder; the signing key comes from ``FACEGATE_AUDIT_KEY`` or
``audit-signing.key``.

Extending: ``register(sub)`` returns the ``audit`` command's own subparsers object, so further
actions are added with ``actions.add_parser(...)``; :func:`data_dir_option` adds the shared
``--data-dir`` option and :func:`audit_dir` turns the parsed arguments into the audit directory.
Handlers take ``(args, out)`` and return the exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from facegate.audit.errors import AuditKeyError, AuditReadError
from facegate.audit.head import HeadStatement
from facegate.audit.layout import PUBLIC_KEY_NAME
from facegate.audit.signing_key import key_id, public_key_text, read_public_key, read_signing_key
from facegate.audit.verify import VerifyResult, verify
from facegate.config import Settings
from facegate.isotime import iso_seconds

# The same values as facegate.cli's EXIT_* (not imported: facegate.cli imports this module).
EXIT_OK = 0
EXIT_BROKEN = 1
EXIT_BAD_INPUT = 3


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add ``audit`` (with ``verify`` and ``pubkey``) to ``sub``; return the ``audit``
    command's subparsers so more actions (``query``, ``report``) can be added to it."""
    audit = sub.add_parser("audit", help="verify the tamper-evident audit log")
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    check = actions.add_parser(
        "verify", help="check every record, link, checkpoint signature and HEAD.json"
    )
    check.add_argument(
        "--data-dir",
        type=Path,
        action="append",
        dest="data_dirs",
        default=None,
        help="data directory (FACEGATE_DATA_DIR, ./var); with --anchors, once per server",
    )
    check.add_argument(
        "--public-key",
        type=Path,
        action="append",
        dest="public_keys",
        default=None,
        metavar="FILE",
        help="a trusted copy of the public key (default: public.key in the audit directory); "
        "with --anchors, once per --data-dir, in the same order",
    )
    check.add_argument(
        "--anchors",
        action="store_true",
        help="also check the store's anchor chain across the servers' audit chains",
    )
    check.add_argument(
        "--trusted-head",
        type=Path,
        action="append",
        dest="trusted_heads",
        default=None,
        metavar="FILE",
        help="a head statement kept elsewhere (facegate audit head --export): the log must "
        "still hold it, or it was cut short or rolled back; repeatable",
    )
    check.add_argument("--format", choices=["table", "json"], default="table")
    check.set_defaults(func=cmd_audit_verify)

    head = actions.add_parser(
        "head", help="verify the log and print its head, to pin it outside the machine"
    )
    data_dir_option(head)
    head.add_argument(
        "--public-key", type=Path, default=None, metavar="FILE", help="a trusted public key"
    )
    head.add_argument(
        "--export",
        nargs="?",
        const="-",
        default=None,
        metavar="FILE",
        help="write the signed head statement to FILE (no FILE or '-': stdout)",
    )
    head.set_defaults(func=cmd_audit_head)

    pubkey = actions.add_parser("pubkey", help="print the public key checkpoints are signed with")
    data_dir_option(pubkey)
    pubkey.set_defaults(func=cmd_audit_pubkey)
    return actions


def data_dir_option(parser: argparse.ArgumentParser) -> None:
    """The ``--data-dir`` option, as the other commands spell it."""
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (FACEGATE_DATA_DIR, ./var)"
    )


def settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with ``--data-dir`` (if given) winning."""
    return Settings.from_env(data_dir=getattr(args, "data_dir", None))


def audit_dir(args: argparse.Namespace) -> Path:
    """The audit directory: ``<data dir>/audit``, the data directory being ``--data-dir``, else
    ``FACEGATE_DATA_DIR``, else ``./var``."""
    return settings(args).audit_dir


def bad_input(message: str) -> int:
    """Print ``message`` as facegate's one-line error and return :data:`EXIT_BAD_INPUT`."""
    print(f"facegate: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def cmd_audit_verify(args: argparse.Namespace, out: TextIO) -> int:
    data_dirs: list[Path] = args.data_dirs or []
    public_keys: list[Path] = args.public_keys or []
    if args.anchors:
        from facegate.cli.audit_anchors import cmd_verify_anchors

        return cmd_verify_anchors(data_dirs, public_keys, args.format, out)
    if len(data_dirs) > 1 or len(public_keys) > 1:
        return bad_input("several --data-dir or --public-key options need --anchors")
    args.data_dir = data_dirs[0] if data_dirs else None
    directory = audit_dir(args)
    trusted = bool(public_keys)
    key_path: Path = public_keys[0] if trusted else directory / PUBLIC_KEY_NAME
    if not directory.is_dir():
        return bad_input(f"{directory}: no audit log here (use --data-dir)")
    if not trusted and not key_path.exists():
        return bad_input(f"{key_path}: no public key (pass --public-key FILE)")
    try:
        heads = tuple(read_head_statement(path) for path in args.trusted_heads or ())
        public_key = read_public_key(key_path)
        result = verify(directory, public_key, heads)
    except (AuditKeyError, AuditReadError) as exc:
        return bad_input(str(exc))
    source = {"path": str(key_path), "trusted_copy": trusted, "key_id": key_id(public_key)}
    if args.format == "json":
        json.dump({**result.to_json(), "public_key": source}, out, indent=2)
        out.write("\n")
    else:
        out.write(verify_table(result, key_path, trusted))
    return EXIT_OK if result.ok else EXIT_BROKEN


def read_head_statement(path: Path) -> HeadStatement:
    """A head statement file (raises :class:`AuditReadError` naming the file)."""
    try:
        return HeadStatement.parse(path.read_bytes())
    except OSError as exc:
        raise AuditReadError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise AuditReadError(f"{path}: not a head statement: {exc}") from exc


def cmd_audit_head(args: argparse.Namespace, out: TextIO) -> int:
    directory = audit_dir(args)
    key_path: Path = args.public_key or directory / PUBLIC_KEY_NAME
    if not directory.is_dir():
        return bad_input(f"{directory}: no audit log here (use --data-dir)")
    try:
        result = verify(directory, read_public_key(key_path))
    except (AuditKeyError, AuditReadError) as exc:
        return bad_input(str(exc))
    if not result.ok:
        print(f"facegate: the log does not verify: {result.problem}", file=sys.stderr)
        return EXIT_BROKEN
    statement = result.head_statement()
    if statement is None:
        return bad_input(f"{directory}: no checkpoint yet (the server writes one within 60 s)")
    if args.export is not None and args.export != "-":
        Path(args.export).write_bytes(statement.to_bytes())
    if args.export == "-":
        out.write(statement.to_bytes().decode("ascii"))
    else:
        out.write(
            f"head         seq {statement.seq}, hash {statement.hash}\n"
            f"checkpoint   seq {statement.checkpoint_seq} at {_time(statement.at)}, key id "
            f"{statement.key_id}\n"
            + (f"written to   {args.export}\n" if args.export is not None else "")
            + "keep it      where whoever holds this data directory cannot change it (it "
            "holds the signing key); later: facegate audit verify --trusted-head FILE\n"
        )
        if args.export is None:
            out.write(statement.to_bytes().decode("ascii"))
    if result.unsigned_tail:
        print(
            f"facegate: {result.unsigned_tail} entries after this checkpoint are not signed "
            "yet; export again after the next checkpoint to pin them",
            file=sys.stderr,
        )
    return EXIT_OK


def _time(at: float | None) -> str:
    if at is None:
        return "-"
    return iso_seconds(at)


def verify_table(result: VerifyResult, key_path: Path, trusted: bool) -> str:
    """The ``audit verify`` report; its last line is the verdict (one line)."""
    which = (
        "the trusted copy given with --public-key"
        if trusted
        else "the copy inside the audit directory; pass --public-key with a trusted copy to "
        "rule out a log re-signed with another key"
    )
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(result.kinds.items()))
    head = "none" if result.head_seq is None else f"seq {result.head_seq}"
    pinned = ", ".join(h.describe() for h in result.trusted_heads)
    lines = [
        f"audit log    {result.audit_dir}: {result.segments} segment(s), {result.entries} "
        f"entries" + (f" (seq 1..{result.last_seq})" if result.last_seq else ""),
        f"public key   {key_path} (key id {result.key_id}): {which}",
        f"records      {kinds or 'none'}",
        f"time         {_time(result.first_at)} .. {_time(result.last_at)}",
        f"checkpoints  {result.checkpoints} verified, signed up to seq {result.signed_seq}; "
        f"HEAD.json {head}",
        "trusted head "
        + (pinned or "none given: a rollback to an earlier signed state cannot be detected"),
    ]
    if result.refusals or result.open_intents:
        lines.append(
            f"requests     {result.refusals} refusals at authentication counted in aggregate "
            f"records; {result.open_intents} write intent(s) without outcome"
        )
    lines += [f"warning      {w}" for w in result.warnings]
    lines.append(
        f"speed        {result.entries} entries in {result.elapsed_s:.3f} s "
        f"({result.entries_per_s:,.0f} entries/s)"
    )
    if result.problem is None:
        tail = result.summary().removeprefix("OK ")
        lines.append(
            f"OK           {result.entries} entries: hashes, links, {result.checkpoints} "
            f"signatures and HEAD.json verify, {tail}"
        )
    else:
        lines.append(f"BROKEN       {result.problem}")
    return "\n".join(lines) + "\n"


def cmd_audit_pubkey(args: argparse.Namespace, out: TextIO) -> int:
    config = settings(args)
    root = config.data_dir
    published = config.audit_dir / PUBLIC_KEY_NAME
    try:
        signing = read_signing_key(root, config.audit_key)
        if signing is not None:
            public = signing.public_key()
            if published.exists() and public_key_text(read_public_key(published)) != (
                public_key_text(public)
            ):
                print(
                    f"facegate: warning: {published} holds a different key; the audit log "
                    "there was signed with another key",
                    file=sys.stderr,
                )
        elif published.exists():
            public = read_public_key(published)
        else:
            return bad_input(
                f"{root}: no audit signing key yet (it is created when the server first "
                "opens the audit log)"
            )
    except AuditKeyError as exc:
        return bad_input(str(exc))
    out.write(public_key_text(public) + "\n")
    print(f"key id {key_id(public)}", file=sys.stderr)
    return EXIT_OK
