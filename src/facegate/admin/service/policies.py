"""Policies and decisions: the active packs, explaining a request against them (nothing stored),
and the stored decisions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from facegate.admin.explain import request_from_body
from facegate.admin.service.core import MAX_LIST, AdminCore
from facegate.errors import InternalServerError, ResourceNotFoundException
from facegate.policy.engine import PolicyEngine
from facegate.policy.loader import PolicyInfo
from facegate.policy.model import Decision, PolicyRequest
from facegate.store.decisions import DecisionRecord


@dataclass(frozen=True)
class Explanation:
    """A policy request and the decision the active packs give it (nothing is stored)."""

    request: PolicyRequest
    decision: Decision


class PolicyAdmin(AdminCore):
    """The policy and decision part of :class:`facegate.admin.service.AdminService`."""

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
