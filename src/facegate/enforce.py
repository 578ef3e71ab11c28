"""Applying a decision's obligations to one request and its response (steps 10 and 11 of the
request path; the policy package decides *what* is owed, this module does it).

Before the work, on the validated parameters (snake_case):

Which parameter carries an operation's threshold and cap, and its default, is in its row of
:mod:`facegate.operations`; every operation that compares faces has a threshold.

* ``min_similarity_pct`` raises FaceMatchThreshold / SimilarityThreshold / UserMatchThreshold to
  at least the minimum (a caller's higher threshold stands; a lower or missing one is raised:
  never lowered).
* ``max_candidates`` caps MaxFaces / MaxUsers.
* ``max_expected_false_candidates`` (identification: faces compared with a collection's): a
  search of a collection of N faces at a threshold whose per-pair false match rate is f returns
  about N x f false candidates; the
  threshold is raised to the lowest Similarity whose calibrated rate is at most bound / N
  (:meth:`~facegate.engine.similarity.SimilarityModel.similarity_for_fmr`). With an uncalibrated
  mapping nothing can be promised, so the threshold goes to 100 (fail closed).

  The base pack bounds every 1:N search by 1 expected false candidate unless a permit states
  its own bound (``base.default-expected-false-candidates``).

Every identification, with or without that obligation, reports ``expected_false_candidates``:
N x f at the threshold finally used (the scale's rate at 70 below Similarity 70, a lower bound;
None with an uncalibrated mapping). The pipeline puts it in the audit record and the
``x-facegate-expected-false-candidates`` response header. A threshold raised by an obligation
is reported too (``threshold_raised_to``, ``threshold_requested_pct``): the pipeline sends
``x-facegate-threshold-raised-to`` and ``x-facegate-threshold-requested`` and records both.

* ``drop_attributes`` (operations whose row has an ``attributes_param``: DetectFaces,
  IndexFaces): the dropped facial attributes are taken out of the request's ``Attributes`` /
  ``DetectionAttributes`` (with ``ALL`` expanded to every attribute first), so the engine never
  infers them; what the request asked for and what was dropped are reported for the audit
  record.

After the work, on the response in wire form (PascalCase):

* candidate lists (the row's ``candidate_fields``: FaceMatches, UserMatches) are cut to
  ``max_candidates`` (CompareFaces has no MaxFaces parameter);
* ``redact_fields`` are removed wherever they appear, and so are the members of dropped
  attributes (``Emotions``, ``Gender``...: defence in depth, the engine was not asked for
  them);
* ``reviewers_required`` holds the whole answer of an operation that compares faces, whatever its
  result (:func:`must_hold`); the caller sees it without the row's ``held_fields`` (anything
  that tells who matched, or did not) until enough distinct reviewers confirm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from facegate import operations
from facegate.engine.similarity import SimilarityModel
from facegate.operations import OperationSpec
from facegate.policy.model import Obligations


@dataclass(frozen=True)
class Applied:
    """What was changed before the work, for the decision record and the response headers."""

    threshold_raised_to: float | None = None
    candidates_capped_to: int | None = None
    threshold_pct: float | None = None
    # the threshold the request asked for (its parameter, or the operation's default) when an
    # obligation raised it: the caller is told (header, audit record)
    threshold_requested_pct: float | None = None
    expected_false_candidates: float | None = None
    attributes_requested: frozenset[str] = frozenset()
    attributes_dropped: frozenset[str] = frozenset()


def size_aware_threshold(bound: float, faces: int, similarity: SimilarityModel | None) -> float:
    """The lowest threshold at which ``faces`` faces give at most ``bound`` false candidates
    (100 when the mapping promises nothing). The one formula: ``facegate bias lineup
    --max-expected-false-candidates`` measures the threshold this returns."""
    wanted = similarity.similarity_for_fmr(bound / max(faces, 1)) if similarity else None
    return 100.0 if wanted is None else min(100.0, wanted)


def before(
    operation: OperationSpec,
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
    raised = requested_pct = None
    capped: int | None = None
    minimum = obligations.min_similarity_pct
    name = operation.threshold_param
    default = operation.default_threshold_pct  # set with threshold_param (OperationSpec)
    bound = obligations.max_expected_false_candidates
    searching = operation.identification and collection_faces is not None
    if bound is not None and searching and collection_faces is not None:
        size_aware = size_aware_threshold(bound, collection_faces, similarity)
        minimum = size_aware if minimum is None else max(minimum, size_aware)
    if minimum is not None and name is not None and default is not None:
        given = params.get(name)
        current = default if given is None else float(given)
        if current < minimum:
            params[name] = float(minimum)
            raised, requested_pct = float(minimum), current
    cap = obligations.max_candidates
    cap_name = operation.cap_param
    if cap is not None and cap_name is not None:
        given_cap = params.get(cap_name)
        if given_cap is None or int(given_cap) > cap:
            params[cap_name] = cap
            capped = cap
    threshold = expected = None
    if name is not None:
        given = params.get(name)
        threshold = default if given is None else float(given)
    if searching and collection_faces is not None and similarity and threshold is not None:
        fmr = similarity.fmr_at(threshold)
        expected = None if fmr is None else collection_faces * fmr
    requested, dropped = _drop_attributes(operation, params, obligations.drop_attributes)
    return Applied(
        threshold_raised_to=raised,
        candidates_capped_to=capped,
        threshold_pct=threshold,
        threshold_requested_pct=requested_pct,
        expected_false_candidates=expected,
        attributes_requested=requested,
        attributes_dropped=dropped,
    )


def _drop_attributes(
    operation: OperationSpec, params: dict[str, Any], drop: frozenset[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """(asked for, dropped): the facial attributes of the request, and those taken out of its
    parameter in place (the parameter then lists the others, or ``DEFAULT`` when none is
    left, so nothing dropped reaches the engine whatever form the request had)."""
    name = operation.attributes_param
    if name is None:
        return frozenset(), frozenset()
    requested = operations.requested_attributes(params.get(name))
    dropped = requested & drop
    if dropped:
        kept = [a for a in operations.FACE_ATTRIBUTES if a in requested - dropped]
        params[name] = kept or ["DEFAULT"]
    return requested, dropped


def after(
    operation: OperationSpec, response: dict[str, Any], obligations: Obligations
) -> dict[str, Any]:
    """The response with candidate lists capped, redacted fields and the members of dropped
    attributes removed (a new dict)."""
    members = frozenset(operations.ATTRIBUTE_MEMBERS[a] for a in obligations.drop_attributes)
    if operation.attributes_param is None:
        members = frozenset()
    out: dict[str, Any] = _redact(response, obligations.redact_fields | members)
    cap = obligations.max_candidates
    if cap is not None:
        for name in operation.candidate_fields:
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


def candidates(operation: OperationSpec, response: Mapping[str, Any]) -> int:
    """How many candidates (face or user matches) a response carries."""
    return sum(len(response.get(name) or ()) for name in operation.candidate_fields)


def must_hold(operation: OperationSpec, obligations: Obligations) -> bool:
    """Whether the answer is held for human review: the operation compares faces and the
    decision demands reviewers. Decided before the work and whatever its result, so that a held
    answer says nothing about whether anyone matched."""
    return operation.compares_faces and obligations.reviewers_required > 0


def withheld(operation: OperationSpec, response: Mapping[str, Any]) -> dict[str, Any]:
    """The response as a caller sees it while its review is pending: every member that tells
    who matched, or did not (the row's ``held_fields``), is present and empty, whatever the
    result, so a pending answer has the same form with or without a match."""
    out = {k: v for k, v in response.items() if k not in operation.held_fields}
    for name in operation.held_fields:
        out[name] = []
    return out
