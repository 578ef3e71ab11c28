"""The data sets of ``facegate bias normalisation`` (its three roles, see
:mod:`facegate.bias.normalisation_data`), named as every bias action names them
(:mod:`facegate.cli.bias_data`): ``--mated``, ``--impostors``, ``--probes`` (``NAME|FILE.csv``)
and ``--group-by``.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facegate.bias.calibration import Source
from facegate.bias.datasets import Manifest
from facegate.bias.descriptors import DescriptorSet
from facegate.bias.groups import GROUP_SEPARATOR
from facegate.bias.normalisation import LfwPairs
from facegate.bias.normalisation_data import impostor_input, mated_input, probe_input
from facegate.cli.bias_data import resolve

Describe = Callable[[list[Manifest]], list[DescriptorSet]]


@dataclass(frozen=True)
class ComparisonInputs:
    """What :func:`facegate.bias.normalisation.compare` reads, and the names a report prints."""

    mated: LfwPairs
    held: Source
    probes: np.ndarray
    grouping: str
    names: dict[str, str]
    model_version: str


def group_by(args: argparse.Namespace) -> tuple[str, ...]:
    """``--group-by`` as attribute names (a usage error when empty)."""
    names = tuple(n.strip() for n in str(args.group_by).split(",") if n.strip())
    if not names:
        raise ValueError("--group-by needs attribute names, e.g. race,gender")
    return names


def comparison_inputs(args: argparse.Namespace, describe: Describe) -> ComparisonInputs:
    """Resolve ``--mated``, ``--impostors``, ``--probes``; compute (or read) the descriptors."""
    root = args.data_root
    mated = resolve(args.mated, root, flag="--mated")
    impostors = resolve(args.impostors, root, flag="--impostors")
    probes = resolve(args.probes, root, flag="--probes")
    attrs = group_by(args)
    m_manifest, protocol = mated.with_protocol()
    i_manifest, p_manifest = impostors.manifest(), probes.manifest()
    m_desc, i_desc, p_desc = describe([m_manifest, i_manifest, p_manifest])
    # the shipped cohort was fitted on part of FairFace's calibration half: use the other half
    held_out = impostors.name == "fairface"
    names = {
        "mated": "LFW View 2" if protocol else m_manifest.name,
        "impostors": f"{i_manifest.name} (held-out half)" if held_out else i_manifest.name,
        "probes": p_manifest.name,
    }
    return ComparisonInputs(
        mated_input(m_manifest, protocol, m_desc),
        impostor_input(i_manifest, i_desc, attrs, held_out_half=held_out),
        probe_input(p_desc),
        GROUP_SEPARATOR.join(attrs),
        names,
        m_desc.model_version,
    )


def normalisation_command(args: argparse.Namespace) -> str:
    """The effective command line of a comparison (what changes its numbers)."""
    words = ["facegate", "bias", "normalisation", "--data-root", str(args.data_root)]
    for flag in ("mated", "impostors", "probes", "group_by"):
        words += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
    words += ["--bound", f"{args.bound:g}"]
    if args.mmod_fallback:
        words.append("--mmod-fallback")
    return shlex.join(words)
