"""KeyedLocks: same key serialises, different keys do not, nothing is kept afterwards; where a
PostgreSQL store's vectors live (FACEGATE_VECTOR_INDEX); a broken promise curve stops the server
at start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from facegate.config import Settings, SettingsError
from facegate.engine.matching import default_matcher, read_promise
from facegate.services import KeyedLocks, Services


def test_same_key_serialises_and_cleans_up() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def worker(key: str, name: str, pause: float) -> None:
        async with locks.hold(key):
            order.append(f"{name}+")
            await asyncio.sleep(pause)
            order.append(f"{name}-")

    async def main() -> None:
        await asyncio.gather(worker("t", "a", 0.05), worker("t", "b", 0.0))
        assert order == ["a+", "a-", "b+", "b-"]
        order.clear()
        await asyncio.gather(worker("x", "a", 0.05), worker("y", "b", 0.0))
        assert order == ["a+", "b+", "b-", "a-"]

    asyncio.run(main())
    assert len(locks) == 0


def test_pgvector_is_enabled_at_start_for_every_server_of_the_store(
    tmp_path: Path, pg_dsn: str
) -> None:
    """FACEGATE_VECTOR_INDEX=pgvector enables the store's vectors in PostgreSQL when the server
    starts; a server started after it without the setting uses them too; a fresh store without
    the setting keeps its vectors in memory."""
    plain = Services.open(
        Settings(data_dir=tmp_path / "plain", engine_workers=1, database_url=pg_dsn),
        start_engine=False,
    )
    try:
        assert not plain.store.vectors_in_db
    finally:
        plain.close()
    first = Services.open(
        Settings(
            data_dir=tmp_path / "a", engine_workers=1, database_url=pg_dsn, vector_index="pgvector"
        ),
        start_engine=False,
    )
    second = Services.open(
        Settings(data_dir=tmp_path / "b", engine_workers=1, database_url=pg_dsn),
        start_engine=False,
    )
    try:
        assert first.store.vectors_in_db
        assert second.store.vectors_in_db
    finally:
        second.close()
        first.close()


def test_a_broken_promise_curve_stops_the_server_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The promise curve governance relies on is read when the server starts: one that cannot
    be read (here: stale, fitted for another Similarity version) stops it there with the
    reason, not at the first search; with the shipped one it starts and uses it."""
    settings = Settings(data_dir=tmp_path / "ok", engine_workers=1)
    services = Services.open(settings, start_engine=False)
    try:
        assert read_promise(services.deps.matcher) == default_matcher().similarity.promise.version  # type: ignore[attr-defined]
    finally:
        services.close()

    def stale(model_version: str, variant: str = "", directory: str = "") -> None:
        raise ValueError("x.promise.json promises for another mapping: refit it")

    monkeypatch.setattr("facegate.engine.similarity.promise_curve", stale)
    with pytest.raises(SettingsError, match=r"promise curve of dlib-resnet-v1: .* refit it"):
        Services.open(Settings(data_dir=tmp_path / "stale", engine_workers=1), start_engine=False)
