"""The Jinja2 environments of facegate's pages: autoescaping, strict names, the fmt filter, one
environment per package, and every template shipped as package data."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

import jinja2
import pytest

from facegate.templating import environment

ROOT = Path(__file__).resolve().parents[1]


def test_values_are_escaped_names_are_strict_and_numbers_formatted_as_in_python() -> None:
    env = environment("facegate")
    page = env.from_string("<p title='{{ t }}'>{{ t }} {{ n|fmt(',') }} {{ x|fmt('.2e') }}</p>")
    text = page.render(t="<b>'&\"", n=1234567, x=0.000123)
    assert (
        text
        == "<p title='&lt;b&gt;&#39;&amp;&#34;'>&lt;b&gt;&#39;&amp;&#34; 1,234,567 1.23e-04</p>"
    )
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()
    assert environment("facegate") is env
    assert environment("facegate.audit") is not env


def test_each_package_finds_its_templates() -> None:
    assert environment("facegate").get_template("transparency.html")
    assert environment("facegate.audit").get_template("report.html")
    assert environment("facegate.console").get_template("base.html")
    assert environment("facegate.bias").get_template("pairs.html")
    with pytest.raises(jinja2.TemplateNotFound):
        environment("facegate.audit").get_template("transparency.html")
    with pytest.raises(jinja2.TemplateNotFound):
        environment("facegate.bias").get_template("report.html")


def test_every_page_extends_the_one_frame() -> None:
    """The transparency page, the audit report and every bias report page share
    ``facegate/templates/page.html`` (reachable from each package as ``facegate/page.html``);
    other packages' templates are not."""
    frame = environment("facegate").get_template("page.html").filename
    for package, name in (
        ("facegate", "transparency.html"),
        ("facegate.audit", "report.html"),
        ("facegate.bias", "frame.html"),
    ):
        env = environment(package)
        assert env.get_template("facegate/page.html").filename == frame
        source = env.loader.get_source(env, name)[0] if env.loader else ""
        assert '{% extends "facegate/page.html" %}' in source, name


def test_every_template_is_package_data() -> None:
    """The wheel ships every template (pyproject's package-data) where its loader looks."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    src = ROOT / "src"
    found = sorted(src.glob("facegate/**/templates/*.html"))
    assert len(found) >= 24  # the console's, the frame, transparency, audit's and bias's
    for template in found:
        package_dir = template.parent.parent
        package = ".".join(package_dir.relative_to(src).parts)
        relative = template.relative_to(package_dir).as_posix()
        assert any(fnmatch(relative, g) for g in package_data.get(package, [])), template
