"""``tools/dev.py``'s fast lane: ``test --fast`` is pytest with ``-m "not slow"``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

DEV = Path(__file__).resolve().parents[1] / "tools" / "dev.py"


def _dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("facegate_dev_tool", DEV)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fast_leaves_out_the_slow_marker_and_keeps_other_arguments() -> None:
    dev = _dev()
    assert dev.pytest_args([]) == []
    assert dev.pytest_args(["-k", "pool"]) == ["-k", "pool"]
    assert dev.pytest_args(["--fast", "-k", "pool"]) == ["-m", "not slow", "-k", "pool"]


def test_the_slow_marker_is_registered(pytestconfig: pytest.Config) -> None:
    markers = pytestconfig.getini("markers")
    assert any(m.startswith("slow:") for m in markers)
