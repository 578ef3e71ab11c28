"""``facegate audit verify --anchors``: one verifiable history across several servers.

``facegate audit verify --anchors --data-dir A --data-dir B ... [--public-key FILE ...]
[--format table|json]`` reads the anchor chain from the store (``FACEGATE_DATABASE_URL``, else
the SQLite database of the FIRST data directory) and checks it against the audit chains in the
given data directories' ``audit/`` folders (see :mod:`facegate.audit.anchors` for the checks).
``--public-key`` is given either not at all (each chain's own ``public.key`` is used) or once
per ``--data-dir``, in the same order (trusted copies).

Exit 0 if the anchor chain and every server chain verify, 1 if anything is broken (every
problem is listed, one per line), 3 if the input is unusable (a data directory without an audit
log, an unreadable key, two chains with one key, no database).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from facegate.audit.anchors import AnchorsResult, verify_anchors
from facegate.audit.errors import AuditKeyError, AuditReadError
from facegate.audit.layout import PUBLIC_KEY_NAME
from facegate.audit.signing_key import read_public_key
from facegate.cli.audit import EXIT_BROKEN, EXIT_OK, bad_input
from facegate.config import Settings


def cmd_verify_anchors(
    data_dirs: list[Path], public_keys: list[Path], fmt: str, out: TextIO
) -> int:
    """Run the check for ``data_dirs`` (empty: ``FACEGATE_DATA_DIR`` or ``./var`` alone) with
    ``public_keys`` (empty, or one per data directory); print as ``fmt``; return the exit code."""
    from facegate.audit.anchors import anchor_hash
    from facegate.store.anchors import AnchorRepository
    from facegate.store.db import open_database

    configs = [Settings.from_env(data_dir=d) for d in data_dirs] or [Settings.from_env()]
    if public_keys and len(public_keys) != len(configs):
        return bad_input("give --public-key once per --data-dir (same order), or not at all")
    servers: list[tuple[Path, Ed25519PublicKey]] = []
    for index, config in enumerate(configs):
        directory = config.audit_dir
        if not directory.is_dir():
            return bad_input(f"{directory}: no audit log here (check --data-dir)")
        key_path = public_keys[index] if public_keys else directory / PUBLIC_KEY_NAME
        try:
            servers.append((directory, read_public_key(key_path)))
        except AuditKeyError as exc:
            return bad_input(str(exc))
    store = configs[0]
    if store.database_url is None and not store.database_path.exists():
        return bad_input(f"{store.database_path}: no database (set FACEGATE_DATABASE_URL)")
    db = open_database(store.database_path, store.database_url)
    try:
        rows = AnchorRepository(db, anchor_hash).all()
    finally:
        db.close()
    try:
        result = verify_anchors(rows, servers)
    except (AuditReadError, ValueError) as exc:
        return bad_input(str(exc))
    if fmt == "json":
        doc = {**result.to_json(), "store": store.database_name, "trusted_keys": bool(public_keys)}
        json.dump(doc, out, indent=2)
        out.write("\n")
    else:
        out.write(anchors_table(result, store.database_name, trusted=bool(public_keys)))
    return EXIT_OK if result.ok else EXIT_BROKEN


def anchors_table(result: AnchorsResult, store: str, *, trusted: bool) -> str:
    """The ``audit verify --anchors`` report; its last line is the verdict."""
    keys = "trusted copies (--public-key)" if trusted else "public.key in each audit directory"
    lines = [f"store        {store}", f"public keys  {keys}"]
    for chain in result.chains:
        verdict = "OK" if chain.ok else f"BROKEN {chain.problem}"
        lines.append(
            f"chain        {chain.audit_dir} (key id {chain.key_id}): {chain.entries} entries, "
            f"{chain.checkpoints} checkpoints, {result.per_server.get(chain.key_id, 0)} "
            f"anchors: {verdict}"
        )
    lines.append(
        f"anchors      {result.anchors}; head seq {result.head_seq} hash {result.head_hash}"
    )
    lines += [f"warning      {w}" for w in result.warnings]
    lines += [f"problem      {p}" for p in result.problems]
    if result.ok:
        lines.append(
            f"OK           {result.anchors} anchors over {len(result.chains)} chain(s): hashes, "
            "links, checkpoints and per-server order verify"
        )
    else:
        broken = len(result.problems) + sum(1 for c in result.chains if not c.ok)
        lines.append(f"BROKEN       {broken} problem(s); see above")
    return "\n".join(lines) + "\n"
