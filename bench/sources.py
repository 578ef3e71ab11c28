"""Shared by the calibration benches: LFW, FairFace val and the Congress portraits as the bias
toolkit's calibration sources (found faces, subjects, race x gender groups), from its
descriptor cache.

``--cache-key KEY`` reads the cached descriptors under another settings key (``facegate bias``
keys the cache by model and detector settings; an earlier detection version whose crops are
bit-identical may hold them). Without it, or for images the key lacks, the descriptors are
computed (and cached) as ``facegate bias calibrate`` does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchlib import ROOT
from facegate.bias.calibration import Source
from facegate.bias.calibration_run import calibration_source
from facegate.bias.datasets import Manifest, Pair, load_congress, load_fairface, load_lfw
from facegate.bias.descriptors import (
    DescriptorCache,
    DescriptorSet,
    _assemble,
    compute_descriptors,
)
from facegate.engine.models import file_sha256

DATA = ROOT.parent / "shared" / "data"
MODEL = "dlib-resnet-v1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data`` and ``--cache-key``."""
    parser.add_argument("--data", type=Path, default=DATA, help="data root folder")
    parser.add_argument("--cache-key", default=None, help="read cached descriptors under KEY")


def _descriptors(manifest: Manifest, key: str | None) -> DescriptorSet:
    if key is not None:
        cache = DescriptorCache()
        digests = [file_sha256(s.path) for s in manifest.samples]
        records = cache.get_many(key, digests)
        if len(records) >= 0.99 * len(set(digests)):  # an unreadable image or two: left out
            return _assemble(MODEL, key, digests, records, 0, len(records))
    return compute_descriptors(manifest, progress=False)


def load_sources(data: Path, key: str | None) -> tuple[dict[str, Source], list[Pair]]:
    """{"lfw", "fairface", "congress"} -> Source (found faces only), and LFW View 2's pairs
    (indices into the LFW manifest, not the Source)."""
    lfw, pairs = load_lfw(data / "lfw")
    manifests = {
        "lfw": lfw,
        "fairface": load_fairface(data / "fairface_val"),
        "congress": load_congress(data / "congress_2015"),
    }
    return {
        name: calibration_source(m, _descriptors(m, key)) for name, m in manifests.items()
    }, pairs
