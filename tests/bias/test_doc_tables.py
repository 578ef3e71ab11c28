"""docs/bias.md's (and docs/calibration.md's) measured tables are what the stored reports of
their commands give.

``tools/bias_doc.py run`` re-runs the commands and stores their JSON reports under
bench/results/bias_doc/; ``render`` writes the tables. This test needs no descriptors: it checks
the documents against the stored reports, and the reports against the commands.
"""

from __future__ import annotations

import copy
import importlib.util
import shlex
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from facegate.bias.doc_tables import TABLES, drift, normalisation_targets, regions, rewrite

ROOT = Path(__file__).resolve().parents[2]
BIAS_MD = ROOT / "docs" / "bias.md"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bias_doc", ROOT / "tools" / "bias_doc.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return _tool()


@pytest.fixture(scope="module")
def reports(tool: ModuleType) -> dict[str, dict[str, object]]:
    loaded: dict[str, dict[str, object]] = tool.load_reports(ROOT / tool.RESULTS)
    return loaded


def test_every_table_in_the_docs_matches_the_stored_reports(
    tool: ModuleType, reports: dict[str, dict[str, object]]
) -> None:
    made: list[str] = []
    for path, expected in tool.DOCS.items():
        doc = (ROOT / path).read_text(encoding="utf-8")
        assert drift(doc, reports, expected) == [], f"{path}: tools/bias_doc.py render"
        assert set(regions(doc)) == set(expected), path
        made += expected
    assert sorted(made) == sorted(TABLES), "every table is in exactly one document"


def test_the_stored_reports_come_from_the_documented_commands(
    tool: ModuleType, reports: dict[str, dict[str, object]]
) -> None:
    docs = " ".join(
        " ".join((ROOT / path).read_text(encoding="utf-8").split()) for path in tool.DOCS
    )
    for name, argv in tool.RUNS.items():
        words = shlex.split(str(reports[name]["command"]))
        assert words[:3] == ["facegate", *argv[:2]], name
        for i, flag in enumerate(argv[2:], start=2):
            if not flag.startswith("--"):
                continue
            assert flag in words, (name, flag)
            value = argv[i + 1] if i + 1 < len(argv) else None
            if value is not None and not value.startswith("--"):
                assert words[words.index(flag) + 1] == value, (name, flag)
        # a document shows each command as an auditor types it
        assert "facegate " + shlex.join(argv) in docs, name


def test_a_changed_number_or_a_missing_table_is_drift(
    tool: ModuleType, reports: dict[str, dict[str, object]]
) -> None:
    expected = tool.DOCS[Path("docs/bias.md")]
    doc = BIAS_MD.read_text(encoding="utf-8")
    body = regions(doc)["impostors"]
    first_pct = next(w for w in body.split() if w.endswith("%"))
    edited = doc.replace(body, body.replace(first_pct, "0.01%", 1))
    assert drift(edited, reports, expected) == ["impostors"]
    assert rewrite(edited, reports) == doc
    start = doc.index("<!-- bias-doc:sampling -->")
    end = doc.index("<!-- /bias-doc:sampling -->") + len("<!-- /bias-doc:sampling -->")
    assert drift(doc[:start] + doc[end:], reports, expected) == ["sampling"]
    unknown = "<!-- bias-doc:nosuch -->\nx\n<!-- /bias-doc:nosuch -->\n"
    assert drift(doc + unknown, reports, expected) == ["nosuch"]


def test_cache_use_is_not_published(reports: dict[str, dict[str, object]]) -> None:
    """A rerun reads descriptors from the cache that the first run computed: the doc must not
    change with it."""
    doc = BIAS_MD.read_text(encoding="utf-8")
    lineup = reports["lineup_cf"]
    assert "from cache" in str(lineup["probes"]["descriptors"])  # type: ignore[index]
    assert all("from cache" not in body for body in regions(doc).values())


def test_the_classifier_table_has_every_group_of_its_report(
    reports: dict[str, dict[str, object]],
) -> None:
    body = regions(BIAS_MD.read_text(encoding="utf-8"))["classifier"]
    report: dict[str, Any] = reports["classifier_gender"]
    for table in [report["intersectional"], *report["marginals"]]:
        for g in table["groups"]:
            rate = f"{100 * g['error_rate']:.1f}%"
            assert f"| {g['group']} |" in body
            assert f"| {g['errors']:,} | {rate} (" in body


def test_normalisation_targets_are_judged_on_the_report(
    reports: dict[str, dict[str, object]],
) -> None:
    report: dict[str, Any] = copy.deepcopy(reports["normalisation"])
    body = normalisation_targets({"normalisation": report})
    assert "**not met**" not in body  # the shipped matcher meets every target on this data
    norm = report["scorers"]["normalised"]
    norm["equal_fnmr"]["max_geomean"] = 3.2
    norm["lfw_accuracy"]["mean"] = report["scorers"]["raw"]["lfw_accuracy"]["mean"] - 0.004
    body = normalisation_targets({"normalisation": report})
    assert "at most 3: **not met**" in body
    assert "within 0.3 points: -0.40, **not met**" in body
