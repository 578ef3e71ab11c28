"""The object graph, built once from Settings and passed in; no globals.

``Services.open`` creates the data directory (private: :mod:`facegate.datadir`), opens (and
migrates) the database, opens the audit log (verifying its tail, and that it still holds the
newest checkpoint the store's anchors know of for this signing key: a log rolled back since is
refused, see :mod:`facegate.audit.log`), loads the master key, rebuilds the vector indexes, and
starts the engine's worker processes and the writer of counted refusals
(:mod:`facegate.refusals`); ``close`` stops them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from facegate.audit.anchors import anchor_hash
from facegate.audit.chain import Entry
from facegate.audit.log import AuditLog, CheckpointCallback, Pin
from facegate.audit.record import INTEGRITY, EventRecord
from facegate.audit.signing_key import key_id, load_signing_key
from facegate.config import Settings, SettingsError
from facegate.datadir import secure_data_dir
from facegate.engine.matching import MatcherSet, read_promise
from facegate.engine.pool import EnginePool
from facegate.errors import InvalidParameterException
from facegate.governance import Registry
from facegate.limits import Admission, RateLimiter
from facegate.metrics import Metrics
from facegate.model_audit import AuditSummary, GateStatus, evaluate
from facegate.ops.common import CollectionModels, OpDeps, PageTokens
from facegate.policy.engine import PolicyEngine
from facegate.refusals import RefusalCounter
from facegate.store.anchors import AnchorRepository
from facegate.store.db import StoreDatabase, open_database
from facegate.store.decisions import DecisionRepository
from facegate.store.idempotency import IdempotencyRepository
from facegate.store.keys import KeyRepository
from facegate.store.model_audits import ModelAuditRecord, ModelAuditRepository
from facegate.store.operators import OperatorRepository
from facegate.store.orgs import OrganisationRepository
from facegate.store.outbox import AuditOutbox
from facegate.store.reviews import CropCipher, ReviewRepository
from facegate.store.store import FaceStore
from facegate.wire.keys import KeyService, load_master_key
from facegate.wire.shapes import ServiceModel


class KeyedLocks:
    """One asyncio lock per key, kept only while someone holds or waits for it.

    Serialises requests that carry the same ClientRequestToken, so the second waits for the
    first and replays its stored response instead of doing the work twice.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


def served_models(matchers: MatcherSet | None) -> tuple[tuple[str, str], ...]:
    """(model, Similarity version) of each model of ``matchers`` that has a calibration."""
    if matchers is None:
        return ()
    out = []
    for model in matchers.registry.models:
        if matchers.servable(model.version) is None:
            out.append((model.version, matchers.for_model(model.version).version))
    return tuple(out)


def load_policy(settings: Settings) -> PolicyEngine:
    """The configured policy packs, parsed and validated (raises ``PolicyLoadError``)."""
    return PolicyEngine.load(settings.policy_packs, operator_dir=settings.policy_dir)


def _derive(master_key: bytes, purpose: str) -> bytes:
    """A sub-key for one purpose, so the master key itself signs nothing."""
    return hmac.new(master_key, purpose.encode("ascii"), hashlib.sha256).digest()


def anchor_checkpoints(anchors: AnchorRepository, server_key_id: str) -> CheckpointCallback:
    """The audit log's ``on_checkpoint``: anchor each checkpoint of this server's chain (signed
    by ``server_key_id``) in the store's anchor chain (:mod:`facegate.audit.anchors`). Raises
    what the store raises; the log logs it and carries on."""

    def anchor(entry: Entry) -> None:
        anchors.append(server_key_id, entry.segment, entry.seq, entry.hash, time.time())

    return anchor


def anchored_head(anchors: AnchorRepository, server_key_id: str) -> tuple[Pin, ...]:
    """The newest checkpoint of this server's chain that the store anchored, as a pin the log
    must still hold when it opens (none if the chain has no anchor yet)."""
    row = anchors.latest_of(server_key_id)
    if row is None:
        return ()
    return (
        Pin(
            int(row["checkpoint_seq"]),
            str(row["checkpoint_hash"]),
            str(row["segment"]),
            f"the store's anchor {row['anchor_seq']}",
        ),
    )


@dataclass
class Services:
    settings: Settings
    db: StoreDatabase
    store: FaceStore
    keys: KeyService
    engine: EnginePool
    model: ServiceModel
    deps: OpDeps
    metrics: Metrics
    clock: Callable[[], float]
    policy: PolicyEngine
    registry: Registry
    decisions: DecisionRepository
    reviews: ReviewRepository
    operators: OperatorRepository
    audit: AuditLog
    outbox: AuditOutbox
    model_audits: ModelAuditRepository
    limiter: RateLimiter
    admission: Admission
    refusals: RefusalCounter
    token_locks: KeyedLocks = field(default_factory=KeyedLocks)
    _closed: bool = False

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        start_engine: bool = True,
        policy: PolicyEngine | None = None,
        permissions_fixed: tuple[str, ...] = (),
    ) -> Services:
        """Everything the server needs. Loads the policy packs first (unless ``policy`` is
        given): an invalid pack raises ``PolicyLoadError`` before anything else starts.
        ``permissions_fixed``: data directory paths a caller already made private (``serve``
        checks before it bootstraps), recorded with the ones fixed here."""
        policy = policy or load_policy(settings)
        fixed = permissions_fixed + secure_data_dir(settings.data_dir)
        db = open_database(settings.database_path, settings.database_url)
        try:  # a refused audit log (damaged, rolled back) stops the start: close the store
            if settings.vector_index == "pgvector":  # store-wide and one-way (store/pg.py)
                enable_vectors = getattr(db, "enable_vectors", None)
                if enable_vectors is None:
                    raise RuntimeError("FACEGATE_VECTOR_INDEX=pgvector needs a PostgreSQL store")
                enable_vectors()
            signing_key = load_signing_key(settings.data_dir, settings.audit_key)
            server_key_id = key_id(signing_key.public_key())
            anchors = AnchorRepository(db, anchor_hash)
            audit = AuditLog.open(
                settings.audit_dir,
                signing_key,
                on_checkpoint=anchor_checkpoints(anchors, server_key_id),
                pins=anchored_head(anchors, server_key_id),
                accept_damage=settings.audit_accept_damage,
            )
        except BaseException:
            db.close()
            raise
        if fixed:
            audit.append(
                EventRecord(
                    at=time.time(),
                    kind=INTEGRITY,
                    action="datadir.permissions_fixed",
                    actor="server",
                    subject=str(settings.data_dir),
                    details={"count": len(fixed), "paths": list(fixed[:100])},
                ).to_json()
            )
        master = load_master_key(settings.data_dir, settings.master_key)
        keys = KeyService(KeyRepository(db), master)
        store = FaceStore(db, settings.limits, ef_search=settings.pgvector_ef_search)
        # the descriptor models (engine.descriptors), found once; the workers get the same list
        registry = settings.engine.registry()
        engine_config = replace(settings.engine, descriptors=registry)
        matchers = MatcherSet(
            registry,
            settings.engine.matcher,
            "cohort" if settings.engine.matcher.normalised else "none",
        )
        default_model = settings.face_model or registry.default.version
        models = CollectionModels(matchers, default_model, settings.models_allow_unpinned)
        try:  # the default model must serve: installed and calibrated (fail closed at start)
            models.choose(default_model)
        except InvalidParameterException as exc:
            db.close()
            audit.close()
            raise SettingsError(f"FACEGATE_FACE_MODEL={default_model}: {exc}") from None
        try:  # the promise curve governance relies on, read at start (fail closed)
            read_promise(matchers.for_model(default_model))
        except ValueError as exc:
            db.close()
            audit.close()
            raise SettingsError(f"the promise curve of {default_model}: {exc}") from None
        engine = EnginePool(
            engine_config,
            workers=settings.engine_workers,
            max_batch=settings.engine_max_batch,
            tenant_max_jobs=settings.engine_tenant_max_jobs,
            tenant_workers=settings.engine_tenant_workers,
        )
        if start_engine:
            engine.warm_up()
        deps = OpDeps(
            engine=engine,
            store=store,
            idempotency=IdempotencyRepository(db, settings.idempotency_ttl_s),
            matcher=matchers.for_model(default_model),
            pages=PageTokens(_derive(master, "pagination")),
            region=settings.region,
            account_id=settings.account_id,
            matchers=matchers,
            models=models,
        )
        metrics = Metrics.create()
        refusals = RefusalCounter(
            audit.append,
            flush_s=settings.refusal_flush_s,
            rate_per_s=settings.auth_failure_rps,
            burst=settings.auth_failure_burst,
            on_count=lambda reason: metrics.auth_refusals.labels(reason).inc(),
        ).start()
        return cls(
            settings=settings,
            db=db,
            store=store,
            keys=keys,
            engine=engine,
            model=ServiceModel.load(),
            deps=deps,
            metrics=metrics,
            clock=time.time,
            policy=policy,
            registry=Registry(OrganisationRepository(db), keys),
            decisions=DecisionRepository(db),
            reviews=ReviewRepository(db, CropCipher(_derive(master, "review-crops"))),
            operators=OperatorRepository(db),
            audit=audit,
            outbox=AuditOutbox(db),
            model_audits=ModelAuditRepository(db),
            limiter=RateLimiter(settings.rate_limit_rps, settings.rate_limit_burst),
            admission=Admission(settings.max_inflight),
            refusals=refusals,
        )

    @property
    def active_model(self) -> tuple[str, str]:
        """(descriptor model version, similarity mapping version) of the server's default model
        (``FACEGATE_FACE_MODEL``: new collections, CompareFaces)."""
        return self.model_versions()

    def model_versions(self, face_model_version: str | None = None) -> tuple[str, str]:
        """(descriptor model version, similarity mapping version) of ``face_model_version``
        (a collection's model; None: the default). A model that cannot be scored here has the
        similarity version ``""`` (no audit is registered for it, so the gate is closed)."""
        default = self.deps.models.default_version if self.deps.models else None
        version = face_model_version or default or self.engine.model_version
        if version == default or self.deps.matchers is None:
            return version, self.deps.matcher.version
        try:
            return version, self.deps.matchers.for_model(version).version
        except (KeyError, ValueError):
            return version, ""

    def served_models(self) -> tuple[tuple[str, str], ...]:
        """(model, Similarity version) of every descriptor model that can serve collections
        here (calibrated), for registering their bias audits."""
        return served_models(self.deps.matchers)

    def active_audit(self, face_model_version: str | None = None) -> ModelAuditRecord | None:
        """The registered, unrevoked bias audit of a model (None: none; default: the default
        model)."""
        return self.model_audits.active(*self.model_versions(face_model_version))

    def gate_status(self, face_model_version: str | None = None) -> GateStatus:
        """The deployment gate now: a model's audit (the collection's model; default: the
        default model) against the configured bounds. Read from the database on each call, so
        a registration made by the CLI in another process applies from the next request (one
        indexed lookup)."""
        record = self.active_audit(face_model_version)
        summary = None
        if record is not None:
            summary = AuditSummary.from_json(json.loads(record.summary_json))
        return evaluate(summary, self.settings.gate)

    def record(self, event: EventRecord) -> None:
        """Append a governance event to the audit chain (raises if it cannot: fail closed)."""
        self.audit.append(event.to_json())

    def drain_outbox(self) -> int:
        """Move event records queued by commands run beside the server into the audit chain,
        in order; returns how many moved."""
        return self.outbox.drain_into(
            lambda outbox_id, record: self.audit.append({**record, "outbox_id": outbox_id})
        )

    def close(self) -> None:
        """Stop the engine, close the audit log (a final signed checkpoint) and the database.
        Safe to call twice."""
        self.engine.close()
        if not self._closed:
            self._closed = True
            self.refusals.close()  # the last counts, before the final checkpoint
            self.audit.close()
        self.db.close()
