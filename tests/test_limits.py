"""Overload protection: token buckets per key (fake clock) and the in-flight ceiling."""

from __future__ import annotations

import pytest

from facegate.limits import Admission, BodyBudget, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    clock.now += 0.49  # 0.98 of a token: not yet
    assert not limiter.allow("a")
    clock.now += 0.02
    assert limiter.allow("a")
    clock.now += 60.0  # idle: refilled to the burst, not beyond
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]


def test_keys_are_independent_and_the_table_is_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=1.0, burst=1, max_keys=3, clock=clock)
    assert limiter.allow("a")
    assert not limiter.allow("a")
    assert limiter.allow("b")  # a's empty bucket does not limit b
    for key in ("c", "d", "e"):
        limiter.allow(key)
    assert len(limiter) == 3
    assert limiter.allow("a")  # "a" was evicted as least recently used: a fresh bucket


def test_zero_rate_is_no_limit() -> None:
    limiter = RateLimiter(rate_per_s=0.0, burst=0)
    assert all(limiter.allow("a") for _ in range(1000))
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(rate_per_s=1.0, burst=0)


def test_admission_ceiling() -> None:
    gate = Admission(max_inflight=2)
    assert gate.try_enter()
    assert gate.try_enter()
    assert not gate.try_enter()  # refused, and not counted
    assert gate.inflight == 2
    gate.leave()
    assert gate.try_enter()
    gate.leave()
    gate.leave()
    assert gate.inflight == 0
    with pytest.raises(RuntimeError, match="without a matching"):
        gate.leave()
    unlimited = Admission(0)
    assert all(unlimited.try_enter() for _ in range(1000))


def test_the_body_budget_takes_all_or_nothing_per_client_and_server_wide() -> None:
    budget = BodyBudget(total_bytes=100, per_client_bytes=60)
    assert budget.reserve("a", 50) is None
    assert budget.reserve("a", 20) == BodyBudget.CLIENT  # 70 > a's 60: nothing taken
    assert budget.reserve("b", 45) is None
    assert budget.reserve("c", 10) == BodyBudget.GLOBAL  # 105 > 100
    assert (budget.held_bytes, budget.held_by("a"), budget.held_by("c")) == (95, 50, 0)
    budget.release("a", 50)
    assert budget.reserve("c", 10) is None
    assert budget.largest_bytes == 60
    assert budget.fits_ever(60)
    assert not budget.fits_ever(61)
    with pytest.raises(RuntimeError):
        budget.release("b", 46)
    assert BodyBudget(100).largest_bytes == 100  # no per-client share
