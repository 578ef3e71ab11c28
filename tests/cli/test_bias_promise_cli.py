"""``facegate bias promise``: registered under ``bias``, bad input refused (exit 3) before any
work, an unknown rule refused by the parser. The fit and the nested check run on real faces in
tests/bias/test_promise.py; over all three data sets it takes minutes (bench/promise.py, whose
run wrote the shipped file's twin)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from facegate.cli import main


def test_a_missing_data_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    target = tmp_path / "promise.json"
    code = main(
        [
            "bias",
            "promise",
            "--data",
            str(tmp_path / "none"),
            "--out",
            str(target),
            "--no-progress",
        ],
        out=out,
    )
    assert code == 3
    err = capsys.readouterr().err
    assert err.startswith("facegate: ")
    assert "none" in err
    assert out.getvalue() == ""
    assert not target.exists()  # nothing written on failure


@pytest.mark.parametrize(
    ("option", "value"), [("--min-pairs", "0"), ("--cap", "0"), ("--cap", "nan"), ("--cap", "9")]
)
def test_bad_options_are_refused_before_any_work(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    code = main(["bias", "promise", option, value, "--no-progress"], out=out)
    assert code == 3
    assert option in capsys.readouterr().err


def test_an_unknown_rule_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bias", "promise", "--rule", "best"], out=io.StringIO())
    assert exc.value.code == 2
    assert "worst_resolved" in capsys.readouterr().err
