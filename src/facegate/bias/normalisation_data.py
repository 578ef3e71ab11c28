"""The inputs of the raw-vs-normalised comparison (:mod:`facegate.bias.normalisation`) from any
data sets, so an auditor can run it on their own photos (``facegate bias normalisation``).

Three roles:

* **mated** (sets the equal-FNMR threshold; LFW 10-fold accuracy): LFW View 2's 6,000 pairs and
  folds, or for a manifest with subject ids every same-subject pair plus as many seeded
  different-subject pairs, in ten folds by subject (a subject's pairs stay in one fold);
* **impostors** (FMR per group at that threshold; the lineup's gallery): every face of the
  data set, grouped by ``group_by``. For the built-in FairFace only the calibration's held-out
  half is used, because the shipped cohort was fitted on part of the other half; an operator's
  own data was never used for fitting, so all of it is held out;
* **probes** (lineup): faces searched against the impostor faces. Every candidate is counted as
  false, so the probes must be people who are not in the impostor set (Congress vs FairFace).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from facegate.bias.calibration import Source, split_source
from facegate.bias.datasets import Manifest, Pair
from facegate.bias.descriptors import FACE, DescriptorSet
from facegate.bias.groups import GROUP_SEPARATOR, group_key, impostor_pairs
from facegate.bias.impostors import mated_pairs
from facegate.bias.normalisation import LfwPairs

FOLDS = 10
EVERY = 10**9  # "every mated pair" for mated_pairs' per-group cap


def _fold(subject: str) -> int:
    return int(hashlib.sha256(subject.encode()).hexdigest()[:8], 16) % FOLDS


def mated_input(
    manifest: Manifest, protocol: Sequence[Pair], desc: DescriptorSet, seed: int = 0
) -> LfwPairs:
    """The mated role: ``protocol`` (LFW View 2) when given, else pairs built from subject ids.

    Raises ``ValueError`` when the data set has no two images of one subject.
    """
    pairs = list(protocol)
    if not pairs:
        same = mated_pairs(manifest, (), EVERY, seed)
        if not same:
            raise ValueError(
                f"{manifest.name}: no two images of one subject, so no mated pairs "
                "(the comparison sets its threshold on mated pairs: pass --mated with identities)"
            )
        others = impostor_pairs(manifest, (), len(same), seed).get("", [])
        pairs = []
        for p in same + others:
            subject = manifest.samples[p.left].subject_id or f"#{p.left}"
            pairs.append(Pair(p.left, p.right, p.mated, _fold(subject)))
    return LfwPairs(
        desc.vectors.astype(np.float64),
        np.array([p.left for p in pairs], dtype=np.int64),
        np.array([p.right for p in pairs], dtype=np.int64),
        np.array([p.mated for p in pairs], dtype=np.bool_),
        np.array([-1 if p.fold is None else p.fold for p in pairs], dtype=np.int64),
    )


def impostor_input(
    manifest: Manifest, desc: DescriptorSet, group_by: Sequence[str], *, held_out_half: bool
) -> Source:
    """The impostor role: the faces with a descriptor, grouped; the held-out half if asked."""
    ok = list(desc.indices(FACE))
    samples = [manifest.samples[i] for i in ok]
    grouping = GROUP_SEPARATOR.join(group_by)
    with_ids = any(s.subject_id is not None for s in samples)
    source = Source(
        manifest.name,
        desc.vectors[ok],
        tuple(s.subject_id or f"\0sample-{i}" for i, s in zip(ok, samples, strict=True))
        if with_ids
        else None,
        {grouping: tuple(group_key(s, group_by) for s in samples)},
    )
    return split_source(source)[1] if held_out_half else source


def probe_input(desc: DescriptorSet) -> np.ndarray:
    """The probe role: the descriptors of the faces found."""
    return desc.vectors[list(desc.indices(FACE))].astype(np.float64)
