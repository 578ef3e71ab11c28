"""Operator accounts: the people who administer facegate and review held results.

An operator signs in to the admin API with a bearer token; only the token's SHA-256 is stored,
so the database never holds a usable credential. Roles: ``admin`` (organisations, keys,
operators, policies, decisions; may also review), ``reviewer`` (reviews only) and ``auditor``
(reads everything, changes nothing; may verify the audit chain and download reports).

The console (:mod:`facegate.console`) signs operators in with a password: only its scrypt hash
is stored (``password_hash``, see :mod:`facegate.admin.auth`); console sessions are kept by
:class:`SessionRepository`, by the SHA-256 of the session id.
"""

from __future__ import annotations

from dataclasses import dataclass

from facegate.errors import ResourceAlreadyExistsException
from facegate.store.db import IntegrityError, Row, StoreDatabase

ROLES = ("admin", "reviewer", "auditor")


@dataclass(frozen=True)
class OperatorRecord:
    operator_id: str
    display_name: str
    role: str
    created_at: float
    disabled_at: float | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


def _operator(row: Row) -> OperatorRecord:
    return OperatorRecord(
        operator_id=row["operator_id"],
        display_name=row["display_name"],
        role=row["role"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
    )


class OperatorRepository:
    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    def insert(self, record: OperatorRecord, token_sha256: str) -> None:
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT INTO operators (operator_id, display_name, role, token_sha256, "
                    "created_at, disabled_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.operator_id,
                        record.display_name,
                        record.role,
                        token_sha256,
                        record.created_at,
                        record.disabled_at,
                    ),
                )
        except IntegrityError as exc:
            raise ResourceAlreadyExistsException(
                f"Operator {record.operator_id} already exists."
            ) from exc

    def by_token(self, token_sha256: str) -> OperatorRecord | None:
        """The active operator whose token hashes to ``token_sha256``."""
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT * FROM operators WHERE token_sha256 = ? AND disabled_at IS NULL",
                (token_sha256,),
            ).fetchone()
        return None if row is None else _operator(row)

    def get(self, operator_id: str) -> OperatorRecord | None:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT * FROM operators WHERE operator_id = ?", (operator_id,)
            ).fetchone()
        return None if row is None else _operator(row)

    def list(self) -> list[OperatorRecord]:
        with self.db.read() as conn:
            rows = conn.execute("SELECT * FROM operators ORDER BY created_at").fetchall()
        return [_operator(r) for r in rows]

    def disable(self, operator_id: str, at: float) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE operators SET disabled_at = COALESCE(disabled_at, ?) WHERE operator_id = ?",
                (at, operator_id),
            )
            return cur.rowcount > 0

    def set_password_hash(self, operator_id: str, password_hash: str | None) -> bool:
        """Store (or with None remove) an operator's console password hash; also ends their
        console sessions. False: no such operator."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE operators SET password_hash = ? WHERE operator_id = ?",
                (password_hash, operator_id),
            )
            conn.execute("DELETE FROM console_sessions WHERE operator_id = ?", (operator_id,))
            return cur.rowcount > 0

    def password_hash(self, operator_id: str) -> str | None:
        """The stored console password hash of an active operator (None: no such active
        operator, or no password set)."""
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT password_hash FROM operators WHERE operator_id = ? AND disabled_at IS NULL",
                (operator_id,),
            ).fetchone()
        return None if row is None else row["password_hash"]


@dataclass(frozen=True)
class SessionRecord:
    """A console session: whose, its CSRF token, when it began and was last used (epoch s)."""

    operator_id: str
    csrf_token: str
    created_at: float
    last_seen_at: float


class SessionRepository:
    """Console sessions, keyed by the SHA-256 of the session id (never the id itself)."""

    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    def insert(self, session_sha256: str, record: SessionRecord) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO console_sessions (session_sha256, operator_id, csrf_token, "
                "created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)",
                (
                    session_sha256,
                    record.operator_id,
                    record.csrf_token,
                    record.created_at,
                    record.last_seen_at,
                ),
            )

    def get(self, session_sha256: str) -> SessionRecord | None:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT * FROM console_sessions WHERE session_sha256 = ?", (session_sha256,)
            ).fetchone()
        if row is None:
            return None
        return SessionRecord(
            row["operator_id"], row["csrf_token"], row["created_at"], row["last_seen_at"]
        )

    def touch(self, session_sha256: str, at: float) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE console_sessions SET last_seen_at = ? WHERE session_sha256 = ?",
                (at, session_sha256),
            )

    def delete(self, session_sha256: str) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM console_sessions WHERE session_sha256 = ?", (session_sha256,)
            )
            return cur.rowcount > 0

    def delete_stale(self, idle_before: float, created_before: float) -> int:
        """Delete sessions idle since before ``idle_before`` or begun before
        ``created_before``; returns how many."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM console_sessions WHERE last_seen_at < ? OR created_at < ?",
                (idle_before, created_before),
            )
            return cur.rowcount
