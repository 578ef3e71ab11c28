"""``facegate policy test|explain|list`` through ``facegate.cli.main``."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest

from facegate.cli import main
from facegate.policy.loader import PACKS_DIR

MORATORIUM = "amazon-2020-police-moratorium"
DENY_FIXTURE = PACKS_DIR / MORATORIUM / "DENY" / "police-suspect-search-after-extension.json"
ALLOW_FIXTURE = (
    PACKS_DIR / "aws-public-safety-terms" / "ALLOW" / "police-missing-persons-search.json"
)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["policy", *argv], out=out)
    return code, out.getvalue()


def test_test_every_pack_passes() -> None:
    code, text = run("test")
    assert code == 0, text
    assert "FAIL" not in text
    assert "base + amazon-2020-police-moratorium\n" in text
    assert "base + il-bipa + amazon-2020-police-moratorium\n" in text
    assert re.search(
        r"^  PASS  DENY/police-suspect-search-after-extension\.json +Deny   "
        r"amazon-2020-police-moratorium\.forbid-police-face-comparison$",
        text,
        flags=re.MULTILINE,
    )
    assert re.search(r"^(\d+) checks, \1 passed, 0 failed\n\Z", text, flags=re.MULTILINE)


def test_test_one_pack() -> None:
    code, text = run("test", "il-bipa")
    assert code == 0
    assert "base + il-bipa\n" in text
    assert re.search(
        r"^  PASS  ALLOW/il-company-index-with-consent\.json +Allow  base\.permit-registered-use, "
        r"il-bipa\.permit-enrolment-retention  \[retain at most 1095 days\]$",
        text,
        flags=re.MULTILINE,
    )
    assert re.search(r"^(\d+) checks, \1 passed, 0 failed\n\Z", text, flags=re.MULTILINE)


def copy_packs(tmp_path: Path, *names: str) -> Path:
    packs = tmp_path / "packs"
    for name in ("base", MORATORIUM, *names):
        shutil.copytree(PACKS_DIR / name, packs / name)
    return packs


def test_test_reports_a_failing_fixture(tmp_path: Path) -> None:
    packs = copy_packs(tmp_path, "il-bipa")
    wrong = json.loads(
        (packs / "il-bipa" / "DENY" / "il-company-index-without-consent.json").read_text()
    )
    wrong["context"]["consent_ref"] = "release-1"  # now allowed: the DENY expectation fails
    (packs / "il-bipa" / "DENY" / "wrongly-expected.json").write_text(json.dumps(wrong))
    code, text = run("test", "il-bipa", "--packs-dir", str(packs))
    assert code == 1
    assert "  FAIL  DENY/wrongly-expected.json" in text
    assert "expected Deny, got Allow" in text
    assert "2 failed" in text


def test_test_a_pack_without_fixtures_fails(tmp_path: Path) -> None:
    packs = copy_packs(tmp_path)
    (packs / "empty").mkdir()
    shutil.copy(PACKS_DIR / "il-bipa" / "policies.cedar", packs / "empty" / "policies.cedar")
    code, text = run("test", "empty", "--packs-dir", str(packs))
    assert code == 1
    assert "empty: FAIL no fixtures" in text


def test_test_unknown_pack(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("test", "nope")
    assert code == 3
    err = capsys.readouterr().err
    assert "unknown policy pack 'nope'" in err
    assert "available: amazon-2020-police-moratorium, aws-public-safety-terms, base" in err


def test_explain_deny() -> None:
    code, text = run("explain", "--request", str(DENY_FIXTURE))
    assert code == 1
    assert text.startswith("decision     DENY  (dec-")
    assert "packs        base, amazon-2020-police-moratorium\n" in text
    assert "request      SearchUsersByImage on collection 'mugshots' of 'springfield-pd'" in text
    assert "  forbid amazon-2020-police-moratorium.forbid-police-face-comparison" in text
    assert (
        "    reason: Amazon's moratorium: no Rekognition face comparison by police departments"
        in text
    )
    assert "    source: AMZ-MORATORIUM [A5][A1][A3][A4]" in text
    assert "obligations  none\n" in text
    assert "errors       none\n" in text


def test_explain_allow_with_obligations() -> None:
    code, text = run(
        "explain",
        "--request",
        str(ALLOW_FIXTURE),
        "--packs",
        "aws-public-safety-terms,wa-rcw-43-386",
    )
    assert code == 0
    assert "decision     ALLOW" in text
    assert "packs        base, aws-public-safety-terms, wa-rcw-43-386\n" in text
    assert "  permit aws-public-safety-terms.permit-law-enforcement-comparison" in text
    assert "    obliges: min similarity 99%, human review by 1 reviewer" in text
    assert (
        "obligations  min similarity 99%, human review by 1 reviewer,"
        " at most 0.01 expected false candidates\n"
    ) in text


def test_explain_default_deny_and_errors(tmp_path: Path) -> None:
    doc = json.loads(DENY_FIXTURE.read_text())
    doc["context"]["purpose"] = "marketing"
    path = tmp_path / "request.json"
    path.write_text(json.dumps(doc))
    code, text = run("explain", "--request", str(path))
    assert code == 1
    assert "errors       unknown purpose 'marketing': not in the purpose vocabulary" in text


def test_explain_bad_request_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"description": 1}')
    code, text = run("explain", "--request", str(path))
    assert (code, text) == (3, "")
    assert f"facegate: {path}: description: must be a string" in capsys.readouterr().err
    code, _ = run("explain", "--request", str(tmp_path / "missing.json"))
    assert code == 3
    assert "cannot read" in capsys.readouterr().err


def test_list() -> None:
    code, text = run("list")
    assert code == 0
    assert text.startswith(
        "base (always active)\n  registered use case and tenant isolation\n"
        "  permit base.permit-registered-use\n"
    )
    assert (
        "amazon-2020-police-moratorium (active by default)\n"
        "  Amazon's moratorium on police face comparison\n" in text
    )
    assert "il-bipa\n  Illinois Biometric Information Privacy Act" in text
    assert "  forbid base.forbid-cross-organisation\n" in text
    assert "           obliges: retain at most 1095 days\n" in text
    assert "           source: EU-14-5 [E2]" in text
    assert text.rstrip().endswith("8 packs, 28 policies")
    assert "  permit base.default-expected-false-candidates\n" in text
    assert "obliges: at most 1 expected false candidates unless a permit says otherwise" in text
    assert "| " not in text


def test_list_source() -> None:
    code, text = run("list", "--source")
    assert code == 0
    assert '           | @id("il-bipa.forbid-enrolment-without-consent")' in text


def test_list_reports_a_broken_pack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    packs = copy_packs(tmp_path)
    (packs / "broken").mkdir()
    (packs / "broken" / "policies.cedar").write_text('@id("x")\n@source("y")\npermit (principal;\n')
    code, _ = run("list", "--packs-dir", str(packs))
    assert code == 3
    assert "pack 'broken'" in capsys.readouterr().err
