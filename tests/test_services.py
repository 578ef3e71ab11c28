"""KeyedLocks: same key serialises, different keys do not, nothing is kept afterwards."""

from __future__ import annotations

import asyncio

from facegate.services import KeyedLocks


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
