"""The policy engine: Cedar policy packs, loaded once, deciding every request.

Semantics (Cedar's, plus facegate's fail-closed rules):

* Default deny; a satisfied forbid overrides any permit.
* The ``base`` pack is always loaded first. Its permit allows a request whose purpose is the key's
  registered use case, registered by the organisation; its forbids make that condition, and
  tenant isolation, hold whatever other packs permit. So a permit in any other pack can never
  widen access: it only carries obligations (see :mod:`facegate.policy.obligations`).
* A request outside the closed vocabulary (unknown purpose, sector, camera or action) or with a
  naive ``now`` is denied before Cedar runs, with the reason in ``Decision.errors``.
* Any error while building or evaluating the Cedar request (``diagnostics.errors``, or an
  exception from cedarpy) denies, with the errors listed.
* On Allow, ``determining`` lists every satisfied permit and the obligations are their strictest
  combination; on Deny it lists the satisfied forbids (empty for a default deny).

Cost: the schema and policy set are parsed once in :meth:`PolicyEngine.load`; a decision builds
a few dicts and makes one ``cedarpy.is_authorized`` call (about 0.1 ms; bench/policy_decision.py).
The engine is immutable and safe to share between threads.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import cedarpy

from facegate.operations import FACE_ATTRIBUTES
from facegate.policy.actions import ACTION_GROUPS
from facegate.policy.entities import to_cedar
from facegate.policy.errors import PolicyLoadError
from facegate.policy.loader import (
    BASE_PACK,
    CALLER_REASON,
    PACKS_DIR,
    SCHEMA_PATH,
    Pack,
    PolicyInfo,
    available_packs,
    load_pack,
    load_schema,
    one_line,
)
from facegate.policy.model import Decision, PolicyRef, PolicyRequest
from facegate.policy.obligations import combine
from facegate.policy.vocabulary import CAMERAS, PURPOSES, SECTORS, SETTINGS

DEFAULT_PACKS: tuple[str, ...] = ("amazon-2020-police-moratorium",)
"""Packs active unless the operator chooses otherwise (``base`` is always active)."""


def new_decision_id() -> str:
    """A random, unique id safe to show to the caller: ``dec-`` and 20 hex digits (80 bits)."""
    return "dec-" + secrets.token_hex(10)


def vocabulary_errors(request: PolicyRequest) -> tuple[str, ...]:
    """Why ``request`` cannot be put to the policies at all (empty: it can)."""
    problems = []
    ctx = request.context
    if ctx.purpose not in PURPOSES:
        problems.append(f"unknown purpose {ctx.purpose!r}: not in the purpose vocabulary")
    sector = request.principal.organisation.sector
    if sector not in SECTORS:
        problems.append(f"unknown sector {sector!r}: not in the sector vocabulary")
    if ctx.camera not in CAMERAS:
        problems.append(f"unknown camera {ctx.camera!r}: expected one of {sorted(CAMERAS)}")
    if ctx.setting not in SETTINGS:
        problems.append(f"unknown setting {ctx.setting!r}: expected one of {sorted(SETTINGS)}")
    unknown = sorted((ctx.attributes | ctx.attributes_named) - set(FACE_ATTRIBUTES))
    if unknown:
        problems.append(f"unknown facial attributes {unknown}: not Rekognition attributes")
    if not ctx.attributes_named <= ctx.attributes:
        problems.append("attributes_named must be among the attributes asked for")
    if request.action not in ACTION_GROUPS:
        problems.append(f"unknown action {request.action!r}: not a facegate operation")
    if ctx.now.tzinfo is None or ctx.now.utcoffset() is None:
        problems.append("context.now is not timezone-aware")
    return tuple(problems)


class PolicyEngine:
    """An immutable, loaded policy set. Build with :meth:`load`; ask with :meth:`decide`."""

    def __init__(
        self,
        packs: Sequence[Pack],
        schema: cedarpy.Schema,
        policy_set: cedarpy.PolicySet,
        by_cedar_id: Mapping[str, PolicyInfo],
    ) -> None:
        """Use :meth:`load`; this constructor trusts its arguments to be consistent."""
        self._packs = tuple(packs)
        self._schema = schema
        self._policy_set = policy_set
        self._by_cedar_id = by_cedar_id
        self._by_id = {info.policy_id: info for info in self.policies()}
        self._order = {info.policy_id: k for k, info in enumerate(self.policies())}

    @classmethod
    def load(
        cls,
        packs: Sequence[str],
        packs_dir: Path = PACKS_DIR,
        schema_path: Path = SCHEMA_PATH,
        operator_dir: Path | None = None,
    ) -> PolicyEngine:
        """Load ``base`` and then ``packs`` (in order, duplicates ignored) from ``packs_dir``.

        ``operator_dir`` (``FACEGATE_POLICY_DIR``) holds an operator's own packs; a pack there
        is used instead of a built-in pack of the same name, except ``base``, which is always
        the built-in one (it holds the rules every other pack relies on).

        Raises :class:`PolicyLoadError` for an unknown pack (listing the available ones), a pack
        that does not parse, check or validate, or an ``@id`` used twice in the set.
        """
        if isinstance(packs, str):  # a str is a Sequence[str] of its characters
            raise TypeError(f"packs must be a sequence of pack names, not the string {packs!r}")
        names = list(dict.fromkeys([BASE_PACK, *packs]))
        own = set(available_packs(operator_dir)) - {BASE_PACK} if operator_dir else set()
        available = tuple(sorted(set(available_packs(packs_dir)) | own))
        unknown = [n for n in names if n not in available]
        if unknown:
            listed = ", ".join(available) or "none"
            raise PolicyLoadError(
                f"unknown policy pack {', '.join(map(repr, unknown))} in {packs_dir}"
                f" (available: {listed})"
            )
        schema = load_schema(schema_path)
        loaded = [
            load_pack(name, operator_dir if operator_dir and name in own else packs_dir, schema)
            for name in names
        ]
        owners: dict[str, str] = {}
        for pack in loaded:
            for info in pack.policies:
                if info.policy_id in owners:
                    raise PolicyLoadError(
                        f"pack {pack.name!r} ({pack.path}, line {info.line}): "
                        f"@id({info.policy_id!r}) is already used by pack "
                        f"{owners[info.policy_id]!r}; ids must be unique in the active set"
                    )
                owners[info.policy_id] = pack.name
        combined = "\n".join(pack.text for pack in loaded)
        try:
            policy_set = cedarpy.PolicySet.from_str(combined)
            parsed = json.loads(cedarpy.policies_to_json_str(combined))
        except ValueError as exc:  # each pack parsed alone, so this is not expected
            raise PolicyLoadError(f"packs {names}: cannot combine: {one_line(str(exc))}") from exc
        infos = {info.policy_id: info for pack in loaded for info in pack.policies}
        by_cedar_id = {
            cedar_id: infos[policy["annotations"]["id"]]
            for cedar_id, policy in parsed["staticPolicies"].items()
        }
        if len(by_cedar_id) != len(infos) or len(policy_set) != len(infos):
            raise PolicyLoadError(f"packs {names}: the combined set lost or gained policies")
        return cls(loaded, schema, policy_set, MappingProxyType(by_cedar_id))

    @property
    def packs(self) -> tuple[str, ...]:
        """The active packs, ``base`` first."""
        return tuple(pack.name for pack in self._packs)

    def policies(self) -> tuple[PolicyInfo, ...]:
        """Every active policy, pack by pack in load order, each in file order."""
        return tuple(info for pack in self._packs for info in pack.policies)

    def policy(self, policy_id: str) -> PolicyInfo:
        """The active policy with this ``@id`` (``KeyError`` if none)."""
        return self._by_id[policy_id]

    def caller_reasons(self, decision: Decision) -> tuple[str, ...]:
        """The ``@caller_reason`` texts of a denial's determining forbids (may be empty)."""
        if decision.allowed:
            return ()
        texts = []
        for ref in decision.determining:
            info = self._by_id.get(ref.policy_id)
            if info is not None and info.annotations.get(CALLER_REASON):
                texts.append(info.annotations[CALLER_REASON])
        return tuple(dict.fromkeys(texts))

    def decide(self, request: PolicyRequest) -> Decision:
        """Allow or deny ``request``; never raises for a bad request (it denies instead)."""
        started = time.perf_counter()
        problems = vocabulary_errors(request)
        if problems:
            return self._deny_with_errors(problems, started)
        try:
            query = to_cedar(request)
            result = cedarpy.is_authorized(
                query.request, self._policy_set, query.entities, schema=self._schema
            )
        except BaseException as exc:  # fail closed: whatever cedarpy raises denies ...
            if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
                raise
            # ... including a Rust panic, which pyo3 raises as a BaseException.
            problem = f"policy evaluation failed: {type(exc).__name__}: {one_line(str(exc))}"
            return self._deny_with_errors((problem,), started)
        diagnostics = result.diagnostics
        errors = tuple(one_line(str(e)) for e in diagnostics.errors)
        try:
            satisfied = self._refs(diagnostics.reasons)
        except KeyError as exc:
            errors += (f"Cedar cited an unknown policy {exc.args[0]!r}",)
            satisfied = ()
        if result.allowed and not errors:
            obligations = combine(self._by_cedar_id[c].obligations for c in diagnostics.reasons)
            return Decision(
                decision_id=new_decision_id(),
                allowed=True,
                determining=satisfied,
                obligations=obligations,
                eval_ms=_ms_since(started),
            )
        forbids = tuple(ref for ref in satisfied if ref.effect == "forbid")
        return Decision(
            decision_id=new_decision_id(),
            allowed=False,
            determining=forbids,
            errors=errors,
            eval_ms=_ms_since(started),
        )

    def _refs(self, cedar_ids: Sequence[str]) -> tuple[PolicyRef, ...]:
        infos = [self._by_cedar_id[c] for c in cedar_ids]
        infos.sort(key=lambda info: self._order[info.policy_id])
        return tuple(info.ref() for info in infos)

    @staticmethod
    def _deny_with_errors(errors: tuple[str, ...], started: float) -> Decision:
        return Decision(
            decision_id=new_decision_id(),
            allowed=False,
            errors=errors,
            eval_ms=_ms_since(started),
        )


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
