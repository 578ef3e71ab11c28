"""Access keys: issue (shown once), list, revoke and rotate an organisation's keys."""

from __future__ import annotations

from facegate.admin.service.core import MAX_NAME, AdminCore, printable
from facegate.errors import ConflictException, InvalidParameterException, ResourceNotFoundException
from facegate.store.keys import KeyRecord
from facegate.wire.keys import NewKey

MAX_EXPIRY_DAYS = 3650


def _check_key_description(description: str) -> None:
    """A key description may be empty, and has at most :data:`MAX_NAME` printable
    characters."""
    if len(description) > MAX_NAME or not printable(description):
        raise InvalidParameterException(
            f"A key description has up to {MAX_NAME} printable characters."
        )


class KeyAdmin(AdminCore):
    """The access-key part of :class:`facegate.admin.service.AdminService`."""

    def create_key(
        self,
        org_id: str,
        use_case: str | None = None,
        description: str = "",
        expires_in_days: int | None = None,
    ) -> NewKey:
        """A key for ``org_id`` bound to ``use_case`` (default: the organisation's only use
        case). The returned secret exists nowhere else in clear: show it once."""
        org = self.registry.orgs.require(org_id)
        if use_case is None:
            if len(org.use_cases) != 1:
                raise InvalidParameterException(
                    f"Organisation {org_id} registered {', '.join(org.use_cases)}: "
                    "choose one use case for the key."
                )
            use_case = org.use_cases[0]
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise InvalidParameterException(
                f"Key expiry is 1-{MAX_EXPIRY_DAYS} days, not {expires_in_days}."
            )
        _check_key_description(description)
        ttl_s = expires_in_days * 86400.0 if expires_in_days is not None else None
        key = self.registry.create_key(org_id, use_case, description, ttl_s)
        self._key_created(key, org_id, use_case)
        return key

    def create_first_key(self, org_id: str, use_case: str, description: str = "") -> NewKey | None:
        """The bootstrap key: a key (no expiry) for ``org_id`` and ``use_case``, created and
        recorded only if the store holds no key at all, checked and inserted in one write
        transaction. None when a key exists (also one another server created concurrently)."""
        _check_key_description(description)
        key = self.registry.create_first_key(org_id, use_case, description)
        if key is not None:
            self._key_created(key, org_id, use_case)
        return key

    def _key_created(self, key: NewKey, org_id: str, use_case: str) -> None:
        self._event(
            "registry", "key.create", key.access_key_id, org_id, use_case=use_case,
            expires_at=key.expires_at,
        )  # fmt: skip

    def keys(self, org_id: str | None = None) -> list[KeyRecord]:
        """Every key (of ``org_id`` if given, which must exist), oldest first. Records carry the
        sealed secret; views never show it."""
        if org_id is not None:
            self.registry.orgs.require(org_id)
        return [k for k in self.registry.keys.list() if org_id is None or k.org_id == org_id]

    def revoke_key(self, access_key_id: str) -> KeyRecord:
        """Revoke a key (idempotent: the first revocation time is kept)."""
        if not self.registry.keys.revoke(access_key_id):
            raise ResourceNotFoundException(f"Access key {access_key_id} does not exist.")
        record = self.registry.keys.record(access_key_id)
        assert record is not None
        self._event("registry", "key.revoke", access_key_id, record.org_id or "")
        return record

    def rotate_key(self, access_key_id: str) -> NewKey:
        """Replace a key: a new key for the same organisation, use case and description (and,
        if the old one expires, the same lifetime from now), then the old key is revoked. The
        returned secret is shown once. Refused for a revoked key."""
        old = self.registry.keys.record(access_key_id)
        if old is None:
            raise ResourceNotFoundException(f"Access key {access_key_id} does not exist.")
        if old.revoked_at is not None or old.org_id is None:
            raise ConflictException(f"Access key {access_key_id} is revoked: issue a new key.")
        days = None
        if old.expires_at is not None:
            days = max(1, min(MAX_EXPIRY_DAYS, round((old.expires_at - old.created_at) / 86400)))
        new = self.create_key(old.org_id, old.use_case, old.description, days)
        self.registry.keys.revoke(access_key_id)
        self._event(
            "registry", "key.rotate", access_key_id, old.org_id,
            replaced_by=new.access_key_id,
        )  # fmt: skip
        return new
