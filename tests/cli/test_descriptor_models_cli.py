"""``facegate models list|show|verify|add`` for descriptor models, and the server refusing to
start with an uncalibrated default model (FACEGATE_FACE_MODEL)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from facegate.cli import main
from facegate.config import Settings, SettingsError
from facegate.engine.descriptors import add_operator_model
from facegate.services import Services

SPEC = {"input_size": 112, "output_dim": 512, "metric": "cosine"}


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_list_show_and_verify_name_each_model_and_its_calibration(tmp_path: Path) -> None:
    code, text = run("models", "list", "--dir", str(tmp_path))
    assert code == 0
    assert "descriptor models" in text
    assert "dlib-resnet-v1 (default)" in text
    assert "euclidean:128" in text
    assert "faceres-v1" in text
    code, text = run("models", "list", "--dir", str(tmp_path), "--format", "json")
    rows = {r["version"]: r for r in json.loads(text)["descriptor_models"]}
    assert rows["dlib-resnet-v1"]["servable"] is True
    assert rows["dlib-resnet-v1"]["calibrated"] == {"raw": True, "cohort": True}
    # faceres-v1's calibrations ship in the package; its weights are not in this folder
    assert rows["faceres-v1"]["calibrated"] == {"raw": True, "cohort": True}
    assert rows["faceres-v1"]["servable"] is False
    code, text = run("models", "show", "dlib-resnet-v1", "--dir", str(tmp_path), "--format", "json")
    shown = json.loads(text)
    assert shown["similarity_version"] == "dlib-resnet-v1.cohort-ad362ccd.fmr-32578b2e"
    assert shown["space"] == "euclidean:128"
    code, text = run("models", "verify", "dlib-resnet-v1", "--dir", str(tmp_path))
    assert (code, text.split()[:2]) == (0, ["dlib-resnet-v1", "ok:"])
    code, text = run("models", "verify", "fused-dlib-faceres-v1", "--dir", str(tmp_path))
    assert code == 1
    assert "FAILED" in text  # calibrated, but faceres's weights are not in this folder
    assert "no calibration" not in text


def test_show_refuses_an_unknown_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("models", "show", "nope", "--dir", str(tmp_path))
    assert code == 3
    assert "no descriptor model nope" in capsys.readouterr().err


def test_add_keeps_nothing_that_does_not_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    onnx, spec = tmp_path / "x.onnx", tmp_path / "spec.json"
    onnx.write_bytes(b"\x00not an onnx graph")
    spec.write_text(json.dumps(SPEC))
    folder = tmp_path / "models"
    code, _ = run(
        "models", "add", "mine", "--onnx", str(onnx), "--spec", str(spec), "--dir", str(folder)
    )
    assert code == 3
    assert "onnxruntime cannot open" in capsys.readouterr().err
    assert not (folder / "descriptors" / "mine").exists()
    spec.write_text(json.dumps({**SPEC, "metric": "hamming"}))
    code, _ = run(
        "models", "add", "mine", "--onnx", str(onnx), "--spec", str(spec), "--dir", str(folder)
    )
    assert code == 3
    assert "metric must be one of" in capsys.readouterr().err


def test_the_server_refuses_an_uncalibrated_default_model(tmp_path: Path) -> None:
    onnx = tmp_path / "x.onnx"
    onnx.write_bytes(b"weights an operator added and never calibrated")
    add_operator_model(tmp_path, "mine", onnx, SPEC)
    settings = Settings.from_env(
        {"FACEGATE_FACE_MODEL": "mine", "FACEGATE_MODELS_DIR": str(tmp_path)},
        data_dir=tmp_path / "data",
        engine_workers=1,
    )
    assert settings.face_model == "mine"
    with pytest.raises(SettingsError, match=r"FACEGATE_FACE_MODEL=mine: .*no calibration"):
        Services.open(settings, start_engine=False)
    # ... and the data directory is left usable: the default starts
    Services.open(
        Settings(data_dir=tmp_path / "data", engine_workers=1), start_engine=False
    ).close()
