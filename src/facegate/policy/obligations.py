"""Obligations: what an Allow demands, written as annotations on permit policies.

* ``@min_similarity("99")``: matches below this similarity (0-100) are not returned
  (``min_similarity_pct``).
* ``@max_candidates("50")``: at most this many candidates per search, 1-4096
  (``max_candidates``).
* ``@human_review("2")``: results are held until this many distinct people confirm them, 1-10
  (``reviewers_required``).
* ``@redact("ExternalImageId,UserId")``: these response fields are removed, from
  :data:`REDACTABLE_FIELDS` (``redact_fields``).
* ``@retention_days("1095")``: faces stored under this permit are deleted at the latest after
  this many days, 1-36500 (``retention_days``).
* ``@max_expected_false_candidates("0.01")``: a 1:N search may expect at most this many false
  candidates: the collection's size times the per-pair false match rate at the threshold used.
  The threshold is raised until it holds (never lowered); 0.000001-1000
  (``max_expected_false_candidates``; see :mod:`facegate.enforce`).
* ``@default_max_expected_false_candidates("1")``: the same bound, as a default that applies
  only when no satisfied permit states ``@max_expected_false_candidates`` itself; the base
  pack's ``base.default-expected-false-candidates`` puts 1 on every 1:N search, and an
  operator's permit that states its own bound (stricter or looser) replaces it
  (``default_max_expected_false_candidates``; same range).
* ``@drop_attributes("EMOTIONS,GENDER")``: these facial attributes (Rekognition's names,
  :data:`facegate.operations.FACE_ATTRIBUTES`) are removed from the request before any
  inference, so the engine never computes them, and from the answer as well; the caller gets
  the other attributes it asked for (``drop_attributes``; see :mod:`facegate.enforce`). Use
  it where an attribute may not be inferred but the request may otherwise be served (a
  request for ``ALL``); use a forbid on ``context.attributes_named`` to refuse a request that
  names the attribute.

Values are checked when a pack loads (:func:`parse_obligations` raises ``ValueError`` with the
reason; the loader turns it into a ``PolicyLoadError`` naming the pack and policy), so a typo
never reaches a request. Obligations are allowed only on permits: a forbid has nothing to oblige.

Combination (:func:`combine`) is over every permit that was satisfied on an Allow and is always
the strictest: the highest minimum similarity, the smallest candidate cap, the most reviewers,
the union of redacted fields, the shortest retention, the fewest expected false candidates, the
union of dropped attributes. A permit therefore never weakens what
another permit demands, whatever order packs are loaded in. The one exception is the stated
default: the lowest ``@default_max_expected_false_candidates`` becomes the combined
``max_expected_false_candidates`` only when no satisfied permit states that bound itself (the
combined ``default_max_expected_false_candidates`` is always None: it is folded in).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import TypeVar

from facegate.operations import FACE_ATTRIBUTES
from facegate.policy.model import Obligations

MIN_SIMILARITY = "min_similarity"
MAX_CANDIDATES = "max_candidates"
HUMAN_REVIEW = "human_review"
REDACT = "redact"
RETENTION_DAYS = "retention_days"
MAX_EXPECTED_FALSE = "max_expected_false_candidates"
DEFAULT_MAX_EXPECTED_FALSE = "default_max_expected_false_candidates"
DROP_ATTRIBUTES = "drop_attributes"

OBLIGATION_ANNOTATIONS: frozenset[str] = frozenset(
    {
        MIN_SIMILARITY,
        MAX_CANDIDATES,
        HUMAN_REVIEW,
        REDACT,
        RETENTION_DAYS,
        MAX_EXPECTED_FALSE,
        DEFAULT_MAX_EXPECTED_FALSE,
        DROP_ATTRIBUTES,
    }
)

REDACTABLE_FIELDS: frozenset[str] = frozenset(
    {"ExternalImageId", "ImageId", "UserId", "Confidence", "Landmarks", "Pose", "Quality"}
)
"""Rekognition response fields a policy may strip. Identifiers that link a face to a person or a
source image (ExternalImageId, ImageId, UserId) and face analysis (Confidence, Landmarks, Pose,
Quality). Not redactable: FaceId and BoundingBox (the caller cannot act on, review or delete a
result without them) and Similarity (a reviewer needs the score to judge a match)."""

_INT = re.compile(r"[0-9]{1,9}")
_DECIMAL = re.compile(r"[0-9]{1,3}(\.[0-9]{1,6})?")


def _int(name: str, text: str, low: int, high: int) -> int:
    # A strict pattern: int() would also accept " 7", "+7" and "1_000".
    if not _INT.fullmatch(text):
        raise ValueError(f"@{name}({text!r}) is not a whole number")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"@{name}({text!r}) must be between {low} and {high}")
    return value


def _similarity(text: str) -> float:
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f'@{MIN_SIMILARITY}({text!r}) is not a number such as "99" or "99.5"')
    value = float(text)
    if not (math.isfinite(value) and 0.0 <= value <= 100.0):
        raise ValueError(f"@{MIN_SIMILARITY}({text!r}) must be between 0 and 100")
    return value


_AMOUNT = re.compile(r"[0-9]{1,4}(\.[0-9]{1,6})?")


def _expected(text: str, name: str = MAX_EXPECTED_FALSE) -> float:
    if not _AMOUNT.fullmatch(text):
        raise ValueError(f'@{name}({text!r}) is not a number such as "0.01"')
    value = float(text)
    if not 1e-6 <= value <= 1000.0:
        raise ValueError(f"@{name}({text!r}) must be between 0.000001 and 1000")
    return value


def _redact(text: str) -> frozenset[str]:
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise ValueError(f"@{REDACT}({text!r}) has an empty field name")
    unknown = sorted(set(names) - REDACTABLE_FIELDS)
    if unknown:
        allowed = ", ".join(sorted(REDACTABLE_FIELDS))
        raise ValueError(f"@{REDACT}: cannot redact {', '.join(unknown)} (allowed: {allowed})")
    return frozenset(names)


def _attributes(text: str) -> frozenset[str]:
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise ValueError(f"@{DROP_ATTRIBUTES}({text!r}) has an empty attribute name")
    unknown = sorted(set(names) - set(FACE_ATTRIBUTES))
    if unknown:
        allowed = ", ".join(sorted(FACE_ATTRIBUTES))
        raise ValueError(
            f"@{DROP_ATTRIBUTES}: unknown attribute {', '.join(unknown)} (allowed: {allowed})"
        )
    return frozenset(names)


def parse_obligations(annotations: Mapping[str, str]) -> Obligations:
    """The obligations a permit's annotations demand (other annotations are ignored).

    Raises ``ValueError`` naming the annotation and the accepted range on a bad value.
    """
    min_similarity = max_candidates = retention = expected = default_expected = None
    reviewers = 0
    redact: frozenset[str] = frozenset()
    if MIN_SIMILARITY in annotations:
        min_similarity = _similarity(annotations[MIN_SIMILARITY])
    if MAX_CANDIDATES in annotations:
        max_candidates = _int(MAX_CANDIDATES, annotations[MAX_CANDIDATES], 1, 4096)
    if HUMAN_REVIEW in annotations:
        reviewers = _int(HUMAN_REVIEW, annotations[HUMAN_REVIEW], 1, 10)
    if REDACT in annotations:
        redact = _redact(annotations[REDACT])
    if RETENTION_DAYS in annotations:
        retention = _int(RETENTION_DAYS, annotations[RETENTION_DAYS], 1, 36500)
    if MAX_EXPECTED_FALSE in annotations:
        expected = _expected(annotations[MAX_EXPECTED_FALSE])
    if DEFAULT_MAX_EXPECTED_FALSE in annotations:
        text = annotations[DEFAULT_MAX_EXPECTED_FALSE]
        default_expected = _expected(text, DEFAULT_MAX_EXPECTED_FALSE)
    dropped: frozenset[str] = frozenset()
    if DROP_ATTRIBUTES in annotations:
        dropped = _attributes(annotations[DROP_ATTRIBUTES])
    return Obligations(
        min_similarity_pct=min_similarity,
        max_candidates=max_candidates,
        reviewers_required=reviewers,
        redact_fields=redact,
        retention_days=retention,
        max_expected_false_candidates=expected,
        drop_attributes=dropped,
        default_max_expected_false_candidates=default_expected,
    )


_Number = TypeVar("_Number", int, float)


def _lowest(values: Iterable[_Number | None]) -> _Number | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def combine(parts: Iterable[Obligations]) -> Obligations:
    """The strictest combination of ``parts`` (see the module docstring); empty in, empty out."""
    items = list(parts)
    similarities = [o.min_similarity_pct for o in items if o.min_similarity_pct is not None]
    stated = _lowest(o.max_expected_false_candidates for o in items)
    default = _lowest(o.default_max_expected_false_candidates for o in items)
    return Obligations(
        min_similarity_pct=max(similarities) if similarities else None,
        max_candidates=_lowest(o.max_candidates for o in items),
        reviewers_required=max((o.reviewers_required for o in items), default=0),
        redact_fields=frozenset().union(*(o.redact_fields for o in items)),
        retention_days=_lowest(o.retention_days for o in items),
        max_expected_false_candidates=default if stated is None else stated,
        drop_attributes=frozenset().union(*(o.drop_attributes for o in items)),
    )


def describe(obligations: Obligations) -> str:
    """One line for operators, e.g. ``min similarity 99%, 2 reviewers, redact UserId``."""
    parts = []
    if obligations.min_similarity_pct is not None:
        parts.append(f"min similarity {obligations.min_similarity_pct:g}%")
    if obligations.max_candidates is not None:
        parts.append(f"max {obligations.max_candidates} candidates")
    if obligations.reviewers_required:
        n = obligations.reviewers_required
        parts.append(f"human review by {n} reviewer{'s' if n > 1 else ''}")
    if obligations.redact_fields:
        parts.append(f"redact {','.join(sorted(obligations.redact_fields))}")
    if obligations.retention_days is not None:
        parts.append(f"retain at most {obligations.retention_days} days")
    if obligations.max_expected_false_candidates is not None:
        bound = obligations.max_expected_false_candidates
        parts.append(f"at most {bound:g} expected false candidates")
    if obligations.default_max_expected_false_candidates is not None:
        bound = obligations.default_max_expected_false_candidates
        parts.append(f"at most {bound:g} expected false candidates unless a permit says otherwise")
    if obligations.drop_attributes:
        parts.append(f"drop attributes {','.join(sorted(obligations.drop_attributes))}")
    return ", ".join(parts) if parts else "none"
