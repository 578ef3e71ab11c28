"""TagResource, UntagResource, ListTagsForResource on collection ARNs.

Both ARN forms are accepted: ``arn:aws:rekognition:<region>:<account>:collection/<id>``
(Rekognition's, which CreateCollection and DescribeCollection return) and, for compatibility with
what facegate returned before, the same without ``arn:``. An ARN
names a collection in the caller's organisation, like a CollectionId: the ARN of another
organisation's collection of the same id is, to the caller, its own collection of that id (or
none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facegate.errors import ResourceNotFoundException
from facegate.ops.common import OpDeps, run_sync
from facegate.ops.users import Empty
from facegate.store.records import CollectionRecord


def collection_of(deps: OpDeps, arn: str) -> str:
    """The collection id named by an ARN of this server's region and account."""
    stored_form = arn.removeprefix("arn:")
    prefix = deps.collection_arn("").removeprefix("arn:")
    if not stored_form.startswith(prefix) or len(stored_form) == len(prefix):
        raise ResourceNotFoundException(f"The resource {arn} does not exist.")
    return stored_form[len(prefix) :]


async def _collection(deps: OpDeps, arn: str) -> CollectionRecord:
    """The caller's collection an ARN names (ResourceNotFoundException if none)."""
    return await run_sync(deps.collection, collection_of(deps, arn))


async def tag_resource(deps: OpDeps, p: dict[str, Any]) -> Empty:
    collection = await _collection(deps, p["resource_arn"])
    await run_sync(deps.store.tag, collection, dict(p["tags"]))
    return Empty()


async def untag_resource(deps: OpDeps, p: dict[str, Any]) -> Empty:
    collection = await _collection(deps, p["resource_arn"])
    await run_sync(deps.store.untag, collection, list(p["tag_keys"]))
    return Empty()


@dataclass(frozen=True)
class ListTagsResponse:
    tags: dict[str, str]


async def list_tags_for_resource(deps: OpDeps, p: dict[str, Any]) -> ListTagsResponse:
    collection = await _collection(deps, p["resource_arn"])
    return ListTagsResponse(await run_sync(deps.store.tags, collection))
