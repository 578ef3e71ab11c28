"""The deployment gate: registering and revoking bias audits of the served models, and the gate's
verdict for the next search."""

from __future__ import annotations

import json
from dataclasses import dataclass

from facegate.admin.service.core import MAX_NOTE, AdminCore, printable
from facegate.errors import (
    InternalServerError,
    InvalidParameterException,
    ResourceNotFoundException,
)
from facegate.model_audit import AuditSummary, GateBounds, GateStatus, evaluate, summarise_bytes
from facegate.store.model_audits import ModelAuditRecord, ModelAuditRepository, new_audit_id


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


class ModelAuditAdmin(AdminCore):
    """The deployment-gate part of :class:`facegate.admin.service.AdminService`."""

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


def summary_of(record: ModelAuditRecord) -> AuditSummary:
    """The stored summary of a registered audit."""
    return AuditSummary.from_json(json.loads(record.summary_json))
