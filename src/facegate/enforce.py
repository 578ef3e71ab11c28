"""Applying a decision's obligations to one request and its response (steps 4 and 6 of the
request path; the policy package decides *what* is owed, this module does it).

Before the work, on the validated parameters (snake_case):

* ``min_similarity_pct`` raises FaceMatchThreshold / SimilarityThreshold / UserMatchThreshold to
  at least the minimum (a caller's higher threshold stands; a lower or missing one is raised:
  never lowered).
* ``max_candidates`` caps MaxFaces / MaxUsers.
* ``max_expected_false_candidates`` (1:N searches): a search of a collection of N faces at a
  threshold whose per-pair false match rate is f returns about N x f false candidates; the
  threshold is raised to the lowest Similarity whose calibrated rate is at most bound / N
  (:meth:`~facegate.engine.similarity.SimilarityModel.similarity_for_fmr`). With an uncalibrated
  mapping nothing can be promised, so the threshold goes to 100 (fail closed).

Every 1:N search, with or without that obligation, reports ``expected_false_candidates``:
N x f at the threshold finally used (the scale's rate at 70 below Similarity 70, a lower bound;
None with an uncalibrated mapping). The pipeline puts it in the audit record and the
``x-facegate-expected-false-candidates`` response header.

After the work, on the response in wire form (PascalCase):

* candidate lists (FaceMatches, UserMatches) are cut to ``max_candidates`` (CompareFaces has no
  MaxFaces parameter);
* ``redact_fields`` are removed wherever they appear;
* ``reviewers_required`` holds the candidates (FaceMatches, UserMatches, UnmatchedFaces: anything
  that tells the caller who matched) until enough distinct reviewers confirm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from facegate.engine.similarity import SimilarityModel
from facegate.policy.actions import IDENTIFICATION_ACTIONS
from facegate.policy.model import Obligations

CANDIDATE_LISTS = ("FaceMatches", "UserMatches")
HELD_FIELDS = ("FaceMatches", "UserMatches", "UnmatchedFaces")
DEFAULT_THRESHOLD_PCT = 80.0
"""Rekognition's default for every match threshold (governance-rules.md AMZ-DEFAULTS)."""

# Which threshold / cap parameter each face-comparison operation has.
_THRESHOLD_OF = {
    "CompareFaces": "similarity_threshold",
    "SearchFaces": "face_match_threshold",
    "SearchFacesByImage": "face_match_threshold",
    "SearchUsers": "user_match_threshold",
    "SearchUsersByImage": "user_match_threshold",
}
_CAP_OF = {
    "SearchFaces": "max_faces",
    "SearchFacesByImage": "max_faces",
    "SearchUsers": "max_users",
    "SearchUsersByImage": "max_users",
}


@dataclass(frozen=True)
class Applied:
    """What was changed before the work, for the decision record and the response headers."""

    threshold_raised_to: float | None = None
    candidates_capped_to: int | None = None
    threshold_pct: float | None = None
    expected_false_candidates: float | None = None


def _size_aware(bound: float, faces: int, similarity: SimilarityModel | None) -> float:
    """The lowest threshold at which ``faces`` faces give at most ``bound`` false candidates."""
    wanted = similarity.similarity_for_fmr(bound / max(faces, 1)) if similarity else None
    return 100.0 if wanted is None else min(100.0, wanted)


def before(
    operation: str,
    params: dict[str, Any],
    obligations: Obligations,
    *,
    collection_faces: int | None = None,
    similarity: SimilarityModel | None = None,
) -> Applied:
    """Raise the threshold and cap the candidates of ``params`` in place.

    ``collection_faces``: the size of the collection a 1:N search compares with (None: unknown,
    no size-aware threshold and no expectation); ``similarity``: the engine's mapping.
    """
    raised: float | None = None
    capped: int | None = None
    minimum = obligations.min_similarity_pct
    name = _THRESHOLD_OF.get(operation)
    bound = obligations.max_expected_false_candidates
    searching = operation in IDENTIFICATION_ACTIONS and collection_faces is not None
    if bound is not None and searching and collection_faces is not None:
        size_aware = _size_aware(bound, collection_faces, similarity)
        minimum = size_aware if minimum is None else max(minimum, size_aware)
    if minimum is not None and name is not None:
        given = params.get(name)
        current = DEFAULT_THRESHOLD_PCT if given is None else float(given)
        if current < minimum:
            params[name] = float(minimum)
            raised = float(minimum)
    cap = obligations.max_candidates
    cap_name = _CAP_OF.get(operation)
    if cap is not None and cap_name is not None:
        given_cap = params.get(cap_name)
        if given_cap is None or int(given_cap) > cap:
            params[cap_name] = cap
            capped = cap
    threshold = expected = None
    if name is not None:
        given = params.get(name)
        threshold = DEFAULT_THRESHOLD_PCT if given is None else float(given)
    if searching and collection_faces is not None and similarity and threshold is not None:
        fmr = similarity.fmr_at(threshold)
        expected = None if fmr is None else collection_faces * fmr
    return Applied(raised, capped, threshold, expected)


def after(response: dict[str, Any], obligations: Obligations) -> dict[str, Any]:
    """The response with candidate lists capped and redacted fields removed (a new dict)."""
    out: dict[str, Any] = _redact(response, obligations.redact_fields)
    cap = obligations.max_candidates
    if cap is not None:
        for name in CANDIDATE_LISTS:
            if isinstance(out.get(name), list):
                out[name] = out[name][:cap]
    return out


def _redact(value: Any, fields: frozenset[str]) -> Any:
    if not fields:
        return value
    if isinstance(value, Mapping):
        return {k: _redact(v, fields) for k, v in value.items() if k not in fields}
    if isinstance(value, list):
        return [_redact(v, fields) for v in value]
    return value


def candidates(response: Mapping[str, Any]) -> int:
    """How many candidates (face or user matches) a response carries."""
    return sum(len(response.get(name) or ()) for name in CANDIDATE_LISTS)


def withheld(response: Mapping[str, Any]) -> dict[str, Any]:
    """The response as a caller sees it while its review is pending: no candidates."""
    return {k: ([] if k in HELD_FIELDS else v) for k, v in response.items()}
