"""One live server for the end-to-end tests of a session (models load once)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import LiveServer


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("e2e") / "data")
    live.start()
    yield live
    live.stop()


@pytest.fixture
def rek(server: LiveServer) -> Any:
    """A boto3 Rekognition client signed with the server's bootstrap key."""
    return server.client()


@pytest.fixture
def image(samples: Path) -> Any:
    def read(name: str) -> dict[str, bytes]:
        return {"Bytes": (samples / name).read_bytes()}

    return read
