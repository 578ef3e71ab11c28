"""Package docstrings that list their modules list all of them (they had drifted)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest


@pytest.mark.parametrize("package", ["facegate.admin", "facegate.policy"])
def test_the_package_docstring_names_every_module(package: str) -> None:
    module = importlib.import_module(package)
    doc = module.__doc__ or ""
    names = [m.name for m in pkgutil.iter_modules(module.__path__) if not m.name.startswith("_")]
    missing = [n for n in names if f"{package}.{n}`" not in doc]
    assert not missing, f"{package}'s docstring does not name {missing}"
