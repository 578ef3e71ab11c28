"""The console's sign-in under concurrency (issue 18, item 12): at most the throttle's limit of
attempts is ever checked, however many arrive at once; password hashing runs in a few slots and
refuses the excess at once, so a flood of sign-ins cannot stall other requests. In process
(httpx over ASGI, a fixed client address), deterministic: the password check is held until the
test lets it go."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from facegate.admin.service import AdminService, over_services
from facegate.app import create_app
from facegate.config import Settings
from facegate.console import routes as console_routes
from facegate.console.sessions import LoginThrottle, SlotsBusy, WorkSlots
from facegate.services import Services

PASSWORD = "correct horse battery staple"
CLIENT = ("192.0.2.10", 40000)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    graph = Services.open(Settings(data_dir=tmp_path / "data", engine_workers=1),
                          start_engine=False)  # fmt: skip
    admin = over_services(graph)
    admin.create_operator("alice", "Alice", "reviewer")
    admin.set_password("alice", PASSWORD)
    yield graph
    graph.close()


class Checks:
    """Counts (and optionally holds) ``AdminService.check_password`` calls."""

    def __init__(self, hold: bool) -> None:
        self.calls = 0
        self.running = 0
        self.most = 0
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self._lock = threading.Lock()

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def check(admin: AdminService, operator_id: str, password: str) -> Any:
            with self._lock:
                self.calls += 1
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                self.release.wait(timeout=30)
                return original(admin, operator_id, password)
            finally:
                with self._lock:
                    self.running -= 1

        return check


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Checks:
    counter = Checks(hold=getattr(request, "param", False))
    monkeypatch.setattr(AdminService, "check_password", counter.wrap(AdminService.check_password))
    return counter


async def _sign_in(http: httpx.AsyncClient, operator_id: str, password: str) -> int:
    form = await http.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    response = await http.post(
        "/console/login",
        data={"csrf_token": token.group(1), "operator_id": operator_id, "password": password},
    )
    return response.status_code


def _client(services: Services) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(services), client=CLIENT)
    return httpx.AsyncClient(transport=transport, base_url="http://console.test")


@pytest.mark.parametrize("checks", [True], indirect=True)
@pytest.mark.parametrize("slots", [64, console_routes.HASH_SLOTS])
def test_concurrent_wrong_passwords_check_at_most_the_limit(
    services: Services, checks: Checks, monkeypatch: pytest.MonkeyPatch, slots: int
) -> None:
    """40 wrong passwords at once (every check held until the others are answered): 5
    attempts accepted (checked, or refused as busy when the hashing slots are full), 35
    throttled; then the right password is refused too."""
    monkeypatch.setattr(console_routes, "HASH_SLOTS", slots)
    checked = min(5, slots)

    async def scenario() -> tuple[list[int], int]:
        async with _client(services) as http:
            tasks = [
                asyncio.create_task(_sign_in(http, "alice", f"wrong password {i:04d}"))
                for i in range(40)
            ]
            try:
                deadline = time.monotonic() + 30
                while sum(t.done() for t in tasks) < 40 - checked:
                    assert time.monotonic() < deadline, "the other attempts were not answered"
                    await asyncio.sleep(0.01)
            finally:
                checks.release.set()
            statuses = list(await asyncio.gather(*tasks))
            return statuses, await _sign_in(http, "alice", PASSWORD)

    statuses, right = asyncio.run(scenario())
    assert checks.calls == checked
    assert sorted(statuses) == [401] * checked + [429] * 35 + [503] * (5 - checked)
    assert right == 429


@pytest.mark.parametrize("checks", [True], indirect=True)
def test_hashing_is_bounded_and_the_excess_refused_at_once(
    services: Services, checks: Checks
) -> None:
    """10 sign-ins (unknown accounts: the same work) while 2 hashes are held: 8 refused at once
    with 503, and an authenticated admin API call is answered meanwhile."""
    token = over_services(services).create_operator("root", "Root", "admin")[1]

    async def scenario() -> tuple[list[int], int, list[int]]:
        async with _client(services) as http:
            tasks = [
                asyncio.create_task(_sign_in(http, f"nobody-{uuid.uuid4().hex[:8]}", "guess" * 3))
                for _ in range(10)
            ]
            try:
                deadline = time.monotonic() + 20
                while sum(t.done() for t in tasks) < 8 and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                early = [t.result() for t in tasks if t.done()]
                whoami = await asyncio.wait_for(
                    http.get("/admin/whoami", headers={"Authorization": f"Bearer {token}"}),
                    timeout=20,
                )
            finally:
                checks.release.set()
            return early, whoami.status_code, list(await asyncio.gather(*tasks))

    early, whoami, statuses = asyncio.run(scenario())
    assert early == [503] * 8
    assert whoami == 200
    assert sorted(statuses) == [401] * 2 + [503] * 8
    assert checks.most == 2
    assert checks.calls == 2


def test_work_slots_refuse_at_once_and_free_when_the_work_ends() -> None:
    slots_taken = WorkSlots(1)

    async def hold() -> None:
        gate = threading.Event()
        first = asyncio.create_task(slots_taken.run(gate.wait, 10))
        await asyncio.sleep(0.05)
        with pytest.raises(SlotsBusy):
            await slots_taken.run(lambda: None)
        gate.set()
        await first
        await slots_taken.run(lambda: None)  # free again

    asyncio.run(hold())
    assert slots_taken.busy == 0


def test_throttle_reserves_atomically_across_threads() -> None:
    throttle = LoginThrottle(time.time, max_per_account=5, max_per_client=20)
    barrier = threading.Barrier(40)
    results: list[bool] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        barrier.wait()
        got = throttle.reserve("alice", f"10.0.0.{i}")
        with lock:
            results.append(got)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 5
    # per address: 20 attempts from one address on 40 accounts
    by_client = [throttle.reserve(f"user{i}", "10.9.9.9") for i in range(40)]
    assert by_client == [True] * 20 + [False] * 20
    # a success clears the account and does not count against its address
    throttle.succeeded("user0", "10.9.9.9")
    assert throttle.reserve("user0", "10.9.9.9")
