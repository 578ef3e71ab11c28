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

from facegate.bias.impostors import REVIEW_NOTE as REVIEW
from facegate.cli.bias import register
from facegate.engine.matching import default_matcher


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
        "--probes", str(data / "probes.csv"),
        "--gallery", str(data / "gallery.csv"),
        "--declare-true", str(data / "declared.csv"),
        "--json", str(out_json),
        *common(data),
    )  # fmt: skip
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0].startswith("command: facegate bias lineup ")
    assert "--threshold 80 --threshold 99" in lines[0]
    assert lines[1].startswith("model: ")
    sim = default_matcher().similarity
    assert lines[2].startswith(
        f"similarity mapping: {sim.version} (Similarity 80 = score {sim.distance_for(80):.4f}"
    )
    assert "gallery searched: 1 of 2 images" in text
    report = json.loads(out_json.read_text())
    assert report["similarity_version"] == sim.version
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
        "--probes", str(data / "probes.csv"),
        "--gallery", str(data / "gallery.csv"),
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
        "impostors", "--dataset", str(data / "probes.csv"),
        "--group-by", "gender", "--pairs-per-group", "5", "--cross-group", "2",
        "--min-pairs", "1", "--n-boot", "50", "--json", str(out_json),
        *common(data),
    )  # fmt: skip
    assert code == 0, text
    assert "data bug, not a false match" in text
    report = json.loads(out_json.read_text())
    assert report["pairs"] == {"total": 3, "within_group": 1, "cross_group": 2}
    assert report["sampling"]["mode"] == "fixed sample"
    assert report["unscored_pairs"]["(cross-group)"]["nonmated"] == 2
    assert len(report["top_pairs"]) == 1


def test_verification_on_a_tiny_lfw(data: Path) -> None:
    out_json = data / "verification.json"
    code, text = run(
        "verification", "--data-root", str(data), "--pairs-per-group", "0",
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
    code, _ = run("impostors", "--dataset", "fairface", "--data-root", str(data / "nope"))
    assert code == 3
    assert "data folder not found" in capsys.readouterr().err
    code, _ = run(
        "lineup", "--probes", str(data / "probes.csv"),
        "--gallery", str(data / "gallery.csv"),
        "--declare-true", str(data / "missing.csv"), *common(data),
    )  # fmt: skip
    assert code == 3
    assert "missing.csv: file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("impostors", "--dataset", "imagenet")


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    for ref in ('src="http', "href=", "url(http", "@import", "<link", "<img"):
        assert ref not in page


def test_every_report_has_a_kind_and_an_html_page(data: Path) -> None:
    runs = {
        "verification": [
            "verification", "--data-root", str(data), "--pairs-per-group", "0",
            "--min-pairs", "1", "--n-boot", "20",
        ],
        "impostors": [
            "impostors", "--dataset", str(data / "probes.csv"),
            "--pairs-per-group", "5", "--min-pairs", "5", "--n-boot", "20",
        ],
        "lineup": [
            "lineup", "--probes", str(data / "probes.csv"),
            "--gallery", str(data / "gallery.csv"),
        ],
    }  # fmt: skip
    for kind, argv in runs.items():
        out_json, out_html = data / f"k-{kind}.json", data / f"k-{kind}.html"
        code, text = run(*argv, "--json", str(out_json), "--html", str(out_html), *common(data))
        assert code == 0, text
        report = json.loads(out_json.read_text())
        assert report["kind"] == kind
        assert report["created"].endswith("+00:00")
        page = out_html.read_text()
        assert_self_contained(page)
        assert report["command"].replace('"', "&quot;").replace("'", "&#x27;") in page
        assert default_matcher().version in page
        assert f"--html {out_html}" in report["command"]
    verification = json.loads((data / "k-verification.json").read_text())
    det = verification["det"]
    assert len(det["thresholds"]) == 60
    assert len(det["similarity_pct"]) == 60
    assert det["groups"]["male"]["mated_pairs"] == 1
    assert det["groups"]["male"]["fnmr"][-1] == 0.0  # loosest: the mated pair matches
    assert det["groups"]["male"]["fmr"][0] == 0.0  # strictest: nothing matches
    hist = verification["histograms"]
    assert len(hist["bin_edges"]) == 61
    assert sum(hist["groups"]["overall"]["mated"]) == 1
    assert sum(hist["groups"]["overall"]["nonmated"]) == 1
    assert "DET curves per group" in (data / "k-verification.html").read_text()
    # impostors: one within-group pair for --min-pairs 5: shown as too small, not hidden
    assert "too small: 1 pairs" in (data / "k-impostors.html").read_text()
    lineup_page = (data / "k-lineup.html").read_text()
    assert "obama2.jpg" in lineup_page
    assert "too small: 0 probes searched" in lineup_page  # female: no face, nobody searched


def test_html_remade_from_saved_json(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = data / "k-verification.json"
    if not saved.exists():
        test_every_report_has_a_kind_and_an_html_page(data)
    out_html = data / "again.html"
    code, text = run("html", str(saved), "--out", str(out_html))
    assert code == 0
    assert str(out_html) in text
    page = out_html.read_text()
    assert_self_contained(page)
    assert "Verification accuracy by group" in page
    # bad input: not JSON, JSON without a kind, a missing file
    (data / "bad.json").write_text("{not json")
    code, _ = run("html", str(data / "bad.json"), "--out", str(out_html))
    assert code == 3
    assert "not a usable bias report" in capsys.readouterr().err
    (data / "old.json").write_text('{"command": "facegate bias lineup"}')
    code, _ = run("html", str(data / "old.json"), "--out", str(out_html))
    assert code == 3
    assert "not a bias report: kind None" in capsys.readouterr().err
    code, _ = run("html", str(data / "nope.json"), "--out", str(out_html))
    assert code == 3
    assert "nope.json" in capsys.readouterr().err


def test_sweep_on_a_tiny_lfw(data: Path) -> None:
    out_json, out_html = data / "sweep.json", data / "sweep.html"
    code, text = run(
        "sweep", "--data-root", str(data), "--pairs-per-group", "0",
        "--from", "60", "--to", "99", "--step", "13", "--min-pairs", "1",
        "--json", str(out_json), "--html", str(out_html), *common(data),
    )  # fmt: skip
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0].startswith("command: facegate bias sweep --dataset lfw ")
    assert "--from 60 --to 99 --step 13" in lines[0]
    assert "Similarity 60 = score" in lines[2]
    assert "balance test: Fisher's exact test" in text
    report = json.loads(out_json.read_text())
    assert report["kind"] == "sweep"
    assert [p["similarity_pct"] for p in report["points"]] == [60, 73, 86, 99]
    assert report["test"] == {
        "name": "Fisher's exact test (two-sided) between every two measurable groups",
        "alpha": 0.05,
        "bonferroni": True,
    }
    male = report["points"][0]["groups"][0]
    assert (male["group"], male["mated_pairs"], male["nonmated_pairs"]) == ("male", 1, 1)
    # one group: nothing to compare, every threshold balanced
    assert report["balance"]["fmr"]["lowest_balanced_similarity_pct"] == 60
    assert report["balance"]["fmr"]["first_imbalanced_similarity_pct"] is None
    assert "nothing was compared" in text
    page = out_html.read_text()
    assert_self_contained(page)
    assert "FMR per group against Similarity" in page
    assert "lowest balanced Similarity 60" in page


def test_sweep_on_a_csv_without_identities_measures_fmr_only(data: Path) -> None:
    out_json = data / "sweep-csv.json"
    code, text = run(
        "sweep", "--dataset", str(data / "probes.csv"),
        "--pairs-per-group", "5", "--min-pairs", "1", "--json", str(out_json), *common(data),
    )  # fmt: skip
    assert code == 0, text
    report = json.loads(out_json.read_text())
    assert len(report["points"]) == 50  # default 50..99 step 1
    assert report["pairs"] == {"total": 1, "mated": 0, "within_group": 1}
    assert report["balance"]["fnmr"] is None
    assert "FNMR: no group with 1 pairs; not tested" in text


def test_sweep_bad_input_exits_3(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lfw = ["--data-root", str(data)]
    for argv, message in (
        ([*lfw, "--from", "90", "--to", "80"], "--from 90 must be below --to 80"),
        ([*lfw, "--step", "0"], "--step must be positive"),
        ([*lfw, "--step", "0.0001"], "at most 2000"),
        ([*lfw, "--alpha", "1.5"], "--alpha must be between 0 and 1"),
        (["--dataset", "csv"], "--dataset csv needs the manifest: pass it as --dataset FILE.csv"),
        (["--dataset", str(data / "missing.csv")], "missing.csv: file not found"),
        (["--dataset", "fairface", "--data-root", str(data / "nope")], "data folder not found"),
        (["--dataset", "congress"], "--dataset congress: this action needs lfw or fairface"),
    ):
        code, _ = run("sweep", *argv, *common(data))
        err = capsys.readouterr().err
        assert code == 3, argv
        assert message in err
        assert len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        run("sweep", "--from", "120")


def test_every_action_names_a_data_set_one_way_and_old_flags_still_work(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NAME|FILE.csv everywhere; the deprecated spellings give the same report, say they are
    deprecated, and the recorded command is the current spelling."""
    probes, gallery = str(data / "probes.csv"), str(data / "gallery.csv")
    same = {
        "impostors": (
            ["impostors", "--dataset", probes],
            ["impostors", "--dataset", "csv", "--data", probes],
        ),
        "sweep": (
            ["sweep", "--dataset", probes, "--from", "80", "--to", "99", "--step", "19"],
            ["sweep", "--dataset", "csv", "--manifest", probes,
             "--from", "80", "--to", "99", "--step", "19"],
        ),
        "lineup": (
            ["lineup", "--probes", probes, "--gallery", gallery],
            ["lineup", "--probes", "csv", "--probes-csv", probes,
             "--gallery", "csv", "--gallery-csv", gallery],
        ),
        "verification": (
            ["verification", "--data-root", str(data)],
            ["verification", "--data", str(data / "lfw")],
        ),
    }  # fmt: skip
    for action, (current, old) in same.items():
        extra = ["--pairs-per-group", "5", "--min-pairs", "1", "--n-boot", "10"]
        if action == "lineup":
            extra = []
        elif action == "sweep":
            extra = extra[:4]
        reports = []
        for k, argv in enumerate((current, old)):
            out_json = data / f"same-{action}-{k}.json"
            code, text = run(*argv, *extra, "--json", str(out_json), *common(data))
            assert code == 0, (argv, text)
            err = capsys.readouterr().err
            assert ("deprecated" in err) == (k == 1), (argv, err)
            reports.append(json.loads(out_json.read_text()))
        new, legacy = reports
        assert "--probes-csv" not in legacy["command"]
        assert "--manifest" not in legacy["command"]
        assert " --dataset csv" not in legacy["command"]
        for report in (new, legacy):
            del report["created"], report["command"]
        assert new == legacy, action


def test_verification_on_a_csv_uses_its_same_subject_pairs(data: Path) -> None:
    out_json = data / "verification-csv.json"
    code, text = run(
        "verification", "--dataset", str(data / "probes.csv"), "--min-pairs", "1",
        "--n-boot", "10", "--json", str(out_json), *common(data),
    )  # fmt: skip
    assert code == 3  # probes.csv has one image per person: no mated pairs
    (data / "mates.csv").write_text(
        (data / "probes.csv").read_text() + (data / "gallery.csv").read_text().splitlines()[1]
    )
    code, text = run(
        "verification", "--dataset", str(data / "mates.csv"), "--min-pairs", "1",
        "--n-boot", "10", "--json", str(out_json), *common(data),
    )  # fmt: skip
    assert code == 0, text
    report = json.loads(out_json.read_text())
    assert report["pairs"]["mated"] == 1  # obama.jpg with obama2.jpg
    assert report["sampling"]["mode"] == "every pair"  # --pairs-per-group auto, and cheap
    assert "sampling: every pair within each group" in text
    assert report["thresholds"][0]["overall"]["fnmr"] == 0.0


def test_a_wrong_flag_prints_the_actions_usage(capsys: pytest.CaptureFixture[str]) -> None:
    from facegate.cli import main

    for argv, usage in (
        (["bias", "lineup", "--dataset", "x.csv"], "usage: facegate bias lineup"),
        (["bias", "impostors", "--probes", "x.csv"], "usage: facegate bias impostors"),
        (["bias", "lineup", "--data", "x"], "usage: facegate bias lineup"),  # no abbreviation
        (["bias", "impostors", "--dataset", "imagenet"], "usage: facegate bias impostors"),
    ):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith(usage), err
        assert "--dataset NAME|FILE.csv" in err or "--probes NAME|FILE.csv" in err


def test_lineup_measures_the_servers_size_aware_threshold(data: Path) -> None:
    """--max-expected-false-candidates adds the threshold enforce.before would set for a
    collection of the gallery's searchable faces (the server's code, not a copy)."""
    from facegate import enforce, operations
    from facegate.policy.model import Obligations

    out_json = data / "aware.json"
    code, text = run(
        "lineup", "--probes", str(data / "probes.csv"), "--gallery", str(data / "gallery.csv"),
        "--threshold", "80", "--max-expected-false-candidates", "0.0005",
        "--json", str(out_json), *common(data),
    )  # fmt: skip
    assert code == 0, text
    report = json.loads(out_json.read_text())
    at80, aware = report["thresholds"]
    assert at80["size_aware"] is None
    assert aware["size_aware"] == {"max_expected_false_candidates": 0.0005, "collection_faces": 1}
    search = operations.spec("SearchFacesByImage")
    assert search is not None
    params: dict[str, object] = {}
    applied = enforce.before(
        search,
        params,
        Obligations(max_expected_false_candidates=0.0005),
        collection_faces=1,
        similarity=default_matcher().similarity,
    )
    assert aware["similarity_pct"] == pytest.approx(params["face_match_threshold"])
    assert aware["expected_false_candidates"] == pytest.approx(applied.expected_false_candidates)
    assert aware["expected_false_candidates"] <= 0.0005 + 1e-12
    assert at80["expected_false_candidates"] == pytest.approx(
        default_matcher().similarity.fmr_at(80)
    )
    assert "size-aware: the threshold @max_expected_false_candidates(0.0005)" in text
    assert "match when score <=" in text
    assert "--max-expected-false-candidates 0.0005" in report["command"]
    with pytest.raises(SystemExit):
        run("lineup", "--max-expected-false-candidates", "0")


def test_normalised_reports_speak_of_scores_not_distances(
    data: Path, samples: Path, tmp_path: Path
) -> None:
    """A duplicate image listed as two people: its normalised score is below 0. The text, the
    JSON's histogram and the HTML call it a score; --score raw calls values distances."""
    copy = tmp_path / "copy_of_obama.jpg"
    copy.write_bytes((samples / "obama.jpg").read_bytes())
    manifest = tmp_path / "dup.csv"
    manifest.write_text(
        f"path,subject_id,gender\n{samples / 'obama.jpg'},a,male\n{copy},b,male\n"
        f"{samples / 'biden.jpg'},c,male\n"
    )
    out_json, out_html = tmp_path / "dup.json", tmp_path / "dup.html"
    code, text = run(
        "impostors", "--dataset", str(manifest), "--group-by", "gender", "--min-pairs", "1",
        "--n-boot", "10", "--json", str(out_json), "--html", str(out_html), *common(data),
    )  # fmt: skip
    assert code == 0, text
    report = json.loads(out_json.read_text())
    assert report["unit"] == "score"
    top = report["top_pairs"][0]
    assert top["distance"] < 0  # the duplicate: a score, not a distance
    assert report["histograms"]["groups"]["overall"]["nonmated_below"] == 1
    assert "match when score <=" in text
    assert "match when distance" not in text
    header = text.splitlines()[text.splitlines().index(f"  {REVIEW}") + 1]
    assert header.split()[:2] == ["Similarity", "score"]
    page = out_html.read_text()
    assert "match when score" in page
    assert "distance" not in page.replace("descriptor distances", "")
    code, text = run(
        "impostors", "--dataset", str(manifest), "--group-by", "gender", "--min-pairs", "1",
        "--n-boot", "10", "--score", "raw", "--json", str(out_json), *common(data),
    )  # fmt: skip
    assert code == 0, text
    assert "match when distance <=" in text
    raw = json.loads(out_json.read_text())
    assert raw["unit"] == "distance"
    assert raw["top_pairs"][0]["distance"] == pytest.approx(0.0, abs=1e-6)


def test_the_slow_mmod_fallback_is_opt_in_and_cached_apart(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """By default the server's chain only (what the server does); --mmod-fallback is another
    cache key, so neither configuration's results are read for the other."""
    argv = ["impostors", "--dataset", str(data / "probes.csv"), "--group-by", "gender",
            "--min-pairs", "1", "--n-boot", "10", *common(data)]  # fmt: skip
    reports = {}
    for name, extra in (
        ("default", []),
        ("mmod", ["--mmod-fallback"]),
        ("old", ["--no-mmod-fallback"]),
    ):
        out_json = data / f"fallback-{name}.json"
        code, text = run(*argv, *extra, "--json", str(out_json))
        assert code == 0, text
        reports[name] = (json.loads(out_json.read_text()), text, capsys.readouterr().err)
    default, mmod, old = reports["default"], reports["mmod"], reports["old"]
    assert "--mmod-fallback" not in default[0]["command"]
    assert "--mmod-fallback" in mmod[0]["command"]
    assert "from cache 3" in default[1]  # the earlier tests' runs: same configuration
    assert "computed 3, from cache 0" in mmod[1]  # another key: nothing shared
    assert "mmod" not in default[0]["descriptors"]
    assert "--no-mmod-fallback is deprecated" in old[2]
    assert "--no-mmod-fallback" not in old[0]["command"]
    assert "from cache 3" in old[1]


def test_lineup_reports_nist_identification_measures_by_subject(data: Path) -> None:
    out_json = data / "ident.json"
    code, text = run(
        "lineup", "--probes", str(data / "probes.csv"), "--gallery", str(data / "gallery.csv"),
        "--mates-by-subject", "--fpir", "0.5", "--rank", "1", "--n-boot", "20",
        "--json", str(out_json), "--html", str(data / "ident.html"), *common(data),
    )  # fmt: skip
    assert code == 0, text
    ident = json.loads(out_json.read_text())["identification"]
    assert ident["mated_searches"] == 1  # obama.jpg, whose mate obama2.jpg is in the gallery
    # biden.jpg; obama.jpg with its mate left out searches an empty gallery: no search
    assert ident["nonmated_searches"] == 1
    assert ident["ranks"]["male"]["rank_1"] == {
        "count": 1, "searches": 1, "rate": 1.0, "ci": ident["ranks"]["male"]["rank_1"]["ci"]
    }  # fmt: skip
    at80 = ident["thresholds"][0]
    assert at80["similarity_pct"] == 80
    assert at80["groups"]["male"]["fnir"]["rate"] == 0.0
    assert at80["groups"]["male"]["nonmate_with_mate"]["count"] == 0  # nothing else in the gallery
    assert "1:N identification (NIST FRVT measures): 1 mated searches" in text
    page = (data / "ident.html").read_text()
    assert "1:N identification (NIST FRVT measures)" in page
    assert "non-mate above mate" in page
    code, text = run(
        "lineup", "--probes", str(data / "probes.csv"), "--gallery", str(data / "gallery.csv"),
        "--json", str(out_json), *common(data),
    )  # fmt: skip
    assert json.loads(out_json.read_text())["identification"] is None  # no mates: no 1:N section
