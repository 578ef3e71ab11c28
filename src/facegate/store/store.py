"""The face store: collections, faces, users and tags in the database (SQLite or PostgreSQL),
vectors in memory or in PostgreSQL (pgvector).

:class:`FaceStore` is the one object the operations, the pipeline and the admin service hold: a
facade over the per-resource repositories, each in its own module with its own contract:

* :mod:`facegate.store.collections`: collections, named per organisation and resolved to a
  record carrying their identity, which every write re-checks in its own transaction;
* :mod:`facegate.store.faces`: faces and the search of a collection's index;
* :mod:`facegate.store.users` and :mod:`facegate.store.tags`;
* :mod:`facegate.store.retention`: the retention sweep;
* :mod:`facegate.store.indexes`: the vector indexes and the face change feed that keeps several
  servers' in-memory indexes in step (or pgvector, where there is nothing to keep in step).

Contract (every repository's): every mutating method is one transaction; the in-memory index is
updated only after the transaction committed, so a crash between the two is healed by the rebuild
at start-up; reads of a missing collection raise ``ResourceNotFoundException`` naming the id the
caller gave (never the internal uid, never another organisation); limits raise
``ServiceQuotaExceededException`` before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence

from facegate.store import pgvectors
from facegate.store.collections import CollectionRepository, CollectionStats
from facegate.store.db import StoreDatabase
from facegate.store.faces import FaceRepository
from facegate.store.feed import FeedPrune
from facegate.store.indexes import FaceIndexes
from facegate.store.records import (
    CollectionRecord,
    FaceRecord,
    NewFace,
    StoreLimits,
    SweptFace,
    UserRecord,
)
from facegate.store.retention import sweep_retention
from facegate.store.tags import TagRepository
from facegate.store.users import UserRepository
from facegate.store.vectors import Hit, Matrix, VectorIndex
from facegate.vectorspace import DLIB_SPACE, VectorSpace

DEFAULT_LIMITS = StoreLimits()
"""Rekognition's quotas."""


class FaceStore:
    """Collections, faces, users and tags over a :class:`StoreDatabase`, with vector indexes.
    Each method is its repository's (see the module docstring), under the name callers use."""

    def __init__(
        self,
        db: StoreDatabase,
        limits: StoreLimits = DEFAULT_LIMITS,
        vectors_in_db: bool | None = None,
        ef_search: int = pgvectors.DEFAULT_EF_SEARCH,
    ) -> None:
        """``vectors_in_db`` and ``ef_search``: see :class:`FaceIndexes` (None: pgvector
        whenever the store keeps its vectors there). In memory, every collection's index is
        loaded now."""
        self.db = db
        self.limits = limits
        self.indexes = FaceIndexes(db, vectors_in_db, ef_search)
        self._collections = CollectionRepository(db, limits, self.indexes)
        self._faces = FaceRepository(db, limits, self.indexes)
        self._users = UserRepository(db, limits, self.indexes)
        self._tags = TagRepository(db, limits, self.indexes)

    @property
    def vectors_in_db(self) -> bool:
        """Whether the vectors are searched in PostgreSQL (pgvector)."""
        return self.indexes.vectors_in_db

    @property
    def ef_search(self) -> int:
        """pgvector's first candidate list."""
        return self.indexes.ef_search

    # --- indexes and the feed: FaceIndexes ---------------------------------------------------

    def index(self, collection: CollectionRecord) -> VectorIndex:
        """:meth:`FaceIndexes.get`."""
        return self.indexes.get(collection)

    def face_count(self, collection: CollectionRecord) -> int:
        """:meth:`FaceIndexes.face_count`."""
        return self.indexes.face_count(collection)

    def catch_up(self) -> int:
        """:meth:`FaceIndexes.catch_up`."""
        return self.indexes.catch_up()

    def prune_feed(self, before: float) -> FeedPrune:
        """:meth:`FaceIndexes.prune_feed`."""
        return self.indexes.prune_feed(before)

    # --- collections: CollectionRepository ---------------------------------------------------

    def create_collection(
        self,
        collection_id: str,
        arn: str,
        face_model_version: str,
        index_kind: str = "exact",
        tags: dict[str, str] | None = None,
        org_id: str = "",
        space: VectorSpace = DLIB_SPACE,
    ) -> CollectionRecord:
        """:meth:`CollectionRepository.create`."""
        return self._collections.create(
            collection_id, arn, face_model_version, index_kind, tags, org_id, space
        )

    def find_collection(self, org_id: str, collection_id: str) -> CollectionRecord | None:
        """:meth:`CollectionRepository.find`."""
        return self._collections.find(org_id, collection_id)

    def get_collection(self, org_id: str, collection_id: str) -> CollectionRecord:
        """:meth:`CollectionRepository.get`."""
        return self._collections.get(org_id, collection_id)

    def refresh(self, collection: CollectionRecord) -> CollectionRecord:
        """:meth:`CollectionRepository.refresh`."""
        return self._collections.refresh(collection)

    def list_collections(
        self, after: int, limit: int, org_id: str | None = None
    ) -> list[tuple[int, CollectionRecord]]:
        """:meth:`CollectionRepository.page`."""
        return self._collections.page(after, limit, org_id)

    def delete_collection(self, collection: CollectionRecord) -> None:
        """:meth:`CollectionRepository.delete`."""
        self._collections.delete(collection)

    def counts(self, collection: CollectionRecord) -> tuple[int, int]:
        """:meth:`CollectionRepository.counts`."""
        return self._collections.counts(collection)

    def collection_stats(self, limit: int = 1000) -> list[CollectionStats]:
        """:meth:`CollectionRepository.stats`."""
        return self._collections.stats(limit)

    # --- faces: FaceRepository ---------------------------------------------------------------

    def add_faces(self, collection: CollectionRecord, faces: Sequence[NewFace]) -> None:
        """:meth:`FaceRepository.add`."""
        self._faces.add(collection, faces)

    def faces_of_image(
        self, collection: CollectionRecord, image_sha256: str, external_image_id: str | None
    ) -> list[FaceRecord]:
        """:meth:`FaceRepository.of_image`."""
        return self._faces.of_image(collection, image_sha256, external_image_id)

    def list_faces(
        self,
        collection: CollectionRecord,
        after: int,
        limit: int,
        user_id: str | None = None,
        face_ids: Sequence[str] | None = None,
    ) -> list[tuple[int, FaceRecord]]:
        """:meth:`FaceRepository.page`."""
        return self._faces.page(collection, after, limit, user_id, face_ids)

    def get_faces(
        self, collection: CollectionRecord, face_ids: Sequence[str]
    ) -> dict[str, FaceRecord]:
        """:meth:`FaceRepository.get`."""
        return self._faces.get(collection, face_ids)

    def descriptor(self, collection: CollectionRecord, face_id: str) -> Matrix | None:
        """:meth:`FaceRepository.descriptor`."""
        return self._faces.descriptor(collection, face_id)

    def descriptors(
        self, collection: CollectionRecord, face_ids: Sequence[str]
    ) -> dict[str, Matrix]:
        """:meth:`FaceRepository.descriptors`."""
        return self._faces.descriptors(collection, face_ids)

    def delete_faces(self, collection: CollectionRecord, face_ids: Sequence[str]) -> list[str]:
        """:meth:`FaceRepository.delete`."""
        return self._faces.delete(collection, face_ids)

    def nearest(
        self,
        collection: CollectionRecord,
        query: Matrix,
        k: int,
        max_distance: float,
        weights: Sequence[float] | None = None,
    ) -> list[Hit]:
        """:meth:`FaceRepository.nearest`."""
        return self._faces.nearest(collection, query, k, max_distance, weights)

    def search(
        self, collection: CollectionRecord, query: Matrix, k: int, max_distance: float
    ) -> list[tuple[FaceRecord, float]]:
        """:meth:`FaceRepository.search`."""
        return self._faces.search(collection, query, k, max_distance)

    def indexed_count(self, collection: CollectionRecord) -> int:
        """:meth:`FaceRepository.indexed_count`."""
        return self._faces.indexed_count(collection)

    def indexed_vectors(
        self, collection: CollectionRecord, face_ids: Sequence[str]
    ) -> tuple[list[str], Matrix]:
        """:meth:`FaceRepository.indexed_vectors`."""
        return self._faces.indexed_vectors(collection, face_ids)

    def sweep_retention(self, now: float, limit: int = 1000) -> list[SweptFace]:
        """:func:`facegate.store.retention.sweep_retention`."""
        return sweep_retention(self.db, self.indexes, now, limit)

    # --- users: UserRepository ---------------------------------------------------------------

    def create_user(self, collection: CollectionRecord, user_id: str) -> UserRecord | None:
        """:meth:`UserRepository.create`."""
        return self._users.create(collection, user_id)

    def get_user(self, collection: CollectionRecord, user_id: str) -> UserRecord | None:
        """:meth:`UserRepository.get`."""
        return self._users.get(collection, user_id)

    def delete_user(self, collection: CollectionRecord, user_id: str) -> bool:
        """:meth:`UserRepository.delete`."""
        return self._users.delete(collection, user_id)

    def list_users(
        self, collection: CollectionRecord, after: int, limit: int
    ) -> list[tuple[int, UserRecord]]:
        """:meth:`UserRepository.page`."""
        return self._users.page(collection, after, limit)

    def user_face_ids(self, collection: CollectionRecord, user_id: str) -> list[str]:
        """:meth:`UserRepository.face_ids`."""
        return self._users.face_ids(collection, user_id)

    def set_user_of_faces(
        self, collection: CollectionRecord, user_id: str | None, face_ids: Sequence[str]
    ) -> None:
        """:meth:`UserRepository.set_user_of_faces`."""
        self._users.set_user_of_faces(collection, user_id, face_ids)

    # --- tags: TagRepository -----------------------------------------------------------------

    def tags(self, collection: CollectionRecord) -> dict[str, str]:
        """:meth:`TagRepository.get`."""
        return self._tags.get(collection)

    def tag(self, collection: CollectionRecord, tags: dict[str, str]) -> None:
        """:meth:`TagRepository.tag`."""
        self._tags.tag(collection, tags)

    def untag(self, collection: CollectionRecord, keys: Sequence[str]) -> None:
        """:meth:`TagRepository.untag`."""
        self._tags.untag(collection, keys)
