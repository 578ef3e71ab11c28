"""The background sweeper: retention deletions (logged, counted), review expiry, clean stop."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from types import SimpleNamespace
from typing import Any, cast

import pytest
from starlette.testclient import TestClient

from facegate.admin import sweeper
from facegate.app import create_app
from facegate.services import Services
from facegate.store.idempotency import TokenScope
from facegate.store.records import CollectionRecord, NewFace
from tests.admin.conftest import MakeReview
from tests.store.factory import new_face


def _face(collection_id: str, i: int, retain_until: float | None) -> NewFace:
    return new_face(collection_id, i, consent_ref="consent-1", retain_until=retain_until)


def _staff(services: Services) -> CollectionRecord:
    return services.store.get_collection("acme", "staff")


def _enrol(services: Services, past: int, future: int = 0, forever: int = 0) -> list[str]:
    """Faces in collection "staff" of organisation "acme"; returns the ids of the overdue."""
    staff = services.store.create_collection("staff", "arn:staff", "dlib-resnet-v1", org_id="acme")
    now = time.time()
    faces = [_face("staff", i, now - 60) for i in range(past)]
    faces += [_face("staff", 100 + i, now + 86400) for i in range(future)]
    faces += [_face("staff", 200 + i, None) for i in range(forever)]
    services.store.add_faces(staff, faces)
    return [f.record.face_id for f in faces[:past]]


def test_sweep_deletes_overdue_faces_and_logs_ids_only(
    services: Services, make_review: MakeReview, caplog: pytest.LogCaptureFixture
) -> None:
    overdue = _enrol(services, past=2, future=1, forever=1)
    make_review(ttl_s=-1.0)
    make_review(ttl_s=3600.0)
    with caplog.at_level(logging.INFO, logger="facegate.retention"):
        result = sweeper.sweep_once(services.store, services.reviews, time.time(), services.metrics)
    assert result == sweeper.SweepResult(deleted_faces=2, expired_reviews=1)
    assert services.store.face_count(_staff(services)) == 2
    lines = [r.getMessage() for r in caplog.records if r.name == "facegate.retention"]
    for face_id in overdue:
        assert any(
            face_id in line and "collection staff" in line and "organisation acme" in line
            for line in lines
        )
    assert not any("img-" in line or "consent" in line for line in lines)
    metrics = services.metrics.exposition().decode()
    assert "facegate_retention_deletions_total 2.0" in metrics
    assert "facegate_reviews_expired_total 1.0" in metrics
    again = sweeper.sweep_once(services.store, services.reviews, time.time())
    assert again == sweeper.SweepResult(0, 0)


def test_sweep_works_through_batches(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    _enrol(services, past=5)
    monkeypatch.setattr(sweeper, "BATCH", 2)
    result = sweeper.sweep_once(services.store, services.reviews, time.time())
    assert result.deleted_faces == 5
    assert services.store.face_count(_staff(services)) == 0


def test_one_sweep_is_bounded(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    _enrol(services, past=5)
    monkeypatch.setattr(sweeper, "BATCH", 1)
    monkeypatch.setattr(sweeper, "MAX_BATCHES", 2)
    assert sweeper.sweep_once(services.store, services.reviews, time.time()).deleted_faces == 2
    assert services.store.face_count(_staff(services)) == 3  # the rest waits for the next sweep


def test_the_app_sweeps_at_start_and_stops_cleanly(services: Services) -> None:
    _enrol(services, past=1, future=1)
    with TestClient(create_app(services)) as client:
        deadline = time.monotonic() + 10
        while services.store.face_count(_staff(services)) != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert services.store.face_count(_staff(services)) == 1
        assert client.get("/healthz").status_code == 200
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 5  # not the hour until the next sweep


def test_a_failing_sweep_is_logged_and_retried(
    services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[float] = []

    def failing(*_: object) -> sweeper.SweepResult:
        calls.append(time.monotonic())
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sweeper, "sweep_once", failing)
    fast = cast(
        Services,
        SimpleNamespace(
            settings=replace(services.settings, retention_sweep_s=0.01),
            store=services.store,
            reviews=services.reviews,
            clock=time.time,
            metrics=services.metrics,
            record=services.record,
            drain_outbox=services.drain_outbox,
        ),
    )

    async def run() -> None:
        async with sweeper.sweeping(fast):
            while len(calls) < 3:
                await asyncio.sleep(0.01)

    with caplog.at_level(logging.ERROR, logger="facegate.retention"):
        asyncio.run(run())
    assert len(calls) >= 3
    assert any("retention sweep failed" in r.getMessage() for r in caplog.records)


def test_disabled_sweeper_returns_at_once(
    services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(sweeper, "sweep_once", lambda *a: calls.append(a))
    monkeypatch.setattr(sweeper, "prune_tokens", lambda *a: calls.append(a))
    off = replace(services.settings, retention_sweep_s=0.0)
    monkeypatch.setattr(services, "settings", off)

    async def run() -> None:
        never = asyncio.Event()  # returns without being stopped, or times out
        await asyncio.wait_for(sweeper.run_sweeper(services, never), timeout=5)

    with caplog.at_level(logging.WARNING, logger="facegate.retention"):
        asyncio.run(run())
    assert calls == []  # not one sweep, not even the one at start
    assert any("retention sweeper disabled" in r.getMessage() for r in caplog.records)


def test_sweep_purges_crops_of_closed_reviews(services: Services) -> None:
    """The safety net: a crop left behind by a closed review is deleted, an open one kept, and
    the purge is an audit event with a count only."""
    from facegate.audit.record import EventRecord
    from facegate.store.reviews import PENDING, ReviewRecord

    now = time.time()
    ids = []
    for i in range(2):
        record = ReviewRecord(
            f"rev-crop-{i}", "dec", "SearchFacesByImage", "AK", "acme", "p", 1, PENDING, "{}",
            1, now, now + 3600,
        )  # fmt: skip
        services.reviews.insert(record, b"\xff\xd8 crop")
        ids.append(record.review_id)
    with services.db.transaction() as conn:  # closed without its crop deleted (an old version)
        conn.execute("UPDATE reviews SET status = 'rejected' WHERE review_id = :r", {"r": ids[0]})
    events: list[EventRecord] = []
    result = sweeper.sweep_once(services.store, services.reviews, now, record=events.append)
    assert result.purged_crops == 1
    assert not services.reviews.has_crop(ids[0])
    assert services.reviews.crop(ids[1], now) == b"\xff\xd8 crop"
    [purge] = [e for e in events if e.action == "review.crops_purge"]
    assert purge.details == {"purged": 1}


def test_sweep_prunes_the_face_change_feed_older_than_the_window(services: Services) -> None:
    _enrol(services, past=0, forever=3)
    with services.db.transaction() as conn:  # the first two changes are two days old
        conn.execute(
            "UPDATE face_changes SET created_at = :at WHERE seq IN "
            "(SELECT seq FROM face_changes ORDER BY seq LIMIT 2)",
            {"at": time.time() - 2 * 86400},
        )
    now = time.time()
    kept = sweeper.sweep_once(services.store, services.reviews, now)
    assert kept.pruned_changes == 0  # no window given: the feed is left alone
    result = sweeper.sweep_once(services.store, services.reviews, now, feed_retention_s=86400.0)
    assert result == sweeper.SweepResult(0, 0, 0, pruned_changes=2)
    with services.db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM face_changes").fetchone()[0] == 1
    assert services.store.face_count(_staff(services)) == 3


def test_the_sweeper_prunes_expired_client_request_tokens(services: Services) -> None:
    repo = services.deps.idempotency
    now = time.time()
    scope = TokenScope("acme", "col-1")
    repo.remember(scope, "CreateUser", "old", "d", "{}", now - repo.ttl_s - 1)
    repo.remember(scope, "CreateUser", "new", "d", "{}", now - 60)
    assert sweeper.prune_tokens(repo, now) == 1
    assert repo.recall(scope, "CreateUser", "new", "d", now) == "{}"

    fast = replace(services.settings, retention_sweep_s=0.01)

    async def run() -> None:  # the running sweeper does it too, every interval
        repo.remember(scope, "CreateUser", "older", "d", "{}", now - repo.ttl_s - 1)
        stop = asyncio.Event()
        task = asyncio.create_task(sweeper.run_sweeper(_with_settings(services, fast), stop))
        deadline = time.monotonic() + 10
        while _tokens(services) != 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(run())
    assert _tokens(services) == 1


def _tokens(services: Services) -> int:
    with services.db.read() as conn:
        return int(conn.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0])


def _with_settings(services: Services, settings: Any) -> Services:
    return cast(
        Services,
        SimpleNamespace(
            settings=settings,
            store=services.store,
            reviews=services.reviews,
            clock=time.time,
            metrics=services.metrics,
            record=services.record,
            deps=services.deps,
        ),
    )
