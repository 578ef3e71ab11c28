"""Organisations: register, list, disable, and change the use cases they registered."""

from __future__ import annotations

from facegate.admin.service.core import AdminCore, text_field
from facegate.errors import ResourceNotFoundException
from facegate.governance import LOCAL_ORG, validate_use_cases
from facegate.store.orgs import OrganisationRecord


class OrgAdmin(AdminCore):
    """The organisation part of :class:`facegate.admin.service.AdminService`."""

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
            name=text_field(name, "An organisation name"),
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
