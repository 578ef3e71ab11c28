"""A real facegate server in a subprocess on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import configparser
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import httpx
from botocore.config import Config

from facegate.audit.log import iter_entries


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Credentials:
    access_key_id: str
    secret_access_key: str


class LiveServer:
    """``facegate serve`` over a data directory; restartable; stops on ``stop()``.

    With ``own_process_group`` the server runs in a session of its own, so ``kill()`` can SIGKILL
    it together with its engine worker processes, as ``kill -9 -PGID`` would.
    """

    def __init__(
        self,
        data_dir: Path,
        workers: int = 2,
        env: dict[str, str] | None = None,
        own_process_group: bool = False,
    ):
        self.data_dir = data_dir
        self.workers = workers
        self.own_process_group = own_process_group
        self.port = free_port()
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def backend(self) -> str:
        """The store backend: ``postgres`` with ``FACEGATE_DATABASE_URL`` in ``env``, else
        ``sqlite`` (the file in the data directory)."""
        return "postgres" if self.env.get("FACEGATE_DATABASE_URL") else "sqlite"

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """``os.environ`` with this server's ``env`` added, for in-process ``facegate.cli.main``
        calls that must open the same store (e.g. ``FACEGATE_DATABASE_URL``)."""
        with mock.patch.dict(os.environ, self.env):
            yield

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120.0) -> None:
        exe = Path(sys.executable).with_name("facegate")
        args = ["serve", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        args += ["--workers", str(self.workers)]
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [str(exe), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=self.own_process_group,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.endpoint}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become healthy in time")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL the server without warning (a crash); ``start()`` restarts it on the same data.

        With ``own_process_group`` the whole process group (server and engine workers) is killed
        at once; otherwise only the server process.
        """
        if self.process is None:
            return
        if self.own_process_group:
            with contextlib.suppress(ProcessLookupError):  # the group is already gone
                os.killpg(self.process.pid, signal.SIGKILL)
        else:
            self.process.kill()
        self.process.wait()
        self.process = None

    def credentials(self) -> Credentials:
        parser = configparser.ConfigParser()
        parser.read(self.data_dir / "credentials")
        section = parser["facegate"]
        return Credentials(section["aws_access_key_id"], section["aws_secret_access_key"])

    def client(
        self,
        creds: Credentials | None = None,
        *,
        retries: dict[str, Any] | None = None,
        **config: Any,
    ) -> Any:
        """A boto3 Rekognition client for this server. ``retries``: botocore's retry settings
        (default one retry, legacy mode; ``{"mode": "standard", "total_max_attempts": 1}``
        sends each request once)."""
        creds = creds or self.credentials()
        return boto3.client(
            "rekognition",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            config=Config(retries=retries or {"max_attempts": 1}, **config),
        )

    def facegate(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run ``facegate ARGS --data-dir DATA`` against this server's data directory (e.g.
        ``operators create``); returns stdout, raises ``RuntimeError`` on a non-zero exit."""
        exe = Path(sys.executable).with_name("facegate")
        done = subprocess.run(
            [str(exe), *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env, **(env or {})},
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"facegate {' '.join(args[:2])}: exit {done.returncode}: {done.stderr}"
            )
        return done.stdout


def audit_record(server: LiveServer, decision_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """The audit record of the request that got ``decision_id`` (waits for the append)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for entry in iter_entries(server.data_dir / "audit"):
            if entry.record.get("decision_id") == decision_id:
                return dict(entry.record)
        time.sleep(0.1)
    raise AssertionError(f"no audit record of {decision_id}")
