"""Every Rekognition operation facegate serves, as one row of plain data: what it computes.

This is the one place that says, per operation: its Cedar action (the operation's name) and
resource, whether it compares faces, enrols or writes, which parameter carries its threshold
(and Rekognition's default) and its candidate cap (and the API's maximum), whether it takes an
idempotency token, which request parameters carry images, which members of its answer list
candidates, which tell the caller who matched, which face of its probe image a reviewer sees,
and which members its audit record summarises. Every layer reads it: the Cedar action groups
and schema (:mod:`facegate.policy.actions`), the obligations (:mod:`facegate.enforce`), the
handlers' defaults and their access to the matcher (``ops/``: an operation whose row says it
does not compare faces gets a matcher that refuses), the pipeline's deployment gate, human
review, idempotency and review crops (:mod:`facegate.crops`), the audit record
(:mod:`facegate.recording`) and the audit report's counts. Nothing in governance depends on a
list of names kept by hand elsewhere; ``tests/test_operations.py`` checks every column it can
against botocore's service model.

How an operation is classified (by what it computes, not by its name):

* ``comparison`` is :attr:`Comparison.IDENTIFICATION` when the answer depends on comparing a
  face with templates stored in a collection (the searches; AssociateFaces, which scores each
  named face against the user's stored faces and returns that score: with faces the caller
  picks, it is a search of up to 100 stored faces per call); :attr:`Comparison.VERIFICATION`
  when it compares faces that all arrive in the request (CompareFaces); else
  :attr:`Comparison.NONE`. A test checks the classification against botocore's service model
  (every operation with a match threshold compares faces) and against what the handlers do
  (an undeclared comparison fails the request).
* ``enrols``: creates or extends a persistent biometric template or identity (IndexFaces,
  AssociateFaces).
* ``writes``: changes the store. An operation that compares faces *and* writes (AssociateFaces)
  cannot simply be held for human review after the fact (the write itself would disclose the
  match): the pipeline plans it, holds the plan, and applies it when a released review is
  collected (``ops/registry.py``'s ``plan`` / ``apply_held``).

Imports nothing from facegate: it sits at the bottom of the layers with ``errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

DEFAULT_THRESHOLD_PCT = 80.0
"""Rekognition's default for FaceMatchThreshold, SimilarityThreshold and UserMatchThreshold
(governance-rules.md AMZ-DEFAULTS; botocore documents it for the searches). The one place the
number is written: the rows below and every Similarity band labelled "the default" read it."""

DEFAULT_ASSOCIATE_THRESHOLD_PCT = 75.0
"""Rekognition's default UserMatchThreshold of AssociateFaces (botocore's documentation)."""

MAX_FACES_CAP = 4096
"""The largest MaxFaces of SearchFaces and SearchFacesByImage (botocore's ``MaxFaces`` shape),
and how many matches they return when the request names none: the threshold, not a count,
limits results."""

MAX_USERS_CAP = 500
"""The largest MaxUsers of SearchUsers and SearchUsersByImage (botocore's ``MaxUserResults``
shape), and how many matches they return when the request names none."""


FACE_ATTRIBUTES: tuple[str, ...] = (
    "AGE_RANGE",
    "BEARD",
    "EMOTIONS",
    "EYE_DIRECTION",
    "EYEGLASSES",
    "EYES_OPEN",
    "GENDER",
    "MOUTH_OPEN",
    "MUSTACHE",
    "FACE_OCCLUDED",
    "SMILE",
    "SUNGLASSES",
)
"""Rekognition's facial attributes beyond the default ones (botocore's ``Attribute`` enum less
``DEFAULT`` and ``ALL``; a test checks it against the service model). The vocabulary is closed:
a policy, an obligation or the engine can name no other, and none of these is a race,
ethnicity, religion, political opinion, trade-union membership, sex life or sexual orientation
(EU AI Act Art. 5(1)(g); docs/attributes.md)."""

ATTRIBUTE_MEMBERS: Mapping[str, str] = MappingProxyType(
    {
        "AGE_RANGE": "AgeRange",
        "BEARD": "Beard",
        "EMOTIONS": "Emotions",
        "EYE_DIRECTION": "EyeDirection",
        "EYEGLASSES": "Eyeglasses",
        "EYES_OPEN": "EyesOpen",
        "GENDER": "Gender",
        "MOUTH_OPEN": "MouthOpen",
        "MUSTACHE": "Mustache",
        "FACE_OCCLUDED": "FaceOccluded",
        "SMILE": "Smile",
        "SUNGLASSES": "Sunglasses",
    }
)
"""Each attribute's member of Rekognition's ``FaceDetail`` (wire name)."""


def requested_attributes(values: object) -> frozenset[str]:
    """The attributes a request's ``Attributes`` / ``DetectionAttributes`` asks for, by
    Rekognition's rules (botocore's documentation of both): ``DEFAULT`` (or nothing) asks for
    none of :data:`FACE_ATTRIBUTES` (the default members are always returned), ``ALL`` for every
    one, a name for itself; a list is the union (``["ALL", "DEFAULT"]``: all;
    ``["DEFAULT", "SMILE"]``: SMILE). Unknown names are ignored here (the service model has
    refused them before)."""
    if not isinstance(values, list | tuple):
        return frozenset()
    names = {str(v) for v in values}
    if "ALL" in names:
        return frozenset(FACE_ATTRIBUTES)
    return frozenset(names & set(FACE_ATTRIBUTES))


def named_attributes(values: object) -> frozenset[str]:
    """The attributes a request names one by one (``ALL`` names none): a policy may refuse a
    request that names an attribute and only drop it from one that asks for ``ALL``."""
    if not isinstance(values, list | tuple):
        return frozenset()
    return frozenset({str(v) for v in values} & set(FACE_ATTRIBUTES))


class Comparison(Enum):
    """Whether, and against what, an operation compares faces."""

    NONE = "none"
    VERIFICATION = "verification"
    """1:1: every compared face arrives in the request (CompareFaces)."""
    IDENTIFICATION = "identification"
    """1:N: faces are compared with templates stored in a collection."""


@dataclass(frozen=True)
class Probe:
    """Where an operation's probe image is (a request parameter, snake_case) and where its face
    box is in the answer (a path of wire members): the face a reviewer of a held answer sees
    (:mod:`facegate.crops`)."""

    param: str
    box_path: tuple[str, ...]


class Resource(Enum):
    """The Cedar resource of an operation."""

    SERVICE = "service"
    COLLECTION = "collection"
    EITHER = "either"
    """A collection when the request's ARN names one of the caller's, else the Service."""


@dataclass(frozen=True)
class OperationSpec:
    """One operation: what it computes and which of its parameters governance touches.

    ``name`` is also its Cedar action (``Facegate::Action::"<name>"``), in the groups of
    :attr:`groups`. Parameter names are snake_case (None: it has none): ``threshold_param``
    with ``default_threshold_pct`` when the request names none; ``cap_param`` with
    ``cap_limit``, the API's maximum and the cap when the request names none;
    ``idempotent_token``: the request takes a ClientRequestToken (its response is replayed);
    ``image_params``: the parameters that carry an image (the engine runs; the audit record
    keeps their SHA-256); ``attributes_param`` asks for facial attributes (None: the operation
    infers none). Wire members of the answer: ``candidate_fields`` list candidates (counted,
    capped by ``max_candidates``); ``held_fields`` are withheld while a review is pending
    (everything that tells the caller who matched, or did not); ``probe`` is the face a
    reviewer sees; ``summary_fields`` are the members the audit record summarises (counts, the
    top similarity, FaceIds, attribute names: :func:`facegate.recording.summarise`)."""

    name: str
    resource: Resource
    comparison: Comparison = Comparison.NONE
    enrols: bool = False
    writes: bool = False
    idempotent_token: bool = False
    collection_param: str | None = "collection_id"
    image_params: tuple[str, ...] = ()
    threshold_param: str | None = None
    default_threshold_pct: float | None = None
    cap_param: str | None = None
    cap_limit: int | None = None
    candidate_fields: tuple[str, ...] = ()
    held_fields: tuple[str, ...] = ()
    attributes_param: str | None = None
    probe: Probe | None = None
    summary_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.threshold_param is None) != (self.default_threshold_pct is None):
            raise ValueError(f"{self.name}: a threshold parameter goes with its default")
        if (self.cap_param is None) != (self.cap_limit is None):
            raise ValueError(f"{self.name}: a cap parameter goes with its limit")
        if self.probe is not None and self.probe.param not in self.image_params:
            raise ValueError(f"{self.name}: the probe is not one of the request's images")

    @property
    def uses_engine(self) -> bool:
        """Whether the face engine runs: the request carries an image."""
        return bool(self.image_params)

    @property
    def compares_faces(self) -> bool:
        """Whether the answer depends on comparing faces (policies' ``face_comparison``)."""
        return self.comparison is not Comparison.NONE

    @property
    def identification(self) -> bool:
        """Whether faces are compared with a collection's stored templates (1:N)."""
        return self.comparison is Comparison.IDENTIFICATION

    @property
    def groups(self) -> frozenset[str]:
        """Every Cedar action group the operation belongs to (transitively)."""
        out: set[str] = set()
        if self.compares_faces:
            out |= {"face_comparison", self.comparison.value}
        if self.enrols:
            out.add("enrolment")
        if not out:
            out.add("detection" if self.uses_engine else "administration")
        return frozenset(out)


GROUPS: tuple[str, ...] = (
    "face_comparison",
    "identification",
    "verification",
    "enrolment",
    "detection",
    "administration",
)
"""The Cedar action groups; ``identification`` and ``verification`` are inside
``face_comparison``."""

GROUP_PARENTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"identification": ("face_comparison",), "verification": ("face_comparison",)}
)

_S, _C, _E = Resource.SERVICE, Resource.COLLECTION, Resource.EITHER
_ID, _VER = Comparison.IDENTIFICATION, Comparison.VERIFICATION
_IMAGE = ("image",)
_FACE_MATCHES = ("FaceMatches",)
_USER_MATCHES = ("UserMatches",)


def _table(*specs: OperationSpec) -> Mapping[str, OperationSpec]:
    return MappingProxyType({spec.name: spec for spec in specs})


OPERATIONS: Mapping[str, OperationSpec] = _table(
    OperationSpec(
        "DetectFaces", _S, collection_param=None, image_params=_IMAGE,
        attributes_param="attributes", summary_fields=("FaceDetails",),
    ),
    OperationSpec(
        "CompareFaces", _S, _VER, collection_param=None,
        image_params=("source_image", "target_image"),
        threshold_param="similarity_threshold", default_threshold_pct=DEFAULT_THRESHOLD_PCT,
        candidate_fields=_FACE_MATCHES, held_fields=("FaceMatches", "UnmatchedFaces"),
        probe=Probe("source_image", ("SourceImageFace", "BoundingBox")),
        summary_fields=("SourceImageFace", "FaceMatches", "UnmatchedFaces"),
    ),
    OperationSpec("CreateCollection", _C, writes=True),
    OperationSpec("DescribeCollection", _C),
    OperationSpec("ListCollections", _S, collection_param=None),
    OperationSpec("DeleteCollection", _C, writes=True),
    OperationSpec(
        "IndexFaces", _C, enrols=True, writes=True, image_params=_IMAGE,
        attributes_param="detection_attributes",
        summary_fields=("FaceRecords", "UnindexedFaces"),
    ),
    OperationSpec("ListFaces", _C),
    OperationSpec("DeleteFaces", _C, writes=True, summary_fields=("DeletedFaces",)),
    OperationSpec(
        "SearchFaces", _C, _ID, threshold_param="face_match_threshold",
        default_threshold_pct=DEFAULT_THRESHOLD_PCT, cap_param="max_faces",
        cap_limit=MAX_FACES_CAP, candidate_fields=_FACE_MATCHES, held_fields=_FACE_MATCHES,
        summary_fields=_FACE_MATCHES,
    ),
    OperationSpec(
        "SearchFacesByImage", _C, _ID, image_params=_IMAGE,
        threshold_param="face_match_threshold", default_threshold_pct=DEFAULT_THRESHOLD_PCT,
        cap_param="max_faces", cap_limit=MAX_FACES_CAP,
        candidate_fields=_FACE_MATCHES, held_fields=_FACE_MATCHES,
        probe=Probe("image", ("SearchedFaceBoundingBox",)),
        summary_fields=("SearchedFaceBoundingBox", "FaceMatches"),
    ),
    OperationSpec("CreateUser", _C, writes=True, idempotent_token=True),
    OperationSpec("DeleteUser", _C, writes=True, idempotent_token=True),
    OperationSpec("ListUsers", _C),
    OperationSpec(
        "AssociateFaces", _C, _ID, enrols=True, writes=True, idempotent_token=True,
        threshold_param="user_match_threshold",
        default_threshold_pct=DEFAULT_ASSOCIATE_THRESHOLD_PCT,
        held_fields=("AssociatedFaces", "UnsuccessfulFaceAssociations"),
        summary_fields=("AssociatedFaces",),
    ),
    OperationSpec(
        "DisassociateFaces", _C, writes=True, idempotent_token=True,
        summary_fields=("DisassociatedFaces",),
    ),
    OperationSpec(
        "SearchUsers", _C, _ID, threshold_param="user_match_threshold",
        default_threshold_pct=DEFAULT_THRESHOLD_PCT, cap_param="max_users",
        cap_limit=MAX_USERS_CAP, candidate_fields=_USER_MATCHES, held_fields=_USER_MATCHES,
        summary_fields=("UserMatches", "SearchedFace"),
    ),
    OperationSpec(
        "SearchUsersByImage", _C, _ID, image_params=_IMAGE,
        threshold_param="user_match_threshold", default_threshold_pct=DEFAULT_THRESHOLD_PCT,
        cap_param="max_users", cap_limit=MAX_USERS_CAP,
        candidate_fields=_USER_MATCHES, held_fields=_USER_MATCHES,
        probe=Probe("image", ("SearchedFace", "FaceDetail", "BoundingBox")),
        summary_fields=("UserMatches", "SearchedFace"),
    ),
    OperationSpec("TagResource", _E, writes=True, collection_param=None),
    OperationSpec("UntagResource", _E, writes=True, collection_param=None),
    OperationSpec("ListTagsForResource", _E, collection_param=None),
)  # fmt: skip
"""Operation name -> its row. An operation not listed here is refused (fail closed)."""


def spec(name: str) -> OperationSpec | None:
    """The row of ``name`` (None: facegate does not serve it)."""
    return OPERATIONS.get(name)


def default_threshold(name: str) -> float:
    """The threshold ``name`` uses when the request names none (Rekognition's default); raises
    ValueError for an operation without a threshold."""
    value = OPERATIONS[name].default_threshold_pct
    if value is None:
        raise ValueError(f"{name} has no threshold")
    return value


def cap_limit(name: str) -> int:
    """The candidates ``name`` returns at most when the request names no cap (the API's
    maximum); raises ValueError for an operation without a candidate cap."""
    value = OPERATIONS[name].cap_limit
    if value is None:
        raise ValueError(f"{name} has no candidate cap")
    return value


def in_group(group: str) -> frozenset[str]:
    """The operations in a Cedar action group."""
    return frozenset(name for name, op in OPERATIONS.items() if group in op.groups)


CANDIDATE_FIELDS: tuple[str, ...] = tuple(
    sorted({f for op in OPERATIONS.values() for f in op.candidate_fields})
)
"""Every wire member that lists candidates, in any operation's answer."""
