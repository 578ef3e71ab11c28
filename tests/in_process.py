"""Test doubles over the real engine."""

from __future__ import annotations

import asyncio

from facegate.engine.core import FaceEngine
from facegate.engine.types import Analysis


class InProcessEngine:
    """The session's real engine behind the interface the operations call (the pool's)."""

    def __init__(self, engine: FaceEngine) -> None:
        self.engine = engine

    @property
    def model_version(self) -> str:
        return self.engine.model_version

    def for_tenant(self, tenant: str) -> InProcessEngine:
        return self

    async def analyze_async(
        self,
        data: bytes,
        *,
        descriptors: bool = True,
        max_faces: int | None = None,
        attributes: frozenset[str] = frozenset(),
        model: str | None = None,
    ) -> Analysis:
        return await asyncio.to_thread(
            self.engine.analyze,
            data,
            descriptors=descriptors,
            max_faces=max_faces,
            attributes=attributes,
            model=model,
        )
