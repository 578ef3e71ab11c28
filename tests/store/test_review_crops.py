"""Review crops: migration 6, AES-256-GCM bound to the review id, deletion when a review closes."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from facegate.store.db import Database, Row, StoreDatabase
from facegate.store.legacy_migrations import MIGRATIONS
from facegate.store.operators import OperatorRecord, OperatorRepository
from facegate.store.reviews import PENDING, CropCipher, ReviewRecord, ReviewRepository

KEY = bytes(range(32))
CROP = b"\xff\xd8\xff\xe0 a small jpeg of a face \xff\xd9"


def _repo(db: StoreDatabase) -> tuple[StoreDatabase, ReviewRepository]:
    ops = OperatorRepository(db)
    for name in ("alice", "bob"):
        ops.insert(OperatorRecord(name, name.title(), "reviewer", 1.0), token_sha256=name * 8)
    return db, ReviewRepository(db, CropCipher(KEY))


def _review(repo: ReviewRepository, required: int = 2, expires: float = 100.0) -> str:
    review_id = f"rev-{uuid.uuid4().hex[:8]}"
    record = ReviewRecord(
        review_id, "dec-1", "SearchFacesByImage", "AKIA", "org", "digest", required, PENDING,
        '{"FaceMatches": [1]}', 1, 1.0, expires,
    )  # fmt: skip
    repo.insert(record, CROP)
    return review_id


def _rows(db: StoreDatabase) -> list[Row]:
    with db.read() as conn:
        return list(conn.execute("SELECT * FROM review_crops").fetchall())


def test_migration_6_creates_the_crop_table(tmp_path: Path) -> None:
    assert len(MIGRATIONS) >= 6
    db = Database(tmp_path / "db")
    assert db.schema_version == len(MIGRATIONS)
    with db.read() as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(review_crops)").fetchall()]
    assert columns == ["review_id", "nonce", "ciphertext", "created_at"]


def test_migration_6_applies_to_a_version_5_database(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db")
    for script in MIGRATIONS[:5]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 5")
    conn.commit()
    conn.close()
    assert Database(tmp_path / "db").schema_version == len(MIGRATIONS)


def test_a_crop_is_stored_encrypted_and_decrypts_for_its_review(database: StoreDatabase) -> None:
    db, repo = _repo(database)
    review_id = _review(repo)
    [row] = _rows(db)
    assert row["review_id"] == review_id
    assert len(row["nonce"]) == 12
    assert CROP not in bytes(row["ciphertext"])  # not stored in the clear
    assert repo.crop(review_id, 2.0) == CROP
    assert repo.has_crop(review_id)
    # another key does not open it
    other = ReviewRepository(db, CropCipher(os.urandom(32)))
    with pytest.raises(InvalidTag):
        other.crop(review_id, 2.0)


def test_the_associated_data_binds_a_crop_to_its_review(database: StoreDatabase) -> None:
    cipher = CropCipher(KEY)
    nonce, ciphertext = cipher.seal("rev-a", CROP)
    assert cipher.open("rev-a", nonce, ciphertext) == CROP
    with pytest.raises(InvalidTag):
        cipher.open("rev-b", nonce, ciphertext)
    # a crop copied onto another review's row does not decrypt there
    db, repo = _repo(database)
    first, second = _review(repo), _review(repo)
    with db.transaction() as conn:
        stolen = conn.execute(
            "SELECT nonce, ciphertext FROM review_crops WHERE review_id = :r", {"r": first}
        ).fetchone()
        conn.execute(
            "UPDATE review_crops SET nonce = :n, ciphertext = :c WHERE review_id = :r",
            {"n": stolen[0], "c": stolen[1], "r": second},
        )
    with pytest.raises(InvalidTag):
        repo.crop(second, 2.0)


def test_a_crop_key_is_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        CropCipher(b"short")


def test_a_repository_without_a_key_stores_no_crop(database: StoreDatabase) -> None:
    db, _ = _repo(database)
    keyless = ReviewRepository(db)
    record = ReviewRecord(
        "rev-x", "d", "SearchFacesByImage", "A", "o", "p", 1, PENDING, "{}", 1, 1.0, 9.0
    )
    with pytest.raises(RuntimeError, match="no crop key"):
        keyless.insert(record, CROP)
    assert keyless.get("rev-x") is None  # nothing inserted
    assert _rows(db) == []


def test_release_deletes_the_crop_in_the_same_transaction(database: StoreDatabase) -> None:
    db, repo = _repo(database)
    review_id = _review(repo, required=2)
    repo.vote(review_id, "alice", "confirm", "ok", 2.0)
    assert repo.crop(review_id, 2.5) == CROP  # still open after one of two confirmations
    assert repo.vote(review_id, "bob", "confirm", "agree", 3.0).status == "released"
    assert _rows(db) == []
    assert repo.crop(review_id, 3.5) is None
    assert not repo.has_crop(review_id)


def test_rejection_deletes_the_crop(database: StoreDatabase) -> None:
    db, repo = _repo(database)
    review_id = _review(repo)
    assert repo.vote(review_id, "alice", "reject", "not them", 2.0).status == "rejected"
    assert _rows(db) == []


def test_expiry_deletes_the_crop(database: StoreDatabase) -> None:
    db, repo = _repo(database)
    late = _review(repo, expires=10.0)
    open_ = _review(repo, expires=100.0)
    assert repo.crop(late, 10.0) is None  # past its deadline: not served even before the sweep
    assert repo.expire(10.0) == (late,)
    assert [r["review_id"] for r in _rows(db)] == [open_]


def test_purge_deletes_crops_of_closed_or_overdue_reviews_only(database: StoreDatabase) -> None:
    db, repo = _repo(database)
    open_ = _review(repo, expires=100.0)
    overdue = _review(repo, expires=10.0)
    closed = _review(repo)
    # a crop left behind by a closed review (e.g. written by an older version)
    with db.transaction() as conn:
        conn.execute("UPDATE reviews SET status = 'released' WHERE review_id = :r", {"r": closed})
    assert repo.purge_crops(20.0) == 2
    assert [r["review_id"] for r in _rows(db)] == [open_]
    assert repo.purge_crops(20.0) == 0
    assert repo.crop(open_, 20.0) == CROP
    assert overdue  # its review is still "pending" until the sweeper expires it
