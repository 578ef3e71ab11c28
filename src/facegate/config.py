"""Settings: pure data, read from ``FACEGATE_*`` environment variables or given directly.

| variable | default | meaning |
|---|---|---|
| FACEGATE_DATA_DIR | ./var | SQLite database, master key |
| FACEGATE_DATABASE_URL | (none) | PostgreSQL DSN: one store shared by several servers |
| FACEGATE_HOST / FACEGATE_PORT | 127.0.0.1 / 8750 | where ``serve`` listens |
| FACEGATE_REGION | us-east-1 | region in ARNs (SigV4 scopes of any region are accepted) |
| FACEGATE_STRICT_REGION | 0 | 1: only SigV4 scopes of FACEGATE_REGION are accepted |
| FACEGATE_ACCOUNT_ID | 000000000000 | account in ARNs |
| FACEGATE_ENGINE_WORKERS | number of cores | engine processes |
| FACEGATE_ENGINE_MAX_BATCH | 8 | 1-64: most queued images one engine task takes (1: no batching) |
| FACEGATE_MAX_BODY_BYTES | 8 MiB | request bodies above this are refused before they are read |
| FACEGATE_MAX_SKEW_S | 300 | allowed difference between X-Amz-Date and the server clock |
| FACEGATE_MASTER_KEY | (file) | Fernet key sealing access-key secrets; else DATA_DIR/master.key |
| FACEGATE_POLICY_PACKS | amazon-2020-police-moratorium | active packs, comma-separated (+ base) |
| FACEGATE_POLICY_DIR | (none) | an operator's own packs (override built-ins of the same name) |
| FACEGATE_REVIEW_TTL_S | 259200 (72 h) | how long results held for human review wait |
| FACEGATE_REVIEW_COOLING_OFF_S | 7 days | how long a creator or resetter controls an account |
| FACEGATE_AUDIT_KEY | (file) | audit checkpoint signing key (base64 Ed25519); else a file |
| FACEGATE_RETENTION_SWEEP_S | 3600 | how often faces past their retention deadline are deleted |
| FACEGATE_FEED_RETENTION_S | 86400 | the sweep prunes face change feed rows older than this |
| FACEGATE_VECTOR_INDEX | memory | pgvector: keep a PostgreSQL store's face vectors in pgvector |
| FACEGATE_PGVECTOR_EF_SEARCH | 400 | PostgreSQL store: pgvector's first candidate list (1-1000) |
| FACEGATE_IDEMPOTENCY_TTL_S | 28800 (8 h) | how long a ClientRequestToken replays its response |
| FACEGATE_GATE_THRESHOLD | 99 | deployment gate: the operating Similarity the audit measured |
| FACEGATE_GATE_MAX_FMR_RATIO | 10 | deployment gate: largest acceptable FMR Max/GeoMean there |
| FACEGATE_GATE_MAX_FNMR | 0.5 | deployment gate: largest acceptable FNMR of the worst group there |
| FACEGATE_RATE_LIMIT_RPS | 50 | requests per second per access key (0: no limit) |
| FACEGATE_RATE_LIMIT_BURST | 100 | requests a key may send at once after being idle |
| FACEGATE_MAX_INFLIGHT | 64 | requests in progress at once; more are refused at once (0: none) |
| FACEGATE_AUTH_FAILURE_RPS | 5 | failed authentications a second per client address (0: no limit) |
| FACEGATE_AUTH_FAILURE_BURST | 20 | failed authentications an address may make at once |
| FACEGATE_REFUSAL_FLUSH_S | 60 | at most one audit record of counted refusals per this many s |
| FACEGATE_AUDIT_ACCEPT_DAMAGE | 0 | 1: continue an audit log whose tail fails verification |
| FACEGATE_SCORE_NORMALISATION | cohort | cohort: label-free normalisation; none: raw distance |
| FACEGATE_FACE_MODEL | dlib-resnet-v1 | model of new collections and CompareFaces (models list) |
| FACEGATE_DESCRIPTOR_RUNTIME | auto | auto: ONNX if its self-check passes, else dlib; dlib; onnx |
| FACEGATE_DETECTOR | mtcnn | first detector: mtcnn (then HOG, padded MTCNN); hog (then MTCNN...) |
| FACEGATE_SEARCH_COARSE_FIRST | 1 | search probes: MTCNN's coarse levels first (0: full pyramid) |
| FACEGATE_SEARCH_BLAZEFACE | 1 | search probes: BlazeFace first, then the chain (0: chain only) |
| FACEGATE_MODELS_DIR | .venv/share/facegate/models | converted face models (age, emotion, iris) |
| FACEGATE_MODELS_ALLOW_UNPINNED | 0 | 1: use converted models whose hashes facegate does not pin |
| FACEGATE_ATTRIBUTE_MODELS | (none) | opt-in: faceres (age, gender), emotion, iris (eye gaze) |
| FACEGATE_TRUSTED_PROXIES | (none) | proxies (IPs, CIDRs) whose X-Forwarded-For is believed |
| FACEGATE_HEADER_TIMEOUT_S | 10 | a request head must arrive within this (else closed) |
| FACEGATE_BODY_TIMEOUT_S | 30 | a whole request body must arrive within this (else 408) |
| FACEGATE_BODY_BUDGET_BYTES | 128 MiB | bodies being read at once, server-wide (else 503) |
| FACEGATE_BODY_CLIENT_BYTES | 32 MiB | the same for one client address (0: no share) |
| FACEGATE_IMAGE_MAX_DECODED_BYTES | 160 MB | bytes to decode one image, from its header |
| FACEGATE_IMAGE_WORK_PIXELS | 4194304 | larger images are decoded reduced to this |
| FACEGATE_ENGINE_TENANT_MAX_JOBS | 16 | images of one organisation in the engine (0: any) |
| FACEGATE_ENGINE_TENANT_WORKERS | workers-1 | most one organisation occupies while others wait |

FACEGATE_DATABASE_URL (``postgresql://user:password@host:5432/facegate``, or libpq key=value
pairs) stores organisations, keys, collections, faces, decisions and reviews in PostgreSQL
instead of DATA_DIR's SQLite file, so several ``facegate serve`` processes can share them (see
:mod:`facegate.store.pg`). Every process still needs DATA_DIR for its master key (give all of them
the same FACEGATE_MASTER_KEY) and its own audit log. The URL's password is never logged.

FACEGATE_FEED_RETENTION_S (seconds, more than 0): each sweep (every FACEGATE_RETENTION_SWEEP_S;
none when that is 0) deletes the rows of the face change feed older than this. A server sharing
the store that was stalled for longer reloads its vector indexes from the faces table once
(``facegate.store.feed``), so choose it longer than a healthy server's longest pause.

FACEGATE_VECTOR_INDEX (memory or pgvector): ``memory`` keeps each collection's vectors in every
server's memory (exact search; loaded at start, kept fresh by the change feed). ``pgvector``
(FACEGATE_DATABASE_URL only) keeps them in the PostgreSQL store, searched there: servers load
nothing and need no feed, but a search finds only what pgvector's HNSW graph offers (the hit
recall in docs/scaling.md). The switch is store-wide and one-way: once a server enabled it, every
server on that store uses pgvector whatever its own setting. Enable it with the other servers
stopped.

FACEGATE_PGVECTOR_EF_SEARCH (1 to 1,000): on a PostgreSQL store with pgvector, a search reads this
many candidates from the collection's HNSW graph first (hnsw.ef_search), widens the list while
too many lie within the threshold, and re-ranks them exactly from the stored descriptors. Larger
finds more of the faces an exact search finds, more slowly (``bench/pgvector_scale.py``,
docs/scaling.md); 1,000 is pgvector's largest.

FACEGATE_REVIEW_COOLING_OFF_S: human review needs distinct people. An operator who created
another operator's account, or set its token or console password, controls that account while
it holds the credential they set, and for this long after (they could have replaced it
themselves, as that account); a confirmation does not count with one from an account the same
person controls (:mod:`facegate.store.reviews`). 0: only credentials still held count.

FACEGATE_TRUSTED_PROXIES: the client address recorded in the audit trail and counted by the
console's sign-in throttle is the connection's peer; only when the peer is one of these proxies
is X-Forwarded-For read, from the right, skipping trusted proxies (:mod:`facegate.wire.peers`).
Empty by default: no forwarded header is believed, not even from 127.0.0.1.

FACEGATE_ATTRIBUTE_MODELS (comma-separated, empty or ``none``: off, the default): the converted
face models whose attributes the engine estimates when a request asks for them: ``faceres``
(AgeRange and Gender), ``emotion`` (Emotions) and ``iris`` (EyeDirection). faceres and emotion
are off by default because their training data carry research-only terms (IMDB-WIKI, VGGFace2,
FER2013) and their errors differ by demographic group (docs/attributes.md gives the measured
error rates); an operator who names them accepts those terms for their deployment. iris
(MediaPipe Iris, Apache-2.0) is off by default because EyeDirection could only be checked
against portraits looking into the camera, not against gaze labels, and costs a model run per
face (docs/attributes.md). Each engine worker loads each named model once; one that is not set
up (``facegate models list``) leaves its attributes unavailable, with a warning. Other names
are refused.

FACEGATE_ENGINE_MAX_BATCH: images that arrive while every engine process is busy wait for the
next free one, which then takes up to this many of them in one task and describes all their faces
in one descriptor call (``engine.pool``). A lone request is sent at once, never held for a batch,
and results are the same bits either way; 1 sends every image alone.

Resource bounds (docs: ``facegate.bodies``, ``engine.image``, ``engine.pool``). Before a
request is authenticated it is only its body on its way in: FACEGATE_HEADER_TIMEOUT_S and
FACEGATE_BODY_TIMEOUT_S bound how long a connection may take to send it, FACEGATE_BODY_BUDGET_BYTES
and FACEGATE_BODY_CLIENT_BYTES how much memory bodies being read may hold at once (both at least
FACEGATE_MAX_BODY_BYTES, the client share at most the budget). FACEGATE_IMAGE_MAX_DECODED_BYTES
bounds one image's decoded size (width x height x bytes per pixel of its mode, from the header);
FACEGATE_IMAGE_WORK_PIXELS is the size above which an image is decoded reduced (JPEG draft,
PNG box filter) so the engine never works on more pixels. The engine serves organisations in
turn (round robin, one organisation's images per worker task); FACEGATE_ENGINE_TENANT_MAX_JOBS
refuses an organisation's image beyond that many with ThrottlingException, and while another
organisation uses the engine (or did in the last 10 s) one organisation occupies at most
FACEGATE_ENGINE_TENANT_WORKERS workers (default all but one, at least one; 0: all; at most
FACEGATE_ENGINE_WORKERS), so the others find a worker free. Alone, it may use all of them.

The deployment gate's bounds (:class:`facegate.model_audit.GateBounds`) only matter when the
``deployment-gate`` pack (or ``wa-rcw-43-386``) is active. There is no agreed pass mark: NIST FRVT
Part 8 (draft NISTIR 8429) found FMR Max/GeoMean from about 6 to over 300 across algorithms
(FNMR Max/GeoMean mostly 1-2), so the defaults are a starting point and operators must choose
their own bounds, for their model, data and use.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from facegate.engine.attributes.registry import ATTRIBUTE_MODELS
from facegate.engine.attributes.types import FaceModels
from facegate.engine.core import EngineConfig
from facegate.engine.detect import DetectorConfig, detector_named
from facegate.engine.image import ImageLimits
from facegate.engine.matching import matcher_named
from facegate.engine.pool import DEFAULT_MAX_BATCH, MAX_BATCH_LIMIT, default_workers
from facegate.engine.runtime import runtime_named
from facegate.model_audit import GateBounds
from facegate.policy.engine import DEFAULT_PACKS
from facegate.store.idempotency import DEFAULT_TTL_S as DEFAULT_IDEMPOTENCY_TTL_S
from facegate.store.pgvectors import DEFAULT_EF_SEARCH, EF_MAX
from facegate.store.records import StoreLimits
from facegate.store.reviews import DEFAULT_COOLING_OFF_S
from facegate.wire.peers import parse_networks

DEFAULT_PORT = 8750
VECTOR_INDEXES = ("memory", "pgvector")
# A 5 MiB image is 7 MiB of base64; two images (CompareFaces) would not fit, but Rekognition's
# own request limit is the same order. Bodies are refused from Content-Length before reading.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
# Bodies being read at once (facegate.bodies): sixteen bodies of the largest size server-wide,
# four from one client address (enough for a 16 MiB bias audit report to the admin API).
DEFAULT_BODY_BUDGET_BYTES = 128 * 1024 * 1024
DEFAULT_BODY_CLIENT_BYTES = 32 * 1024 * 1024


T = TypeVar("T")


class SettingsError(ValueError):
    """A ``FACEGATE_*`` variable holds a value that cannot be used (the message names it)."""


def _parse(env: Mapping[str, str], key: str, kind: Callable[[str], T]) -> T:
    try:
        return kind(env[key])
    except ValueError:
        what = "an integer" if kind is int else "a number" if kind is float else "valid"
        raise SettingsError(f"{key} must be {what}, got {env[key]!r}") from None


def attribute_models_named(text: str) -> frozenset[str]:
    """``FACEGATE_ATTRIBUTE_MODELS``: comma-separated face model names (case and spaces
    ignored; empty or ``none``: none). Raises :class:`SettingsError` for a name that backs no
    attribute estimator."""
    names = {n.strip().lower() for n in text.split(",") if n.strip()}
    if names == {"none"}:
        return frozenset()
    unknown = sorted(names - ATTRIBUTE_MODELS)
    if unknown:
        known = ", ".join(sorted(ATTRIBUTE_MODELS))
        raise SettingsError(
            f"FACEGATE_ATTRIBUTE_MODELS: unknown face model(s) {', '.join(unknown)}; "
            f"expected some of {known}, or none"
        )
    return frozenset(names)


def _face_models(env: Mapping[str, str]) -> FaceModels:
    return FaceModels(
        enabled=attribute_models_named(env.get("FACEGATE_ATTRIBUTE_MODELS", "")),
        models_dir=Path(env["FACEGATE_MODELS_DIR"]) if env.get("FACEGATE_MODELS_DIR") else None,
        allow_unpinned=env.get("FACEGATE_MODELS_ALLOW_UNPINNED") == "1",
    )


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    region: str = "us-east-1"
    strict_region: bool = False
    account_id: str = "000000000000"
    engine_workers: int = field(default_factory=default_workers)
    engine_max_batch: int = DEFAULT_MAX_BATCH
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_skew_s: float = 300.0
    master_key: str | None = None
    engine: EngineConfig = EngineConfig()
    face_model: str = ""
    """The descriptor model of new collections (unless CreateCollection's tag
    ``facegate:face-model`` names another) and of CompareFaces (``FACEGATE_FACE_MODEL``);
    ``""``: the engine's dlib model. It must be calibrated (checked when the server starts)."""
    limits: StoreLimits = StoreLimits()
    policy_packs: tuple[str, ...] = DEFAULT_PACKS
    policy_dir: Path | None = None
    audit_key: str | None = None
    review_ttl_s: float = 72 * 3600.0
    review_cooling_off_s: float = DEFAULT_COOLING_OFF_S
    retention_sweep_s: float = 3600.0
    feed_retention_s: float = 86400.0
    # where a PostgreSQL store's vectors live: "memory" or "pgvector" (store/pgvectors.py)
    vector_index: str = "memory"
    # pgvector's first candidate list on a PostgreSQL store (store/pgvectors.py, docs/scaling.md)
    pgvector_ef_search: int = DEFAULT_EF_SEARCH
    # How long a ClientRequestToken's response is replayed (store/idempotency.py: 8 hours).
    idempotency_ttl_s: float = DEFAULT_IDEMPOTENCY_TTL_S
    gate: GateBounds = GateBounds()
    rate_limit_rps: float = 50.0
    rate_limit_burst: float = 100.0
    max_inflight: int = 64
    trusted_proxies: tuple[str, ...] = ()
    # resource bounds (facegate.bodies, engine.image via engine.limits, engine.pool)
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    body_budget_bytes: int = DEFAULT_BODY_BUDGET_BYTES
    body_client_bytes: int = DEFAULT_BODY_CLIENT_BYTES
    engine_tenant_max_jobs: int = 16
    engine_tenant_workers: int | None = None  # None: engine_workers - 1 (at least 1)
    auth_failure_rps: float = 5.0
    auth_failure_burst: float = 20.0
    refusal_flush_s: float = 60.0
    audit_accept_damage: bool = False
    # May hold a password: kept out of repr (and so out of logs); show it with database_name.
    database_url: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._check_resource_bounds()
        if not 1 <= self.engine_max_batch <= MAX_BATCH_LIMIT:
            raise SettingsError(
                f"FACEGATE_ENGINE_MAX_BATCH must be between 1 and {MAX_BATCH_LIMIT}, "
                f"got {self.engine_max_batch}"
            )
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise SettingsError(f"FACEGATE_TRUSTED_PROXIES: {exc}") from None
        if not (math.isfinite(self.review_cooling_off_s) and self.review_cooling_off_s >= 0):
            raise SettingsError(
                f"FACEGATE_REVIEW_COOLING_OFF_S must be a number of seconds, 0 or more, "
                f"got {self.review_cooling_off_s}"
            )
        if self.vector_index not in VECTOR_INDEXES:
            raise SettingsError(
                f"FACEGATE_VECTOR_INDEX must be one of {', '.join(VECTOR_INDEXES)}, "
                f"got {self.vector_index!r}"
            )
        if self.vector_index == "pgvector" and not self.database_url:
            raise SettingsError("FACEGATE_VECTOR_INDEX=pgvector needs FACEGATE_DATABASE_URL")
        if not 1 <= self.pgvector_ef_search <= EF_MAX:
            raise SettingsError(
                f"FACEGATE_PGVECTOR_EF_SEARCH must be between 1 and {EF_MAX}, "
                f"got {self.pgvector_ef_search}"
            )
        if not (math.isfinite(self.feed_retention_s) and self.feed_retention_s > 0):
            raise SettingsError(
                f"FACEGATE_FEED_RETENTION_S must be a number of seconds above 0, "
                f"got {self.feed_retention_s}"
            )
        if not (math.isfinite(self.idempotency_ttl_s) and self.idempotency_ttl_s > 0):
            raise SettingsError(
                f"FACEGATE_IDEMPOTENCY_TTL_S must be a number of seconds above 0, "
                f"got {self.idempotency_ttl_s}"
            )

    def _check_resource_bounds(self) -> None:
        for key, seconds in (
            ("FACEGATE_HEADER_TIMEOUT_S", self.header_timeout_s),
            ("FACEGATE_BODY_TIMEOUT_S", self.body_timeout_s),
        ):
            if not (math.isfinite(seconds) and seconds > 0):
                raise SettingsError(f"{key} must be a number of seconds above 0, got {seconds}")
        if self.body_budget_bytes < self.max_body_bytes:
            raise SettingsError(
                f"FACEGATE_BODY_BUDGET_BYTES must be at least FACEGATE_MAX_BODY_BYTES "
                f"({self.max_body_bytes}), got {self.body_budget_bytes}"
            )
        if self.body_client_bytes != 0 and not (
            self.max_body_bytes <= self.body_client_bytes <= self.body_budget_bytes
        ):
            raise SettingsError(
                f"FACEGATE_BODY_CLIENT_BYTES must be 0 or between FACEGATE_MAX_BODY_BYTES "
                f"({self.max_body_bytes}) and FACEGATE_BODY_BUDGET_BYTES "
                f"({self.body_budget_bytes}), got {self.body_client_bytes}"
            )
        limits = self.engine.limits
        if limits.max_decoded_bytes < 1:
            raise SettingsError(
                f"FACEGATE_IMAGE_MAX_DECODED_BYTES must be above 0, got {limits.max_decoded_bytes}"
            )
        if limits.work_pixels < limits.min_side_px**2:
            raise SettingsError(
                f"FACEGATE_IMAGE_WORK_PIXELS must be at least {limits.min_side_px**2} "
                f"(the smallest image), got {limits.work_pixels}"
            )
        if self.engine_tenant_max_jobs < 0:
            raise SettingsError(
                f"FACEGATE_ENGINE_TENANT_MAX_JOBS must be 0 (no cap) or more, "
                f"got {self.engine_tenant_max_jobs}"
            )
        tenant_workers = self.engine_tenant_workers
        if tenant_workers is not None and not 0 <= tenant_workers <= self.engine_workers:
            raise SettingsError(
                f"FACEGATE_ENGINE_TENANT_WORKERS must be between 0 (all) and "
                f"FACEGATE_ENGINE_WORKERS ({self.engine_workers}), "
                f"got {self.engine_tenant_workers}"
            )

    @property
    def models_dir(self) -> Path | None:
        """The converted face models' folder (None: ``<sys.prefix>/share/facegate/models``)."""
        return self.engine.face_models.models_dir

    @property
    def models_allow_unpinned(self) -> bool:
        """Whether converted models facegate does not pin may be used."""
        return self.engine.face_models.allow_unpinned

    @property
    def attribute_models(self) -> frozenset[str]:
        """The face models attributes may run (``FACEGATE_ATTRIBUTE_MODELS``; empty: off)."""
        return self.engine.face_models.enabled

    @property
    def database_path(self) -> Path:
        """The SQLite file (used when ``database_url`` is None)."""
        return self.data_dir / "facegate.sqlite3"

    @property
    def database_name(self) -> str:
        """The store for messages and logs: the SQLite path, or the PostgreSQL DSN without its
        password."""
        if self.database_url:
            from facegate.store.pg import redact_dsn

            return redact_dsn(self.database_url)
        return str(self.database_path)

    @property
    def audit_dir(self) -> Path:
        return self.data_dir / "audit"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``FACEGATE_*`` variables; keyword overrides win. Raises
        :class:`SettingsError` (naming the variable) for a value that cannot be used."""
        try:
            return cls._from_env(os.environ if env is None else env, overrides)
        except SettingsError:
            raise
        except ValueError as exc:
            raise SettingsError(str(exc)) from exc

    @classmethod
    def _from_env(cls, env: Mapping[str, str], overrides: Mapping[str, object]) -> Settings:
        values: dict[str, object] = {}
        if "FACEGATE_DATA_DIR" in env:
            values["data_dir"] = Path(env["FACEGATE_DATA_DIR"])
        for key, name, kind in (
            ("FACEGATE_HOST", "host", str),
            ("FACEGATE_PORT", "port", int),
            ("FACEGATE_REGION", "region", str),
            ("FACEGATE_ACCOUNT_ID", "account_id", str),
            ("FACEGATE_ENGINE_WORKERS", "engine_workers", int),
            ("FACEGATE_ENGINE_MAX_BATCH", "engine_max_batch", int),
            ("FACEGATE_MAX_BODY_BYTES", "max_body_bytes", int),
            ("FACEGATE_MAX_SKEW_S", "max_skew_s", float),
            ("FACEGATE_MASTER_KEY", "master_key", str),
            ("FACEGATE_AUDIT_KEY", "audit_key", str),
            ("FACEGATE_REVIEW_TTL_S", "review_ttl_s", float),
            ("FACEGATE_REVIEW_COOLING_OFF_S", "review_cooling_off_s", float),
            ("FACEGATE_RATE_LIMIT_RPS", "rate_limit_rps", float),
            ("FACEGATE_RATE_LIMIT_BURST", "rate_limit_burst", float),
            ("FACEGATE_MAX_INFLIGHT", "max_inflight", int),
            ("FACEGATE_AUTH_FAILURE_RPS", "auth_failure_rps", float),
            ("FACEGATE_AUTH_FAILURE_BURST", "auth_failure_burst", float),
            ("FACEGATE_REFUSAL_FLUSH_S", "refusal_flush_s", float),
            ("FACEGATE_RETENTION_SWEEP_S", "retention_sweep_s", float),
            ("FACEGATE_FEED_RETENTION_S", "feed_retention_s", float),
            ("FACEGATE_VECTOR_INDEX", "vector_index", str),
            ("FACEGATE_PGVECTOR_EF_SEARCH", "pgvector_ef_search", int),
            ("FACEGATE_IDEMPOTENCY_TTL_S", "idempotency_ttl_s", float),
            ("FACEGATE_HEADER_TIMEOUT_S", "header_timeout_s", float),
            ("FACEGATE_BODY_TIMEOUT_S", "body_timeout_s", float),
            ("FACEGATE_BODY_BUDGET_BYTES", "body_budget_bytes", int),
            ("FACEGATE_BODY_CLIENT_BYTES", "body_client_bytes", int),
            ("FACEGATE_ENGINE_TENANT_MAX_JOBS", "engine_tenant_max_jobs", int),
            ("FACEGATE_ENGINE_TENANT_WORKERS", "engine_tenant_workers", int),
        ):
            if key in env:
                values[name] = _parse(env, key, kind)
        if env.get("FACEGATE_DATABASE_URL"):
            values["database_url"] = env["FACEGATE_DATABASE_URL"]
        if env.get("FACEGATE_POLICY_DIR"):
            values["policy_dir"] = Path(env["FACEGATE_POLICY_DIR"])
        if "FACEGATE_POLICY_PACKS" in env:
            values["policy_packs"] = tuple(
                p.strip() for p in env["FACEGATE_POLICY_PACKS"].split(",") if p.strip()
            )
        gate = {
            name: _parse(env, key, float)
            for key, name in (
                ("FACEGATE_GATE_THRESHOLD", "threshold_pct"),
                ("FACEGATE_GATE_MAX_FMR_RATIO", "max_fmr_ratio"),
                ("FACEGATE_GATE_MAX_FNMR", "max_fnmr"),
            )
            if key in env
        }
        if "FACEGATE_TRUSTED_PROXIES" in env:
            values["trusted_proxies"] = tuple(
                p.strip() for p in env["FACEGATE_TRUSTED_PROXIES"].split(",") if p.strip()
            )
        if gate:
            values["gate"] = GateBounds(**gate)
        if env.get("FACEGATE_FACE_MODEL", "").strip():
            values["face_model"] = env["FACEGATE_FACE_MODEL"].strip()
        if env.get("FACEGATE_STRICT_REGION") == "1":
            values["strict_region"] = True
        if env.get("FACEGATE_AUDIT_ACCEPT_DAMAGE") == "1":
            values["audit_accept_damage"] = True
        engine: dict[str, object] = {}
        if "FACEGATE_SCORE_NORMALISATION" in env:
            engine["matcher"] = matcher_named(env["FACEGATE_SCORE_NORMALISATION"])
        if "FACEGATE_DESCRIPTOR_RUNTIME" in env:
            engine["descriptor_runtime"] = runtime_named(env["FACEGATE_DESCRIPTOR_RUNTIME"])
        if "FACEGATE_DETECTOR" in env:
            engine["detector"] = detector_named(env["FACEGATE_DETECTOR"])
        if env.get("FACEGATE_SEARCH_COARSE_FIRST") == "0":  # engine.mtcnn: coarse_skip
            detector = engine.get("detector", DetectorConfig())
            assert isinstance(detector, DetectorConfig)
            engine["detector"] = replace(detector, mtcnn_coarse_skip=0)
        if env.get("FACEGATE_SEARCH_BLAZEFACE") == "0":  # engine.blazeface
            detector = engine.get("detector", DetectorConfig())
            assert isinstance(detector, DetectorConfig)
            engine["detector"] = replace(detector, search_blazeface=False)
        face_models = _face_models(env)
        if face_models != FaceModels():
            engine["face_models"] = face_models
        limits = {
            name: _parse(env, key, int)
            for key, name in (
                ("FACEGATE_IMAGE_MAX_DECODED_BYTES", "max_decoded_bytes"),
                ("FACEGATE_IMAGE_WORK_PIXELS", "work_pixels"),
            )
            if key in env
        }
        if limits:
            engine["limits"] = replace(ImageLimits(), **limits)
        if engine:
            values["engine"] = replace(EngineConfig(), **engine)  # type: ignore[arg-type]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
