"""TagResource, UntagResource, ListTagsForResource on collection ARNs.

Both ARN forms are accepted: ``arn:aws:rekognition:<region>:<account>:collection/<id>`` (what
the AWS CLI and IAM use) and ``aws:rekognition:...`` (what CreateCollection returns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facegate.errors import ResourceNotFoundException
from facegate.ops.common import OpDeps, run_sync
from facegate.ops.users import Empty


def collection_of(deps: OpDeps, arn: str) -> str:
    """The collection id named by an ARN of this server's region and account."""
    stored_form = arn.removeprefix("arn:")
    prefix = deps.collection_arn("")
    if not stored_form.startswith(prefix) or len(stored_form) == len(prefix):
        raise ResourceNotFoundException(f"The resource {arn} does not exist.")
    return stored_form[len(prefix) :]


async def tag_resource(deps: OpDeps, p: dict[str, Any]) -> Empty:
    collection_id = collection_of(deps, p["resource_arn"])
    await run_sync(deps.store.get_collection, collection_id)
    await run_sync(deps.store.tag, collection_id, dict(p["tags"]))
    return Empty()


async def untag_resource(deps: OpDeps, p: dict[str, Any]) -> Empty:
    collection_id = collection_of(deps, p["resource_arn"])
    await run_sync(deps.store.get_collection, collection_id)
    await run_sync(deps.store.untag, collection_id, list(p["tag_keys"]))
    return Empty()


@dataclass(frozen=True)
class ListTagsResponse:
    tags: dict[str, str]


async def list_tags_for_resource(deps: OpDeps, p: dict[str, Any]) -> ListTagsResponse:
    collection_id = collection_of(deps, p["resource_arn"])
    await run_sync(deps.store.get_collection, collection_id)
    return ListTagsResponse(await run_sync(deps.store.tags, collection_id))
