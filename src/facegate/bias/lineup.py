"""The lineup experiment (ACLU, 2018): search every probe face against a whole gallery.

Each probe's descriptor is compared with every gallery descriptor (exact search, Euclidean
distance, vectorised in chunks of probes so memory stays bounded). At Similarity threshold ``s``
a gallery image *matches* a probe when their distance is at most ``distance_for(s)``.

Definitions:

* a *false match* is a match between a probe and a gallery image of different people. When the
  gallery is presumed not to contain the probes' subjects (Congress vs FairFace), every match is
  false, unless the operator *declares* the pair a true match (a CSV of probe path, gallery path;
  e.g. the 19 members of Congress who are also in LFW);
* a probe *declared present* (it has at least one declared pair) is excluded from the
  false-match counts: it is counted apart, with whether its declared gallery image was matched;
* the *false-match share* of a group is probes with at least one false match / probes searched
  (probes with a face and not declared present), with a Wilson interval;
* probes and gallery images without a face are counted and reported, never silently dropped.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from facegate.bias.datasets import DatasetError, Manifest
from facegate.bias.groups import group_key
from facegate.bias.stats import wilson_interval
from facegate.engine.matching import PairScorer
from facegate.engine.similarity import SimilarityModel, default_similarity


def _resolve(manifest: Manifest, text: str, where: str) -> int:
    """The sample index named by ``text``: its full path or a unique trailing part of it."""
    wanted = Path(text)
    hits = [
        i
        for i, s in enumerate(manifest.samples)
        if s.path == wanted or s.path.parts[-len(wanted.parts) :] == wanted.parts
    ]
    if len(hits) != 1:
        problem = "not found in" if not hits else "ambiguous in"
        raise DatasetError(f"{where}: {text} {problem} {manifest.name}")
    return hits[0]


def load_declared(path: Path, probes: Manifest, gallery: Manifest) -> dict[int, set[int]]:
    """Declared true matches from a CSV (header ``probe,gallery``): probe index -> gallery indices.

    Each cell is a sample's path, absolute or a unique trailing part (``images/P000197.jpg`` or
    just ``P000197.jpg``). Raises :class:`DatasetError` naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    out: dict[int, set[int]] = {}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"probe", "gallery"} <= set(reader.fieldnames):
            raise DatasetError(f"{path} line 1: expected a header with columns probe,gallery")
        for row in reader:
            where = f"{path} line {reader.line_num}"
            probe, item = (row.get("probe") or "").strip(), (row.get("gallery") or "").strip()
            if not probe or not item:
                raise DatasetError(f"{where}: empty probe or gallery")
            out.setdefault(_resolve(probes, probe, where), set()).add(
                _resolve(gallery, item, where)
            )
    return out


@dataclass(frozen=True)
class Match:
    """One probe-gallery match within the loosest threshold searched."""

    probe: int
    gallery: int
    distance: float
    declared: bool


@dataclass(frozen=True)
class SearchResult:
    """Raw search output.

    ``false_counts[p, t]``: undeclared gallery matches of probe ``p`` at threshold ``t`` (0 for
    probes without a face); ``declared_distance[p]``: the smallest distance from probe ``p`` to
    one of its declared gallery images (NaN when none or no face); ``matches``: per probe, up to
    ``keep`` undeclared matches (nearest first) plus every declared match, at the loosest threshold.
    ``best_false[p]``: the best (lowest) score of a gallery image not declared a mate of ``p``
    (NaN without a face or gallery): the search's outcome with its mates left out of the gallery,
    a non-mated search in NIST's sense. ``mate_rank[p]``: 1 + the number of non-mates scoring
    strictly better than ``p``'s best mate (0: no mate searched).
    """

    distances: tuple[float, ...]
    false_counts: NDArray[np.int64]
    declared_distance: NDArray[np.float64]
    matches: tuple[Match, ...]
    best_false: NDArray[np.float64] | None = None
    mate_rank: NDArray[np.int64] | None = None


def search(
    probes: NDArray[np.floating[Any]],
    gallery: NDArray[np.floating[Any]],
    distances: Sequence[float],
    *,
    declared: Mapping[int, set[int]] | None = None,
    keep: int = 10,
    chunk: int = 256,
    progress: bool = False,
    scorer: PairScorer | None = None,
) -> SearchResult:
    """Exact search of every probe row against every gallery row (NaN rows: no face).

    ``scorer``: compare its scores (not raw distances) with ``distances``. Memory: one
    ``chunk x len(gallery)`` float64 block at a time.
    """
    declared = declared or {}
    limits = np.asarray(distances, dtype=np.float64)
    loosest = float(limits.max()) if limits.size else -1.0
    g_ok = np.flatnonzero(np.isfinite(gallery).all(axis=1))
    g = gallery[g_ok].astype(np.float64)
    g_sq = np.einsum("ij,ij->i", g, g)
    g_stats = scorer.stats(g) if scorer is not None and len(g) else np.zeros(len(g))
    n_probes = probes.shape[0]
    false_counts = np.zeros((n_probes, limits.size), dtype=np.int64)
    declared_distance = np.full(n_probes, np.nan, dtype=np.float64)
    best_false = np.full(n_probes, np.nan, dtype=np.float64)
    mate_rank = np.zeros(n_probes, dtype=np.int64)
    matches: list[Match] = []
    p_ok = np.flatnonzero(np.isfinite(probes).all(axis=1))
    bar = tqdm(total=p_ok.size, desc="search", unit="probe", file=sys.stderr, disable=not progress)
    try:
        for start in range(0, p_ok.size, chunk):
            rows = p_ok[start : start + chunk]
            p = probes[rows].astype(np.float64)
            sq = np.einsum("ij,ij->i", p, p)[:, None] + g_sq[None, :] - 2.0 * (p @ g.T)
            dist = np.sqrt(np.maximum(sq, 0.0))
            if scorer is not None:
                dist = scorer.scores(dist, scorer.stats(p)[:, None], g_stats[None, :])
            for r, probe in enumerate(rows.tolist()):
                row = dist[r]
                mine = declared.get(probe, set())
                if mine:
                    cols = np.flatnonzero(np.isin(g_ok, sorted(mine)))
                    if cols.size:
                        declared_distance[probe] = float(row[cols].min())
                        matches.extend(
                            Match(probe, int(g_ok[c]), float(row[c]), True)
                            for c in cols.tolist()
                            if row[c] <= loosest
                        )
                    row = row.copy()
                    row[cols] = np.inf
                    if cols.size:
                        rank = 1 + np.count_nonzero(row < declared_distance[probe])
                        mate_rank[probe] = int(rank)
                if row.size and np.isfinite(row).any():
                    best_false[probe] = float(row.min())
                false_counts[probe] = np.count_nonzero(row[:, None] <= limits[None, :], axis=0)
                near = np.flatnonzero(row <= loosest)
                near = near[np.argsort(row[near], kind="stable")[:keep]]
                matches.extend(Match(probe, int(g_ok[c]), float(row[c]), False) for c in near)
            bar.update(rows.size)
    finally:
        bar.close()
    return SearchResult(
        tuple(float(x) for x in limits),
        false_counts,
        declared_distance,
        tuple(matches),
        best_false,
        mate_rank,
    )


def mates_by_subject(probes: Manifest, gallery: Manifest) -> dict[int, set[int]]:
    """Probe index -> the gallery images of the same ``subject_id`` (samples without one have no
    mate): the mates of an operator's manifests, as ``--declare-true`` would list them."""
    by_subject: dict[str, set[int]] = {}
    for g, sample in enumerate(gallery.samples):
        if sample.subject_id is not None:
            by_subject.setdefault(sample.subject_id, set()).add(g)
    return {
        p: set(by_subject[s.subject_id])
        for p, s in enumerate(probes.samples)
        if s.subject_id is not None and s.subject_id in by_subject
    }


@dataclass(frozen=True)
class GroupLineup:
    """One probe group at one threshold (see the module docstring for the definitions)."""

    group: str
    probes: int
    no_face: int
    declared_present: int
    searched: int
    with_false_match: int
    false_match_share: float | None
    interval: tuple[float, float] | None
    declared_found: int


def summarise(
    probes: Manifest,
    probe_statuses_ok: NDArray[np.bool_],
    result: SearchResult,
    declared: Mapping[int, set[int]],
    group_by: Sequence[str],
    threshold_index: int,
) -> list[GroupLineup]:
    """Per probe group (sorted, then ``all``) counts at one threshold."""
    keys = np.array([group_key(s, group_by) for s in probes.samples], dtype=np.str_)
    present = np.zeros(len(probes), dtype=np.bool_)
    present[list(declared)] = True
    limit = result.distances[threshold_index]
    hit = result.false_counts[:, threshold_index] > 0
    found = result.declared_distance <= limit  # NaN compares false
    out = []
    names = sorted(set(keys.tolist()))
    for name in [*names, "all"] if len(names) > 1 else names or ["all"]:
        member = np.ones(len(probes), dtype=np.bool_) if name == "all" else keys == name
        searched = member & probe_statuses_ok & ~present
        n_searched = int(searched.sum())
        n_hit = int((searched & hit).sum())
        out.append(
            GroupLineup(
                group=name,
                probes=int(member.sum()),
                no_face=int((member & ~probe_statuses_ok).sum()),
                declared_present=int((member & present).sum()),
                searched=n_searched,
                with_false_match=n_hit,
                false_match_share=n_hit / n_searched if n_searched else None,
                interval=wilson_interval(n_hit, n_searched),
                declared_found=int((member & present & found).sum()),
            )
        )
    return out


def match_rows(
    probes: Manifest,
    gallery: Manifest,
    result: SearchResult,
    limit: float,
    similarity: SimilarityModel | None = None,
) -> list[dict[str, Any]]:
    """The listed matches within distance ``limit``, as JSON-ready rows (most similar first).

    ``similarity``: the distance -> Similarity mapping (default: the engine's).
    """
    similarity = similarity or default_similarity()
    rows = [
        {
            "probe": str(probes.samples[m.probe].path),
            "gallery": str(gallery.samples[m.gallery].path),
            "similarity_pct": round(similarity.similarity_pct(m.distance), 4),
            "distance": round(m.distance, 6),
            "declared_true": m.declared,
        }
        for m in result.matches
        if m.distance <= limit
    ]
    rows.sort(key=lambda r: (r["distance"], r["probe"], r["gallery"]))
    return rows
