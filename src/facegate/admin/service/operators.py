"""Operator accounts: create (token shown once), rotate tokens, disable, set and check console
passwords, and who controls whom (the independence of reviewers)."""

from __future__ import annotations

import re

from facegate.admin.auth import (
    check_password_rules,
    hash_password,
    new_token,
    token_sha256,
    verify_password,
)
from facegate.admin.service.core import MAX_NOTE, AdminCore, printable, text_field
from facegate.errors import (
    AccessDeniedException,
    InvalidParameterException,
    ResourceNotFoundException,
)
from facegate.store.operators import LOCAL_ACTORS, ROLES, Control, OperatorRecord

OPERATOR_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")


class OperatorAdmin(AdminCore):
    """The operator part of :class:`facegate.admin.service.AdminService`."""

    def operator_list(self) -> list[OperatorRecord]:
        return self.operators.list()

    def create_operator(
        self, operator_id: str, display_name: str, role: str
    ) -> tuple[OperatorRecord, str]:
        """A new operator and their token; only the token's hash is stored, so the token
        returned here is the only copy: show it once."""
        if not OPERATOR_ID.fullmatch(operator_id):
            raise InvalidParameterException(
                f"Invalid operator id {operator_id!r}: lower-case letters, digits, '.', '_', '-'"
                " (1-63, e.g. 'alice')."
            )
        if operator_id in LOCAL_ACTORS:
            raise InvalidParameterException(
                f"Operator id {operator_id!r} is reserved (it names a local actor in the audit "
                "trail)."
            )
        if role not in ROLES:
            raise InvalidParameterException(f"Unknown role {role!r}; known: {', '.join(ROLES)}.")
        record = OperatorRecord(
            operator_id=operator_id,
            display_name=text_field(display_name, "An operator name"),
            role=role,
            created_at=self.clock(),
            created_by=self.actor,
            token_set_by=self.actor,
        )
        token = new_token()
        self.operators.insert(record, token_sha256(token))
        self._event("registry", "operator.create", operator_id, role=role)
        return record, token

    def rotate_own_token(
        self, operator: OperatorRecord, note: str = ""
    ) -> tuple[OperatorRecord, str]:
        """A new token for ``operator`` (the authenticated caller), set by themselves: the old
        one stops working at once. An operator whose token another operator set (their
        creator) does this before their confirmations count. The token is shown once."""
        if len(note) > MAX_NOTE or not printable(note):
            raise InvalidParameterException(f"A note has up to {MAX_NOTE} printable characters.")
        token = new_token()
        if not self.operators.set_token(
            operator.operator_id, token_sha256(token), set_by=operator.operator_id,
            at=self.clock(),
        ):  # fmt: skip
            raise ResourceNotFoundException(f"Operator {operator.operator_id} does not exist.")
        details = {"note": note.strip()} if note.strip() else {}
        self.as_actor(operator.operator_id)._event(
            "registry", "operator.rotate_token", operator.operator_id, **details
        )
        record = self.operators.get(operator.operator_id)
        assert record is not None
        return record, token

    def disable_operator(self, operator_id: str) -> OperatorRecord:
        """Disable an operator: their token stops working at once. Idempotent."""
        if not self.operators.disable(operator_id, self.clock()):
            raise ResourceNotFoundException(f"Operator {operator_id} does not exist.")
        record = self.operators.get(operator_id)
        assert record is not None
        self._event("registry", "operator.disable", operator_id)
        return record

    def set_password(self, operator_id: str, password: str) -> OperatorRecord:
        """Set an operator's console password (12-1024 characters; stored as a scrypt hash,
        see :func:`facegate.admin.auth.hash_password`). Their open console sessions end."""
        record = self.operators.get(operator_id)
        if record is None:
            raise ResourceNotFoundException(f"Operator {operator_id} does not exist.")
        check_password_rules(password)
        self.operators.set_password_hash(
            operator_id, hash_password(password), set_by=self.actor, at=self.clock()
        )
        self._event("registry", "operator.set_password", operator_id)
        updated = self.operators.get(operator_id)
        assert updated is not None
        return updated

    def change_own_password(self, operator_id: str, current: str, new: str) -> OperatorRecord:
        """Change ``operator_id``'s console password to ``new``, proven by ``current`` (two
        scrypt hashes: run it within the caller's hashing bound and sign-in throttle). The
        password is then set by the operator themselves. ``AccessDeniedException`` when
        ``current`` is wrong; ``InvalidParameterException`` when ``new`` breaks the rules or
        equals ``current``."""
        check_password_rules(new)
        if new == current:
            raise InvalidParameterException("The new password must differ from the current one.")
        if self.check_password(operator_id, current) is None:
            raise AccessDeniedException("The current password is wrong.")
        return self.as_actor(operator_id).set_password(operator_id, new)

    def control(self, operator_id: str) -> Control:
        """Who controls ``operator_id`` now (see the module docstring): whose confirmations
        cannot count with theirs."""
        return self.operators.control(operator_id, self.clock(), self.cooling_off_s)

    def check_password(self, operator_id: str, password: str) -> OperatorRecord | None:
        """The active operator ``operator_id`` if ``password`` is their console password (None
        otherwise: unknown, disabled, no password or wrong password, told apart to nobody;
        the scrypt work is done in every case)."""
        stored = (
            self.operators.password_hash(operator_id)
            if OPERATOR_ID.fullmatch(operator_id)
            else None
        )
        if not verify_password(password, stored) or stored is None:
            return None
        record = self.operators.get(operator_id)
        return record if record is not None and record.active else None
