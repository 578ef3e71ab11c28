"""The bias toolkit's per-image SQLite caches (:mod:`facegate.bias.image_cache`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from facegate.bias.image_cache import CHUNK, ImageCache, default_path


class Numbers(ImageCache):
    def __init__(self, path: Path) -> None:
        super().__init__(
            path,
            "CREATE TABLE IF NOT EXISTS numbers (sha256 TEXT NOT NULL, key TEXT NOT NULL,"
            " n INTEGER NOT NULL, PRIMARY KEY (sha256, key))",
        )

    def put(self, key: str, rows: dict[str, int]) -> None:
        with self._connect() as db:
            db.executemany(
                "INSERT INTO numbers VALUES (?, ?, ?)", [(d, key, n) for d, n in rows.items()]
            )

    def get(self, key: str, digests: list[str]) -> dict[str, int]:
        return {sha: int(n) for sha, n in self._rows("SELECT sha256, n FROM numbers", key, digests)}


def test_rows_span_chunks_keep_keys_apart_and_skip_absent_digests(tmp_path: Path) -> None:
    cache = Numbers(tmp_path / "deep" / "numbers.sqlite3")  # the parent is created
    stored = {f"d{i:05d}": i for i in range(2 * CHUNK + 7)}
    cache.put("k1", stored)
    cache.put("k2", {"d00000": -1})
    wanted = [*stored, *stored, "absent"]  # repeats are asked once
    assert cache.get("k1", wanted) == stored
    assert cache.get("k2", wanted) == {"d00000": -1}
    assert Numbers(cache.path).get("k1", ["d00003"]) == {"d00003": 3}  # reopened: kept


def test_a_failed_write_is_rolled_back(tmp_path: Path) -> None:
    cache = Numbers(tmp_path / "n.sqlite3")
    cache.put("k", {"a": 1, "b": 2})
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        cache.put("k", {"c": 3, "a": 4})  # "c" goes in, then "a" fails: both rolled back
    assert cache.get("k", ["a", "b", "c"]) == {"a": 1, "b": 2}


def test_default_path_follows_xdg_cache_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_path("things") == tmp_path / "facegate" / "things" / "things.sqlite3"
