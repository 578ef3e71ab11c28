"""What every operation needs: its dependencies, image input, thresholds, pagination tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NoReturn, Protocol, TypeVar, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from facegate.engine.descriptors import DescriptorModel
from facegate.engine.matching import Matcher, MatcherSet
from facegate.engine.types import Analysis
from facegate.errors import (
    InvalidPaginationTokenException,
    InvalidParameterException,
    InvalidS3ObjectException,
)
from facegate.ops.estimates import FalseCandidates
from facegate.store.collections import collection_not_found
from facegate.store.idempotency import IdempotencyRepository, TokenScope
from facegate.store.records import CollectionRecord
from facegate.store.store import FaceStore

T = TypeVar("T")


class AsyncEngine(Protocol):
    """The engine as operations see it (``EnginePool`` implements it)."""

    @property
    def model_version(self) -> str: ...

    async def analyze_async(
        self,
        data: bytes,
        *,
        descriptors: bool = True,
        max_faces: int | None = None,
        attributes: frozenset[str] = frozenset(),
        model: str | None = None,
    ) -> Analysis: ...

    def for_tenant(self, tenant: str) -> AsyncEngine:
        """This engine for one organisation's requests (the pool shares workers fairly)."""
        ...


class PageTokens:
    """Opaque, tamper-evident pagination tokens, bound to the listing and the caller.

    A token is the cursor (a position the store gives, e.g. a row number among all of the
    server's collections) encrypted with AES-256-GCM under a key derived from the master key,
    with a random nonce and the listing's scope as associated data: the caller learns nothing
    from it (not the cursor, not how many rows other organisations made; two tokens for the
    same position differ), and a token changed, or issued for another scope, raises
    InvalidPaginationTokenException. The scope names the operation, the organisation, the
    collection's identity and any filter, so a token cannot be replayed by another
    organisation, on another listing, or on a collection created again under the same id.
    Tokens are 48 characters, well under Rekognition's 255.
    """

    _NONCE = 12

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(hashlib.sha256(b"facegate page tokens\0" + key).digest())

    def issue(self, scope: str, cursor: int) -> str:
        if not 0 <= cursor < 2**63:
            raise ValueError("cursor out of range")
        nonce = secrets.token_bytes(self._NONCE)
        sealed = self._aead.encrypt(nonce, cursor.to_bytes(8, "big"), scope.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def cursor(self, scope: str, token: str | None) -> int:
        """The cursor a token carries (0 for no token)."""
        if token is None:
            return 0
        invalid = InvalidPaginationTokenException("Invalid pagination token.")
        if len(token) != 48 or not token.isascii():
            raise invalid
        try:
            raw = base64.urlsafe_b64decode(token)
            plain = self._aead.decrypt(raw[: self._NONCE], raw[self._NONCE :], scope.encode())
        except (ValueError, InvalidTag):
            raise invalid from None
        return int.from_bytes(plain, "big")


@dataclass(frozen=True)
class Enrolment:
    """What an enrolment records beside the face: the consent record the caller sent and the
    deadline a retention obligation set (epoch seconds; None: kept until deleted)."""

    consent_ref: str | None = None
    retain_until: float | None = None


@dataclass(frozen=True)
class Bound:
    """The collection a request's policy decision was about, resolved once at the policy step
    in the caller's organisation: ``record`` None means it held no collection of that id then.
    Operations act on exactly this collection (:meth:`OpDeps.collection`), never on whatever
    holds the id when the work gets to it."""

    collection_id: str
    record: CollectionRecord | None


@dataclass(frozen=True)
class OpDeps:
    """Everything operations use; built once by ``facegate.services``, then narrowed per request
    with :meth:`for_caller` (the caller's organisation, enrolment terms and the collection the
    decision was about)."""

    engine: AsyncEngine
    store: FaceStore
    idempotency: IdempotencyRepository
    matcher: Matcher
    pages: PageTokens
    region: str
    account_id: str
    org_id: str | None = None
    enrolment: Enrolment = Enrolment()
    bound: Bound | None = None
    matchers: MatcherSet | None = None
    """One matcher per descriptor model (``engine.matching``): a collection's searches use its
    model's (:func:`collection_matcher`); None: :attr:`matcher` for every collection (tests).
    :attr:`matcher` is the server's default model's, which CompareFaces uses."""
    models: CollectionModels | None = None
    """Which models a new collection may be pinned to (CreateCollection); None: only the
    engine's own."""
    false_candidates: FalseCandidates | None = None
    """A 1:N search's estimate of its false candidates, and the bound it must keep
    (:mod:`facegate.ops.estimates`); None: no estimate (tests, operations that search none)."""

    def for_caller(
        self,
        org_id: str,
        enrolment: Enrolment,
        bound: Bound | None = None,
        *,
        compares_faces: bool,
    ) -> OpDeps:
        """These dependencies for one request of ``org_id`` (collections it creates are its own;
        it sees and names only its own; its images queue as its own in the engine) about the
        collection ``bound``. Unless the operation ``compares_faces`` (its row in
        :mod:`facegate.operations`), the matcher and the store's similarity searches refuse
        every use (:class:`UndeclaredComparison`), so an operation cannot compare faces outside
        the rules that govern face comparison."""
        engine = self.engine.for_tenant(org_id)
        if compares_faces:
            return replace(self, org_id=org_id, enrolment=enrolment, bound=bound, engine=engine)
        return replace(
            self,
            org_id=org_id,
            enrolment=enrolment,
            bound=bound,
            engine=engine,
            matcher=cast(Matcher, _Refusing("the matcher")),
            matchers=cast(MatcherSet, _Refusing("the matchers")),
            store=cast(FaceStore, _StoreWithoutSearch(self.store)),
        )

    @property
    def namespace(self) -> str:
        """The organisation whose collections this request names ("" when not narrowed to a
        caller: the namespace of collections created without an owner, e.g. in tests)."""
        return self.org_id or ""

    def collection(self, collection_id: str) -> CollectionRecord:
        """The caller's collection ``collection_id`` (blocking: call with :func:`run_sync`).

        For the collection the request was decided on (:attr:`bound`), that very collection,
        read again by its identity: ResourceNotFoundException if it did not exist at the
        decision or was deleted since, even if the id names a new collection now. Otherwise the
        collection the caller's organisation holds under that id now. Another organisation's
        collection of the same id is never found: it is not in the caller's namespace."""
        bound = self.bound
        if bound is not None and bound.collection_id == collection_id:
            if bound.record is None:
                raise collection_not_found(collection_id)
            return self.store.refresh(bound.record)
        return self.store.get_collection(self.namespace, collection_id)

    def collection_arn(self, collection_id: str) -> str:
        """Rekognition's form: ``arn:aws:rekognition:<region>:<account>:collection/<id>``."""
        return f"arn:aws:rekognition:{self.region}:{self.account_id}:collection/{collection_id}"


def collection_matcher(deps: OpDeps, collection: CollectionRecord) -> Matcher:
    """The matcher of the collection's own descriptor model: faces are compared only with
    faces of their model, by that model's distance and calibration. A model this server cannot
    score (no calibration any more, not installed) refuses the search: nothing uncalibrated
    serves a 1:N search."""
    if deps.matchers is None:
        return deps.matcher
    try:
        return deps.matchers.for_model(collection.face_model_version)
    except KeyError:
        reason = f"this server has no face model {collection.face_model_version}"
    except ValueError as exc:
        reason = str(exc)
    raise InvalidParameterException(
        f"The collection {collection.collection_id} cannot be searched: {reason}."
    )


def model_of(deps: OpDeps, collection: CollectionRecord) -> dict[str, Any]:
    """The engine's ``model`` argument for a collection's faces: its descriptor model, or none
    when that is the engine's own (dlib's), so the engine works exactly as before for it."""
    version = collection.face_model_version
    return {} if version == deps.engine.model_version else {"model": version}


@dataclass(frozen=True)
class CollectionModels:
    """The descriptor models collections may be pinned to: the server's default
    (``FACEGATE_FACE_MODEL``) unless CreateCollection names another with the tag
    :data:`MODEL_TAG`, and only one that is registered, installed (its weights verified) and
    calibrated (fail closed)."""

    matchers: MatcherSet
    default_version: str
    allow_unpinned: bool = False

    def choose(self, requested: str | None) -> DescriptorModel:
        """The model of a new collection; InvalidParameterException naming why not."""
        from facegate.engine.describers import DescriptorModelUnavailable, verify_model

        version = requested or self.default_version
        registry = self.matchers.registry
        if version not in registry:
            known = ", ".join(registry.versions())
            raise InvalidParameterException(
                f"Tag {MODEL_TAG}: this server has no face model {version} (it has: {known})."
            )
        model = registry.get(version)
        reason = self.matchers.servable(version)
        if reason is None:
            try:
                for part in [registry.get(v) for v in model.parts] or [model]:
                    verify_model(part, allow_unpinned=self.allow_unpinned)
            except DescriptorModelUnavailable as exc:
                reason = str(exc)
        if reason is not None:
            raise InvalidParameterException(
                f"The face model {version} cannot be a collection's model: {reason}."
            )
        return model


MODEL_TAG = "facegate:face-model"
"""Tag chosen at CreateCollection to pin the collection to a descriptor model other than the
server's default (``facegate models list``); it is kept with the collection's tags."""


class UndeclaredComparison(RuntimeError):
    """An operation compared faces although its row says it does not (a programming error: the
    request fails with InternalServerError and nothing is returned)."""


COMPARING_STORE_METHODS: frozenset[str] = frozenset(
    {"nearest", "search", "indexed_vectors", "descriptor", "descriptors"}
)
"""The store's methods that find or read face vectors: only face comparison uses them."""


class _Refusing:
    """Stands in for the matcher of an operation that does not compare faces."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> NoReturn:
        raise UndeclaredComparison(
            f"{self._what}.{name} used by an operation that is not declared to compare faces "
            "(facegate/operations.py)"
        )


class _StoreWithoutSearch:
    """The face store without its vector searches and reads (:data:`COMPARING_STORE_METHODS`)."""

    def __init__(self, store: FaceStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name in COMPARING_STORE_METHODS:
            raise UndeclaredComparison(
                f"FaceStore.{name} used by an operation that is not declared to compare faces "
                "(facegate/operations.py)"
            )
        return getattr(self._store, name)


def token_scope(org_id: str, bound: Bound | None) -> TokenScope:
    """Where a ClientRequestToken of ``org_id`` about the collection ``bound`` means something:
    the organisation and the collection's identity (none: "")."""
    record = bound.record if bound is not None else None
    return TokenScope(org_id, record.uid if record is not None else "")


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
