"""Policy decisions as rows: who asked for what, the answer, the policies and obligations.

Nothing biometric: ids, names, policy ids and reasons only. The hash-chained audit log (the audit
issue) is the tamper-evident record; this table is what the operator console and
``facegate policy explain --decision`` read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from facegate.store.db import Row, StoreDatabase
from facegate.store.group import GroupCommit


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


def _row(d: DecisionRecord) -> tuple[object, ...]:
    return (
        d.decision_id,
        d.at,
        d.access_key_id,
        d.org_id,
        d.operation,
        d.resource,
        d.purpose,
        int(d.allowed),
        json.dumps(list(d.policy_ids)),
        json.dumps(list(d.reasons)),
        json.dumps(list(d.errors)),
        json.dumps(d.obligations, sort_keys=True),
        d.review_id,
    )


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
            conn.executemany(
                "INSERT INTO decisions (decision_id, at, access_key_id, org_id, operation, "
                "resource, purpose, allowed, policy_ids, reasons, errors, obligations, review_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_row(d) for d in records],
            )

    def set_review(self, decision_id: str, review_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE decisions SET review_id = ? WHERE decision_id = ?", (review_id, decision_id)
            )

    def get(self, decision_id: str) -> DecisionRecord | None:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT * FROM decisions WHERE decision_id = ?", (decision_id,)
            ).fetchone()
        return None if row is None else _decision(row)

    def recent(self, limit: int, org_id: str | None = None) -> list[DecisionRecord]:
        """The newest ``limit`` decisions (of one organisation if given), newest first."""
        with self.db.read() as conn:
            if org_id is None:
                rows = conn.execute(
                    "SELECT * FROM decisions ORDER BY at DESC LIMIT ?", (limit,)
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM decisions WHERE org_id = ? ORDER BY at DESC LIMIT ?",
                    (org_id, limit),
                ).fetchall()
        return [_decision(r) for r in rows]
