"""Console passwords (scrypt), sessions (hashed ids, idle and absolute expiry) and the sign-in
throttle, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from facegate.admin.auth import hash_password, verify_password
from facegate.admin.service import AdminService
from facegate.console.sessions import LoginThrottle, SessionManager, session_sha256
from facegate.errors import InvalidParameterException
from facegate.governance import Registry
from facegate.store.db import Database
from facegate.store.decisions import DecisionRepository
from facegate.store.keys import KeyRepository
from facegate.store.operators import OperatorRepository, SessionRepository
from facegate.store.orgs import OrganisationRepository
from facegate.store.reviews import ReviewRepository
from facegate.wire.keys import KeyService, load_master_key


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_password_hash_has_its_parameters_and_a_random_salt() -> None:
    first, second = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert first.startswith("scrypt$32768$8$1$")
    assert first != second
    assert verify_password("correct horse battery", first)
    assert not verify_password("correct horse batterY", first)
    assert not verify_password("anything", None)
    assert not verify_password("anything", "md5$abc")
    with pytest.raises(InvalidParameterException, match="12-1024"):
        hash_password("short")


def test_check_password_through_the_admin_service(tmp_path: Path) -> None:
    db = Database(":memory:")
    clock = Clock()
    admin = AdminService(
        registry=Registry(
            OrganisationRepository(db),
            KeyService(KeyRepository(db), load_master_key(tmp_path, None)),
        ),
        operators=OperatorRepository(db),
        reviews=ReviewRepository(db),
        decisions=DecisionRepository(db),
        clock=clock,
    )
    admin.create_operator("alice", "Alice", "auditor")
    assert admin.check_password("alice", "whatever it is") is None  # no password yet
    admin.set_password("alice", "a long enough password")
    found = admin.check_password("alice", "a long enough password")
    assert found is not None
    assert found.role == "auditor"
    assert admin.check_password("alice", "a wrong password here") is None
    assert admin.check_password("nobody", "a long enough password") is None
    admin.disable_operator("alice")
    assert admin.check_password("alice", "a long enough password") is None


def test_sessions_store_only_hashes_and_expire() -> None:
    db = Database(":memory:")
    OperatorRepository(db)
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO operators (operator_id, display_name, role, token_sha256, created_at) "
            "VALUES ('bob', 'Bob', 'admin', 'x', 0)"
        )
    clock = Clock()
    repo = SessionRepository(db)
    sessions = SessionManager(repo, clock, idle_s=60, absolute_s=300)
    session_id, session = sessions.create("bob")
    assert len(session_id) == 43
    assert session.key == session_sha256(session_id)
    assert repo.get(session_id) is None  # stored under its hash only
    for _ in range(4):  # used every 50 s: stays alive until the absolute limit
        clock.now += 50
        assert sessions.resolve(session_id) is not None
    clock.now += 101
    assert sessions.resolve(session_id) is None  # 301 s after sign-in
    assert repo.get(session.key) is None
    other_id, _ = sessions.create("bob")
    clock.now += 61
    assert sessions.resolve(other_id) is None  # idle
    assert sessions.resolve(None) is None
    assert sessions.resolve("x" * 200) is None


def test_throttle_per_account_and_client_in_bounded_memory() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock, window_s=60, max_per_account=3, max_per_client=5, max_keys=10)
    for _ in range(3):
        assert throttle.allowed("alice", "10.0.0.1")
        throttle.failed("alice", "10.0.0.1")
    assert not throttle.allowed("alice", "10.0.0.2")  # the account is locked, from anywhere
    assert throttle.allowed("bob", "10.0.0.1")
    throttle.failed("bob", "10.0.0.1")
    throttle.failed("carol", "10.0.0.1")
    assert not throttle.allowed("dave", "10.0.0.1")  # the client is locked, for any account
    clock.now += 61
    assert throttle.allowed("alice", "10.0.0.1")
    for i in range(100):
        throttle.failed(f"user{i}", f"10.1.0.{i}")
    assert len(throttle) <= 10
