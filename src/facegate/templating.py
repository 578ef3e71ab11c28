"""Jinja2 environments for facegate's HTML pages (the console, ``GET /transparency``, the audit
transparency report): templates shipped as package data in ``<package>/templates/``.

Every environment autoescapes (a value from a record is text, never markup, unless the code
marks it ``Markup``: only the SVG charts built by :mod:`facegate.svg`'s callers, which escape
their own text), fails on an undefined name instead of printing nothing
(``StrictUndefined``), and has the filter ``fmt`` (``{{ n|fmt(",.1f") }}`` is Python's
``format(n, ",.1f")``), so numbers are formatted as in Python.
"""

from __future__ import annotations

from functools import cache

import jinja2


@cache
def environment(package: str) -> jinja2.Environment:
    """The environment over ``package``'s ``templates/`` folder (one per package, built once)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = format
    return env
