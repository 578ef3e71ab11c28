"""A calibration data root (LFW and FairFace layouts) whose descriptors are already cached.

``facegate bias calibrate --model NAME`` then runs its whole path (data sets, the model's
distance, the cohort, the document written beside the model) without computing a descriptor:
the images are placeholder files, and the cache holds, for each, a vector drawn to look like a
cosine model's (unit vectors whose impostor pairs lie about 0.5-0.8 apart in cosine distance,
mated pairs much closer, as faceres's do on real faces). The calibration this gives is fit for
tests only: it is not a measurement of any model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facegate.bias.descriptors import FACE, DescriptorCache, DescriptorRecord, config_key
from facegate.engine.core import EngineConfig
from facegate.engine.models import file_sha256

PEOPLE = 480
FAIRFACE = 1600


def _people(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Identity directions: a shared mean plus a few strong factors plus noise."""
    mean = rng.normal(size=dim)
    mean /= np.linalg.norm(mean)
    factors = rng.normal(size=(12, dim))
    factors /= np.linalg.norm(factors, axis=1, keepdims=True)
    coeffs = rng.normal(scale=0.45, size=(n, 12))
    noise = rng.normal(scale=0.9 / np.sqrt(dim), size=(n, dim))
    people = 0.75 * mean + coeffs @ factors + noise
    return _unit(people)


def _unit(v: np.ndarray) -> np.ndarray:
    out: np.ndarray = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return out


def build(root: Path, cache_path: Path, model_version: str, dim: int, seed: int = 7) -> None:
    """Write ``root/lfw`` and ``root/fairface_val`` and fill ``cache_path`` for
    ``model_version`` (the key ``--no-mmod-fallback`` uses)."""
    rng = np.random.default_rng(seed)
    records: dict[str, DescriptorRecord] = {}

    def image(path: Path, vector: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"placeholder " + str(path.relative_to(root)).encode())
        records[file_sha256(path)] = DescriptorRecord(FACE, "mtcnn", 1, vector.astype(np.float32))

    lfw = root / "lfw"
    people = _people(rng, PEOPLE, dim)
    names = [f"Person_{i:04d}" for i in range(PEOPLE)]
    half = PEOPLE // 2
    lines = [f"1\t{half}"]
    gender = ["image,identity,gender"]
    for i in range(half):  # mated pairs: two images of one person
        lines.append(f"{names[i]}\t1\t2")
        for n in (1, 2):
            noisy = _unit(people[i] + rng.normal(scale=0.25 / np.sqrt(dim), size=dim))
            image(lfw / "images" / names[i] / f"{names[i]}_{n:04d}.jpg", noisy)
            gender.append(f"{names[i]}/{names[i]}_{n:04d}.jpg,{names[i]},{'MF'[i % 2]}")
    for i in range(half):  # non-mated pairs: the other people, one image each
        a, b = names[half + i], names[half + (i + 1) % half]
        lines.append(f"{a}\t1\t{b}\t1")
        image(lfw / "images" / a / f"{a}_0001.jpg", people[half + i])
        gender.append(f"{a}/{a}_0001.jpg,{a},{'MF'[i % 2]}")
    (lfw / "pairs.txt").write_text("\n".join(lines) + "\n")
    (lfw / "gender.csv").write_text("\n".join(gender) + "\n")
    (lfw / "race_by_identity.json").write_text("{}")
    fairface = root / "fairface_val"
    labels = ["image,age,gender,race,race4"]
    for i, vector in enumerate(_people(rng, FAIRFACE, dim)):
        image(fairface / "images" / f"{i}.jpg", vector)
        race = ("East Asian", "White", "Black")[i % 3]
        labels.append(f"{i}.jpg,20-29,{('Male', 'Female')[i % 2]},{race},Other")
    (fairface / "labels.csv").write_text("\n".join(labels) + "\n")
    key = config_key(EngineConfig(), model_version, False)
    DescriptorCache(cache_path).put_many(key, records)
