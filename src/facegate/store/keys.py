"""Access-key rows. Secrets arrive sealed (encrypted by ``wire.keys``); this module never sees
them in clear."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlalchemy import bindparam, func, insert, select, update

from facegate.store.db import Connection, Row, StoreDatabase
from facegate.store.schema import access_keys

_INSERT = insert(access_keys)
_ANY = select(1).select_from(access_keys).limit(1)
_GET = select(access_keys).where(access_keys.c.access_key_id == bindparam("id"))
_LIST = select(access_keys).order_by(access_keys.c.created_at)
_REVOKE = (
    update(access_keys)
    .where(access_keys.c.access_key_id == bindparam("id"))
    .values(revoked_at=func.coalesce(access_keys.c.revoked_at, bindparam("at")))
)


@dataclass(frozen=True)
class KeyRecord:
    """An access key: id, sealed secret, description, creation/expiry/revocation times (epoch s),
    and its registration: the organisation that holds it and the one use case it is bound to."""

    access_key_id: str
    secret_sealed: bytes
    description: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    org_id: str | None = None
    use_case: str = ""

    def usable_at(self, now: float) -> bool:
        """Not revoked and not expired at ``now``."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at


def _key(row: Row) -> KeyRecord:
    return KeyRecord(
        access_key_id=row["access_key_id"],
        secret_sealed=bytes(row["secret_sealed"]),
        description=row["description"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        org_id=row["org_id"],
        use_case=row["use_case"],
    )


class KeyRepository:
    """CRUD for access keys."""

    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    def insert(self, record: KeyRecord) -> None:
        with self.db.transaction() as conn:
            self._insert(conn, record)

    @staticmethod
    def _insert(conn: Connection, record: KeyRecord) -> None:
        conn.execute(_INSERT, dataclasses.asdict(record))

    def insert_first(self, record: KeyRecord) -> bool:
        """Insert ``record`` only if the store holds no key at all; True if it was inserted.

        The check and the insert are one write transaction (the store's writer lock), so when
        several servers bootstrap an empty store at once exactly one of them inserts its key."""
        with self.db.transaction() as conn:
            if conn.execute(_ANY).fetchone() is not None:
                return False
            self._insert(conn, record)
            return True

    def get(self, access_key_id: str) -> KeyRecord | None:
        with self.db.read() as conn:
            row = conn.execute(_GET, {"id": access_key_id}).fetchone()
        return None if row is None else _key(row)

    def list(self) -> list[KeyRecord]:
        with self.db.read() as conn:
            rows = conn.execute(_LIST).fetchall()
        return [_key(r) for r in rows]

    def revoke(self, access_key_id: str, at: float) -> bool:
        """Revoke a key; False if it does not exist."""
        with self.db.transaction() as conn:
            cur = conn.execute(_REVOKE, {"id": access_key_id, "at": at})
            return cur.rowcount > 0
