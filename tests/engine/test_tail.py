"""The probe's own tail: a generalized Pareto fit of its lowest scores, its inverse, the mates it
sets aside, and the sizes it refuses. Samples are drawn from known distributions, so each test
can fail: the fit must recover what was drawn."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from facegate.engine.tail import MIN_TAIL_FACES, TAIL_SIZE, fit_tail, pwm_fit


def _gpd(rng: np.random.Generator, shape: float, scale: float, n: int) -> np.ndarray:
    """``n`` draws of a generalized Pareto distribution (inverse transform)."""
    u = rng.uniform(size=n)
    if abs(shape) < 1e-12:
        return -scale * np.log(u)
    return scale / shape * (u ** (-shape) - 1.0)


@pytest.mark.parametrize("shape", [-0.2, 0.0, 0.2])
def test_pwm_recovers_shape_and_scale(shape: float) -> None:
    rng = np.random.default_rng(7)
    fitted_shape, fitted_scale = pwm_fit(_gpd(rng, shape, 0.05, 20_000))
    assert fitted_shape == pytest.approx(shape, abs=0.03)
    assert fitted_scale == pytest.approx(0.05, rel=0.05)


def test_predicts_the_count_past_a_threshold_of_a_large_sample() -> None:
    """Scores of 20,000 faces (normal, as impostor distances roughly are): the fit of the 101
    lowest predicts how many lie below a limit past the sample's edge (about 9 per search)
    within 1.25x over 40 searches."""
    rng = np.random.default_rng(11)
    predicted = observed = 0.0
    skipped = 0
    for _ in range(40):
        scores = rng.normal(1.0, 0.1, size=20_000)
        fit = fit_tail(np.partition(scores, TAIL_SIZE)[: TAIL_SIZE + 1], len(scores))
        assert fit is not None
        skipped += fit.skipped  # a stranger taken for a mate now and then, rarely
        limit = 1.0 - 3.3 * 0.1  # about 9 of 20,000 faces; the fit's edge is about 2.6
        predicted += fit.expected_at(limit)
        observed += float(np.sum(scores <= limit))
    assert observed > 300
    assert skipped <= 4
    assert 1 / 1.25 < predicted / observed < 1.25


def test_limit_for_inverts_expected_at() -> None:
    rng = np.random.default_rng(5)
    scores = rng.normal(1.0, 0.1, size=5_000)
    fit = fit_tail(scores, len(scores))
    assert fit is not None
    for bound in (0.01, 0.5, 1.0, 10.0):
        limit = fit.limit_for(bound)
        assert limit < fit.u
        assert fit.expected_at(limit) == pytest.approx(bound, rel=1e-6)
    assert fit.limit_for(0.0) == -math.inf
    assert fit.limit_for(float(fit.k)) == fit.u
    # non-decreasing in the limit, and the sample itself at and past u
    grid = np.linspace(fit.u - 1.0, fit.u + 0.1, 200)
    counts = [fit.expected_at(float(t)) for t in grid]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(counts))
    assert fit.expected_at(fit.u) >= fit.k


def test_mates_are_set_aside_and_do_not_inflate_the_tail() -> None:
    rng = np.random.default_rng(3)
    impostors = rng.normal(1.0, 0.1, size=5_000)
    alone = fit_tail(impostors, len(impostors))
    mates = np.array([0.30, 0.35, 0.40])  # the probe's own person: far below every stranger
    with_mates = fit_tail(np.concatenate([mates, impostors]), len(impostors) + 3)
    assert alone is not None
    assert with_mates is not None
    assert with_mates.skipped == 3
    # exactly the fit of the strangers alone (with the k - 3 of them below the same u)
    strangers = fit_tail(impostors, len(impostors), k=TAIL_SIZE - 3)
    assert strangers is not None
    assert (with_mates.u, with_mates.shape, with_mates.scale) == (
        strangers.u,
        strangers.shape,
        strangers.scale,
    )
    limit = with_mates.limit_for(1.0)
    unguarded = fit_tail(np.concatenate([mates, impostors]), len(impostors) + 3, max_outliers=0)
    assert unguarded is not None
    assert unguarded.expected_at(limit) > 3.0
    assert alone.skipped == 0


def test_too_few_faces_or_scores_is_no_fit() -> None:
    scores = np.linspace(0.5, 1.5, MIN_TAIL_FACES)
    assert fit_tail(scores[: MIN_TAIL_FACES - 1], MIN_TAIL_FACES - 1) is None
    assert fit_tail(scores[:TAIL_SIZE], MIN_TAIL_FACES) is None  # fewer than k + 1 given
    assert fit_tail(scores, MIN_TAIL_FACES) is not None


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        fit_tail(np.array([np.nan] * 200), 5_000)
    with pytest.raises(ValueError, match="at least"):
        fit_tail(np.ones(200), 5_000, k=4)
