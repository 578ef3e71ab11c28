"""The admin service's shared state and rules: the repositories it works over, the clock, the
acting operator (named in every audit record of a change), and the checks of free text.

Every part of :class:`facegate.admin.service.AdminService` (one module per resource in this
package) derives from :class:`AdminCore` and reaches the store only through its attributes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Self

from facegate.audit.record import EventRecord, EventSink
from facegate.errors import InternalServerError, InvalidParameterException
from facegate.governance import Registry
from facegate.model_audit import GateBounds
from facegate.policy.engine import PolicyEngine
from facegate.policy.model import CollectionRef
from facegate.store.collections import CollectionStats
from facegate.store.decisions import DecisionRepository
from facegate.store.model_audits import ModelAuditRepository
from facegate.store.operators import OperatorRepository
from facegate.store.reviews import DEFAULT_COOLING_OFF_S, ReviewRepository
from facegate.store.store import FaceStore

MAX_NAME = 200
MAX_NOTE = 1000
MAX_LIST = 1000

CollectionLookup = Callable[[str, str], CollectionRef | None]
"""(organisation, collection id) -> the organisation's collection of that id, with its face
count (None: the organisation holds none; ids are per organisation)."""


def printable(value: str) -> bool:
    """Whether ``value`` is text a name, note or description may hold: no control characters
    (C0, DEL) and no unpaired surrogates (which a JSON escape or a command line's undecodable
    bytes can produce, and which cannot be stored as UTF-8)."""
    return not any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value)


def text_field(value: str, what: str, max_len: int = MAX_NAME) -> str:
    """``value`` stripped, if it holds 1 to ``max_len`` printable characters (else
    ``InvalidParameterException`` naming ``what``)."""
    cleaned = value.strip()
    if not cleaned or len(cleaned) > max_len or not printable(value):
        raise InvalidParameterException(f"{what} has 1-{max_len} printable characters.")
    return cleaned


class AdminCore:
    """The state every part of the admin service shares (see :class:`AdminService`)."""

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

    def as_actor(self, actor: str) -> Self:
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

    def record_event(self, kind: str, action: str, subject: str = "", **details: Any) -> None:
        """Record an event of this actor (a console sign-in, a downloaded report...) in the
        audit trail. ``details`` name ids and counts, never a password or a session id."""
        self._event(kind, action, subject, **details)

    # --- collections (metadata only) ---------------------------------------------------------

    def collection_stats(self) -> list[CollectionStats]:
        """Every collection's counts and retention status (no images: facegate keeps none)."""
        if self._faces is None:
            raise InternalServerError("The face store is not available here.")
        return self._faces.collection_stats(MAX_LIST)
