"""Registered bias audits of a model (the deployment gate, :mod:`facegate.model_audit`).

One row per registration: the model and similarity-mapping versions the audit measured, the
SHA-256 of the report, a JSON summary of its numbers (written and read by
:mod:`facegate.model_audit`; opaque here), who registered it and when, and, once revoked, who
revoked it and when. Rows are never deleted: a revoked audit stays on record.

The gate reads :meth:`ModelAuditRepository.active` on every 1:N search (an indexed lookup), so a
registration or revocation made by the CLI in another process applies from the next request.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, func, insert, select, update

from facegate.store.db import Row, StoreDatabase
from facegate.store.schema import model_audits

_NEWEST_FIRST = (model_audits.c.registered_at.desc(), model_audits.c.rowid.desc())
_ADD = insert(model_audits)
_GET = select(model_audits).where(model_audits.c.audit_id == bindparam("audit_id"))
_LIST = select(model_audits).order_by(*_NEWEST_FIRST)
_REVOKE = (
    update(model_audits)
    .where(model_audits.c.audit_id == bindparam("id"))
    .values(
        revoked_by=func.coalesce(model_audits.c.revoked_by, bindparam("by")),
        revoked_at=func.coalesce(model_audits.c.revoked_at, bindparam("at")),
    )
)
_ACTIVE = (
    select(model_audits)
    .where(
        model_audits.c.model_version == bindparam("model_version"),
        model_audits.c.similarity_version == bindparam("similarity_version"),
        model_audits.c.revoked_at.is_(None),
    )
    .order_by(*_NEWEST_FIRST)
    .limit(1)
)


def new_audit_id() -> str:
    """``ma-`` and 16 hex digits (64 random bits)."""
    return "ma-" + secrets.token_hex(8)


@dataclass(frozen=True)
class ModelAuditRecord:
    audit_id: str
    model_version: str
    similarity_version: str
    report_sha256: str
    summary_json: str
    dataset: str
    registered_at: float
    registered_by: str
    note: str = ""
    revoked_at: float | None = None
    revoked_by: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _record(row: Row) -> ModelAuditRecord:
    return ModelAuditRecord(
        audit_id=row["audit_id"],
        model_version=row["model_version"],
        similarity_version=row["similarity_version"],
        report_sha256=row["report_sha256"],
        summary_json=row["summary_json"],
        dataset=row["dataset"],
        registered_at=row["registered_at"],
        registered_by=row["registered_by"],
        note=row["note"],
        revoked_at=row["revoked_at"],
        revoked_by=row["revoked_by"],
    )


class ModelAuditRepository:
    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    def add(self, record: ModelAuditRecord) -> None:
        """Store a registration (one transaction; a duplicate id raises ``IntegrityError``)."""
        with self.db.transaction() as conn:
            conn.execute(_ADD, dataclasses.asdict(record))

    def get(self, audit_id: str) -> ModelAuditRecord | None:
        with self.db.read() as conn:
            row = conn.execute(_GET, {"audit_id": audit_id}).fetchone()
        return None if row is None else _record(row)

    def list(self) -> list[ModelAuditRecord]:
        """Every registration, newest first (revoked ones included)."""
        with self.db.read() as conn:
            rows = conn.execute(_LIST).fetchall()
        return [_record(r) for r in rows]

    def revoke(self, audit_id: str, at: float, by: str) -> bool:
        """Revoke a registration; idempotent (the first revocation's time and actor are kept).
        False when there is no such id."""
        with self.db.transaction() as conn:
            cur = conn.execute(_REVOKE, {"id": audit_id, "by": by, "at": at})
            return cur.rowcount > 0

    def active(self, model_version: str, similarity_version: str) -> ModelAuditRecord | None:
        """The latest registration for these versions that is not revoked (None: none)."""
        with self.db.read() as conn:
            row = conn.execute(
                _ACTIVE, {"model_version": model_version, "similarity_version": similarity_version}
            ).fetchone()
        return None if row is None else _record(row)
