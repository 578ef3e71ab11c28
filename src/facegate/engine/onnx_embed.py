"""dlib's face descriptor run as ONNX with onnxruntime: same vectors, batched, multi-threaded.

:class:`OnnxEmbedder` implements :class:`facegate.engine.embed.Embedder` with the graph that
:mod:`facegate.engine.onnx_export` builds from dlib's own ``.dat``. Its descriptors equal dlib's to
float32 rounding (tests/engine/test_onnx_export.py checks 1e-4 max-abs per component on every
sample face; ``bench/onnx_descriptor.py`` reports the distribution on LFW), so it reports the
same ``version`` as :class:`~facegate.engine.embed.DlibEmbedder` and stored faces stay comparable.

Choosing ``intra_op_threads``: the number of cores this process may use for one batch. 1 in a
worker pool with one process per core; the core count for a single process on an idle machine
(``bench/onnx_descriptor.py`` shows what a second thread buys when other work holds a core).
Batches amortise per-call overhead; ``max_batch`` bounds the chips per onnxruntime call, and so
its memory. ``spin`` lets idle intra-op threads busy-wait (onnxruntime's default): lower latency
on an otherwise idle machine, wasted CPU next to other busy processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]  # no stubs or py.typed

from facegate.engine.align import CHIP_SIZE_PX
from facegate.engine.embed import DESCRIPTOR_DIM, dlib_model_version
from facegate.engine.image import RGBImage
from facegate.engine.models import ModelFiles
from facegate.engine.onnx_export import INPUT_NAME, OUTPUT_NAME, cached_onnx_path

CHIP_SHAPE = (CHIP_SIZE_PX, CHIP_SIZE_PX, 3)


class OnnxEmbedder:
    """dlib's 128-d ResNet descriptor through onnxruntime (CPU), optionally with flip TTA."""

    def __init__(
        self,
        onnx_path: Path,
        *,
        intra_op_threads: int = 1,
        flip_tta: bool = False,
        max_batch: int = 32,
        spin: bool = False,
    ) -> None:
        if intra_op_threads < 1:
            raise ValueError(f"intra_op_threads must be >= 1, got {intra_op_threads}.")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}.")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning worker threads shave latency on an idle machine but burn a core that other
        # engine processes need; off by default.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self._session = ort.InferenceSession(
            str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._flip = flip_tta
        self._max_batch = max_batch
        self.threads = intra_op_threads

    @classmethod
    def from_model_files(
        cls,
        files: ModelFiles | None = None,
        *,
        cache_dir: Path | None = None,
        intra_op_threads: int = 1,
        flip_tta: bool = False,
        max_batch: int = 32,
        spin: bool = False,
    ) -> OnnxEmbedder:
        """Export (or reuse the cached export of) the packaged descriptor network and load it."""
        files = files or ModelFiles.from_package()
        path = cached_onnx_path(files.face_descriptor, cache_dir)
        return cls(
            path,
            intra_op_threads=intra_op_threads,
            flip_tta=flip_tta,
            max_batch=max_batch,
            spin=spin,
        )

    @property
    def version(self) -> str:
        return dlib_model_version(self._flip)

    def _run(self, batch: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        parts = []
        for start in range(0, len(batch), self._max_batch):
            out = self._session.run(
                [OUTPUT_NAME], {INPUT_NAME: batch[start : start + self._max_batch]}
            )
            parts.append(np.asarray(out[0], dtype=np.float32))
        return np.concatenate(parts)

    def embed(self, chips: Sequence[RGBImage]) -> npt.NDArray[np.float32]:
        """Descriptors for aligned 150x150 RGB uint8 chips: shape (len(chips), 128), float32."""
        if not chips:
            return np.zeros((0, DESCRIPTOR_DIM), dtype=np.float32)
        for chip in chips:
            if chip.shape != CHIP_SHAPE or chip.dtype != np.uint8:
                raise ValueError(
                    f"chips must be uint8 arrays of shape {CHIP_SHAPE}, got {chip.dtype} "
                    f"{chip.shape}."
                )
        batch = np.ascontiguousarray(np.stack(chips))
        vectors = self._run(batch)
        if self._flip:
            # As DlibEmbedder: average the two vectors in float64, then round to float32.
            flipped = self._run(np.ascontiguousarray(batch[:, :, ::-1]))
            return ((vectors.astype(np.float64) + flipped) / 2.0).astype(np.float32)
        return vectors
