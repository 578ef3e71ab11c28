"""Organisation rows: who holds keys and owns collections, with sector, jurisdiction and the use
cases they registered. Validation of names against the vocabulary happens above the store."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import bindparam, func, insert, select, update

from facegate.errors import ResourceAlreadyExistsException, ResourceNotFoundException
from facegate.store.db import Row, StoreDatabase
from facegate.store.schema import organisations

_BY_ID = organisations.c.org_id == bindparam("id")
_EXISTS = select(1).select_from(organisations).where(_BY_ID)
_INSERT = insert(organisations)
_GET = select(organisations).where(_BY_ID)
_LIST = select(organisations).order_by(organisations.c.org_id)
_SET_USE_CASES = update(organisations).where(_BY_ID).values(use_cases=bindparam("new_use_cases"))
_DISABLE = (
    update(organisations)
    .where(_BY_ID)
    .values(disabled_at=func.coalesce(organisations.c.disabled_at, bindparam("at")))
)


@dataclass(frozen=True)
class OrganisationRecord:
    """An organisation. ``use_cases`` is sorted; times are epoch seconds."""

    org_id: str
    name: str
    sector: str
    country: str
    region: str
    city: str
    use_cases: tuple[str, ...]
    created_at: float
    disabled_at: float | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


def _org(row: Row) -> OrganisationRecord:
    return OrganisationRecord(
        org_id=row["org_id"],
        name=row["name"],
        sector=row["sector"],
        country=row["country"],
        region=row["region"],
        city=row["city"],
        use_cases=tuple(sorted(json.loads(row["use_cases"]))),
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
    )


class OrganisationRepository:
    """Create, read, update and disable organisations (never deleted: decisions refer to them)."""

    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    def insert(self, record: OrganisationRecord) -> None:
        with self.db.transaction() as conn:
            exists = conn.execute(_EXISTS, {"id": record.org_id}).fetchone()
            if exists:
                raise ResourceAlreadyExistsException(
                    f"Organisation {record.org_id} already exists."
                )
            conn.execute(
                _INSERT,
                {
                    "org_id": record.org_id,
                    "name": record.name,
                    "sector": record.sector,
                    "country": record.country,
                    "region": record.region,
                    "city": record.city,
                    "use_cases": json.dumps(sorted(record.use_cases)),
                    "created_at": record.created_at,
                    "disabled_at": record.disabled_at,
                },
            )

    def get(self, org_id: str) -> OrganisationRecord | None:
        with self.db.read() as conn:
            row = conn.execute(_GET, {"id": org_id}).fetchone()
        return None if row is None else _org(row)

    def require(self, org_id: str) -> OrganisationRecord:
        record = self.get(org_id)
        if record is None:
            raise ResourceNotFoundException(f"Organisation {org_id} does not exist.")
        return record

    def list(self) -> list[OrganisationRecord]:
        with self.db.read() as conn:
            rows = conn.execute(_LIST).fetchall()
        return [_org(r) for r in rows]

    def set_use_cases(self, org_id: str, use_cases: tuple[str, ...]) -> OrganisationRecord:
        with self.db.transaction() as conn:
            cur = conn.execute(
                _SET_USE_CASES, {"id": org_id, "new_use_cases": json.dumps(sorted(use_cases))}
            )
            if cur.rowcount == 0:
                raise ResourceNotFoundException(f"Organisation {org_id} does not exist.")
        return self.require(org_id)

    def disable(self, org_id: str, at: float) -> bool:
        """Disable an organisation (its keys stop working); False if it does not exist."""
        with self.db.transaction() as conn:
            cur = conn.execute(_DISABLE, {"id": org_id, "at": at})
            return cur.rowcount > 0
