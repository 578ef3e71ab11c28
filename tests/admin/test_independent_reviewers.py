"""Two-person review means two people (issue 18, item 2): an operator who created an account, or
set a credential it holds, controls it, and so does one who did either within the cooling-off
period; a confirmation does not count when its voter holds a credential another operator set,
or when the voter and a reviewer who already confirmed are controlled by the same person
(transitively). Local actors (``cli``) control nobody here. On SQLite and PostgreSQL (the
``database`` fixture): the rule is read in the vote's own transaction."""

from __future__ import annotations

import asyncio
import html
import io
import json
import re
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from facegate.admin.service import AdminService
from facegate.app import create_app
from facegate.audit.log import iter_entries
from facegate.audit.record import EventRecord
from facegate.cli import EXIT_OK, main
from facegate.errors import AccessDeniedException, ConflictException, InvalidParameterException
from facegate.governance import Registry
from facegate.services import Services
from facegate.store.db import StoreDatabase
from facegate.store.decisions import DecisionRecord, DecisionRepository
from facegate.store.keys import KeyRepository
from facegate.store.operators import OperatorRepository
from facegate.store.orgs import OrganisationRepository
from facegate.store.reviews import (
    DEFAULT_COOLING_OFF_S,
    PENDING,
    NotIndependent,
    ReviewRecord,
    ReviewRepository,
)
from facegate.wire.keys import KeyService, load_master_key
from tests.admin.conftest import HELD, MakeReview, Tokens, bearer

DAY = 86400.0
PASSWORD = "correct horse battery staple"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class World:
    """An admin service over one store, a clock to move, the events it recorded."""

    def __init__(self, database: StoreDatabase, tmp_path: Path) -> None:
        self.clock = Clock()
        self.events: list[EventRecord] = []
        self.db = database
        self.cli = AdminService(
            registry=Registry(
                OrganisationRepository(database),
                KeyService(KeyRepository(database), load_master_key(tmp_path, None)),
            ),
            operators=OperatorRepository(database),
            reviews=ReviewRepository(database),
            decisions=DecisionRepository(database),
            clock=self.clock,
            events=self.events.append,
            actor="cli",
        )
        self.tokens: dict[str, str] = {}

    def operator(self, operator_id: str, role: str = "reviewer", by: str = "cli") -> None:
        """``by`` creates ``operator_id`` (an operator id: as through the admin API)."""
        _, self.tokens[operator_id] = self.cli.as_actor(by).create_operator(
            operator_id, operator_id.title(), role
        )

    def rotate(self, operator_id: str) -> None:
        """``operator_id`` replaces their own token."""
        record = self.cli.operators.get(operator_id)
        assert record is not None
        _, self.tokens[operator_id] = self.cli.rotate_own_token(record)

    def review(self, reviewers: int = 2) -> str:
        now = self.clock()
        decision_id = "dec-" + secrets.token_hex(10)
        self.cli.decisions.insert(
            DecisionRecord(decision_id, now, "FGAKTEST", "acme", "SearchFacesByImage", "staff",
                           "access_control", True, ("p",), (), (),
                           {"reviewers_required": reviewers})
        )  # fmt: skip
        review = ReviewRecord(
            review_id="rev-" + secrets.token_hex(10), decision_id=decision_id,
            operation="SearchFacesByImage", access_key_id="FGAKTEST", org_id="acme",
            params_sha256="0" * 64, reviewers_required=reviewers, status=PENDING,
            held_response=json.dumps(HELD), candidates=1, created_at=now,
            expires_at=now + 90 * DAY,
        )  # fmt: skip
        self.cli.reviews.insert(review)
        return review.review_id

    def vote(self, review_id: str, operator_id: str, verdict: str = "confirm") -> str:
        record = self.cli.operators.get(operator_id)
        assert record is not None
        detail = self.cli.as_actor(operator_id).vote(review_id, record, verdict, "checked")
        return detail.status

    def refused(self) -> list[dict[str, Any]]:
        return [e.details | {"subject": e.subject} for e in self.events
                if e.action == "review.refused"]  # fmt: skip


@pytest.fixture
def world(database: StoreDatabase, tmp_path: Path) -> World:
    w = World(database, tmp_path)
    w.operator("root", "admin")  # the first admin: made with the CLI
    return w


def test_an_admin_cannot_release_alone_with_an_account_they_created(world: World) -> None:
    """The reported attack: root creates mallory (POST /admin/operators) and votes with both."""
    world.operator("mallory", by="root")
    review_id = world.review()
    assert world.vote(review_id, "root") == PENDING
    with pytest.raises(NotIndependent, match="mallory holds a token root set"):
        world.vote(review_id, "mallory")
    # mallory replaces the token root knew (root could have done this, as mallory): root
    # created the account less than the cooling-off period ago, so it still controls it
    world.rotate("mallory")
    with pytest.raises(NotIndependent, match=r"root controls mallory: root created mallory"):
        world.vote(review_id, "mallory")
    assert world.cli.review(review_id).status == PENDING
    assert [r["reason"] for r in world.refused()] == [
        "credential_set_by_another", "shared_controller",
    ]  # fmt: skip
    assert world.refused()[1]["controllers"] == ["root"]
    assert world.refused()[1]["subject"] == review_id
    # after the cooling-off period, holding only its own credentials, mallory is a person
    world.clock.now += DEFAULT_COOLING_OFF_S + 1
    assert world.vote(review_id, "mallory") == "released"


def test_the_order_of_the_votes_does_not_matter(world: World) -> None:
    world.operator("mallory", by="root")
    world.rotate("mallory")
    review_id = world.review()
    assert world.vote(review_id, "mallory") == PENDING
    with pytest.raises(NotIndependent, match="root controls mallory"):
        world.vote(review_id, "root")


def test_two_accounts_one_admin_created_are_one_person(world: World) -> None:
    world.operator("bob", by="root")
    world.operator("carol", by="root")
    world.rotate("bob")
    world.rotate("carol")
    review_id = world.review()
    assert world.vote(review_id, "bob") == PENDING
    with pytest.raises(NotIndependent, match="root controls both: root created carol"):
        world.vote(review_id, "carol")


def test_chains_are_followed(world: World) -> None:
    """root creates bob, bob creates carol: root controls carol through bob."""
    world.operator("bob", role="admin", by="root")
    world.rotate("bob")
    world.operator("carol", by="bob")
    world.rotate("carol")
    review_id = world.review()
    assert world.vote(review_id, "root") == PENDING
    with pytest.raises(NotIndependent, match=r"root created bob.*bob created carol"):
        world.vote(review_id, "carol")
    # an independent second person may confirm
    world.operator("dave")
    assert world.vote(review_id, "dave") == "released"


def test_a_password_another_operator_set_is_known_to_them(world: World) -> None:
    world.operator("carol")  # made by the CLI: nobody controls it
    world.cli.as_actor("root").set_password("carol", PASSWORD)
    review_id = world.review()
    assert world.vote(review_id, "root") == PENDING
    with pytest.raises(NotIndependent, match="carol holds a password root set"):
        world.vote(review_id, "carol")
    world.clock.now += 30 * DAY  # held credentials count whatever their age
    with pytest.raises(NotIndependent, match="carol holds a password root set"):
        world.vote(review_id, "carol")
    world.cli.change_own_password("carol", PASSWORD, PASSWORD + " again")
    assert world.vote(review_id, "carol") == "released"


def test_a_reset_within_the_cooling_off_period_still_controls(world: World) -> None:
    world.operator("carol")
    world.cli.as_actor("root").set_password("carol", PASSWORD)
    world.cli.change_own_password("carol", PASSWORD, PASSWORD + " again")  # as carol (or root!)
    review_id = world.review()
    assert world.vote(review_id, "carol") == PENDING
    with pytest.raises(NotIndependent, match="root set carol's password"):
        world.vote(review_id, "root")


def test_accounts_made_with_the_cli_are_independent(world: World) -> None:
    """The data directory's administrator (``cli``) is no operator account: two reviewers it
    created release a review (they can change the store directly anyway)."""
    world.operator("alice")
    world.operator("bob")
    world.cli.set_password("alice", PASSWORD)  # by cli
    review_id = world.review()
    assert world.vote(review_id, "alice") == PENDING
    assert world.vote(review_id, "bob") == "released"
    assert world.refused() == []


def test_a_controlled_account_may_still_reject(world: World) -> None:
    world.operator("mallory", by="root")
    review_id = world.review()
    assert world.vote(review_id, "root") == PENDING
    assert world.vote(review_id, "mallory", "reject") == "rejected"


def test_a_disabled_controller_still_knows_the_token(world: World) -> None:
    world.operator("boss", role="admin", by="root")
    world.rotate("boss")
    world.operator("mallory", by="boss")
    world.cli.disable_operator("boss")
    world.operator("dave")
    review_id = world.review()
    assert world.vote(review_id, "dave") == PENDING
    with pytest.raises(NotIndependent, match="mallory holds a token boss set"):
        world.vote(review_id, "mallory")


def test_a_single_reviewer_review_needs_own_credentials(world: World) -> None:
    world.operator("mallory", by="root")
    review_id = world.review(reviewers=1)
    with pytest.raises(NotIndependent):
        world.vote(review_id, "mallory")
    world.rotate("mallory")
    assert world.vote(review_id, "mallory") == "released"  # nobody else confirmed


def test_cooling_off_is_configurable(world: World) -> None:
    world.cli.cooling_off_s = 0.0  # only credentials still held count
    world.operator("mallory", by="root")
    world.rotate("mallory")
    review_id = world.review()
    assert world.vote(review_id, "root") == PENDING
    assert world.vote(review_id, "mallory") == "released"


def test_control_is_recorded_and_shown(world: World) -> None:
    world.operator("mallory", by="root")
    record = world.cli.operators.get("mallory")
    assert record is not None
    assert (record.created_by, record.token_set_by, record.password_set_by) == ("root", "root", "")
    control = world.cli.control("mallory")
    assert control.controllers == {"root"}
    assert [link.describe()[:24] for link in control.held] == ["mallory holds a token ro"]
    world.rotate("mallory")
    record = world.cli.operators.get("mallory")
    assert record is not None
    assert record.token_set_by == "mallory"
    assert world.cli.control("mallory").held == ()


def test_own_token_and_password_changes(world: World) -> None:
    old = world.tokens["root"]
    world.rotate("root")
    assert world.tokens["root"] != old
    assert world.cli.operators.by_token(__import__("hashlib").sha256(old.encode()).hexdigest()) \
        is None  # fmt: skip
    world.cli.set_password("root", PASSWORD)
    with pytest.raises(AccessDeniedException, match="current password is wrong"):
        world.cli.change_own_password("root", "not the password", PASSWORD + " x")
    with pytest.raises(InvalidParameterException, match="differ"):
        world.cli.change_own_password("root", PASSWORD, PASSWORD)
    world.cli.change_own_password("root", PASSWORD, PASSWORD + " x")
    assert world.cli.check_password("root", PASSWORD + " x") is not None
    assert [e.action for e in world.events if e.subject == "root"][-3:] == [
        "operator.rotate_token", "operator.set_password", "operator.set_password",
    ]  # fmt: skip
    assert world.events[-1].actor == "root"  # changed by root themselves


def test_local_actor_names_are_reserved(world: World) -> None:
    for name in ("cli", "serve", "server", "sweeper"):
        with pytest.raises(InvalidParameterException, match="reserved"):
            world.cli.create_operator(name, "X", "reviewer")


def test_refusals_are_conflicts(world: World) -> None:
    assert issubclass(NotIndependent, ConflictException)


# --- every path: the admin API, the console, the CLI ---------------------------------------------


def test_over_the_admin_api(
    client: TestClient, tokens: Tokens, make_review: MakeReview, services: Services
) -> None:
    """root creates mallory with POST /admin/operators and votes with both: refused (409),
    also after mallory replaced the token (POST /admin/whoami/token); an independent reviewer
    (alice, made by the server's administrator) releases it."""
    created = client.post(
        "/admin/operators",
        json={"operator_id": "mallory", "display_name": "Mallory", "role": "reviewer"},
        headers=bearer(tokens.admin),
    )
    assert created.status_code == 201, created.text
    assert created.json()["created_by"] == "root"
    mallory = created.json()["token"]
    review_id = make_review().review_id
    note = {"note": "same person"}
    first = client.post(f"/admin/reviews/{review_id}/confirm", json=note,
                        headers=bearer(tokens.admin))  # fmt: skip
    assert first.status_code == 200, first.text
    refused = client.post(f"/admin/reviews/{review_id}/confirm", json=note,
                          headers=bearer(mallory))  # fmt: skip
    assert refused.status_code == 409
    assert "mallory holds a token root set" in refused.json()["error"]
    rotated = client.post("/admin/whoami/token", json={"note": "my own"}, headers=bearer(mallory))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["token_set_by"] == "mallory"
    assert client.get("/admin/whoami", headers=bearer(mallory)).status_code == 401
    mallory = rotated.json()["token"]
    again = client.post(f"/admin/reviews/{review_id}/confirm", json=note, headers=bearer(mallory))
    assert again.status_code == 409
    assert "root controls mallory: root created mallory" in again.json()["error"]
    assert "cooling-off period (7 days)" in again.json()["error"]
    released = client.post(f"/admin/reviews/{review_id}/confirm", json=note,
                           headers=bearer(tokens.alice))  # fmt: skip
    assert released.json()["status"] == "released"
    actions = [
        (e.record.get("action"), e.record.get("details", {}).get("reason"))
        for e in iter_entries(services.settings.audit_dir)
        if e.record.get("kind") in ("review", "registry")
    ]
    assert ("review.refused", "credential_set_by_another") in actions
    assert ("review.refused", "shared_controller") in actions
    assert ("operator.rotate_token", None) in actions


async def _console_vote(services: Services, operator_id: str, review_id: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(services), client=("192.0.2.20", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://c.test") as http:
        form = await http.get("/console/login")
        login = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert login is not None
        signed = await http.post(
            "/console/login",
            data={"csrf_token": login.group(1), "operator_id": operator_id, "password": PASSWORD},
        )
        assert signed.status_code == 303, signed.text
        page = await http.get("/console/account")
        assert "Your confirmations do not count yet" in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        return await http.post(
            f"/console/reviews/{review_id}/vote",
            data={"csrf_token": csrf.group(1), "verdict": "confirm", "note": "same person"},
        )


def test_in_the_console(
    services: Services, tokens: Tokens, make_review: MakeReview, admin: AdminService
) -> None:
    """mallory signs in with a password of her own choosing, but holds the token root gave
    her: her confirmation in the console is refused too."""
    admin.as_actor("root").create_operator("mallory", "Mallory", "reviewer")
    admin.set_password("mallory", PASSWORD)  # the server's administrator
    review_id = make_review().review_id
    root = admin.operators.get("root")
    assert root is not None
    admin.as_actor("root").vote(review_id, root, "confirm", "checked")
    response = asyncio.run(_console_vote(services, "mallory", review_id))
    assert response.status_code == 409
    assert "holds a token root set" in html.unescape(response.text)
    assert admin.review(review_id).status == PENDING


@pytest.mark.slow
def test_change_your_own_console_password(services: Services, admin: AdminService) -> None:
    admin.create_operator("carol", "Carol", "reviewer")
    admin.set_password("carol", PASSWORD)  # by the server's administrator

    async def scenario() -> tuple[int, str, int, int]:
        transport = httpx.ASGITransport(app=create_app(services), client=("192.0.2.30", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://c.test") as http:
            form = await http.get("/console/login")
            login = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert login is not None
            await http.post(
                "/console/login",
                data={"csrf_token": login.group(1), "operator_id": "carol", "password": PASSWORD},
            )
            page = await http.get("/console/account")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert csrf is not None
            fields = {
                "csrf_token": csrf.group(1),
                "current_password": "wrong " * 3,
                "new_password": PASSWORD + "!",
                "new_password_again": PASSWORD + "!",
            }
            wrong = await http.post("/console/account/password", data=fields)
            fields["current_password"] = PASSWORD
            changed = await http.post("/console/account/password", data=fields)
            after = await http.get("/console/account")  # the new session works
            return wrong.status_code, changed.headers.get("location", ""), after.status_code, \
                changed.status_code  # fmt: skip

    wrong, location, after, changed = asyncio.run(scenario())
    assert wrong == 403
    assert (changed, location, after) == (303, "/console/account?changed=1", 200)
    record = admin.operators.get("carol")
    assert record is not None
    assert record.password_set_by == "carol"
    assert admin.check_password("carol", PASSWORD + "!") is not None


def test_cli_rotate_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    out = io.StringIO()
    assert main(["operators", "create", "ann", "--name", "Ann", "--role", "reviewer",
                 "--data-dir", str(data)], out=out) == EXIT_OK  # fmt: skip
    token = re.search(r"(fgop_[A-Za-z0-9_-]{40})", out.getvalue())
    assert token is not None
    monkeypatch.setenv("FACEGATE_OPERATOR_TOKEN", token.group(1))
    out = io.StringIO()
    assert main(["review", "rotate-token", "--data-dir", str(data)], out=out) == EXIT_OK
    new = re.search(r"new token for ann: (fgop_[A-Za-z0-9_-]{40})", out.getvalue())
    assert new is not None
    assert main(["review", "list", "--data-dir", str(data)], out=io.StringIO()) != EXIT_OK
    monkeypatch.setenv("FACEGATE_OPERATOR_TOKEN", new.group(1))
    assert main(["review", "list", "--data-dir", str(data)], out=io.StringIO()) == EXIT_OK


def test_cli_confirmation_is_refused_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from facegate.admin.service import over_services
    from facegate.config import Settings
    from tests.admin.test_cli import _review

    data = tmp_path / "data"
    graph = Services.open(Settings(data_dir=data, engine_workers=1), start_engine=False)
    try:
        admin = over_services(graph)
        _, root_token = admin.create_operator("root", "Root", "admin")
        _, mallory = admin.as_actor("root").create_operator("mallory", "Mallory", "reviewer")
    finally:
        graph.close()
    review_id = _review(data)
    monkeypatch.setenv("FACEGATE_OPERATOR_TOKEN", root_token)
    args = ["review", "confirm", review_id, "--note", "checked", "--data-dir", str(data)]
    assert main(args, out=io.StringIO()) == EXIT_OK
    monkeypatch.setenv("FACEGATE_OPERATOR_TOKEN", mallory)
    assert main(args, out=io.StringIO()) != EXIT_OK
    assert "ConflictException: Operator mallory's confirmation cannot count" in (
        capsys.readouterr().err
    )
