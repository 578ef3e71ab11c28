"""A fused model's descriptors on a data set, and its parts' from the same pass.

A fused descriptor model (``engine.descriptors``, e.g. ``fused-dlib-faceres-v1``) stores each
part's vector end to end. :func:`compute_fused_descriptors` computes it exactly as the server
does (:func:`facegate.bias.descriptors.compute_descriptors` with ``model``: the engine's
detector chain, the largest face, the bias toolkit's MMOD fallback, then the engine's
:class:`~facegate.engine.describers.FusedDescriber`), cached under the fused model's key, and
then files each part's slice under the key that part's own pass would use
(:func:`~facegate.bias.descriptors.config_key` of the part's version). So one engine pass gives
the fused model and each part on *the same face* of every image (a part's vector is the bytes
the part's describer returned inside the fused one), and ``facegate bias calibrate --model
faceres-v1`` then reads faceres's descriptors from the cache.

A part's record already cached is left as it is; :func:`part_agreement` says how many of the
fused set's faces carry exactly the part's cached vector (a check that both passes described
the same faces).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facegate.bias.datasets import Manifest
from facegate.bias.descriptors import (
    FACE,
    DescriptorCache,
    DescriptorRecord,
    DescriptorSet,
    compute_descriptors,
    config_key,
)
from facegate.engine.core import EngineConfig
from facegate.engine.descriptors import FUSED, DescriptorRegistry
from facegate.engine.models import file_sha256


@dataclass(frozen=True)
class PartFill:
    """What :func:`fill_parts` did for one part: records written, records already cached, and
    of those, how many hold exactly the fused set's slice (faces only)."""

    version: str
    key: str
    written: int
    already: int
    same_vector: int
    compared: int


def part_records(
    records: dict[str, DescriptorRecord], start: int, stop: int
) -> dict[str, DescriptorRecord]:
    """Each record with its vector cut to ``[start:stop]`` (statuses, detector, messages kept)."""
    out = {}
    for sha, r in records.items():
        vector = None if r.descriptor is None else r.descriptor[start:stop].copy()
        out[sha] = DescriptorRecord(r.status, r.found_by, r.faces, vector, r.message)
    return out


def fill_parts(
    manifest: Manifest,
    fused: DescriptorSet,
    registry: DescriptorRegistry,
    *,
    cache: DescriptorCache,
    config: EngineConfig,
    mmod_fallback: bool,
) -> list[PartFill]:
    """File each part's slice of ``fused`` (a set of the fused model ``fused.model_version``)
    under the part's own cache key; records the cache already has are kept (and compared)."""
    model = registry.get(fused.model_version)
    if model.kind != FUSED:
        raise ValueError(f"{model.version} is not a fused model")
    digests = [file_sha256(s.path) for s in manifest.samples]
    records = cache.get_many(fused.key, digests)
    out = []
    start = 0
    for version in model.parts:
        dim = registry.get(version).space.dim
        sliced = part_records(records, start, start + dim)
        start += dim
        key = config_key(config, version, mmod_fallback)
        cached = cache.get_many(key, digests)
        missing = {sha: r for sha, r in sliced.items() if sha not in cached}
        cache.put_many(key, missing)
        same = compared = 0
        for sha, r in cached.items():
            mine = sliced.get(sha)
            if mine is None or r.status != FACE or mine.status != FACE:
                continue
            compared += 1
            same += int(
                r.descriptor is not None
                and mine.descriptor is not None
                and np.array_equal(r.descriptor, mine.descriptor)
            )
        out.append(PartFill(version, key, len(missing), len(cached), same, compared))
    return out


def compute_fused_descriptors(
    manifests: Sequence[Manifest],
    model_version: str,
    *,
    cache: DescriptorCache,
    config: EngineConfig = EngineConfig(),
    workers: int = 2,
    mmod_fallback: bool = True,
    progress: bool = True,
) -> tuple[list[DescriptorSet], list[list[PartFill]]]:
    """The fused model's descriptors of each manifest (cached or computed by the engine), with
    each part's slice filed under that part's key (:func:`fill_parts`)."""
    registry = config.registry()
    sets, fills = [], []
    for manifest in manifests:
        fused = compute_descriptors(
            manifest,
            cache=cache,
            config=config,
            workers=workers,
            mmod_fallback=mmod_fallback,
            progress=progress,
            model=model_version,
        )
        sets.append(fused)
        fills.append(
            fill_parts(
                manifest,
                fused,
                registry,
                cache=cache,
                config=config,
                mmod_fallback=mmod_fallback,
            )
        )
    return sets, fills
