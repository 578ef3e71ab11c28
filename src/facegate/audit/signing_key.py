"""The checkpoint signing key (Ed25519) and its public half.

* The private key comes from ``FACEGATE_AUDIT_KEY`` (base64 of the 32 raw bytes) if set, else
  from ``<data_dir>/audit-signing.key`` (the same base64 text on one line), which is created on
  first use: generated, written to a temporary file opened ``O_CREAT | O_EXCL`` with mode 0600,
  fsynced, then hard-linked into place, so a crash never leaves a half-written key and two
  processes starting at once end up with the same key. An existing key file readable by group
  or others is refused: whoever can read it can forge checkpoints.
* The public key is published as ``<data_dir>/audit/public.key`` (base64 of the 32 raw bytes,
  one line); ``key_id`` (the first 16 hex digits of the SHA-256 of the raw public key) names it
  in every checkpoint. A verifier should hold its own trusted copy of the public key: the copy
  in the audit directory can be replaced by anyone who can rewrite the log.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from facegate.atomicfile import fsync_dir, write_all
from facegate.audit.errors import AuditKeyError
from facegate.audit.layout import SIGNING_KEY_NAME

KEY_BYTES = 32


def raw_public(public_key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of sha256(raw public key): names the key in checkpoints."""
    return hashlib.sha256(raw_public(public_key)).hexdigest()[:16]


def public_key_text(public_key: Ed25519PublicKey) -> str:
    """The ``public.key`` line: base64 of the raw public key (no newline)."""
    return base64.b64encode(raw_public(public_key)).decode("ascii")


def _private_from_b64(text: str, where: str) -> Ed25519PrivateKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AuditKeyError(f"{where}: not base64 of an Ed25519 private key") from None
    if len(raw) != KEY_BYTES:
        raise AuditKeyError(f"{where}: an Ed25519 private key has 32 bytes, this has {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def _read_key_file(path: Path) -> Ed25519PrivateKey:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise AuditKeyError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if mode & 0o077:
        raise AuditKeyError(
            f"{path}: the audit signing key is readable by group or others "
            f"(mode {mode & 0o777:o}); chmod 600 it"
        )
    if len(data) == KEY_BYTES:  # raw bytes written by hand; base64 would be 44 characters
        return Ed25519PrivateKey.from_private_bytes(data)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise AuditKeyError(f"{path}: not base64 of an Ed25519 private key") from None
    return _private_from_b64(text, str(path))


def read_signing_key(data_dir: Path, env_value: str | None) -> Ed25519PrivateKey | None:
    """The signing key from ``env_value`` or the key file, or None if neither exists (nothing
    is created). Raises :class:`AuditKeyError` for a malformed or unsafe key."""
    if env_value:
        return _private_from_b64(env_value, "FACEGATE_AUDIT_KEY")
    path = data_dir / SIGNING_KEY_NAME
    if not path.exists():
        return None
    return _read_key_file(path)


def load_signing_key(data_dir: Path, env_value: str | None) -> Ed25519PrivateKey:
    """The signing key from ``env_value`` (``FACEGATE_AUDIT_KEY``) or
    ``<data_dir>/audit-signing.key``, creating the file on first use (see the module docstring).

    Raises :class:`AuditKeyError` if the value or file is malformed, the file is readable by
    others, or the file cannot be created."""
    existing = read_signing_key(data_dir, env_value)
    if existing is not None:
        return existing
    path = data_dir / SIGNING_KEY_NAME
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        return _create_key_file(path)
    except FileExistsError:
        return _read_key_file(path)  # another process created it first
    except OSError as exc:
        raise AuditKeyError(f"{path}: cannot create: {exc.strerror or exc}") from exc


def _create_key_file(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            write_all(fd, base64.b64encode(raw) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)  # exclusive: fails if the key appeared meanwhile
        fsync_dir(path.parent)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return key


def read_public_key(path: Path) -> Ed25519PublicKey:
    """A public key from a file: the ``public.key`` format (base64 of 32 raw bytes), 32 raw
    bytes, or a PEM ``PUBLIC KEY``. Raises :class:`AuditKeyError` if it is none of these."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuditKeyError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            loaded = serialization.load_pem_public_key(data)
        except ValueError:
            raise AuditKeyError(f"{path}: not a PEM public key") from None
        if not isinstance(loaded, Ed25519PublicKey):
            raise AuditKeyError(f"{path}: not an Ed25519 public key")
        return loaded
    raw = data
    if len(data) != KEY_BYTES:
        try:
            raw = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise AuditKeyError(f"{path}: not base64 of an Ed25519 public key") from None
    if len(raw) != KEY_BYTES:
        raise AuditKeyError(f"{path}: an Ed25519 public key has 32 bytes, this has {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)
