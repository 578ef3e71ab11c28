"""The store's schema before Alembic: migrations 1-13, frozen, used only to bring an old store to
version 13 (the Alembic baseline, ``store/migrations/versions/0013_baseline.py``).

Nothing here is edited any more. A store created by a facegate before Alembic carries its schema
version in ``PRAGMA user_version`` (SQLite) or the one-row ``facegate_schema`` table
(PostgreSQL); :mod:`facegate.store.migrate` brings such a store from its version to 13 with
:func:`sqlite_to_13` / :func:`pg_to_13`, then stamps it with the baseline revision, after which
only Alembic revisions change the schema. A new store never runs this SQL: the baseline creates
it. The scripts are SQLite's dialect; :func:`pg_migration` rewrites them for PostgreSQL with
regular expressions, which is why new schema changes are Alembic revisions instead.
"""

from __future__ import annotations

import re
import sqlite3
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

LEGACY_HEAD = 13
"""The last version of the legacy scheme: the schema the Alembic baseline creates."""

# Each entry migrates the schema from version i to i + 1 (PRAGMA user_version). Never edit a
# released entry: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE collections (
        collection_id      TEXT PRIMARY KEY,
        arn                TEXT NOT NULL,
        face_model_version TEXT NOT NULL,
        index_kind         TEXT NOT NULL DEFAULT 'exact',
        created_at         REAL NOT NULL
    );
    CREATE TABLE faces (
        seq                INTEGER PRIMARY KEY AUTOINCREMENT,
        face_id            TEXT NOT NULL UNIQUE,
        collection_id      TEXT NOT NULL REFERENCES collections(collection_id) ON DELETE CASCADE,
        image_id           TEXT NOT NULL,
        image_sha256       TEXT NOT NULL,
        external_image_id  TEXT,
        box_left           REAL NOT NULL,
        box_top            REAL NOT NULL,
        box_width          REAL NOT NULL,
        box_height         REAL NOT NULL,
        confidence         REAL NOT NULL,
        model_version      TEXT NOT NULL,
        descriptor         BLOB NOT NULL,
        user_id            TEXT,
        indexed_at         REAL NOT NULL
    );
    CREATE INDEX faces_by_collection ON faces(collection_id, face_id);
    CREATE INDEX faces_by_image ON faces(collection_id, image_sha256);
    CREATE INDEX faces_by_user ON faces(collection_id, user_id);
    CREATE TABLE users (
        collection_id      TEXT NOT NULL REFERENCES collections(collection_id) ON DELETE CASCADE,
        user_id            TEXT NOT NULL,
        status             TEXT NOT NULL,
        created_at         REAL NOT NULL,
        PRIMARY KEY (collection_id, user_id)
    );
    CREATE TABLE tags (
        collection_id      TEXT NOT NULL REFERENCES collections(collection_id) ON DELETE CASCADE,
        tag_key            TEXT NOT NULL,
        tag_value          TEXT NOT NULL,
        PRIMARY KEY (collection_id, tag_key)
    );
    CREATE TABLE idempotency (
        operation          TEXT NOT NULL,
        token              TEXT NOT NULL,
        params_sha256      TEXT NOT NULL,
        response_json      TEXT NOT NULL,
        created_at         REAL NOT NULL,
        PRIMARY KEY (operation, token)
    );
    CREATE TABLE access_keys (
        access_key_id      TEXT PRIMARY KEY,
        secret_sealed      BLOB NOT NULL,
        description        TEXT NOT NULL DEFAULT '',
        created_at         REAL NOT NULL,
        expires_at         REAL,
        revoked_at         REAL
    );
    """,
    # 2: governance. Organisations own keys and collections; keys are bound to one registered use
    # case; faces carry their consent record and retention deadline; policy decisions, human
    # reviews and operator accounts. Keys and collections from version 1 move to the "local"
    # organisation that `facegate serve` bootstraps (research sector, research use case).
    """
    CREATE TABLE organisations (
        org_id             TEXT PRIMARY KEY,
        name               TEXT NOT NULL,
        sector             TEXT NOT NULL,
        country            TEXT NOT NULL DEFAULT '',
        region             TEXT NOT NULL DEFAULT '',
        city               TEXT NOT NULL DEFAULT '',
        use_cases          TEXT NOT NULL DEFAULT '[]',
        created_at         REAL NOT NULL,
        disabled_at        REAL
    );
    ALTER TABLE access_keys ADD COLUMN org_id TEXT REFERENCES organisations(org_id);
    ALTER TABLE access_keys ADD COLUMN use_case TEXT NOT NULL DEFAULT '';
    ALTER TABLE collections ADD COLUMN org_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE faces ADD COLUMN consent_ref TEXT;
    ALTER TABLE faces ADD COLUMN retain_until REAL;
    CREATE INDEX faces_by_retention ON faces(retain_until) WHERE retain_until IS NOT NULL;
    INSERT INTO organisations (org_id, name, sector, use_cases, created_at)
        SELECT 'local', 'Local operator', 'research', '["research"]', strftime('%s', 'now')
        WHERE EXISTS (SELECT 1 FROM access_keys) OR EXISTS (SELECT 1 FROM collections);
    UPDATE access_keys SET org_id = 'local', use_case = 'research' WHERE org_id IS NULL;
    UPDATE collections SET org_id = 'local' WHERE org_id = '';
    CREATE TABLE operators (
        operator_id        TEXT PRIMARY KEY,
        display_name       TEXT NOT NULL,
        role               TEXT NOT NULL,
        token_sha256       TEXT NOT NULL UNIQUE,
        created_at         REAL NOT NULL,
        disabled_at        REAL
    );
    CREATE TABLE decisions (
        decision_id        TEXT PRIMARY KEY,
        at                 REAL NOT NULL,
        access_key_id      TEXT NOT NULL,
        org_id             TEXT NOT NULL,
        operation          TEXT NOT NULL,
        resource           TEXT NOT NULL,
        purpose            TEXT NOT NULL,
        allowed            INTEGER NOT NULL,
        policy_ids         TEXT NOT NULL,
        reasons            TEXT NOT NULL,
        errors             TEXT NOT NULL,
        obligations        TEXT NOT NULL,
        review_id          TEXT
    );
    CREATE INDEX decisions_by_time ON decisions(at);
    CREATE TABLE reviews (
        review_id          TEXT PRIMARY KEY,
        decision_id        TEXT NOT NULL,
        operation          TEXT NOT NULL,
        access_key_id      TEXT NOT NULL,
        org_id             TEXT NOT NULL,
        params_sha256      TEXT NOT NULL,
        reviewers_required INTEGER NOT NULL,
        status             TEXT NOT NULL,
        held_response      TEXT NOT NULL,
        candidates         INTEGER NOT NULL,
        created_at         REAL NOT NULL,
        expires_at         REAL NOT NULL,
        decided_at         REAL
    );
    CREATE INDEX reviews_by_status ON reviews(status, created_at);
    CREATE TABLE review_votes (
        review_id          TEXT NOT NULL REFERENCES reviews(review_id) ON DELETE CASCADE,
        operator_id        TEXT NOT NULL REFERENCES operators(operator_id),
        verdict            TEXT NOT NULL,
        note               TEXT NOT NULL DEFAULT '',
        at                 REAL NOT NULL,
        PRIMARY KEY (review_id, operator_id)
    );
    CREATE TABLE retention_deletions (
        face_id            TEXT NOT NULL,
        collection_id      TEXT NOT NULL,
        org_id             TEXT NOT NULL,
        retain_until       REAL NOT NULL,
        deleted_at         REAL NOT NULL
    );
    """,
    # 3: the audit outbox. Commands that change the registry while the server may be running (the
    # CLI) cannot append to the server's audit chain; they leave their event records here and the
    # server moves them into the chain (at start-up and every few seconds).
    """
    CREATE TABLE audit_outbox (
        outbox_id          INTEGER PRIMARY KEY AUTOINCREMENT,
        record_json        TEXT NOT NULL,
        created_at         REAL NOT NULL
    );
    """,
    # 4: the deployment gate. Bias audits (`facegate bias verification` reports) registered for a
    # model and similarity mapping: a summary of the numbers and the report's SHA-256, never the
    # report's pairs or images. Revoked audits are kept (revoked_at) for the record.
    """
    CREATE TABLE model_audits (
        audit_id           TEXT PRIMARY KEY,
        model_version      TEXT NOT NULL,
        similarity_version TEXT NOT NULL,
        report_sha256      TEXT NOT NULL,
        summary_json       TEXT NOT NULL,
        dataset            TEXT NOT NULL,
        registered_at      REAL NOT NULL,
        registered_by      TEXT NOT NULL,
        note               TEXT NOT NULL DEFAULT '',
        revoked_at         REAL,
        revoked_by         TEXT
    );
    CREATE INDEX model_audits_by_model ON model_audits(model_version, similarity_version,
        registered_at);
    """,
    # 5: the console. Operators may hold a console password (scrypt, parameters stored with the
    # hash; NULL: no console sign-in) and the role "auditor"; console sessions are kept server
    # side by the SHA-256 of their id (the id itself is only in the browser's cookie).
    """
    ALTER TABLE operators ADD COLUMN password_hash TEXT;
    CREATE TABLE console_sessions (
        session_sha256     TEXT PRIMARY KEY,
        operator_id        TEXT NOT NULL REFERENCES operators(operator_id) ON DELETE CASCADE,
        csrf_token         TEXT NOT NULL,
        created_at         REAL NOT NULL,
        last_seen_at       REAL NOT NULL
    );
    CREATE INDEX console_sessions_by_operator ON console_sessions(operator_id);
    """,
    # 6: review crops. The probe's face crop of a held search, kept only while its review is
    # open, encrypted (AES-256-GCM under the master key's "review-crops" sub-key, the review id as
    # associated data); deleted in the transaction that closes the review.
    """
    CREATE TABLE review_crops (
        review_id          TEXT PRIMARY KEY REFERENCES reviews(review_id) ON DELETE CASCADE,
        nonce              BLOB NOT NULL,
        ciphertext         BLOB NOT NULL,
        created_at         REAL NOT NULL
    );
    """,
    # 7: the face change feed. Every face insert ('add') and delete ('remove'), and every
    # collection deletion ('drop', face_id ''), appends a row in the same transaction, so a server
    # sharing the store (PostgreSQL) brings its in-memory vector index up to date by reading the
    # rows after the last ``seq`` it has seen (:meth:`FaceStore.catch_up`).
    """
    CREATE TABLE face_changes (
        seq                INTEGER PRIMARY KEY AUTOINCREMENT,
        collection_id      TEXT NOT NULL,
        face_id            TEXT NOT NULL,
        op                 TEXT NOT NULL
    );
    """,
    # 8: the audit anchor chain. Each signed checkpoint of a server's audit chain inserts one row
    # (store/anchors.py) under the writer lock, linked to the row before it by prev_hash, so the
    # rows form one hash chain across all servers sharing the store. anchor_seq is assigned as
    # the latest + 1 (not AUTOINCREMENT: the chain must have no gaps).
    """
    CREATE TABLE audit_anchors (
        anchor_seq         INTEGER PRIMARY KEY,
        key_id             TEXT NOT NULL,
        segment            TEXT NOT NULL,
        checkpoint_seq     INTEGER NOT NULL,
        checkpoint_hash    TEXT NOT NULL,
        created_at         REAL NOT NULL,
        prev_hash          TEXT NOT NULL,
        anchor_hash        TEXT NOT NULL
    );
    """,
    # 9: pruning the face change feed. Each change records when it was made (epoch s; rows from
    # before this migration count from the migration), so rows older than the retention window
    # can be deleted (store/feed.py). feed_floor's one row holds the highest seq deleted so far
    # (0: none), updated in the pruning transaction: a server whose last-seen seq is below it
    # may have missed changes and reloads its indexes instead of reading the feed.
    """
    ALTER TABLE face_changes ADD COLUMN created_at REAL;
    UPDATE face_changes SET created_at = strftime('%s', 'now');
    CREATE INDEX face_changes_by_time ON face_changes(created_at);
    CREATE TABLE feed_floor (
        singleton          INTEGER PRIMARY KEY CHECK (singleton = 1),
        pruned_through     INTEGER NOT NULL
    );
    INSERT INTO feed_floor (singleton, pruned_through) VALUES (1, 0);
    """,
    # 10: tenancy. A collection's id is the name its organisation gave it, unique within that
    # organisation only (Rekognition scopes collection ids per account): two organisations may
    # both hold "staff", and neither can learn that the other does. Each collection has an
    # internal, immutable identity, `uid` (never reused: a collection deleted and created again
    # under the same id gets a new one), and faces, users, tags and feed rows belong to that
    # identity, never to the name: a write resolved before a collection was deleted cannot land
    # in a collection created afterwards under the same id (store/collections.py checks the
    # identity and owner inside each write transaction). Existing collections keep their id as their
    # uid (ids were unique across the server until now, so these are unique too); new uids are
    # random ("col-" + 32 hex digits). retention_deletions keeps the collection's id (what
    # operators read) and gains its uid. ClientRequestToken records are scoped by organisation
    # and collection identity and expire (store/idempotency.py); the old global records cannot
    # be scoped and are dropped.
    """
    ALTER TABLE collections RENAME COLUMN collection_id TO uid;
    ALTER TABLE collections ADD COLUMN collection_id TEXT NOT NULL DEFAULT '';
    UPDATE collections SET collection_id = uid;
    CREATE UNIQUE INDEX collections_by_org_and_id ON collections(org_id, collection_id);
    ALTER TABLE faces RENAME COLUMN collection_id TO collection_uid;
    ALTER TABLE users RENAME COLUMN collection_id TO collection_uid;
    ALTER TABLE tags RENAME COLUMN collection_id TO collection_uid;
    ALTER TABLE face_changes RENAME COLUMN collection_id TO collection_uid;
    ALTER TABLE retention_deletions ADD COLUMN collection_uid TEXT NOT NULL DEFAULT '';
    UPDATE retention_deletions SET collection_uid = collection_id;
    DROP TABLE idempotency;
    CREATE TABLE idempotency (
        org_id             TEXT NOT NULL,
        collection_uid     TEXT NOT NULL,
        operation          TEXT NOT NULL,
        token              TEXT NOT NULL,
        params_sha256      TEXT NOT NULL,
        response_json      TEXT NOT NULL,
        created_at         REAL NOT NULL,
        PRIMARY KEY (org_id, collection_uid, operation, token)
    );
    CREATE INDEX idempotency_by_time ON idempotency(created_at);
    """,
    # 11: who controls an operator account (human review by distinct people). Each operator
    # records who created it and who set the token and the console password it holds now
    # ('' for accounts made before this migration: not known); operator_credentials keeps every
    # creation and credential change (who, when), so a reviewer created or reset by another
    # operator within the cooling-off period does not count as independent of them.
    """
    ALTER TABLE operators ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
    ALTER TABLE operators ADD COLUMN token_set_by TEXT NOT NULL DEFAULT '';
    ALTER TABLE operators ADD COLUMN password_set_by TEXT NOT NULL DEFAULT '';
    CREATE TABLE operator_credentials (
        operator_id        TEXT NOT NULL REFERENCES operators(operator_id),
        credential         TEXT NOT NULL,
        set_by             TEXT NOT NULL,
        set_at             REAL NOT NULL
    );
    CREATE INDEX operator_credentials_by_operator ON operator_credentials(operator_id, set_at);
    """,
    # 12: descriptor models (issue 19). A collection is pinned to its descriptor model
    # (face_model_version, as before) and records the geometry of that model's vectors:
    # descriptor_space, the length and metric of each part (facegate.vectorspace: dlib's
    # 'euclidean:128', faceres 'cosine:1024', a fused model both). Every collection made before
    # this migration holds dlib's 128-d vectors. The store writes and indexes vectors of the
    # collection's space only; faces of different models are never compared.
    """
    ALTER TABLE collections ADD COLUMN descriptor_space TEXT NOT NULL DEFAULT 'euclidean:128';
    """,
    # 13: face vectors in pgvector (issue 23). PostgreSQL only, and only when a server enables
    # them (FACEGATE_VECTOR_INDEX=pgvector: store/pg.py enable_vectors creates the extension and
    # face_vectors, partitioned by collection, filled from the stored descriptors). The version
    # marks a store that may hold them, so an older facegate refuses it. Nothing in SQLite.
    """
    -- PostgreSQL only, on demand (store/pg.py, PostgresDatabase.enable_vectors)
    """,
)

assert len(MIGRATIONS) == LEGACY_HEAD


_TYPE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b", re.I),
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
    (re.compile(r"strftime\('%s',\s*'now'\)", re.I), "EXTRACT(EPOCH FROM now())"),
)
_CREATE_TABLE = re.compile(r"^(CREATE\s+TABLE\s+\w+\s*\()", re.I)


def pg_migration(script: str) -> list[str]:
    """A legacy SQLite migration script as PostgreSQL statements, by regular expressions
    (``BLOB`` -> ``BYTEA``, ``REAL`` -> ``DOUBLE PRECISION``, ``INTEGER`` -> ``BIGINT``,
    ``INTEGER PRIMARY KEY AUTOINCREMENT`` -> an identity key, an identity ``rowid`` column first
    on every other table, ``strftime`` -> ``EXTRACT(EPOCH ...)``). Used only by
    :func:`pg_to_13` on the frozen scripts; new schema changes are Alembic revisions."""
    statements = []
    for statement in _statements(script):
        if _CREATE_TABLE.match(statement) and not re.search(r"\bAUTOINCREMENT\b", statement, re.I):
            statement = _CREATE_TABLE.sub(
                r"\1\n    rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,", statement, count=1
            )
        for pattern, replacement in _TYPE_RULES:
            statement = pattern.sub(replacement, statement)
        statements.append(statement)
    return statements


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (no semicolons inside our DDL strings); a
    statement of nothing but ``--`` comments is dropped."""
    out = []
    for statement in (s.strip() for s in script.split(";")):
        lines = [line for line in statement.splitlines() if not line.strip().startswith("--")]
        if any(line.strip() for line in lines):
            out.append(statement)
    return out


def sqlite_to_13(conn: sqlite3.Connection, version: int) -> None:
    """Inside the caller's write transaction on a SQLite store at legacy ``version`` (0-13):
    apply migrations ``version + 1`` .. 13 (``PRAGMA user_version`` is the caller's)."""
    for script in MIGRATIONS[version:]:
        for statement in _statements(script):
            conn.execute(statement)


def pg_to_13(conn: psycopg.Connection[Any], version: int) -> None:
    """Inside the caller's transaction on a PostgreSQL store at legacy ``version`` (0-13): apply
    migrations ``version + 1`` .. 13, translated (``facegate_schema`` is the caller's)."""
    for script in MIGRATIONS[version:]:
        for statement in pg_migration(script):
            conn.execute(statement)
