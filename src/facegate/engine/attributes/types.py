"""The facial attributes, their values, and what an estimator is.

Values use Rekognition's ranges: confidences on 0-100, ages in whole years, eye direction in
degrees (-180..180). ``ops/types.py`` turns them into ``FaceDetail`` members.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from facegate.engine.image import RGBImage
from facegate.engine.types import BoxPx, Pose, Vector


class Attribute(StrEnum):
    """Rekognition's ``Attribute`` enum less DEFAULT and ALL (``facegate.operations``'s
    ``FACE_ATTRIBUTES``; a test checks both against botocore's service model)."""

    AGE_RANGE = "AGE_RANGE"
    BEARD = "BEARD"
    EMOTIONS = "EMOTIONS"
    EYE_DIRECTION = "EYE_DIRECTION"
    EYEGLASSES = "EYEGLASSES"
    EYES_OPEN = "EYES_OPEN"
    GENDER = "GENDER"
    MOUTH_OPEN = "MOUTH_OPEN"
    MUSTACHE = "MUSTACHE"
    FACE_OCCLUDED = "FACE_OCCLUDED"
    SMILE = "SMILE"
    SUNGLASSES = "SUNGLASSES"


@dataclass(frozen=True)
class Flag:
    """A yes/no attribute (Smile, EyesOpen, Eyeglasses, ...): the estimate and the estimator's
    confidence in it, 50-100 (50: a coin toss)."""

    value: bool
    confidence_pct: float


@dataclass(frozen=True)
class AgeRange:
    """The estimated age as a range of whole years (Rekognition's ``AgeRange{Low, High}``)."""

    low_years: int
    high_years: int


@dataclass(frozen=True)
class Gender:
    """A visual estimate of presented gender, ``Male`` or ``Female`` (Rekognition's two
    values): not a person's gender identity (docs/attributes.md)."""

    value: str
    confidence_pct: float


@dataclass(frozen=True)
class Emotion:
    """One facial expression (Rekognition's ``EmotionName``: HAPPY, SAD, ...) and the
    confidence that the face shows it: an expression, not a feeling (docs/attributes.md)."""

    type_name: str
    confidence_pct: float


@dataclass(frozen=True)
class EyeDirection:
    """Where the eyes look, relative to the head (degrees), and the confidence."""

    yaw_deg: float
    pitch_deg: float
    confidence_pct: float


AttributeValue = Flag | AgeRange | Gender | tuple[Emotion, ...] | EyeDirection


@dataclass(frozen=True)
class FaceAttributes:
    """The attributes estimated for one face; None: not asked for, or not available.

    Field names are the attributes' lower-case names, so ``getattr(attrs, a.lower())`` reads
    attribute ``a``."""

    age_range: AgeRange | None = None
    beard: Flag | None = None
    emotions: tuple[Emotion, ...] | None = None
    eye_direction: EyeDirection | None = None
    eyeglasses: Flag | None = None
    eyes_open: Flag | None = None
    gender: Gender | None = None
    mouth_open: Flag | None = None
    mustache: Flag | None = None
    face_occluded: Flag | None = None
    smile: Flag | None = None
    sunglasses: Flag | None = None

    def estimated(self) -> frozenset[Attribute]:
        """The attributes that have a value."""
        return frozenset(
            Attribute(f.name.upper()) for f in fields(self) if getattr(self, f.name) is not None
        )


Points68 = npt.NDArray[np.float64]
"""dlib's 68 landmarks (iBUG 300-W numbering) as an (68, 2) array of (x, y) pixels."""


@dataclass(frozen=True)
class FaceInput:
    """What an estimator sees of one face: the decoded, upright RGB pixels the engine worked
    on (possibly reduced, ``engine.image``) and, in those pixels, the face's box and 68 points,
    with the head pose. Estimators must not keep any of it."""

    pixels: RGBImage
    box_px: BoxPx
    points68_px: Points68
    pose: Pose
    chip: Callable[[], RGBImage] | None = None
    """The face's aligned 150x150 chip (``engine.align``: the one the descriptor network sees),
    computed on first call; None where the caller cannot align the face."""
    descriptor: Callable[[], Vector] | None = None
    """The face's descriptor, computed on first call (None: not available)."""
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Scratch space of this face's estimators, for this request only: results several
    estimators share (a model whose outputs serve two attributes, ``faceres`` for AgeRange and
    Gender, runs once per face; one classifier feature vector for several attributes).
    Dropped with the FaceInput."""


class AttributeEstimator(Protocol):
    """Estimates one attribute of one face. Loaded once per engine (per worker process), called
    per face of a request that asks for the attribute; deterministic for the same input.

    ``version`` names the model or method and its calibration (it changes whenever results
    may); ``estimate`` returns the value on Rekognition's ranges, or None when the face does not
    allow an estimate (e.g. eyes out of the image): the attribute is then omitted for that face,
    never guessed."""

    @property
    def attribute(self) -> Attribute: ...

    @property
    def version(self) -> str: ...

    def estimate(self, face: FaceInput) -> AttributeValue | None: ...


@dataclass(frozen=True)
class FaceModels:
    """Which converted face models (``engine.human_models``) attribute estimators may run, and
    where they are. Picklable (part of ``EngineConfig``, sent to worker processes).

    ``enabled`` is the operator's opt-in (``FACEGATE_ATTRIBUTE_MODELS``): empty by default, so
    no model-backed attribute is estimated unless an operator names its model, accepting its
    training data's terms (docs/attributes.md). ``models_dir`` None is
    ``<sys.prefix>/share/facegate/models``; ``allow_unpinned`` accepts conversions whose hashes
    facegate does not pin (``FACEGATE_MODELS_ALLOW_UNPINNED``)."""

    enabled: frozenset[str] = frozenset()
    models_dir: Path | None = None
    allow_unpinned: bool = False


class ModelSource(Protocol):
    """What ``EstimatorSpec.make`` is given to load a model: ``load(name)`` returns a verified
    session (``engine.human_models.LoadedModel``), the same one for every estimator of one
    engine that asks for the same model, or raises ``OSError`` when the model is not enabled or
    not available (the attribute is then unavailable)."""

    def load(self, name: str) -> Any: ...


@dataclass(frozen=True)
class EstimatorSpec:
    """An estimator the engine may run: its attribute, a one-line description of the method
    (for the transparency page), how to make it and the converted face model it runs, if any.

    ``make`` loads whatever it needs (model files through its :class:`ModelSource`,
    calibration) and raises ``OSError``, ``ImportError`` or ``ValueError`` when it cannot: the
    attribute is then unavailable in that engine (logged once), not an error. ``model``: the
    face model (``faceres``, ``emotion``) the estimator runs; such an estimator is made only
    when that model is in :attr:`FaceModels.enabled` (off by default), never otherwise."""

    attribute: Attribute
    method: str
    make: Callable[[ModelSource], AttributeEstimator]
    model: str | None = None
