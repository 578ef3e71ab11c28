"""Registration: organisations and keys are validated against the vocabulary; a key becomes a
policy principal only while its registration holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from facegate.errors import InvalidParameterException, ResourceAlreadyExistsException
from facegate.governance import Registry
from facegate.store.db import StoreDatabase
from facegate.store.keys import KeyRepository
from facegate.store.orgs import OrganisationRepository
from facegate.wire.keys import KeyService, load_master_key


@pytest.fixture
def registry(database: StoreDatabase, tmp_path: Path) -> Registry:
    db = database
    keys = KeyService(KeyRepository(db), load_master_key(tmp_path, None))
    return Registry(OrganisationRepository(db), keys)


def test_key_becomes_principal(registry: Registry) -> None:
    registry.create_org(
        "wa-sheriff",
        name="County Sheriff",
        sector="law_enforcement",
        use_cases=["missing_persons", "investigation"],
        country="US",
        region="US-WA",
        city="seattle",
    )
    key = registry.create_key("wa-sheriff", "missing_persons", "MP unit")
    principal = registry.principal(key.access_key_id)
    assert principal is not None
    assert principal.use_case == "missing_persons"
    assert principal.organisation.region == "US-WA"
    assert principal.organisation.use_cases == frozenset({"missing_persons", "investigation"})


def test_registration_must_hold(registry: Registry) -> None:
    registry.create_org("ngo", name="NGO", sector="ngo", use_cases=["trafficking_victims"])
    key = registry.create_key("ngo", "trafficking_victims")
    with pytest.raises(InvalidParameterException, match="has not registered use case"):
        registry.create_key("ngo", "investigation")
    registry.orgs.set_use_cases("ngo", ("missing_persons",))
    assert registry.principal(key.access_key_id) is None  # use case withdrawn
    registry.orgs.set_use_cases("ngo", ("trafficking_victims",))
    assert registry.principal(key.access_key_id) is not None
    registry.orgs.disable("ngo", 1.0)
    assert registry.principal(key.access_key_id) is None
    with pytest.raises(InvalidParameterException, match="disabled"):
        registry.create_key("ngo", "trafficking_victims")


def test_revoked_and_unknown_keys_have_no_principal(registry: Registry) -> None:
    registry.ensure_local_org()
    key = registry.create_key("local", "research")
    assert registry.principal(key.access_key_id) is not None
    registry.keys.revoke(key.access_key_id)
    assert registry.keys.secret_for(key.access_key_id) is None  # SigV4 refuses it first
    assert registry.principal("FGAKNOSUCHKEY0000000") is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("org_id", "Bad Id", "Invalid organisation id"),
        ("sector", "police", "Unknown sector"),
        ("use_cases", ["mass_surveillance"], "Unknown use case"),
        ("use_cases", [], "at least one use case"),
        ("country", "USA", "Invalid country"),
        ("region", "WA", "Invalid region"),
        ("region", "DE-BY", "not in country US"),
        ("city", "Seattle", "Invalid city"),
        ("name", " ", "name has 1-200"),
    ],
)
def test_bad_registration_names_the_field(
    registry: Registry, field: str, value: object, message: str
) -> None:
    fields: dict[str, object] = {
        "org_id": "acme",
        "name": "Acme",
        "sector": "commercial",
        "use_cases": ["access_control"],
        "country": "US",
        "region": "",
        "city": "",
    }
    fields[field] = value
    org_id = str(fields.pop("org_id"))
    with pytest.raises(InvalidParameterException, match=message):
        registry.create_org(org_id, **fields)  # type: ignore[arg-type]


def test_duplicate_org(registry: Registry) -> None:
    registry.ensure_local_org()
    assert registry.ensure_local_org().org_id == "local"
    with pytest.raises(ResourceAlreadyExistsException):
        registry.create_org("local", name="x", sector="research", use_cases=["research"])
