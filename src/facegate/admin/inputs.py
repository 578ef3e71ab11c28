"""The JSON bodies the admin API reads, as types: the handlers accept exactly their fields
(:func:`fields_of`) and the OpenAPI document's request schemas are generated from them.

What a handler checks beyond the schema (lengths, printable text, the policy vocabulary) is in
:mod:`facegate.admin.fields` and the service; a schema here may be stricter than the handler
(``Note.note`` is at least one character), never looser.
"""

from __future__ import annotations

from typing import Annotated, Any, NotRequired, TypedDict

from facegate.admin.typeschema import Choice, keywords
from facegate.policy.vocabulary import CAMERAS, SECTORS, SETTINGS
from facegate.store.operators import ROLES

UseCaseList = Annotated[list[str], keywords(minItems=1)]
NoteText = Annotated[str, keywords(maxLength=1000)]


def fields_of(body: type) -> frozenset[str]:
    """Every field of the ``TypedDict`` ``body``, required or not."""
    keys: frozenset[str] = getattr(body, "__required_keys__", frozenset())
    return keys | getattr(body, "__optional_keys__", frozenset())


class NewOrganisation(TypedDict):
    org_id: Annotated[str, keywords(pattern="^[a-z0-9][a-z0-9_-]{0,62}$")]
    name: str
    sector: Annotated[str, Choice(SECTORS)]
    use_cases: UseCaseList
    country: NotRequired[str]
    """ISO 3166-1 alpha-2, e.g. US"""
    region: NotRequired[str]
    """ISO 3166-2, e.g. US-WA"""
    city: NotRequired[str]
    """lower case, e.g. seattle"""


class UseCases(TypedDict):
    use_cases: UseCaseList


class NewKeyRequest(TypedDict):
    org_id: str
    use_case: NotRequired[str]
    """default: the org's only one"""
    description: NotRequired[str]
    expires_in_days: NotRequired[Annotated[int, keywords(minimum=1, maximum=3650)]]


class NewOperatorRequest(TypedDict):
    operator_id: Annotated[str, keywords(pattern="^[a-z0-9][a-z0-9_.-]{0,62}$")]
    display_name: str
    role: Annotated[str, Choice(ROLES)]


class Note(TypedDict):
    note: Annotated[str, keywords(minLength=1, maxLength=1000)]


class TokenRotation(TypedDict):
    note: NotRequired[NoteText]
    """why (optional; recorded in the audit trail)"""


class NewModelAudit(TypedDict):
    report: dict[str, Any]
    """the JSON report of 'facegate bias verification --json' (kind 'verification' or no kind);
    its SHA-256 is taken over its canonical JSON form (sorted keys, no spaces, UTF-8)"""
    note: NotRequired[NoteText]


class ExplainOrganisation(TypedDict):
    org_id: NotRequired[str]
    name: NotRequired[str]
    sector: str
    country: NotRequired[str]
    region: NotRequired[str]
    city: NotRequired[str]
    use_cases: list[str]


class ExplainCollection(TypedDict):
    collection_id: str
    organisation_id: NotRequired[str]
    face_count: NotRequired[Annotated[int, keywords(minimum=0)]]


class ExplainContext(TypedDict, total=False):
    now: Annotated[str, keywords(format="date-time")]
    purpose: str
    case_ref: str
    authorization_ref: str
    authorization_issuer: str
    realtime: bool
    exigent: bool
    camera: Annotated[str, Choice(CAMERAS)]
    consent_ref: str
    model_audit_registered: bool
    model_audit_within_bounds: bool
    setting: Annotated[str, Choice(SETTINGS)]
    attributes: list[str]
    attributes_named: list[str]


class ExplainRequest(TypedDict):
    """org_id (registered) or organisation (described), plus action"""

    org_id: NotRequired[str]
    organisation: NotRequired[ExplainOrganisation]
    use_case: NotRequired[str]
    key_id: NotRequired[str]
    action: str
    """a Rekognition operation name"""
    collection: NotRequired[str | ExplainCollection]
    context: NotRequired[ExplainContext]
