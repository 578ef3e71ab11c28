"""Human review of held results: two-person verification (EU AI Act Art. 14(5)), human review of
every result before action (AWS public-safety terms).

A review holds the response of one allowed face-comparison request. It is released to the caller
only when ``reviewers_required`` distinct operators have confirmed it; one rejection rejects it;
past ``expires_at`` it expires. Votes are recorded with the operator's id (Art. 12(3)(d): the
identity of the persons who verified the result). All state changes happen in one transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from facegate.errors import ConflictException, ResourceNotFoundException
from facegate.store.db import Database

PENDING, RELEASED, REJECTED, EXPIRED = "pending", "released", "rejected", "expired"
VERDICTS = ("confirm", "reject")


@dataclass(frozen=True)
class Vote:
    operator_id: str
    verdict: str
    note: str
    at: float


@dataclass(frozen=True)
class ReviewRecord:
    review_id: str
    decision_id: str
    operation: str
    access_key_id: str
    org_id: str
    params_sha256: str
    reviewers_required: int
    status: str
    held_response: str
    candidates: int
    created_at: float
    expires_at: float
    decided_at: float | None = None
    votes: tuple[Vote, ...] = ()

    def status_at(self, now: float) -> str:
        """The status, with a pending review past its deadline reported as expired."""
        if self.status == PENDING and now >= self.expires_at:
            return EXPIRED
        return self.status


def _review(row: sqlite3.Row, votes: tuple[Vote, ...]) -> ReviewRecord:
    return ReviewRecord(
        review_id=row["review_id"],
        decision_id=row["decision_id"],
        operation=row["operation"],
        access_key_id=row["access_key_id"],
        org_id=row["org_id"],
        params_sha256=row["params_sha256"],
        reviewers_required=row["reviewers_required"],
        status=row["status"],
        held_response=row["held_response"],
        candidates=row["candidates"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        decided_at=row["decided_at"],
        votes=votes,
    )


class ReviewRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, r: ReviewRecord) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO reviews (review_id, decision_id, operation, access_key_id, org_id, "
                "params_sha256, reviewers_required, status, held_response, candidates, "
                "created_at, expires_at, decided_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    r.review_id,
                    r.decision_id,
                    r.operation,
                    r.access_key_id,
                    r.org_id,
                    r.params_sha256,
                    r.reviewers_required,
                    r.status,
                    r.held_response,
                    r.candidates,
                    r.created_at,
                    r.expires_at,
                    r.decided_at,
                ),
            )

    def get(self, review_id: str) -> ReviewRecord | None:
        with self.db.read() as conn:
            return self._get(conn, review_id)

    def _get(self, conn: sqlite3.Connection, review_id: str) -> ReviewRecord | None:
        row = conn.execute("SELECT * FROM reviews WHERE review_id = ?", (review_id,)).fetchone()
        if row is None:
            return None
        votes = conn.execute(
            "SELECT operator_id, verdict, note, at FROM review_votes WHERE review_id = ? "
            "ORDER BY at",
            (review_id,),
        ).fetchall()
        return _review(row, tuple(Vote(v[0], v[1], v[2], v[3]) for v in votes))

    def list(self, status: str | None, limit: int, now: float) -> list[ReviewRecord]:
        """Reviews newest first; ``status`` filters on the status at ``now`` (a pending review
        past its deadline counts as expired)."""
        sql = "SELECT review_id FROM reviews"
        args: tuple[object, ...] = ()
        if status == PENDING:
            sql, args = sql + " WHERE status = ? AND expires_at > ?", (PENDING, now)
        elif status == EXPIRED:
            sql += " WHERE status = ? OR (status = ? AND expires_at <= ?)"
            args = (EXPIRED, PENDING, now)
        elif status is not None:
            sql, args = sql + " WHERE status = ?", (status,)
        with self.db.read() as conn:
            ids = conn.execute(sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit)).fetchall()
            records = [self._get(conn, row[0]) for row in ids]
        return [r for r in records if r is not None]

    def vote(
        self, review_id: str, operator_id: str, verdict: str, note: str, now: float
    ) -> ReviewRecord:
        """Record one operator's verdict and move the review on. Raises ResourceNotFound for an
        unknown review, Conflict when it is no longer pending or the operator already voted."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}")
        with self.db.transaction() as conn:
            record = self._get(conn, review_id)
            if record is None:
                raise ResourceNotFoundException(f"Review {review_id} does not exist.")
            status = record.status_at(now)
            if status != PENDING:
                raise ConflictException(f"Review {review_id} is {status}.")
            if any(v.operator_id == operator_id for v in record.votes):
                raise ConflictException(
                    f"Operator {operator_id} has already reviewed {review_id}; "
                    "a second reviewer must be a different person."
                )
            conn.execute(
                "INSERT INTO review_votes (review_id, operator_id, verdict, note, at) "
                "VALUES (?, ?, ?, ?, ?)",
                (review_id, operator_id, verdict, note, now),
            )
            confirms = 1 + sum(v.verdict == "confirm" for v in record.votes)
            new_status = PENDING
            if verdict == "reject":
                new_status = REJECTED
            elif confirms >= record.reviewers_required:
                new_status = RELEASED
            if new_status == RELEASED:
                conn.execute(
                    "UPDATE reviews SET status = ?, decided_at = ? WHERE review_id = ?",
                    (new_status, now, review_id),
                )
            elif new_status == REJECTED:  # rejected results are discarded (EU AI Act Art. 5(3))
                conn.execute(
                    "UPDATE reviews SET status = ?, decided_at = ?, held_response = '' "
                    "WHERE review_id = ?",
                    (new_status, now, review_id),
                )
            updated = self._get(conn, review_id)
        assert updated is not None
        return updated

    def expire(self, now: float) -> tuple[str, ...]:
        """Mark pending reviews past their deadline expired and discard their held results;
        returns the ids of the reviews that expired."""
        with self.db.transaction() as conn:
            ids = tuple(
                r[0]
                for r in conn.execute(
                    "SELECT review_id FROM reviews WHERE status = ? AND expires_at <= ?",
                    (PENDING, now),
                ).fetchall()
            )
            conn.executemany(
                "UPDATE reviews SET status = ?, decided_at = ?, held_response = '' "
                "WHERE review_id = ?",
                [(EXPIRED, now, review_id) for review_id in ids],
            )
        return ids
