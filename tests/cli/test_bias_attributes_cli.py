"""``facegate bias classifier --estimate``: facegate's own estimators through the Gender Shades
table, on a manifest of sample photos (the engine really runs, once: the second run reads the
cache), the JSON and HTML reports, and bad input (exit 3)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from facegate.cli.bias_classifier import register
from facegate.engine.human_models import model_status

needs_models = pytest.mark.skipif(
    not all(model_status(m).available for m in ("faceres", "emotion")),
    reason="the converted face models are not set up (python3 tools/dev.py; docs/models.md)",
)


def run(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="facegate")
    register(parser.add_subparsers(dest="bias_command", required=True))
    args = parser.parse_args(["classifier", *argv])
    out = io.StringIO()
    code: int = args.func(args, out)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory, samples: Path) -> Path:
    rows = [
        ("obama.jpg", "obama", "male", "40-49", "1"),
        ("obama2.jpg", "obama", "male", "40-49", ""),
        ("biden.jpg", "biden", "male", "60-69", "1"),
        ("astronaut.png", "collins", "female", "40-49", "1"),
        ("bbt/amy1.png", "amy", "female", "30-39", "1"),
        ("bbt/penny1.png", "penny", "female", "20-29", "0"),
        ("no_face_white.png", "nobody", "male", "30-39", "0"),
    ]
    path = tmp_path_factory.mktemp("manifest") / "faces.csv"
    lines = ["path,subject_id,gender,age_band,smile"]
    lines += [f"{samples / p},{s},{g},{a},{m}" for p, s, g, a, m in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@needs_models
@pytest.mark.slow
def test_gender_table_json_html_and_the_cache(manifest: Path, tmp_path: Path) -> None:
    cache, report, page = tmp_path / "c.sqlite3", tmp_path / "g.json", tmp_path / "g.html"
    common = ["--dataset", str(manifest), "--cache", str(cache), "--workers",
              "1", "--no-progress", "--min-n", "1", "--group-by", "gender"]  # fmt: skip
    code, text = run("--estimate", "gender", *common, "--json", str(report), "--html", str(page))
    assert code == 0, text
    assert text.startswith(
        f"command: facegate bias classifier --estimate gender --dataset {manifest}"
    )
    assert "estimator: GENDER faceres-87f6a7dc.gender.t0.6" in text
    assert "computed 7, from cache 0" in text
    assert "Gender Shades" in text
    assert "31.37%" in text
    doc = json.loads(report.read_text())
    assert doc["kind"] == "classifier"
    assert doc["estimator"]["version"] == "faceres-87f6a7dc.gender.t0.6"
    assert doc["images"]["no_face"] == {"male": 1, "overall": 1}  # the blank image
    overall = doc["intersectional"]["overall"]
    assert (overall["n"], overall["errors"]) == (6, 0)  # every sample face's gender right
    assert [r["error_rate"] for r in doc["references"]] == [0.347, 0.3137, 0.008]
    html = page.read_text()
    assert "Beside the published figures" in html
    assert "Images with no face found" in html
    assert "<svg" in html
    assert "https://" not in html
    # again: every answer from the cache, no engine started
    code, text = run("--estimate", "gender", *common)
    assert code == 0
    assert "computed 0, from cache 7" in text


@needs_models
@pytest.mark.slow
def test_age_and_happy(manifest: Path, tmp_path: Path) -> None:
    common = ["--dataset", str(manifest), "--cache", str(tmp_path / "c"),
              "--workers", "1", "--no-progress", "--min-n", "1"]  # fmt: skip
    report = tmp_path / "age.json"
    code, text = run("--estimate", "age", *common, "--group-by", "gender", "--json", str(report))
    assert code == 0, text
    assert "AgeRange against the labelled bin, by gender" in text
    doc = json.loads(report.read_text())
    (table,) = doc["age"]
    overall = table["groups"][-1]
    assert overall["group"] == "overall"
    assert overall["n"] == 6
    assert overall["overlap"] >= 4  # the ranges overlap most labelled decades
    code, text = run("--estimate", "happy", *common, "--group-by", "gender")
    assert code == 0, text
    assert "error = HAPPY is the top expression exactly when" in text
    assert "images without a truth label: 1" in text  # obama2.jpg has no smile label
    code, text = run("--estimate", "happy", *common, "--where", "gender=female")
    assert code == 0, text
    assert "--where gender=female" in text.splitlines()[0]
    assert any(line.startswith("  female ") for line in text.splitlines())
    assert not any(line.startswith("  male ") for line in text.splitlines())


def test_bad_estimate_input_exits_3(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run(str(manifest), "--estimate", "gender", "--dataset", "csv", "--data",
                  str(manifest))  # fmt: skip
    assert code == 3
    assert "give no predictions CSV" in capsys.readouterr().err
    code, _ = run("--estimate", "gender", "--dataset", "csv")
    assert code == 3
    assert "pass it as --dataset FILE.csv" in capsys.readouterr().err
    code, _ = run("--estimate", "gender", "--dataset", "fairface", "--data", str(tmp_path),
                  "--labels", str(manifest))  # fmt: skip
    assert code == 3
    assert "--labels goes with --dataset lfw" in capsys.readouterr().err
    code, _ = run("--estimate", "gender", "--dataset", "csv", "--data", str(manifest),
                  "--where", "skin=dark")  # fmt: skip
    assert code == 3
    err = capsys.readouterr().err
    assert "--dataset csv --data FILE is deprecated" in err  # the old spelling still works
    assert "no attribute 'skin'" in err
    with pytest.raises(SystemExit):
        run("--estimate", "gender", "--where", "gender")
    code, _ = run()
    assert code == 3
    assert "give a predictions CSV, or --estimate" in capsys.readouterr().err


def test_the_servers_default_estimators_are_audited_with_attribute_models_none(
    manifest: Path, tmp_path: Path
) -> None:
    common = ["--dataset", str(manifest), "--cache", str(tmp_path / "c"), "--workers", "1",
              "--no-progress", "--min-n", "1", "--group-by", "gender"]  # fmt: skip
    report = tmp_path / "g.json"
    code, text = run(
        "--estimate", "gender", *common, "--attribute-models", "none", "--json", str(report)
    )
    assert code == 0, text
    doc = json.loads(report.read_text(encoding="utf-8"))
    # the descriptor model fitted on FairFace answers, not faceres, and the command says so
    assert doc["estimator"]["version"].startswith("dlib-descriptor.gender.")
    assert doc["estimator"]["model"] is None
    assert "--attribute-models none" in doc["command"]
    assert "fitted on FairFace" in doc["estimator"]["method"]
    assert "note" not in doc  # a manifest of sample photos: none of them was fitted on
    code, text = run("--estimate", "age", *common, "--attribute-models", "none")
    assert code == 0, text
    assert "dlib-descriptor.age_range." in text


def test_attribute_models_must_be_known(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run("--estimate", "gender", "--attribute-models", "faceres,nonsense")
    assert "expected none or some of faceres, emotion, iris" in capsys.readouterr().err


def test_an_audit_on_the_data_an_estimator_was_fitted_on_says_so() -> None:
    from facegate.cli.bias_attributes import audit_config, fit_overlap

    defaults = audit_config(enabled=frozenset())
    assert "fitted on half of FairFace" in fit_overlap(defaults, "GENDER", "fairface")
    assert "fitted on half of FairFace" in fit_overlap(defaults, "AGE_RANGE", "fairface")
    assert fit_overlap(defaults, "GENDER", "lfw") == ""
    assert fit_overlap(defaults, "SMILE", "fairface") == ""
    assert fit_overlap(audit_config(), "GENDER", "fairface") == ""  # faceres was not fitted there
