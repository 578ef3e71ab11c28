"""Human review of held results: two-person verification (EU AI Act Art. 14(5)), human review of
every result before action (AWS public-safety terms).

A review holds the response of one allowed face-comparison request. It is released to the caller
only when ``reviewers_required`` distinct operators have confirmed it; one rejection rejects it;
past ``expires_at`` it expires. Votes are recorded with the operator's id (Art. 12(3)(d): the
identity of the persons who verified the result). All state changes happen in one transaction.

Review crops: a review of a search by image keeps the probe's face crop (a small JPEG) so the
reviewers can see whom the search was about. It is stored encrypted (:class:`CropCipher`:
AES-256-GCM, a fresh 96-bit nonce per crop, the review id as associated data, so a crop moved to
another review does not decrypt), only while the review is pending: it is inserted in the
transaction that inserts the review and deleted in the transaction that releases, rejects or
expires it. :meth:`ReviewRepository.purge_crops` removes any crop whose review is no longer open
(a safety net the sweeper runs). Deleting the key (the master key) makes every stored crop
unreadable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import and_, bindparam, delete, insert, or_, select, update

from facegate.errors import ConflictException, ResourceNotFoundException
from facegate.store.db import Connection, Row, StoreDatabase
from facegate.store.operators import PASSWORD, control_of
from facegate.store.schema import review_crops, review_votes, reviews

PENDING, RELEASED, REJECTED, EXPIRED = "pending", "released", "rejected", "expired"
VERDICTS = ("confirm", "reject")

_REVIEW = reviews.c.review_id == bindparam("id")
_CROP = review_crops.c.review_id == bindparam("id")
_INSERT = insert(reviews)
_INSERT_CROP = insert(review_crops)
_STATUS = select(reviews.c.status, reviews.c.expires_at).where(_REVIEW)
_SEALED_CROP = select(review_crops.c.nonce, review_crops.c.ciphertext).where(_CROP)
_HAS_CROP = select(1).select_from(review_crops).where(_CROP)
_DELETE_CROP = delete(review_crops).where(_CROP)
_GET = select(reviews).where(_REVIEW)
_VOTES = (
    select(
        review_votes.c.operator_id, review_votes.c.verdict, review_votes.c.note, review_votes.c.at
    )
    .where(review_votes.c.review_id == bindparam("id"))
    .order_by(review_votes.c.at)
)
_INSERT_VOTE = insert(review_votes)
_RELEASE = (
    update(reviews)
    .where(_REVIEW)
    .values(status=bindparam("new_status"), decided_at=bindparam("when"))
)
_CLOSE_DISCARDING = (
    update(reviews)
    .where(_REVIEW)
    .values(status=bindparam("new_status"), decided_at=bindparam("when"), held_response="")
)
_PENDING_PAST_DEADLINE = select(reviews.c.review_id).where(
    reviews.c.status == bindparam("pending"), reviews.c.expires_at <= bindparam("now")
)
DEFAULT_COOLING_OFF_S = 7 * 86400.0
"""How long an operator who created another operator's account, or set one of its credentials,
still counts as controlling it after that account replaced the credential
(``FACEGATE_REVIEW_COOLING_OFF_S``)."""


class NotIndependent(ConflictException):
    """A confirmation refused because its voter is not a person of their own: they hold a
    credential another operator set, or they and a confirming reviewer are controlled by the
    same person. ``operator_id`` voted on ``review_id`` (of ``org_id``); ``reason`` says why;
    ``controllers`` names the operators behind it."""

    def __init__(
        self,
        message: str,
        *,
        review_id: str,
        org_id: str,
        operator_id: str,
        reason: str,
        controllers: tuple[str, ...],
    ) -> None:
        super().__init__(message)
        self.review_id = review_id
        self.org_id = org_id
        self.operator_id = operator_id
        self.reason = reason
        self.controllers = controllers


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


class CropCipher:
    """AES-256-GCM for review crops, bound to the review id (associated data)."""

    NONCE_BYTES = 12

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a review crop key is 32 bytes (AES-256)")
        self._aead = AESGCM(key)

    def seal(self, review_id: str, plaintext: bytes) -> tuple[bytes, bytes]:
        """(nonce, ciphertext with its tag) of ``plaintext`` for ``review_id``."""
        nonce = os.urandom(self.NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, plaintext, review_id.encode("utf-8"))

    def open(self, review_id: str, nonce: bytes, ciphertext: bytes) -> bytes:
        """The plaintext; raises ``cryptography.exceptions.InvalidTag`` if the ciphertext was
        altered, sealed under another key, or sealed for another review id."""
        return self._aead.decrypt(nonce, ciphertext, review_id.encode("utf-8"))


def _review(row: Row, votes: tuple[Vote, ...]) -> ReviewRecord:
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
    """Reviews, their votes and their crops. ``crops`` encrypts and decrypts crops (None: this
    repository cannot store or read them, e.g. in the CLI; it still deletes them on close)."""

    def __init__(self, db: StoreDatabase, crops: CropCipher | None = None) -> None:
        self.db = db
        self.crops = crops

    def insert(self, r: ReviewRecord, crop: bytes | None = None) -> None:
        """Insert a review and, when given, its probe's face crop, in one transaction."""
        if crop is not None and self.crops is None:
            raise RuntimeError("this review repository has no crop key")
        with self.db.transaction() as conn:
            conn.execute(
                _INSERT,
                {
                    "review_id": r.review_id,
                    "decision_id": r.decision_id,
                    "operation": r.operation,
                    "access_key_id": r.access_key_id,
                    "org_id": r.org_id,
                    "params_sha256": r.params_sha256,
                    "reviewers_required": r.reviewers_required,
                    "status": r.status,
                    "held_response": r.held_response,
                    "candidates": r.candidates,
                    "created_at": r.created_at,
                    "expires_at": r.expires_at,
                    "decided_at": r.decided_at,
                },
            )
            if crop is not None:
                assert self.crops is not None
                nonce, ciphertext = self.crops.seal(r.review_id, crop)
                conn.execute(
                    _INSERT_CROP,
                    {
                        "review_id": r.review_id,
                        "nonce": nonce,
                        "ciphertext": ciphertext,
                        "created_at": r.created_at,
                    },
                )

    def crop(self, review_id: str, now: float) -> bytes | None:
        """The decrypted face crop of a review that is pending at ``now`` (None: no such review,
        it is closed, or it has no crop)."""
        if self.crops is None:
            raise RuntimeError("this review repository has no crop key")
        with self.db.read() as conn:
            review = conn.execute(_STATUS, {"id": review_id}).fetchone()
            row = conn.execute(_SEALED_CROP, {"id": review_id}).fetchone()
        if review is None or row is None:
            return None
        if review["status"] != PENDING or now >= review["expires_at"]:
            return None
        return self.crops.open(review_id, bytes(row["nonce"]), bytes(row["ciphertext"]))

    def has_crop(self, review_id: str) -> bool:
        with self.db.read() as conn:
            row = conn.execute(_HAS_CROP, {"id": review_id}).fetchone()
        return row is not None

    def purge_crops(self, now: float) -> int:
        """Delete the crops of reviews that are not open at ``now`` (closed, past their deadline,
        or gone); returns how many were deleted. Closing a review deletes its crop already: this
        is the safety net."""
        with self.db.transaction() as conn:
            open_reviews = select(reviews.c.review_id).where(
                reviews.c.status == PENDING, reviews.c.expires_at > now
            )
            cursor = conn.execute(
                delete(review_crops).where(review_crops.c.review_id.not_in(open_reviews))
            )
            return int(cursor.rowcount)

    def get(self, review_id: str) -> ReviewRecord | None:
        with self.db.read() as conn:
            return self._get(conn, review_id)

    def _get(self, conn: Connection, review_id: str) -> ReviewRecord | None:
        row = conn.execute(_GET, {"id": review_id}).fetchone()
        if row is None:
            return None
        votes = conn.execute(_VOTES, {"id": review_id}).fetchall()
        return _review(row, tuple(Vote(v[0], v[1], v[2], v[3]) for v in votes))

    def list(self, status: str | None, limit: int, now: float) -> list[ReviewRecord]:
        """Reviews newest first; ``status`` filters on the status at ``now`` (a pending review
        past its deadline counts as expired)."""
        query = select(reviews.c.review_id)
        if status == PENDING:
            query = query.where(reviews.c.status == PENDING, reviews.c.expires_at > now)
        elif status == EXPIRED:
            query = query.where(
                or_(
                    reviews.c.status == EXPIRED,
                    and_(reviews.c.status == PENDING, reviews.c.expires_at <= now),
                )
            )
        elif status is not None:
            query = query.where(reviews.c.status == status)
        with self.db.read() as conn:
            ids = conn.execute(query.order_by(reviews.c.created_at.desc()).limit(limit)).fetchall()
            records = [self._get(conn, row[0]) for row in ids]
        return [r for r in records if r is not None]

    def vote(
        self,
        review_id: str,
        operator_id: str,
        verdict: str,
        note: str,
        now: float,
        *,
        cooling_off_s: float = DEFAULT_COOLING_OFF_S,
    ) -> ReviewRecord:
        """Record one operator's verdict and move the review on. Raises ResourceNotFound for an
        unknown review, Conflict when it is no longer pending or the operator already voted,
        and :class:`NotIndependent` (a Conflict) when a confirmation would not come from a
        person of their own (see :func:`_check_independent`); all checked in the transaction
        that records the vote."""
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
            if verdict == "confirm":
                _check_independent(conn, record, operator_id, now, cooling_off_s)
            conn.execute(
                _INSERT_VOTE,
                {
                    "review_id": review_id,
                    "operator_id": operator_id,
                    "verdict": verdict,
                    "note": note,
                    "at": now,
                },
            )
            confirms = 1 + sum(v.verdict == "confirm" for v in record.votes)
            new_status = PENDING
            if verdict == "reject":
                new_status = REJECTED
            elif confirms >= record.reviewers_required:
                new_status = RELEASED
            if new_status == RELEASED:
                conn.execute(_RELEASE, {"id": review_id, "new_status": new_status, "when": now})
            elif new_status == REJECTED:  # rejected results are discarded (EU AI Act Art. 5(3))
                conn.execute(
                    _CLOSE_DISCARDING, {"id": review_id, "new_status": new_status, "when": now}
                )
            if new_status != PENDING:  # the crop is kept only while the review is open
                conn.execute(_DELETE_CROP, {"id": review_id})
            updated = self._get(conn, review_id)
        assert updated is not None
        return updated

    def expire(self, now: float) -> tuple[str, ...]:
        """Mark pending reviews past their deadline expired and discard their held results and
        crops; returns the ids of the reviews that expired."""
        with self.db.transaction() as conn:
            ids = tuple(
                r[0]
                for r in conn.execute(
                    _PENDING_PAST_DEADLINE, {"pending": PENDING, "now": now}
                ).fetchall()
            )
            conn.executemany(
                _CLOSE_DISCARDING,
                [{"id": review_id, "new_status": EXPIRED, "when": now} for review_id in ids],
            )
            conn.executemany(_DELETE_CROP, [{"id": review_id} for review_id in ids])
        return ids


def _check_independent(
    conn: Connection, record: ReviewRecord, operator_id: str, now: float, cooling_off_s: float
) -> None:
    """Refuse a confirmation (:class:`NotIndependent`) unless it comes from a person of its own.

    Two rules, over who controls an operator account (:func:`~facegate.store.operators.
    control_of`: whoever set a credential it holds, or created it or set any of its credentials
    within ``cooling_off_s``, transitively):

    1. the voter holds no credential (token, console password) that another operator set: that
       operator knows it and could vote as them;
    2. the voter and every reviewer who already confirmed are controlled by nobody in common,
       and neither controls the other: an admin who creates (or resets) two accounts, or one
       besides their own, does not get two votes.
    """
    voter = control_of(conn, operator_id, now, cooling_off_s)
    for link in voter.held:
        own = (
            "console password (the console's account page)"
            if link.what == PASSWORD
            else ("token (POST /admin/whoami/token or facegate review rotate-token)")
        )
        raise NotIndependent(
            f"Operator {operator_id}'s confirmation cannot count: {link.describe()}, so "
            f"{link.controller} knows it and could vote as {operator_id}. Set your own {own} "
            "first.",
            review_id=record.review_id, org_id=record.org_id, operator_id=operator_id,
            reason="credential_set_by_another", controllers=(link.controller,),
        )  # fmt: skip
    for vote in record.votes:
        if vote.verdict != "confirm":
            continue
        other = control_of(conn, vote.operator_id, now, cooling_off_s)
        shared = sorted(voter.people & other.people)
        if not shared:
            continue
        person = shared[0]
        if person == operator_id:
            relation = f"{operator_id} controls {vote.operator_id}: {other.path_to(person)}"
        elif person == vote.operator_id:
            relation = f"{vote.operator_id} controls {operator_id}: {voter.path_to(person)}"
        else:
            relation = f"{person} controls both: {voter.path_to(person)}; {other.path_to(person)}"
        raise NotIndependent(
            f"Operator {operator_id}'s confirmation cannot count with {vote.operator_id}'s: "
            f"{relation}. Reviewers must be people no single operator controls: whoever "
            "creates an operator account or sets one of its credentials controls it while it "
            "holds that credential and for the cooling-off period "
            f"({cooling_off_s / 86400:g} days).",
            review_id=record.review_id, org_id=record.org_id, operator_id=operator_id,
            reason="shared_controller", controllers=tuple(shared),
        )  # fmt: skip
