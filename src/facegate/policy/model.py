"""What a policy decision is asked about and what it answers: plain, frozen data.

The pipeline builds a :class:`PolicyRequest` from the authenticated key (its organisation and
registered use case), the operation, the collection and the ``X-Facegate-*`` request headers;
:class:`facegate.policy.engine.PolicyEngine` turns it into a :class:`Decision`. Nothing here
knows Cedar or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime


@dataclass(frozen=True)
class Organisation:
    """Who holds keys. ``country`` is ISO 3166-1 alpha-2 ("US"), ``region`` ISO 3166-2
    ("US-WA"), ``city`` a lower-case name ("seattle"); empty strings when not registered."""

    org_id: str
    name: str
    sector: str
    country: str = ""
    region: str = ""
    city: str = ""
    use_cases: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Principal:
    """The caller: one access key, bound to one organisation and one registered use case."""

    key_id: str
    use_case: str
    organisation: Organisation


@dataclass(frozen=True)
class CollectionRef:
    """The resource: a collection and the organisation that owns it (None: no collection)."""

    collection_id: str
    organisation_id: str
    face_count: int = 0


@dataclass(frozen=True)
class RequestContext:
    """Per-request facts, from headers or defaulted from the key's registration.

    ``now`` is timezone-aware UTC. Empty strings mean "not given".
    """

    now: datetime
    purpose: str
    case_ref: str = ""
    authorization_ref: str = ""
    authorization_issuer: str = ""
    realtime: bool = False
    exigent: bool = False
    camera: str = ""
    consent_ref: str = ""
    # The deployment gate (facegate.model_audit): whether a bias audit of the active model is
    # registered, and within the operator's bounds. Filled by the pipeline for the 1:N searches
    # only (false for other actions, which no policy but the gate reads); never from a header.
    model_audit_registered: bool = False
    model_audit_within_bounds: bool = False
    # Where the people in the images are (vocabulary.SETTINGS), from X-Facegate-Setting.
    setting: str = ""
    # The facial attributes the request asks the engine to infer (operations.FACE_ATTRIBUTES:
    # ALL expanded), and those it names one by one; empty for operations that infer none. Set
    # by the pipeline from the request's parameters (operations.requested_attributes).
    attributes: frozenset[str] = frozenset()
    attributes_named: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PolicyRequest:
    """One question: may ``principal`` perform ``action`` (a Rekognition operation name such as
    "SearchFacesByImage") on ``resource`` in ``context``?"""

    principal: Principal
    action: str
    resource: CollectionRef | None
    context: RequestContext


@dataclass(frozen=True)
class Obligations:
    """What an Allow demands, combined over every permit policy that allowed the request.

    Combination is always the strictest: the highest minimum similarity, the smallest candidate
    cap, the largest number of reviewers, the union of redacted fields, the shortest retention,
    the smallest number of expected false candidates (a permit's stated
    ``default_max_expected_false_candidates`` only where none states the bound itself: it is
    folded into ``max_expected_false_candidates`` and None after combination), the union of
    dropped attributes.
    """

    min_similarity_pct: float | None = None
    max_candidates: int | None = None
    reviewers_required: int = 0
    redact_fields: frozenset[str] = frozenset()
    retention_days: int | None = None
    max_expected_false_candidates: float | None = None
    drop_attributes: frozenset[str] = frozenset()
    default_max_expected_false_candidates: float | None = None

    @property
    def empty(self) -> bool:
        return self == Obligations()

    def to_json(self) -> dict[str, object]:
        """The obligations as JSON-ready data (decision records, audit records, admin API): a
        decision's combined obligations, whose default bound is folded in (not listed)."""
        return {
            "min_similarity_pct": self.min_similarity_pct,
            "max_candidates": self.max_candidates,
            "reviewers_required": self.reviewers_required,
            "redact_fields": sorted(self.redact_fields),
            "retention_days": self.retention_days,
            "max_expected_false_candidates": self.max_expected_false_candidates,
            "drop_attributes": sorted(self.drop_attributes),
        }


@dataclass(frozen=True)
class PolicyRef:
    """A policy that took part in a decision: its ``@id``, pack, effect and ``@reason``."""

    policy_id: str
    pack: str
    effect: str
    reason: str = ""
    source: str = ""


@dataclass(frozen=True)
class Decision:
    """The answer. ``determining`` lists the permits that allowed (on Allow) or the forbids that
    denied (on Deny; empty when nothing permitted: default deny). Any evaluation error denies and
    is listed in ``errors``. ``decision_id`` is unique and safe to show to the caller."""

    decision_id: str
    allowed: bool
    determining: tuple[PolicyRef, ...] = ()
    errors: tuple[str, ...] = ()
    obligations: Obligations = field(default_factory=Obligations)
    eval_ms: float = 0.0

    @property
    def policy_ids(self) -> tuple[str, ...]:
        return tuple(p.policy_id for p in self.determining)


def field_names(cls: type) -> frozenset[str]:
    """The field names of one of these dataclasses: the keys a JSON form of it may use."""
    return frozenset(f.name for f in fields(cls))
