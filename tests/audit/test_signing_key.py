"""The signing key: created once, 0600, from the environment; never written into the log."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from facegate.audit.errors import AuditKeyError
from facegate.audit.log import AuditLog
from facegate.audit.signing_key import (
    key_id,
    load_signing_key,
    public_key_text,
    raw_public,
    read_public_key,
    read_signing_key,
)
from tests.audit.conftest import request_record


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def test_created_once_with_mode_0600(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert read_signing_key(data, None) is None
    key = load_signing_key(data, None)
    path = data / "audit-signing.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == base64.b64encode(_raw(key)) + b"\n"
    assert _raw(load_signing_key(data, None)) == _raw(key)
    assert [p.name for p in data.iterdir()] == ["audit-signing.key"]  # no temporary left


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    keys: list[bytes] = []

    def load() -> None:
        keys.append(_raw(load_signing_key(tmp_path, None)))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8
    assert len(set(keys)) == 1


def test_from_the_environment(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    loaded = load_signing_key(tmp_path, base64.b64encode(_raw(key)).decode())
    assert _raw(loaded) == _raw(key)
    assert not (tmp_path / "audit-signing.key").exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [("not base64!", "not base64"), (base64.b64encode(b"short").decode(), "32 bytes")],
)
def test_bad_environment_values(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(AuditKeyError, match=message) as info:
        load_signing_key(tmp_path, value)
    assert "FACEGATE_AUDIT_KEY" in str(info.value)
    assert value not in str(info.value)


def test_unsafe_or_broken_key_files_are_refused(tmp_path: Path) -> None:
    load_signing_key(tmp_path, None)
    path = tmp_path / "audit-signing.key"
    os.chmod(path, 0o644)
    with pytest.raises(AuditKeyError, match="readable by group or others"):
        load_signing_key(tmp_path, None)
    os.chmod(path, 0o600)
    path.write_bytes(b"")
    with pytest.raises(AuditKeyError, match="32 bytes"):
        load_signing_key(tmp_path, None)


def test_public_key_formats(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    raw = raw_public(public)
    assert key_id(public) == hashlib.sha256(raw).hexdigest()[:16]
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for name, content in [
        ("b64", public_key_text(public).encode() + b"\n"),
        ("raw", raw),
        ("pem", pem),
    ]:
        (tmp_path / name).write_bytes(content)
        assert raw_public(read_public_key(tmp_path / name)) == raw
    (tmp_path / "bad").write_bytes(b"hello")
    with pytest.raises(AuditKeyError, match="not base64"):
        read_public_key(tmp_path / "bad")
    with pytest.raises(AuditKeyError, match="cannot read"):
        read_public_key(tmp_path / "missing")


def test_open_publishes_the_public_key(tmp_path: Path) -> None:
    key = load_signing_key(tmp_path, None)
    AuditLog.open(tmp_path / "audit", key).close()
    published = (tmp_path / "audit" / "public.key").read_bytes()
    assert published == public_key_text(key.public_key()).encode() + b"\n"


def test_no_secret_key_bytes_in_the_audit_directory(audit_dir: Path) -> None:
    key = load_signing_key(audit_dir.parent, None)
    log = AuditLog.open(audit_dir, key, checkpoint_every=3, segment_max_bytes=3000)
    for i in range(20):
        log.append(request_record(i))
    log.close()
    secret = _raw(key)
    forms = [secret, base64.b64encode(secret), secret.hex().encode(), secret.hex().upper().encode()]
    files = [p for p in audit_dir.iterdir() if p.is_file()]
    assert {"HEAD.json", "public.key", "segment-000002.jsonl"} <= {p.name for p in files}
    for path in files:
        content = path.read_bytes()
        for form in forms:
            assert form not in content, f"secret key material in {path.name}"
