"""Operator accounts: the people who administer facegate and review held results.

An operator signs in to the admin API with a bearer token; only the token's SHA-256 is stored,
so the database never holds a usable credential. Roles: ``admin`` (organisations, keys,
operators, policies, decisions; may also review) and ``reviewer`` (reviews only).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from facegate.errors import ResourceAlreadyExistsException
from facegate.store.db import Database

ROLES = ("admin", "reviewer")


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


def _operator(row: sqlite3.Row) -> OperatorRecord:
    return OperatorRecord(
        operator_id=row["operator_id"],
        display_name=row["display_name"],
        role=row["role"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
    )


class OperatorRepository:
    def __init__(self, db: Database) -> None:
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
        except sqlite3.IntegrityError as exc:
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
