"""``facegate audit verify --anchors``: two servers' chains anchored in the SQLite store of the
first data directory, as the server wires it (``services.anchor_checkpoints``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from facegate.audit.anchors import anchor_hash
from facegate.audit.log import AuditLog
from facegate.audit.signing_key import key_id, load_signing_key
from facegate.cli import main
from facegate.services import anchor_checkpoints
from facegate.store.anchors import AnchorRepository
from facegate.store.db import Database
from tests.audit.conftest import request_record


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["audit", "verify", *argv], out)
    return code, out.getvalue()


@pytest.fixture
def servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Data directories a (holding the store) and b, 12 records each, anchored."""
    monkeypatch.delenv("FACEGATE_DATABASE_URL", raising=False)
    monkeypatch.delenv("FACEGATE_AUDIT_KEY", raising=False)
    a, b = tmp_path / "a", tmp_path / "b"
    db = Database(a / "facegate.sqlite3")
    logs = []
    for data in (a, b):
        key = load_signing_key(data, None)
        anchor = anchor_checkpoints(AnchorRepository(db, anchor_hash), key_id(key.public_key()))
        logs.append(AuditLog.open(data / "audit", key, checkpoint_every=4, on_checkpoint=anchor))
    for i in range(24):
        logs[i % 2].append(request_record(i))
    for log in logs:
        log.close()
    db.close()
    return a, b


def test_two_anchored_servers_verify(servers: tuple[Path, Path]) -> None:
    a, b = servers
    code, text = run("--anchors", "--data-dir", str(a), "--data-dir", str(b))
    assert code == 0, text
    assert text.splitlines()[-1].startswith("OK           6 anchors over 2 chain(s)")
    code, text = run("--anchors", "--data-dir", str(a), "--data-dir", str(b), "--format", "json")
    doc = json.loads(text)
    assert code == 0
    assert doc["ok"]
    assert doc["anchors"] == 6
    assert len(doc["chains"]) == 2
    assert sorted(doc["per_server"].values()) == [3, 3]


def test_a_truncated_chain_or_a_missing_server_is_broken(servers: tuple[Path, Path]) -> None:
    a, b = servers
    code, text = run("--anchors", "--data-dir", str(a))
    assert code == 1
    assert "unknown server" in text
    assert text.splitlines()[-1].startswith("BROKEN")
    segment = b / "audit" / "segment-000001.jsonl"
    segment.write_bytes(b"".join(segment.read_bytes().splitlines(keepends=True)[:5]))
    code, text = run("--anchors", "--data-dir", str(a), "--data-dir", str(b), "--format", "json")
    doc = json.loads(text)
    assert code == 1
    assert not doc["ok"]
    assert {p["kind"] for p in doc["problems"]} == {"checkpoint missing"}
    assert [c["ok"] for c in doc["chains"]] == [True, False]  # HEAD.json says truncated, too


def test_bad_input(servers: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = servers
    assert run("--data-dir", str(a), "--data-dir", str(b))[0] == 3  # two chains need --anchors
    assert run("--anchors", "--data-dir", str(a), "--data-dir", str(tmp_path / "none"))[0] == 3
    assert run("--anchors", "--data-dir", str(b))[0] == 3  # no database in b
    key = a / "audit" / "public.key"
    assert (
        run("--anchors", "--data-dir", str(a), "--data-dir", str(b), "--public-key", str(key))[0]
        == 3
    )  # one key for two chains
    assert run("--anchors", "--data-dir", str(a), "--data-dir", str(a))[0] == 3  # same key twice
