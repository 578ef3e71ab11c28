"""The audit outbox: with several servers draining one store, every record enters exactly one
chain; a failed append leaves its batch queued."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from facegate.store.db import StoreDatabase
from facegate.store.outbox import AuditOutbox
from tests.conftest import DbFactory


def test_two_servers_draining_at_once_move_each_record_exactly_once(
    db_factory: DbFactory,
) -> None:
    queue = AuditOutbox(db_factory())
    for i in range(120):
        queue.put({"kind": "event", "n": i}, at=float(i))
    chains: list[list[int]] = [[], []]
    stores: list[StoreDatabase] = [db_factory(), db_factory()]
    start = threading.Barrier(2)

    def drain(k: int) -> None:
        outbox = AuditOutbox(stores[k])
        start.wait()
        outbox.drain_into(lambda _id, record: chains[k].append(record["n"]), batch=7)

    threads = [threading.Thread(target=drain, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(chains[0] + chains[1]) == list(range(120))  # none twice, none lost
    assert all(c == sorted(c) for c in chains)  # each chain in queue order
    assert queue.take() == []


def test_a_failed_append_leaves_the_batch_queued(database: StoreDatabase) -> None:
    outbox = AuditOutbox(database)
    for i in range(3):
        outbox.put({"n": i}, at=0.0)
    seen: list[Any] = []

    def failing(_id: int, record: dict[str, Any]) -> None:
        seen.append(record["n"])
        if record["n"] == 1:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        outbox.drain_into(failing)
    assert [r["n"] for _, r in outbox.take()] == [0, 1, 2]  # record 0 will be appended again
    moved: list[int] = []
    assert outbox.drain_into(lambda i, r: moved.append(r["n"])) == 3
    assert moved == [0, 1, 2]
