"""What every operation needs: its dependencies, image input, thresholds, pagination tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from facegate.engine.matching import Matcher
from facegate.engine.types import Analysis
from facegate.errors import (
    InvalidPaginationTokenException,
    InvalidParameterException,
    InvalidS3ObjectException,
)
from facegate.store.idempotency import IdempotencyRepository
from facegate.store.store import FaceStore

T = TypeVar("T")


class AsyncEngine(Protocol):
    """The engine as operations see it (``EnginePool`` implements it)."""

    @property
    def model_version(self) -> str: ...

    async def analyze_async(
        self, data: bytes, *, descriptors: bool = True, max_faces: int | None = None
    ) -> Analysis: ...

    def for_tenant(self, tenant: str) -> AsyncEngine:
        """This engine for one organisation's requests (the pool shares workers fairly)."""
        ...


class PageTokens:
    """Opaque, tamper-evident pagination tokens: ``<cursor>.<mac>``, bound to the listing.

    The MAC (HMAC-SHA256, truncated to 16 bytes) covers the operation, the collection and any
    filter, so a token from one listing cannot be replayed on another; a changed or foreign token
    raises InvalidPaginationTokenException. Tokens stay well under Rekognition's 255 characters.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, scope: str, cursor: int) -> str:
        digest = hmac.new(self._key, f"{scope}\0{cursor}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:16]).decode("ascii").rstrip("=")

    def issue(self, scope: str, cursor: int) -> str:
        return f"{cursor}.{self._mac(scope, cursor)}"

    def cursor(self, scope: str, token: str | None) -> int:
        """The cursor a token carries (0 for no token)."""
        if token is None:
            return 0
        head, _, mac = token.partition(".")
        if not head.isdigit() or len(head) > 19:
            raise InvalidPaginationTokenException("Invalid pagination token.")
        cursor = int(head)
        if not hmac.compare_digest(mac, self._mac(scope, cursor)):
            raise InvalidPaginationTokenException("Invalid pagination token.")
        return cursor


@dataclass(frozen=True)
class Enrolment:
    """What an enrolment records beside the face: the consent record the caller sent and the
    deadline a retention obligation set (epoch seconds; None: kept until deleted)."""

    consent_ref: str | None = None
    retain_until: float | None = None


@dataclass(frozen=True)
class OpDeps:
    """Everything operations use; built once by ``facegate.services``, then narrowed per request
    with :meth:`for_caller` (the caller's organisation and enrolment terms)."""

    engine: AsyncEngine
    store: FaceStore
    idempotency: IdempotencyRepository
    matcher: Matcher
    pages: PageTokens
    region: str
    account_id: str
    org_id: str | None = None
    enrolment: Enrolment = Enrolment()

    def for_caller(self, org_id: str, enrolment: Enrolment) -> OpDeps:
        """These dependencies for one request of ``org_id`` (collections it creates are its own;
        ListCollections shows only its own; its images queue as its own in the engine)."""
        return replace(
            self, org_id=org_id, enrolment=enrolment, engine=self.engine.for_tenant(org_id)
        )

    def collection_arn(self, collection_id: str) -> str:
        """Rekognition's form: ``aws:rekognition:<region>:<account>:collection/<id>``."""
        return f"aws:rekognition:{self.region}:{self.account_id}:collection/{collection_id}"


async def run_sync(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking store work in a thread so the event loop keeps serving."""
    return await asyncio.to_thread(fn, *args)


def image_bytes(image: Mapping[str, Any], member: str = "Image") -> bytes:
    """The bytes of an ``Image`` parameter; S3 input is not supported by a self-hosted server."""
    if image.get("s3_object") is not None:
        raise InvalidS3ObjectException(
            f"{member}.S3Object is not supported by facegate: pass the image as {member}.Bytes."
        )
    data = image.get("bytes")
    if not isinstance(data, bytes):
        raise InvalidParameterException(f"{member}: Bytes is required.")
    return data


def pct(value: float | None, default: float) -> float:
    """A Percent parameter or its documented default."""
    return default if value is None else float(value)
