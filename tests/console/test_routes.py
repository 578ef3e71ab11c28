"""The console's form reading (:func:`facegate.console.routes.read_form`): a form above
``MAX_FORM_BYTES`` is refused with 413 and the sign-in page, whether its length is declared or
it is streamed without one (:func:`facegate.bodies.read_bounded`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from facegate.app import create_app
from facegate.config import Settings
from facegate.console.routes import MAX_FORM_BYTES
from facegate.services import Services


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    graph = Services.open(Settings(data_dir=tmp_path / "data", engine_workers=1),
                          start_engine=False)  # fmt: skip
    yield graph
    graph.close()


async def _post(services: Services, body: bytes, declared: bool) -> httpx.Response:
    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    transport = httpx.ASGITransport(app=create_app(services), client=("192.0.2.10", 40000))
    headers = {"content-type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as http:
        content = body if declared else stream()
        return await http.post("/console/login", content=content, headers=headers)


@pytest.mark.parametrize("declared", [True, False])
def test_a_form_above_the_limit_is_refused_with_413(services: Services, declared: bool) -> None:
    body = b"operator_id=" + b"a" * MAX_FORM_BYTES
    response = asyncio.run(_post(services, body, declared))
    assert response.status_code == 413
    assert "The form is too large." in response.text


def test_a_form_within_the_limit_is_read(services: Services) -> None:
    body = b"operator_id=" + b"a" * (MAX_FORM_BYTES - 100)
    response = asyncio.run(_post(services, body, declared=False))
    assert response.status_code == 403  # read, then refused for its missing CSRF token
