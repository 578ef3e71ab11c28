"""A whole calibration run on synthetic descriptors: the document, its table and its text."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facegate.bias.calibration_run import calibrate, render
from facegate.bias.datasets import Manifest, Sample
from facegate.bias.descriptors import FACE, NO_FACE, DescriptorSet
from facegate.cli import main
from facegate.engine.descriptors import FUSED, DescriptorModel
from facegate.engine.matching import matcher_for
from facegate.engine.similarity import PiecewiseSimilarity
from facegate.vectorspace import parse_space


def _data(name: str, n: int, seed: int, with_ids: bool) -> tuple[Manifest, DescriptorSet]:
    rng = np.random.default_rng(seed)
    people = rng.normal(size=(n // 2, 16)) * 0.2
    vectors = np.repeat(people, 2, axis=0) + rng.normal(size=(n, 16)) * 0.04
    samples = tuple(
        Sample(
            Path(f"{name}/{i}.jpg"),
            f"p{i // 2}" if with_ids else None,
            {"gender": "female" if (i // 2) % 2 else "male", "race": "x"},
            "synthetic",
        )
        for i in range(n)
    )
    statuses = tuple(NO_FACE if i == 3 else FACE for i in range(n))
    vectors[3] = np.nan
    desc = DescriptorSet(
        "test-model", "k", vectors.astype(np.float32), statuses, ("hog",) * n, {}, 0, n
    )
    return Manifest(name, samples), desc


def test_calibrate_document_and_text() -> None:
    lfw = _data("lfw", 1200, 1, with_ids=True)
    ff = _data("fairface_val", 1200, 2, with_ids=False)
    doc = calibrate([lfw[0], ff[0]], [lfw[1], ff[1]], 3.0, 50, "facegate bias calibrate", False)
    assert doc["model_version"] == "test-model"
    assert doc["version"].startswith("test-model.fmr-")
    mapping = PiecewiseSimilarity.from_json(doc)  # the knots load as the engine loads them
    assert mapping.similarity_pct(0.0) == 100.0
    assert [r["similarity_pct"] for r in doc["table"]] == [80.0, 90.0, 95.0, 99.0, 99.9]
    lfw_fit = doc["fitted"]["data"]["lfw"]
    # 1,199 faces with a descriptor, split by person: mated pairs stay on one side
    assert lfw_fit["fit"]["faces"] + lfw_fit["held_out"]["faces"] == 1199
    assert lfw_fit["fit"]["mated_pairs"] + lfw_fit["held_out"]["mated_pairs"] == 599
    assert doc["fitted"]["data"]["fairface_val"]["fit"]["mated_pairs"] == 0
    row = doc["table"][0]
    assert row["datasets"]["lfw"]["fnmr"]["pairs"] == lfw_fit["held_out"]["mated_pairs"]
    assert row["datasets"]["fairface_val"]["fnmr"] is None
    assert set(row["datasets"]["fairface_val"]["groups"]) == {"race x gender", "gender", "race"}
    text = "\n".join(render(doc))
    assert "Similarity 99 = distance" in text
    assert "by race x gender" in text
    assert "dlib-logistic-v0" in text


def test_cli_refuses_a_missing_data_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    code = main(["bias", "calibrate", "--data", str(tmp_path / "none"), "--no-progress"], out=out)
    assert code == 3
    assert "file not found" in capsys.readouterr().err


def test_a_fused_models_calibration_and_cohort_load_as_the_engine_reads_them(
    tmp_path: Path,
) -> None:
    # two parts: the 16 values of _data (Euclidean), then 16 more read as a cosine part
    lfw, ff = _data("lfw", 1200, 3, with_ids=True), _data("fairface_val", 2400, 4, with_ids=False)
    rng = np.random.default_rng(5)  # FairFace: every face another person (no near-duplicates)
    unique = (rng.normal(size=ff[1].vectors.shape) * 0.2).astype(np.float32)
    unique[3] = np.nan
    ff = (ff[0], replace(ff[1], vectors=unique))
    joined = []
    for _, desc in (lfw, ff):
        extra = desc.vectors[:, ::-1] + np.float32(0.3)  # another view of the same faces
        vectors = np.hstack([desc.vectors, extra]).astype(np.float32)
        joined.append(replace(desc, model_version="fused-test", vectors=vectors))
    space = parse_space("euclidean:16+cosine:16")
    with pytest.raises(ValueError, match="needs its fusion weights"):
        calibrate([lfw[0], ff[0]], joined, None, 50, "c", False, space=space)
    doc = calibrate(
        [lfw[0], ff[0]], joined, None, 50, "c", False, normalise=True, space=space,
        weights=(0.25, 0.75), fusion_note={"method": "test"},
    )  # fmt: skip
    assert doc["distance"] == "euclidean:16+cosine:16"
    assert doc["fusion"] == {"weights": [0.25, 0.75], "fit": {"method": "test"}}
    assert [p.get("metric", "euclidean") for p in doc["cohort"]["parts"]] == [
        "euclidean",
        "cosine",
    ]
    assert doc["fitted"]["cap"] > 0  # picked from the fit halves
    (tmp_path / "fused-test.cohort.json").write_text(json.dumps(doc))
    model = DescriptorModel(
        "fused-test", FUSED, 32, FUSED, "test", "builtin",
        space_parts=(("euclidean", 16), ("cosine", 16)), calibration_dir=tmp_path,
    )  # fmt: skip
    matcher = matcher_for(model, "cohort")
    assert matcher.weights == (0.25, 0.75)
    assert matcher.version == doc["version"]
    assert matcher.scorer.version == doc["scorer"]
    a, b = joined[0].vectors[0], joined[0].vectors[1]  # two images of one person
    assert matcher.compare(a, b) > matcher.compare(a, joined[0].vectors[10])
