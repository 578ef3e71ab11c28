"""The store's tables, declared once as SQLAlchemy Core ``Table``\\ s on :data:`metadata`.

The declaration describes the schema the Alembic revisions produce (``store/migrations/``:
the baseline, a frozen copy of this module at version 13, then any later revision); it creates
nothing itself. ``tests/store/test_schema.py`` reflects a freshly migrated store on both
backends and compares tables, columns, nullability, primary keys and indexes with this module,
so the two cannot drift apart: a revision that changes the schema changes this module in the
same commit (docs/store.md, "Changing the schema").

Repositories build their statements from these tables (``select(tags).where(...)``) and run them
with ``conn.execute(statement)`` (:mod:`facegate.store.core` compiles them for the backend).

Conventions:

* Types: SQLite's ``TEXT`` -> :class:`~sqlalchemy.Text`, ``REAL`` -> :class:`~sqlalchemy.Double`
  (``DOUBLE PRECISION`` on PostgreSQL), ``INTEGER`` -> :class:`~sqlalchemy.BigInteger`
  (``BIGINT``), ``BLOB`` -> :class:`~sqlalchemy.LargeBinary` (``BYTEA``).
* ``rowid``: SQLite's implicit rowid (insertion order, the pagination cursor of collections,
  users and model audits) is, on PostgreSQL, an explicit ``BIGINT GENERATED ALWAYS AS IDENTITY
  UNIQUE`` column on every table without an ``AUTOINCREMENT`` key. It is declared here as a
  ``system`` column (selectable on both backends as ``table.c.rowid``, never written, never
  emitted in ``CREATE TABLE``), the last column of its table so ``select(table)`` keeps the
  declared columns' positions.
* ``faces.seq``, ``face_changes.seq``, ``audit_outbox.outbox_id``: SQLite's ``INTEGER PRIMARY
  KEY AUTOINCREMENT`` (``sqlite_autoincrement``), an identity column on PostgreSQL.
* The pgvector tables (``face_vectors`` and its per-collection partitions,
  ``face_vector_counts``) are created at run time by ``store/pgvectors.py`` and are not declared
  here (docs/store.md).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    text,
)

metadata = MetaData()
"""Every table of the store (the pgvector tables excepted)."""

_SEQ = BigInteger().with_variant(Integer(), "sqlite")
"""An ``INTEGER PRIMARY KEY AUTOINCREMENT`` key (SQLite's rowid alias must be ``INTEGER``)."""


def _rowid() -> Column[int]:
    """SQLite's implicit rowid; PostgreSQL's explicit identity column (module docstring)."""
    return Column(
        "rowid", BigInteger, Identity(always=True), system=True, nullable=False, unique=True
    )


def _text(name: str, *, default: str | None = None) -> Column[str]:
    """A ``TEXT NOT NULL`` column (with a server default if given)."""
    server_default = None if default is None else text(f"'{default}'")
    return Column(name, Text, nullable=False, server_default=server_default)


def _real(name: str) -> Column[float]:
    """A ``REAL NOT NULL`` column."""
    return Column(name, Double, nullable=False)


def _cascade(target: str) -> ForeignKey:
    return ForeignKey(target, ondelete="CASCADE")


collections = Table(
    "collections",
    metadata,
    Column("uid", Text, primary_key=True),
    _text("arn"),
    _text("face_model_version"),
    _text("index_kind", default="exact"),
    _real("created_at"),
    _text("org_id", default=""),
    _text("collection_id", default=""),
    _text("descriptor_space", default="euclidean:128"),
    _rowid(),
)
Index("collections_by_org_and_id", collections.c.org_id, collections.c.collection_id, unique=True)

faces = Table(
    "faces",
    metadata,
    Column("seq", _SEQ, Identity(), primary_key=True),
    Column("face_id", Text, nullable=False, unique=True),
    Column("collection_uid", Text, _cascade("collections.uid"), nullable=False),
    _text("image_id"),
    _text("image_sha256"),
    Column("external_image_id", Text),
    _real("box_left"),
    _real("box_top"),
    _real("box_width"),
    _real("box_height"),
    _real("confidence"),
    _text("model_version"),
    Column("descriptor", LargeBinary, nullable=False),
    Column("user_id", Text),
    _real("indexed_at"),
    Column("consent_ref", Text),
    Column("retain_until", Double),
    sqlite_autoincrement=True,
)
Index("faces_by_collection", faces.c.collection_uid, faces.c.face_id)
Index("faces_by_image", faces.c.collection_uid, faces.c.image_sha256)
Index("faces_by_user", faces.c.collection_uid, faces.c.user_id)
Index(
    "faces_by_retention",
    faces.c.retain_until,
    sqlite_where=faces.c.retain_until.is_not(None),
    postgresql_where=faces.c.retain_until.is_not(None),
)

users = Table(
    "users",
    metadata,
    Column("collection_uid", Text, _cascade("collections.uid"), primary_key=True),
    Column("user_id", Text, primary_key=True),
    _text("status"),
    _real("created_at"),
    _rowid(),
)

tags = Table(
    "tags",
    metadata,
    Column("collection_uid", Text, _cascade("collections.uid"), primary_key=True),
    Column("tag_key", Text, primary_key=True),
    _text("tag_value"),
    _rowid(),
)

organisations = Table(
    "organisations",
    metadata,
    Column("org_id", Text, primary_key=True),
    _text("name"),
    _text("sector"),
    _text("country", default=""),
    _text("region", default=""),
    _text("city", default=""),
    _text("use_cases", default="[]"),
    _real("created_at"),
    Column("disabled_at", Double),
    _rowid(),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", Text, primary_key=True),
    Column("secret_sealed", LargeBinary, nullable=False),
    _text("description", default=""),
    _real("created_at"),
    Column("expires_at", Double),
    Column("revoked_at", Double),
    Column("org_id", Text, ForeignKey("organisations.org_id")),
    _text("use_case", default=""),
    _rowid(),
)

operators = Table(
    "operators",
    metadata,
    Column("operator_id", Text, primary_key=True),
    _text("display_name"),
    _text("role"),
    Column("token_sha256", Text, nullable=False, unique=True),
    _real("created_at"),
    Column("disabled_at", Double),
    Column("password_hash", Text),
    _text("created_by", default=""),
    _text("token_set_by", default=""),
    _text("password_set_by", default=""),
    _rowid(),
)

decisions = Table(
    "decisions",
    metadata,
    Column("decision_id", Text, primary_key=True),
    _real("at"),
    _text("access_key_id"),
    _text("org_id"),
    _text("operation"),
    _text("resource"),
    _text("purpose"),
    Column("allowed", BigInteger, nullable=False),
    _text("policy_ids"),
    _text("reasons"),
    _text("errors"),
    _text("obligations"),
    Column("review_id", Text),
    _rowid(),
)
Index("decisions_by_time", decisions.c.at)

reviews = Table(
    "reviews",
    metadata,
    Column("review_id", Text, primary_key=True),
    _text("decision_id"),
    _text("operation"),
    _text("access_key_id"),
    _text("org_id"),
    _text("params_sha256"),
    Column("reviewers_required", BigInteger, nullable=False),
    _text("status"),
    _text("held_response"),
    Column("candidates", BigInteger, nullable=False),
    _real("created_at"),
    _real("expires_at"),
    Column("decided_at", Double),
    _rowid(),
)
Index("reviews_by_status", reviews.c.status, reviews.c.created_at)

review_votes = Table(
    "review_votes",
    metadata,
    Column("review_id", Text, _cascade("reviews.review_id"), primary_key=True),
    Column("operator_id", Text, ForeignKey("operators.operator_id"), primary_key=True),
    _text("verdict"),
    _text("note", default=""),
    _real("at"),
    _rowid(),
)

retention_deletions = Table(
    "retention_deletions",
    metadata,
    _text("face_id"),
    _text("collection_id"),
    _text("org_id"),
    _real("retain_until"),
    _real("deleted_at"),
    _text("collection_uid", default=""),
    _rowid(),
)

audit_outbox = Table(
    "audit_outbox",
    metadata,
    Column("outbox_id", _SEQ, Identity(), primary_key=True),
    _text("record_json"),
    _real("created_at"),
    sqlite_autoincrement=True,
)

model_audits = Table(
    "model_audits",
    metadata,
    Column("audit_id", Text, primary_key=True),
    _text("model_version"),
    _text("similarity_version"),
    _text("report_sha256"),
    _text("summary_json"),
    _text("dataset"),
    _real("registered_at"),
    _text("registered_by"),
    _text("note", default=""),
    Column("revoked_at", Double),
    Column("revoked_by", Text),
    _rowid(),
)
Index(
    "model_audits_by_model",
    model_audits.c.model_version,
    model_audits.c.similarity_version,
    model_audits.c.registered_at,
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("session_sha256", Text, primary_key=True),
    Column("operator_id", Text, _cascade("operators.operator_id"), nullable=False),
    _text("csrf_token"),
    _real("created_at"),
    _real("last_seen_at"),
    _rowid(),
)
Index("console_sessions_by_operator", console_sessions.c.operator_id)

review_crops = Table(
    "review_crops",
    metadata,
    Column("review_id", Text, _cascade("reviews.review_id"), primary_key=True),
    Column("nonce", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    _real("created_at"),
    _rowid(),
)

face_changes = Table(
    "face_changes",
    metadata,
    Column("seq", _SEQ, Identity(), primary_key=True),
    _text("collection_uid"),
    _text("face_id"),
    _text("op"),
    Column("created_at", Double),
    sqlite_autoincrement=True,
)
Index("face_changes_by_time", face_changes.c.created_at)

audit_anchors = Table(
    "audit_anchors",
    metadata,
    Column("anchor_seq", BigInteger, primary_key=True, autoincrement=False),
    _text("key_id"),
    _text("segment"),
    Column("checkpoint_seq", BigInteger, nullable=False),
    _text("checkpoint_hash"),
    _real("created_at"),
    _text("prev_hash"),
    _text("anchor_hash"),
    _rowid(),
)

feed_floor = Table(
    "feed_floor",
    metadata,
    Column("singleton", BigInteger, primary_key=True, autoincrement=False),
    Column("pruned_through", BigInteger, nullable=False),
    _rowid(),
)

idempotency = Table(
    "idempotency",
    metadata,
    Column("org_id", Text, primary_key=True),
    Column("collection_uid", Text, primary_key=True),
    Column("operation", Text, primary_key=True),
    Column("token", Text, primary_key=True),
    _text("params_sha256"),
    _text("response_json"),
    _real("created_at"),
    _rowid(),
)
Index("idempotency_by_time", idempotency.c.created_at)

operator_credentials = Table(
    "operator_credentials",
    metadata,
    Column("operator_id", Text, ForeignKey("operators.operator_id"), nullable=False),
    _text("credential"),
    _text("set_by"),
    _real("set_at"),
    _rowid(),
)
Index(
    "operator_credentials_by_operator",
    operator_credentials.c.operator_id,
    operator_credentials.c.set_at,
)
