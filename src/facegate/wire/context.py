"""The governance request headers: ``X-Facegate-*`` -> ``RequestContext``.

| header | value | default |
|---|---|---|
| X-Facegate-Purpose | a purpose of the vocabulary (``missing_persons``...) | the key's use case |
| X-Facegate-Case | case reference, up to 128 characters | none |
| X-Facegate-Authorization | ``<reference>[; issuer=<issuer>]`` (warrant, court order) | none |
| X-Facegate-Realtime | ``true`` / ``false`` | false |
| X-Facegate-Exigent | ``true`` / ``false`` (exigent circumstances) | false |
| X-Facegate-Camera | ``fixed`` / ``mobile`` / ``upload`` | not given |
| X-Facegate-Setting | ``workplace`` / ``education`` / ``public`` / ``other`` | not given |
| X-Facegate-Consent | consent record reference (enrolment), up to 128 characters | none |
| X-Facegate-Review | a review id, to collect results held for human review | none |

The setting says where the people in the images are (policies on emotion inference in workplaces
and education depend on it).

Every ``X-Facegate-*`` header a request carries must be covered by its SigV4 signature (boto3
signs headers added in a ``before-sign`` event hook), so nobody between the client and the server
can change the purpose or forge an authorisation; an unsigned one is refused. Values are bounded
and restricted to printable ASCII; a bad value is an InvalidParameterException naming the header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from facegate.errors import AccessDeniedException, InvalidParameterException
from facegate.policy.model import RequestContext
from facegate.policy.vocabulary import CAMERAS, SETTINGS

PREFIX = "x-facegate-"
KNOWN = frozenset(
    PREFIX + name
    for name in (
        "purpose",
        "case",
        "authorization",
        "realtime",
        "exigent",
        "camera",
        "consent",
        "setting",
    )
) | {PREFIX + "review"}
_TEXT = re.compile(r"[A-Za-z0-9 ._:/#()+,'-]{1,128}")
_WORD = re.compile(r"[a-z_]{1,64}")
_REVIEW = re.compile(r"rev-[0-9a-f]{20}")
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class Governance:
    """The parsed headers: the request context and the review id being collected (if any)."""

    context: RequestContext
    review_id: str | None = None


def parse(
    headers: Mapping[str, str], *, key_use_case: str, now: datetime, signed: tuple[str, ...]
) -> Governance:
    """Parse the ``X-Facegate-*`` headers (names lower-case). Raises InvalidParameterException
    for an unknown header or a malformed value, AccessDeniedException for an unsigned one."""
    given = {k: v.strip() for k, v in headers.items() if k.startswith(PREFIX)}
    for name in given:
        if name not in KNOWN:
            raise InvalidParameterException(f"Unknown header {_title(name)}.")
        if name not in signed:
            raise AccessDeniedException(
                f"Header {_title(name)} must be signed (add it before signing the request)."
            )
    purpose = given.get(PREFIX + "purpose", key_use_case)
    if not _WORD.fullmatch(purpose):
        raise InvalidParameterException(f"Invalid X-Facegate-Purpose {purpose!r}.")
    reference, issuer = _authorization(given.get(PREFIX + "authorization", ""))
    camera = given.get(PREFIX + "camera", "")
    if camera not in CAMERAS:
        raise InvalidParameterException(
            f"Invalid X-Facegate-Camera {camera!r}; one of fixed, mobile, upload."
        )
    setting = given.get(PREFIX + "setting", "")
    if setting not in SETTINGS:
        raise InvalidParameterException(
            f"Invalid X-Facegate-Setting {setting!r}; one of workplace, education, public, other."
        )
    review = given.get(PREFIX + "review")
    if review is not None and not _REVIEW.fullmatch(review):
        raise InvalidParameterException(f"Invalid X-Facegate-Review {review!r}.")
    return Governance(
        context=RequestContext(
            now=now,
            purpose=purpose,
            case_ref=_text(given, "case"),
            authorization_ref=reference,
            authorization_issuer=issuer,
            realtime=_flag(given, "realtime"),
            exigent=_flag(given, "exigent"),
            camera=camera,
            consent_ref=_text(given, "consent"),
            setting=setting,
        ),
        review_id=review,
    )


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _text(given: Mapping[str, str], name: str) -> str:
    value = given.get(PREFIX + name, "")
    if value and not _TEXT.fullmatch(value):
        raise InvalidParameterException(
            f"Invalid {_title(PREFIX + name)}: up to 128 printable characters."
        )
    return value


def _flag(given: Mapping[str, str], name: str) -> bool:
    value = given.get(PREFIX + name, "false").lower()
    if value not in _BOOLEANS:
        raise InvalidParameterException(
            f"Invalid {_title(PREFIX + name)} {value!r}: true or false."
        )
    return _BOOLEANS[value]


def _authorization(value: str) -> tuple[str, str]:
    if not value:
        return "", ""
    reference, _, rest = (part.strip() for part in value.partition(";"))
    issuer = ""
    if rest:
        key, _, issuer = (part.strip() for part in rest.partition("="))
        if key.lower() != "issuer" or not issuer:
            raise InvalidParameterException(
                "Invalid X-Facegate-Authorization: '<reference>; issuer=<issuer>'."
            )
    for part in (reference, issuer):
        if part and not _TEXT.fullmatch(part):
            raise InvalidParameterException(
                "Invalid X-Facegate-Authorization: up to 128 printable characters each."
            )
    if not reference:
        raise InvalidParameterException("X-Facegate-Authorization needs a reference.")
    return reference, issuer
