"""Registration: organisations, their use cases, and the keys bound to them.

Microsoft's Limited Access registration is the model (governance-rules.md MS-LIMITED-ACCESS):
an organisation registers who it is (sector, jurisdiction) and the use cases it is approved for;
each access key is bound to one organisation and one of those use cases, and may expire or be
revoked. This module validates every field against the closed vocabulary in
``facegate.policy.vocabulary`` and turns an authenticated key into the policy ``Principal``.
The CLI (`facegate org|keys`) and the admin API both go through it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

from facegate.errors import InvalidParameterException, ResourceAlreadyExistsException
from facegate.policy.model import Organisation, Principal
from facegate.policy.vocabulary import PURPOSES, SECTORS
from facegate.store.orgs import OrganisationRecord, OrganisationRepository
from facegate.wire.keys import KeyService, NewKey

ORG_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
COUNTRY = re.compile(r"[A-Z]{2}")
REGION = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,3}")
CITY = re.compile(r"[a-z][a-z .'-]{0,62}")
LOCAL_ORG = "local"
MAX_NAME = 200


def _check(pattern: re.Pattern[str], value: str, what: str, example: str) -> None:
    if value and not pattern.fullmatch(value):
        raise InvalidParameterException(f"Invalid {what} {value!r}: expected e.g. {example!r}.")


def validate_use_cases(use_cases: Iterable[str]) -> tuple[str, ...]:
    """Sorted, de-duplicated use cases; each must be a purpose of the vocabulary."""
    out = tuple(sorted(set(use_cases)))
    unknown = [u for u in out if u not in PURPOSES]
    if unknown:
        raise InvalidParameterException(
            f"Unknown use case(s) {', '.join(unknown)}; known: {', '.join(sorted(PURPOSES))}."
        )
    if not out:
        raise InvalidParameterException("An organisation registers at least one use case.")
    return out


class Registry:
    """Organisations and their keys, validated."""

    def __init__(self, orgs: OrganisationRepository, keys: KeyService) -> None:
        self.orgs = orgs
        self.keys = keys

    def create_org(
        self,
        org_id: str,
        *,
        name: str,
        sector: str,
        use_cases: Iterable[str],
        country: str = "",
        region: str = "",
        city: str = "",
    ) -> OrganisationRecord:
        """Register an organisation. Raises InvalidParameterException naming the bad field,
        ResourceAlreadyExistsException if ``org_id`` is taken."""
        _check(ORG_ID, org_id, "organisation id", "nyc-missing-persons")
        if not org_id:
            raise InvalidParameterException("An organisation needs an id.")
        if not name.strip() or len(name) > MAX_NAME:
            raise InvalidParameterException(f"An organisation name has 1-{MAX_NAME} characters.")
        if sector not in SECTORS:
            raise InvalidParameterException(
                f"Unknown sector {sector!r}; known: {', '.join(sorted(SECTORS))}."
            )
        _check(COUNTRY, country, "country (ISO 3166-1 alpha-2)", "US")
        _check(REGION, region, "region (ISO 3166-2)", "US-WA")
        _check(CITY, city, "city (lower case)", "seattle")
        if region and region[:2] != country:
            raise InvalidParameterException(f"Region {region} is not in country {country or '-'}.")
        record = OrganisationRecord(
            org_id=org_id,
            name=name.strip(),
            sector=sector,
            country=country,
            region=region,
            city=city,
            use_cases=validate_use_cases(use_cases),
            created_at=time.time(),
        )
        self.orgs.insert(record)
        return record

    def ensure_local_org(self) -> OrganisationRecord:
        """The organisation of the bootstrap key: a local operator evaluating the service."""
        existing = self.orgs.get(LOCAL_ORG)
        if existing is not None:
            return existing
        return self.create_local_org() or self.orgs.require(LOCAL_ORG)

    def create_local_org(self) -> OrganisationRecord | None:
        """Create the ``local`` organisation; None if it exists already (for example created a
        moment before by another server starting on the same store: the repository checks and
        inserts in one write transaction, so exactly one caller gets the record)."""
        try:
            return self.create_org(
                LOCAL_ORG, name="Local operator", sector="research", use_cases=["research"]
            )
        except ResourceAlreadyExistsException:
            return None

    def create_key(
        self, org_id: str, use_case: str, description: str = "", ttl_s: float | None = None
    ) -> NewKey:
        """A key for ``org_id`` bound to ``use_case``, which the organisation must have
        registered; the organisation must be active."""
        self._check_key_registration(org_id, use_case)
        return self.keys.create(description, ttl_s, org_id=org_id, use_case=use_case)

    def create_first_key(self, org_id: str, use_case: str, description: str = "") -> NewKey | None:
        """As :meth:`create_key` (no expiry), but only on a store without any key: the bootstrap
        key. None if a key exists, also one created concurrently by another server."""
        self._check_key_registration(org_id, use_case)
        return self.keys.create_first(description, org_id=org_id, use_case=use_case)

    def _check_key_registration(self, org_id: str, use_case: str) -> None:
        """A key may be issued to ``org_id`` for ``use_case`` (else the error to raise)."""
        org = self.orgs.require(org_id)
        if not org.active:
            raise InvalidParameterException(f"Organisation {org_id} is disabled.")
        if use_case not in org.use_cases:
            raise InvalidParameterException(
                f"Organisation {org_id} has not registered use case {use_case!r} "
                f"(registered: {', '.join(org.use_cases)})."
            )

    def principal(self, access_key_id: str) -> Principal | None:
        """The policy principal of an authenticated key, or None when the key is not registered
        to an active organisation for a use case that organisation still has (fail closed)."""
        key = self.keys.record(access_key_id)
        if key is None or key.org_id is None:
            return None
        org = self.orgs.get(key.org_id)
        if org is None or not org.active or key.use_case not in org.use_cases:
            return None
        return Principal(
            key_id=key.access_key_id, use_case=key.use_case, organisation=to_policy(org)
        )


def to_policy(org: OrganisationRecord) -> Organisation:
    return Organisation(
        org_id=org.org_id,
        name=org.name,
        sector=org.sector,
        country=org.country,
        region=org.region,
        city=org.city,
        use_cases=frozenset(org.use_cases),
    )
