"""Face descriptors: aligned chips in, 128-d vectors out, behind the :class:`Embedder` Protocol.

The default :class:`DlibEmbedder` runs dlib's ResNet (``dlib_face_recognition_resnet_model_v1``,
99.38% on LFW as published). It is single-threaded and bit-deterministic for a given chip. With
``flip_tta`` it also describes the mirrored chip and averages the two vectors (test-time
augmentation); whether that helps is measured by ``bench/lfw.py`` and reported in the README.

An operator can plug another model (an ONNX ArcFace export, say) by implementing ``Embedder``;
its ``version`` string then differs and collections record which model made their vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from facegate.engine.image import RGBImage

DESCRIPTOR_DIM = 128


def dlib_model_version(flip_tta: bool) -> str:
    """The version string of dlib's descriptor space, with or without flip augmentation."""
    return "dlib-resnet-v1" + ("+flip" if flip_tta else "")


class Embedder(Protocol):
    """Turns aligned chips into descriptors. ``version`` identifies the vector space."""

    @property
    def version(self) -> str: ...

    def embed(self, chips: Sequence[RGBImage]) -> npt.NDArray[np.float32]:
        """Descriptors for ``chips``: shape (len(chips), dim), float32; (0, dim) for no chips."""
        ...


class DlibEmbedder:
    """dlib's 128-d ResNet descriptor, optionally averaged with the mirrored chip's."""

    def __init__(self, network: Any, *, flip_tta: bool = False) -> None:
        self._net = network
        self._flip = flip_tta

    @property
    def version(self) -> str:
        return dlib_model_version(self._flip)

    def embed(self, chips: Sequence[RGBImage]) -> npt.NDArray[np.float32]:
        if not chips:
            return np.zeros((0, DESCRIPTOR_DIM), dtype=np.float32)
        batch = [np.ascontiguousarray(c) for c in chips]
        vectors = np.array(
            [np.array(v) for v in self._net.compute_face_descriptor(batch)], dtype=np.float64
        )
        if self._flip:
            mirrored = [np.ascontiguousarray(c[:, ::-1]) for c in chips]
            flipped = np.array(
                [np.array(v) for v in self._net.compute_face_descriptor(mirrored)],
                dtype=np.float64,
            )
            vectors = (vectors + flipped) / 2.0
        return vectors.astype(np.float32)
