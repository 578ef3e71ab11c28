"""Fit the engine's distance -> Similarity mapping so that every Similarity is a false match rate.

The scale (documented in :mod:`facegate.engine.similarity` and docs/calibration.md)::

    S >= 90:       FMR(S) = (100 - S) / 10,000     (90: 1e-3, 95: 5e-4, 99: 1e-4, 99.9: 1e-5)
    70 <= S < 90:  FMR(S) = 10 ** (-3 + (90 - S) / 10)   (one decade per 10 points: 80: 1e-2)
    S < 70:        not calibrated: a straight line in distance from Similarity 70 to 0 at
                   distance ``ZERO_DISTANCE``

Similarity 99 is NIST FRTE's customary operating point (FMR 1e-4); 80, Rekognition's default,
is a false match rate of 1 in 100.

Method (``facegate bias calibrate``):

1. Each data set (a :class:`Source`: LFW with identities, FairFace without) is split in two
   halves by a salted hash of the subject (LFW: the person, so all of a person's images fall on
   one side; FairFace: the image). The *fit* half fits, the *held-out* half checks.
2. :func:`pair_tail` takes every pair of faces within one half: pairs of the same subject are
   mated, all others impostors (FairFace: every pair, presumed two different people). Impostor
   distances up to ``cap`` are kept (sorted), with the within-group code of each pair per
   grouping; mated distances are all kept.
3. :func:`pooled_fmr` weighs data sets equally (not by pair count: LFW's 30M mostly white, male
   pairs would otherwise outvote FairFace's balanced ones): ``FMR(d) = mean_k count_k(<= d) /
   pairs_k``. :func:`fit` takes, for each knot similarity S, the largest observed impostor
   distance ``d_S`` whose pooled FMR is at most ``FMR(S)``, and joins the knots ``(0, 100)``,
   ``(d_S, S)`` ... ``(d_70, 70)``, ``(ZERO_DISTANCE, 0)`` linearly (strictly decreasing;
   verified).
4. :func:`table` measures, on the held-out half, at each published similarity: FMR per data set
   and per group with Wilson 95% intervals, the pooled FMR against its target, and FNMR (mated
   pairs) overall and per group. A group is *within-group*: both faces in the group (NIST's
   convention); groups with fewer than ``min_pairs`` pairs are marked too small.

Memory: pairs are formed in row blocks; only impostor distances up to ``cap`` are kept
(about 10M float64 for LFW + FairFace at cap 0.7).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facegate.bias.stats import wilson_interval
from facegate.engine.matching import PairScorer
from facegate.engine.similarity import (
    LOWEST_CALIBRATED_PCT,
    PiecewiseSimilarity,
    scale_fmr,
)
from facegate.vectorspace import COSINE, DLIB_SPACE, VectorSpace

LOWEST_CALIBRATED = LOWEST_CALIBRATED_PCT
"""Below this Similarity (FMR 10%) the scale is a plain ramp, not a false match rate."""

ZERO_DISTANCE = 1.5
"""Where the uncalibrated ramp reaches Similarity 0 (dlib's descriptors are rarely farther)."""

KNOT_SIMILARITIES: tuple[float, ...] = (
    70, 72.5, 75, 77.5, 80, 82.5, 85, 87.5, 90, 92, 94, 95, 96, 97, 98, 98.5, 99, 99.3, 99.5, 99.7,
    99.8, 99.9,
)  # fmt: skip
"""Where the mapping is pinned to data (ascending); between knots it is linear."""

SCALE_TEXT = (
    "S >= 90: FMR = (100 - S) / 10000; 70 <= S < 90: FMR = 10^(-3 + (90 - S) / 10); "
    f"S < 70: uncalibrated, linear in distance down to 0 at distance {ZERO_DISTANCE:g}"
)

TABLE_SIMILARITIES: tuple[float, ...] = (80.0, 90.0, 95.0, 99.0, 99.9)
"""The thresholds whose measured error rates are published."""

DEFAULT_CAP = 0.75
SPLIT_SALT = "facegate-calibration-v1"
CROSS = -1


def target_fmr(similarity_pct: float) -> float:
    """The false match rate Similarity ``similarity_pct`` stands for (70 <= S <= 100)."""
    if not LOWEST_CALIBRATED <= similarity_pct <= 100.0:
        raise ValueError(f"similarity_pct must be between {LOWEST_CALIBRATED:g} and 100")
    return scale_fmr(similarity_pct)


@dataclass(frozen=True)
class Source:
    """One data set's usable faces.

    ``subjects``: one subject id per face, or ``None`` when every face is a different person.
    ``groupings``: grouping name (``"gender"``, ``"race x gender"``) -> one group label per face.
    """

    name: str
    vectors: NDArray[np.float32]
    subjects: tuple[str, ...] | None
    groupings: Mapping[str, tuple[str, ...]]

    def __post_init__(self) -> None:
        n = len(self.vectors)
        if self.subjects is not None and len(self.subjects) != n:
            raise ValueError(f"{self.name}: {len(self.subjects)} subjects for {n} faces")
        for name, labels in self.groupings.items():
            if len(labels) != n:
                raise ValueError(f"{self.name}: grouping {name} has {len(labels)} labels for {n}")

    def take(self, mask: NDArray[np.bool_]) -> Source:
        """The faces where ``mask`` is true (same order)."""
        keep = np.flatnonzero(mask).tolist()
        return Source(
            self.name,
            self.vectors[mask],
            None if self.subjects is None else tuple(self.subjects[i] for i in keep),
            {g: tuple(labels[i] for i in keep) for g, labels in self.groupings.items()},
        )


def split_keys(keys: Sequence[str], salt: str = SPLIT_SALT) -> NDArray[np.bool_]:
    """True for the *fit* half: the low bit of SHA-256(salt, key). Stable across runs."""
    out = np.zeros(len(keys), dtype=bool)
    for i, key in enumerate(keys):
        out[i] = hashlib.sha256(f"{salt}\0{key}".encode()).digest()[-1] & 1 == 0
    return out


def split_source(source: Source, salt: str = SPLIT_SALT) -> tuple[Source, Source]:
    """(fit, held-out): by subject when known, else by face index."""
    keys = source.subjects or tuple(f"face-{i}" for i in range(len(source.vectors)))
    fit_mask = split_keys(keys, salt)
    return source.take(fit_mask), source.take(~fit_mask)


@dataclass(frozen=True)
class GroupCodes:
    """Per-pair group codes of one grouping: ``codes[i]`` indexes ``names`` or is ``CROSS``."""

    names: tuple[str, ...]
    impostor_codes: NDArray[np.int32]
    impostor_totals: NDArray[np.int64]
    mated_codes: NDArray[np.int32]
    mated_totals: NDArray[np.int64]


@dataclass(frozen=True)
class PairTail:
    """All pairs of one source: impostor distances up to ``cap`` (ascending) and every mated one.

    ``impostors`` counts every impostor pair (not only those kept).
    """

    name: str
    cap: float
    tail: NDArray[np.float64]
    impostors: int
    mated: NDArray[np.float64]
    groups: Mapping[str, GroupCodes]

    def fmr(self, distance: float) -> tuple[int, int]:
        """(impostor pairs at distance <= ``distance``, all impostor pairs)."""
        if distance > self.cap:
            raise ValueError(f"{self.name}: distance {distance} beyond the kept tail ({self.cap})")
        return int(np.searchsorted(self.tail, distance, side="right")), self.impostors


def _codes(labels: Sequence[str]) -> tuple[tuple[str, ...], NDArray[np.int32]]:
    names = tuple(sorted(set(labels)))
    index = {n: i for i, n in enumerate(names)}
    return names, np.array([index[x] for x in labels], dtype=np.int32)


def _space_blocks(
    x: NDArray[np.float64], space: VectorSpace, weights: Sequence[float] | None
) -> Callable[[int, int], NDArray[np.float64]]:
    """Rows ``start:stop`` against all of ``x``: the space's distances (each part by its
    metric, weighted), by the same expansions as the Euclidean path."""
    w = space.weights_or_ones(weights)
    prepared = []
    for part, cut in zip(space.parts, space.slices(), strict=True):
        v = x[:, cut]
        if part.metric == COSINE:
            lengths = np.linalg.norm(v, axis=1, keepdims=True)
            v = v / np.where(lengths > 0, lengths, 1.0)
        prepared.append((part.metric, v, np.einsum("ij,ij->i", v, v)))

    def block(start: int, stop: int) -> NDArray[np.float64]:
        total = np.zeros((stop - start, len(x)), dtype=np.float64)
        for (metric, v, sq), weight in zip(prepared, w, strict=True):
            dots = v[start:stop] @ v.T
            if metric == COSINE:
                total += weight * np.maximum(1.0 - dots, 0.0)
            else:
                total += weight * np.sqrt(
                    np.maximum(sq[start:stop, None] + sq[None, :] - 2 * dots, 0)
                )
        return total

    return block


def pair_tail(
    source: Source,
    cap: float = DEFAULT_CAP,
    block: int = 1024,
    progress: Callable[[int], None] | None = None,
    scorer: PairScorer | None = None,
    space: VectorSpace = DLIB_SPACE,
    weights: Sequence[float] | None = None,
) -> PairTail:
    """Every pair ``i < j`` of ``source``'s faces (see the module docstring).

    ``scorer``: score pairs with it (e.g. the cohort normalisation) instead of the raw distance;
    the tail and mated values are then scores. ``space``: the descriptor model's space
    (``facegate.vectorspace``; dlib's Euclidean by default): its distance, parts weighted by
    ``weights``, is what the pairs are measured with. ``progress`` is called with the number of
    rows done after each block.
    """
    x = source.vectors.astype(np.float64)
    n = len(x)
    norms = np.einsum("ij,ij->i", x, x)
    block_distances = (
        None if space.euclidean and weights is None else _space_blocks(x, space, weights)
    )
    stats = scorer.stats(x) if scorer is not None else None
    subj = None
    if source.subjects is not None:
        _, subj = _codes(source.subjects)
    grouping = {g: _codes(labels) for g, labels in source.groupings.items()}
    tails: list[NDArray[np.float64]] = []
    mated: list[NDArray[np.float64]] = []
    tail_codes: dict[str, list[NDArray[np.int32]]] = {g: [] for g in grouping}
    mated_codes: dict[str, list[NDArray[np.int32]]] = {g: [] for g in grouping}
    impostors = 0
    for start in range(0, n, block):
        stop = min(n, start + block)
        if block_distances is None:
            d2 = norms[start:stop, None] + norms[None, :] - 2.0 * (x[start:stop] @ x.T)
            dist = np.sqrt(np.maximum(d2, 0.0))
        else:
            dist = block_distances(start, stop)
        rows, cols = np.nonzero(np.arange(n)[None, :] > np.arange(start, stop)[:, None])
        rows_abs = rows + start
        values = dist[rows, cols]
        if scorer is not None and stats is not None:
            values = scorer.scores(values, stats[rows_abs], stats[cols])
        same = (
            subj[rows_abs] == subj[cols] if subj is not None else np.zeros(len(values), dtype=bool)
        )
        impostors += int((~same).sum())
        keep = ~same & (values <= cap)
        tails.append(values[keep])
        mated.append(values[same])
        for g, (_, codes) in grouping.items():
            a, b = codes[rows_abs], codes[cols]
            pair_code = np.where(a == b, a, CROSS).astype(np.int32)
            tail_codes[g].append(pair_code[keep])
            mated_codes[g].append(pair_code[same])
        if progress is not None:
            progress(stop - start)
    tail = np.concatenate(tails) if tails else np.zeros(0)
    order = np.argsort(tail, kind="stable")
    mated_all = np.concatenate(mated) if mated else np.zeros(0)
    mated_order = np.argsort(mated_all, kind="stable")
    groups = {}
    for g, (names, codes) in grouping.items():
        sizes = np.bincount(codes, minlength=len(names)).astype(np.int64)
        m_codes = (np.concatenate(mated_codes[g]) if mated_codes[g] else np.zeros(0, np.int32))[
            mated_order
        ]
        m_totals = np.bincount(m_codes[m_codes >= 0], minlength=len(names)).astype(np.int64)
        groups[g] = GroupCodes(
            names=names,
            impostor_codes=np.concatenate(tail_codes[g])[order]
            if tail_codes[g]
            else np.zeros(0, np.int32),
            impostor_totals=sizes * (sizes - 1) // 2 - m_totals,
            mated_codes=m_codes,
            mated_totals=m_totals,
        )
    return PairTail(source.name, cap, tail[order], impostors, mated_all[mated_order], groups)


def pooled_fmr(tails: Sequence[PairTail], distance: float) -> float:
    """Mean over data sets of each one's FMR at ``distance`` (equal weights)."""
    rates = []
    for t in tails:
        errors, total = t.fmr(distance)
        rates.append(errors / total)
    return float(np.mean(rates))


def fit(
    tails: Sequence[PairTail],
    version: str,
    knot_similarities: Iterable[float] = KNOT_SIMILARITIES,
) -> PiecewiseSimilarity:
    """The mapping through ``(d_S, S)`` for each knot (see the module docstring).

    Raises ``ValueError`` when a data set has no impostor pairs, when the kept tails end before
    the FMR of Similarity 0 is reached (raise ``cap``), or when two knots fall on one distance
    (too few pairs for the highest knots).
    """
    if not tails or any(t.impostors == 0 for t in tails):
        raise ValueError("calibration needs impostor pairs in every data set")
    values = np.concatenate([t.tail for t in tails])
    weights = np.concatenate(
        [np.full(len(t.tail), 1.0 / (len(tails) * t.impostors)) for t in tails]
    )
    order = np.argsort(values, kind="stable")
    values, cumulative = values[order], np.cumsum(weights[order])
    knots: list[tuple[float, float]] = []
    for s in sorted(knot_similarities, reverse=True):
        goal = target_fmr(s) * (1.0 + 1e-12)
        k = int(np.searchsorted(cumulative, goal, side="right"))  # values[:k] have FMR <= goal
        if k == 0:
            raise ValueError(f"no impostor pair is as close as Similarity {s:g} allows: more data")
        if k == len(values):
            raise ValueError(f"the kept tail ends before FMR {target_fmr(s):g}: raise cap")
        # ties: step back to the last distance strictly below the next value
        d = float(values[k - 1])
        if k < len(values) and values[k] == d:
            d = float(np.nextafter(d, 0.0))
        if d <= 0.0:  # a normalised score can be: the map starts at (0, 100)
            raise ValueError(
                f"Similarity {s:g} falls at {d:.3g} <= 0: impostor pairs score as close as "
                "identical faces (near-duplicate images in the data?)"
            )
        knots.append((d, float(s)))
    if knots[-1][1] != LOWEST_CALIBRATED or knots[-1][0] >= ZERO_DISTANCE:
        raise ValueError(f"the knots must end at Similarity {LOWEST_CALIBRATED:g}")
    distances = [0.0] + [d for d, _ in knots] + [ZERO_DISTANCE]
    similarities = [100.0] + [s for _, s in knots] + [0.0]
    return PiecewiseSimilarity(version, tuple(distances), tuple(similarities))


# --- the published table -------------------------------------------------------------------------


def _rate(errors: int, total: int, min_pairs: int) -> dict[str, Any]:
    ci = wilson_interval(errors, total)
    return {
        "errors": errors,
        "pairs": total,
        "rate": errors / total if total else None,
        "ci_low": ci[0] if ci else None,
        "ci_high": ci[1] if ci else None,
        "too_small": total < min_pairs,
    }


def _group_rates(
    names: Sequence[str],
    codes: NDArray[np.int32],
    totals: NDArray[np.int64],
    hit: NDArray[np.bool_],
    min_pairs: int,
) -> dict[str, dict[str, Any]]:
    errors = np.bincount(codes[hit & (codes >= 0)], minlength=len(names))
    return {name: _rate(int(errors[i]), int(totals[i]), min_pairs) for i, name in enumerate(names)}


def max_over_geomean(rates: Iterable[float]) -> float | None:
    """NIST's Max/GeoMean over the non-zero ``rates`` (None: fewer than two)."""
    nonzero = [r for r in rates if r > 0]
    if len(nonzero) < 2:
        return None
    return float(max(nonzero) / np.exp(np.mean(np.log(nonzero))))


def max_geomean(rows: Mapping[str, Mapping[str, Any]]) -> float | None:
    """NIST's Max/GeoMean over measured groups with a non-zero rate (None: fewer than two)."""
    return max_over_geomean(r["rate"] for r in rows.values() if not r["too_small"] and r["rate"])


def table(
    tails: Sequence[PairTail],
    mapping: PiecewiseSimilarity,
    similarities: Sequence[float] = TABLE_SIMILARITIES,
    min_pairs: int = 100,
) -> list[dict[str, Any]]:
    """Measured error rates of ``mapping`` at each similarity on ``tails`` (held-out data).

    Per row: ``similarity_pct``, ``distance``, ``target_fmr``, ``pooled_fmr`` (equal weights),
    and per data set ``fmr`` / ``fnmr`` (``None`` without mated pairs) with Wilson intervals,
    per grouping the group rates and the FMR/FNMR Max/GeoMean.
    """
    rows = []
    for s in similarities:
        d = mapping.distance_for(s)
        row: dict[str, Any] = {
            "similarity_pct": s,
            "distance": round(d, 6),
            "target_fmr": target_fmr(s),
            "pooled_fmr": pooled_fmr(tails, d),
            "datasets": {},
        }
        for t in tails:
            errors, total = t.fmr(d)
            hit = t.tail <= d
            missed = t.mated > d
            entry: dict[str, Any] = {
                "fmr": _rate(errors, total, min_pairs),
                "fnmr": _rate(int(missed.sum()), len(t.mated), min_pairs) if len(t.mated) else None,
                "groups": {},
            }
            for g, codes in t.groups.items():
                fmr_rows = _group_rates(
                    codes.names, codes.impostor_codes, codes.impostor_totals, hit, min_pairs
                )
                grouped: dict[str, Any] = {
                    "fmr": fmr_rows,
                    "fmr_max_geomean": max_geomean(fmr_rows),
                }
                if len(t.mated):
                    fnmr_rows = _group_rates(
                        codes.names, codes.mated_codes, codes.mated_totals, missed, min_pairs
                    )
                    grouped["fnmr"] = fnmr_rows
                    grouped["fnmr_max_geomean"] = max_geomean(fnmr_rows)
                entry["groups"][g] = grouped
            row["datasets"][t.name] = entry
        rows.append(row)
    return rows
