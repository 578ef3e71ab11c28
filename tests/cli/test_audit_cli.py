"""``facegate audit verify|pubkey`` (through ``register``, as ``facegate.cli`` wires it)."""

from __future__ import annotations

import argparse
import base64
import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from facegate.audit.log import AuditLog
from facegate.audit.signing_key import key_id, load_signing_key, public_key_text
from facegate.cli import main
from facegate.cli.audit import register
from tests.audit.conftest import request_record


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="facegate")
    sub = root.add_subparsers(dest="command", required=True)
    register(sub)
    return root


def run(*argv: str) -> tuple[int, str]:
    args = parser().parse_args(["audit", *argv])
    out = io.StringIO()
    code: int = args.func(args, out)
    return code, out.getvalue()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    log = AuditLog.open(data / "audit", load_signing_key(data, None), checkpoint_every=10)
    for i in range(25):
        log.append(request_record(i))
    log.close()
    return data


def test_verify_ok_table(data_dir: Path) -> None:
    code, text = run("verify", "--data-dir", str(data_dir))
    assert code == 0, text
    lines = text.splitlines()
    assert lines[-1].startswith("OK           28 entries: hashes, links, 3 signatures")
    assert "records      checkpoint 3, request 25" in text
    assert "the copy inside the audit directory" in text
    assert "time         2025-06-15T15:06:40Z .. " in text


def test_verify_with_a_trusted_public_key(data_dir: Path, tmp_path: Path) -> None:
    trusted = tmp_path / "trusted.pub"
    code, published = run("pubkey", "--data-dir", str(data_dir))
    assert code == 0
    trusted.write_text(published)
    code, text = run("verify", "--data-dir", str(data_dir), "--public-key", str(trusted))
    assert code == 0, text
    assert f"public key   {trusted} (key id " in text
    assert "the trusted copy" in text


def test_verify_json(data_dir: Path) -> None:
    code, text = run("verify", "--data-dir", str(data_dir), "--format", "json")
    assert code == 0
    doc = json.loads(text)
    assert doc["ok"] is True
    assert doc["entries"] == 28
    assert doc["kinds"]["request"] == 25
    assert doc["public_key"]["trusted_copy"] is False


def test_verify_broken_prints_the_problem_on_one_line(data_dir: Path) -> None:
    segment = data_dir / "audit" / "segment-000001.jsonl"
    content = segment.read_bytes().splitlines(keepends=True)
    content[2] = content[2].replace(b"req-000002", b"req-000003")
    segment.write_bytes(b"".join(content))
    code, text = run("verify", "--data-dir", str(data_dir))
    assert code == 1
    assert text.splitlines()[-1] == (
        "BROKEN       hash mismatch at segment-000001.jsonl line 3, seq 3: "
        "the line's bytes do not match its hash (a changed byte)"
    )
    code, text = run("verify", "--data-dir", str(data_dir), "--format", "json")
    assert code == 1
    assert json.loads(text)["problem"]["line"] == 3


def test_verify_with_another_key_is_broken(data_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pub"
    other.write_text(public_key_text(Ed25519PrivateKey.generate().public_key()) + "\n")
    code, text = run("verify", "--data-dir", str(data_dir), "--public-key", str(other))
    assert code == 1
    assert "BROKEN       key mismatch at HEAD.json line 1" in text


def test_unusable_input_exits_3(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("verify", "--data-dir", str(tmp_path / "none"))[0] == 3
    assert "no audit log here" in capsys.readouterr().err
    (data_dir / "audit" / "public.key").unlink()
    assert run("verify", "--data-dir", str(data_dir))[0] == 3
    assert "no public key (pass --public-key FILE)" in capsys.readouterr().err
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    assert run("verify", "--data-dir", str(data_dir), "--public-key", str(bad))[0] == 3


def test_data_dir_from_the_environment(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEGATE_DATA_DIR", str(data_dir))
    assert run("verify")[0] == 0


def test_pubkey(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = load_signing_key(data_dir, None)
    code, text = run("pubkey", "--data-dir", str(data_dir))
    assert code == 0
    assert text == public_key_text(key.public_key()) + "\n"
    assert text == (data_dir / "audit" / "public.key").read_text()
    assert f"key id {key_id(key.public_key())}" in capsys.readouterr().err


def test_pubkey_from_the_environment_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    monkeypatch.setenv("FACEGATE_AUDIT_KEY", base64.b64encode(raw).decode())
    code, text = run("pubkey", "--data-dir", str(tmp_path))
    assert code == 0
    assert text == public_key_text(key.public_key()) + "\n"
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_pubkey_without_any_key_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("pubkey", "--data-dir", str(tmp_path))[0] == 3
    assert "no audit signing key yet" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_more_actions_can_be_added() -> None:
    root = argparse.ArgumentParser(prog="facegate")
    actions = register(root.add_subparsers(dest="command", required=True))
    query = actions.add_parser("query")
    query.add_argument("--org")
    args = root.parse_args(["audit", "query", "--org", "o1"])
    assert (args.audit_command, args.org) == ("query", "o1")


def test_through_facegate_main(data_dir: Path) -> None:
    out = io.StringIO()
    assert main(["audit", "verify", "--data-dir", str(data_dir)], out=out) == 0
    assert out.getvalue().splitlines()[-1].startswith("OK ")
