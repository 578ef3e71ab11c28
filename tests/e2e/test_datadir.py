"""Issue 18 item 14 end to end: ``facegate serve`` started under umask 022 keeps its data
directory private (0700, every file 0600: the SQLite file, -wal, -shm, audit segments,
HEAD.json, public.key, LOCK, the keys, the bootstrap credentials), while it runs and after
it stops; and an older, open data directory is fixed at start (and the fix recorded)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from facegate.audit.log import iter_entries
from tests.e2e.server import LiveServer
from tests.test_datadir import assert_private

pytestmark = pytest.mark.slow  # a server started under a permissive umask


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)  # the server process inherits it
    try:
        yield
    finally:
        os.umask(previous)


def test_a_served_data_directory_is_private(tmp_path: Path, umask_022: None, samples: Path) -> None:
    data = tmp_path / "data"
    live = LiveServer(data, workers=1)
    live.start()
    try:
        rek = live.client()
        rek.create_collection(CollectionId="private")
        rek.index_faces(
            CollectionId="private", Image={"Bytes": (samples / "obama.jpg").read_bytes()}
        )
        found = assert_private(data)
        expected = {"credentials", "master.key", "audit-signing.key", "facegate.sqlite3",
                    "facegate.sqlite3-wal", "facegate.sqlite3-shm", "audit/LOCK",
                    "audit/segment-000001.jsonl", "audit/public.key"}  # fmt: skip
        assert expected <= set(found)
    finally:
        live.stop()
    assert "audit/HEAD.json" in assert_private(data)  # the final checkpoint
    # an older facegate left it open: the next start closes it and says so in the chain
    for root, dirs, files in os.walk(data):
        for name in dirs:
            (Path(root) / name).chmod(0o755)
        for name in files:
            if name not in ("credentials", "master.key", "audit-signing.key"):
                (Path(root) / name).chmod(0o644)
    data.chmod(0o755)
    live.start()
    try:
        assert_private(data)
    finally:
        live.stop()
    fixed = [
        e.record
        for e in iter_entries(data / "audit")
        if e.record.get("action") == "datadir.permissions_fixed"
    ]
    assert len(fixed) == 1
    assert "facegate.sqlite3" in fixed[0]["details"]["paths"]
