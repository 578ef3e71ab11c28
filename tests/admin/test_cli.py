"""``facegate operators|org|review`` over a data directory (no server)."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest

from facegate.cli import EXIT_BAD_INPUT, EXIT_OK, main
from facegate.config import Settings
from facegate.services import Services
from facegate.store.decisions import DecisionRecord
from facegate.store.reviews import PENDING, ReviewRecord
from tests.admin.conftest import HELD


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _operator(data: Path, operator_id: str, role: str = "reviewer") -> str:
    code, text = run(
        "operators",
        "create",
        operator_id,
        "--name",
        operator_id.title(),
        "--role",
        role,
        "--data-dir",
        str(data),
    )
    assert code == EXIT_OK
    match = re.search(r"token:\s+(fgop_[A-Za-z0-9_-]{40})\n", text)
    assert match, text
    return match.group(1)


def _review(data: Path, reviewers: int = 2) -> str:
    graph = Services.open(Settings(data_dir=data, engine_workers=1), start_engine=False)
    try:
        now = time.time()
        graph.decisions.insert(
            DecisionRecord(
                "dec-" + "1" * 20,
                now,
                "FGAKX",
                "acme",
                "SearchFacesByImage",
                "staff",
                "access_control",
                True,
                (),
                (),
                (),
                {},
            )
        )
        graph.reviews.insert(
            ReviewRecord(
                "rev-" + "a" * 20,
                "dec-" + "1" * 20,
                "SearchFacesByImage",
                "FGAKX",
                "acme",
                "0" * 64,
                reviewers,
                PENDING,
                json.dumps(HELD),
                1,
                now,
                now + 3600,
            )
        )
    finally:
        graph.close()
    return "rev-" + "a" * 20


def test_operators(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = _operator(data, "alice")
    code, text = run("operators", "list", "--data-dir", str(data))
    assert code == EXIT_OK
    assert re.match(r"alice\s+reviewer\s+active\s+Alice", text)
    assert token not in text
    code, text = run("operators", "list", "--format", "json", "--data-dir", str(data))
    assert json.loads(text)[0]["operator_id"] == "alice"
    assert run("operators", "disable", "alice", "--data-dir", str(data))[0] == EXIT_OK
    assert "disabled" in run("operators", "list", "--data-dir", str(data))[1]
    code, _ = run(
        "operators", "create", "alice", "--name", "A", "--role", "admin", "--data-dir", str(data)
    )
    assert code == EXIT_BAD_INPUT
    assert (
        "ResourceAlreadyExistsException: Operator alice already exists" in capsys.readouterr().err
    )
    assert run("operators", "disable", "nobody", "--data-dir", str(data))[0] == EXIT_BAD_INPUT


def test_org(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run(
        "org",
        "create",
        "seattle-pd",
        "--name",
        "Seattle PD",
        "--sector",
        "law_enforcement",
        "--use-case",
        "missing_persons",
        "--use-case",
        "investigation",
        "--country",
        "US",
        "--region",
        "US-WA",
        "--city",
        "seattle",
        "--data-dir",
        str(data),
    )
    assert code == EXIT_OK, capsys.readouterr().err
    assert "registered seattle-pd" in text
    assert "US/US-WA/seattle" in text
    assert "investigation,missing_persons" in text
    assert "seattle-pd" in run("org", "list", "--data-dir", str(data))[1]
    run(
        "keys",
        "create",
        "--org",
        "seattle-pd",
        "--use-case",
        "missing_persons",
        "--data-dir",
        str(data),
    )
    code, text = run("org", "show", "seattle-pd", "--format", "json", "--data-dir", str(data))
    shown = json.loads(text)
    assert shown["sector"] == "law_enforcement"
    assert [k["use_case"] for k in shown["keys"]] == ["missing_persons"]
    assert "secret" not in text
    assert run("org", "disable", "seattle-pd", "--data-dir", str(data))[0] == EXIT_OK
    assert (
        json.loads(
            run("org", "show", "seattle-pd", "--format", "json", "--data-dir", str(data))[1]
        )["active"]
        is False
    )
    code, _ = run(
        "org",
        "create",
        "x",
        "--name",
        "X",
        "--sector",
        "pirates",
        "--use-case",
        "research",
        "--data-dir",
        str(data),
    )
    assert code == EXIT_BAD_INPUT
    assert "Unknown sector 'pirates'" in capsys.readouterr().err
    assert run("org", "show", "ghost", "--data-dir", str(data))[0] == EXIT_BAD_INPUT


def test_review_needs_the_operators_own_token(
    data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FACEGATE_OPERATOR_TOKEN", raising=False)
    _operator(data, "alice")
    code, _ = run("review", "list", "--data-dir", str(data))
    assert code == EXIT_BAD_INPUT
    assert "set FACEGATE_OPERATOR_TOKEN or use --token-file" in capsys.readouterr().err
    monkeypatch.setenv("FACEGATE_OPERATOR_TOKEN", "fgop_" + "z" * 40)
    code, _ = run("review", "list", "--data-dir", str(data))
    assert code == EXIT_BAD_INPUT
    assert "UnrecognizedClientException" in capsys.readouterr().err
    code, _ = run("review", "list", "--token-file", str(data / "missing"), "--data-dir", str(data))
    assert code == EXIT_BAD_INPUT
    assert "cannot read the token" in capsys.readouterr().err


def test_two_person_review(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob = _operator(data, "alice"), _operator(data, "bob")
    review_id = _review(data)
    monkeypatch.setenv("FACEGATE_OPERATOR_TOKEN", alice)
    code, text = run("review", "list", "--data-dir", str(data))
    assert code == EXIT_OK
    assert review_id in text
    assert "0/2 confirmed" in text
    code, text = run("review", "show", review_id, "--data-dir", str(data))
    assert "candidate face  similarity  99.60" in text
    assert "image obama.jpg" in text
    code, text = run(
        "review", "confirm", review_id, "--note", "same person", "--data-dir", str(data)
    )
    assert code == EXIT_OK
    assert "pending (1 of 2 confirmations)" in text
    code, _ = run("review", "confirm", review_id, "--note", "again", "--data-dir", str(data))
    assert code == EXIT_BAD_INPUT
    assert "ConflictException: Operator alice has already reviewed" in capsys.readouterr().err
    token_file = tmp_path / "bob.token"
    token_file.write_text(bob + "\n")
    code, text = run(
        "review",
        "confirm",
        review_id,
        "--note",
        "agree",
        "--token-file",
        str(token_file),
        "--data-dir",
        str(data),
    )
    assert code == EXIT_OK
    assert "released (2 of 2 confirmations)" in text
    assert "vote confirm by bob" in text
    code, text = run(
        "review", "list", "--status", "released", "--format", "json", "--data-dir", str(data)
    )
    assert json.loads(text)[0]["status"] == "released"
