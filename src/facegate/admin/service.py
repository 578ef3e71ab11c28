"""What operators can do, as plain Python over the store: no HTTP, no rendering.

The admin API (:mod:`facegate.admin.routes`) and the CLI (:mod:`facegate.cli.admin`) both call
:class:`AdminService`; authorisation by role happens in front of it (the routes, the CLI's review
commands), the rules about the data happen here or in the repositories. Every method is
blocking (SQLite): call it from a thread in async code. Errors are ``FacegateError``s:
``InvalidParameterException`` naming the bad value, ``ResourceNotFoundException`` for an unknown
id, ``ResourceAlreadyExistsException`` / ``ConflictException`` for a clash with stored state.

Human review (:meth:`AdminService.vote`) enforces:

* the voter is an active operator account with a reviewing role (``admin`` or ``reviewer``),
  authenticated by their own token by the caller of this method;
* distinct people: one vote per operator per review, and a review is released only when
  ``reviewers_required`` distinct operators confirmed it (``ReviewRepository.vote``, in one
  transaction); one rejection rejects it and discards the held results;
* only a pending review can be voted on (released, rejected or expired ones: Conflict);
* every vote carries a note (what the reviewer checked, or why they rejected), recorded with the
  operator id and the time (EU AI Act Art. 12(3)(d): the persons who verified the results);
* distinct people, not only distinct accounts (``store.reviews._check_independent``): an
  operator who created an account, or set a credential it holds, controls it; so does one who
  did either within the cooling-off period (``FACEGATE_REVIEW_COOLING_OFF_S``, 7 days), since
  they could have replaced the credential themselves, as that account. A confirmation is
  refused (``NotIndependent``, 409, recorded as ``review.refused``) when the voter holds a
  credential another operator set, or when the voter and a reviewer who already confirmed have
  a controller in common (one of them included). Local actors (``cli``, the data directory's
  administrator) control nobody here: they can change the store directly.

Not enforceable, and so not claimed: that the reviewer is not the requester. Requests are made
with access keys held by organisations; operator accounts belong to no organisation and hold no
access keys, so facegate cannot tell whether a reviewer works for the requesting organisation.
Deployments keep the two apart by giving reviewer accounts only to people outside the requesting
team and issuing them no access keys.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from facegate.admin.auth import (
    REVIEWERS,
    check_password_rules,
    hash_password,
    new_token,
    token_sha256,
    verify_password,
)
from facegate.admin.explain import request_from_body
from facegate.audit.record import EventRecord, EventSink
from facegate.errors import (
    AccessDeniedException,
    ConflictException,
    InternalServerError,
    InvalidParameterException,
    ResourceNotFoundException,
)
from facegate.governance import LOCAL_ORG, Registry, validate_use_cases
from facegate.model_audit import AuditSummary, GateBounds, GateStatus, evaluate, summarise_bytes
from facegate.policy.engine import PolicyEngine
from facegate.policy.loader import PolicyInfo
from facegate.policy.model import CollectionRef, Decision, PolicyRequest
from facegate.services import Services
from facegate.store.collections import CollectionStats
from facegate.store.decisions import DecisionRecord, DecisionRepository
from facegate.store.keys import KeyRecord
from facegate.store.model_audits import ModelAuditRecord, ModelAuditRepository, new_audit_id
from facegate.store.operators import (
    LOCAL_ACTORS,
    ROLES,
    Control,
    OperatorRecord,
    OperatorRepository,
)
from facegate.store.orgs import OrganisationRecord
from facegate.store.reviews import (
    DEFAULT_COOLING_OFF_S,
    EXPIRED,
    PENDING,
    REJECTED,
    RELEASED,
    VERDICTS,
    NotIndependent,
    ReviewRecord,
    ReviewRepository,
)
from facegate.store.store import FaceStore
from facegate.wire.keys import NewKey

REVIEW_STATUSES: tuple[str, ...] = (PENDING, RELEASED, REJECTED, EXPIRED)
OPERATOR_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
MAX_NAME = 200
MAX_NOTE = 1000
MAX_EXPIRY_DAYS = 3650
MAX_LIST = 1000

CollectionLookup = Callable[[str, str], CollectionRef | None]
"""(organisation, collection id) -> the organisation's collection of that id, with its face
count (None: the organisation holds none; ids are per organisation)."""


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


@dataclass(frozen=True)
class ModelGate:
    """The deployment gate now: the active model's versions, the bounds, the registered audit
    of that model (None: none) with its summary, and the gate's verdict."""

    model_version: str
    similarity_version: str
    bounds: GateBounds
    audit: ModelAuditRecord | None
    summary: AuditSummary | None
    status: GateStatus


@dataclass(frozen=True)
class Explanation:
    """A policy request and the decision the active packs give it (nothing is stored)."""

    request: PolicyRequest
    decision: Decision


def printable(value: str) -> bool:
    """Whether ``value`` is text a name, note or description may hold: no control characters
    (C0, DEL) and no unpaired surrogates (which a JSON escape or a command line's undecodable
    bytes can produce, and which cannot be stored as UTF-8)."""
    return not any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value)


def _text(value: str, what: str, max_len: int = MAX_NAME) -> str:
    cleaned = value.strip()
    if not cleaned or len(cleaned) > max_len or not printable(value):
        raise InvalidParameterException(f"{what} has 1-{max_len} printable characters.")
    return cleaned


def _check_key_description(description: str) -> None:
    """A key description may be empty, and has at most :data:`MAX_NAME` printable
    characters."""
    if len(description) > MAX_NAME or not printable(description):
        raise InvalidParameterException(
            f"A key description has up to {MAX_NAME} printable characters."
        )


class AdminService:
    """Organisations, keys, operators, policies, decisions and reviews.

    ``policy`` may be None for callers that never ask about policies (the CLI); ``collections``
    resolves a collection id in :meth:`explain` (None: a named collection is taken to belong to
    the principal's organisation and to be empty). ``clock`` gives epoch seconds."""

    def __init__(
        self,
        *,
        registry: Registry,
        operators: OperatorRepository,
        reviews: ReviewRepository,
        decisions: DecisionRepository,
        clock: Callable[[], float],
        policy: PolicyEngine | None = None,
        collections: CollectionLookup | None = None,
        events: EventSink | None = None,
        actor: str = "cli",
        model_audits: ModelAuditRepository | None = None,
        active_model: tuple[str, str] | None = None,
        gate: GateBounds | None = None,
        faces: FaceStore | None = None,
        cooling_off_s: float = DEFAULT_COOLING_OFF_S,
        served_models: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.registry = registry
        self.operators = operators
        self.reviews = reviews
        self.decisions = decisions
        self.clock = clock
        self._policy = policy
        self._collections = collections
        self._events = events
        self.actor = actor
        self._model_audits = model_audits
        self._active_model = active_model
        # (model, similarity) of every descriptor model collections may use here (issue 19)
        self._served_models = served_models
        self.gate = gate or GateBounds()
        self._faces = faces
        self.cooling_off_s = cooling_off_s

    def as_actor(self, actor: str) -> AdminService:
        """This service acting for ``actor`` (an operator id), who is named in the audit
        records of the changes it makes."""
        twin = copy.copy(self)
        twin.actor = actor
        return twin

    def _event(
        self, kind: str, action: str, subject: str, org_id: str = "", **details: Any
    ) -> None:
        """Record a change in the audit trail (the sink raises if it cannot: fail closed)."""
        if self._events is not None:
            self._events(
                EventRecord(
                    at=self.clock(),
                    kind=kind,
                    action=action,
                    actor=self.actor,
                    subject=subject,
                    org_id=org_id,
                    details=details,
                )
            )

    # --- organisations -------------------------------------------------------------------------

    def create_org(
        self,
        org_id: str,
        *,
        name: str,
        sector: str,
        use_cases: tuple[str, ...],
        country: str = "",
        region: str = "",
        city: str = "",
    ) -> OrganisationRecord:
        """Register an organisation (validated by :class:`~facegate.governance.Registry`)."""
        record = self.registry.create_org(
            org_id,
            name=_text(name, "An organisation name"),
            sector=sector,
            use_cases=use_cases,
            country=country,
            region=region,
            city=city,
        )
        self._org_created(record)
        return record

    def ensure_local_org(self) -> OrganisationRecord:
        """The ``local`` organisation of the bootstrap key (created, and recorded, if missing).
        Several servers starting at once on one store: one creates it and records the event;
        the others get the stored record and record nothing."""
        existing = self.registry.orgs.get(LOCAL_ORG)
        if existing is not None:
            return existing
        record = self.registry.create_local_org()
        if record is None:  # created a moment ago by another server
            return self.registry.orgs.require(LOCAL_ORG)
        self._org_created(record)
        return record

    def _org_created(self, record: OrganisationRecord) -> None:
        self._event(
            "registry", "org.create", record.org_id, record.org_id, sector=record.sector,
            country=record.country, region=record.region, city=record.city,
            use_cases=list(record.use_cases),
        )  # fmt: skip

    def orgs(self) -> list[OrganisationRecord]:
        return self.registry.orgs.list()

    def org(self, org_id: str) -> OrganisationRecord:
        return self.registry.orgs.require(org_id)

    def disable_org(self, org_id: str) -> OrganisationRecord:
        """Disable an organisation: its keys stop working at once (``Registry.principal``).
        Idempotent; the first disabling time is kept."""
        if not self.registry.orgs.disable(org_id, self.clock()):
            raise ResourceNotFoundException(f"Organisation {org_id} does not exist.")
        self._event("registry", "org.disable", org_id, org_id)
        return self.org(org_id)

    def set_use_cases(self, org_id: str, use_cases: tuple[str, ...]) -> OrganisationRecord:
        """Replace the registered use cases. Keys bound to a use case that is dropped stop
        working (their principal no longer resolves) but are not revoked."""
        self.org(org_id)
        record = self.registry.orgs.set_use_cases(org_id, validate_use_cases(use_cases))
        self._event("registry", "org.use_cases", org_id, org_id, use_cases=list(record.use_cases))
        return record

    # --- access keys ---------------------------------------------------------------------------

    def create_key(
        self,
        org_id: str,
        use_case: str | None = None,
        description: str = "",
        expires_in_days: int | None = None,
    ) -> NewKey:
        """A key for ``org_id`` bound to ``use_case`` (default: the organisation's only use
        case). The returned secret exists nowhere else in clear: show it once."""
        org = self.org(org_id)
        if use_case is None:
            if len(org.use_cases) != 1:
                raise InvalidParameterException(
                    f"Organisation {org_id} registered {', '.join(org.use_cases)}: "
                    "choose one use case for the key."
                )
            use_case = org.use_cases[0]
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise InvalidParameterException(
                f"Key expiry is 1-{MAX_EXPIRY_DAYS} days, not {expires_in_days}."
            )
        _check_key_description(description)
        ttl_s = expires_in_days * 86400.0 if expires_in_days is not None else None
        key = self.registry.create_key(org_id, use_case, description, ttl_s)
        self._key_created(key, org_id, use_case)
        return key

    def create_first_key(self, org_id: str, use_case: str, description: str = "") -> NewKey | None:
        """The bootstrap key: a key (no expiry) for ``org_id`` and ``use_case``, created and
        recorded only if the store holds no key at all, checked and inserted in one write
        transaction. None when a key exists (also one another server created concurrently)."""
        _check_key_description(description)
        key = self.registry.create_first_key(org_id, use_case, description)
        if key is not None:
            self._key_created(key, org_id, use_case)
        return key

    def _key_created(self, key: NewKey, org_id: str, use_case: str) -> None:
        self._event(
            "registry", "key.create", key.access_key_id, org_id, use_case=use_case,
            expires_at=key.expires_at,
        )  # fmt: skip

    def keys(self, org_id: str | None = None) -> list[KeyRecord]:
        """Every key (of ``org_id`` if given, which must exist), oldest first. Records carry the
        sealed secret; views never show it."""
        if org_id is not None:
            self.org(org_id)
        return [k for k in self.registry.keys.list() if org_id is None or k.org_id == org_id]

    def revoke_key(self, access_key_id: str) -> KeyRecord:
        """Revoke a key (idempotent: the first revocation time is kept)."""
        if not self.registry.keys.revoke(access_key_id):
            raise ResourceNotFoundException(f"Access key {access_key_id} does not exist.")
        record = self.registry.keys.record(access_key_id)
        assert record is not None
        self._event("registry", "key.revoke", access_key_id, record.org_id or "")
        return record

    def rotate_key(self, access_key_id: str) -> NewKey:
        """Replace a key: a new key for the same organisation, use case and description (and,
        if the old one expires, the same lifetime from now), then the old key is revoked. The
        returned secret is shown once. Refused for a revoked key."""
        old = self.registry.keys.record(access_key_id)
        if old is None:
            raise ResourceNotFoundException(f"Access key {access_key_id} does not exist.")
        if old.revoked_at is not None or old.org_id is None:
            raise ConflictException(f"Access key {access_key_id} is revoked: issue a new key.")
        days = None
        if old.expires_at is not None:
            days = max(1, min(MAX_EXPIRY_DAYS, round((old.expires_at - old.created_at) / 86400)))
        new = self.create_key(old.org_id, old.use_case, old.description, days)
        self.registry.keys.revoke(access_key_id)
        self._event(
            "registry", "key.rotate", access_key_id, old.org_id,
            replaced_by=new.access_key_id,
        )  # fmt: skip
        return new

    # --- operators -----------------------------------------------------------------------------

    def operator_list(self) -> list[OperatorRecord]:
        return self.operators.list()

    def create_operator(
        self, operator_id: str, display_name: str, role: str
    ) -> tuple[OperatorRecord, str]:
        """A new operator and their token; only the token's hash is stored, so the token
        returned here is the only copy: show it once."""
        if not OPERATOR_ID.fullmatch(operator_id):
            raise InvalidParameterException(
                f"Invalid operator id {operator_id!r}: lower-case letters, digits, '.', '_', '-'"
                " (1-63, e.g. 'alice')."
            )
        if operator_id in LOCAL_ACTORS:
            raise InvalidParameterException(
                f"Operator id {operator_id!r} is reserved (it names a local actor in the audit "
                "trail)."
            )
        if role not in ROLES:
            raise InvalidParameterException(f"Unknown role {role!r}; known: {', '.join(ROLES)}.")
        record = OperatorRecord(
            operator_id=operator_id,
            display_name=_text(display_name, "An operator name"),
            role=role,
            created_at=self.clock(),
            created_by=self.actor,
            token_set_by=self.actor,
        )
        token = new_token()
        self.operators.insert(record, token_sha256(token))
        self._event("registry", "operator.create", operator_id, role=role)
        return record, token

    def rotate_own_token(
        self, operator: OperatorRecord, note: str = ""
    ) -> tuple[OperatorRecord, str]:
        """A new token for ``operator`` (the authenticated caller), set by themselves: the old
        one stops working at once. An operator whose token another operator set (their
        creator) does this before their confirmations count. The token is shown once."""
        if len(note) > MAX_NOTE or not printable(note):
            raise InvalidParameterException(f"A note has up to {MAX_NOTE} printable characters.")
        token = new_token()
        if not self.operators.set_token(
            operator.operator_id, token_sha256(token), set_by=operator.operator_id,
            at=self.clock(),
        ):  # fmt: skip
            raise ResourceNotFoundException(f"Operator {operator.operator_id} does not exist.")
        details = {"note": note.strip()} if note.strip() else {}
        self.as_actor(operator.operator_id)._event(
            "registry", "operator.rotate_token", operator.operator_id, **details
        )
        record = self.operators.get(operator.operator_id)
        assert record is not None
        return record, token

    def disable_operator(self, operator_id: str) -> OperatorRecord:
        """Disable an operator: their token stops working at once. Idempotent."""
        if not self.operators.disable(operator_id, self.clock()):
            raise ResourceNotFoundException(f"Operator {operator_id} does not exist.")
        record = self.operators.get(operator_id)
        assert record is not None
        self._event("registry", "operator.disable", operator_id)
        return record

    def set_password(self, operator_id: str, password: str) -> OperatorRecord:
        """Set an operator's console password (12-1024 characters; stored as a scrypt hash,
        see :func:`facegate.admin.auth.hash_password`). Their open console sessions end."""
        record = self.operators.get(operator_id)
        if record is None:
            raise ResourceNotFoundException(f"Operator {operator_id} does not exist.")
        check_password_rules(password)
        self.operators.set_password_hash(
            operator_id, hash_password(password), set_by=self.actor, at=self.clock()
        )
        self._event("registry", "operator.set_password", operator_id)
        updated = self.operators.get(operator_id)
        assert updated is not None
        return updated

    def change_own_password(self, operator_id: str, current: str, new: str) -> OperatorRecord:
        """Change ``operator_id``'s console password to ``new``, proven by ``current`` (two
        scrypt hashes: run it within the caller's hashing bound and sign-in throttle). The
        password is then set by the operator themselves. ``AccessDeniedException`` when
        ``current`` is wrong; ``InvalidParameterException`` when ``new`` breaks the rules or
        equals ``current``."""
        check_password_rules(new)
        if new == current:
            raise InvalidParameterException("The new password must differ from the current one.")
        if self.check_password(operator_id, current) is None:
            raise AccessDeniedException("The current password is wrong.")
        return self.as_actor(operator_id).set_password(operator_id, new)

    def control(self, operator_id: str) -> Control:
        """Who controls ``operator_id`` now (see the module docstring): whose confirmations
        cannot count with theirs."""
        return self.operators.control(operator_id, self.clock(), self.cooling_off_s)

    def check_password(self, operator_id: str, password: str) -> OperatorRecord | None:
        """The active operator ``operator_id`` if ``password`` is their console password (None
        otherwise: unknown, disabled, no password or wrong password, told apart to nobody;
        the scrypt work is done in every case)."""
        stored = (
            self.operators.password_hash(operator_id)
            if OPERATOR_ID.fullmatch(operator_id)
            else None
        )
        if not verify_password(password, stored) or stored is None:
            return None
        record = self.operators.get(operator_id)
        return record if record is not None and record.active else None

    def record_event(self, kind: str, action: str, subject: str = "", **details: Any) -> None:
        """Record an event of this actor (a console sign-in, a downloaded report...) in the
        audit trail. ``details`` name ids and counts, never a password or a session id."""
        self._event(kind, action, subject, **details)

    # --- policies and decisions ----------------------------------------------------------------

    @property
    def policy(self) -> PolicyEngine:
        if self._policy is None:
            raise InternalServerError("The policy engine is not loaded here.")
        return self._policy

    def policies(self) -> tuple[tuple[str, ...], tuple[PolicyInfo, ...]]:
        """The active packs (``base`` first) and their policies in load order."""
        return self.policy.packs, self.policy.policies()

    def explain(self, body: Mapping[str, Any]) -> Explanation:
        """Decide the request ``body`` describes (see :mod:`facegate.admin.explain`) with the
        active packs. Nothing is stored: an explanation is not a request."""
        request = request_from_body(
            body,
            orgs=self.registry.orgs,
            collections=self._collections,
            now=datetime.fromtimestamp(self.clock(), UTC),
        )
        return Explanation(request, self.policy.decide(request))

    def recent_decisions(self, limit: int = 50, org_id: str | None = None) -> list[DecisionRecord]:
        """The newest ``limit`` (1-1000) stored decisions, newest first."""
        return self.decisions.recent(max(1, min(limit, MAX_LIST)), org_id)

    def decision(self, decision_id: str) -> DecisionRecord:
        record = self.decisions.get(decision_id)
        if record is None:
            raise ResourceNotFoundException(f"Decision {decision_id} does not exist.")
        return record

    # --- the deployment gate: bias audits of the active model ----------------------------------

    @property
    def model_audits(self) -> ModelAuditRepository:
        if self._model_audits is None:
            raise InternalServerError("Model audits are not available here.")
        return self._model_audits

    @property
    def active_model(self) -> tuple[str, str]:
        """(descriptor model version, similarity mapping version) of the engine in use."""
        if self._active_model is None:
            raise InternalServerError("The active model is not known here.")
        return self._active_model

    def register_model_audit(self, report: bytes, note: str = "") -> ModelAuditRecord:
        """Register a ``facegate bias verification --json`` report (its bytes: parsed, checked
        and hashed by :func:`facegate.model_audit.summarise_bytes`) for the active model.

        Refused (``InvalidParameterException``) when the layout is wrong, or when the report
        measured another model or similarity mapping than the engine's (the default model's,
        or another descriptor model this server serves collections with: the gate of a
        collection reads its own model's audit): an audit only speaks for the versions it
        measured. Only a summary and the SHA-256 are stored."""
        if len(note) > MAX_NOTE or not printable(note):
            raise InvalidParameterException(
                f"A model audit note has up to {MAX_NOTE} printable characters."
            )
        try:
            summary = summarise_bytes(report)
        except ValueError as exc:
            raise InvalidParameterException(f"Invalid audit report: {exc}.") from None
        model_version, similarity_version = self.active_model
        measured = (summary.model_version, summary.similarity_version)
        if measured != self.active_model and measured not in self._served_models:
            raise InvalidParameterException(
                f"The report measured model {summary.model_version} with similarity mapping "
                f"{summary.similarity_version}; the active engine is model {model_version} with "
                f"similarity mapping {similarity_version}. Audit the active model."
            )
        record = ModelAuditRecord(
            audit_id=new_audit_id(),
            model_version=summary.model_version,
            similarity_version=summary.similarity_version,
            report_sha256=summary.report_sha256,
            summary_json=json.dumps(summary.to_json(), sort_keys=True),
            dataset=summary.dataset,
            registered_at=self.clock(),
            registered_by=self.actor,
            note=note.strip(),
        )
        self.model_audits.add(record)
        row = summary.at(self.gate.threshold_pct)
        status = evaluate(summary, self.gate)
        self._event(
            "registry", "model_audit.register", record.audit_id,
            model_version=record.model_version, similarity_version=record.similarity_version,
            report_sha256=record.report_sha256, dataset=record.dataset,
            thresholds_pct=[t.similarity_pct for t in summary.thresholds],
            threshold_pct=self.gate.threshold_pct,
            fmr_max_geomean=None if row is None else row.fmr_max_geomean,
            max_group_fnmr=None if row is None else row.max_group_fnmr,
            within_bounds=status.within_bounds,
        )  # fmt: skip
        return record

    def model_audit_list(self) -> list[ModelAuditRecord]:
        """Every registered audit, newest first (revoked ones included)."""
        return self.model_audits.list()

    def model_audit(self, audit_id: str) -> ModelAuditRecord:
        record = self.model_audits.get(audit_id)
        if record is None:
            raise ResourceNotFoundException(f"Model audit {audit_id} does not exist.")
        return record

    def revoke_model_audit(self, audit_id: str) -> ModelAuditRecord:
        """Revoke a registration (idempotent: the first revocation is kept). If it was the
        active model's audit, searches gated on it are denied from the next request."""
        if not self.model_audits.revoke(audit_id, self.clock(), self.actor):
            raise ResourceNotFoundException(f"Model audit {audit_id} does not exist.")
        record = self.model_audit(audit_id)
        self._event(
            "registry", "model_audit.revoke", audit_id,
            model_version=record.model_version, similarity_version=record.similarity_version,
            report_sha256=record.report_sha256,
        )  # fmt: skip
        return record

    def model_gate(self) -> ModelGate:
        """The gate as the server sees it for the next search (same lookup and bounds)."""
        model_version, similarity_version = self.active_model
        record = self.model_audits.active(model_version, similarity_version)
        summary = None if record is None else summary_of(record)
        return ModelGate(
            model_version, similarity_version, self.gate, record, summary,
            evaluate(summary, self.gate),
        )  # fmt: skip

    # --- collections (metadata only) ----------------------------------------------------------

    def collection_stats(self) -> list[CollectionStats]:
        """Every collection's counts and retention status (no images: facegate keeps none)."""
        if self._faces is None:
            raise InternalServerError("The face store is not available here.")
        return self._faces.collection_stats(MAX_LIST)

    # --- human review --------------------------------------------------------------------------

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
        note = _text(note, "A review note", MAX_NOTE)
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


def summary_of(record: ModelAuditRecord) -> AuditSummary:
    """The stored summary of a registered audit."""
    return AuditSummary.from_json(json.loads(record.summary_json))


def over_services(services: Services) -> AdminService:
    """The admin service of a running server: its repositories, policy engine and clock, and
    collection lookups against its store."""
    store = services.store

    def collection(org_id: str, collection_id: str) -> CollectionRef | None:
        record = store.find_collection(org_id, collection_id)
        if record is None:
            return None
        return CollectionRef(collection_id, record.org_id, store.face_count(record))

    return AdminService(
        registry=services.registry,
        operators=services.operators,
        reviews=services.reviews,
        decisions=services.decisions,
        clock=services.clock,
        policy=services.policy,
        collections=collection,
        events=services.record,
        actor="server",
        model_audits=services.model_audits,
        active_model=services.active_model,
        served_models=services.served_models(),
        gate=services.settings.gate,
        faces=store,
        cooling_off_s=services.settings.review_cooling_off_s,
    )
