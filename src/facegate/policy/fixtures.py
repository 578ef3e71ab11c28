"""Request fixtures: JSON files that state what a pack must allow and deny.

Each pack has ``ALLOW/*.json`` and ``DENY/*.json``; the directory is the expected decision. The
format (also read by ``facegate policy explain --request FILE``, which ignores ``expect``)::

    {
      "description": "a police department searches for a missing child (2021)",
      "principal": {
        "key_id": "AKPOLICE",                                  (optional)
        "use_case": "missing_persons",
        "organisation": {
          "org_id": "springfield-pd", "name": "Springfield PD",  (optional)
          "sector": "law_enforcement",
          "country": "US", "region": "US-IL", "city": "springfield",   (optional, "")
          "use_cases": ["missing_persons"]
        }
      },
      "action": "SearchFacesByImage",
      "resource": {"collection_id": "missing", "organisation_id": "springfield-pd",
                   "face_count": 120},                         (optional: null, no collection;
                                                                 organisation_id defaults to the
                                                                 principal's, face_count to 0)
      "context": {
        "now": "2021-06-01T12:00:00Z",                         (ISO 8601 with a timezone)
        "purpose": "missing_persons",
        "case_ref": "", "authorization_ref": "", "authorization_issuer": "",
        "realtime": false, "exigent": false, "camera": "", "consent_ref": "",   (optional)
        "model_audit_registered": false, "model_audit_within_bounds": false,    (optional)
        "setting": "",                                         (optional: vocabulary.SETTINGS)
        "attributes": ["EMOTIONS"], "attributes_named": ["EMOTIONS"]   (optional: the facial
                                                                 attributes asked for, ALL
                                                                 expanded, and those named)
      },
      "expect": {                                              (optional)
        "obligations": {"min_similarity_pct": 99, "reviewers_required": 1}   (ALLOW)
        "policies": ["amazon-2020-police-moratorium.forbid-police-face-comparison"],  (DENY)
        "error": "unknown purpose"                             (DENY: a substring of an error)
      }
    }

Checks (:func:`check`): an ALLOW fixture must be allowed with exactly the expected obligations
(none when ``obligations`` is omitted). A DENY fixture must be denied, every listed policy must be
among the determining forbids (others may join them, e.g. when the default packs are added) and
``error``, if given, must occur in one of the errors. A fixture must hold both with its pack alone
(on ``base``) and with the default packs added (:func:`pack_sets`). Unknown keys are errors, so a
misspelt field cannot silently fall back to a default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from facegate.policy.errors import FixtureError
from facegate.policy.loader import BASE_PACK
from facegate.policy.model import (
    CollectionRef,
    Decision,
    Obligations,
    Organisation,
    PolicyRequest,
    Principal,
    RequestContext,
    field_names,
)

ALLOW = "ALLOW"
DENY = "DENY"


@dataclass(frozen=True)
class Fixture:
    """One request and what its pack must decide."""

    path: Path
    pack: str
    expect_allow: bool
    description: str
    request: PolicyRequest
    obligations: Obligations = Obligations()
    policies: tuple[str, ...] = ()
    error: str = ""

    @property
    def name(self) -> str:
        """``ALLOW/file.json``: the fixture's name inside its pack."""
        return f"{self.path.parent.name}/{self.path.name}"


class _Reader:
    """Typed access to one JSON object, with errors naming the file and field."""

    def __init__(self, doc: object, where: str, field: str, keys: frozenset[str]) -> None:
        self.where = where
        self.field = field
        if not isinstance(doc, dict):
            raise self.error(field or "document", "must be a JSON object")
        unknown = sorted(set(doc) - keys)
        if unknown:
            raise self.error(
                field or "document", f"unknown key(s) {unknown}; known: {sorted(keys)}"
            )
        self.doc: dict[str, Any] = doc

    def error(self, field: str, problem: str) -> FixtureError:
        return FixtureError(f"{self.where}: {field}: {problem}")

    def _path(self, key: str) -> str:
        return f"{self.field}.{key}" if self.field else key

    def text(self, key: str, default: str | None = None) -> str:
        value = self.doc.get(key, default)
        if not isinstance(value, str):
            problem = "is required" if value is None else "must be a string"
            raise self.error(self._path(key), problem)
        return value

    def flag(self, key: str) -> bool:
        value = self.doc.get(key, False)
        if not isinstance(value, bool):
            raise self.error(self._path(key), "must be true or false")
        return value

    def integer(self, key: str, default: int) -> int:
        value = self.doc.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(self._path(key), "must be an integer")
        return value

    def texts(self, key: str, default: Sequence[str] | None = None) -> tuple[str, ...]:
        value = self.doc.get(key, default)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            problem = "is required" if value is None else "must be a list of strings"
            raise self.error(self._path(key), problem)
        return tuple(value)

    def child(self, key: str, keys: frozenset[str]) -> _Reader:
        return _Reader(self.doc.get(key), self.where, self._path(key), keys)


_TOP = frozenset({"description", "principal", "action", "resource", "context", "expect"})
_PRINCIPAL = frozenset({"key_id", "use_case", "organisation"})
_ORG = field_names(Organisation)
_RESOURCE = field_names(CollectionRef)
_CONTEXT = field_names(RequestContext)
_EXPECT = frozenset({"obligations", "policies", "error"})
_OBLIGATIONS = frozenset(
    {
        "min_similarity_pct",
        "max_candidates",
        "reviewers_required",
        "redact_fields",
        "retention_days",
        "max_expected_false_candidates",
        "drop_attributes",
    }
)


def _timestamp(reader: _Reader, key: str) -> datetime:
    text = reader.text(key)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise reader.error(f"context.{key}", f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise reader.error(f"context.{key}", f"{text!r} has no timezone (add Z)")
    return moment.astimezone(UTC)


def request_from_json(doc: object, where: str) -> PolicyRequest:
    """The :class:`PolicyRequest` a fixture document describes (``where`` names it in errors)."""
    top = _Reader(doc, where, "", _TOP)
    top.text("description", "")
    principal = top.child("principal", _PRINCIPAL)
    org = principal.child("organisation", _ORG)
    org_id = org.text("org_id", "org-fixture")
    organisation = Organisation(
        org_id=org_id,
        name=org.text("name", org_id),
        sector=org.text("sector"),
        country=org.text("country", ""),
        region=org.text("region", ""),
        city=org.text("city", ""),
        use_cases=frozenset(org.texts("use_cases")),
    )
    resource = None
    if top.doc.get("resource") is not None:
        res = top.child("resource", _RESOURCE)
        resource = CollectionRef(
            collection_id=res.text("collection_id"),
            organisation_id=res.text("organisation_id", org_id),
            face_count=res.integer("face_count", 0),
        )
    ctx = top.child("context", _CONTEXT)
    context = RequestContext(
        now=_timestamp(ctx, "now"),
        purpose=ctx.text("purpose"),
        case_ref=ctx.text("case_ref", ""),
        authorization_ref=ctx.text("authorization_ref", ""),
        authorization_issuer=ctx.text("authorization_issuer", ""),
        realtime=ctx.flag("realtime"),
        exigent=ctx.flag("exigent"),
        camera=ctx.text("camera", ""),
        consent_ref=ctx.text("consent_ref", ""),
        model_audit_registered=ctx.flag("model_audit_registered"),
        model_audit_within_bounds=ctx.flag("model_audit_within_bounds"),
        setting=ctx.text("setting", ""),
        attributes=frozenset(ctx.texts("attributes", ())),
        attributes_named=frozenset(ctx.texts("attributes_named", ())),
    )
    return PolicyRequest(
        principal=Principal(
            key_id=principal.text("key_id", "AKFIXTURE"),
            use_case=principal.text("use_case"),
            organisation=organisation,
        ),
        action=top.text("action"),
        resource=resource,
        context=context,
    )


def _obligations(reader: _Reader) -> Obligations:
    similarity = reader.doc.get("min_similarity_pct")
    if similarity is not None and (
        not isinstance(similarity, int | float) or isinstance(similarity, bool)
    ):
        raise reader.error("expect.obligations.min_similarity_pct", "must be a number")
    max_candidates = reader.doc.get("max_candidates")
    retention = reader.doc.get("retention_days")
    expected = reader.doc.get("max_expected_false_candidates")
    if expected is not None and (
        not isinstance(expected, int | float) or isinstance(expected, bool)
    ):
        raise reader.error("expect.obligations.max_expected_false_candidates", "must be a number")
    return Obligations(
        min_similarity_pct=None if similarity is None else float(similarity),
        max_candidates=None if max_candidates is None else reader.integer("max_candidates", 0),
        reviewers_required=reader.integer("reviewers_required", 0),
        redact_fields=frozenset(reader.texts("redact_fields", ())),
        retention_days=None if retention is None else reader.integer("retention_days", 0),
        max_expected_false_candidates=None if expected is None else float(expected),
        drop_attributes=frozenset(reader.texts("drop_attributes", ())),
    )


def read_json(path: Path) -> object:
    """The parsed JSON of ``path`` (:class:`FixtureError` if unreadable or not JSON)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FixtureError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise FixtureError(f"{path}: not valid JSON: {exc}") from exc


def load_fixture(path: Path, pack: str) -> Fixture:
    """Read one fixture; its parent directory (``ALLOW`` or ``DENY``) is the expectation."""
    expect_allow = path.parent.name == ALLOW
    if not expect_allow and path.parent.name != DENY:
        raise FixtureError(f"{path}: a fixture lives in an ALLOW/ or DENY/ directory")
    doc = read_json(path)
    request = request_from_json(doc, str(path))
    top = _Reader(doc, str(path), "", _TOP)
    expect = top.child("expect", _EXPECT) if "expect" in top.doc else _Reader({}, "", "", _EXPECT)
    if expect_allow and ("policies" in expect.doc or "error" in expect.doc):
        raise top.error("expect", "an ALLOW fixture expects only obligations")
    if not expect_allow and "obligations" in expect.doc:
        raise top.error("expect", "a DENY fixture expects policies or an error, not obligations")
    obligations = Obligations()
    if "obligations" in expect.doc:
        obligations = _obligations(expect.child("obligations", _OBLIGATIONS))
    return Fixture(
        path=path,
        pack=pack,
        expect_allow=expect_allow,
        description=top.text("description", ""),
        request=request,
        obligations=obligations,
        policies=expect.texts("policies", ()),
        error=expect.text("error", ""),
    )


def pack_fixtures(pack: str, packs_dir: Path) -> list[Fixture]:
    """Every fixture of ``pack``, ALLOW first, each directory sorted by file name."""
    root = packs_dir / pack
    paths = sorted(root.glob(f"{ALLOW}/*.json")) + sorted(root.glob(f"{DENY}/*.json"))
    return [load_fixture(path, pack) for path in paths]


def pack_sets(pack: str, default_packs: Sequence[str]) -> list[tuple[str, ...]]:
    """The pack sets ``pack``'s fixtures must hold in: with ``base`` alone, and with the default
    packs added (once, if that is a different set). ``base`` is always first."""
    alone = tuple(dict.fromkeys([BASE_PACK, pack]))
    with_defaults = tuple(dict.fromkeys([*alone, *default_packs]))
    return [alone] if with_defaults == alone else [alone, with_defaults]


def check(fixture: Fixture, decision: Decision) -> str:
    """Why ``decision`` does not meet ``fixture``'s expectation ("" when it does)."""
    got = "Allow" if decision.allowed else "Deny"
    if fixture.expect_allow:
        if not decision.allowed:
            why = ", ".join(decision.policy_ids + decision.errors) or "default deny"
            return f"expected Allow, got Deny ({why})"
        if decision.obligations != fixture.obligations:
            return f"obligations {decision.obligations} != expected {fixture.obligations}"
        return ""
    if decision.allowed:
        return f"expected Deny, got {got} ({', '.join(decision.policy_ids)})"
    missing = [p for p in fixture.policies if p not in decision.policy_ids]
    if missing:
        return f"expected {missing} among the determining policies {list(decision.policy_ids)}"
    if fixture.error and not any(fixture.error in e for e in decision.errors):
        return f"expected an error containing {fixture.error!r}, got {list(decision.errors)}"
    return ""


def obligations_json(obligations: Obligations) -> Mapping[str, Any]:
    """``obligations`` in the fixture format (only the fields that are set)."""
    doc: dict[str, Any] = {}
    if obligations.min_similarity_pct is not None:
        doc["min_similarity_pct"] = obligations.min_similarity_pct
    if obligations.max_candidates is not None:
        doc["max_candidates"] = obligations.max_candidates
    if obligations.reviewers_required:
        doc["reviewers_required"] = obligations.reviewers_required
    if obligations.redact_fields:
        doc["redact_fields"] = sorted(obligations.redact_fields)
    if obligations.retention_days is not None:
        doc["retention_days"] = obligations.retention_days
    if obligations.max_expected_false_candidates is not None:
        doc["max_expected_false_candidates"] = obligations.max_expected_false_candidates
    if obligations.drop_attributes:
        doc["drop_attributes"] = sorted(obligations.drop_attributes)
    return doc
