"""The object graph, built once from Settings and passed in; no globals.

``Services.open`` creates the data directory, opens (and migrates) the database, loads the master
key, rebuilds the vector indexes, and starts the engine's worker processes; ``close`` stops them.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from facegate.config import Settings
from facegate.engine.pool import EnginePool
from facegate.metrics import Metrics
from facegate.ops.common import OpDeps, PageTokens
from facegate.store.db import Database
from facegate.store.idempotency import IdempotencyRepository
from facegate.store.keys import KeyRepository
from facegate.store.store import FaceStore
from facegate.wire.keys import KeyService, load_master_key
from facegate.wire.shapes import ServiceModel


def _derive(master_key: bytes, purpose: str) -> bytes:
    """A sub-key for one purpose, so the master key itself signs nothing."""
    return hmac.new(master_key, purpose.encode("ascii"), hashlib.sha256).digest()


@dataclass
class Services:
    settings: Settings
    db: Database
    store: FaceStore
    keys: KeyService
    engine: EnginePool
    model: ServiceModel
    deps: OpDeps
    metrics: Metrics
    clock: Callable[[], float]

    @classmethod
    def open(cls, settings: Settings, *, start_engine: bool = True) -> Services:
        db = Database(settings.database_path)
        master = load_master_key(settings.data_dir, settings.master_key)
        store = FaceStore(db, settings.limits)
        engine = EnginePool(settings.engine, workers=settings.engine_workers)
        if start_engine:
            engine.warm_up()
        deps = OpDeps(
            engine=engine,
            store=store,
            idempotency=IdempotencyRepository(db),
            similarity=settings.engine.similarity,
            pages=PageTokens(_derive(master, "pagination")),
            region=settings.region,
            account_id=settings.account_id,
        )
        return cls(
            settings=settings,
            db=db,
            store=store,
            keys=KeyService(KeyRepository(db), master),
            engine=engine,
            model=ServiceModel.load(),
            deps=deps,
            metrics=Metrics.create(),
            clock=time.time,
        )

    def close(self) -> None:
        self.engine.close()
        self.db.close()
