"""Descriptor models as versioned parts (engine.descriptors, describers, align5, matching):
specs and the registry, the five-point alignment, describing faces with a model in one engine
and in the pool (the same vectors), and matchers per model that refuse what is uncalibrated."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from facegate.engine.align5 import ARCFACE_TEMPLATE_112, aligned_face, similarity_transform
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.describers import DescriptorModelUnavailable
from facegate.engine.descriptors import (
    DLIB_RESNET_V1,
    FACERES_V1,
    FUSED_DLIB_FACERES_V1,
    DescriptorRegistry,
    add_operator_model,
    dlib_model,
    faceres_model,
    fused_model,
    model_from_spec,
)
from facegate.engine.human_models import default_models_dir
from facegate.engine.matching import (
    MatcherSet,
    UncalibratedModel,
    default_matcher,
    matcher_for,
)
from facegate.engine.pool import EnginePool
from facegate.engine.types import Face
from facegate.vectorspace import parse_space
from tests.conftest import SAMPLES

MODELS = default_models_dir()
needs_faceres = pytest.mark.skipif(
    not (MODELS / "faceres.onnx").is_file(), reason="faceres is not converted"
)
SPEC = {
    "input_size": 224,
    "colour": "BGR",
    "mean": [103.939, 116.779, 123.68],
    "output": "descriptor",
    "output_dim": 1024,
    "metric": "cosine",
}


def _vector(face: Face) -> npt.NDArray[np.float32]:
    assert face.descriptor is not None
    return face.descriptor


def test_similarity_transform_recovers_a_known_one() -> None:
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = ARCFACE_TEMPLATE_112
    target = scale * source @ rotation.T + shift
    matrix = similarity_transform(source, target)
    assert matrix[:, :2] == pytest.approx(scale * rotation)
    assert matrix[:, 2] == pytest.approx(shift)


def test_the_five_points_land_on_the_template() -> None:
    """Bright dots at five points of an image end up at ArcFace's template, scaled to 224."""
    pixels = np.zeros((400, 300, 3), dtype=np.uint8)
    points = ARCFACE_TEMPLATE_112 * 1.9 + np.array([60.0, 80.0])
    rotation = np.array([[np.cos(0.2), -np.sin(0.2)], [np.sin(0.2), np.cos(0.2)]])
    points = (points - points.mean(axis=0)) @ rotation.T + points.mean(axis=0)
    for x, y in np.rint(points).astype(int):
        pixels[y - 2 : y + 3, x - 2 : x + 3] = 255
    crop = aligned_face(pixels, np.rint(points), 224)
    assert crop.shape == (224, 224, 3)
    template = ARCFACE_TEMPLATE_112 * 2.0
    for tx, ty in template:
        window = crop[int(ty) - 8 : int(ty) + 9, int(tx) - 8 : int(tx) + 9, 0].astype(float)
        ys, xs = np.nonzero(window > 60)
        weights = window[ys, xs]
        cx = int(tx) - 8 + float((xs * weights).sum() / weights.sum())
        cy = int(ty) - 8 + float((ys * weights).sum() / weights.sum())
        assert (cx, cy) == pytest.approx((tx, ty), abs=1.0)


def test_an_operators_spec_is_checked(tmp_path: Path) -> None:
    model = model_from_spec("their-model.v2", SPEC, tmp_path)
    assert (model.version, str(model.space), model.source) == (
        "their-model.v2",
        "cosine:1024",
        "operator",
    )
    assert model.preprocessing is not None
    assert model.preprocessing.alignment == "five-point"
    for name, spec, message in (
        ("Bad Name", SPEC, "a model name is"),
        ("m", {**SPEC, "metric": "manhattan"}, "metric must be one of"),
        ("m", {k: v for k, v in SPEC.items() if k != "output_dim"}, "no 'output_dim'"),
        ("m", {**SPEC, "alignment": "eyes"}, "alignment must be one of"),
        ("m", {**SPEC, "std": [1, 0, 1]}, "std positive"),
        ("m", {**SPEC, "colour": "GRB"}, "colour must be RGB or BGR"),
    ):
        with pytest.raises(ValueError, match=message):
            model_from_spec(name, spec, tmp_path)


def test_adding_a_model_records_its_hash_and_refuses_clashes(tmp_path: Path) -> None:
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not really onnx")
    folder = tmp_path / "models"
    model = add_operator_model(folder, "mine", onnx, SPEC)
    assert model.onnx_sha256 == hashlib.sha256(b"not really onnx").hexdigest()
    saved = json.loads((folder / "descriptors" / "mine" / "spec.json").read_text())
    assert saved["format"] == "facegate-descriptor/1"
    assert saved["onnx_sha256"] == model.onnx_sha256
    assert len(model.onnx_sha256) == 64
    with pytest.raises(ValueError, match="already added"):
        add_operator_model(folder, "mine", onnx, SPEC)
    with pytest.raises(ValueError, match="is a built-in model"):
        add_operator_model(folder, DLIB_RESNET_V1, onnx, SPEC)
    (folder / "descriptors" / "mine" / "mine.json").write_text("{}")  # a calibration
    add_operator_model(folder, "mine", onnx, SPEC, again=True)
    assert not (folder / "descriptors" / "mine" / "mine.json").exists()  # the old one is gone
    (folder / "descriptors" / "broken").mkdir()
    (folder / "descriptors" / "broken" / "spec.json").write_text("{]")
    registry = DescriptorRegistry.discover(folder)
    assert registry.versions() == (DLIB_RESNET_V1, FACERES_V1, FUSED_DLIB_FACERES_V1, "mine")
    assert registry.default.version == DLIB_RESNET_V1
    assert str(registry.get(FUSED_DLIB_FACERES_V1).space) == "euclidean:128+cosine:1024"


@needs_faceres
def test_faceres_vectors_are_the_same_in_one_engine_and_in_the_pool() -> None:
    data = [(SAMPLES / n).read_bytes() for n in ("obama.jpg", "two_people.jpg")]
    engine = FaceEngine(EngineConfig())
    mine = [engine.analyze(d, model=FACERES_V1) for d in data]
    plain = [engine.analyze(d) for d in data]
    explicit = [engine.analyze(d, model=DLIB_RESNET_V1) for d in data]
    for a, b in zip(plain, explicit, strict=True):  # dlib's vectors are unchanged
        for fa, fb in zip(a.faces, b.faces, strict=True):
            assert np.array_equal(_vector(fa), _vector(fb))
    for analysis in mine:
        for face in analysis.faces:
            assert face.descriptor is not None
            assert face.descriptor.shape == (1024,)
            assert float(np.linalg.norm(face.descriptor)) == pytest.approx(1.0, abs=1e-5)
    with EnginePool(EngineConfig(), workers=1) as pool:
        pooled = [pool.analyze(d, model=FACERES_V1) for d in data]
        fused = pool.analyze(data[0], model=FUSED_DLIB_FACERES_V1)
        with pytest.raises(DescriptorModelUnavailable, match="no face model nope"):
            pool.analyze(data[0], model="nope")
    for a, b in zip(mine, pooled, strict=True):
        for fa, fb in zip(a.faces, b.faces, strict=True):
            assert np.array_equal(_vector(fa), _vector(fb))
    [face] = fused.faces
    assert np.array_equal(_vector(face)[:128], _vector(plain[0].faces[0]))
    assert np.array_equal(_vector(face)[128:], _vector(mine[0].faces[0]))


def test_matchers_per_model_refuse_what_is_uncalibrated(tmp_path: Path) -> None:
    shipped = DescriptorRegistry.discover(tmp_path)
    # the package ships faceres-v1's and the fused model's calibrations (docs/models.md)
    assert MatcherSet(shipped, default_matcher()).servable(FACERES_V1) is None
    assert MatcherSet(shipped, default_matcher()).servable(FUSED_DLIB_FACERES_V1) is None
    # the same models calibrated nowhere (an empty folder instead of the package's files)
    bare = [replace(m, calibration_dir=tmp_path) for m in shipped.models[1:]]
    registry = DescriptorRegistry((shipped.models[0], *bare))
    matchers = MatcherSet(registry, default_matcher())
    assert matchers.for_model(DLIB_RESNET_V1) is matchers.default
    assert matchers.default.version == "dlib-resnet-v1.cohort-ad362ccd.fmr-32578b2e"
    assert "has no calibration" in (matchers.servable(FACERES_V1) or "")
    assert matchers.servable("nope") == "this server has no face model nope"
    with pytest.raises(UncalibratedModel):
        matchers.for_model(FUSED_DLIB_FACERES_V1)
    # dlib's matcher computes what it computed before models were pluggable
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 0.1, 128), rng.normal(0, 0.1, 128)
    assert matchers.default.distance(a, b) == float(np.linalg.norm(a - b))


def _calibration(folder: Path, version: str, doc: dict[str, object]) -> None:
    """A calibration document of ``version`` (knots only, as the engine reads them)."""
    knots = [[0.0, 100.0], [0.2, 99.0], [0.4, 80.0], [0.6, 70.0], [1.5, 0.0]]
    body = {"model_version": version, "version": f"{version}.fmr-test", "knots": knots, **doc}
    (folder / f"{version}.json").write_text(json.dumps(body))


def test_a_calibration_must_describe_the_models_distance(tmp_path: Path) -> None:
    # (calibration documents are read once per process: one folder each)
    wrong, right = tmp_path / "wrong", tmp_path / "right"
    wrong.mkdir()
    right.mkdir()
    _calibration(wrong, FACERES_V1, {"distance": "euclidean:128"})
    with pytest.raises(ValueError, match="fitted on euclidean:128 distances"):
        matcher_for(replace(faceres_model(tmp_path), calibration_dir=wrong), "none")
    _calibration(right, FACERES_V1, {"distance": "cosine:1024"})
    matcher = matcher_for(
        replace(faceres_model(tmp_path), calibration_dir=right), "cohort"
    )  # no cohort file: the raw calibration
    assert (matcher.version, matcher.normalised) == ("faceres-v1.fmr-test", False)
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=1024), rng.normal(size=1024)
    cos = 1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert matcher.distance(a, b) == pytest.approx(cos)
    assert matcher.compare(a, a) == pytest.approx(100.0)


def test_a_fused_model_takes_its_weights_and_cohorts_from_its_calibration(
    tmp_path: Path,
) -> None:
    plain = fused_model(FUSED_DLIB_FACERES_V1, (dlib_model(), faceres_model(tmp_path)), "test")
    assert plain.space == parse_space("euclidean:128+cosine:1024")
    (tmp_path / "unweighted").mkdir()
    _calibration(tmp_path / "unweighted", plain.version, {})
    with pytest.raises(ValueError, match="has no fusion weights"):
        matcher_for(replace(plain, calibration_dir=tmp_path / "unweighted"), "none")
    fused = replace(plain, calibration_dir=tmp_path)
    _calibration(tmp_path, fused.version, {"fusion": {"weights": [2.0, 3.0]}})
    matcher = matcher_for(fused, "none")
    assert matcher.weights == (2.0, 3.0)
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=1152), rng.normal(size=1152)
    expected = 2.0 * np.linalg.norm(a[:128] - b[:128]) + 3.0 * (
        1 - a[128:] @ b[128:] / np.linalg.norm(a[128:]) / np.linalg.norm(b[128:])
    )
    assert matcher.distance(a, b) == pytest.approx(expected)
    # a cohort per part, combined with the weights
    dlib_doc = json.loads((Path(__file__).parents[2] / "src/facegate/engine/calibration"
                           / "dlib-resnet-v1.cohort.json").read_text())  # fmt: skip
    cosine_cohort = {
        "metric": "cosine", "nearest": 1, "offset": 0.5, "low": 0.3, "high": 0.7,
        "sizes": [25], "spread_sq": [0.1], "centroids": [list(np.ones(1024) / 32.0)],
    }  # fmt: skip
    knots = [[0.0, 100.0], [0.5, 99.0], [1.0, 80.0], [1.4, 70.0], [1.5, 0.0]]
    cohort_doc = {
        "model_version": fused.version, "version": f"{fused.version}.cohort-x.fmr-y",
        "knots": knots, "fusion": {"weights": [2.0, 3.0]},
        "cohort": {"parts": [dlib_doc["cohort"], cosine_cohort]},
    }  # fmt: skip
    (tmp_path / f"{fused.version}.cohort.json").write_text(json.dumps(cohort_doc))
    normalised = matcher_for(fused, "cohort")
    assert normalised.normalised
    stats = normalised.stats(np.vstack([a, b]))
    dlib_stats = default_matcher().stats(np.vstack([a[:128], b[:128]]))
    norm_b = b[128:] / np.linalg.norm(b[128:])
    centroid = np.ones(1024) / 32.0
    cos_b = float(np.clip((np.sum((norm_b - centroid) ** 2) + 0.1) / 2.0, 0.3, 0.7))
    assert stats[1] == pytest.approx(2.0 * dlib_stats[1] + 3.0 * cos_b)


def test_the_shipped_fused_cohort_is_the_weighted_sum_of_its_parts_bit_for_bit() -> None:
    """PartsCohort.stats hands each part contiguous columns: the same numbers as the parts'
    statistics of the slices of one wide matrix."""
    matcher = matcher_for(DescriptorRegistry.discover(MODELS).get(FUSED_DLIB_FACERES_V1))
    assert matcher.weights is not None
    cohort = matcher.scorer.normaliser  # type: ignore[attr-defined]  # ShippedCohort's
    rng = np.random.default_rng(11)
    faceres = rng.normal(size=(600, 1024))
    rows = np.hstack([rng.normal(0, 0.13, (600, 128)), faceres / 32.0]).astype(np.float32)
    wide = rows.astype(np.float64)
    expected = np.zeros(len(rows))
    for part, cut, weight in zip(cohort.parts, cohort._slices(), matcher.weights, strict=True):
        expected += weight * part.stats(wide[:, cut])
    assert np.array_equal(matcher.stats(rows), expected)
