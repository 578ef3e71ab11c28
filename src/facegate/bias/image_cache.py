"""The SQLite files the bias toolkit keeps per-image results in, keyed by (image SHA-256, key).

``key`` says what computed a result (engine configuration and model versions), so one file
serves every run and data set and an identical image is computed once per key. Each call opens
its own connection, committed on success, rolled back on error and always closed; a 30 s busy
timeout lets a reader wait for a writer. Not for concurrent writers: one audit run at a time per
file. Subclasses (:class:`facegate.bias.descriptors.DescriptorCache`,
:class:`facegate.bias.attributes.AttributeCache`) own their table and its rows.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHUNK = 500
"""Digests per ``IN (...)`` query (SQLite allows 999 parameters by default)."""


def default_path(name: str) -> Path:
    """``$XDG_CACHE_HOME/facegate/<name>/<name>.sqlite3`` (``~/.cache`` by default)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "facegate" / name / f"{name}.sqlite3"


class ImageCache:
    """A SQLite file whose table ``schema`` creates if absent (its parent directory too)."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(schema)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection that commits on success, rolls back on error, and is always closed."""
        db = sqlite3.connect(self.path, timeout=30.0)
        try:
            with db:
                yield db
        finally:
            db.close()

    def _rows(self, select: str, key: str, digests: Sequence[str]) -> list[tuple[Any, ...]]:
        """The rows ``select`` (``SELECT ... FROM table``) returns for ``key`` among ``digests``
        (each digest once; absent ones have no row), :data:`CHUNK` digests a query."""
        unique = sorted(set(digests))
        out: list[tuple[Any, ...]] = []
        with self._connect() as db:
            for start in range(0, len(unique), CHUNK):
                chunk = unique[start : start + CHUNK]
                marks = ",".join("?" * len(chunk))  # only "?" marks are interpolated
                out.extend(
                    db.execute(f"{select} WHERE key = ? AND sha256 IN ({marks})", [key, *chunk])
                )
        return out
