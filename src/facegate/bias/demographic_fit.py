"""Fitting and measuring the default Gender and AgeRange estimators of
``engine.attributes.demographics``: logistic models over the face's dlib descriptor.

Method:

1. Data: FairFace val (CC BY 4.0; race, gender and age band labelled for every image, about
   balanced by race), one descriptor per image as the server computes it. The images are split
   by a salted hash of the file name (:func:`split_names`): half to fit, half held out. FairFace
   has one image per person, so the halves share no one.
2. The descriptor's 128 values are standardised on the fit half. Gender: one L2-regularised
   logistic regression, P(Male) (``bias.attribute_fit.newton_logistic``). Age: one logistic
   regression per band edge (3, 10, 20, ..., 70 years), P(age >= edge); together they give the
   age's distribution function at the edges, made monotone (:func:`age_quantile`), whose
   quartiles are the AgeRange (as Rekognition returns a range, not a number).
3. Measured where the fit did not look: the held-out half per race x gender group with Wilson
   95% intervals (the Gender Shades table), adults apart (FairFace labels children too); LFW
   (another image source, celebrities, gender labels); and leave-one-race-out: the gender model
   refitted without one race and measured on that race's held-out faces, so a population the
   fit never saw is measured too.

Nothing here reads race or gender at inference: they are labels to fit and to measure by.
Deterministic: the same descriptors give the same weights bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from facegate.bias.attribute_fit import newton_logistic
from facegate.bias.calibration import split_keys
from facegate.bias.stats import wilson_interval
from facegate.engine.attributes.demographics import (
    AGE_BANDS,
    AGE_EDGES_YEARS,
    AGE_MAX_YEARS,
    DemographicModel,
)

FloatMatrix = npt.NDArray[np.float64]
BoolVector = npt.NDArray[np.bool_]

SALT = "facegate-demographics-v1"
L2 = 1.0
"""Regularisation of every logistic model (held-out error moved by under 0.2 points between
0.1 and 10 in the first measurement; the value in between is kept, not tuned further)."""
CHILD_BANDS = frozenset({"0-2", "3-9", "10-19"})


def split_names(names: Sequence[str], salt: str = SALT) -> BoolVector:
    """True for the fit half: the calibration's split (:func:`bias.calibration.split_keys`) of
    the file names with this module's salt. Stable across machines."""
    return split_keys(names, salt)


@dataclass(frozen=True)
class Labelled:
    """Descriptors (rows) with their labels: ``gender`` ``male``/``female``, ``age_band`` one of
    :data:`AGE_BANDS` (or empty when unknown), ``race`` (or empty)."""

    vectors: FloatMatrix
    gender: tuple[str, ...]
    age_band: tuple[str, ...]
    race: tuple[str, ...]

    def take(self, mask: BoolVector) -> Labelled:
        idx = np.flatnonzero(mask)
        return Labelled(
            self.vectors[idx],
            tuple(self.gender[i] for i in idx),
            tuple(self.age_band[i] for i in idx),
            tuple(self.race[i] for i in idx),
        )


def fit_model(data: Labelled, version: str, l2: float = L2) -> DemographicModel:
    """The Gender and age-edge logistic models fitted on ``data`` (every row needs a gender and
    an age band)."""
    if not data.vectors.size:
        raise ValueError("nothing to fit on")
    mean = data.vectors.mean(axis=0)
    scale = data.vectors.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (data.vectors - mean) / scale
    male = np.array([g == "male" for g in data.gender], dtype=bool)
    gender_w, gender_b = newton_logistic(z, male, l2)
    band = np.array([AGE_BANDS.index(b) for b in data.age_band])
    age_w, age_b = [], []
    for k in range(1, len(AGE_BANDS)):
        w, b = newton_logistic(z, band >= k, l2)
        age_w.append(w)
        age_b.append(b)
    return DemographicModel(
        version=version,
        mean=mean,
        scale=scale,
        gender_weights=gender_w,
        gender_bias=gender_b,
        age_weights=np.vstack(age_w),
        age_biases=np.array(age_b),
    )


def _rate(count: int, total: int) -> dict[str, Any]:
    """``count`` of ``total`` as a rate with its Wilson 95% interval."""
    interval = wilson_interval(count, total)
    return {
        "n": total,
        "count": count,
        "rate": count / total if total else None,
        "interval": list(interval) if interval else None,
    }


def measure_gender(model: DemographicModel, data: Labelled) -> dict[str, Any]:
    """Gender error overall, per race x gender group, per group among adults (when age bands
    are known), and the worst group's, with Wilson 95% intervals."""
    said_male = np.array([model.p_male(v) >= 0.5 for v in data.vectors], dtype=bool)
    wrong = said_male != np.array([g == "male" for g in data.gender], dtype=bool)
    adult = np.array([b not in CHILD_BANDS for b in data.age_band], dtype=bool)
    known_age = all(data.age_band)
    out: dict[str, Any] = {"all": _rate(int(wrong.sum()), len(wrong))}
    if known_age:
        out["adults"] = _rate(int(wrong[adult].sum()), int(adult.sum()))
    groups: dict[str, Any] = {}
    for key in sorted({(r, g) for r, g in zip(data.race, data.gender, strict=True)}):
        mask = np.array(
            [(r, g) == key for r, g in zip(data.race, data.gender, strict=True)], dtype=bool
        )
        row = _rate(int(wrong[mask].sum()), int(mask.sum()))
        if known_age:
            row["adults"] = _rate(int(wrong[mask & adult].sum()), int((mask & adult).sum()))
        groups[f"{key[0]} x {key[1]}"] = row
    out["groups"] = groups
    if groups:
        worst = max(groups, key=lambda k: groups[k]["rate"] or 0.0)
        out["worst_group"] = worst
    return out


def measure_age(model: DemographicModel, data: Labelled) -> dict[str, Any]:
    """AgeRange against the labelled band: how often the range's median falls in the band,
    how often the range touches the band, the mean distance of the median from the band's
    middle (years) and the mean width; overall and per race x gender group."""
    rows = [i for i, b in enumerate(data.age_band) if b]
    edges = (*AGE_EDGES_YEARS, AGE_MAX_YEARS)
    lows = np.array([edges[AGE_BANDS.index(data.age_band[i])] for i in rows])
    highs = np.array([edges[AGE_BANDS.index(data.age_band[i]) + 1] for i in rows])
    ranges = [model.age_quartiles(data.vectors[i]) for i in rows]
    low = np.array([r[0] for r in ranges])
    mid = np.array([r[1] for r in ranges])
    high = np.array([r[2] for r in ranges])
    in_band = (mid >= lows) & (mid < highs)
    touches = (low < highs) & (high >= lows)
    error = np.abs(mid - (lows + highs) / 2.0)

    def summary(mask: BoolVector) -> dict[str, Any]:
        n = int(mask.sum())
        return {
            "n": n,
            "median_in_band": _rate(int(in_band[mask].sum()), n),
            "range_touches_band": _rate(int(touches[mask].sum()), n),
            "mean_abs_error_years": float(error[mask].mean()) if n else None,
            "mean_width_years": float((high - low)[mask].mean()) if n else None,
        }

    everyone = np.ones(len(rows), dtype=bool)
    out: dict[str, Any] = {"all": summary(everyone), "groups": {}}
    keys = [(data.race[i], data.gender[i]) for i in rows]
    for key in sorted(set(keys)):
        mask = np.array([k == key for k in keys], dtype=bool)
        out["groups"][f"{key[0]} x {key[1]}"] = summary(mask)
    return out


def leave_one_race_out(fit: Labelled, held: Labelled, version: str) -> dict[str, Any]:
    """For each race: the gender model refitted without that race's fit-half faces, its error
    on that race's held-out faces (adults too), beside the full model's error on them."""
    full = fit_model(fit, version)
    out: dict[str, Any] = {}
    for race in sorted(set(fit.race)):
        without = fit.take(np.array([r != race for r in fit.race], dtype=bool))
        them = held.take(np.array([r == race for r in held.race], dtype=bool))
        model = fit_model(without, f"{version}-without-{race}")
        left_out = measure_gender(model, them)
        with_them = measure_gender(full, them)
        out[race] = {
            "left_out": {"all": left_out["all"], "adults": left_out.get("adults")},
            "fitted_with": {"all": with_them["all"], "adults": with_them.get("adults")},
        }
    return out


def model_document(model: DemographicModel, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The shipped file's content: the weights (:meth:`DemographicModel.to_document`) and what
    was measured (``extra``)."""
    doc = model.to_document()
    doc.update(extra)
    return doc


def pct(rate: Mapping[str, Any]) -> str:
    """``12.3% [10.1-14.9] (n)`` of a :func:`_rate` row."""
    if not rate or rate.get("rate") is None:
        return "-"
    lo, hi = rate["interval"]
    return f"{100 * rate['rate']:.1f}% [{100 * lo:.1f}-{100 * hi:.1f}] ({rate['n']})"
