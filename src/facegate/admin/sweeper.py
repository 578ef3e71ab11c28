"""The background sweeper: retention deadlines and review deadlines, enforced while serving.

Every ``settings.retention_sweep_s`` seconds (and once at start, so deadlines that passed while
the server was down are enforced at once) :func:`sweep_once` runs in a worker thread:

* faces whose retention deadline has passed are deleted (``FaceStore.sweep_retention``, which
  records each deletion in the database in the same transaction), in batches of
  :data:`BATCH`, at most :data:`MAX_BATCHES` batches per sweep so one sweep cannot hold the
  store for long; the rest waits for the next sweep;
* pending reviews past their deadline expire and their held results and probe face crops are
  discarded (``ReviewRepository.expire``);
* as a safety net, any probe face crop whose review is no longer open is deleted
  (``ReviewRepository.purge_crops``; closing a review deletes its crop already);
* rows of the face change feed older than ``settings.feed_retention_s`` are pruned
  (``FaceStore.prune_feed``; a server that fell behind them reloads its indexes);
* ClientRequestToken records past their validity window (``settings.idempotency_ttl_s``) are
  deleted (:func:`prune_tokens`; expired records are ignored anyway, pruning keeps the table
  small). A step of its own: its failure does not cost the retention sweep, nor the reverse.

Each deletion is logged on ``facegate.retention`` with the face id, collection and organisation
(ids only, nothing biometric), and counted in ``facegate_retention_deletions_total``; expired
reviews in ``facegate_reviews_expired_total``. A failing sweep is logged and retried at the next
interval; it never stops the server. A ``retention_sweep_s`` of 0 or less disables the sweeper.

Shutdown: :func:`sweeping` sets a stop event and waits for the task, so a sweep in progress
finishes its transaction before the service graph is closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

from facegate.audit.record import EventRecord, EventSink
from facegate.isotime import iso_seconds
from facegate.metrics import Metrics
from facegate.services import Services
from facegate.store.idempotency import IdempotencyRepository
from facegate.store.reviews import ReviewRepository
from facegate.store.store import FaceStore

BATCH = 1000
MAX_BATCHES = 20
log = logging.getLogger("facegate.retention")


@dataclass(frozen=True)
class SweepResult:
    deleted_faces: int
    expired_reviews: int
    purged_crops: int = 0
    pruned_changes: int = 0


def sweep_once(
    store: FaceStore,
    reviews: ReviewRepository,
    now: float,
    metrics: Metrics | None = None,
    record: EventSink | None = None,
    feed_retention_s: float | None = None,
) -> SweepResult:
    """Delete faces past their retention deadline and expire overdue reviews, as of ``now``;
    each deletion (and the number of expired reviews) is an audit event given to ``record``.
    With ``feed_retention_s``, also prune the face change feed rows older than that."""
    deleted = 0
    for _ in range(MAX_BATCHES):
        swept = store.sweep_retention(now, BATCH)
        for item in swept:
            face, owner = item.face, item.org_id or "-"
            if record is not None:
                record(
                    EventRecord(
                        at=now,
                        kind="retention",
                        action="face.delete",
                        actor="sweeper",
                        subject=face.face_id,
                        org_id=owner,
                        details={
                            "collection_id": item.collection_id,
                            "retain_until": face.retain_until,
                            "consent_ref": face.consent_ref or "",
                        },
                    )
                )
            log.info(
                f"retention deletion: face {face.face_id} of collection {item.collection_id} "
                f"(organisation {owner}), retention deadline "
                f"{iso_seconds(face.retain_until or now)}"
            )
        deleted += len(swept)
        if len(swept) < BATCH:
            break
    expired = reviews.expire(now)
    if expired and record is not None:
        record(
            EventRecord(
                at=now,
                kind="review",
                action="review.expire",
                actor="sweeper",
                details={"expired": len(expired), "review_ids": list(expired)},
            )
        )
    if expired:
        log.info(f"expired {len(expired)} pending review(s) past their deadline")
    purged = reviews.purge_crops(now)
    if purged:
        log.warning(f"purged {purged} face crop(s) of closed reviews (safety net)")
        if record is not None:
            record(
                EventRecord(
                    at=now,
                    kind="review",
                    action="review.crops_purge",
                    actor="sweeper",
                    details={"purged": purged},
                )
            )
    pruned = 0
    if feed_retention_s is not None:
        pruned = store.prune_feed(now - feed_retention_s).deleted
        if pruned:
            log.info(f"pruned {pruned} face change feed row(s) older than {feed_retention_s:g} s")
    if metrics is not None:
        metrics.retention_deletions.inc(deleted)
        metrics.reviews_expired.inc(len(expired))
    return SweepResult(deleted, len(expired), purged, pruned)


def prune_tokens(idempotency: IdempotencyRepository, now: float) -> int:
    """Delete the ClientRequestToken records expired at ``now``; returns how many."""
    pruned = idempotency.prune(now)
    if pruned:
        log.info(f"deleted {pruned} expired ClientRequestToken record(s)")
    return pruned


async def run_sweeper(services: Services, stop: asyncio.Event) -> None:
    """Sweep (and prune expired ClientRequestToken records) now and then every
    ``retention_sweep_s`` seconds until ``stop`` is set."""
    interval = services.settings.retention_sweep_s
    if interval <= 0:
        log.warning("retention sweeper disabled (retention_sweep_s <= 0)")
        return
    while not stop.is_set():
        try:
            await asyncio.to_thread(
                sweep_once,
                services.store,
                services.reviews,
                services.clock(),
                services.metrics,
                services.record,
                services.settings.feed_retention_s,
            )
        except Exception:
            log.exception("retention sweep failed; retrying at the next interval")
        try:
            await asyncio.to_thread(prune_tokens, services.deps.idempotency, services.clock())
        except Exception:
            log.exception(
                "pruning ClientRequestToken records failed; retrying at the next interval"
            )
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


@asynccontextmanager
async def sweeping(services: Services) -> AsyncIterator[None]:
    """Run the sweeper for the duration of the ``async with`` block (the app's lifespan)."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_sweeper(services, stop), name="facegate-sweeper"),
        asyncio.create_task(run_outbox(services, stop), name="facegate-audit-outbox"),
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def run_outbox(services: Services, stop: asyncio.Event, every_s: float = 2.0) -> None:
    """Move event records queued by commands run beside the server (``facegate org|keys|
    operators|review``) into the audit chain, at start and every ``every_s`` seconds, and once
    more at shutdown."""
    while True:
        try:
            await asyncio.to_thread(services.drain_outbox)
        except Exception:
            log.exception("moving the audit outbox into the chain failed; retrying")
        if stop.is_set():
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)
