"""Policy decisions as rows: who asked for what, the answer, the policies and obligations.

Nothing biometric: ids, names, policy ids and reasons only. The hash-chained audit log (the audit
issue) is the tamper-evident record; this table is what the operator console and
``facegate policy explain --decision`` read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select, update

from facegate.store.db import Row, StoreDatabase
from facegate.store.group import GroupCommit
from facegate.store.schema import decisions

_INSERT = insert(decisions)
_SET_REVIEW = (
    update(decisions)
    .where(decisions.c.decision_id == bindparam("id"))
    .values(review_id=bindparam("review"))
)
_GET = select(decisions).where(decisions.c.decision_id == bindparam("id"))
_RECENT = select(decisions).order_by(decisions.c.at.desc()).limit(bindparam("limit"))
_RECENT_OF_ORG = (
    select(decisions)
    .where(decisions.c.org_id == bindparam("org"))
    .order_by(decisions.c.at.desc())
    .limit(bindparam("limit"))
)


@dataclass(frozen=True)
class DecisionRecord:
    decision_id: str
    at: float
    access_key_id: str
    org_id: str
    operation: str
    resource: str
    purpose: str
    allowed: bool
    policy_ids: tuple[str, ...]
    reasons: tuple[str, ...]
    errors: tuple[str, ...]
    obligations: dict[str, object]
    review_id: str | None = None


def _decision(row: Row) -> DecisionRecord:
    return DecisionRecord(
        decision_id=row["decision_id"],
        at=row["at"],
        access_key_id=row["access_key_id"],
        org_id=row["org_id"],
        operation=row["operation"],
        resource=row["resource"],
        purpose=row["purpose"],
        allowed=bool(row["allowed"]),
        policy_ids=tuple(json.loads(row["policy_ids"])),
        reasons=tuple(json.loads(row["reasons"])),
        errors=tuple(json.loads(row["errors"])),
        obligations=json.loads(row["obligations"]),
        review_id=row["review_id"],
    )


def _row(d: DecisionRecord) -> dict[str, object]:
    return {
        "decision_id": d.decision_id,
        "at": d.at,
        "access_key_id": d.access_key_id,
        "org_id": d.org_id,
        "operation": d.operation,
        "resource": d.resource,
        "purpose": d.purpose,
        "allowed": int(d.allowed),
        "policy_ids": json.dumps(list(d.policy_ids)),
        "reasons": json.dumps(list(d.reasons)),
        "errors": json.dumps(list(d.errors)),
        "obligations": json.dumps(d.obligations, sort_keys=True),
        "review_id": d.review_id,
    }


class DecisionRepository:
    def __init__(self, db: StoreDatabase) -> None:
        self.db = db
        self._group: GroupCommit[DecisionRecord] = GroupCommit(self._insert_all)

    def insert(self, d: DecisionRecord) -> None:
        """Store ``d``; returns once its transaction has committed. Decisions stored by several
        threads at once share one transaction (:mod:`facegate.store.group`): the server stores
        one per request, and under load one commit (one fsync) serves the requests that arrived
        while the previous one was being written."""
        self._group.submit(d)

    @property
    def commits(self) -> int:
        """Transactions :meth:`insert` has committed (for benchmarks and tests)."""
        return self._group.commits

    def _insert_all(self, records: Sequence[DecisionRecord]) -> None:
        with self.db.transaction() as conn:
            conn.executemany(_INSERT, [_row(d) for d in records])

    def set_review(self, decision_id: str, review_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(_SET_REVIEW, {"id": decision_id, "review": review_id})

    def get(self, decision_id: str) -> DecisionRecord | None:
        with self.db.read() as conn:
            row = conn.execute(_GET, {"id": decision_id}).fetchone()
        return None if row is None else _decision(row)

    def recent(self, limit: int, org_id: str | None = None) -> list[DecisionRecord]:
        """The newest ``limit`` decisions (of one organisation if given), newest first."""
        with self.db.read() as conn:
            if org_id is None:
                rows = conn.execute(_RECENT, {"limit": limit}).fetchall()
            else:
                rows = conn.execute(_RECENT_OF_ORG, {"org": org_id, "limit": limit}).fetchall()
        return [_decision(r) for r in rows]
