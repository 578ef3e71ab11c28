"""The Cedar actions and their groups, derived from the one table of operations
(:mod:`facegate.operations`): nothing here is a list kept by hand.

Groups (Cedar action groups in the schema; membership is transitive):

* ``face_comparison``: every operation whose answer depends on comparing faces.
* ``identification``: inside ``face_comparison``; faces compared with templates stored in a
  collection (the four searches, and AssociateFaces). The EU AI Act's remote biometric
  identification (Annex III 1(a)) and Microsoft's "identification" are 1:N.
* ``verification``: inside ``face_comparison``; 1:1, every compared face in the request
  (CompareFaces).
* ``enrolment``: creating or extending face templates or identities that persist (IndexFaces,
  AssociateFaces).
* ``detection``: DetectFaces (no template is kept, no identity is matched).
* ``administration``: everything else.

Resources: an operation on a collection has that ``Collection`` as its resource; DetectFaces,
CompareFaces and ListCollections have the one ``Service`` entity; the tag operations name a
resource by ARN and accept either (the collection when the pipeline resolves the ARN to one of
the caller's collections, else the Service).

The action part of the Cedar schema is generated here too (:func:`schema_actions`), so the
schema, the groups policies use and what the pipeline enforces cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from facegate.operations import GROUP_PARENTS, GROUPS, OPERATIONS, Resource, in_group

__all__ = [
    "ACTION_GROUPS",
    "EITHER_RESOURCE_ACTIONS",
    "GROUPS",
    "IDENTIFICATION_ACTIONS",
    "SERVICE_ACTIONS",
    "schema_actions",
]

ACTION_GROUPS: Mapping[str, frozenset[str]] = MappingProxyType(
    {name: op.groups for name, op in OPERATIONS.items()}
)
"""Operation name -> every group it belongs to (transitively)."""

IDENTIFICATION_ACTIONS: frozenset[str] = in_group("identification")
"""Operations that compare faces with a collection's stored templates."""

SERVICE_ACTIONS: frozenset[str] = frozenset(
    name for name, op in OPERATIONS.items() if op.resource is Resource.SERVICE
)
"""Actions whose resource is always the Service (they name no collection)."""

EITHER_RESOURCE_ACTIONS: frozenset[str] = frozenset(
    name for name, op in OPERATIONS.items() if op.resource is Resource.EITHER
)
"""Actions whose resource is a Collection when the request names one, else the Service."""

_RESOURCES = {
    Resource.SERVICE: "Service",
    Resource.COLLECTION: "Collection",
    Resource.EITHER: "Collection, Service",
}


def _direct_groups(groups: frozenset[str]) -> list[str]:
    """The groups an action is declared in: its groups minus those implied by another."""
    implied = {parent for g in groups for parent in GROUP_PARENTS.get(g, ())}
    return sorted(groups - implied)


def schema_actions() -> str:
    """The action declarations of the Cedar schema (inside ``namespace Facegate``)."""
    lines = ["  // --- generated from facegate/operations.py (facegate.policy.actions) ---"]
    for group in GROUPS:
        parents = GROUP_PARENTS.get(group, ())
        quoted = ", ".join(f'"{p}"' for p in parents)
        member = f" in [{quoted}]" if parents else ""
        lines.append(f'  action "{group}"{member};')
    for name, op in OPERATIONS.items():
        groups = ", ".join(f'"{g}"' for g in _direct_groups(op.groups))
        lines.append(
            f'  action "{name}" in [{groups}]\n'
            f"    appliesTo {{ principal: [Key], resource: [{_RESOURCES[op.resource]}], "
            "context: RequestContext };"
        )
    return "\n".join(lines)
