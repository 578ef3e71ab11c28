"""ClientRequestToken idempotency, scoped and expiring.

Contract:

* a response is remembered under (organisation, collection identity, operation, token): the
  same token sent by another organisation, or for another collection (also one created again
  under the same id after a deletion: a new identity), is a new request, never a replay of
  someone else's answer and never an IdempotentParameterMismatchException;
* within that scope, a repeat with the same parameters (their digest) replays the stored
  response, and one with different parameters raises IdempotentParameterMismatchException;
* a record is valid for ``ttl_s`` seconds after the request that stored it completed
  (:data:`DEFAULT_TTL_S`, 8 hours); after that the token is a new request again, and a new
  response replaces the expired one. :meth:`IdempotencyRepository.prune` deletes expired records
  (the server's sweeper runs it).

The window: Rekognition's API reference and botocore's service model say only that a repeated
token returns the same response, not for how long. Eight hours is the window AWS documents for
client tokens of several services (Directory Service Data, Verified Permissions, Backup search:
"valid for 8 hours after the first request that uses it completes"); it is configurable
(``FACEGATE_IDEMPOTENCY_TTL_S``).

Requests carrying the same token are serialised by the pipeline (``Services.token_locks``), so
the second waits for the first's record instead of doing the work twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, select

from facegate.errors import IdempotentParameterMismatchException
from facegate.store.core import insert_for
from facegate.store.db import StoreDatabase
from facegate.store.schema import idempotency

DEFAULT_TTL_S = 8 * 3600.0

_KEY = (
    idempotency.c.org_id,
    idempotency.c.collection_uid,
    idempotency.c.operation,
    idempotency.c.token,
)
_RECALL = select(idempotency.c.params_sha256, idempotency.c.response_json).where(
    *(column == bindparam(column.name) for column in _KEY),
    idempotency.c.created_at > bindparam("expired_before"),
)
_PRUNE = delete(idempotency).where(idempotency.c.created_at <= bindparam("expired_before"))


def _remember(dialect: str) -> Any:
    """Insert a record, or replace one that expired (parameters: the seven columns and
    ``expired_before``)."""
    insert = insert_for(dialect, idempotency)
    return insert.on_conflict_do_update(
        index_elements=list(_KEY),
        set_={c: insert.excluded[c] for c in ("params_sha256", "response_json", "created_at")},
        where=idempotency.c.created_at <= bindparam("expired_before"),
    )


_REMEMBER = {dialect: _remember(dialect) for dialect in ("sqlite", "postgresql")}


@dataclass(frozen=True)
class TokenScope:
    """Where a ClientRequestToken means something: an organisation and the identity (uid) of
    the collection the request was about ("" for none, or for a collection that did not exist:
    nothing is ever remembered for a request that failed)."""

    org_id: str
    collection_uid: str


class IdempotencyRepository:
    """Remembers responses of idempotent operations by (scope, operation, token)."""

    def __init__(self, db: StoreDatabase, ttl_s: float = DEFAULT_TTL_S) -> None:
        if not ttl_s > 0:
            raise ValueError("ttl_s must be above 0")
        self.db = db
        self.ttl_s = ttl_s

    def recall(
        self, scope: TokenScope, operation: str, token: str, params_sha256: str, now: float
    ) -> str | None:
        """The stored response JSON for a repeat of the same request within the window, else
        ``None``; IdempotentParameterMismatchException for the same token with other
        parameters within the window."""
        with self.db.read() as conn:
            row = conn.execute(
                _RECALL,
                {
                    "org_id": scope.org_id,
                    "collection_uid": scope.collection_uid,
                    "operation": operation,
                    "token": token,
                    "expired_before": now - self.ttl_s,
                },
            ).fetchone()
        if row is None:
            return None
        if row["params_sha256"] != params_sha256:
            raise IdempotentParameterMismatchException(
                "ClientRequestToken was already used with different parameters."
            )
        return str(row["response_json"])

    def remember(
        self,
        scope: TokenScope,
        operation: str,
        token: str,
        params_sha256: str,
        response: str,
        now: float,
    ) -> None:
        """Store the response of a completed request; an unexpired record of the same token in
        the same scope is kept (the first answer wins), an expired one is replaced."""
        with self.db.transaction() as conn:
            conn.execute(
                _REMEMBER[self.db.dialect],
                {
                    "org_id": scope.org_id,
                    "collection_uid": scope.collection_uid,
                    "operation": operation,
                    "token": token,
                    "params_sha256": params_sha256,
                    "response_json": response,
                    "created_at": now,
                    "expired_before": now - self.ttl_s,
                },
            )

    def prune(self, now: float) -> int:
        """Delete the records expired at ``now``; returns how many."""
        with self.db.transaction() as conn:
            cur = conn.execute(_PRUNE, {"expired_before": now - self.ttl_s})
            return max(cur.rowcount, 0)
