"""Failure to detect per group, from a descriptor set's statuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facegate.bias.datasets import Manifest, Sample
from facegate.bias.descriptors import ERROR, FACE, NO_FACE, DescriptorSet
from facegate.bias.detection import failure_to_detect, render


def _set(statuses: list[str], found_by: list[str]) -> DescriptorSet:
    n = len(statuses)
    return DescriptorSet(
        "m", "k", np.zeros((n, 4), np.float32), tuple(statuses), tuple(found_by), {}, 0, n
    )


def test_rates_intervals_and_detectors_per_group() -> None:
    genders = ["female"] * 4 + ["male"] * 4
    manifest = Manifest(
        "t",
        tuple(Sample(Path(f"{i}.jpg"), None, {"gender": g}, "test") for i, g in enumerate(genders)),
    )
    statuses = [FACE, NO_FACE, NO_FACE, ERROR, FACE, FACE, FACE, NO_FACE]
    found_by = ["hog", "", "", "", "hog", "mtcnn", "mtcnn-padded", ""]
    doc = failure_to_detect(manifest, _set(statuses, found_by), ["gender"])
    female, male = doc["groups"]["female"], doc["groups"]["male"]
    assert (female["no_face"], female["images"], female["undecodable"]) == (2, 3, 1)
    assert male["rate"] == 0.25
    assert male["found_by"] == {"hog": 1, "mtcnn": 1, "mtcnn-padded": 1}
    assert female["ci"][0] < 2 / 3 < female["ci"][1]
    assert doc["overall"]["no_face"] == 3
    assert doc["worst_best_ratio"] == (2 / 3) / 0.25
    text = "\n".join(render(doc))
    assert "female" in text
    assert "found by: hog 1, mtcnn 1, mtcnn-padded 1" in text
