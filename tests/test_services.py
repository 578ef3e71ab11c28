"""KeyedLocks: same key serialises, different keys do not, nothing is kept afterwards; where a
PostgreSQL store's vectors live (FACEGATE_VECTOR_INDEX)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from facegate.config import Settings
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
