"""``facegate bias holdout``: registered under ``bias``, and bad input refused (exit 3). The
check itself runs on real faces in tests/bias/test_holdout.py; over all three data sets it takes
minutes (bench/holdout.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from facegate.cli import main


def test_a_missing_data_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    code = main(["bias", "holdout", "--data", str(tmp_path / "none"), "--no-progress"], out=out)
    assert code == 3
    err = capsys.readouterr().err
    assert err.startswith("facegate: ")
    assert "none" in err
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("option", "value"), [("--min-pairs", "0"), ("--cap", "0"), ("--cap", "nan"), ("--cap", "9")]
)
def test_bad_options_are_refused_before_any_work(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    code = main(["bias", "holdout", option, value, "--no-progress"], out=out)
    assert code == 3
    assert option in capsys.readouterr().err
