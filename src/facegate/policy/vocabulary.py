"""The closed vocabulary of sectors and purposes that organisations register and policies test.

Purposes are the use cases an organisation registers and an access key is bound to (Microsoft's
Limited Access registration is the model: one approved use case per registration). Policies compare
``context.purpose`` with these names, so a name that is not listed here can never be registered,
sent or matched: an unknown purpose is refused before any policy runs.

Settings (:data:`SETTINGS`) say where the people in the images are; packs use them for rules
that depend on the place, such as the EU AI Act's ban on emotion inference in workplaces and
education (Art. 5(1)(f)).

Each purpose says whether it is, by its nature, part of a criminal investigation (the scope of
Amazon's 2020 moratorium in the AWS Service Terms wording: "face comparison ... by police
departments in connection with criminal investigations", governance-rules.md AMZ-MORATORIUM).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Purpose:
    name: str
    description: str
    criminal_investigation: bool = False


SECTORS: frozenset[str] = frozenset(
    {
        "law_enforcement",  # police departments, sheriffs, other criminal-justice agencies
        "government",  # other public bodies (agencies that are not police)
        "ngo",  # non-profits, e.g. Thorn, ICMEC, Marinus Analytics
        "commercial",  # private companies
        "research",  # universities, independent auditors
    }
)

_PURPOSES = (
    Purpose("missing_persons", "identify or locate a missing person (including missing children)"),
    Purpose("trafficking_victims", "identify and rescue victims of human trafficking"),
    Purpose("sexual_exploitation_victims", "identify victims of abduction or sexual exploitation"),
    Purpose("deceased_identification", "identify a deceased person"),
    Purpose("imminent_threat", "prevent a specific, substantial and imminent threat to life"),
    Purpose("humanitarian", "humanitarian aid, search and rescue"),
    Purpose("investigation", "criminal investigation: identify a suspect", True),
    Purpose("apprehended_suspect", "identify an already-apprehended suspect", True),
    Purpose("surveillance", "ongoing surveillance or persistent tracking of a person", True),
    Purpose("international_prosecution", "prosecute international crimes (ICC, human rights)"),
    Purpose("identity_verification", "1:1 verification of a claimed identity"),
    Purpose("access_control", "touchless access control for enrolled people"),
    Purpose("personalisation", "consent-based personalisation on shared devices"),
    Purpose("duplicate_detection", "find duplicate or blocked users"),
    Purpose("media_archive", "search media or entertainment archives"),
    Purpose("research", "accuracy and bias evaluation"),
    Purpose(
        "accessibility",
        "describe faces to blind or low-vision people (Microsoft's exception for its retired "
        "facial attributes, e.g. Seeing AI)",
    ),
    Purpose("medical", "medical or therapeutic use (the exception of EU AI Act Art. 5(1)(f))"),
    Purpose(
        "safety",
        "physical safety, e.g. a driver's or machine operator's fatigue (the exception of EU AI "
        "Act Art. 5(1)(f))",
    ),
)

PURPOSES: Mapping[str, Purpose] = MappingProxyType({p.name: p for p in _PURPOSES})

CAMERAS: frozenset[str] = frozenset({"", "fixed", "mobile", "upload"})
"""``context.camera``: where the probe image comes from ("" when the caller does not say)."""

SETTINGS: frozenset[str] = frozenset({"", "workplace", "education", "public", "other"})
"""``context.setting``: where the people in the images are (``X-Facegate-Setting``; "" when
the caller does not say). ``workplace`` and ``education`` are the areas of EU AI Act Art.
5(1)(f) (emotion inference prohibited there); ``public`` a publicly accessible space; ``other``
any other place (a home, a shop's own premises for its own staff is ``workplace``)."""
