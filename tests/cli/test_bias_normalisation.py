"""``facegate bias normalisation`` on an auditor's own manifests (real images, real descriptors).

Small manifests cut from LFW (identities), FairFace (groups) and Congress (probes), written as
CSVs the way an outside auditor would; descriptors go to a temporary cache.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from facegate.cli import main

DATA = Path("../shared/data")

needs_data = pytest.mark.skipif(
    not (DATA / "lfw").is_dir() or not (DATA / "fairface_val").is_dir(),
    reason="../shared/data (LFW, FairFace, Congress) not present",
)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("norm")
    folders = [d for d in sorted((DATA / "lfw/images").iterdir()) if len(list(d.iterdir())) >= 4]
    mated = [
        [str(image.resolve()), folder.name, "any"]
        for folder in folders[:5]
        for image in sorted(folder.iterdir())[:4]
    ]
    with (DATA / "fairface_val/labels.csv").open(encoding="utf-8") as fh:
        labels = list(csv.DictReader(fh))
    impostors: list[list[str]] = []
    for gender in ("Female", "Male"):
        rows = [r for r in labels if r["gender"] == gender and r["age"] in ("20-29", "30-39")]
        impostors += [
            [str((DATA / "fairface_val/images" / r["image"]).resolve()), "", gender.lower()]
            for r in rows[:12]
        ]
    with (DATA / "congress_2015/labels.csv").open(encoding="utf-8") as fh:
        congress = list(csv.DictReader(fh))[:6]
    probes = [
        [str((DATA / "congress_2015/images" / r["image"]).resolve()), r["bioguide"]]
        for r in congress
    ]
    return {
        "mated": _write(root / "mine_mated.csv", ["path", "subject_id", "gender"], mated),
        "impostors": _write(root / "mine_groups.csv", ["path", "subject_id", "gender"], impostors),
        "probes": _write(root / "mine_probes.csv", ["path", "subject_id"], probes),
        "cache": root / "cache.sqlite3",
        "json": root / "cmp.json",
    }


@needs_data
@pytest.mark.slow
def test_normalisation_runs_on_an_auditors_own_csvs(manifests: dict[str, Path]) -> None:
    out = io.StringIO()
    code = main(
        [
            "bias",
            "normalisation",
            "--mated",
            str(manifests["mated"]),
            "--impostors",
            str(manifests["impostors"]),
            "--probes",
            str(manifests["probes"]),
            "--group-by",
            "gender",
            "--cache",
            str(manifests["cache"]),
            "--workers",
            "1",
            "--no-progress",
            "--json",
            str(manifests["json"]),
        ],
        out=out,
    )
    text = out.getvalue()
    assert code == 0, text
    doc = json.loads(manifests["json"].read_text())
    assert doc["data"] == {
        "mated": "mine_mated",
        "impostors": "mine_groups",  # an operator's data: all of it is held out
        "probes": "mine_probes",
    }
    assert f"--mated {manifests['mated']}" in doc["command"]
    assert doc["grouping"] == "gender"
    assert doc["held_out_faces"] <= 24
    assert doc["held_out_faces"] >= 20  # all faces found, not half of them
    # every same-subject pair (5 people x 6 pairs) and as many different-subject pairs
    assert doc["lfw_pairs"] == 60
    for scorer in ("raw", "normalised"):
        entry = doc["scorers"][scorer]
        equal = entry["equal_fnmr"]
        assert set(equal["groups"]) == {"female", "male"}
        assert equal["lfw_fnmr"] <= 0.05 + 1 / 30
        total = sum(g["total"] for g in equal["groups"].values())
        assert total >= 2 * (10 * 9 // 2)  # every within-group pair of each gender's faces
        assert entry["lineup"]["probes"] == 6
        assert entry["lineup"]["gallery"] == doc["held_out_faces"]
    assert "## FMR per gender group at mine_mated FNMR 5% (mine_groups," in text
    assert "6 mine_probes against" in text


def test_normalisation_names_a_missing_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bias", "normalisation", "--mated", str(tmp_path / "nope.csv"), "--no-progress"])
    assert code == 3
    assert "nope.csv: file not found" in capsys.readouterr().err
