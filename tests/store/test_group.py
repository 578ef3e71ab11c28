"""Group commit of store writes (facegate.store.group) and the decisions stored with it: every
caller returns only once its own row is committed, concurrent callers share transactions, and a
failed group is retried one row at a time so each caller gets its own outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from facegate.store.db import IntegrityError, StoreDatabase
from facegate.store.decisions import DecisionRecord, DecisionRepository
from facegate.store.group import GroupCommit


def _decision(i: int) -> DecisionRecord:
    return DecisionRecord(
        decision_id=f"dec-{i:020d}",
        at=1_750_000_000.0 + i,
        access_key_id="AKIAFACEGATE0000001",
        org_id="local",
        operation="SearchFacesByImage",
        resource="c1",
        purpose="research",
        allowed=True,
        policy_ids=("base.permit-registered",),
        reasons=(),
        errors=(),
        obligations={"max_candidates": 5},
    )


def test_concurrent_submits_share_commits_and_return_once_committed() -> None:
    committed: set[int] = set()
    groups: list[int] = []

    def commit(items: Sequence[int]) -> None:
        time.sleep(0.01)  # a slow fsync, so that submits pile up
        committed.update(items)
        groups.append(len(items))

    group: GroupCommit[int] = GroupCommit(commit)
    seen_committed: list[bool] = []
    lock = threading.Lock()

    def submitter(t: int) -> None:
        for i in range(10):
            item = t * 10 + i
            group.submit(item)
            with lock:
                seen_committed.append(item in committed)

    threads = [threading.Thread(target=submitter, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(seen_committed)
    assert len(seen_committed) == 80
    assert committed == set(range(80))
    assert sum(groups) == 80
    assert len(groups) < 40  # shared
    assert group.commits == len(groups)


def test_a_failing_group_is_retried_one_by_one() -> None:
    release = threading.Event()
    calls: list[tuple[int, ...]] = []

    def commit(items: Sequence[int]) -> None:
        calls.append(tuple(items))
        if len(calls) == 1:
            assert release.wait(10)  # hold the first, so the next three queue together
        if 13 in items:
            raise ValueError("bad row 13")

    group: GroupCommit[int] = GroupCommit(commit)
    outcomes: dict[int, object] = {}

    def submit(i: int) -> None:
        try:
            group.submit(i)
            outcomes[i] = "ok"
        except ValueError as exc:
            outcomes[i] = exc

    first = threading.Thread(target=submit, args=(1,))
    first.start()
    deadline = time.monotonic() + 10
    while not calls:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    others = [threading.Thread(target=submit, args=(i,)) for i in (12, 13, 14)]
    for t in others:
        t.start()
    while len(group._queue) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    release.set()
    for t in (first, *others):
        t.join()
    assert outcomes[1] == outcomes[12] == outcomes[14] == "ok"
    assert isinstance(outcomes[13], ValueError)
    assert calls[1] == (12, 13, 14)  # tried together, then alone
    assert sorted(calls[2:]) == [(12,), (13,), (14,)]


def test_decisions_stored_from_many_threads(database: StoreDatabase) -> None:
    repo = DecisionRepository(database)

    def store(t: int) -> None:
        for i in range(20):
            repo.insert(_decision(t * 20 + i))

    threads = [threading.Thread(target=store, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(120):
        stored = repo.get(f"dec-{i:020d}")
        assert stored == _decision(i)
    assert repo.commits <= 120


def test_a_duplicate_decision_fails_alone(database: StoreDatabase) -> None:
    repo = DecisionRepository(database)
    repo.insert(_decision(1))
    with pytest.raises(IntegrityError):
        repo.insert(_decision(1))
    repo.insert(_decision(2))
    assert repo.get(f"dec-{2:020d}") == _decision(2)
