"""dlib's descriptor network exported to ONNX: a valid graph, the same vectors, clear errors.

onnx and onnxruntime are dependencies of facegate: if either is missing these tests fail at
import, they are never skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import pytest

from facegate.engine.align import face_chip
from facegate.engine.core import DescriptorRuntime, EngineConfig, FaceEngine
from facegate.engine.embed import DlibEmbedder
from facegate.engine.image import RGBImage
from facegate.engine.models import ModelFiles, file_sha256
from facegate.engine.onnx_embed import OnnxEmbedder
from facegate.engine.onnx_export import (
    INPUT_NAME,
    OUTPUT_NAME,
    DlibModelFormatError,
    build_onnx,
    cached_onnx_path,
)
from facegate.errors import FacegateError

TOLERANCE = 1e-4
"""The contract: max absolute difference per descriptor component against dlib."""

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@pytest.fixture(scope="module")
def dat_path() -> Path:
    return ModelFiles.from_package().face_descriptor


@pytest.fixture(scope="module")
def onnx_path(dat_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "descriptor.onnx"
    build_onnx(dat_path, out)
    return out


@pytest.fixture(scope="module")
def sample_chips(engine: FaceEngine, samples: Path) -> list[tuple[str, RGBImage]]:
    """Every face the engine finds in the sample images, as the engine aligns it."""
    chips: list[tuple[str, RGBImage]] = []
    for path in sorted(p for p in samples.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            image = engine.decode(path.read_bytes())
        except FacegateError:  # samples include images the engine rejects on purpose
            continue
        for i, face in enumerate(engine.detect(image)):
            chip = face_chip(image.pixels, face.box_px, face.points5_px)
            chips.append((f"{path.relative_to(samples)}#{i}", chip))
    assert len(chips) >= 20, "the samples should hold at least 20 faces"
    return chips


def _dlib(engine: FaceEngine, chips: list[RGBImage]) -> npt.NDArray[np.float32]:
    return DlibEmbedder(engine.models.descriptor).embed(chips)


def test_exported_graph_passes_the_onnx_checker(onnx_path: Path) -> None:
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model, full_check=True)
    (inp,) = model.graph.input
    (out,) = model.graph.output
    assert inp.name == INPUT_NAME
    assert out.name == OUTPUT_NAME
    in_dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    assert in_dims == ["N", 150, 150, 3]  # dynamic batch of uint8 RGB chips
    assert out_dims == ["N", 128]


def test_build_returns_the_sha256_of_the_written_file(dat_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    digest = build_onnx(dat_path, out)
    assert digest == file_sha256(out)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary file left


def test_cache_builds_once_keyed_by_the_dat_sha(dat_path: Path, tmp_path: Path) -> None:
    first = cached_onnx_path(dat_path, tmp_path)
    assert first.name.startswith(file_sha256(dat_path))
    stamp = first.stat().st_mtime_ns
    second = cached_onnx_path(dat_path, tmp_path)
    assert second == first
    assert second.stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_every_sample_face_matches_dlib_within_tolerance(
    engine: FaceEngine, onnx_path: Path, sample_chips: list[tuple[str, RGBImage]]
) -> None:
    names = [n for n, _ in sample_chips]
    chips = [c for _, c in sample_chips]
    reference = _dlib(engine, chips)
    exported = OnnxEmbedder(onnx_path, intra_op_threads=2).embed(chips)
    assert exported.dtype == np.float32
    assert exported.shape == reference.shape == (len(chips), 128)
    per_face = np.abs(exported - reference).max(axis=1)
    worst = int(per_face.argmax())
    assert per_face[worst] <= TOLERANCE, (names[worst], float(per_face[worst]))


def test_a_batch_equals_the_faces_one_by_one(
    onnx_path: Path, sample_chips: list[tuple[str, RGBImage]]
) -> None:
    chips = [c for _, c in sample_chips]
    embedder = OnnxEmbedder(onnx_path, intra_op_threads=1, max_batch=8)
    batched = embedder.embed(chips)
    singles = np.concatenate([embedder.embed([c]) for c in chips])
    # Batching may change the summation order inside onnxruntime's kernels, not the contract.
    assert np.abs(batched - singles).max() <= 1e-5


def test_version_and_flip_tta_match_dlib(
    engine: FaceEngine, onnx_path: Path, sample_chips: list[tuple[str, RGBImage]]
) -> None:
    chips = [c for _, c in sample_chips[:4]]
    plain = OnnxEmbedder(onnx_path)
    flip = OnnxEmbedder(onnx_path, flip_tta=True)
    dlib_flip = DlibEmbedder(engine.models.descriptor, flip_tta=True)
    assert plain.version == DlibEmbedder(engine.models.descriptor).version
    assert flip.version == dlib_flip.version
    assert np.abs(flip.embed(chips) - dlib_flip.embed(chips)).max() <= TOLERANCE
    assert plain.embed([]).shape == (0, 128)


def test_a_wrong_chip_is_refused(onnx_path: Path) -> None:
    embedder = OnnxEmbedder(onnx_path)
    with pytest.raises(ValueError, match=r"chips must be uint8 arrays of shape \(150, 150, 3\)"):
        embedder.embed([np.zeros((100, 100, 3), dtype=np.uint8)])


@pytest.mark.parametrize("keep", [0, 3, 1000, 1_000_000, -1])
def test_a_truncated_dat_raises_a_clear_error(dat_path: Path, tmp_path: Path, keep: int) -> None:
    data = dat_path.read_bytes()
    bad = tmp_path / "truncated.dat"
    bad.write_bytes(data[:keep])
    with pytest.raises(DlibModelFormatError, match="dlib model file is truncated"):
        build_onnx(bad, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_a_corrupt_layer_name_raises_a_clear_error(dat_path: Path, tmp_path: Path) -> None:
    data = bytearray(dat_path.read_bytes())
    at = data.index(b"con_")
    data[at : at + 4] = b"xyz_"
    bad = tmp_path / "corrupt.dat"
    bad.write_bytes(bytes(data))
    with pytest.raises(DlibModelFormatError, match="expected a con_ layer, found 'xyz_"):
        build_onnx(bad, tmp_path / "out.onnx")


def test_extra_bytes_after_the_network_are_refused(dat_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "padded.dat"
    bad.write_bytes(dat_path.read_bytes() + b"\x00")
    with pytest.raises(DlibModelFormatError, match="1 unexpected bytes after the network"):
        build_onnx(bad, tmp_path / "out.onnx")


def test_another_dlib_network_is_refused(tmp_path: Path) -> None:
    mmod = ModelFiles.from_package().mmod_detector
    with pytest.raises(DlibModelFormatError, match="expected loss_metric_, found 'loss_mmod"):
        build_onnx(mmod, tmp_path / "out.onnx")


def test_a_missing_dat_raises_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DlibModelFormatError, match="cannot read dlib model file"):
        build_onnx(tmp_path / "absent.dat", tmp_path / "out.onnx")


def test_the_engine_flag_selects_onnx_with_the_same_vectors_and_version(
    engine: FaceEngine,
    sample_bytes: Callable[[str], bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert EngineConfig().descriptor_runtime is DescriptorRuntime.AUTO  # see test_runtime.py
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    config = EngineConfig(descriptor_runtime=DescriptorRuntime.ONNX, descriptor_threads=2)
    fast = FaceEngine(config, models=engine.models)
    slow = FaceEngine(EngineConfig(descriptor_runtime=DescriptorRuntime.DLIB), engine.models)
    assert isinstance(fast.embedder, OnnxEmbedder)
    assert isinstance(slow.embedder, DlibEmbedder)
    assert fast.model_version == slow.model_version == engine.model_version
    assert len(list((tmp_path / "facegate" / "models").glob("*.onnx"))) == 1
    data = sample_bytes("two_people.jpg")
    slow_faces, fast_faces = slow.analyze(data).faces, fast.analyze(data).faces
    assert len(fast_faces) == len(slow_faces) == 2
    for a, b in zip(slow_faces, fast_faces, strict=True):
        assert a.detected == b.detected
        assert a.descriptor is not None
        assert b.descriptor is not None
        assert np.abs(a.descriptor - b.descriptor).max() <= TOLERANCE
    again = fast.analyze(data).faces  # deterministic from call to call
    for x, y in zip(fast_faces, again, strict=True):
        assert x.descriptor is not None
        assert y.descriptor is not None
        assert np.array_equal(x.descriptor, y.descriptor)
