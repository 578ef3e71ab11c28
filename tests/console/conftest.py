"""Fixtures of the console's browser tests: one live server (with the human-review packs), its
operators with console passwords, and Debian's chromium driven by Playwright.

Screenshots of every page go to ``var/test-artefacts/console/`` (kept after the run)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
ARTEFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artefacts" / "console"
PACKS = "aws-public-safety-terms,eu-ai-act-art5"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Console:
    """The live server and the console's base URL."""

    server: LiveServer

    @property
    def url(self) -> str:
        return self.server.endpoint + "/console"


def set_password(server: LiveServer, operator_id: str, password: str = PASSWORD) -> None:
    exe = Path(sys.executable).with_name("facegate")
    done = subprocess.run(
        [
            str(exe),
            "operators",
            "set-password",
            operator_id,
            "--password-stdin",
            "--data-dir",
            str(server.data_dir),
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    server = LiveServer(
        tmp_path_factory.mktemp("console") / "data", workers=1,
        env={"FACEGATE_POLICY_PACKS": PACKS},
    )  # fmt: skip
    server.start()
    for operator_id, role in (
        ("root", "admin"), ("rev-one", "reviewer"), ("rev-two", "reviewer"), ("aud", "auditor"),
    ):  # fmt: skip
        server.facegate("operators", "create", operator_id, "--name", operator_id.title(),
                        "--role", role)  # fmt: skip
        set_password(server, operator_id)
    yield Console(server)
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module: Playwright's sync API runs an event loop in this thread
    while it is active, so it must stop before other modules' tests call ``asyncio.run``."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (tools/dev.py test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless=new"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (no cookies), 1280 px wide."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot of ``page`` as a test artefact."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(context: Any, console: Console, operator_id: str, password: str = PASSWORD) -> Any:
    """A page of ``context`` signed in as ``operator_id`` (on the overview)."""
    page = context.new_page()
    page.goto(console.url + "/login")
    page.get_by_label("Operator id").fill(operator_id)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/overview")
    return page
