"""Classifier error tables (Gender Shades style) on hand-computed examples."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from facegate.bias import classifier
from facegate.bias.classifier import (
    UNLABELLED,
    ClassifierInputError,
    audit,
    audit_json,
    classifier_table,
    count_predictions,
    read_predictions,
)

Row = tuple[str, str, Sequence[str]]


def rows(group: Sequence[str], n: int, wrong: int, truth: str = "female") -> list[Row]:
    """``n`` rows of one group, the first ``wrong`` of them misclassified."""
    other = "male" if truth == "female" else "female"
    return [(truth, other if i < wrong else truth, group) for i in range(n)]


def test_zero_error_group_gap_ratio_and_fisher() -> None:
    counts = count_predictions([*rows(["a"], 10, 2), *rows(["b"], 10, 0)], ["g"])
    table = classifier_table(counts, ["g"], min_n=1)
    a, b = table.group("a"), table.group("b")
    assert (a.n, a.errors, a.error_rate) == (10, 2, 0.2)
    assert (b.n, b.errors, b.error_rate) == (10, 0, 0.0)
    assert b.interval == pytest.approx((0.0, 0.2775), abs=1e-4)  # Wilson 0/10
    s, fisher = table.summary, table.fisher
    assert s.max_groups == ("a",)
    assert s.min_groups == ("b",)
    assert s.difference == pytest.approx(0.2)
    assert s.ratio is None  # min is 0
    assert s.zero_groups == ("b",)
    assert s.max_geomean == pytest.approx(1.0)  # geometric mean over the non-zero rate only
    # hypergeometric, 2 errors among 20: P(0)=45/190, P(1)=100/190, P(2)=45/190
    assert fisher is not None
    assert fisher.groups == ("a", "b")
    assert fisher.p_value == pytest.approx(90 / 190)
    assert table.overall.n == 20
    assert table.overall.errors == 2


def test_single_group_has_no_comparison() -> None:
    counts = count_predictions(rows(["only"], 40, 4), ["g"])
    table = classifier_table(counts, ["g"])
    s = table.summary
    assert s.groups == ("only",)
    assert s.difference == 0.0
    assert s.ratio == 1.0
    assert s.max_geomean == pytest.approx(1.0)
    assert table.fisher is None


def test_empty_group_value_is_unlabelled_not_dropped() -> None:
    data = [*rows(["x"], 3, 1), *rows([" "], 2, 2), *rows([""], 1, 0)]
    table = classifier_table(count_predictions(data, ["g"]), ["g"], min_n=1)
    assert [r.group for r in table.groups] == ["x"]
    assert (table.unlabelled.group, table.unlabelled.n, table.unlabelled.errors) == (
        UNLABELLED,
        3,
        2,
    )
    assert (table.overall.n, table.overall.errors) == (6, 3)


def test_ties_for_worst_are_all_listed() -> None:
    data = [*rows(["a"], 4, 1), *rows(["b"], 8, 2), *rows(["c"], 4, 0)]
    table = classifier_table(count_predictions(data, ["g"]), ["g"], min_n=1)
    s = table.summary
    assert s.max_groups == ("a", "b")
    assert s.min_groups == ("c",)
    assert table.fisher is not None
    assert table.fisher.groups == ("a", "c")
    # all equal: every group is both worst and best; the test compares two distinct groups
    even = classifier_table(
        count_predictions([*rows(["a"], 4, 1), *rows(["b"], 4, 1)], ["g"]), ["g"], min_n=1
    )
    assert even.summary.max_groups == even.summary.min_groups == ("a", "b")
    assert even.fisher is not None
    assert even.fisher.groups == ("a", "b")
    assert even.fisher.p_value == pytest.approx(1.0)


def test_too_small_groups_are_shown_but_not_summarised() -> None:
    data = [*rows(["big"], 30, 3), *rows(["small"], 29, 29)]
    table = classifier_table(count_predictions(data, ["g"]), ["g"])  # min_n 30
    assert table.group("small").too_small
    assert not table.group("big").too_small
    assert table.summary.groups == ("big",)
    assert table.summary.too_small == ("small",)
    assert table.summary.max_groups == ("big",)


def test_confusion_and_case_insensitive_labels() -> None:
    data: list[Row] = [
        ("Female", "male", ["f"]),
        (" female", "FEMALE ", ["f"]),
        ("male", "Male", ["m"]),
        ("male", "female", ["m"]),
    ]
    table = classifier_table(count_predictions(data, ["g"]), ["g"], min_n=1)
    assert table.group("f").confusion == (("female", "female", 1), ("female", "male", 1))
    assert table.group("f").errors == 1
    assert table.group("m").confusion == (("male", "female", 1), ("male", "male", 1))


def test_intersectional_and_marginal_tables() -> None:
    data = [
        *rows(["darker", "female"], 4, 2),
        *rows(["darker", "male"], 4, 1, "male"),
        *rows(["lighter", "female"], 4, 0),
        *rows(["", "male"], 2, 1, "male"),  # skin unlabelled: in the gender marginal only
    ]
    result = audit(count_predictions(data, ["skin", "gender"]), min_n=1)
    inter = result.intersectional
    assert [r.group for r in inter.groups] == [
        "darker x female",
        "darker x male",
        "lighter x female",
    ]
    assert inter.unlabelled.n == 2
    skin, gender = result.marginals
    assert (skin.group("darker").n, skin.group("darker").errors) == (8, 3)
    assert skin.unlabelled.n == 2
    assert (gender.group("male").n, gender.group("male").errors) == (6, 2)
    assert gender.unlabelled.n == 0
    doc = audit_json(result)
    row = doc["intersectional"]["groups"][0]
    assert set(row) >= {"group", "n", "errors", "error_rate", "ci_low", "ci_high", "too_small"}
    assert row["confusion"] == [
        {"truth": "female", "predicted": "female", "count": 2},
        {"truth": "female", "predicted": "male", "count": 2},
    ]


def test_single_attribute_has_no_marginals() -> None:
    assert audit(count_predictions(rows(["a"], 3, 1), ["g"])).marginals == ()


# --- Gender Shades, IBM, PPB (governance-rules.md section 2 [B2]) -------------------------------

# Published IBM error rates (%): DF 34.7, DM 12.0, LF 7.1, LM 0.3 [B2]. Subgroup sizes are the
# PPB counts published in Gender Shades (271 + 318 + 296 + 385 = 1,270 images [B1]); the error
# counts are the nearest integers to the published rates.
IBM = {
    ("darker", "female"): (271, 94, 34.7),
    ("darker", "male"): (318, 38, 12.0),
    ("lighter", "female"): (296, 21, 7.1),
    ("lighter", "male"): (385, 1, 0.3),
}


def ibm_csv(path: Path) -> Path:
    lines = ["image,truth,predicted,confidence,skin,gender"]
    i = 0
    for (skin, gender), (n, wrong, _) in IBM.items():
        other = "male" if gender == "female" else "female"
        for k in range(n):
            i += 1
            lines.append(
                f"ppb/{i:04d}.jpg,{gender},{other if k < wrong else gender},0.9,{skin},{gender}"
            )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_gender_shades_ibm_row(tmp_path: Path) -> None:
    counts = read_predictions(ibm_csv(tmp_path / "ibm.csv"), ["skin", "gender"])
    assert counts.rows == 1270
    result = audit(counts)
    table = result.intersectional
    for (skin, gender), (n, wrong, published) in IBM.items():
        row = table.group(f"{skin} x {gender}")
        assert (row.n, row.errors) == (n, wrong)
        assert row.error_rate is not None
        assert row.interval is not None
        assert abs(100 * row.error_rate - published) < 0.1  # 38/318 = 11.95% vs 12.0 published
        low, high = row.interval
        assert low <= published / 100 <= high
    assert f"{table.group('darker x female').error_rate:.1%}" == "34.7%"
    s, fisher = table.summary, table.fisher
    assert s.max_groups == ("darker x female",)
    assert s.min_groups == ("lighter x male",)
    assert s.difference == pytest.approx(94 / 271 - 1 / 385)
    assert s.ratio == pytest.approx((94 / 271) / (1 / 385))
    assert fisher is not None
    assert fisher.groups == ("darker x female", "lighter x male")
    assert fisher.p_value < 1e-20
    by_skin, by_gender = result.marginals
    assert by_gender.group("female").error_rate == pytest.approx(115 / 567)
    assert by_gender.group("male").error_rate == pytest.approx(39 / 703)
    assert by_skin.group("darker").error_rate == pytest.approx(132 / 589)
    assert by_skin.group("lighter").error_rate == pytest.approx(22 / 681)
    assert [e.group for e in counts.listed_errors] == ["darker x female"] * 20


# --- reading -------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_read_columns_case_blank_lines_and_hash(tmp_path: Path) -> None:
    import hashlib

    text = "\ufeffimage, truth ,predicted,gender\na.jpg,F,f,x\n\nb.jpg,f,m,\nc.jpg,m,m,y\n"
    path = write(tmp_path / "p.csv", text)
    counts = read_predictions(path, ["gender"])
    assert counts.rows == 3
    assert counts.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    table = classifier_table(counts, ["gender"], min_n=1)
    assert table.unlabelled.n == 1
    assert table.unlabelled.errors == 1
    (err,) = counts.listed_errors
    assert (err.line, err.image, err.group, err.truth, err.predicted) == (
        4,
        "b.jpg",
        UNLABELLED,
        "f",
        "m",
    )


def test_custom_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "label,guess,sex\nf,m,f\n")
    counts = read_predictions(path, ["sex"], truth_column="label", predicted_column="guess")
    assert counts.cells == {(("f",), "f", "m"): 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: empty file"),
        ("truth,gender\nf,f\n", "line 1: missing column(s) predicted"),
        ("truth,predicted\nf,f\n", "line 1: missing column(s) gender"),
        ("truth,predicted,gender,gender\n", "line 1: duplicate column(s) gender"),
        ("truth,predicted,gender\nf,f,f\nf,,f\n", "line 3: empty label in column 'predicted'"),
        ("truth,predicted,gender\n ,f,f\n", "line 2: empty label in column 'truth'"),
        ("truth,predicted,gender\nf,f\n", "line 2: expected 3 fields, got 2"),
        ("truth,predicted,gender\n\n", "no data rows"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(ClassifierInputError) as info:
        read_predictions(path, ["gender"])
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


def test_line_and_row_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    long = write(tmp_path / "long.csv", "truth,predicted,gender\nf,f,f\nf,f," + "x" * 70_000 + "\n")
    with pytest.raises(ClassifierInputError, match=r"long\.csv line 3: line longer than 65536"):
        read_predictions(long, ["gender"])
    monkeypatch.setattr(classifier, "MAX_ROWS", 2)
    many = write(tmp_path / "many.csv", "truth,predicted,gender\nf,f,f\nf,f,f\nf,f,f\n")
    with pytest.raises(ClassifierInputError, match=r"many\.csv line 4: more than 2 rows"):
        read_predictions(many, ["gender"])


def test_missing_file_and_bad_utf8(tmp_path: Path) -> None:
    with pytest.raises(ClassifierInputError, match=r"nope\.csv: file not found"):
        read_predictions(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"truth,predicted,gender\nf,f,\xff\n")
    with pytest.raises(ClassifierInputError, match=r"bad\.csv line 2: not UTF-8"):
        read_predictions(bad)
