"""Shared fixtures: the samples folder and one engine per test session (models load once)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from facegate.engine.core import EngineConfig, FaceEngine

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (PROJECT_ROOT / ".." / "shared" / "data").resolve()
SAMPLES = SHARED_DATA / "samples"


@pytest.fixture(scope="session")
def samples() -> Path:
    """../shared/data/samples (real photos; see its MANIFEST.md)."""
    if not SAMPLES.is_dir():
        pytest.fail(f"sample images not found at {SAMPLES}: tests need ../shared/data")
    return SAMPLES


@pytest.fixture(scope="session")
def engine() -> FaceEngine:
    """One in-process engine with the default configuration."""
    return FaceEngine(EngineConfig())


@pytest.fixture(scope="session")
def sample_bytes(samples: Path) -> Callable[[str], bytes]:
    """Read a sample file by its path relative to the samples folder."""

    def read(name: str) -> bytes:
        return (samples / name).read_bytes()

    return read
