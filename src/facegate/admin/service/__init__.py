"""What operators can do, as plain Python over the store: no HTTP, no rendering.

:class:`AdminService` is composed of one part per resource, each in its own module of this
package over the shared state of :mod:`~facegate.admin.service.core`:
:mod:`~facegate.admin.service.orgs` (organisations), :mod:`~facegate.admin.service.keys` (access
keys), :mod:`~facegate.admin.service.operators` (operator accounts, tokens, passwords),
:mod:`~facegate.admin.service.policies` (policy packs, explanations, decisions),
:mod:`~facegate.admin.service.model_audits` (the deployment gate) and
:mod:`~facegate.admin.service.reviews` (human review).

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

from facegate.admin.service.core import AdminCore, CollectionLookup
from facegate.admin.service.keys import KeyAdmin
from facegate.admin.service.model_audits import ModelAuditAdmin, ModelGate, summary_of
from facegate.admin.service.operators import OperatorAdmin
from facegate.admin.service.orgs import OrgAdmin
from facegate.admin.service.policies import Explanation, PolicyAdmin
from facegate.admin.service.reviews import (
    REVIEW_STATUSES,
    Candidate,
    ReviewAdmin,
    ReviewDetail,
    held_candidates,
)
from facegate.policy.model import CollectionRef
from facegate.services import Services

__all__ = [
    "REVIEW_STATUSES",
    "AdminCore",
    "AdminService",
    "Candidate",
    "CollectionLookup",
    "Explanation",
    "ModelGate",
    "ReviewDetail",
    "held_candidates",
    "over_services",
    "summary_of",
]


class AdminService(OrgAdmin, KeyAdmin, OperatorAdmin, PolicyAdmin, ModelAuditAdmin, ReviewAdmin):
    """Organisations, keys, operators, policies, decisions and reviews.

    ``policy`` may be None for callers that never ask about policies (the CLI); ``collections``
    resolves a collection id in :meth:`explain` (None: a named collection is taken to belong to
    the principal's organisation and to be empty). ``clock`` gives epoch seconds."""


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
