"""Applying a decision's obligations to one request and its response (steps 4 and 6 of the
request path; the policy package decides *what* is owed, this module does it).

Before the work, on the validated parameters (snake_case):

* ``min_similarity_pct`` raises FaceMatchThreshold / SimilarityThreshold / UserMatchThreshold to
  at least the minimum (a caller's higher threshold stands; a lower or missing one is raised:
  never lowered).
* ``max_candidates`` caps MaxFaces / MaxUsers.

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


def before(operation: str, params: dict[str, Any], obligations: Obligations) -> Applied:
    """Raise the threshold and cap the candidates of ``params`` in place."""
    raised: float | None = None
    capped: int | None = None
    minimum = obligations.min_similarity_pct
    name = _THRESHOLD_OF.get(operation)
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
    return Applied(raised, capped)


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
