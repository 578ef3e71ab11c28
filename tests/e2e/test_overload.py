"""Overload on a live server: a key over its rate gets ProvisionedThroughputExceededException,
requests beyond the in-flight ceiling get ThrottlingException at once, and both are recorded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from facegate.audit.log import iter_entries
from tests.e2e.conftest import StoreEnv
from tests.e2e.server import LiveServer

pytestmark = pytest.mark.slow  # a live server driven past its rate limits


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, store_env: StoreEnv) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("overload") / "data",
        workers=1,
        env={
            **store_env(),  # the selected backend (FACEGATE_TEST_BACKEND)
            "FACEGATE_RATE_LIMIT_RPS": "0.5",
            "FACEGATE_RATE_LIMIT_BURST": "3",
            "FACEGATE_MAX_INFLIGHT": "1",
        },
    )
    live.start()
    yield live
    live.stop()


def _client(server: LiveServer) -> Any:
    """A client that sends each request once (botocore retries throttling errors by default,
    and max_attempts counts retries, not attempts)."""
    return server.client(retries={"mode": "standard", "total_max_attempts": 1})


def _code(call: object) -> str:
    try:
        call()  # type: ignore[operator]
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "OK"


def test_a_key_over_its_rate_is_refused(limited: LiveServer) -> None:
    rek = _client(limited)
    codes = [_code(rek.list_collections) for _ in range(5)]
    assert codes[:3] == ["OK", "OK", "OK"]  # the burst
    assert codes[3:] == ["ProvisionedThroughputExceededException"] * 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = [
            e.record
            for e in iter_entries(limited.data_dir / "audit")
            if e.record.get("error_code") == "ProvisionedThroughputExceededException"
        ]
        if len(records) >= 2:
            break
        time.sleep(0.1)
    assert len(records) >= 2
    assert records[-1]["access_key_id"] == limited.credentials().access_key_id
    time.sleep(2.1)  # one token back at 0.5 per second
    assert _code(rek.list_collections) == "OK"


def test_beyond_the_ceiling_is_throttled_promptly(limited: LiveServer, samples: Path) -> None:
    time.sleep(6.5)  # refill the bucket: 3 requests allowed
    image = {"Bytes": (samples / "two_people.jpg").read_bytes()}

    client = _client(limited)

    def detect() -> tuple[str, float]:
        started = time.monotonic()
        code = _code(lambda: client.detect_faces(Image=image))
        return code, time.monotonic() - started

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: detect(), range(3)))
    codes = [code for code, _ in results]
    assert "OK" in codes
    throttled = [t for code, t in results if code == "ThrottlingException"]
    assert throttled, codes  # one request in flight at a time: the others are refused
    slowest_ok = max(t for code, t in results if code == "OK")
    assert max(throttled) < slowest_ok  # refused at once, not after waiting their turn
