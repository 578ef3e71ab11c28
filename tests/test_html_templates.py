"""Before/after: the Jinja2 templates give the same pages as the f-string HTML they replaced.

Both renderers get the same realistic input: the transparency document of a real service graph
(the shipped calibrations, three descriptor models, the policy packs; and variants with a
registered audit outside its bounds and face models enabled), and the audit transparency report
of a realistic quarter (``tests/audit/report_stream.py``; and variants: an empty log, a failed
verification, hostile strings). The pages are compared as DOM: the same elements in the same
order with the same attributes, and the same text (whitespace between elements aside).
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from facegate.audit.record import RequestRecord
from facegate.audit.report import build_report
from facegate.audit.report_html import render_html as report_after
from facegate.audit.report_model import TransparencyReport
from facegate.config import Settings
from facegate.services import Services
from facegate.transparency import render_html as transparency_after
from facegate.transparency import transparency_document
from tests.audit.report_stream import SINCE, build_stream, ts
from tests.html_before.report import render_html as report_before
from tests.html_before.transparency import render_html as transparency_before

VOID = {"meta", "br", "hr", "img", "link", "input", "wbr", "col", "area", "base", "source"}
Node = tuple[str, tuple[tuple[str, str | None], ...], list[Any]]


class Dom(HTMLParser):
    """A page as a tree: (tag, sorted attributes, children); text with its runs of white space
    made one space and stripped, empty text dropped; the doctype as a leading text node."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root: Node = ("#document", (), [])
        self.stack: list[Node] = [self.root]

    def handle_decl(self, decl: str) -> None:
        self.stack[-1][2].append(f"<!{decl.lower()}>")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node: Node = (tag, tuple(sorted(attrs)), [])
        self.stack[-1][2].append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1][2].append((tag, tuple(sorted(attrs)), []))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1][0] == tag, f"</{tag}> closes <{self.stack[-1][0]}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if not text:
            return
        children = self.stack[-1][2]
        if children and isinstance(children[-1], str):
            children[-1] = " ".join((children[-1] + " " + text).split())
        else:
            children.append(text)


def dom(page: str) -> Node:
    parser = Dom()
    parser.feed(page)
    parser.close()
    assert len(parser.stack) == 1, "unclosed elements"
    return parser.root


def _elements(node: Node) -> Iterator[str]:
    yield node[0]
    for child in node[2]:
        if not isinstance(child, str):
            yield from _elements(child)


def assert_same_page(before: str, after: str) -> None:
    old, new = dom(before), dom(after)
    assert list(_elements(new)) == list(_elements(old))
    assert new == old


# --- GET /transparency -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def transparency(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("transparency") / "data"
    packs = ("aws-public-safety-terms", "eu-ai-act-art5", "deployment-gate")
    services = Services.open(
        Settings(data_dir=data, policy_packs=packs, engine_workers=1), start_engine=False
    )
    try:
        yield transparency_document(services)
    finally:
        services.close()


def _variants(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield doc
    audited = copy.deepcopy(doc)
    gate = audited["deployment_gate"]
    gate["audit"] = {
        "audit_id": "audit-<1>",
        "registered_at": "2026-11-30T10:00:00Z",
        "dataset": "lfw & fairface_val",
        "report_sha256": "ab" * 32,
    }
    gate["status"] = {
        "registered": True,
        "within_bounds": False,
        "reasons": ["FMR Max/GeoMean 12.3 > 10.0", "<group> FNMR 0.61 > 0.5"],
    }
    gate["enforced_by"] = []
    models = audited["attributes"]["face_models"]
    models["enabled"] = [m["name"] for m in models["models"]][:1]
    for m in models["models"][:1]:
        m["enabled"] = True
    yield audited
    bare = copy.deepcopy(doc)
    bare["model"] = {"model_version": "m", "similarity_version": "v<0>", "calibrated": False}
    bare["descriptor_models"] = []
    del bare["attributes"]
    yield bare


def test_transparency_page_is_the_same(transparency: dict[str, Any]) -> None:
    assert transparency["model"]["table"], "the shipped calibration has a measured table"
    assert len(transparency["descriptor_models"]) >= 2
    for doc in _variants(transparency):
        assert_same_page(transparency_before(doc), transparency_after(doc))


# --- the audit transparency report -----------------------------------------------------------


def _reports() -> Iterator[TransparencyReport]:
    generated = ts("2027-01-02T09:00:00Z")
    quarter = build_report(
        build_stream(),
        "2026-10-01",
        "2026-12-31",
        title="facegate transparency report, 2026 Q4",
        generated_at=generated,
        verified=True,
        verify_summary="596 entries, 4 checkpoints, chain intact",
    )
    yield quarter
    yield replace(quarter, integrity=replace(quarter.integrity, verified=False))
    yield replace(quarter, integrity=replace(quarter.integrity, verified=None))
    yield build_report([], "2026-10-01", "2026-12-31", title="empty", generated_at=generated)
    hostile = [
        RequestRecord(
            at=SINCE + k,
            request_id=str(k),
            operation="SearchFacesByImage",
            decision="deny",
            latency_ms=1.0,
            org_id="<script>alert(1)</script>",
            sector="ngo",
            policy_ids=('pack.forbid-"><img src=x onerror=alert(2)>',),
            error_code="AccessDeniedException",
        ).to_json()
        for k in range(3)
    ]
    yield build_report(
        hostile, "2026-10-01", "2026-10-02", title="Q4 <i>report</i> & co",
        verify_summary="<a href=x>", generated_at=generated,
    )  # fmt: skip


def test_audit_report_page_is_the_same() -> None:
    for report in _reports():
        assert_same_page(report_before(report), report_after(report))


def test_the_comparison_sees_a_changed_word_and_a_moved_element() -> None:
    page = transparency_before(
        {
            "service": {"version": "1", "generated_at": "t"},
            "model": {"model_version": "m", "similarity_version": "v", "calibrated": False},
            "deployment_gate": {
                "enforced_by": [],
                "bounds": {"threshold_pct": 99.0, "max_fmr_ratio": 10.0, "max_fnmr": 0.5},
                "status": {"registered": False, "within_bounds": False, "reasons": []},
                "audit": None,
            },
            "policy": {"packs": [], "policies": []},
        }
    )
    assert_same_page(page, page.replace("</p>\n<h2>", "</p>\n\n  <h2>"))
    with pytest.raises(AssertionError):
        assert_same_page(page, page.replace("not calibrated", "not  calibrated!"))
    with pytest.raises(AssertionError):
        assert_same_page(page, page.replace("<strong>no</strong>", "<em>no</em>"))


def test_every_template_is_package_data() -> None:
    """The wheel ships every template (pyproject's package-data) where its loader looks."""
    root = Path(__file__).resolve().parents[1]
    package_data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["package-data"]
    src = root / "src"
    found = sorted(src.glob("facegate/**/templates/*.html"))
    assert len(found) >= 16  # the console's, transparency.html, audit/report.html
    for template in found:
        package_dir = template.parent.parent
        package = ".".join(package_dir.relative_to(src).parts)
        relative = template.relative_to(package_dir).as_posix()
        globs = package_data.get(package, [])
        assert any(fnmatch(relative, g) for g in globs), (package, relative)
