"""boto3 against a live server: users, associations, user search, tags, idempotency."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.server import LiveServer
from tests.e2e.test_collections_faces import error_of, new_id

Image = Callable[[str], dict[str, bytes]]


def _index(rek: Any, cid: str, image: Image, name: str) -> str:
    out = rek.index_faces(
        CollectionId=cid, Image=image(name), ExternalImageId=name.replace("/", "_")
    )
    return str(out["FaceRecords"][0]["Face"]["FaceId"])


def test_users_aggregate_faces(rek: Any, image: Image) -> None:
    cid = new_id()
    rek.create_collection(CollectionId=cid)
    obama = [_index(rek, cid, image, n) for n in ("obama.jpg", "obama2.jpg")]
    biden = _index(rek, cid, image, "biden.jpg")
    rek.create_user(CollectionId=cid, UserId="barack")
    rek.create_user(CollectionId=cid, UserId="joe", ClientRequestToken="tok-joe-1")
    # The same token and parameters replay the first answer instead of a ConflictException.
    rek.create_user(CollectionId=cid, UserId="joe", ClientRequestToken="tok-joe-1")
    with pytest.raises(rek.exceptions.ConflictException):
        rek.create_user(CollectionId=cid, UserId="joe")
    with pytest.raises(rek.exceptions.IdempotentParameterMismatchException):
        rek.create_user(CollectionId=cid, UserId="someone", ClientRequestToken="tok-joe-1")

    out = rek.associate_faces(CollectionId=cid, UserId="barack", FaceIds=[*obama, biden])
    assert sorted(f["FaceId"] for f in out["AssociatedFaces"]) == sorted(obama)
    (failed,) = out["UnsuccessfulFaceAssociations"]
    assert failed["FaceId"] == biden
    assert failed["Reasons"] == ["LOW_MATCH_CONFIDENCE"]
    assert failed["Confidence"] < 75
    rek.associate_faces(CollectionId=cid, UserId="joe", FaceIds=[biden])
    taken = rek.associate_faces(CollectionId=cid, UserId="joe", FaceIds=[obama[0]])
    assert taken["UnsuccessfulFaceAssociations"][0]["Reasons"] == ["ASSOCIATED_TO_A_DIFFERENT_USER"]

    users = rek.list_users(CollectionId=cid)["Users"]
    assert sorted(u["UserId"] for u in users) == ["barack", "joe"]
    listed = rek.list_faces(CollectionId=cid, UserId="barack")["Faces"]
    assert sorted(f["FaceId"] for f in listed) == sorted(obama)

    by_image = rek.search_users_by_image(CollectionId=cid, Image=image("obama3.jpg"))
    assert [m["User"]["UserId"] for m in by_image["UserMatches"]] == ["barack"]
    assert by_image["UserMatches"][0]["Similarity"] > 99
    assert "FaceDetail" in by_image["SearchedFace"]
    group = rek.search_users_by_image(CollectionId=cid, Image=image("two_people.jpg"))
    assert [u["Reasons"] for u in group["UnsearchedFaces"]] == [["FACE_NOT_LARGEST"]]
    nothing = rek.search_users_by_image(CollectionId=cid, Image=image("coffee.png"))
    assert nothing["UserMatches"] == []

    by_face = rek.search_users(CollectionId=cid, FaceId=obama[0])
    assert [m["User"]["UserId"] for m in by_face["UserMatches"]] == ["barack"]
    assert rek.search_users(CollectionId=cid, UserId="barack")["UserMatches"] == []
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.search_users(CollectionId=cid)

    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.associate_faces(CollectionId=cid, UserId="nobody", FaceIds=[biden])
    # Faces with a user cannot be deleted until disassociated.
    refused = rek.delete_faces(CollectionId=cid, FaceIds=[obama[0]])
    assert refused["UnsuccessfulFaceDeletions"][0]["Reasons"] == ["ASSOCIATED_TO_AN_EXISTING_USER"]
    out = rek.disassociate_faces(CollectionId=cid, UserId="barack", FaceIds=[obama[0]])
    assert [f["FaceId"] for f in out["DisassociatedFaces"]] == [obama[0]]
    assert rek.delete_faces(CollectionId=cid, FaceIds=[obama[0]])["DeletedFaces"] == [obama[0]]
    rek.delete_user(CollectionId=cid, UserId="barack")
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.delete_user(CollectionId=cid, UserId="barack")
    assert rek.list_faces(CollectionId=cid, FaceIds=[obama[1]])["Faces"][0].get("UserId") is None


def test_list_users_paginates(rek: Any) -> None:
    cid = new_id()
    rek.create_collection(CollectionId=cid)
    names = [f"user-{i:02d}" for i in range(7)]
    for name in names:
        rek.create_user(CollectionId=cid, UserId=name)
    pages = rek.get_paginator("list_users").paginate(
        CollectionId=cid, PaginationConfig={"PageSize": 3}
    )
    assert [u["UserId"] for p in pages for u in p["Users"]] == names


def test_tags(rek: Any) -> None:
    cid = new_id()
    full_arn = rek.create_collection(CollectionId=cid, Tags={"a": "1"})["CollectionArn"]
    assert full_arn.startswith("arn:aws:rekognition:")
    arn = full_arn.removeprefix("arn:")  # the form facegate returned before: still accepted
    rek.tag_resource(ResourceArn=full_arn, Tags={"b": "2", "ünïcode key": "v"})
    assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {
        "a": "1",
        "b": "2",
        "ünïcode key": "v",
    }
    rek.untag_resource(ResourceArn=full_arn, TagKeys=["a"])
    assert rek.list_tags_for_resource(ResourceArn=full_arn)["Tags"] == {
        "b": "2",
        "ünïcode key": "v",
    }
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.list_tags_for_resource(
            ResourceArn="arn:aws:rekognition:us-east-1:000000000000:collection/" + new_id()
        )
    with pytest.raises(rek.exceptions.InvalidParameterException) as info:
        rek.tag_resource(ResourceArn=full_arn, Tags={"aws:reserved": "x"})
    assert "Tags" in error_of(info)[1]


def test_unknown_face_and_bad_token(rek: Any) -> None:
    cid = new_id()
    rek.create_collection(CollectionId=cid)
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.search_faces(CollectionId=cid, FaceId=str(uuid.uuid4()))
    with pytest.raises(rek.exceptions.InvalidPaginationTokenException):
        rek.list_faces(CollectionId=cid, NextToken="12.forged")


def test_concurrent_requests_with_one_token_do_the_work_once(server: LiveServer) -> None:
    """Sixteen simultaneous CreateUser calls with the same ClientRequestToken, released together
    by a barrier: one creates the user, the others wait and replay its response (without the
    per-token lock some of them fail with ConflictException)."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    clients = [server.client() for _ in range(16)]
    clients[0].create_collection(CollectionId="token-race")
    barrier = Barrier(len(clients))

    def create(client: Any) -> str:
        barrier.wait()
        try:
            client.create_user(
                CollectionId="token-race", UserId="racer", ClientRequestToken="same-token-1"
            )
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return "ok"

    with ThreadPoolExecutor(len(clients)) as pool:
        assert list(pool.map(create, clients)) == ["ok"] * len(clients)
    users = clients[0].list_users(CollectionId="token-race")["Users"]
    assert [u["UserId"] for u in users] == ["racer"]
