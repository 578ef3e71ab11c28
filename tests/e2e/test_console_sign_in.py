"""Concurrent console sign-ins against a live server (issue 18, item 12): 40 wrong passwords
for one account at once are never more than the throttle's 5 checked attempts, and the right
password afterwards is refused; a burst of sign-ins for random accounts does not stop an
authenticated admin API call from being answered."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from facegate.audit.log import iter_entries
from tests.admin.live import create_operator
from tests.console.conftest import PASSWORD, set_password
from tests.e2e.server import LiveServer

pytestmark = pytest.mark.slow  # a live server hashing passwords for concurrent sign-ins


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("sign-in") / "data", workers=1)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _sign_in(server: LiveServer, operator_id: str, password: str) -> int:
    with httpx.Client(base_url=server.endpoint, timeout=60) as http:
        form = http.get("/console/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        return http.post(
            "/console/login",
            data={"csrf_token": token.group(1), "operator_id": operator_id, "password": password},
        ).status_code


def _failures(server: LiveServer, operator_id: str) -> int:
    # a console event is appended before the answer is sent: all are in the log by now
    return sum(
        1
        for e in iter_entries(server.data_dir / "audit")
        if e.record.get("action") == "console.sign_in_failed"
        and e.record.get("subject") == operator_id
    )


def test_forty_wrong_passwords_at_once(live: LiveServer) -> None:
    create_operator(live, "alice", "reviewer")
    set_password(live, "alice")
    with ThreadPoolExecutor(40) as pool:
        statuses = list(
            pool.map(lambda i: _sign_in(live, "alice", f"wrong password {i:04d}"), range(40))
        )
    assert statuses.count(429) >= 35
    assert statuses.count(401) + statuses.count(503) == 40 - statuses.count(429)
    assert _failures(live, "alice") <= 5
    assert _sign_in(live, "alice", PASSWORD) == 429


def test_a_burst_of_sign_ins_does_not_stall_the_admin_api(live: LiveServer) -> None:
    token = create_operator(live, "root-" + uuid.uuid4().hex[:6], "admin")
    with ThreadPoolExecutor(100) as pool:
        burst = [
            pool.submit(_sign_in, live, "nobody-" + uuid.uuid4().hex[:8], "guess" * 4)
            for _ in range(100)
        ]
        whoami = httpx.get(
            live.endpoint + "/admin/whoami",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        statuses = [f.result() for f in burst]
    assert whoami.status_code == 200
    assert set(statuses) <= {401, 429, 503}
