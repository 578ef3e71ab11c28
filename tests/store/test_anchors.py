"""The audit anchor table on both backends: appends link to the latest row, and two servers
anchoring at once never fork the chain."""

from __future__ import annotations

import threading

import pytest

from facegate.audit.anchors import GENESIS, anchor_hash, verify_anchors
from facegate.store.anchors import AnchorRepository
from facegate.store.db import StoreDatabase
from tests.conftest import DbFactory


def test_append_links_each_anchor_to_the_one_before(database: StoreDatabase) -> None:
    anchors = AnchorRepository(database, anchor_hash)
    assert anchors.all() == []
    assert anchors.latest() is None
    first = anchors.append("a" * 16, "segment-000001.jsonl", 11, "1" * 64, 1_750_000_000.25)
    second = anchors.append("b" * 16, "segment-000003.jsonl", 7, "2" * 64, 1_750_000_001.5)
    rows = anchors.all()
    assert rows == [first, second]
    assert [r["anchor_seq"] for r in rows] == [1, 2]
    assert rows[0]["prev_hash"] == GENESIS
    assert rows[1]["prev_hash"] == rows[0]["anchor_hash"]
    assert all(r["anchor_hash"] == anchor_hash(r) for r in rows)  # read back exactly as hashed
    assert anchors.latest() == second
    result = verify_anchors(rows, [])
    assert result.head_hash == second["anchor_hash"]
    assert [p.kind for p in result.problems] == ["unknown server", "unknown server"]


def test_a_failed_insert_leaves_no_anchor(database: StoreDatabase) -> None:
    def broken(_fields: object) -> str:
        raise RuntimeError("hash failed")

    anchors = AnchorRepository(database, anchor_hash)
    anchors.append("a" * 16, "segment-000001.jsonl", 2, "1" * 64, 1.0)
    with pytest.raises(RuntimeError, match="hash failed"):
        AnchorRepository(database, broken).append("a" * 16, "s", 4, "2" * 64, 2.0)
    assert [r["anchor_seq"] for r in anchors.all()] == [1]
    assert anchors.append("a" * 16, "segment-000001.jsonl", 4, "2" * 64, 3.0)["anchor_seq"] == 2


def test_two_servers_anchoring_at_once_form_one_chain(db_factory: DbFactory) -> None:
    stores = [db_factory(), db_factory()]  # two connections: two servers on one store
    start = threading.Barrier(2)
    per_server = 40

    def anchor(k: int) -> None:
        repo = AnchorRepository(stores[k], anchor_hash)
        start.wait()
        for n in range(per_server):
            repo.append(f"{k:016d}", "segment-000001.jsonl", n + 1, f"{n:064x}", float(n))

    threads = [threading.Thread(target=anchor, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = AnchorRepository(db_factory(), anchor_hash).all()
    assert [r["anchor_seq"] for r in rows] == list(range(1, 2 * per_server + 1))
    prev = GENESIS
    for r in rows:  # no fork: each row's prev is the row before it
        assert r["prev_hash"] == prev
        assert r["anchor_hash"] == anchor_hash(r)
        prev = r["anchor_hash"]
    for k in (0, 1):  # each server's anchors in its own order
        mine = [r["checkpoint_seq"] for r in rows if r["key_id"] == f"{k:016d}"]
        assert mine == list(range(1, per_server + 1))
