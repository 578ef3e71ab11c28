"""Human review: the reviews held for confirmation, votes on them under the rules of the package
docstring (:mod:`facegate.admin.service`), and the probe's face crop while a review is open."""

from __future__ import annotations

import json
from dataclasses import dataclass

from facegate.admin.auth import REVIEWERS
from facegate.admin.service.core import MAX_LIST, MAX_NOTE, AdminCore, text_field
from facegate.errors import (
    AccessDeniedException,
    InvalidParameterException,
    ResourceNotFoundException,
)
from facegate.store.decisions import DecisionRecord
from facegate.store.operators import OperatorRecord
from facegate.store.reviews import (
    EXPIRED,
    PENDING,
    REJECTED,
    RELEASED,
    VERDICTS,
    NotIndependent,
    ReviewRecord,
)

REVIEW_STATUSES: tuple[str, ...] = (PENDING, RELEASED, REJECTED, EXPIRED)


@dataclass(frozen=True)
class Candidate:
    """One candidate held for review, as the reviewer sees it: what matched, never a vector.

    ``kind`` is "face" (FaceMatches), "user" (UserMatches), "unmatched" (CompareFaces'
    UnmatchedFaces), "association" (a face AssociateFaces would associate with the request's
    user) or "not_associated" (a face it would not, with its match confidence). Candidates'
    images are not stored (DESIGN.md, convention 8): reviewers compare the
    ``external_image_id`` / ``face_id`` with their own case material; only the probe's face crop
    is kept, encrypted, while the review is open (:meth:`review_crop`)."""

    kind: str
    similarity_pct: float | None = None
    face_id: str | None = None
    user_id: str | None = None
    external_image_id: str | None = None
    image_id: str | None = None


@dataclass(frozen=True)
class ReviewDetail:
    """A review with its status at the time of asking, the decision that held it, and the held
    candidates (empty once rejected or expired: their results are discarded)."""

    review: ReviewRecord
    status: str
    decision: DecisionRecord | None
    candidates: tuple[Candidate, ...]


class ReviewAdmin(AdminCore):
    """The human-review part of :class:`facegate.admin.service.AdminService`."""

    def review_list(self, status: str | None = PENDING, limit: int = 50) -> list[ReviewRecord]:
        """Reviews newest first, filtered by their status now (None: all)."""
        if status is not None and status not in REVIEW_STATUSES:
            raise InvalidParameterException(
                f"Unknown review status {status!r}; known: {', '.join(REVIEW_STATUSES)}."
            )
        return self.reviews.list(status, max(1, min(limit, MAX_LIST)), self.clock())

    def review(self, review_id: str) -> ReviewDetail:
        """A review with its decision and the candidates it holds."""
        record = self.reviews.get(review_id)
        if record is None:
            raise ResourceNotFoundException(f"Review {review_id} does not exist.")
        return self._detail(record)

    def vote(
        self, review_id: str, operator: OperatorRecord, verdict: str, note: str
    ) -> ReviewDetail:
        """Record ``operator``'s verdict ("confirm" or "reject") with a note. ``operator`` must
        be the authenticated caller; see the module docstring for the rules."""
        if verdict not in VERDICTS:
            raise InvalidParameterException(f"A verdict is one of {', '.join(VERDICTS)}.")
        current = self.operators.get(operator.operator_id)
        if current is None or not current.active:
            raise AccessDeniedException(f"Operator {operator.operator_id} is disabled.")
        if current.role not in REVIEWERS:
            raise AccessDeniedException(
                f"Operator {operator.operator_id} has role {current.role!r}; reviewing needs "
                f"role {' or '.join(REVIEWERS)}."
            )
        note = text_field(note, "A review note", MAX_NOTE)
        try:
            record = self.reviews.vote(
                review_id, operator.operator_id, verdict, note, self.clock(),
                cooling_off_s=self.cooling_off_s,
            )  # fmt: skip
        except NotIndependent as refused:
            self._event(
                "review", "review.refused", review_id, refused.org_id,
                operator=operator.operator_id, verdict=verdict, reason=refused.reason,
                controllers=list(refused.controllers),
            )  # fmt: skip
            raise
        self._event(
            "review", f"review.{verdict}", review_id, record.org_id,
            operator=operator.operator_id, status=record.status, decision_id=record.decision_id,
            confirmations=sum(v.verdict == "confirm" for v in record.votes),
            reviewers_required=record.reviewers_required,
        )  # fmt: skip
        return self._detail(record)

    def review_crop(self, review_id: str) -> bytes:
        """The probe's face crop (JPEG) of a pending review, for a reviewer to look at; the view
        is recorded in the audit trail (the review id and the operator, never the image or a
        hash of it). ResourceNotFound once the review is closed, or when it has no crop. The
        caller checks the role (reviewing roles only)."""
        record = self.reviews.get(review_id)
        crop = self.reviews.crop(review_id, self.clock()) if record is not None else None
        if record is None or crop is None:
            raise ResourceNotFoundException(
                f"Review {review_id} has no face crop (it is closed, or its operation has no "
                "probe image)."
            )
        self._event("review", "review.crop_view", review_id, record.org_id, operator=self.actor)
        return crop

    def has_review_crop(self, review_id: str) -> bool:
        """Whether a review holds a face crop now (closed reviews hold none)."""
        return self.reviews.has_crop(review_id)

    def _detail(self, record: ReviewRecord) -> ReviewDetail:
        status = record.status_at(self.clock())
        held = held_candidates(record.held_response) if status in (PENDING, RELEASED) else ()
        return ReviewDetail(record, status, self.decisions.get(record.decision_id), held)


def held_candidates(held_response: str) -> tuple[Candidate, ...]:
    """The candidates in a held Rekognition response (wire form, PascalCase)."""
    if not held_response:
        return ()
    doc = json.loads(held_response)
    out: list[Candidate] = []
    for match in doc.get("FaceMatches") or ():
        face = match.get("Face") or {}
        out.append(
            Candidate(
                kind="face",
                similarity_pct=match.get("Similarity"),
                face_id=face.get("FaceId"),
                user_id=face.get("UserId"),
                external_image_id=face.get("ExternalImageId"),
                image_id=face.get("ImageId"),
            )
        )
    for match in doc.get("UserMatches") or ():
        user = match.get("User") or {}
        out.append(
            Candidate(
                kind="user", similarity_pct=match.get("Similarity"), user_id=user.get("UserId")
            )
        )
    out.extend(Candidate(kind="unmatched") for _ in doc.get("UnmatchedFaces") or ())
    out.extend(
        Candidate(kind="association", face_id=face.get("FaceId"))
        for face in doc.get("AssociatedFaces") or ()
    )
    out.extend(
        Candidate(
            kind="not_associated",
            similarity_pct=face.get("Confidence"),
            face_id=face.get("FaceId"),
            user_id=face.get("UserId"),
        )
        for face in doc.get("UnsuccessfulFaceAssociations") or ()
    )
    return tuple(out)
