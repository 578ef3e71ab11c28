"""``facegate bias lineup|impostors|verification`` on a few sample images (real descriptors).

Descriptors are computed once into a module-wide cache; later runs read the cache.
"""

from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path

import pytest

from facegate.cli.bias import register


def run(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="facegate")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bias", *argv])
    out = io.StringIO()
    code: int = args.func(args, out)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def data(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """probes.csv, gallery.csv, declared.csv, a tiny LFW-shaped folder and a cache path."""
    root = tmp_path_factory.mktemp("bias_cli")
    (root / "probes.csv").write_text(
        "path,subject_id,gender\n"
        f"{samples / 'obama.jpg'},obama,male\n"
        f"{samples / 'biden.jpg'},biden,male\n"
        f"{samples / 'no_face_white.png'},,female\n"
    )
    (root / "gallery.csv").write_text(
        "path,subject_id,gender\n"
        f"{samples / 'obama2.jpg'},obama,male\n"
        f"{samples / 'no_face_white.png'},,unknown\n"
    )
    (root / "declared.csv").write_text("probe,gallery\nobama.jpg,obama2.jpg\n")
    lfw = root / "lfw"
    for person, number, name in (("Obama", 1, "obama.jpg"), ("Obama", 2, "obama2.jpg")):
        (lfw / "images" / person).mkdir(parents=True, exist_ok=True)
        os.symlink(samples / name, lfw / "images" / person / f"{person}_{number:04d}.jpg")
    (lfw / "images" / "Biden").mkdir()
    os.symlink(samples / "biden.jpg", lfw / "images" / "Biden" / "Biden_0001.jpg")
    (lfw / "pairs.txt").write_text("1\t1\nObama\t1\t2\nObama\t1\tBiden\t1\n")
    (lfw / "gender.csv").write_text(
        "image,identity,gender\nObama/Obama_0001.jpg,Obama,M\n"
        "Obama/Obama_0002.jpg,Obama,M\nBiden/Biden_0001.jpg,Biden,M\n"
    )
    (lfw / "race_by_identity.json").write_text('{"Obama": "african", "Biden": "caucasian"}')
    return root


def common(data: Path) -> list[str]:
    return ["--cache", str(data / "cache.sqlite3"), "--workers", "1", "--no-progress"]


def test_lineup_declared_true_match_and_no_face(data: Path) -> None:
    out_json = data / "lineup.json"
    code, text = run(
        "lineup",
        "--probes-csv", str(data / "probes.csv"),
        "--gallery-csv", str(data / "gallery.csv"),
        "--declare-true", str(data / "declared.csv"),
        "--json", str(out_json),
        *common(data),
    )  # fmt: skip
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0].startswith("command: facegate bias lineup ")
    assert "--threshold 80 --threshold 99" in lines[0]
    assert lines[1].startswith("model: ")
    assert lines[2].startswith("similarity mapping: dlib-logistic-v0 (Similarity 80 = distance 0.6")
    assert "gallery searched: 1 of 2 images" in text
    report = json.loads(out_json.read_text())
    assert report["similarity_version"] == "dlib-logistic-v0"
    at80 = report["thresholds"][0]
    groups = {g["group"]: g for g in at80["groups"]}
    assert groups["male"]["declared_present"] == 1
    assert groups["male"]["declared_found"] == 1
    assert groups["male"]["searched"] == 1  # biden
    assert groups["male"]["with_false_match"] == 0
    assert groups["female"]["no_face"] == 1
    assert groups["female"]["searched"] == 0
    assert groups["all"]["probes"] == 3
    (match,) = at80["matches"]
    assert match["declared_true"] is True
    assert Path(match["probe"]).name == "obama.jpg"
    assert match["similarity_pct"] > 80


def test_lineup_without_declaration_counts_a_false_match(data: Path) -> None:
    code, text = run(
        "lineup",
        "--probes-csv", str(data / "probes.csv"),
        "--gallery-csv", str(data / "gallery.csv"),
        "--threshold", "80",
        *common(data),
    )  # fmt: skip
    assert code == 0
    assert "descriptors: 3 images: faces 2" in text
    assert "computed 0, from cache 3" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("male "))
    assert row.split()[1:6] == ["2", "0", "0", "2", "1"]  # probes, no face, declared, searched, hit


def test_impostors_on_a_csv_lists_top_pairs(data: Path) -> None:
    out_json = data / "impostors.json"
    code, text = run(
        "impostors", "--dataset", "csv", "--data", str(data / "probes.csv"),
        "--group-by", "gender", "--pairs-per-group", "5", "--cross-group", "2",
        "--min-pairs", "1", "--n-boot", "50", "--json", str(out_json),
        *common(data),
    )  # fmt: skip
    assert code == 0, text
    assert "data bug, not a false match" in text
    report = json.loads(out_json.read_text())
    assert report["pairs"] == {"total": 3, "within_group": 1, "cross_group": 2}
    assert report["unscored_pairs"]["(cross-group)"]["nonmated"] == 2
    assert len(report["top_pairs"]) == 1


def test_verification_on_a_tiny_lfw(data: Path) -> None:
    out_json = data / "verification.json"
    code, text = run(
        "verification", "--data", str(data / "lfw"), "--pairs-per-group", "0",
        "--min-pairs", "1", "--n-boot", "50", "--json", str(out_json),
        *common(data),
    )  # fmt: skip
    assert code == 0, text
    assert "FDR (alpha 0.5)" in text
    report = json.loads(out_json.read_text())
    assert report["pairs"] == {"total": 2, "lfw_view2": 2, "extra_impostors": 0}
    at80 = report["thresholds"][0]
    assert at80["overall"]["fnmr"] == 0.0
    assert at80["overall"]["fmr"] == 0.0


def test_missing_folder_and_files_exit_3(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("impostors", "--dataset", "fairface", "--data", str(data / "nope"))
    assert code == 3
    assert "data folder not found" in capsys.readouterr().err
    code, _ = run(
        "lineup", "--probes-csv", str(data / "probes.csv"),
        "--gallery-csv", str(data / "gallery.csv"),
        "--declare-true", str(data / "missing.csv"), *common(data),
    )  # fmt: skip
    assert code == 3
    assert "missing.csv: file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("impostors", "--dataset", "imagenet")
