"""``facegate bias classifier``: the text table, the JSON report and bad input (exit 3)."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from facegate.bias.report_html import render_html
from facegate.cli.bias_classifier import register
from tests.bias.test_report_html import assert_escaped, with_evil

HEADER = "image,truth,predicted,confidence,skin,gender"


def run(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="facegate")
    register(parser.add_subparsers(dest="bias_command", required=True))
    args = parser.parse_args(["classifier", *argv])
    out = io.StringIO()
    code: int = args.func(args, out)
    return code, out.getvalue()


def ppb_like(path: Path) -> Path:
    """Gender Shades IBM counts [B2]: DF 94/271, DM 38/318, LF 21/296, LM 1/385, plus 2
    rows without a skin label (1 wrong) and a tiny group "unsure x female" (5 rows)."""
    lines = [HEADER]
    spec = [
        ("darker", "female", 271, 94),
        ("darker", "male", 318, 38),
        ("lighter", "female", 296, 21),
        ("lighter", "male", 385, 1),
        ("", "male", 2, 1),
        ("unsure", "female", 5, 0),
    ]
    i = 0
    for skin, gender, n, wrong in spec:
        other = "male" if gender == "female" else "female"
        for k in range(n):
            i += 1
            lines.append(f"p{i}.jpg,{gender},{other if k < wrong else gender},,{skin},{gender}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_table_and_json(tmp_path: Path) -> None:
    csv_path = ppb_like(tmp_path / "ibm.csv")
    out_json = tmp_path / "report.json"
    code, text = run(
        str(csv_path), "--group-by", "skin,gender", "--list-errors", "3", "--json", str(out_json)
    )
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0].startswith("command: facegate bias classifier ")
    assert "--group-by skin,gender" in lines[0]
    assert "--min-n 30" in lines[0]
    sha = hashlib.sha256(csv_path.read_bytes()).hexdigest()
    assert f"(1277 rows, sha256 {sha})" in lines[1]
    row = next(line for line in lines if line.strip().startswith("darker x female"))
    assert row.split()[3:6] == ["271", "94", "34.69%"]
    small = next(line for line in lines if line.strip().startswith("unsure x female"))
    assert "0.00%*" in small
    assert "too small (< 30 rows), not in the summary: unsure x female" in text
    unl = next(line for line in lines if line.strip().startswith("(unlabelled)"))
    assert unl.split()[1:4] == ["2", "1", "50.00%"]
    assert "darker x female female -> female 177, female -> male 94" in " ".join(text.split())
    assert "worst darker x female 34.69%; best lighter x male 0.26%" in text
    assert "Fisher exact test, darker x female vs lighter x male: two-sided p = " in text
    assert "Error rate by single attribute: gender" in text
    assert "Misclassified rows: 155 (first 3 listed)" in text

    report = json.loads(out_json.read_text())
    assert report["kind"] == "classifier"
    assert report["command"] == lines[0].removeprefix("command: ")
    assert report["inputs"] == [{"path": str(csv_path), "sha256": sha, "rows": 1277}]
    inter = report["intersectional"]
    df = next(g for g in inter["groups"] if g["group"] == "darker x female")
    assert (df["n"], df["errors"], df["too_small"]) == (271, 94, False)
    assert df["error_rate"] == pytest.approx(94 / 271)
    assert df["ci_low"] < 0.347 < df["ci_high"]
    assert inter["unlabelled"]["n"] == 2
    assert inter["overall"]["n"] == 1277
    assert inter["overall"]["errors"] == 155
    assert inter["summary"]["too_small"] == ["unsure x female"]
    assert inter["summary"]["fisher"]["best"] == "lighter x male"
    assert [t["attributes"] for t in report["marginals"]] == [["skin"], ["gender"]]
    assert len(report["listed_errors"]) == 3
    assert report["listed_errors"][0] == {
        "line": 2,
        "image": "p1.jpg",
        "group": "darker x female",
        "truth": "female",
        "predicted": "male",
    }


def bad(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "bad.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "argv", "message"),
    [
        (f"{HEADER}\n", ["--group-by", "race"], "line 1: missing column(s) race"),
        ("image,truth,gender\na,f,f\n", [], "line 1: missing column(s) predicted"),
        (f"{HEADER}\na,f,f,,x,f\nb,,f,,x,f\n", ["--group-by", "skin"], "line 3: empty label"),
        (f"{HEADER}\na,f,f,,x\n", [], "line 2: expected 6 fields, got 5"),
        (f"{HEADER}\na,f,f,,x,f\na,f,f,,x,{'y' * 70_000}\n", [], "line 3: line longer than"),
    ],
)
def test_bad_input_exits_3(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    argv: list[str],
    message: str,
) -> None:
    path = bad(tmp_path, content)
    out_json = tmp_path / "out.json"
    code, text = run(str(path), *argv, "--json", str(out_json))
    assert code == 3
    assert text == ""
    err = capsys.readouterr().err
    assert err.startswith(f"facegate: {path} ")
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not out_json.exists()


def test_missing_file_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(str(tmp_path / "missing.csv"))
    assert code == 3
    assert capsys.readouterr().err == f"facegate: {tmp_path / 'missing.csv'}: file not found\n"


def test_usage_errors() -> None:
    with pytest.raises(SystemExit):
        run("x.csv", "--min-n", "0")
    with pytest.raises(SystemExit):
        run("x.csv", "--group-by", "skin,skin")


def test_html_page_from_the_json(tmp_path: Path) -> None:
    out_json = tmp_path / "report.json"
    code, _ = run(
        str(ppb_like(tmp_path / "ibm.csv")), "--group-by", "skin,gender", "--json", str(out_json)
    )
    assert code == 0
    page = render_html(json.loads(out_json.read_text()))
    svg = "<svg" + page.split("<svg", 1)[1].split("</svg>", 1)[0] + "</svg>"
    assert ET.fromstring(svg).get("role") == "img"  # the chart is well-formed XML
    assert "Classifier audit: error rates by group" in page
    assert "<h2>By skin x gender</h2>" in page
    assert "34.686%" in page  # darker x female, 94 of 271
    assert "too small: 5 rows" in page  # unsure x female
    assert "Fisher" in page
    assert "Model version" not in page  # no facegate model is involved
    assert "<script" not in page
    # a group, a label and an image path from the predictions are text on the page
    evil = with_evil(json.loads(out_json.read_text()), "darker x female", "female", "p1.jpg")
    assert_escaped(render_html(evil))
