"""Shared by the benchmark scripts: the machine description and writing results."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import dlib

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SAMPLES = ROOT.parent / "shared" / "data" / "samples"


def machine_info() -> dict[str, str]:
    """CPU model, cores, Python and dlib versions (and whether dlib uses BLAS)."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "dlib": dlib.__version__,
        "dlib_blas": str(getattr(dlib, "DLIB_USE_BLAS", "unknown")),
        "load_1m_at_end": f"{os.getloadavg()[0]:.2f}",
    }


def machine_line(info: dict[str, str]) -> str:
    return (
        f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"dlib {info['dlib']} (BLAS: {info['dlib_blas']}), "
        f"load average {info.get('load_1m_at_end', '?')} when the run ended"
    )


def write_results(name: str, document: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def cell(value: object, width: int, digits: int) -> str:
    """A right-aligned number, or '-' for a missing (or non-numeric) one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{'-':>{width}}"
    return f"{value:{width}.{digits}f}"
