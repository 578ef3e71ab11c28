"""Choosing the descriptor runtime: ONNX by default here, dlib with one warning when ONNX fails."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from facegate.bias.descriptors import config_key
from facegate.engine import runtime
from facegate.engine.core import DescriptorRuntime, EngineConfig, FaceEngine
from facegate.engine.embed import DlibEmbedder
from facegate.engine.image import RGBImage
from facegate.engine.models import LoadedModels
from facegate.engine.onnx_embed import OnnxEmbedder
from facegate.engine.onnx_export import DlibModelFormatError
from facegate.engine.runtime import (
    SELF_CHECK_TOLERANCE,
    RuntimeSelfCheckError,
    choose_embedder,
    self_check,
    self_check_chip,
)


@pytest.fixture
def corrupt_models(
    engine: FaceEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> LoadedModels:
    """The session's loaded models, but with the descriptor file path pointing to a corrupt copy
    (dlib's network is already loaded; only the ONNX export reads the file)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = bytearray(engine.models.files.face_descriptor.read_bytes())
    at = data.index(b"con_")
    data[at : at + 4] = b"xyz_"
    bad = tmp_path / "corrupt.dat"
    bad.write_bytes(bytes(data))
    return replace(engine.models, files=replace(engine.models.files, face_descriptor=bad))


class _Offset:
    """An embedder giving dlib's vectors plus a constant (a broken fast path)."""

    def __init__(self, inner: DlibEmbedder, offset: float) -> None:
        self._inner, self._offset = inner, offset

    @property
    def version(self) -> str:
        return self._inner.version

    def embed(self, chips: Sequence[RGBImage]) -> npt.NDArray[np.float32]:
        return self._inner.embed(chips) + np.float32(self._offset)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "facegate.engine" and r.levelno == logging.WARNING
    ]


def test_auto_is_the_default_and_picks_onnx_here(engine: FaceEngine) -> None:
    assert EngineConfig().descriptor_runtime is DescriptorRuntime.AUTO
    assert engine.descriptor_runtime is DescriptorRuntime.ONNX
    assert isinstance(engine.embedder, OnnxEmbedder)
    assert engine.model_version == "dlib-resnet-v1"  # the same vector space as dlib's


def test_auto_logs_no_warning_when_onnx_starts(
    engine: FaceEngine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="facegate.engine"):
        fresh = FaceEngine(EngineConfig(), models=engine.models)
    assert fresh.descriptor_runtime is DescriptorRuntime.ONNX
    assert _warnings(caplog) == []
    assert any("descriptor runtime: onnx" in r.getMessage() for r in caplog.records)


def test_the_self_check_chip_is_fixed_and_described_alike(engine: FaceEngine) -> None:
    chip = self_check_chip()
    assert chip.shape == (150, 150, 3)
    assert chip.dtype == np.uint8
    assert np.array_equal(chip, self_check_chip())
    assert len(np.unique(chip)) > 200  # varied input, not a flat image
    dlib = DlibEmbedder(engine.models.descriptor)
    assert self_check(engine.embedder, dlib) <= SELF_CHECK_TOLERANCE


def test_self_check_refuses_vectors_off_by_more_than_the_tolerance(engine: FaceEngine) -> None:
    dlib = DlibEmbedder(engine.models.descriptor)
    with pytest.raises(RuntimeSelfCheckError, match=r"differs from dlib's by 0\.001"):
        self_check(_Offset(dlib, 1e-3), dlib)
    with pytest.raises(RuntimeSelfCheckError, match="nan"):
        self_check(_Offset(dlib, float("nan")), dlib)


def test_an_import_error_falls_back_to_dlib_with_one_warning(
    engine: FaceEngine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # As if onnxruntime were not installed: None in sys.modules makes importing it raise
    # ModuleNotFoundError, and onnx_embed (which imports it) is imported afresh.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.delitem(sys.modules, "facegate.engine.onnx_embed")
    with caplog.at_level(logging.INFO, logger="facegate.engine"):
        slow = FaceEngine(EngineConfig(), models=engine.models)
    assert slow.descriptor_runtime is DescriptorRuntime.DLIB
    assert isinstance(slow.embedder, DlibEmbedder)
    assert slow.model_version == engine.model_version
    # MTCNN, which runs on onnxruntime too, leaves the detector chain with its own warnings
    # (tests/engine/test_detect.py); the descriptor runtime warns once.
    (warning,) = [w for w in _warnings(caplog) if not w.startswith("detection: ")]
    assert warning.startswith("descriptor runtime: using dlib, the ONNX runtime is unavailable")
    assert "ModuleNotFoundError: import of onnxruntime halted" in warning


def test_a_corrupt_dat_falls_back_to_dlib_with_one_warning(
    corrupt_models: LoadedModels, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="facegate.engine"):
        embedder, chosen = choose_embedder(
            DescriptorRuntime.AUTO, corrupt_models, threads=1, flip_tta=False
        )
    assert chosen is DescriptorRuntime.DLIB
    assert isinstance(embedder, DlibEmbedder)
    (warning,) = _warnings(caplog)
    assert "DlibModelFormatError" in warning
    assert "expected a con_ layer, found 'xyz_" in warning


def test_a_forced_onnx_runtime_raises_instead_of_falling_back(
    corrupt_models: LoadedModels,
) -> None:
    with pytest.raises(DlibModelFormatError, match="expected a con_ layer"):
        choose_embedder(DescriptorRuntime.ONNX, corrupt_models, threads=1, flip_tta=False)


def test_a_failed_self_check_falls_back_to_dlib(
    engine: FaceEngine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken = _Offset(DlibEmbedder(engine.models.descriptor), 1e-3)
    monkeypatch.setattr(runtime, "make_onnx_embedder", lambda *a, **k: broken)
    with caplog.at_level(logging.WARNING, logger="facegate.engine"):
        embedder, chosen = choose_embedder(
            DescriptorRuntime.AUTO, engine.models, threads=1, flip_tta=False
        )
    assert chosen is DescriptorRuntime.DLIB
    assert isinstance(embedder, DlibEmbedder)
    (warning,) = _warnings(caplog)
    assert "RuntimeSelfCheckError" in warning


def test_forced_dlib_never_loads_onnx(engine: FaceEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "facegate.engine.onnx_embed", None)
    slow = FaceEngine(EngineConfig(descriptor_runtime=DescriptorRuntime.DLIB), engine.models)
    assert slow.descriptor_runtime is DescriptorRuntime.DLIB


def test_the_bias_cache_key_does_not_depend_on_the_runtime() -> None:
    # bias/descriptors.py keys cached descriptors by detector and limits (and model version):
    # vectors from either runtime are interchangeable, so switching runtime keeps the cache.
    keys = {
        config_key(
            EngineConfig(descriptor_runtime=r, descriptor_threads=t), "dlib-resnet-v1", False
        )
        for r in DescriptorRuntime
        for t in (1, 2)
    }
    assert len(keys) == 1
