"""Jinja2 environments for facegate's HTML pages (the console, ``GET /transparency``, the audit
transparency report, the bias reports): templates shipped as package data in
``<package>/templates/``.

Every environment autoescapes (a value from a record is text, never markup, unless the code
marks it ``Markup``: only the SVG charts built by :mod:`facegate.svg`'s callers, which escape
their own text), fails on an undefined name instead of printing nothing
(``StrictUndefined``), and has the filter ``fmt`` (``{{ n|fmt(",.1f") }}`` is Python's
``format(n, ",.1f")``), so numbers are formatted as in Python.

A package's templates are its own ``templates/`` folder; ``facegate/templates/`` is also
reachable from every package under the prefix ``facegate/``, for the one frame every
self-contained page extends, ``{% extends "facegate/page.html" %}`` (doctype, language,
character set, viewport, title, inline style; the page fills the blocks ``meta``, ``title``,
``style`` and ``body``).
"""

from __future__ import annotations

from functools import cache

import jinja2


@cache
def environment(package: str) -> jinja2.Environment:
    """The environment over ``package``'s ``templates/`` folder and, as ``facegate/<name>``,
    ``facegate/templates/`` (one per package, built once)."""
    shared = jinja2.PrefixLoader({"facegate": jinja2.PackageLoader("facegate", "templates")})
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.PackageLoader(package, "templates"), shared]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = format
    return env
