"""Settings from the environment: engine scoring, descriptor runtime, detector, batching."""

from __future__ import annotations

from pathlib import Path

import pytest

from facegate.cli import main
from facegate.config import Settings, SettingsError
from facegate.engine.matching import default_matcher, raw_matcher
from facegate.engine.runtime import DescriptorRuntime
from facegate.engine.types import DetectorKind


def test_engine_defaults_without_variables() -> None:
    settings = Settings.from_env({})
    assert settings.engine.matcher.version == default_matcher().version
    assert settings.engine.descriptor_runtime is DescriptorRuntime.AUTO


def test_normalisation_and_runtime_from_the_environment() -> None:
    settings = Settings.from_env(
        {"FACEGATE_SCORE_NORMALISATION": "none", "FACEGATE_DESCRIPTOR_RUNTIME": "DLIB"}
    )
    assert settings.engine.matcher.version == raw_matcher().version
    assert settings.engine.descriptor_runtime is DescriptorRuntime.DLIB
    assert settings.engine.detector.kind is DetectorKind.MTCNN  # the default chain


def test_the_detector_chain_from_the_environment() -> None:
    hog = Settings.from_env({"FACEGATE_DETECTOR": " HOG "}).engine.detector
    assert (hog.kind, hog.fallback) == (
        DetectorKind.HOG,
        (DetectorKind.MTCNN, DetectorKind.MTCNN_PADDED),
    )
    mtcnn = Settings.from_env({"FACEGATE_DETECTOR": "mtcnn"}).engine.detector
    assert (mtcnn.kind, mtcnn.fallback) == (
        DetectorKind.MTCNN,
        (DetectorKind.HOG, DetectorKind.MTCNN_PADDED),
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("FACEGATE_SCORE_NORMALISATION", "znorm", "must be one of cohort, none"),
        ("FACEGATE_DESCRIPTOR_RUNTIME", "gpu", "must be one of auto, dlib, onnx"),
        ("FACEGATE_DETECTOR", "mmod", "must be one of mtcnn, hog"),
    ],
)
def test_unknown_values_are_refused_with_the_choices(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env({name: value})


def test_a_bad_number_names_its_variable() -> None:
    with pytest.raises(SettingsError, match="FACEGATE_PORT must be an integer, got 'http'"):
        Settings.from_env({"FACEGATE_PORT": "http"})
    with pytest.raises(SettingsError, match="FACEGATE_GATE_MAX_FNMR must be a number"):
        Settings.from_env({"FACEGATE_GATE_MAX_FNMR": "half"})


def test_serve_refuses_a_bad_setting_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("FACEGATE_DESCRIPTOR_RUNTIME", "gpu")
    code = main(["serve", "--data-dir", str(tmp_path), "--port", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "facegate: invalid setting: FACEGATE_DESCRIPTOR_RUNTIME must be one of auto, dlib, "
        "onnx, got 'gpu'"
    )
    assert not (tmp_path / "facegate.sqlite3").exists()  # refused before anything was created


def test_engine_max_batch_from_the_environment_and_its_bounds() -> None:
    assert Settings.from_env({}).engine_max_batch == 8
    assert Settings.from_env({"FACEGATE_ENGINE_MAX_BATCH": "1"}).engine_max_batch == 1
    assert Settings.from_env({"FACEGATE_ENGINE_MAX_BATCH": "64"}).engine_max_batch == 64
    for bad in ("0", "65", "-3"):
        with pytest.raises(
            SettingsError, match=f"FACEGATE_ENGINE_MAX_BATCH must be between 1 and 64, got {bad}"
        ):
            Settings.from_env({"FACEGATE_ENGINE_MAX_BATCH": bad})
    with pytest.raises(SettingsError, match="FACEGATE_ENGINE_MAX_BATCH must be an integer"):
        Settings.from_env({"FACEGATE_ENGINE_MAX_BATCH": "eight"})


def test_vector_index_is_memory_unless_pgvector_is_asked_for_with_postgresql() -> None:
    assert Settings.from_env({}).vector_index == "memory"
    env = {"FACEGATE_VECTOR_INDEX": "pgvector", "FACEGATE_DATABASE_URL": "postgresql://h/db"}
    assert Settings.from_env(env).vector_index == "pgvector"
    with pytest.raises(SettingsError, match="FACEGATE_VECTOR_INDEX=pgvector needs FACEGATE_DAT"):
        Settings.from_env({"FACEGATE_VECTOR_INDEX": "pgvector"})
    with pytest.raises(
        SettingsError, match="FACEGATE_VECTOR_INDEX must be one of memory, pgvector, got 'faiss'"
    ):
        Settings.from_env({"FACEGATE_VECTOR_INDEX": "faiss"})


def test_pgvector_ef_search_from_the_environment_and_its_bounds() -> None:
    assert Settings.from_env({}).pgvector_ef_search == 400
    env = {"FACEGATE_PGVECTOR_EF_SEARCH": "1000"}
    assert Settings.from_env(env).pgvector_ef_search == 1000
    for bad in ("0", "-5", "1001"):
        with pytest.raises(
            SettingsError, match="FACEGATE_PGVECTOR_EF_SEARCH must be between 1 and 1000"
        ):
            Settings.from_env({"FACEGATE_PGVECTOR_EF_SEARCH": bad})


def test_feed_retention_from_the_environment_and_its_bounds() -> None:
    assert Settings.from_env({}).feed_retention_s == 86400.0
    assert Settings.from_env({"FACEGATE_FEED_RETENTION_S": "3600"}).feed_retention_s == 3600.0
    assert Settings.from_env({"FACEGATE_FEED_RETENTION_S": "0.5"}).feed_retention_s == 0.5
    for bad in ("0", "-1", "nan", "inf"):
        with pytest.raises(
            SettingsError, match="FACEGATE_FEED_RETENTION_S must be a number of seconds above 0"
        ):
            Settings.from_env({"FACEGATE_FEED_RETENTION_S": bad})
    with pytest.raises(SettingsError, match="FACEGATE_FEED_RETENTION_S must be a number, got 'a'"):
        Settings.from_env({"FACEGATE_FEED_RETENTION_S": "a"})


def test_body_bounds_from_the_environment() -> None:
    default = Settings.from_env({})
    assert (default.header_timeout_s, default.body_timeout_s) == (10.0, 30.0)
    assert (default.body_budget_bytes, default.body_client_bytes) == (128 << 20, 32 << 20)
    settings = Settings.from_env(
        {
            "FACEGATE_HEADER_TIMEOUT_S": "1.5",
            "FACEGATE_BODY_TIMEOUT_S": "2",
            "FACEGATE_MAX_BODY_BYTES": "1000",
            "FACEGATE_BODY_BUDGET_BYTES": "3000",
            "FACEGATE_BODY_CLIENT_BYTES": "0",
        }
    )
    assert (settings.header_timeout_s, settings.body_timeout_s) == (1.5, 2.0)
    assert (settings.body_budget_bytes, settings.body_client_bytes) == (3000, 0)


def test_engine_resource_bounds_from_the_environment() -> None:
    default = Settings.from_env({"FACEGATE_ENGINE_WORKERS": "2"})
    assert (default.engine_tenant_max_jobs, default.engine_tenant_workers) == (16, None)
    assert default.engine.limits.max_decoded_bytes == 160_000_000
    assert default.engine.limits.work_pixels == 2048 * 2048
    settings = Settings.from_env(
        {
            "FACEGATE_ENGINE_WORKERS": "2",
            "FACEGATE_ENGINE_TENANT_MAX_JOBS": "0",
            "FACEGATE_ENGINE_TENANT_WORKERS": "1",
            "FACEGATE_IMAGE_MAX_DECODED_BYTES": "1000000",
            "FACEGATE_IMAGE_WORK_PIXELS": "500000",
        }
    )
    assert (settings.engine_tenant_max_jobs, settings.engine_tenant_workers) == (0, 1)
    assert settings.engine.limits.max_decoded_bytes == 1_000_000
    assert settings.engine.limits.work_pixels == 500_000


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FACEGATE_BODY_TIMEOUT_S": "0"}, "FACEGATE_BODY_TIMEOUT_S must be a number of seconds"),
        ({"FACEGATE_HEADER_TIMEOUT_S": "inf"}, "FACEGATE_HEADER_TIMEOUT_S must be a number of"),
        ({"FACEGATE_BODY_TIMEOUT_S": "soon"}, "FACEGATE_BODY_TIMEOUT_S must be a number, got"),
        (
            {"FACEGATE_BODY_BUDGET_BYTES": "1000"},
            "FACEGATE_BODY_BUDGET_BYTES must be at least FACEGATE_MAX_BODY_BYTES",
        ),
        (
            {"FACEGATE_BODY_CLIENT_BYTES": "1000"},
            "FACEGATE_BODY_CLIENT_BYTES must be 0 or between FACEGATE_MAX_BODY_BYTES",
        ),
        (
            {"FACEGATE_BODY_CLIENT_BYTES": str(256 << 20)},
            "FACEGATE_BODY_CLIENT_BYTES must be 0 or between",
        ),
        ({"FACEGATE_ENGINE_TENANT_MAX_JOBS": "-1"}, "FACEGATE_ENGINE_TENANT_MAX_JOBS must be 0"),
        ({"FACEGATE_ENGINE_TENANT_WORKERS": "3"}, "FACEGATE_ENGINE_TENANT_WORKERS must be between"),
        ({"FACEGATE_IMAGE_MAX_DECODED_BYTES": "0"}, "FACEGATE_IMAGE_MAX_DECODED_BYTES must be"),
        ({"FACEGATE_IMAGE_WORK_PIXELS": "100"}, "FACEGATE_IMAGE_WORK_PIXELS must be at least 6400"),
        ({"FACEGATE_IMAGE_WORK_PIXELS": "many"}, "FACEGATE_IMAGE_WORK_PIXELS must be an integer"),
    ],
)
def test_unusable_resource_bounds_name_their_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"FACEGATE_ENGINE_WORKERS": "2", **env})


def test_attribute_models_are_off_by_default_and_opted_into_by_name() -> None:
    assert Settings.from_env({}).attribute_models == frozenset()
    assert Settings.from_env({}).engine.face_models.enabled == frozenset()
    for off in ("", "none", " NONE "):
        assert Settings.from_env({"FACEGATE_ATTRIBUTE_MODELS": off}).attribute_models == set()
    on = Settings.from_env(
        {
            "FACEGATE_ATTRIBUTE_MODELS": " Faceres, emotion ,",
            "FACEGATE_MODELS_DIR": "/srv/models",
            "FACEGATE_MODELS_ALLOW_UNPINNED": "1",
        }
    )
    assert on.attribute_models == {"faceres", "emotion"}
    models = on.engine.face_models  # what each engine worker is given
    assert (models.models_dir, models.allow_unpinned) == (Path("/srv/models"), True)
    assert (on.models_dir, on.models_allow_unpinned) == (Path("/srv/models"), True)
    only_age_gender = Settings.from_env({"FACEGATE_ATTRIBUTE_MODELS": "faceres"})
    assert only_age_gender.engine.face_models.enabled == {"faceres"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("faceres,gear", "gear; expected some of emotion, faceres, iris, or none"),
        ("facemesh", "facemesh; expected some of emotion, faceres, iris, or none"),
        ("none,faceres", "none; expected"),
    ],
)
def test_unknown_attribute_models_are_refused(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"FACEGATE_ATTRIBUTE_MODELS: unknown .*{message}"):
        Settings.from_env({"FACEGATE_ATTRIBUTE_MODELS": value})


def test_search_coarse_first_can_be_turned_off() -> None:
    assert Settings.from_env({}).engine.detector.mtcnn_coarse_skip == 2
    off = Settings.from_env({"FACEGATE_SEARCH_COARSE_FIRST": "0", "FACEGATE_DETECTOR": "hog"})
    assert off.engine.detector.mtcnn_coarse_skip == 0
    assert off.engine.detector.kind is DetectorKind.HOG  # the chain chosen is kept


def test_search_blazeface_can_be_turned_off() -> None:
    assert Settings.from_env({}).engine.detector.search_blazeface is True
    env = {"FACEGATE_SEARCH_BLAZEFACE": "0", "FACEGATE_SEARCH_COARSE_FIRST": "0"}
    off = Settings.from_env(env).engine.detector
    assert off.search_blazeface is False
    assert off.mtcnn_coarse_skip == 0  # both settings hold together
    assert Settings.from_env({"FACEGATE_SEARCH_BLAZEFACE": "1"}).engine.detector.search_blazeface
