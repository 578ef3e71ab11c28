"""Access-key rows. Secrets arrive sealed (encrypted by ``wire.keys``); this module never sees
them in clear."""

from __future__ import annotations

from dataclasses import dataclass

from facegate.store.db import Connection, Row, StoreDatabase


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
        conn.execute(
            "INSERT INTO access_keys (access_key_id, secret_sealed, description, created_at, "
            "expires_at, revoked_at, org_id, use_case) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.access_key_id,
                record.secret_sealed,
                record.description,
                record.created_at,
                record.expires_at,
                record.revoked_at,
                record.org_id,
                record.use_case,
            ),
        )

    def insert_first(self, record: KeyRecord) -> bool:
        """Insert ``record`` only if the store holds no key at all; True if it was inserted.

        The check and the insert are one write transaction (the store's writer lock), so when
        several servers bootstrap an empty store at once exactly one of them inserts its key."""
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM access_keys LIMIT 1").fetchone() is not None:
                return False
            self._insert(conn, record)
            return True

    def get(self, access_key_id: str) -> KeyRecord | None:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT * FROM access_keys WHERE access_key_id = ?", (access_key_id,)
            ).fetchone()
        return None if row is None else _key(row)

    def list(self) -> list[KeyRecord]:
        with self.db.read() as conn:
            rows = conn.execute("SELECT * FROM access_keys ORDER BY created_at").fetchall()
        return [_key(r) for r in rows]

    def revoke(self, access_key_id: str, at: float) -> bool:
        """Revoke a key; False if it does not exist."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE access_keys SET revoked_at = COALESCE(revoked_at, ?) "
                "WHERE access_key_id = ?",
                (at, access_key_id),
            )
            return cur.rowcount > 0
