"""Reading policy packs: parse, check annotations, validate against the schema.

A pack is a directory ``<packs_dir>/<name>/`` with ``policies.cedar`` (and a README and request
fixtures, which loading ignores). Rules checked here, each failing with a
:class:`~facegate.policy.errors.PolicyLoadError` that names the pack, file, line and policy:

* the file parses as Cedar and holds static policies only (no templates);
* every policy has ``@id("...")`` (non-empty, unique in the pack; the engine checks uniqueness
  across the active set) and ``@source("<rule id> [keys]")``;
* every forbid has ``@reason("...")``, the short operator-facing why;
* annotations are only ``id``, ``source``, ``reason``, ``note``, ``caller_reason`` (on a forbid:
  what a denied caller is told; without it the caller learns only the decision id) and the
  obligations of
  :mod:`facegate.policy.obligations` (so a misspelt obligation cannot be silently ignored), and
  obligations appear only on permits, with valid values;
* every policy validates against ``schema.cedarschema`` (``cedarpy.validate_policies``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import cedarpy

from facegate.policy.actions import schema_actions
from facegate.policy.errors import PolicyLoadError
from facegate.policy.model import Obligations, PolicyRef
from facegate.policy.obligations import OBLIGATION_ANNOTATIONS, parse_obligations

POLICY_FILE = "policies.cedar"
SCHEMA_FILE = "schema.cedarschema"
BASE_PACK = "base"
PACKS_DIR = Path(__file__).resolve().parent / "packs"
SCHEMA_PATH = Path(__file__).resolve().parent / SCHEMA_FILE

CALLER_REASON = "caller_reason"
"""A forbid's text that the denied caller is told (other reasons stay in the audit record)."""

ALLOWED_ANNOTATIONS: frozenset[str] = frozenset(
    {"id", "source", "reason", "note", CALLER_REASON}
) | (OBLIGATION_ANNOTATIONS)


@dataclass(frozen=True)
class PolicyInfo:
    """One loaded policy: what ``explain`` and the operator view show, and what a decision cites.

    ``text`` is the policy as written (with the comment lines directly above it); ``line`` is
    where it starts in its pack's ``policies.cedar``.
    """

    policy_id: str
    pack: str
    effect: str
    annotations: Mapping[str, str]
    text: str
    line: int
    obligations: Obligations

    @property
    def reason(self) -> str:
        return self.annotations.get("reason", "")

    @property
    def source(self) -> str:
        return self.annotations.get("source", "")

    def ref(self) -> PolicyRef:
        return PolicyRef(self.policy_id, self.pack, self.effect, self.reason, self.source)


@dataclass(frozen=True)
class Pack:
    """A loaded pack: its name, file, full text and policies in file order."""

    name: str
    path: Path
    text: str
    policies: tuple[PolicyInfo, ...]


def available_packs(packs_dir: Path = PACKS_DIR) -> tuple[str, ...]:
    """Names of the packs in ``packs_dir`` (directories holding a ``policies.cedar``), sorted."""
    if not packs_dir.is_dir():
        return ()
    return tuple(sorted(p.parent.name for p in packs_dir.glob(f"*/{POLICY_FILE}")))


def one_line(text: str, limit: int = 400) -> str:
    """``text`` on one line (Cedar messages span lines), cut at ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


ACTIONS_MARKER = "  // @actions\n"
"""Where :func:`schema_text` puts the generated action declarations."""


def schema_text(path: Path = SCHEMA_PATH) -> str:
    """The whole schema: the file's entity and context types, with the action declarations
    generated from the table of operations (:func:`facegate.policy.actions.schema_actions`)
    in place of its ``// @actions`` line (a file without that line is used as written)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyLoadError(f"schema {path}: cannot read: {exc.strerror or exc}") from exc
    return text.replace(ACTIONS_MARKER, schema_actions() + "\n", 1)


def load_schema(path: Path = SCHEMA_PATH) -> cedarpy.Schema:
    """The parsed schema (a handle reused by every validation and decision)."""
    text = schema_text(path)
    try:
        return cedarpy.Schema.from_str(text)
    except ValueError as exc:
        raise PolicyLoadError(f"schema {path}: {one_line(str(exc))}") from exc


@dataclass(frozen=True)
class _Chunk:
    line: int  # 1-based line of the policy's first token
    text: str  # the policy with the comment lines directly above it


def split_policies(text: str) -> list[_Chunk]:
    """Cut Cedar policy text at each top-level ``;`` (outside strings and ``//`` comments).

    Cedar uses ``;`` only to end a policy, so the pieces are the policies in order; pieces with
    nothing but whitespace and comments are dropped. Used to report errors by line and to show
    each policy as written (the parser's own output is the ground truth; the loader checks that
    both agree on the number of policies).
    """
    chunks: list[_Chunk] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == "/" and text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif c == ";":
            chunk = _chunk(text, start, i + 1)
            if chunk is not None:
                chunks.append(chunk)
            start = i + 1
        i += 1
    tail = _chunk(text, start, n)
    if tail is not None:
        chunks.append(tail)
    return chunks


def _is_code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("//")


def _chunk(text: str, start: int, end: int) -> _Chunk | None:
    lines = text[start:end].split("\n")
    first = next((k for k, line in enumerate(lines) if _is_code(line)), None)
    if first is None:
        return None
    top = first
    while top > 0 and lines[top - 1].strip().startswith("//"):
        top -= 1
    line_no = text.count("\n", 0, start) + first + 1
    return _Chunk(line_no, "\n".join(line.rstrip() for line in lines[top:]).strip("\n"))


def _policy_index(cedar_id: str) -> int:
    # Cedar names surface-syntax policies policy0, policy1, ... in file order.
    return int(cedar_id.removeprefix("policy"))


class _PackReader:
    """Loads one pack; ``fail`` builds errors that name the pack, file and line."""

    def __init__(self, name: str, path: Path, schema: cedarpy.Schema) -> None:
        self.name = name
        self.path = path
        self.schema = schema

    def fail(self, problem: str, line: int = 0) -> PolicyLoadError:
        where = f"{self.path}, line {line}" if line else str(self.path)
        return PolicyLoadError(f"pack {self.name!r} ({where}): {one_line(problem)}")

    def read(self) -> Pack:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise self.fail(f"cannot read: {exc.strerror or exc}") from exc
        chunks = split_policies(text)
        parsed = self._parse(text, chunks)
        if parsed.get("templates"):
            raise self.fail("templates (policies with ?principal or ?resource) are not supported")
        static: dict[str, Any] = parsed.get("staticPolicies", {})
        ordered = sorted(static.items(), key=lambda item: _policy_index(item[0]))
        if not ordered:
            raise self.fail("no policies")
        exact = len(chunks) == len(ordered)
        infos = []
        for k, (cedar_id, policy) in enumerate(ordered):
            line, source_text = (chunks[k].line, chunks[k].text) if exact else (0, "")
            if not source_text:
                one = {"staticPolicies": {cedar_id: policy}, "templates": {}, "templateLinks": []}
                source_text = cedarpy.policies_from_json_str(json.dumps(one))
            infos.append(self._info(policy, line, source_text))
        self._check_unique(infos)
        self._validate(text, ordered, infos)
        return Pack(self.name, self.path, text, tuple(infos))

    def _parse(self, text: str, chunks: list[_Chunk]) -> dict[str, Any]:
        try:
            parsed: dict[str, Any] = json.loads(cedarpy.policies_to_json_str(text))
            return parsed
        except ValueError as exc:
            # Cedar's messages carry no line numbers: find the first piece that fails alone.
            for chunk in chunks:
                try:
                    cedarpy.policies_to_json_str(chunk.text)
                except ValueError as piece_exc:
                    raise self.fail(f"cannot parse: {piece_exc}", chunk.line) from exc
            raise self.fail(f"cannot parse: {exc}") from exc

    def _info(self, policy: Mapping[str, Any], line: int, text: str) -> PolicyInfo:
        annotations: dict[str, str] = dict(policy.get("annotations", {}))
        effect = str(policy.get("effect", ""))
        policy_id = annotations.get("id", "")
        if not policy_id:
            raise self.fail('a policy has no @id("...") annotation (every policy needs one)', line)
        label = f"policy {policy_id!r}"
        unknown = sorted(set(annotations) - ALLOWED_ANNOTATIONS)
        if unknown:
            allowed = ", ".join(f"@{a}" for a in sorted(ALLOWED_ANNOTATIONS))
            names = ", ".join(f"@{a}" for a in unknown)
            raise self.fail(f"{label}: unknown annotation {names} (allowed: {allowed})", line)
        if not annotations.get("source"):
            raise self.fail(f'{label}: no @source("<rule id> [keys]") annotation', line)
        if effect == "forbid" and not annotations.get("reason"):
            raise self.fail(f'{label}: a forbid needs @reason("...")', line)
        if effect != "forbid" and CALLER_REASON in annotations:
            raise self.fail(f"{label}: @{CALLER_REASON} belongs on forbids", line)
        obligation_keys = sorted(set(annotations) & OBLIGATION_ANNOTATIONS)
        if effect == "forbid" and obligation_keys:
            names = ", ".join(f"@{a}" for a in obligation_keys)
            raise self.fail(f"{label}: obligations ({names}) belong on permits, not forbids", line)
        try:
            obligations = parse_obligations(annotations)
        except ValueError as exc:
            raise self.fail(f"{label}: {exc}", line) from exc
        return PolicyInfo(
            policy_id=policy_id,
            pack=self.name,
            effect=effect,
            annotations=MappingProxyType(annotations),
            text=text,
            line=line,
            obligations=obligations,
        )

    def _check_unique(self, infos: list[PolicyInfo]) -> None:
        seen: set[str] = set()
        for info in infos:
            if info.policy_id in seen:
                raise self.fail(f"duplicate @id({info.policy_id!r})", info.line)
            seen.add(info.policy_id)

    def _validate(self, text: str, ordered: list[tuple[str, Any]], infos: list[PolicyInfo]) -> None:
        result = cedarpy.validate_policies(text, self.schema)
        if result.validation_passed:
            return
        by_cedar_id = {cedar_id: info for (cedar_id, _), info in zip(ordered, infos, strict=True)}
        error = result.errors[0]
        info = by_cedar_id.get(error.policy_id)
        if info is None:
            raise self.fail(f"does not validate against the schema: {error.error}")
        more = f" (and {len(result.errors) - 1} more)" if len(result.errors) > 1 else ""
        problem = f"policy {info.policy_id!r} does not validate against the schema: {error.error}"
        raise self.fail(problem + more, info.line)


def load_pack(name: str, packs_dir: Path, schema: cedarpy.Schema) -> Pack:
    """Read, parse, check and validate ``<packs_dir>/<name>/policies.cedar``."""
    return _PackReader(name, packs_dir / name / POLICY_FILE, schema).read()
