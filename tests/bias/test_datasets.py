"""Loaders against the real folders in ../shared/data; CSV errors; groups; impostor pairs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from facegate.bias.datasets import (
    UNKNOWN,
    DatasetError,
    Manifest,
    Pair,
    load_congress,
    load_csv,
    load_fairface,
    load_lfw,
    parse_lfw_pairs,
)
from facegate.bias.groups import group_key, group_samples, impostor_pairs
from tests.conftest import SHARED_DATA

FAIRFACE_RACES = {
    "Black",
    "East Asian",
    "Indian",
    "Latino_Hispanic",
    "Middle Eastern",
    "Southeast Asian",
    "White",
}


@pytest.fixture(scope="module")
def lfw() -> tuple[Manifest, list[Pair]]:
    return load_lfw(SHARED_DATA / "lfw")


@pytest.fixture(scope="module")
def fairface() -> Manifest:
    return load_fairface(SHARED_DATA / "fairface_val")


def _gender_pair(manifest: Manifest, pair: Pair) -> str:
    a = manifest.samples[pair.left].attributes["gender"]
    b = manifest.samples[pair.right].attributes["gender"]
    return "-".join(sorted((a, b)))


def test_lfw_view2_pairs_and_folds(lfw: tuple[Manifest, list[Pair]]) -> None:
    manifest, pairs = lfw
    assert len(pairs) == 6000
    assert Counter(p.fold for p in pairs) == dict.fromkeys(range(10), 600)
    assert sum(p.mated for p in pairs) == 3000
    for p in pairs:
        same = manifest.samples[p.left].subject_id == manifest.samples[p.right].subject_id
        assert same == p.mated
    assert all(s.path.is_file() for s in manifest.samples[:50])


def test_lfw_gender_counts_match_the_data_readme(lfw: tuple[Manifest, list[Pair]]) -> None:
    """README: mated 2,219 M-M, 777 F-F; non-mated 1,671 M-M, 177 F-F, 1,149 mixed.

    The README counts the four images labelled ``M/F?`` as female; the loader makes them
    ``unknown`` (ambiguous labels are not guessed), as are the three images missing from
    gender.csv. So 1 F-F and 2 mixed non-mated pairs move to ``female-unknown`` /
    ``male-unknown``, and 4 mated + 3 non-mated pairs involve an unlisted image.
    """
    manifest, pairs = lfw
    mated = Counter(_gender_pair(manifest, p) for p in pairs if p.mated)
    non_mated = Counter(_gender_pair(manifest, p) for p in pairs if not p.mated)
    assert mated == {"male-male": 2219, "female-female": 777, "male-unknown": 4}
    assert non_mated == {
        "male-male": 1671,
        "female-female": 176,
        "female-male": 1147,
        "female-unknown": 1,
        "male-unknown": 5,
    }
    listed_both = {
        line.split(",")[0].split("/")[1]
        for line in (SHARED_DATA / "lfw" / "gender.csv").read_text().splitlines()
        if line.endswith("M/F?")
    }

    def readme_gender(index: int) -> str:
        sample = manifest.samples[index]
        return "female" if sample.path.name in listed_both else sample.attributes["gender"]

    readme = Counter(
        "-".join(sorted((readme_gender(p.left), readme_gender(p.right))))
        for p in pairs
        if not p.mated
    )
    assert readme["female-female"] == 177
    assert readme["female-male"] == 1149


def test_lfw_race_labels(lfw: tuple[Manifest, list[Pair]]) -> None:
    manifest, _ = lfw
    races = manifest.attribute_counts("race")
    assert races["caucasian"] > races["african"] > 0
    assert races["multiple"] > 0
    assert races[UNKNOWN] > 0
    pelosi = next(s for s in manifest if s.subject_id == "Nancy_Pelosi")
    assert pelosi.attributes["gender"] == "female"


def test_fairface(fairface: Manifest) -> None:
    assert len(fairface) == 5000
    assert set(fairface.attribute_counts("race")) == FAIRFACE_RACES
    assert set(fairface.attribute_counts("gender")) == {"female", "male"}
    assert set(fairface.attribute_counts("race4")) == {"Asian", "Black", "Indian", "White", "Other"}
    assert fairface.attribute_counts("age_band")["20-29"] == 1507
    assert all(s.subject_id is None for s in fairface)


def test_congress() -> None:
    manifest = load_congress(SHARED_DATA / "congress_2015")
    assert len(manifest) == 879
    assert len({s.subject_id for s in manifest}) == 879
    assert manifest.attribute_counts("gender") == {"male": 163, "female": 54, UNKNOWN: 662}
    assert manifest.samples[0].subject_id == "A000014"


def _write(folder: Path, text: str, images: tuple[str, ...] = ("a.jpg", "b.jpg")) -> Path:
    for name in images:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    path = folder / "data.csv"
    path.write_text(text)
    return path


def test_csv_loader(tmp_path: Path) -> None:
    path = _write(tmp_path, "path,subject_id,gender,skin\na.jpg,p1,F,V\n\nb.jpg,,nonbinary,\n")
    manifest = load_csv(path)
    assert manifest.name == "data"
    first, second = manifest.samples
    assert first.path == (tmp_path / "a.jpg").resolve()
    assert first.subject_id == "p1"
    assert dict(first.attributes) == {"gender": "female", "skin": "V"}
    assert second.subject_id is None
    assert dict(second.attributes) == {"gender": "nonbinary", "skin": UNKNOWN}
    assert first.provenance == "data.csv line 2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: empty file"),
        ("image,subject_id\na.jpg,p\n", "line 1: the header must start with 'path,subject_id'"),
        ("path,subject_id,g,g\na.jpg,p,1,2\n", "line 1: duplicate column(s) g"),
        ("path,subject_id,\na.jpg,p,1\n", "line 1: attribute column 3 has no name"),
        ("path,subject_id,g\na.jpg,p\n", "line 2: expected 3 fields, got 2"),
        ("path,subject_id\na.jpg,p\n,q\n", "line 3: empty path"),
        ("path,subject_id\na.jpg,p\nmissing.jpg,q\n", "line 3: image not found"),
        (
            "path,subject_id\na.jpg,p\nb.jpg,q\n./a.jpg,r\n",
            "line 4: ./a.jpg already listed on line 2",
        ),
    ],
)
def test_csv_loader_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DatasetError) as err:
        load_csv(_write(tmp_path, text))
    assert message in str(err.value)
    assert "data.csv" in str(err.value)


def test_lfw_pairs_parser_errors() -> None:
    with pytest.raises(DatasetError, match="expected 4 pairs, got 3"):
        parse_lfw_pairs("1 2\nA 1 2\nB 1 2\nC 1 D 1\n", source="p.txt")
    with pytest.raises(DatasetError, match=r"p\.txt line 3: unexpected fields for a mated pair"):
        parse_lfw_pairs("1 2\nA 1 2\nB 1 C 2\nC 1 D 1\nE 1 F 1\n", source="p.txt")
    dev = parse_lfw_pairs("1\nA 1 2\nB 1 C 3\n")
    assert [(p.fold, p.mated, p.right) for p in dev] == [
        (0, True, "A/A_0002.jpg"),
        (0, False, "C/C_0003.jpg"),
    ]


def test_group_keys_keep_unknown(fairface: Manifest) -> None:
    sample = fairface.samples[0]
    assert group_key(sample, ("race", "gender")) == "East Asian x male"
    assert group_key(sample, ("race", "skin")) == "East Asian x unknown"
    groups = group_samples(fairface, ("race", "gender"))
    assert len(groups) == 14
    assert sum(len(v) for v in groups.values()) == 5000
    assert list(groups) == sorted(groups)


def test_impostor_pairs_within_group_and_seeded(lfw: tuple[Manifest, list[Pair]]) -> None:
    manifest, _ = lfw
    by = ("race", "gender")
    pairs = impostor_pairs(manifest, by, per_group=200, seed=7)
    assert pairs == impostor_pairs(manifest, by, per_group=200, seed=7)
    assert pairs != impostor_pairs(manifest, by, per_group=200, seed=8)
    assert set(pairs) == set(group_samples(manifest, by))
    for key, group in pairs.items():
        assert len(group) == len(set(group)) <= 200
        for p in group:
            left, right = manifest.samples[p.left], manifest.samples[p.right]
            assert left.subject_id != right.subject_id
            assert not p.mated
            assert p.left < p.right
            assert group_key(left, by) == key == group_key(right, by)
    assert len(pairs["caucasian x male"]) == 200  # a large group: rejection sampling
    small = [k for k, v in group_samples(manifest, by).items() if len(v) < 20]
    assert small
    assert all(len(pairs[k]) < 200 for k in small)


def test_impostor_pairs_without_subject_ids(fairface: Manifest) -> None:
    pairs = impostor_pairs(fairface, ("race",), per_group=1000, seed=1)
    assert {len(v) for v in pairs.values()} == {1000}
    assert impostor_pairs(fairface, ("race",), per_group=0, seed=1)["White"] == []
