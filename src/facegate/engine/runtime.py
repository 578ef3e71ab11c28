"""Where dlib's descriptor network runs, and choosing it when an engine starts.

``DescriptorRuntime.AUTO`` (the default) uses the ONNX export of the network in onnxruntime
(``engine.onnx_export``, ``engine.onnx_embed``: the same vectors, 20-25x faster per face on one
core, ``bench/onnx_descriptor.py``) when all of these hold, checked once per engine, that is once
per worker process:

1. ``onnx`` and ``onnxruntime`` import;
2. the export of the installed ``.dat`` builds (or its cached copy loads) and onnxruntime opens it;
3. a self-check passes: the descriptor of one built-in chip (:func:`self_check_chip`) from
   onnxruntime equals dlib's to within :data:`SELF_CHECK_TOLERANCE` per component.

Otherwise it uses dlib and logs one warning saying which step failed. The choice costs about
0.17 s per engine start once the export is cached (hashing the ``.dat``, opening the session, one
dlib descriptor for the self-check; 2-core Intel Xeon). ``DLIB`` and ``ONNX`` force a runtime; a
forced ``ONNX`` that cannot start raises instead of falling back.

Both runtimes give the same vector space (``dlib-resnet-v1``, max difference 4.8e-7 on 1,244 LFW
faces; the full LFW View 2 protocol gives the same accuracy, AUC and errors with either, see
docs/benchmarks.md), so the model version stored with faces does not depend on the runtime, and
neither does the bias toolkit's descriptor cache key.

Threads: ``EngineConfig.descriptor_threads`` (onnxruntime's intra-op threads) defaults to 1
because the engine pool already runs one worker process per core (``pool.default_workers``):
both cores are already busy, and a second onnxruntime thread per worker only competes with the
other worker's detection (dlib HOG, single-threaded). Measured with a pool of 2 workers on 2
cores, 640x480 JPEGs (docs/benchmarks.md): 2 threads per worker gave 0.75x and 0.98x the
images/s of 1 thread (one and six faces per image): no gain. With one thread the result also
cannot depend on how the work was split, so the pool and an in-process engine with the same
configuration give bit-identical vectors (tests/engine/test_pool.py). A single engine on an
otherwise idle machine may use more (``bench/engine_speed.py`` measures 1 and 2 threads).
"""

from __future__ import annotations

import logging
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from facegate.engine.align import CHIP_SIZE_PX
from facegate.engine.embed import DlibEmbedder, Embedder
from facegate.engine.models import LoadedModels

log = logging.getLogger("facegate.engine")

SELF_CHECK_TOLERANCE = 1e-4
"""Max absolute difference per component between ONNX and dlib on the self-check chip (the
contract tests/engine/test_onnx_export.py checks on every sample face)."""


class DescriptorRuntime(StrEnum):
    """Where dlib's descriptor network runs: ``auto`` (ONNX when it starts and passes the
    self-check, else dlib), ``dlib`` itself, or its ``onnx`` export in onnxruntime."""

    AUTO = "auto"
    DLIB = "dlib"
    ONNX = "onnx"


def runtime_named(name: str) -> DescriptorRuntime:
    """The runtime of a ``FACEGATE_DESCRIPTOR_RUNTIME`` value; ``ValueError`` for others."""
    try:
        return DescriptorRuntime(name.strip().lower())
    except ValueError:
        choices = ", ".join(r.value for r in DescriptorRuntime)
        raise ValueError(
            f"FACEGATE_DESCRIPTOR_RUNTIME must be one of {choices}, got {name!r}"
        ) from None


class RuntimeSelfCheckError(RuntimeError):
    """The ONNX descriptor differs from dlib's on the self-check chip."""


def self_check_chip() -> npt.NDArray[np.uint8]:
    """A fixed 150x150 RGB chip computed from a formula (no file, no random generator): smooth
    gradients and waves with a fine-grained pattern, so every layer sees varied input."""
    y, x = np.mgrid[0:CHIP_SIZE_PX, 0:CHIP_SIZE_PX].astype(np.float64)
    fine = ((x * 37 + y * 91) % 61) - 30.0
    red = 128 + 70 * np.sin(x / 9.0) * np.cos(y / 13.0) + fine
    green = 40 + 0.8 * y + 0.4 * fine
    blue = 200 - 0.9 * x + 30 * np.sin((x + y) / 5.0)
    chip = np.stack([red, green, blue], axis=-1)
    pixels: npt.NDArray[np.uint8] = np.clip(np.rint(chip), 0, 255).astype(np.uint8)
    return pixels


def self_check(onnx: Embedder, dlib: Embedder, tolerance: float = SELF_CHECK_TOLERANCE) -> float:
    """The max absolute difference on :func:`self_check_chip`; raises if it exceeds
    ``tolerance`` (or is not finite)."""
    chip = self_check_chip()
    diff = float(np.abs(onnx.embed([chip]) - dlib.embed([chip])).max())
    if not diff <= tolerance:  # also catches NaN
        raise RuntimeSelfCheckError(
            f"ONNX descriptor differs from dlib's by {diff:.3g} on the self-check chip "
            f"(tolerance {tolerance:g})"
        )
    return diff


def make_onnx_embedder(models: LoadedModels, *, threads: int, flip_tta: bool) -> Embedder:
    """The ONNX embedder for ``models``' descriptor file (exported on first use)."""
    # Imported here so a dlib-only engine never loads onnx or onnxruntime.
    from facegate.engine.onnx_embed import OnnxEmbedder

    return OnnxEmbedder.from_model_files(models.files, intra_op_threads=threads, flip_tta=flip_tta)


def choose_embedder(
    runtime: DescriptorRuntime, models: LoadedModels, *, threads: int, flip_tta: bool
) -> tuple[Embedder, DescriptorRuntime]:
    """The embedder for ``runtime`` and the runtime it resolved to (never ``AUTO``).

    ``AUTO`` falls back to dlib on any failure to start ONNX (see the module docstring) and logs
    one warning naming the reason; a forced ``ONNX`` raises that failure.
    """
    dlib = DlibEmbedder(models.descriptor, flip_tta=flip_tta)
    if runtime is DescriptorRuntime.DLIB:
        return dlib, DescriptorRuntime.DLIB
    if runtime is DescriptorRuntime.ONNX:
        return make_onnx_embedder(models, threads=threads, flip_tta=flip_tta), runtime
    try:
        onnx = make_onnx_embedder(models, threads=threads, flip_tta=flip_tta)
        diff = self_check(onnx, dlib)
    # Whatever stops the fast path (a missing module, an unreadable or corrupt .dat, an
    # onnxruntime error, a failed self-check) leaves the engine working on dlib.
    except Exception as exc:
        log.warning(
            "descriptor runtime: using dlib, the ONNX runtime is unavailable: %s: %s",
            type(exc).__name__,
            exc,
        )
        return dlib, DescriptorRuntime.DLIB
    log.info("descriptor runtime: onnx (self-check max difference %.3g)", diff)
    return onnx, DescriptorRuntime.ONNX
