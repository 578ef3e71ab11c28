"""Operator accounts: the people who administer facegate and review held results.

An operator signs in to the admin API with a bearer token; only the token's SHA-256 is stored,
so the database never holds a usable credential. Roles: ``admin`` (organisations, keys,
operators, policies, decisions; may also review), ``reviewer`` (reviews only) and ``auditor``
(reads everything, changes nothing; may verify the audit chain and download reports).

The console (:mod:`facegate.console`) signs operators in with a password: only its scrypt hash
is stored (``password_hash``, see :mod:`facegate.admin.auth`); console sessions are kept by
:class:`SessionRepository`, by the SHA-256 of the session id.

Who controls an account (for human review by distinct people, :mod:`facegate.store.reviews`):
each operator records who created it and who set the token and the password it holds now, and
``operator_credentials`` keeps every creation and credential change; :func:`control_of` reads
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, delete, func, insert, or_, select, update

from facegate.errors import ResourceAlreadyExistsException
from facegate.store.db import Connection, IntegrityError, Row, StoreDatabase
from facegate.store.schema import console_sessions, operator_credentials, operators

ROLES = ("admin", "reviewer", "auditor")
LOCAL_ACTORS = frozenset({"cli", "serve", "server", "sweeper"})
"""Actors that are not operator accounts: commands run on the data directory (``cli``,
``serve``) and the server itself. Reserved: no operator may take one of these ids."""
ACCOUNT, TOKEN, PASSWORD = "account", "token", "password"
"""What an ``operator_credentials`` row records: the account's creation (which also sets its
first token), a new token, a new (or removed) console password."""

_BY_ID = operators.c.operator_id == bindparam("id")
_ACTIVE = operators.c.disabled_at.is_(None)
_INSERT = insert(operators)
_BY_TOKEN = select(operators).where(operators.c.token_sha256 == bindparam("token"), _ACTIVE)
_GET = select(operators).where(_BY_ID)
_LIST = select(operators).order_by(operators.c.created_at)
_DISABLE = (
    update(operators)
    .where(_BY_ID)
    .values(disabled_at=func.coalesce(operators.c.disabled_at, bindparam("at")))
)
_SET_PASSWORD = (
    update(operators)
    .where(_BY_ID)
    .values(password_hash=bindparam("hash"), password_set_by=bindparam("by"))
)
_SET_TOKEN = (
    update(operators)
    .where(_BY_ID)
    .values(token_sha256=bindparam("token"), token_set_by=bindparam("by"))
)
_PASSWORD_HASH = select(operators.c.password_hash).where(_BY_ID, _ACTIVE)
_HELD = select(
    operators.c.token_set_by, operators.c.password_set_by, operators.c.password_hash
).where(_BY_ID)
_CHANGES = (
    select(
        operator_credentials.c.credential,
        operator_credentials.c.set_by,
        operator_credentials.c.set_at,
    )
    .where(operator_credentials.c.operator_id == bindparam("id"))
    .order_by(operator_credentials.c.set_at)
)
_RECORD_CREDENTIAL = insert(operator_credentials)
_SESSION = console_sessions.c.session_sha256 == bindparam("session")
_END_SESSIONS_OF = delete(console_sessions).where(console_sessions.c.operator_id == bindparam("id"))
_INSERT_SESSION = insert(console_sessions)
_GET_SESSION = select(console_sessions).where(_SESSION)
_TOUCH_SESSION = update(console_sessions).where(_SESSION).values(last_seen_at=bindparam("at"))
_DELETE_SESSION = delete(console_sessions).where(_SESSION)
_DELETE_STALE_SESSIONS = delete(console_sessions).where(
    or_(
        console_sessions.c.last_seen_at < bindparam("idle_before"),
        console_sessions.c.created_at < bindparam("created_before"),
    )
)


@dataclass(frozen=True)
class OperatorRecord:
    """An operator account. ``created_by``, ``token_set_by`` and ``password_set_by`` name the
    actor (an operator id, or a local actor such as ``cli``) who created the account and who set
    the token and the console password it holds now ("" when not known: accounts made before
    this was recorded, or no password)."""

    operator_id: str
    display_name: str
    role: str
    created_at: float
    disabled_at: float | None = None
    created_by: str = ""
    token_set_by: str = ""
    password_set_by: str = ""

    @property
    def active(self) -> bool:
        return self.disabled_at is None


def _operator(row: Row) -> OperatorRecord:
    return OperatorRecord(
        operator_id=row["operator_id"],
        display_name=row["display_name"],
        role=row["role"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
        created_by=row["created_by"],
        token_set_by=row["token_set_by"],
        password_set_by=row["password_set_by"] if row["password_hash"] is not None else "",
    )


class OperatorRepository:
    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    def insert(self, record: OperatorRecord, token_sha256: str) -> None:
        """Insert an account; ``record.created_by`` created it and set its first token."""
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    _INSERT,
                    {
                        "operator_id": record.operator_id,
                        "display_name": record.display_name,
                        "role": record.role,
                        "token_sha256": token_sha256,
                        "created_at": record.created_at,
                        "disabled_at": record.disabled_at,
                        "created_by": record.created_by,
                        "token_set_by": record.created_by,
                    },
                )
                for credential in (ACCOUNT, TOKEN):
                    _credential(
                        conn, record.operator_id, credential, record.created_by, record.created_at
                    )
        except IntegrityError as exc:
            raise ResourceAlreadyExistsException(
                f"Operator {record.operator_id} already exists."
            ) from exc

    def by_token(self, token_sha256: str) -> OperatorRecord | None:
        """The active operator whose token hashes to ``token_sha256``."""
        with self.db.read() as conn:
            row = conn.execute(_BY_TOKEN, {"token": token_sha256}).fetchone()
        return None if row is None else _operator(row)

    def get(self, operator_id: str) -> OperatorRecord | None:
        with self.db.read() as conn:
            row = conn.execute(_GET, {"id": operator_id}).fetchone()
        return None if row is None else _operator(row)

    def list(self) -> list[OperatorRecord]:
        with self.db.read() as conn:
            rows = conn.execute(_LIST).fetchall()
        return [_operator(r) for r in rows]

    def disable(self, operator_id: str, at: float) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute(_DISABLE, {"id": operator_id, "at": at})
            return cur.rowcount > 0

    def set_password_hash(
        self, operator_id: str, password_hash: str | None, *, set_by: str, at: float
    ) -> bool:
        """Store (or with None remove) an operator's console password hash, set by ``set_by``
        at ``at``; also ends their console sessions. False: no such operator."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                _SET_PASSWORD,
                {
                    "id": operator_id,
                    "hash": password_hash,
                    "by": set_by if password_hash is not None else "",
                },
            )
            conn.execute(_END_SESSIONS_OF, {"id": operator_id})
            if cur.rowcount > 0:
                _credential(conn, operator_id, PASSWORD, set_by, at)
            return cur.rowcount > 0

    def set_token(self, operator_id: str, token_sha256: str, *, set_by: str, at: float) -> bool:
        """Replace an operator's token (the old one stops working at once), set by ``set_by``
        at ``at``. False: no such operator."""
        with self.db.transaction() as conn:
            cur = conn.execute(_SET_TOKEN, {"id": operator_id, "token": token_sha256, "by": set_by})
            if cur.rowcount > 0:
                _credential(conn, operator_id, TOKEN, set_by, at)
            return cur.rowcount > 0

    def password_hash(self, operator_id: str) -> str | None:
        """The stored console password hash of an active operator (None: no such active
        operator, or no password set)."""
        with self.db.read() as conn:
            row = conn.execute(_PASSWORD_HASH, {"id": operator_id}).fetchone()
        return None if row is None else row["password_hash"]

    def control(self, operator_id: str, now: float, cooling_off_s: float) -> Control:
        """Who controls ``operator_id`` at ``now`` (see :func:`control_of`)."""
        with self.db.read() as conn:
            return control_of(conn, operator_id, now, cooling_off_s)


def _credential(conn: Connection, operator_id: str, credential: str, by: str, at: float) -> None:
    conn.execute(
        _RECORD_CREDENTIAL,
        {"operator_id": operator_id, "credential": credential, "set_by": by, "set_at": at},
    )


# --- who controls an operator account ------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """One reason why ``controller`` controls ``operator_id``: ``what`` is :data:`ACCOUNT`
    (they created the account, within the cooling-off period), :data:`TOKEN` or
    :data:`PASSWORD` (they set that credential at ``at``: either the operator still holds it,
    ``held``, or it was within the cooling-off period)."""

    controller: str
    operator_id: str
    what: str
    at: float
    held: bool
    """True: the operator still holds the credential the controller set (the controller knows
    it now, whatever the time)."""

    def describe(self) -> str:
        when = datetime.fromtimestamp(self.at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        if self.what == ACCOUNT:
            return f"{self.controller} created {self.operator_id} ({when})"
        if self.held:
            return f"{self.operator_id} holds a {self.what} {self.controller} set ({when})"
        return f"{self.controller} set {self.operator_id}'s {self.what} ({when})"


@dataclass(frozen=True)
class Control:
    """The operators who control ``operator_id``: ``direct`` lists every direct link (one
    controller may have several), ``links`` one link per controller, transitively (the link
    that first reached them)."""

    operator_id: str
    direct: tuple[Link, ...]
    links: tuple[Link, ...]

    @property
    def controllers(self) -> frozenset[str]:
        return frozenset(link.controller for link in self.links)

    @property
    def people(self) -> frozenset[str]:
        """The operator and everyone who controls it: the people one vote may stand for."""
        return self.controllers | {self.operator_id}

    @property
    def held(self) -> tuple[Link, ...]:
        """Credentials the operator holds now that another operator set (directly)."""
        return tuple(link for link in self.direct if link.held)

    def path_to(self, person: str) -> str:
        """How ``person`` controls this operator, as one line ("" if they do not)."""
        by_operator = {link.controller: link for link in self.links}
        steps: list[str] = []
        while person in by_operator and len(steps) <= len(self.links):
            link = by_operator[person]
            steps.append(link.describe())
            if link.operator_id == self.operator_id:
                break
            person = link.operator_id
        return "; ".join(steps)


def _direct(conn: Connection, operator_id: str, now: float, cooling_off_s: float) -> list[Link]:
    """The operators who directly control ``operator_id``: whoever set a credential it holds
    now (they know it), and whoever created it or set any of its credentials less than
    ``cooling_off_s`` ago (they could have replaced it themselves since, as the operator, with
    the credential they knew). Local actors (``cli``...) and unknown ones ("") are not
    operators and control nobody here: whoever runs commands on the data directory can change
    the store directly, which no rule in it can prevent."""
    row = conn.execute(_HELD, {"id": operator_id}).fetchone()
    if row is None:
        return []
    held = {TOKEN: row["token_set_by"]}
    if row["password_hash"] is not None:
        held[PASSWORD] = row["password_set_by"]
    links: list[Link] = []
    latest: dict[str, float] = {}
    for change in conn.execute(_CHANGES, {"id": operator_id}).fetchall():
        credential, by, at = change["credential"], change["set_by"], change["set_at"]
        latest[credential] = at
        if by == operator_id or now - at >= cooling_off_s:
            continue
        links.append(Link(by, operator_id, credential, at, held=False))
    for credential, by in held.items():
        if by and by != operator_id:
            links.append(Link(by, operator_id, credential, latest.get(credential, 0.0), True))
    if not links:
        return []
    names = sorted({link.controller for link in links})
    known = {
        r[0]
        for r in conn.execute(
            select(operators.c.operator_id).where(operators.c.operator_id.in_(names))
        ).fetchall()
    }
    return [link for link in links if link.controller in known]


def control_of(conn: Connection, operator_id: str, now: float, cooling_off_s: float) -> Control:
    """Everyone who controls ``operator_id``: the direct controllers (:func:`_direct`) and,
    transitively, theirs (if alice created bob yesterday and bob created carol, alice controls
    carol). Read in the caller's connection (a vote checks it in its own transaction)."""
    direct = _direct(conn, operator_id, now, cooling_off_s)
    links: list[Link] = []
    seen = {operator_id}
    queue: list[list[Link]] = [direct]  # breadth first: the shortest path names a controller
    while queue:
        for link in queue.pop(0):
            if link.controller in seen:
                continue
            seen.add(link.controller)
            links.append(link)
            queue.append(_direct(conn, link.controller, now, cooling_off_s))
    return Control(operator_id, tuple(direct), tuple(links))


@dataclass(frozen=True)
class SessionRecord:
    """A console session: whose, its CSRF token, when it began and was last used (epoch s)."""

    operator_id: str
    csrf_token: str
    created_at: float
    last_seen_at: float


class SessionRepository:
    """Console sessions, keyed by the SHA-256 of the session id (never the id itself)."""

    def __init__(self, db: StoreDatabase) -> None:
        self.db = db

    def insert(self, session_sha256: str, record: SessionRecord) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                _INSERT_SESSION,
                {
                    "session_sha256": session_sha256,
                    "operator_id": record.operator_id,
                    "csrf_token": record.csrf_token,
                    "created_at": record.created_at,
                    "last_seen_at": record.last_seen_at,
                },
            )

    def get(self, session_sha256: str) -> SessionRecord | None:
        with self.db.read() as conn:
            row = conn.execute(_GET_SESSION, {"session": session_sha256}).fetchone()
        if row is None:
            return None
        return SessionRecord(
            row["operator_id"], row["csrf_token"], row["created_at"], row["last_seen_at"]
        )

    def touch(self, session_sha256: str, at: float) -> None:
        with self.db.transaction() as conn:
            conn.execute(_TOUCH_SESSION, {"session": session_sha256, "at": at})

    def delete(self, session_sha256: str) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute(_DELETE_SESSION, {"session": session_sha256})
            return cur.rowcount > 0

    def delete_stale(self, idle_before: float, created_before: float) -> int:
        """Delete sessions idle since before ``idle_before`` or begun before
        ``created_before``; returns how many."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                _DELETE_STALE_SESSIONS,
                {"idle_before": idle_before, "created_before": created_before},
            )
            return cur.rowcount
