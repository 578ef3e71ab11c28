"""Access keys: creation, sealing of secrets at rest, lookup for SigV4 verification.

SigV4 verification needs the secret itself (HMAC), so secrets cannot be stored as one-way hashes.
They are sealed with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under a master key
that lives outside the database: ``FACEGATE_MASTER_KEY`` or a ``master.key`` file in the data
directory created with mode 0600. A stolen database alone reveals no secret. The secret is shown
once, when the key is created, and never logged.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from facegate.store.keys import KeyRecord, KeyRepository

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
ACCESS_KEY_PREFIX = "FGAK"


@dataclass(frozen=True)
class NewKey:
    """A freshly created key; the only object that ever holds the secret in clear for a caller."""

    access_key_id: str
    secret_access_key: str
    description: str
    expires_at: float | None
    org_id: str | None = None
    use_case: str = ""


def load_master_key(data_dir: Path, env_value: str | None) -> bytes:
    """The Fernet master key: from the environment, else ``data_dir/master.key`` (created 0600).

    Processes starting together on one data directory agree on one key: the new key is written
    to a private temporary file and hard-linked into place, which fails if another process got
    there first; every process then reads the file, which is never seen half-written."""
    if env_value:
        return env_value.encode("ascii")
    path = data_dir / "master.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        draft = data_dir / f".master.key.{os.getpid()}.{secrets.token_hex(8)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key() + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process's key won
                os.link(draft, path)
        finally:
            draft.unlink()
    return path.read_bytes().strip()


class KeyService:
    """Creates, revokes and looks up access keys; secrets are sealed under the master key."""

    def __init__(self, repository: KeyRepository, master_key: bytes) -> None:
        self._repo = repository
        self._fernet = Fernet(master_key)

    def create(
        self,
        description: str = "",
        ttl_s: float | None = None,
        *,
        org_id: str | None = None,
        use_case: str = "",
    ) -> NewKey:
        """A new key (20-character id, 40-character secret), stored sealed, registered to
        ``org_id`` for ``use_case`` (checked by the caller, ``facegate.governance``)."""
        key, record = self._new(description, ttl_s, org_id, use_case)
        self._repo.insert(record)
        return key

    def create_first(
        self, description: str = "", *, org_id: str | None = None, use_case: str = ""
    ) -> NewKey | None:
        """As :meth:`create`, but only on a store without any key (the bootstrap key); None if
        a key exists, also one another server created a moment before (one transaction)."""
        key, record = self._new(description, None, org_id, use_case)
        return key if self._repo.insert_first(record) else None

    def _new(
        self, description: str, ttl_s: float | None, org_id: str | None, use_case: str
    ) -> tuple[NewKey, KeyRecord]:
        access_key_id = ACCESS_KEY_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
        secret = secrets.token_urlsafe(30)[:40]
        now = time.time()
        expires = now + ttl_s if ttl_s is not None else None
        record = KeyRecord(
            access_key_id=access_key_id,
            secret_sealed=self._fernet.encrypt(secret.encode("ascii")),
            description=description,
            created_at=now,
            expires_at=expires,
            revoked_at=None,
            org_id=org_id,
            use_case=use_case,
        )
        return NewKey(access_key_id, secret, description, expires, org_id, use_case), record

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret of a usable key, else ``None`` (unknown, revoked or expired)."""
        record = self._repo.get(access_key_id)
        if record is None or not record.usable_at(time.time()):
            return None
        try:
            return self._fernet.decrypt(record.secret_sealed).decode("ascii")
        except InvalidToken:
            return None  # sealed under another master key: unusable, never an oracle

    def record(self, access_key_id: str) -> KeyRecord | None:
        """The stored key (sealed secret included, never decrypted here)."""
        return self._repo.get(access_key_id)

    def revoke(self, access_key_id: str) -> bool:
        return self._repo.revoke(access_key_id, time.time())

    def list(self) -> list[KeyRecord]:
        return self._repo.list()
